// libFuzzer target (issue 8): the scenario loader, --set and a bounded run of what it loads. Any
// input must end in a loaded scenario or a UserError; any other exception, a crash, a hang or a
// sanitizer report is a finding (docs/limits.md says how to run it; tools/test.sh runs it a minute).
//
// Input: optional leading lines "#set PATH=VALUE" (each one --set), then the scenario's JSON text.
#include "error.hpp"
#include "scenario.hpp"
#include "simulation.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  ipcsim::LoadOptions options;
  while (text.rfind("#set ", 0) == 0) {
    auto newline = text.find('\n');
    options.sets.push_back(text.substr(5, newline == std::string::npos ? std::string::npos : newline - 5));
    text = newline == std::string::npos ? "" : text.substr(newline + 1);
  }
  // Small bounds, so that each input runs in milliseconds: what a run may do is bounded by these,
  // and exceeding one is a UserError or a runtime error, never a finding.
  ipcsim::Limits& limits = options.limits;
  limits.script_ops = 10'000;
  limits.processes = 200;
  limits.threads = 2'000;
  limits.ipc_objects = 1'000;
  limits.events = 200'000;
  limits.output_bytes = 1 << 20;
  limits.max_time_seconds = 0.01;
  limits.timeout_seconds = 5;
  try {
    auto scenario = ipcsim::load_scenario_text(text, "fuzz.json", options);
    ipcsim::Simulation simulation(scenario->machines);
    simulation.run();
    // A broken invariant is a bug: the fuzzer must see it.
    std::string error = simulation.runtime_error();
    if (error.find("internal error") != std::string::npos) {
      std::fprintf(stderr, "%s\n", error.c_str());
      std::abort();
    }
  } catch (const ipcsim::UserError&) {
    // a refused scenario: what bad input should give
  }
  return 0;
}
