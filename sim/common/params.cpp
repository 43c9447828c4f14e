#include "params.hpp"

#include "error.hpp"
#include "names.hpp"
#include "units.hpp"

#include <cmath>
#include <cstdint>

namespace ipcsim {

const ParamSpec* ParamTable::find(const std::string& name) const {
  for (const auto& p : params)
    if (p.name == name) return &p;
  return nullptr;
}

std::vector<std::string> ParamTable::names() const {
  std::vector<std::string> out;
  for (const auto& p : params) out.push_back(p.name);
  return out;
}

const char* param_type_name(ParamType type) {
  switch (type) {
  case ParamType::Integer:
    return "integer";
  case ParamType::Number:
    return "number";
  case ParamType::Time:
    return "time";
  case ParamType::TimeList:
    return "time or list of times";
  case ParamType::Frequency:
    return "frequency";
  case ParamType::Bytes:
    return "size";
  case ParamType::Bool:
    return "boolean";
  case ParamType::String:
    return "string";
  case ParamType::Scalar:
    return "whole number or string";
  case ParamType::Choice:
    return "choice";
  case ParamType::CoreList:
    return "list of core indices";
  case ParamType::Script:
    return "list of ops";
  case ParamType::ObjectList:
    return "list of objects";
  case ParamType::StringList:
    return "list of strings";
  case ParamType::IntegerList:
    return "list of whole numbers";
  case ParamType::Object:
    return "object";
  }
  return "?";
}

namespace {

std::string show(const json& value) {
  std::string text = value.dump();
  return text.size() > 60 ? text.substr(0, 57) + "..." : text;
}

const char* const kOrVariable = ", or a script variable as \"{NAME}\"";

[[noreturn]] void bad(const ReadContext& ctx, const std::string& path, const json& value,
                      const std::string& accepted) {
  fail_at(ctx.file, path, "invalid value " + show(value) + "; expected " + accepted);
}

void check_range(const ReadContext& ctx, const std::string& path, const json& value, double number,
                 const ParamSpec& spec) {
  if (spec.min && number < *spec.min) bad(ctx, path, value, "a value >= " + format_number(*spec.min));
  if (spec.max && number > *spec.max) bad(ctx, path, value, "a value <= " + format_number(*spec.max));
}

const char* kTimeForms =
    "a whole number of cycles or a duration such as \"1.5us\", \"10ms\", \"300ns\", \"20 cycles\"";

// Every time is at most kMaxTimeCycles (units.hpp says why): the message gives it in cycles and as
// a duration at the machine's clock.
[[noreturn]] void too_long(const ReadContext& ctx, const std::string& path, const json& value) {
  bad(ctx, path, value,
      "a time of at most " + std::to_string(kMaxTimeCycles) + " cycles (2^50), which is \"" +
          format_duration(kMaxTimeCycles, ctx.hz) + "\" at " + format_hz(ctx.hz));
}

void check_time(const json& value, const std::string& path, const ParamSpec& spec, const ReadContext& ctx) {
  if (value.is_number_integer() || value.is_number_unsigned()) {
    if (!value.is_number_unsigned() && value.get<std::int64_t>() < 0) bad(ctx, path, value, kTimeForms);
    if (value.get<std::uint64_t>() > kMaxTimeCycles) too_long(ctx, path, value);
    check_range(ctx, path, value, value.get<double>(), spec);
    return;
  }
  if (!value.is_string()) bad(ctx, path, value, kTimeForms);
  auto text = value.get<std::string>();
  if (!parse_duration_cycles(text, ctx.hz)) bad(ctx, path, value, kTimeForms);
  auto cycles = parse_time_cycles(text, ctx.hz);
  if (!cycles) too_long(ctx, path, value);
  check_range(ctx, path, value, static_cast<double>(*cycles), spec);
}

} // namespace

std::optional<std::string> variable_placeholder(const json& value) {
  if (!value.is_string()) return std::nullopt;
  const auto& text = value.get_ref<const std::string&>();
  if (text.size() < 3 || text.front() != '{' || text.back() != '}') return std::nullopt;
  std::string name = text.substr(1, text.size() - 2);
  if (!valid_variable(name)) return std::nullopt;
  return name;
}

void check_value(const json& value, const std::string& path, const ParamSpec& spec, const ReadContext& ctx) {
  if (spec.takes_variable && variable_placeholder(value)) return;
  switch (spec.type) {
  case ParamType::Integer:
    if (!value.is_number_integer() && !value.is_number_unsigned())
      bad(ctx, path, value, std::string("a whole number") + (spec.takes_variable ? kOrVariable : ""));
    check_range(ctx, path, value, value.get<double>(), spec);
    return;
  case ParamType::Number:
    if (!value.is_number()) bad(ctx, path, value, "a number");
    check_range(ctx, path, value, value.get<double>(), spec);
    return;
  case ParamType::Time:
    check_time(value, path, spec, ctx);
    return;
  case ParamType::TimeList:
    if (value.is_array()) {
      if (value.empty()) bad(ctx, path, value, "a non-empty list of times");
      for (size_t i = 0; i < value.size(); ++i) check_time(value[i], join_path(path, i), spec, ctx);
    } else {
      check_time(value, path, spec, ctx);
    }
    return;
  case ParamType::Frequency: {
    std::optional<double> hz;
    if (value.is_number())
      hz = value.get<double>();
    else if (value.is_string())
      hz = parse_frequency_hz(value.get<std::string>());
    if (!hz) bad(ctx, path, value, "a frequency such as \"3GHz\", \"2.4GHz\", \"12.5MHz\" or a number of Hz");
    // The accepted range and why: units.hpp.
    if (*hz < kMinFrequencyHz || *hz > kMaxFrequencyHz)
      bad(ctx, path, value, "a frequency " + frequency_range_text());
    return;
  }
  case ParamType::Bytes: {
    // Sizes stop at 1 TiB unless declared otherwise: far beyond any IPC buffer, and a simulation
    // of more would never end.
    ParamSpec bounded = spec;
    if (!bounded.max) bounded.max = 1099511627776.0;
    if (value.is_number_unsigned() || (value.is_number_integer() && value.get<std::int64_t>() >= 0)) {
      check_range(ctx, path, value, value.get<double>(), bounded);
      return;
    }
    if (value.is_string()) {
      if (auto bytes = parse_bytes(value.get<std::string>())) {
        check_range(ctx, path, value, static_cast<double>(*bytes), bounded);
        return;
      }
    }
    bad(ctx, path, value,
        std::string("a whole number of bytes or a size such as \"4KiB\", \"1MiB\", \"512B\"") +
            (spec.takes_variable ? kOrVariable : ""));
  }
  case ParamType::Bool:
    if (!value.is_boolean()) bad(ctx, path, value, "true or false");
    return;
  case ParamType::Scalar:
    if (!value.is_string() && !value.is_number_integer() && !value.is_number_unsigned())
      bad(ctx, path, value, "a whole number or a string");
    // Script numbers are signed 64-bit: a larger one would wrap around to a negative number.
    if (value.is_number_unsigned() && value.get<std::uint64_t>() > std::uint64_t{INT64_MAX})
      bad(ctx, path, value, "a whole number from -9223372036854775808 to 9223372036854775807, or a string");
    return;
  case ParamType::String:
    if (!value.is_string() || value.get<std::string>().empty()) bad(ctx, path, value, "a non-empty string");
    return;
  case ParamType::Choice: {
    if (!value.is_string()) bad(ctx, path, value, "one of: " + join_list(spec.choices));
    const auto text = value.get<std::string>();
    for (const auto& choice : spec.choices)
      if (choice == text) return;
    fail_at(ctx.file, path,
            "unknown value \"" + text + "\"" + did_you_mean(text, spec.choices) +
                "; accepted: " + join_list(spec.choices));
  }
  case ParamType::CoreList:
    if (!value.is_array() || value.empty())
      bad(ctx, path, value, "a non-empty list of core indices such as [0, 1]");
    for (size_t i = 0; i < value.size(); ++i)
      if (!value[i].is_number_unsigned() &&
          !(value[i].is_number_integer() && value[i].get<std::int64_t>() >= 0))
        bad(ctx, join_path(path, i), value[i], "a core index (a whole number from 0)");
    return;
  case ParamType::Script:
    if (!value.is_array()) bad(ctx, path, value, "a list of ops");
    return;
  case ParamType::ObjectList:
    if (!value.is_array()) bad(ctx, path, value, "a list of objects");
    return;
  case ParamType::StringList:
    if (!value.is_array()) bad(ctx, path, value, "a list of strings, such as [\"a\", \"b\"]");
    return;
  case ParamType::IntegerList:
    if (!value.is_array()) bad(ctx, path, value, "a list of whole numbers, such as [1, 0]");
    return;
  case ParamType::Object:
    if (!value.is_object() && !value.is_string()) bad(ctx, path, value, "an object");
    return;
  }
}

json resolve_object(const json& object, const std::string& path, const ParamTable& table,
                    const ReadContext& ctx, const std::vector<std::string>& extra_keys) {
  if (!object.is_object())
    fail_at(ctx.file, path, "expected an object (" + table.title + "), got " + show(object));
  std::vector<std::string> accepted = extra_keys;
  for (const auto& name : table.names()) accepted.push_back(name);
  for (const auto& [key, value] : object.items()) {
    bool known = false;
    for (const auto& name : accepted) known = known || name == key;
    if (!known)
      fail_at(ctx.file, join_path(path, key),
              "unknown key \"" + key + "\"" + did_you_mean(key, accepted) + " in " + table.title +
                  "; accepted keys: " + join_list(accepted));
  }
  json resolved = json::object();
  for (const auto& key : extra_keys)
    if (object.contains(key)) resolved[key] = object.at(key);
  for (const auto& spec : table.params) {
    if (object.contains(spec.name)) {
      check_value(object.at(spec.name), join_path(path, spec.name), spec, ctx);
      resolved[spec.name] = object.at(spec.name);
    } else if (!spec.default_value.is_null()) {
      // Time defaults are checked too: a duration's default can leave its range at an unusual clock.
      if (spec.type == ParamType::Time || spec.type == ParamType::TimeList) try {
          check_value(spec.default_value, join_path(path, spec.name), spec, ctx);
        } catch (const UserError& e) {
          throw UserError(std::string(e.what()) + " (this is the default; at " + format_hz(ctx.hz) +
                          " set \"" + spec.name + "\" explicitly)");
        }
      resolved[spec.name] = spec.default_value;
    } else if (spec.default_note.empty()) {
      fail_at(ctx.file, join_path(path, spec.name),
              "missing required key \"" + spec.name + "\" (" + param_type_name(spec.type) + ": " +
                  spec.description + ")");
    }
  }
  return resolved;
}

std::uint64_t read_time_cycles(const json& value, double hz) {
  if (value.is_number()) return value.get<std::uint64_t>();
  return *parse_time_cycles(value.get<std::string>(), hz);
}

std::vector<std::uint64_t> read_time_list(const json& value, double hz) {
  std::vector<std::uint64_t> out;
  if (value.is_array())
    for (const auto& item : value) out.push_back(read_time_cycles(item, hz));
  else
    out.push_back(read_time_cycles(value, hz));
  return out;
}

double read_frequency(const json& value) {
  if (value.is_number()) return value.get<double>();
  return *parse_frequency_hz(value.get<std::string>());
}

std::uint64_t read_bytes(const json& value) {
  if (value.is_number()) return value.get<std::uint64_t>();
  return *parse_bytes(value.get<std::string>());
}

namespace {

// Parses without building anything, keeping the path to the value being read.
class OverflowLocator : public nlohmann::json_sax<json> {
public:
  std::optional<NumberOverflow> found;
  explicit OverflowLocator(const std::string& text) : text_(text) {}

  bool null() override { return value(); }
  bool boolean(bool) override { return value(); }
  bool number_integer(number_integer_t) override { return value(); }
  bool number_unsigned(number_unsigned_t) override { return value(); }
  bool number_float(number_float_t, const string_t&) override { return value(); }
  bool string(string_t&) override { return value(); }
  bool binary(binary_t&) override { return value(); }
  bool start_object(std::size_t) override {
    value();
    frames_.push_back({true, "", 0});
    return true;
  }
  bool key(string_t& key) override {
    frames_.back().key = key;
    return true;
  }
  bool end_object() override {
    frames_.pop_back();
    return true;
  }
  bool start_array(std::size_t) override {
    value();
    frames_.push_back({false, "", 0});
    return true;
  }
  bool end_array() override {
    frames_.pop_back();
    return true;
  }
  bool parse_error(std::size_t position, const std::string& token,
                   const nlohmann::detail::exception& e) override {
    if (e.id != 406) return false; // a syntax error: the caller reports those itself
    NumberOverflow overflow;
    overflow.number = token;
    // The failing number has no value event: in an array it is the next index, while every outer
    // array's last counted item is the one still open.
    for (std::size_t i = 0; i < frames_.size(); ++i) {
      const Frame& f = frames_[i];
      overflow.path = f.object ? join_path(overflow.path, f.key)
                               : join_path(overflow.path, i + 1 == frames_.size() ? f.count : f.count - 1);
    }
    // `position` is just past the token.
    std::size_t start = position >= token.size() ? position - token.size() : 0;
    for (std::size_t i = 0; i < start && i < text_.size(); ++i) {
      if (text_[i] == '\n')
        ++overflow.line, overflow.column = 1;
      else
        ++overflow.column;
    }
    found = overflow;
    return false;
  }

private:
  struct Frame {
    bool object;
    std::string key;
    std::size_t count; // array items begun so far
  };
  bool value() {
    if (!frames_.empty() && !frames_.back().object) ++frames_.back().count;
    return true;
  }
  const std::string& text_;
  std::vector<Frame> frames_;
};

} // namespace

std::optional<NumberOverflow> find_number_overflow(const std::string& text) {
  OverflowLocator locator(text);
  json::sax_parse(text, &locator);
  return locator.found;
}

std::string number_overflow_message(const NumberOverflow& overflow) {
  return "number " + overflow.number + " is too large to read (a number must be below 1.8e308 in magnitude)";
}

std::string format_number(double value) {
  if (value == std::floor(value) && std::fabs(value) <= 9007199254740992.0) // exact up to 2^53
    return std::to_string(static_cast<long long>(value));
  return json(value).dump();
}

std::string describe_default(const ParamSpec& spec) {
  if (!spec.default_note.empty()) return "default: " + spec.default_note;
  if (spec.default_value.is_null()) return "required";
  return "default: " + spec.default_value.dump();
}

} // namespace ipcsim
