// Scenario loading: JSON text -> `--set` overrides -> ${param} substitution -> strict validation
// with defaults -> the compiled MachineModel plus the fully resolved scenario (echoed in outputs).
#pragma once
#include "kernel.hpp"
#include "params.hpp"

#include <optional>
#include <string>
#include <vector>

namespace ipcsim {

struct LoadOptions {
  std::vector<std::string> sets; // "dotted.path=value"
  std::optional<std::uint64_t> seed;
  Limits limits{};               // sim/common/limits.hpp; the run's part goes into the model
  bool debug_invariants = false; // check the invariants continuously (--check-invariants)
};

// Cores of every machine of a scenario together (one machine has at most 1024).
inline constexpr std::size_t kMaxTotalCores = 4096;

struct Scenario {
  std::string file;
  json resolved;                      // every default filled in, overrides and params applied
  std::string hash;                   // of resolved
  std::vector<MachineModel> machines; // one, or what `machines` lists, in its order
  const MachineModel& model() const { return machines.front(); } // the first machine
  MachineModel& model() { return machines.front(); }
  // Valid but probably not what was meant ("FILE: at PATH: ..."); the command line prints them.
  std::vector<std::string> warnings;
};

// Throws UserError with file and place on any mistake.
std::unique_ptr<Scenario> load_scenario(const std::string& file, const LoadOptions& options);
// The same from text already in memory (tests); `file` names it in messages.
std::unique_ptr<Scenario> load_scenario_text(const std::string& text, const std::string& file,
                                             const LoadOptions& options);

// Declared tables, for validation and `ipcsim list`.
const ParamTable& scenario_table();
const ParamTable& machine_table();
const ParamTable& process_table();
const ParamTable& thread_table();
const ParamTable& channel_table();

// Applies one "a.b.c=value" override to `doc` (exposed for tests).
void apply_set(json& doc, const std::string& assignment, const Limits& limits = {});

std::string fnv1a64_hex(const std::string& text);

} // namespace ipcsim
