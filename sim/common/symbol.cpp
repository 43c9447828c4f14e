#include "symbol.hpp"

#include <deque>
#include <mutex>
#include <unordered_map>

namespace ipcsim {

namespace {

// Names live as long as the program: a run interns a few hundred, a test binary a few thousand.
struct SymbolTable {
  std::mutex lock; // scenarios may be loaded on several threads
  std::deque<std::string> names{std::string()};
  std::unordered_map<std::string_view, std::uint32_t> ids;
};

SymbolTable& table() {
  static SymbolTable t;
  return t;
}

} // namespace

std::uint32_t Symbol::intern(std::string_view name) {
  if (name.empty()) return 0;
  SymbolTable& t = table();
  std::lock_guard guard(t.lock);
  auto found = t.ids.find(name);
  if (found != t.ids.end()) return found->second;
  const auto id = static_cast<std::uint32_t>(t.names.size());
  t.names.emplace_back(name); // a deque does not move its elements: the key's view stays valid
  t.ids.emplace(t.names.back(), id);
  return id;
}

const std::string& Symbol::name() const {
  SymbolTable& t = table();
  std::lock_guard guard(t.lock);
  return t.names[id_];
}

} // namespace ipcsim
