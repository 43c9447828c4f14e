// Outputs of a run: the readable summary, summary.json with its provenance, records.csv,
// breakdown.csv and threads.csv. All orderings are fixed, so the same scenario and seed give
// byte-identical files.
#pragma once
#include "kernel.hpp"
#include "scenario.hpp"
#include "simulation.hpp"

#include <optional>
#include <ostream>

namespace ipcsim {

struct IntervalStats {
  std::string name;
  std::size_t count = 0;
  double mean_cycles = 0;
  Cycles p50 = 0, p99 = 0, max = 0, min = 0;
  double stddev_cycles = 0;    // population standard deviation (over every interval, divided by count)
  double per_second = 0;       // intervals closed per simulated second, over [first begin, last end]
  double bytes_per_second = 0; // when the intervals carry bytes
  std::uint64_t bytes = 0;
};

std::vector<IntervalStats> interval_stats(const Kernel& kernel);
// intervals.csv's columns, and one interval's values for them (cycles whole, the rest "%.3f"): the
// run's intervals.csv, and compare's and sweep's, share them.
const char* interval_csv_header(); // "interval,count,min_cycles,...,bytes_per_second"
std::string interval_csv_row(const IntervalStats& stats, double hz);
// The interval's statistics as summary.json gives them.
json interval_json(const IntervalStats& stats, double hz);
// A time in the unit that fits it (ns below 1 µs, µs below 1 ms, ms below 1 s, then s), 3 decimals.
std::string format_time_fit(double cycles, double hz);
// A CSV field, quoted as RFC 4180 says when it holds a comma, a quote or a line break.
std::string csv_field(const std::string& text);
// "%.3f"
std::string fixed3(double value);
// Run, ready-wait and blocked cycles of a thread, counting an unfinished state up to the end.
struct ThreadTimes {
  Cycles run, ready, blocked;
};
ThreadTimes thread_times(const Kernel& kernel, const Thread& thread, Cycles end);

struct FailedCalls {
  std::string thread, op, error;
  std::uint64_t count;
};
std::vector<FailedCalls> failed_calls(const Kernel& kernel);

// Everything the summary reports, computed once from a finished run: the text summary
// (print_summary) and summary.json (summary_json) only format it.
struct Summary {
  // Where the run came from.
  std::string scenario_file;
  std::string scenario_hash;
  json scenario; // fully resolved
  std::string description;
  std::uint64_t seed = 0;
  // The machine (one of `machine_count`, in the scenario's order).
  std::string machine_name;
  std::size_t machine_index = 0, machine_count = 1;
  std::size_t cores = 0;
  double hz = 0;
  std::string costs_preset;
  bool tagged_tlb = false;
  json scheduler; // the policy and its resolved parameters
  // The outcome.
  Cycles end = 0; // the simulated time
  std::optional<DeadlockReport> deadlock;
  struct Killed {
    std::string process;
    int signal;
  };
  std::vector<Killed> killed; // processes terminated by a signal
  struct PrintedLine {
    Cycles at;
    std::string thread, text;
  };
  std::vector<PrintedLine> console;
  std::vector<FailedCalls> failed_calls;
  std::vector<IpcTable> ipc_objects; // alive at the end
  std::vector<IntervalStats> intervals;
  struct CoreTimes {
    std::size_t core;
    Cycles busy, idle;
    double utilisation; // busy / end (0 when nothing ran)
    std::uint64_t context_switches;
  };
  std::vector<CoreTimes> per_core;
  // Threads are listed one by one up to kMaxListedThreads; beyond, only per process.
  static constexpr std::size_t kMaxListedThreads = 32;
  bool threads_grouped = false;
  struct ThreadRow {
    std::string thread;
    ThreadTimes times;
    Cycles finished_at; // kNever: did not finish
  };
  std::vector<ThreadRow> per_thread; // empty when threads_grouped
  struct ProcessRow {
    std::string process; // the declaration's name, totals over every copy
    std::size_t threads = 0;
    ThreadTimes times{0, 0, 0};
    Cycles last_finish = 0;
    bool all_finished = true;
  };
  std::vector<ProcessRow> per_process; // in declaration order
  struct BreakdownTotal {
    std::string activity, primitive;
    Cycles cycles;
  };
  std::vector<BreakdownTotal> breakdown; // by activity, then primitive name
  Cycles breakdown_cycles = 0;           // their sum: the busy time of every core
};

Summary summarize(const Scenario& scenario, const Kernel& kernel);
// Every machine's summary, in the scenario's order.
std::vector<Summary> summarize(const Scenario& scenario, const Simulation& simulation);
// One machine's summary. With several machines, the first prints the scenario's heading and each
// its own section, headed by its name.
void print_summary(std::ostream& out, const Summary& summary);
// One machine: its summary. Several: the run's context once, and "machines": each one's summary.
json summary_json(const std::vector<Summary>& summaries);
json summary_json(const Summary& summary);
json summary_json(const Scenario& scenario, const Kernel& kernel); // summarize, then summary_json
// Writes summary.json, records.csv, intervals.csv, breakdown.csv and threads.csv into `dir` (created if
// needed). With several machines, each CSV row starts with its machine's name.
void write_outputs(const std::string& dir, const std::vector<Summary>& summaries,
                   const std::vector<const Kernel*>& kernels);

const char* ipcsim_version();
const char* ipcsim_git_revision();

} // namespace ipcsim
