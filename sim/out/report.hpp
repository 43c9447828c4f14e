// Outputs of a run: the readable summary, summary.json with its provenance, records.csv,
// breakdown.csv and threads.csv. All orderings are fixed, so the same scenario and seed give
// byte-identical files.
#pragma once
#include "kernel.hpp"
#include "scenario.hpp"

#include <ostream>

namespace ipcsim {

struct IntervalStats {
  std::string name;
  std::size_t count = 0;
  double mean_cycles = 0;
  Cycles p50 = 0, p99 = 0, max = 0, min = 0;
  double per_second = 0;       // intervals closed per simulated second, over [first begin, last end]
  double bytes_per_second = 0; // when the intervals carry bytes
  std::uint64_t bytes = 0;
};

std::vector<IntervalStats> interval_stats(const Kernel& kernel);
// Run, ready-wait and blocked cycles of a thread, counting an unfinished state up to the end.
struct ThreadTimes {
  Cycles run, ready, blocked;
};
ThreadTimes thread_times(const Thread& thread, Cycles end);

struct FailedCalls {
  std::string thread, op, error;
  std::uint64_t count;
};
std::vector<FailedCalls> failed_calls(const Kernel& kernel);

void print_summary(std::ostream& out, const Scenario& scenario, const Kernel& kernel);
json summary_json(const Scenario& scenario, const Kernel& kernel);
// Writes summary.json, records.csv, breakdown.csv and threads.csv into `dir` (created if needed).
void write_outputs(const std::string& dir, const Scenario& scenario, const Kernel& kernel);

const char* ipcsim_version();
const char* ipcsim_git_revision();

} // namespace ipcsim
