// A name a scenario uses at run time (a script variable, a descriptor), interned when the script is
// compiled, so that the interpreter compares integers where it would compare strings on every op.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>

namespace ipcsim {

class Symbol {
public:
  Symbol() = default; // no name
  explicit Symbol(std::string_view name) : id_(intern(name)) {}
  const std::string& name() const; // "" for no name
  bool empty() const { return id_ == 0; }
  std::uint32_t id() const { return id_; }
  friend bool operator==(Symbol a, Symbol b) { return a.id_ == b.id_; }

private:
  static std::uint32_t intern(std::string_view name);
  std::uint32_t id_ = 0;
};

} // namespace ipcsim
