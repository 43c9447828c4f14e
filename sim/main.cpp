#include "cli.hpp"

#include <exception>
#include <iostream>

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  try {
    return ipcsim::run_cli(args, std::cout, std::cerr);
  } catch (const std::exception& e) {
    std::cerr << "ipcsim: internal error (please report it): " << e.what() << "\n";
    return ipcsim::kExitInternal;
  }
}
