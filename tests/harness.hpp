// Helpers shared by the tests: run a scenario given as JSON text and look at the results.
#pragma once
#include "error.hpp"
#include "kernel.hpp"
#include "report.hpp"
#include "scenario.hpp"

#include <memory>
#include <string>

namespace ipcsim::test {

struct Run {
  std::unique_ptr<Scenario> scenario;
  std::unique_ptr<Kernel> kernel;

  const Thread& thread(const std::string& name) const {
    for (const auto& t : kernel->threads())
      if (t.display_name() == name) return t;
    throw std::runtime_error("no thread " + name);
  }
  Cycles finished(const std::string& name) const { return thread(name).finished_at; }
  const ThreadAccount& account(const std::string& name) const { return kernel->account(thread(name)); }
  // Cycles charged to a thread for one activity and primitive.
  Cycles charged(const std::string& name, const std::string& activity, Primitive primitive) const {
    Cycles total = 0;
    for (const auto& c : account(name).charges)
      if (activity_names()[c.activity] == activity && c.primitive == static_cast<std::uint8_t>(primitive))
        total += c.cycles;
    return total;
  }
};

// The message loading `text` gives ("test.json: at PATH: ..."), or "<no error>".
inline std::string load_error(const std::string& text) {
  try {
    load_scenario_text(text, "test.json", {});
  } catch (const UserError& e) {
    return e.what();
  }
  return "<no error>";
}

// What the scripts printed, the text of each console line in time order.
inline std::vector<std::string> console_texts(const Run& run) {
  std::vector<std::string> texts;
  for (const auto& line : run.kernel->console()) texts.push_back(line.text);
  return texts;
}

inline Run run_text(const std::string& text, const LoadOptions& options = {}) {
  Run run;
  run.scenario = load_scenario_text(text, "test.json", options);
  run.kernel = std::make_unique<Kernel>(run.scenario->model());
  run.kernel->run();
  return run;
}

} // namespace ipcsim::test
