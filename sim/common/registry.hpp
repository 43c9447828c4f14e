// A registry of declarations by name: script ops, IPC mechanisms, scheduler policies, cost presets.
// Declarations are added at static-initialisation time (by a registrar object beside the code they
// declare) or on first use, and read after that. The registry itself must be a function-local
// static, so that it exists before the first registrar of any translation unit runs.
#pragma once
#include <algorithm>
#include <cassert>
#include <string>
#include <vector>

namespace ipcsim {

// The default listing order: by name. Registration order follows link order, which is no order.
struct ByName {
  template <class Decl> bool operator()(const Decl& a, const Decl& b) const { return a.name < b.name; }
};

// `Decl` has a `std::string name`; `Before` orders the listing (all() and names()).
template <class Decl, class Before = ByName> class Registry {
public:
  // Adds a declaration in its place in the listing. A name is declared once.
  void add(Decl decl) {
    assert(!find(decl.name) && "a name declared twice");
    auto place = std::upper_bound(decls_.begin(), decls_.end(), decl, Before{});
    decls_.insert(place, std::move(decl));
  }
  // The declaration named `name`, or nullptr.
  const Decl* find(const std::string& name) const {
    for (const auto& decl : decls_)
      if (decl.name == name) return &decl;
    return nullptr;
  }
  // Every name, in listing order (for `ipcsim list` and "accepted: ..." messages).
  std::vector<std::string> names() const {
    std::vector<std::string> out;
    out.reserve(decls_.size());
    for (const auto& decl : decls_) out.push_back(decl.name);
    return out;
  }
  // Every declaration, in listing order.
  const std::vector<Decl>& all() const { return decls_; }

private:
  std::vector<Decl> decls_;
};

} // namespace ipcsim
