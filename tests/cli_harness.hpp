// Helpers shared by the tests of the command line: run ipcsim in-process, read files, and a private
// temporary directory.
#pragma once
#include "cli.hpp"

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <system_error>
#include <unistd.h>
#include <vector>

namespace ipcsim::test {

struct CliResult {
  int status;
  std::string out, err;
};

// `ipcsim ARGS...`, called in-process: the exit status and what it wrote to stdout and stderr.
inline CliResult cli(const std::vector<std::string>& args) {
  std::ostringstream out, err;
  int status = run_cli(args, out, err);
  return {status, out.str(), err.str()};
}

inline bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// A whole file's bytes ("" when it cannot be read).
inline std::string slurp(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// A private directory under the system temp directory (its name holds `tag` and the pid, so that
// parallel test processes do not meet), removed with everything in it at the end of the scope.
struct TempDir {
  std::filesystem::path path;
  explicit TempDir(const std::string& tag)
      : path(std::filesystem::temp_directory_path() /
             ("ipcsim_test_" + tag + "_" + std::to_string(::getpid()))) {
    std::error_code ec;
    std::filesystem::remove_all(path, ec); // left by a crashed run
    std::filesystem::create_directories(path);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  // Writes `text` to the file `name` in the directory; its full path.
  std::string write(const std::string& name, const std::string& text) const {
    std::ofstream(path / name, std::ios::binary) << text;
    return (path / name).string();
  }
};

} // namespace ipcsim::test
