// User-facing errors. A UserError is a mistake in a scenario or on the command line: it names the
// file, the place and what would have been accepted. Broken invariants are asserts, never this.
#pragma once
#include <stdexcept>
#include <string>
#include <vector>

namespace ipcsim {

class UserError : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

// "processes.0.script.2.op" style paths: the same syntax `--set` accepts.
std::string join_path(const std::string& parent, const std::string& child);
std::string join_path(const std::string& parent, size_t index);

// Throws UserError "FILE: at PATH: MESSAGE".
[[noreturn]] void fail_at(const std::string& file, const std::string& path, const std::string& message);

// "a, b, c" for an accepted-values list.
std::string join_list(const std::vector<std::string>& items, const std::string& sep = ", ");

// The closest candidate by edit distance, or "" when nothing is close enough to suggest.
std::string closest_match(const std::string& word, const std::vector<std::string>& candidates);

// " (did you mean "x"?)" or "".
std::string did_you_mean(const std::string& word, const std::vector<std::string>& candidates);

} // namespace ipcsim
