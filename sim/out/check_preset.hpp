// `ipcsim check-preset PRESET HOSTBENCH.csv` (docs/hostbench.md): reads what tools/hostbench
// measured on a host, runs every workload it can model in the simulator with PRESET, timed the way
// hostbench times it, and compares.
#pragma once

#include "params.hpp"

#include <map>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

namespace ipcsim {

// One measurement cell of a hostbench file (format version 1).
struct HostbenchRow {
  std::string kind, mechanism;
  std::uint64_t bytes = 0;
  std::string placement;
  long trials = 0, ops_per_trial = 0;
  double median_ns = 0, p99_ns = 0, min_ns = 0;
  std::optional<double> bytes_per_s;
  std::size_t line = 0; // in the file, for messages
  // wakeup: how long the reader sleeps before the write, ns; 0: hostbench's wakeup cell's 20 us.
  std::uint64_t idle_ns = 0;
};

// One rung of hostbench's wakeup ladder (a "# wakeup_after_idle_ns" note): a reader on one core
// woken by a write from the other after sleeping idle_ns, from the write to its return.
struct WakeupRung {
  std::uint64_t idle_ns = 0;
  double median_ns = 0, p10_ns = 0, p90_ns = 0;
  long trials = 0;
  std::optional<double> call_median_ns; // the writer's write() over the same trials (a sixth field)
  std::size_t line = 0;
};
// The longest idle time a rung may give (a hostile file cannot ask for simulated hours), and the
// most rungs a file may hold (hostbench writes 15; each is simulated twice by check-preset).
constexpr std::uint64_t kMaxLadderIdleNs = 10'000'000'000;
constexpr std::size_t kMaxLadderRungs = 64;

struct HostbenchFile {
  std::string path;
  std::vector<std::pair<std::string, std::string>> keys; // "# key: value" lines, in order
  std::vector<std::size_t> key_lines;                    // each one's line in the file
  std::vector<HostbenchRow> rows;
  // The switches_per_message notes: a stream cell's name -> both sides' context switches per message.
  std::map<std::string, double> switches_per_message;
  std::vector<WakeupRung> wakeup_ladder; // by increasing idle time
};

// Throws UserError "FILE:LINE: what is wrong; what would be accepted".
// "kind,mechanism,bytes,placement": a cell's name, as hostbench's --only and notes write it.
std::string cell_name(const HostbenchRow& row);

HostbenchFile read_hostbench(const std::string& path);
HostbenchFile parse_hostbench(const std::string& text, const std::string& path);

struct CheckedCell {
  HostbenchRow row;
  std::string metric;              // "round trip ns" or "throughput MB/s"
  double measured = 0;             // median ns (round trip) or MB/s (stream)
  std::optional<double> simulated; // empty when skipped
  double error_pct = 0;            // (simulated - measured) / measured * 100
  double target_pct = 0;           // 20 (round trip) or 25 (stream)
  bool within = false;
  std::string skipped; // why it was not modelled
  // Streams: context switches per message over the cell, both sides' together: the host's (from the
  // file's switches_per_message note, when it has one) and the simulated run's.
  std::optional<double> host_switches, simulated_switches;
};

// One rung of the wakeup ladder, simulated (the wakeup cell's scenario with the rung's idle time).
struct CheckedRung {
  WakeupRung rung;
  std::optional<double> simulated; // median ns; empty when the workload failed (`skipped` says why)
  double error_pct = 0;
  bool within = false; // within 20%, as a round trip
  std::string skipped;
  // The waker's write(), when the rung has it: simulated median, error, within 20%.
  std::optional<double> simulated_call;
  double call_error_pct = 0;
  bool call_within = false;
};

// "137.5 us", "5 ms": a duration to about four significant figures, for reports.
std::string short_duration(double ns);

// The wakeup cell (kind "wakeup", or "wakeup_call" for the write) with a rung's idle time, for
// simulate_cell and cell_scenario.
HostbenchRow rung_row(const WakeupRung& rung, const std::string& kind = "wakeup");

// The measured order of the mechanisms in one (kind, bytes, placement) group, and the simulated.
struct OrderCheck {
  std::string kind, placement;
  std::uint64_t bytes = 0;
  std::vector<std::string> measured, simulated; // fastest first (file order among equals)
  // Every pair the host measured more than the tie margin apart is simulated apart, the same way
  // round; `strict`: every pair measured apart by any amount.
  bool reproduced = true;
  bool strict = true;
  std::vector<std::string> misordered; // "a before b (measured 12.3% apart)", the pairs that fail
};

// Two mechanisms measured closer than this (percent of the faster) are a tie in the order check:
// two quiet runs of hostbench on one host differ by a median 1.6 to 4.2% per cell
// (docs/calibrate.md, the noise floor), so a closer pair's order is not a measured fact.
constexpr double kOrderTiePct = 5;

struct CheckReport {
  std::string preset, file;
  std::vector<CheckedCell> cells;
  std::vector<OrderCheck> orders; // groups with at least two simulated mechanisms
  double tie_pct = kOrderTiePct;
  std::string scheduler;           // empty: the machine's default (rr)
  std::vector<CheckedRung> ladder; // the file's wakeup ladder, when it has one
  // The file's cross_core_siblings ratio (tools/hostbench/siblings.hpp), when it has one: below
  // kSharedCoreBelow the cross-core cells ran on two CPUs of one core, which the model's cores
  // never are.
  std::optional<double> siblings_ratio;
};

inline constexpr double kSharedCoreBelow = 0.85;

// PRESET: a built-in preset name or a preset file. Throws UserError on a bad preset.
// `scheduler`: the scheduling policy every cell runs under, with its default parameters; empty for
// the machine's default (rr), the policy calibrate fits under.
CheckReport check_preset(const std::string& preset, const HostbenchFile& file, double tie_pct = kOrderTiePct,
                         const std::string& scheduler = {});

// The same check with machine.costs `costs` (see simulate_cell), which the caller has loaded once;
// `label` names it in the report.
CheckReport check_costs(const json& costs, const std::string& label, const HostbenchFile& file,
                        double tie_pct = kOrderTiePct, const std::string& scheduler = {});

// A built-in preset's name as given, or a preset file's absolute path (scenarios built in memory
// have no directory of their own). Throws UserError naming the built-in presets.
std::string resolve_preset(const std::string& preset);

// The scenario (JSON text) that models one cell on `preset`, or "" with `why` set when the cell
// cannot be modelled. Exposed for tests and for reading what is simulated.
std::string cell_scenario(const HostbenchRow& row, const std::string& preset, std::string& why,
                          const std::string& scheduler = {});

// Writes each modelled cell's scenario (cell_scenario) to DIR/KIND-MECHANISM-BYTES-PLACEMENT.json,
// creating DIR; returns how many. Throws UserError when DIR or a file cannot be written.
int write_cell_scenarios(const std::string& dir, const std::string& preset, const HostbenchFile& file,
                         const std::string& scheduler = {});

// The same with a machine.costs value: a preset name or path, or {"preset": ..., overrides}
// (ipcsim calibrate evaluates candidate presets this way).
std::string cell_scenario_costs(const HostbenchRow& row, const json& costs, std::string& why,
                                const std::string& scheduler = {});

// One cell simulated with machine.costs `costs`: the median round trip or switch in ns, or the
// throughput in MB/s (stream, memcpy), as check-preset compares them; empty, with `why`, when the
// cell is not modelled or its workload failed.
// `switches`, when given, receives a stream's context switches per message (every core's
// dispatches over the run, warm-up included, per message sent).
std::optional<double> simulate_cell(const HostbenchRow& row, const json& costs, std::string& why,
                                    const std::string& scheduler = {}, double* switches = nullptr);

// The mechanism order of each (kind, bytes, placement) group of round trips or streams with at
// least two simulated cells; pairs measured within `tie_pct` percent of each other are ties.
std::vector<OrderCheck> order_checks(const std::vector<CheckedCell>& cells, double tie_pct = kOrderTiePct);

void print_check_report(std::ostream& out, const CheckReport& report);
void write_check_csv(const std::string& path, const CheckReport& report);
// "N of M round-trip cells within 20%, ..." (the verdict line, without a newline).
std::string check_verdict(const CheckReport& report);

} // namespace ipcsim
