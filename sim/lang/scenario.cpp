#include "scenario.hpp"

#include "error.hpp"
#include "ipc.hpp"
#include "limits.hpp"
#include "names.hpp"
#include "sched.hpp"
#include "script.hpp"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <unordered_map>
#include <unordered_set>

namespace ipcsim {

const ParamTable& scenario_table() {
  static const ParamTable table{
      "the scenario",
      "top level of a scenario file",
      {{"description", ParamType::String, "", "", "what the scenario shows, and the result it should give"},
       {"params", ParamType::Object, json::object(), "",
        "named values substituted for ${name} anywhere below"},
       {"seed", ParamType::Integer, 1, "", "seed of every random choice (overridden by --seed)", 0.0},
       {"machine",
        ParamType::Object,
        nullptr,
        "",
        "the simulated machine (or give `machines`)",
        {},
        {},
        {},
        "one machine with every default"},
       {"machines",
        ParamType::ObjectList,
        nullptr,
        "",
        "several machines side by side on one clock, each a machine object with a `name`; every "
        "process and channel then names its `machine`",
        {},
        {},
        {},
        "none: one `machine`"},
       {"channels", ParamType::ObjectList, json::array(), "",
        "channels for the send and recv ops: each {name, mechanism, ...the mechanism's parameters}"},
       {"processes", ParamType::ObjectList, nullptr, "",
        "the processes to run (a list of process objects)"}}};
  return table;
}

const ParamTable& channel_table() {
  static const ParamTable table{
      "channel",
      "a channel: a named link the send and recv ops use, carried by one mechanism",
      {{"name", ParamType::String, nullptr, "", "unique name (letters, digits, _ and -)"},
       {"mechanism", ParamType::String, nullptr, "", "what carries it (see `ipcsim list mechanisms`)"},
       {"machine",
        ParamType::String,
        nullptr,
        "",
        "the machine whose kernel holds it (a name from `machines`)",
        {},
        {},
        {},
        "the only machine"}}};
  return table;
}

const ParamTable& machine_table() {
  static const ParamTable table{
      "machine",
      "the simulated machine",
      {{"name",
        ParamType::String,
        nullptr,
        "",
        "its name, which processes and channels give as their `machine` (required in `machines`)",
        {},
        {},
        {},
        "\"machine\""},
       {"cores", ParamType::Integer, 1, "", "number of cores", 1.0, 1024.0},
       {"frequency",
        ParamType::Frequency,
        nullptr,
        "Hz",
        "clock frequency of every core",
        {},
        {},
        {},
        "the preset's"},
       {"frequency_scaling",
        ParamType::Choice,
        "cycles",
        "",
        "what a frequency other than the preset's keeps: \"cycles\" (every cost keeps its cycle count, so "
        "times stretch or shrink) or \"time\" (every cost keeps its time: cycle counts and copy rates "
        "scale with the clock, as a faster clock would if memory and devices kept pace)",
        {},
        {},
        {"cycles", "time"}},
       {"costs", ParamType::Object, json::object(), "",
        "cost preset and overrides: {\"preset\": NAME, PRIMITIVE: value, ...}, or just a preset name"},
       {"scheduler", ParamType::Object, json::object({{"policy", "rr"}}), "",
        "scheduler policy and its parameters: {\"policy\": NAME, PARAM: value, ...}"},
       {"jitter", ParamType::Number, 0, "fraction",
        "seeded variation of kernel costs: each cost charged is lengthened by a fraction drawn uniformly "
        "from 0 "
        "to this, from the run's seed (0: off; every cost exactly the preset's)",
        0.0, 1.0},
       {"irq_every", ParamType::Time, 0, "cycles or duration",
        "device interrupts: the mean time between two on each core, drawn from an exponential "
        "distribution with the run's seed (0: none); the running thread pays timer_interrupt and "
        "irq_handler"},
       {"irq_handler", ParamType::Time, 0, "cycles or duration",
        "the work of each device interrupt's handler, beyond the preset's timer_interrupt (entry and "
        "exit)"}}};
  return table;
}

const ParamTable& process_table() {
  static const ParamTable table{
      "process",
      "a process: an address space with one or more threads",
      {{"name", ParamType::String, nullptr, "", "unique name (letters, digits, _ and -)"},
       {"machine",
        ParamType::String,
        nullptr,
        "",
        "the machine it runs on (a name from `machines`)",
        {},
        {},
        {},
        "the only machine"},
       {"count", ParamType::Integer, 1, "", "start this many copies, named NAME[0], NAME[1], ...", 1.0,
        10000000.0},
       {"affinity",
        ParamType::CoreList,
        nullptr,
        "",
        "cores its threads may run on",
        {},
        {},
        {},
        "every core"},
       {"arrival", ParamType::Time, 0, "cycles or duration", "when its threads become ready", 0.0},
       {"priority", ParamType::Integer, 0, "", "static priority of its threads (larger runs first)",
        -1000000.0, 1000000.0},
       {"working_set_pages", ParamType::Integer, 16, "pages",
        "pages it touches after being switched in: the TLB refills an untagged switch costs", 0.0,
        static_cast<double>(kMaxWorkingSetPages)},
       {"spawned", ParamType::Bool, false, "",
        "true: it does not start by itself; a spawn op starts it (fork + exec), each spawn one more copy"},
       {"uid", ParamType::Integer, 1000, "",
        "user id (owner of the IPC objects it creates; permission checks)", 0.0, 4294967294.0},
       {"gid", ParamType::Integer, 1000, "", "group id", 0.0, 4294967294.0},
       {"sigpipe",
        ParamType::Choice,
        "terminate",
        "",
        "SIGPIPE's disposition: terminate (the default action) or ignore (the write just fails with EPIPE)",
        std::nullopt,
        std::nullopt,
        {"terminate", "ignore"}},
       {"script",
        ParamType::Script,
        nullptr,
        "",
        "ops of its single thread (or give `threads`)",
        {},
        {},
        {},
        "none: give `threads` instead"},
       {"threads",
        ParamType::ObjectList,
        nullptr,
        "",
        "its threads, each {name, count, priority, script}",
        {},
        {},
        {},
        "one thread running `script`"}}};
  return table;
}

const ParamTable& thread_table() {
  static const ParamTable table{
      "thread",
      "a thread of a process",
      {{"name", ParamType::String, nullptr, "", "name, unique within the process"},
       {"count", ParamType::Integer, 1, "", "start this many copies", 1.0, 10000000.0},
       {"priority",
        ParamType::Integer,
        nullptr,
        "",
        "static priority (larger runs first)",
        -1000000.0,
        1000000.0,
        {},
        "the process's"},
       {"script", ParamType::Script, nullptr, "", "the ops it runs"}}};
  return table;
}

std::string fnv1a64_hex(const std::string& text) {
  std::uint64_t hash = 1469598103934665603ull;
  for (unsigned char c : text) hash = (hash ^ c) * 1099511628211ull;
  char buffer[17];
  std::snprintf(buffer, sizeof buffer, "%016llx", static_cast<unsigned long long>(hash));
  return buffer;
}

namespace {

// Builds the document from SAX events, as nlohmann's own DOM parser does, and refuses repeated keys
// (JSON allows them and keeps the last; a scenario must not silently drop one). Its own builder,
// because nlohmann's parser with a callback scans every finished object's parent, which makes
// parsing quadratic in the length of a list (10^5 ops took seconds), and an ordered_json object's
// operator[] searches its keys, which makes objects quadratic in their size.
class ScenarioBuilder : public nlohmann::json_sax<json> {
public:
  ScenarioBuilder(json& root, const std::string& file) : root_(root), file_(file) {}

  bool null() override { return add(nullptr); }
  bool boolean(bool value) override { return add(value); }
  bool number_integer(number_integer_t value) override { return add(value); }
  bool number_unsigned(number_unsigned_t value) override { return add(value); }
  bool number_float(number_float_t value, const string_t&) override { return add(value); }
  bool string(string_t& value) override { return add(std::move(value)); }
  bool binary(binary_t&) override { return false; } // never produced by a text parser
  bool start_object(std::size_t) override { return open(json::object()); }
  bool start_array(std::size_t) override { return open(json::array()); }
  bool end_object() override { return close(); }
  bool end_array() override { return close(); }
  bool key(string_t& key) override {
    Frame& frame = frames_.back();
    if (!frame.keys.insert(key).second)
      fail_at(file_, join_path(path(), key),
              "duplicate key \"" + key + "\": JSON would silently keep only the last one; give it once");
    frame.key = key;
    return true;
  }
  bool parse_error(std::size_t position, const std::string&, const nlohmann::detail::exception& e) override {
    error_id = e.id;
    error_position = position;
    error_text = e.what();
    return false;
  }

  int error_id = 0;
  std::size_t error_position = 0;
  std::string error_text;

private:
  struct Frame {
    json* node;
    std::unordered_set<std::string> keys; // objects
    std::string key;                      // the key whose value comes next (objects)
  };
  // Appends to the innermost container (or sets the root); returns where the value went. A
  // container's address stays valid while values go into it only, i.e. while it is innermost.
  json* place(json&& value) {
    if (frames_.empty()) {
      root_ = std::move(value);
      return &root_;
    }
    Frame& frame = frames_.back();
    if (frame.node->is_array()) {
      auto& items = frame.node->get_ref<json::array_t&>();
      items.push_back(std::move(value));
      return &items.back();
    }
    // The ordered map's own insertion searches its keys; duplicates are refused in key() already.
    auto& members =
        static_cast<std::vector<std::pair<const std::string, json>>&>(frame.node->get_ref<json::object_t&>());
    members.emplace_back(frame.key, std::move(value));
    return &members.back().second;
  }
  bool add(json&& value) {
    place(std::move(value));
    return true;
  }
  bool open(json&& container) {
    json* node = place(std::move(container));
    frames_.push_back({node, {}, {}});
    return true;
  }
  bool close() {
    frames_.pop_back();
    return true;
  }
  std::string path() const {
    std::string out;
    for (const auto& f : frames_) {
      if (f.node->is_object()) {
        if (&f != &frames_.back()) out = join_path(out, f.key);
      } else if (!f.node->empty()) {
        out = join_path(out, f.node->size() - 1);
      }
    }
    return out;
  }

  json& root_;
  const std::string& file_;
  std::vector<Frame> frames_;
};

// "FILE:LINE:COLUMN" of a byte offset.
std::string text_place(const std::string& text, const std::string& file, std::size_t offset) {
  std::size_t line = 1, column = 1;
  for (std::size_t i = 0; i < offset && i < text.size(); ++i) {
    if (text[i] == '\n')
      ++line, column = 1;
    else
      ++column;
  }
  return file + ":" + std::to_string(line) + ":" + std::to_string(column);
}

json parse_text(const std::string& text, const std::string& file, const Limits& limits) {
  // Depth first, on the raw text: nothing below recurses deeper than this.
  std::size_t deep_at = 0;
  if (json_text_depth(text, limits.nesting_depth, &deep_at) > limits.nesting_depth)
    throw UserError(text_place(text, file, deep_at) + ": arrays and objects nested more than " +
                    std::to_string(limits.nesting_depth) + " levels deep" + limit_hint("nesting_depth"));
  json doc;
  ScenarioBuilder builder(doc, file);
  if (json::sax_parse(text, &builder)) return doc;
  if (builder.error_id == 406) { // a number too large for a double; the parser does not say where
    auto overflow = find_number_overflow(text);
    if (overflow) {
      std::string where =
          file + ":" + std::to_string(overflow->line) + ":" + std::to_string(overflow->column);
      fail_at(where, overflow->path, number_overflow_message(*overflow));
    }
  }
  std::string reason = builder.error_text;
  auto colon = reason.find(": ", reason.find("parse error"));
  if (colon != std::string::npos) reason = reason.substr(colon + 2);
  throw UserError(text_place(text, file, builder.error_position > 0 ? builder.error_position - 1 : 0) +
                  ": JSON syntax error: " + reason);
}

// The depth of a document (after --set may have deepened it), without recursion.
std::uint64_t json_depth(const json& doc) {
  std::uint64_t deepest = 0;
  std::vector<std::pair<const json*, std::uint64_t>> stack{{&doc, 1}};
  while (!stack.empty()) {
    auto [node, depth] = stack.back();
    stack.pop_back();
    if (!node->is_structured()) continue;
    deepest = std::max(deepest, depth);
    for (const auto& child : *node) stack.push_back({&child, depth + 1});
  }
  return deepest;
}

// The scenario's params by name, and which of them a ${name} used.
struct ParamIndex {
  std::unordered_map<std::string, const json*> values;
  std::unordered_set<std::string> used;
  std::vector<std::string> names; // in declaration order, for messages
};

// ${name} substitution. A string that is exactly "${name}" takes the parameter's value and type;
// elsewhere the value is spliced into the text.
json substitute(const json& node, ParamIndex& params, const std::string& path, const std::string& file) {
  if (node.is_object()) {
    json out = json::object();
    auto& members = static_cast<std::vector<std::pair<const std::string, json>>&>(
        out.get_ref<json::object_t&>()); // keys are unique already: no search per key
    for (const auto& [key, value] : node.items())
      members.emplace_back(key, substitute(value, params, join_path(path, key), file));
    return out;
  }
  if (node.is_array()) {
    json out = json::array();
    for (std::size_t i = 0; i < node.size(); ++i)
      out.push_back(substitute(node[i], params, join_path(path, i), file));
    return out;
  }
  if (!node.is_string()) return node;
  const auto& text = node.get_ref<const std::string&>();
  if (text.find("${") == std::string::npos) return node;
  auto lookup = [&](const std::string& name) -> const json& {
    auto found = params.values.find(name);
    if (found == params.values.end())
      fail_at(file, path,
              "unknown parameter \"${" + name + "}\"" + did_you_mean(name, params.names) +
                  (params.names.empty() ? "; the scenario declares no params"
                                        : "; params: " + join_list(params.names)));
    params.used.insert(name);
    return *found->second;
  };
  if (text.size() > 3 && text.rfind("${", 0) == 0 && text.back() == '}' &&
      text.find_first_of("${}", 2) == text.size() - 1)
    return lookup(text.substr(2, text.size() - 3));
  std::string out;
  std::size_t pos = 0;
  while (pos < text.size()) {
    auto open = text.find("${", pos);
    if (open == std::string::npos) {
      out += text.substr(pos);
      break;
    }
    auto close = text.find('}', open);
    if (close == std::string::npos) fail_at(file, path, "unterminated \"${\" in \"" + text + "\"");
    out += text.substr(pos, open - pos);
    const json& value = lookup(text.substr(open + 2, close - open - 2));
    out += value.is_string() ? value.get<std::string>() : value.dump();
    pos = close + 1;
  }
  return out;
}

std::string show_names(const json& array) {
  std::vector<std::string> names;
  for (const auto& item : array)
    if (item.is_object() && item.contains("name") && item.at("name").is_string())
      names.push_back(item.at("name"));
  return names.empty() ? "none" : join_list(names);
}

} // namespace

void apply_set(json& doc, const std::string& assignment, const Limits& limits) {
  auto eq = assignment.find('=');
  auto fail = [&](const std::string& what) { throw UserError("--set " + assignment + ": " + what); };
  if (eq == std::string::npos || eq == 0) fail("expected dotted.path=value, such as machine.cores=4");
  std::string path = assignment.substr(0, eq);
  std::string text = assignment.substr(eq + 1);
  if (json_text_depth(text, limits.nesting_depth) > limits.nesting_depth)
    fail("the value nests arrays and objects more than " + std::to_string(limits.nesting_depth) +
         " levels deep" + limit_hint("nesting_depth"));
  json value;
  try {
    value = json::parse(text);
  } catch (const json::parse_error&) {
    value = text; // not JSON: a plain string such as 3GHz or rr
  } catch (const json::out_of_range&) {
    auto overflow = find_number_overflow(text);
    if (!overflow) throw;
    fail(number_overflow_message(*overflow));
  }
  // Split by hand: getline drops a trailing empty segment, so "machine.cores.=2" set machine.cores.
  std::vector<std::string> parts;
  for (std::size_t from = 0;;) {
    auto dot = path.find('.', from);
    std::string part = path.substr(from, dot == std::string::npos ? std::string::npos : dot - from);
    if (part.empty())
      fail("empty path segment in \"" + path +
           "\"; expected names and indices joined by single dots, such as "
           "machine.cores or processes.0.count");
    parts.push_back(part);
    if (dot == std::string::npos) break;
    from = dot + 1;
  }
  json* node = &doc;
  std::string walked;
  for (std::size_t i = 0; i < parts.size(); ++i) {
    const std::string& part = parts[i];
    bool last = i + 1 == parts.size();
    if (node->is_array()) {
      json* next = nullptr;
      bool numeric = std::all_of(part.begin(), part.end(),
                                 [](char c) { return std::isdigit(static_cast<unsigned char>(c)); });
      if (numeric) {
        if (part.size() > 9) fail("index " + part + " is out of range at \"" + walked + "\"");
        auto index = std::stoul(part);
        if (index >= node->size())
          fail("index " + part + " is out of range at \"" + walked + "\" (" + std::to_string(node->size()) +
               " items)");
        next = &(*node)[index];
      } else {
        for (auto& item : *node)
          if (item.is_object() && item.value("name", "") == part) next = &item;
        if (!next) fail("no item named \"" + part + "\" in \"" + walked + "\"; names: " + show_names(*node));
      }
      if (last) *next = value;
      node = next;
    } else {
      if (node->is_null()) *node = json::object();
      if (!node->is_object()) fail("\"" + walked + "\" is not an object, cannot set \"" + part + "\" in it");
      if (last)
        (*node)[part] = value;
      else
        node = &(*node)[part];
    }
    walked = join_path(walked, part);
  }
}

std::unique_ptr<Scenario> load_scenario(const std::string& file, const LoadOptions& options) {
  std::error_code ec;
  if (std::filesystem::is_directory(file, ec))
    throw UserError(
        file + ": is a directory, not a scenario file (give a .json file, e.g. scenarios/sched-rr.json)");
  return load_scenario_text(read_input_file(file, "scenario file", options.limits.input_bytes), file,
                            options);
}

namespace {

// One machine: costs first, for the preset's clock is the machine's default clock. Fills `model`'s
// machine fields and `ctx.hz`; returns the resolved object.
json resolve_machine(const json& in, const std::string& path, ReadContext& ctx, MachineModel& model) {
  const std::string& file = ctx.file;
  json machine = resolve_object(in, path, machine_table(), ctx);
  if (machine.contains("name")) model.name = machine.at("name").get<std::string>();
  json costs_in = machine.at("costs");
  if (costs_in.is_string()) costs_in = json::object({{"preset", costs_in}});
  json costs = resolve_object(costs_in, join_path(path, "costs"), costs_table(), ctx);
  double preset_hz = preset_frequency_hz(costs.at("preset"), join_path(path, "costs.preset"), ctx);
  model.hz = machine.contains("frequency") ? read_frequency(machine.at("frequency")) : preset_hz;
  ctx.hz = model.hz;
  // Checked again now that the clock is known (resolve_object saw the default clock).
  if (costs.contains("time_slice"))
    check_value(costs.at("time_slice"), join_path(path, "costs.time_slice"),
                *costs_table().find("time_slice"), ctx);
  machine["frequency"] = machine.contains("frequency") ? machine.at("frequency") : json(format_hz(preset_hz));
  model.costs = build_cost_model(costs, join_path(path, "costs"), ctx);
  if (machine.at("frequency_scaling").get<std::string>() == "time")
    scale_to_clock(model.costs, model.hz / preset_hz, join_path(path, "frequency_scaling"), ctx);
  machine["costs"] = costs;
  model.cores = machine.at("cores").get<std::size_t>();
  model.cost_jitter = machine.at("jitter").get<double>();
  model.irq_every = read_time_cycles(machine.at("irq_every"), model.hz);
  model.irq_handler = read_time_cycles(machine.at("irq_handler"), model.hz);
  if (model.irq_every > 0) {
    // Interrupts arriving faster than the cores can take them leave no time for anything else.
    const Cycles entry = model.costs.cycles(Primitive::timer_interrupt);
    const double longest = static_cast<double>(entry + model.irq_handler) * (1 + model.cost_jitter);
    if (static_cast<double>(model.irq_every) <= longest)
      fail_at(file, join_path(path, "irq_every"),
              std::to_string(model.irq_every) +
                  " cycles is not longer than one interrupt takes (timer_interrupt " + std::to_string(entry) +
                  " + irq_handler " + std::to_string(model.irq_handler) + " cycles" +
                  (model.cost_jitter > 0
                       ? ", lengthened up to " + format_number(model.cost_jitter * 100) + " % by jitter"
                       : std::string()) +
                  "): the cores would do nothing but take interrupts; give a longer mean time");
  }

  json scheduler_in = machine.at("scheduler");
  const std::string scheduler_path = join_path(path, "scheduler");
  if (scheduler_in.is_string()) scheduler_in = json::object({{"policy", scheduler_in}});
  if (!scheduler_in.is_object())
    fail_at(file, scheduler_path, "expected {\"policy\": NAME, ...} or a policy name");
  if (scheduler_in.contains("policy") && !scheduler_in.at("policy").is_string())
    fail_at(file, join_path(scheduler_path, "policy"),
            "invalid value " + scheduler_in.at("policy").dump() +
                "; expected one of: " + join_list(scheduler_names()));
  std::string policy = scheduler_in.value("policy", "rr");
  // A preset measured on a host brings that host's time slice (docs/presets.md).
  if (policy == "rr" && !scheduler_in.contains("quantum") && !model.costs.time_slice.is_null())
    scheduler_in["quantum"] = model.costs.time_slice;
  if (policy == "eevdf" && !scheduler_in.contains("tick") && !model.costs.time_slice.is_null())
    scheduler_in["tick"] = model.costs.time_slice;
  const SchedulerDecl* decl = find_scheduler(policy);
  if (!decl)
    fail_at(file, join_path(scheduler_path, "policy"),
            "unknown scheduler policy \"" + policy + "\"" + did_you_mean(policy, scheduler_names()) +
                "; accepted: " + join_list(scheduler_names()));
  json scheduler = resolve_object(scheduler_in, scheduler_path, decl->params, ctx, {"policy"});
  scheduler["policy"] = policy;
  if (policy == "mlfq" && scheduler.at("quantum").is_array() &&
      scheduler.at("quantum").size() != scheduler.at("levels").get<std::size_t>())
    fail_at(file, join_path(scheduler_path, "quantum"),
            "gives " + std::to_string(scheduler.at("quantum").size()) + " quanta for " +
                scheduler.at("levels").dump() + " levels" +
                (scheduler_in.contains("quantum") ? "" : " (the default quantum list)") +
                "; give one per level, or a single time for all");
  model.scheduler_policy = policy;
  model.scheduler_params = scheduler;
  machine["scheduler"] = scheduler;
  return machine;
}

// Which machine a process or channel at `path` runs on: its "machine" key, required (and checked)
// when the scenario has several.
std::size_t machine_of(const json& object, const std::string& path, const std::vector<MachineModel>& machines,
                       const std::string& file) {
  std::vector<std::string> names;
  for (const auto& m : machines) names.push_back(m.name);
  if (!object.is_object() || !object.contains("machine")) {
    if (machines.size() == 1) return 0;
    fail_at(file, path,
            "missing \"machine\": the scenario has several machines; name the one it is on: " +
                join_list(names));
  }
  const json& value = object.at("machine");
  if (!value.is_string())
    fail_at(file, join_path(path, "machine"), "expected a machine name: " + join_list(names));
  auto name = value.get<std::string>();
  for (std::size_t i = 0; i < machines.size(); ++i)
    if (machines[i].name == name) return i;
  fail_at(file, join_path(path, "machine"),
          "unknown machine \"" + name + "\"" + did_you_mean(name, names) + "; machines: " + join_list(names));
  return 0;
}

// Everything after the raw document: ${param} substitution, validation, the machine model.
void resolve_scenario(Scenario& out, json doc, const std::string& file, const Limits& limits) {
  Scenario* scenario = &out;
  ReadContext ctx{file, 1e9, limits};
  json params = doc.contains("params") ? doc.at("params") : json::object();
  if (!params.is_object()) fail_at(file, "params", "expected an object of named values, such as {\"n\": 10}");
  for (const auto& [key, value] : params.items())
    if (value.is_object() || value.is_array() ||
        (value.is_string() && value.get<std::string>().find("${") != std::string::npos))
      fail_at(file, join_path("params", key), "a parameter is a number, string or boolean (without ${...})");
  ParamIndex index;
  for (const auto& [key, value] : params.items()) {
    index.values[key] = &value;
    index.names.push_back(key);
  }
  json body = json::object();
  for (const auto& [key, value] : doc.items())
    body[key] = key == "params" ? value : substitute(value, index, key, file);
  // A param no ${name} uses is a typo or a leftover (--set params.round=50 meant "rounds").
  for (const auto& name : index.names) {
    if (index.used.count(name)) continue;
    std::vector<std::string> used(index.used.begin(), index.used.end());
    std::sort(used.begin(), used.end());
    fail_at(file, join_path("params", name),
            "parameter \"" + name + "\" is never used (no ${" + name + "} in the scenario)" +
                did_you_mean(name, used) + "; remove it, or use it as \"${" + name + "}\"");
  }

  json top = resolve_object(body, "", scenario_table(), ctx);
  // Machines: `machine` (one) or `machines` (several, each named).
  if (top.contains("machine") && top.contains("machines"))
    fail_at(file, "machines", "give either \"machine\" (one machine) or \"machines\" (a list), not both");
  std::vector<MachineModel>& machines = scenario->machines;
  std::vector<ReadContext> machine_ctx;
  if (top.contains("machines")) {
    const json& list = top.at("machines");
    if (list.empty()) fail_at(file, "machines", "expected at least one machine, such as [{\"name\": \"a\"}]");
    machines.resize(list.size());
    json resolved = json::array();
    for (std::size_t i = 0; i < list.size(); ++i) {
      std::string path = join_path("machines", i);
      if (!list[i].is_object() || !list[i].contains("name"))
        fail_at(file, path,
                "expected a machine object with a \"name\", such as {\"name\": \"a\", \"cores\": 2}");
      ReadContext mctx = ctx;
      resolved.push_back(resolve_machine(list[i], path, mctx, machines[i]));
      const std::string& name = machines[i].name;
      if (!valid_name(name))
        fail_at(file, join_path(path, "name"), "invalid name \"" + name + "\"; use letters, digits, _ and -");
      for (std::size_t k = 0; k < i; ++k)
        if (machines[k].name == name)
          fail_at(file, join_path(path, "name"), "duplicate machine name \"" + name + "\"");
      machine_ctx.push_back(mctx);
    }
    top["machines"] = resolved;
  } else {
    machines.resize(1);
    ReadContext mctx = ctx;
    top["machine"] = resolve_machine(top.value("machine", json::object()), "machine", mctx, machines[0]);
    if (!valid_name(machines[0].name))
      fail_at(file, "machine.name",
              "invalid name \"" + machines[0].name + "\"; use letters, digits, _ and -");
    machine_ctx.push_back(mctx);
  }
  // Each core is a SimGrid actor with its own stack: past a few thousand, the host runs out of
  // memory mappings (SimGrid aborts), so the machines together are bounded as one machine is.
  std::size_t total_cores = 0;
  for (const auto& m : machines) total_cores += m.cores;
  if (total_cores > kMaxTotalCores)
    fail_at(file, "machines",
            "the machines have " + std::to_string(total_cores) + " cores in all; at most " +
                std::to_string(kMaxTotalCores) + " are simulated in one run (each core is a SimGrid actor)");
  for (auto& m : machines) {
    m.seed = top.at("seed").get<std::uint64_t>();
    m.limits = limits;
  }
  // Processes.
  const json& processes = top.at("processes");
  if (!processes.is_array() || processes.empty())
    fail_at(file, "processes",
            "expected a non-empty list of processes, such as [{\"name\": \"p\", \"script\": [...]}]");
  // A compile context per machine: each kernel has its own processes, channels and intervals.
  std::vector<CompileContext> compiles;
  for (std::size_t m = 0; m < machines.size(); ++m)
    compiles.push_back(
        {machine_ctx[m], &machines[m].interval_names, {}, {}, {}, {}, {}, {}, {}, nullptr, 0, {}, {}});
  std::vector<std::pair<std::string, std::string>> placed; // every process and channel: its machine
  std::set<std::string> seen;
  std::vector<std::size_t> process_machine;
  for (std::size_t i = 0; i < processes.size(); ++i) {
    std::string path = join_path("processes", i);
    process_machine.push_back(machine_of(processes[i], path, machines, file));
    CompileContext& compile = compiles[process_machine.back()];
    if (processes[i].is_object() && processes[i].contains("name") && processes[i].at("name").is_string()) {
      auto name = processes[i].at("name").get<std::string>();
      if (!valid_name(name))
        fail_at(file, join_path(path, "name"), "invalid name \"" + name + "\"; use letters, digits, _ and -");
      if (!seen.insert(name).second)
        fail_at(file, join_path(path, "name"), "duplicate process name \"" + name + "\"");
      compile.process_names.push_back(name);
      placed.emplace_back(name, machines[process_machine.back()].name);
      if (processes[i].contains("spawned") && processes[i].at("spawned") == true)
        compile.spawned_names.push_back(name);
    }
  }
  if (machines.size() > 1)
    for (std::size_t m = 0; m < machines.size(); ++m) {
      compiles[m].machine = machines[m].name;
      compiles[m].placed = &placed;
    }
  // Channels that name processes (a mailbox link) check them with the file and place.
  for (auto& compile : compiles) compile.read.process_names = &compile.process_names;
  // Channels, before the scripts that name them.
  const json& channels = top.at("channels");
  json resolved_channels = json::array();
  for (std::size_t i = 0; i < channels.size(); ++i) {
    std::string path = join_path("channels", i);
    const json& in = channels[i];
    if (!in.is_object())
      fail_at(file, path, "expected a channel object such as {\"name\": \"c\", \"mechanism\": \"pipe\"}");
    const std::size_t m = machine_of(in, path, machines, file);
    CompileContext& compile = compiles[m];
    const ReadContext& ctx = compile.read;
    json head = json::object();
    for (const char* key : {"name", "mechanism", "machine"})
      if (in.contains(key)) head[key] = in.at(key);
    head = resolve_object(head, path, channel_table(), ctx);
    auto name = head.at("name").get<std::string>();
    if (!valid_name(name))
      fail_at(file, join_path(path, "name"), "invalid name \"" + name + "\"; use letters, digits, _ and -");
    for (const auto& c : compiles)
      if (std::find(c.channel_names.begin(), c.channel_names.end(), name) != c.channel_names.end())
        fail_at(file, join_path(path, "name"), "duplicate channel name \"" + name + "\"");
    auto mechanism = head.at("mechanism").get<std::string>();
    const MechanismDecl* decl = find_mechanism(mechanism);
    if (!decl)
      fail_at(file, join_path(path, "mechanism"),
              "unknown mechanism \"" + mechanism + "\"" + did_you_mean(mechanism, mechanism_names()) +
                  "; accepted: " + join_list(mechanism_names()));
    json params = resolve_object(in, path, decl->params, ctx, {"name", "mechanism", "machine"});
    params.erase("name");
    params.erase("mechanism");
    params.erase("machine");
    if (decl->check) decl->check(params, path, ctx);
    machines[m].channels.push_back({name, mechanism, params});
    compile.channel_names.push_back(name);
    placed.emplace_back(name, machines[m].name);
    json out = head;
    for (const auto& [key, value] : params.items()) out[key] = value;
    resolved_channels.push_back(out);
  }
  top["channels"] = resolved_channels;
  json resolved_processes = json::array();
  std::uint64_t total_threads = 0, total_processes = 0;
  for (std::size_t i = 0; i < processes.size(); ++i) {
    std::string path = join_path("processes", i);
    const std::size_t m = process_machine[i];
    MachineModel& model = machines[m];
    CompileContext& compile = compiles[m];
    const ReadContext& ctx = compile.read;
    json process = resolve_object(processes[i], path, process_table(), ctx);
    auto spec = std::make_unique<ProcessSpec>();
    spec->name = process.at("name");
    spec->count = process.at("count").get<std::uint32_t>();
    spec->arrival = read_time_cycles(process.at("arrival"), ctx.hz);
    spec->priority = process.at("priority").get<int>();
    spec->working_set_pages = process.at("working_set_pages").get<std::uint32_t>();
    spec->spawned = process.at("spawned").get<bool>();
    spec->uid = process.at("uid").get<std::uint32_t>();
    spec->gid = process.at("gid").get<std::uint32_t>();
    spec->sigpipe_terminates = process.at("sigpipe") == "terminate";
    if (spec->spawned && spec->count != 1)
      fail_at(file, join_path(path, "count"),
              "a spawned process starts one copy per spawn op; drop \"count\"");
    if (spec->spawned && spec->arrival != 0)
      fail_at(file, join_path(path, "arrival"), "a spawned process starts when spawned; drop \"arrival\"");
    if (process.contains("affinity")) {
      for (std::size_t k = 0; k < process.at("affinity").size(); ++k) {
        auto core = process.at("affinity")[k].get<std::uint64_t>();
        if (core >= model.cores)
          fail_at(file, join_path(join_path(path, "affinity"), k),
                  "core " + std::to_string(core) + " does not exist; the machine has cores 0 to " +
                      std::to_string(model.cores - 1));
        spec->affinity.push_back(static_cast<std::uint32_t>(core));
      }
    }
    bool has_script = process.contains("script"), has_threads = process.contains("threads");
    if (has_script == has_threads)
      fail_at(file, path,
              has_script ? "give either \"script\" or \"threads\", not both"
                         : "missing \"script\" (the ops its thread runs) or \"threads\"");
    if (has_script) {
      spec->threads.push_back({"main", 1, spec->priority,
                               compile_script(process.at("script"), join_path(path, "script"), compile)});
    } else {
      std::set<std::string> thread_names;
      json threads_out = json::array();
      const json& threads = process.at("threads");
      if (threads.empty()) fail_at(file, join_path(path, "threads"), "expected at least one thread");
      for (std::size_t t = 0; t < threads.size(); ++t) {
        std::string thread_path = join_path(join_path(path, "threads"), t);
        json thread = resolve_object(threads[t], thread_path, thread_table(), ctx);
        auto name = thread.at("name").get<std::string>();
        if (!valid_name(name))
          fail_at(file, join_path(thread_path, "name"),
                  "invalid name \"" + name + "\"; use letters, digits, _ and -");
        if (!thread_names.insert(name).second)
          fail_at(file, join_path(thread_path, "name"),
                  "duplicate thread name \"" + name + "\" in this process");
        int priority = thread.contains("priority") ? thread.at("priority").get<int>() : spec->priority;
        thread["priority"] = priority;
        spec->threads.push_back(
            {name, thread.at("count").get<std::uint32_t>(), priority,
             compile_script(thread.at("script"), join_path(thread_path, "script"), compile)});
        threads_out.push_back(thread);
      }
      process["threads"] = threads_out;
    }
    std::uint64_t per_copy = 0;
    for (const auto& thread : spec->threads) per_copy += thread.count;
    // Only what starts by itself: spawns are counted as they happen (Kernel::spawn).
    if (!spec->spawned) {
      total_threads += per_copy * spec->count;
      total_processes += spec->count;
    }
    if (total_threads > limits.threads)
      fail_at(file, path,
              "the scenario starts " + std::to_string(total_threads) + " threads, more than the limit of " +
                  std::to_string(limits.threads) + limit_hint("threads"));
    if (total_processes > limits.processes)
      fail_at(file, join_path(path, "count"),
              "the scenario starts " + std::to_string(total_processes) +
                  " processes, more than the limit of " + std::to_string(limits.processes) +
                  limit_hint("processes"));
    resolved_processes.push_back(process);
    model.processes.push_back(std::move(spec));
  }
  for (auto& compile : compiles)
    for (const auto& check : compile.after_scripts) check();
  for (const auto& model : machines) {
    const std::string on = machines.size() == 1 ? "" : " on machine " + model.name;
    if (model.processes.empty())
      fail_at(file, "processes", "no process runs" + on + "; give each machine at least one");
    if (std::all_of(model.processes.begin(), model.processes.end(), [](const auto& p) { return p->spawned; }))
      fail_at(file, "processes",
              "every process" + on + " is \"spawned\", so none starts; at least one must start by itself");
  }
  top["processes"] = resolved_processes;
  top["params"] = params;
  // A slice barely longer than a context switch is spent switching; a shorter one livelocks (the
  // kernel stops such a run). Warn while the scenario can still be fixed.
  for (std::size_t m = 0; m < machines.size(); ++m) {
    const MachineModel& model = machines[m];
    if (!model.scheduler_params.contains("quantum")) continue;
    const Cycles switch_cost = Kernel::switch_cycles(model);
    Cycles shortest = kNever;
    for (Cycles q : read_time_list(model.scheduler_params.at("quantum"), model.hz))
      if (q > 0) shortest = std::min(shortest, q);
    const std::string where = top.contains("machines")
                                  ? join_path(join_path("machines", m), "scheduler.quantum")
                                  : std::string("machine.scheduler.quantum");
    if (switch_cost > 0 && shortest != kNever && shortest < 10 * switch_cost)
      scenario->warnings.push_back(
          file + ": at " + where + ": a time slice of " + std::to_string(shortest) +
          " cycles is less than 10 context switches (one costs up to " + std::to_string(switch_cost) +
          " cycles here, switching in and out); threads spend " +
          (shortest <= switch_cost ? "every slice switching and never run (the run will stop)"
                                   : "much of each slice switching") +
          "; a quantum of at least " + format_duration(10 * switch_cost, model.hz) + " is sensible");
  }
  scenario->resolved = top;
  scenario->hash = fnv1a64_hex(top.dump());
}

} // namespace

std::unique_ptr<Scenario> load_scenario_text(const std::string& text, const std::string& file,
                                             const LoadOptions& options) {
  auto scenario = std::make_unique<Scenario>();
  scenario->file = file;
  if (text.size() > options.limits.input_bytes)
    throw UserError(file + ": the scenario file is larger than " +
                    limit_value_text(options.limits, "input_bytes") + ", the most ipcsim reads" +
                    limit_hint("input_bytes"));
  json doc = parse_text(text, file, options.limits);
  if (!doc.is_object()) fail_at(file, "", "a scenario is a JSON object with at least \"processes\"");
  // Shorthands ("costs": "teaching", "scheduler": "fifo") become their object form first, so that
  // --set machine.costs.preset=... works whichever form the file uses.
  if (doc.contains("machine") && doc.at("machine").is_object()) {
    json& machine = doc.at("machine");
    if (machine.contains("costs") && machine.at("costs").is_string())
      machine["costs"] = json::object({{"preset", machine.at("costs")}});
    if (machine.contains("scheduler") && machine.at("scheduler").is_string())
      machine["scheduler"] = json::object({{"policy", machine.at("scheduler")}});
  }
  for (const auto& assignment : options.sets) {
    // `machine` is the one-machine form: with a `machines` list it would add a second description.
    if ((assignment.rfind("machine.", 0) == 0 || assignment.rfind("machine=", 0) == 0) &&
        doc.contains("machines"))
      throw UserError("--set " + assignment + ": " + file +
                      " lists several \"machines\"; set one of them, such as machines.0." +
                      assignment.substr(assignment.find_first_of(".=") + 1));
    apply_set(doc, assignment, options.limits);
  }
  // A long dotted path deepens the document too.
  if (!options.sets.empty() && json_depth(doc) > options.limits.nesting_depth)
    throw UserError("--set: the paths given make the scenario nest arrays and objects more than " +
                    std::to_string(options.limits.nesting_depth) + " levels deep" +
                    limit_hint("nesting_depth"));
  if (options.seed) doc["seed"] = *options.seed;
  try {
    resolve_scenario(*scenario, doc, file, options.limits);
    for (auto& machine : scenario->machines) machine.debug_invariants = options.debug_invariants;
  } catch (const UserError& e) {
    // A mistake at a path a --set wrote is the command line's, not the file's: say so.
    const std::string prefix = file + ": at ";
    std::string message = e.what();
    if (message.rfind(prefix, 0) == 0) {
      std::string path = message.substr(prefix.size(), message.find(':', prefix.size()) - prefix.size());
      for (const auto& assignment : options.sets) {
        std::string set_path = assignment.substr(0, assignment.find('='));
        if (path == set_path || path.rfind(set_path + ".", 0) == 0)
          throw UserError("--set " + assignment + ": " + message.substr(prefix.size() + path.size() + 2) +
                          " (at " + path + " in " + file + ")");
      }
    }
    throw;
  }

  return scenario;
}

} // namespace ipcsim
