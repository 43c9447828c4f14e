// libFuzzer target: the hostbench file reader behind `ipcsim check-preset` and `ipcsim calibrate`
// (docs/hostbench.md), and the scenarios check-preset builds from what it read. Any input must end
// in a parsed file or a UserError naming the line; each parsed cell's and wakeup rung's scenario
// must load or be refused with a UserError (a limit the simulator holds it to); any other
// exception, a crash, a hang or a sanitizer report is a finding. The cells are not simulated: a
// hostile file's cells are bounded (check_preset.cpp), but each takes milliseconds to seconds.
#include "check_preset.hpp"
#include "error.hpp"
#include "scenario.hpp"

#include <cstddef>
#include <cstdint>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  ipcsim::HostbenchFile file;
  try {
    file = ipcsim::parse_hostbench(text, "fuzz.csv");
  } catch (const ipcsim::UserError&) {
    return 0; // a refused file: what bad input should give
  }
  std::vector<ipcsim::HostbenchRow> rows;
  for (std::size_t i = 0; i < file.rows.size() && i < 4; ++i) rows.push_back(file.rows[i]);
  for (std::size_t i = 0; i < file.wakeup_ladder.size() && i < 2; ++i)
    rows.push_back(ipcsim::rung_row(file.wakeup_ladder[i]));
  for (const auto& row : rows) {
    std::string why;
    const std::string scenario = ipcsim::cell_scenario(row, "teaching", why);
    if (scenario.empty()) continue; // not modelled, with its reason
    try {
      ipcsim::LoadOptions options;
      options.limits.max_time_seconds = 0.01;
      ipcsim::load_scenario_text(scenario, "cell.json", options);
    } catch (const ipcsim::UserError&) {
      // a limit the simulator holds the cell to: check-preset lists it as not modelled
    }
  }
  return 0;
}
