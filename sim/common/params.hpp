// Declared parameters: every scenario field, op field and policy field is declared once here-style
// (name, type, default, unit, description) and everything else -- validation, defaults, `ipcsim
// list`, the docs -- reads that one declaration.
#pragma once
#include "limits.hpp"

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace ipcsim {

using json = nlohmann::ordered_json;

enum class ParamType {
  Integer,   // whole number, optional min/max
  Number,    // real number, optional min/max
  Time,      // whole cycles as an integer, or a duration string "1.5us" / "20 cycles"
  TimeList,  // a Time, or a list of Times
  Frequency, // "3GHz" or a number of Hz
  Bytes,     // whole bytes, or "4KiB"
  Bool,
  String,
  Scalar,      // a whole number or a string (script variables)
  Choice,      // one of `choices`
  CoreList,    // list of core indices
  Script,      // list of ops
  ObjectList,  // list of objects (processes, threads)
  StringList,  // list of strings (descriptor names, flags); the op checks the items themselves
  IntegerList, // list of whole numbers (semctl SETALL's values); the op checks the items themselves
  Object,      // a nested table, described elsewhere
};

struct ParamSpec {
  std::string name;
  ParamType type;
  json default_value; // null: required, unless default_note says where the default comes from
  std::string unit;
  std::string description;
  std::optional<double> min{};
  std::optional<double> max{};
  std::vector<std::string> choices{};
  std::string default_note{}; // e.g. "the preset's": shown instead of a literal default
  // An op field that also takes "{NAME}", a script variable read when the op runs (its range is
  // checked then).
  bool takes_variable = false;
};

// "{NAME}" with NAME a script variable's name: a field declared takes_variable reads it at run time.
std::optional<std::string> variable_placeholder(const json& value);
// `spec` declared takes_variable: an op field that also takes "{NAME}".
inline ParamSpec variable_field(ParamSpec spec) {
  spec.takes_variable = true;
  return spec;
}

struct ParamTable {
  std::string title;
  std::string description;
  std::vector<ParamSpec> params;
  const ParamSpec* find(const std::string& name) const;
  std::vector<std::string> names() const;
};

const char* param_type_name(ParamType type);

// Where a value is being read: for error messages, and the clock for converting durations.
struct ReadContext {
  std::string file;
  double hz = 3e9;
  Limits limits{}; // input size and nesting of preset files read on the way
  // The scenario's process names, once known (channels that name processes check them).
  const std::vector<std::string>* process_names = nullptr;
};

// Checks `object` against `table`: it must be an object, every key declared, every required key
// present, every value well-typed; keys in `extra_keys` are left for the caller. Returns the object
// with declared defaults filled in, in declaration order. Throws UserError naming file and path.
json resolve_object(const json& object, const std::string& path, const ParamTable& table,
                    const ReadContext& ctx, const std::vector<std::string>& extra_keys = {});

// Checks one value against its declaration (no defaults involved).
void check_value(const json& value, const std::string& path, const ParamSpec& spec, const ReadContext& ctx);

// Typed readers for values that passed check_value.
std::uint64_t read_time_cycles(const json& value, double hz);
std::vector<std::uint64_t> read_time_list(const json& value, double hz);
double read_frequency(const json& value);
std::uint64_t read_bytes(const json& value);

// A number in JSON text too large for a double (1e400): nlohmann's parser rejects it with
// out_of_range 406 and no position. This finds where it is, for a message naming the place.
struct NumberOverflow {
  std::size_t line = 1, column = 1; // of the number's first character
  std::string path;                 // "processes.0.script.0.time"; "" at top level
  std::string number;               // as written
};
std::optional<NumberOverflow> find_number_overflow(const std::string& text);
// "number 1e400 is too large ..." (the place is the caller's to add).
std::string number_overflow_message(const NumberOverflow& overflow);

// A number as a person writes it: 1024, not 1024.0.
std::string format_number(double value);

// "default 3GHz" style text for listings.
std::string describe_default(const ParamSpec& spec);

} // namespace ipcsim
