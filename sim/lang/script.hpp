// Script ops: each registered by name with a one-line description and its fields declared once.
// Built-in ops live in script.cpp; an IPC mechanism in models/ registers its own the same way.
#pragma once
#include "kernel.hpp"
#include "params.hpp"

#include <functional>
#include <map>
#include <memory>
#include <unordered_map>

namespace ipcsim {

struct CompileContext {
  ReadContext read;
  std::vector<std::string>* interval_names; // interned measurement names
  std::vector<std::string> process_names;   // every process of the scenario
  std::vector<std::string> channel_names;   // every channel of the scenario
  std::vector<std::string> spawned_names;   // processes declared "spawned": true
  // Script variables of the script being compiled: assigned (by set, add, or an op that stores
  // results) and used (in conditions and print templates, with the path of the use). A use of a
  // name never assigned in the same script is an error.
  std::vector<std::string> assigned;
  std::vector<std::pair<std::string, std::string>> used;
  // Checks that need every script compiled first (a name created in one script and used in another):
  // the loader runs them, in order, after the last process. Ops may add them while compiling.
  std::vector<std::function<void()>> after_scripts;
  // With several machines: the machine being compiled, and every process and channel's machine.
  std::string machine;
  const std::vector<std::pair<std::string, std::string>>* placed = nullptr;
  // Ops compiled so far in every script, against read.limits.script_ops.
  std::uint64_t ops = 0;
  std::unordered_map<std::string, std::uint32_t> interval_index; // into *interval_names
  // Keyed intervals (begin and end in different threads): where each name is first begun and ended.
  struct KeyedNames {
    std::map<std::string, std::string> begun, ended;
  };
  std::shared_ptr<KeyedNames> keyed;
};

// For an unknown process or channel `name`: a note when it exists on another machine ("" if not).
std::string elsewhere_note(const CompileContext& ctx, const std::string& name);

// Names every script can read without assigning them: the last call's outcome and message.
const std::vector<std::string>& builtin_variables();
bool is_builtin_variable(const std::string& name);
// Checks "{name}" placeholders of a print template; records their uses.
void check_template(const std::string& text, const std::string& path, CompileContext& ctx);

struct OpDecl {
  std::string name;
  std::string description;
  ParamTable params; // fields beside "op"
  // Appends the compiled form of `fields` (already checked against params, defaults filled) to
  // `program`; `activity` is the op's breakdown id.
  std::function<void(const json& fields, const std::string& path, CompileContext& ctx, Program& program,
                     std::uint16_t activity)>
      compile;
};

// Every op in name order (registration order follows link order; see sim/common/registry.hpp).
const std::vector<OpDecl>& op_registry();
const OpDecl* find_op(const std::string& name);
std::vector<std::string> op_names();

// Registers an op at static-initialisation time (models/ is an object library so none are dropped).
struct OpRegistrar {
  explicit OpRegistrar(OpDecl decl);
};

// Compiles a list of ops, appending to `program`. Nested lists (repeat bodies) recurse here.
void compile_ops(const json& ops, const std::string& path, CompileContext& ctx, Program& program);
std::shared_ptr<const Program> compile_script(const json& ops, const std::string& path, CompileContext& ctx);

} // namespace ipcsim
