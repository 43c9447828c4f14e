// The `ipcsim` command line. run_cli is main() minus the process: tests call it directly.
#pragma once
#include <ostream>
#include <string>
#include <vector>

namespace ipcsim {

// Exit statuses.
constexpr int kExitOk = 0;
constexpr int kExitBadInput = 2;  // a mistake in a scenario or on the command line
constexpr int kExitDeadlock = 3;  // the simulated system deadlocked (a result, reported)
constexpr int kExitInternal = 70; // a bug in ipcsim

int run_cli(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);

// `ipcsim list` text for a section ("" for all).
void print_list(std::ostream& out, const std::string& section);

} // namespace ipcsim
