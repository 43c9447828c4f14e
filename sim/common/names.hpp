// What a name in a scenario may be made of: each rule written once, for the loader, the script
// compiler, print templates and the mechanisms' ops alike. ASCII only, whatever the locale.
#pragma once
#include <string>

namespace ipcsim {

inline bool ascii_alnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

// A process, thread or channel name: letters, digits, _ and -, at least one.
inline bool valid_name(const std::string& name) {
  if (name.empty()) return false;
  for (char c : name)
    if (!ascii_alnum(c) && c != '_' && c != '-') return false;
  return true;
}

// A character of a script variable's name: a letter, a digit, _ or . ("msg.type", "st.qnum").
inline bool variable_char(char c) { return ascii_alnum(c) || c == '_' || c == '.'; }

// A script variable's name: variable characters, at least one.
inline bool valid_variable(const std::string& name) {
  if (name.empty()) return false;
  for (char c : name)
    if (!variable_char(c)) return false;
  return true;
}

// A variable's name where a number may stand instead (a System V key or id given as a string, and
// the variables those ops store into): a valid variable name that does not start with a digit.
inline bool valid_variable_not_number(const std::string& name) {
  return valid_variable(name) && !(name[0] >= '0' && name[0] <= '9');
}

} // namespace ipcsim
