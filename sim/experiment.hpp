// Experiments over many runs: `ipcsim compare` (one workload over each mechanism, side by side) and
// `ipcsim sweep` (a grid of runs, each point in its own process). docs/compare.md, docs/sweep.md.
#pragma once
#include "scenario.hpp"

#include <ostream>
#include <string>
#include <vector>

namespace ipcsim {

struct CompareOptions {
  std::string scenario_file;
  std::vector<std::string> mechanisms;
  LoadOptions load;
  std::string out_dir; // "" : print only
  bool quiet = false;
};
// Runs the comparison, prints it, writes --out; returns the exit status (UserError on a mistake).
int run_compare(const CompareOptions& options, std::ostream& out, std::ostream& err);

struct SweepOptions {
  std::string scenario_file;
  std::vector<std::string> vary;      // "path=v1,v2" or "path=FROM..TO*FACTOR"
  std::vector<std::string> sets;      // --set, for every point
  std::vector<std::string> run_flags; // --limit / --max-time / --timeout, passed on to every point
  LoadOptions load;                   // the same, read (to check every point before running)
  unsigned jobs = 0;                  // 0: the number of cores
  unsigned repeat = 1;
  std::optional<std::uint64_t> seed_from;
  std::string out_dir = "sweep-out";
  bool emit_jobs = false;
  std::string self; // the ipcsim binary to run each point with
};
int run_sweep(const SweepOptions& options, std::ostream& out, std::ostream& err);
// One point of a sweep written by run_sweep (DIR/sweep.json): runs it, writes DIR/points/NNNN/.
int run_sweep_point(const std::string& dir, const std::string& point, std::ostream& out, std::ostream& err);
// Gathers DIR/points/* into DIR/sweep.csv and DIR/intervals.csv.
int run_sweep_merge(const std::string& dir, std::ostream& out, std::ostream& err);

// "8..1MiB*8" -> 8, 64, 512, ..., 1048576; a list "a,b" -> a, b. UserError naming `option` otherwise.
std::vector<std::string> expand_vary_values(const std::string& values, const std::string& option);

} // namespace ipcsim
