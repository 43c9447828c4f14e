#include "costs.hpp"

#include "error.hpp"
#include "registry.hpp"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>

namespace ipcsim {

namespace {

const PrimitiveInfo kPrimitives[] = {
#define IPCSIM_INFO(name, unit, description) {#name, unit, description},
    IPCSIM_PRIMITIVES(IPCSIM_INFO)
#undef IPCSIM_INFO
};

constexpr Primitive kCopyRates[] = {Primitive::copy_bytes_per_cycle, Primitive::copy_bytes_per_cycle_l2,
                                    Primitive::copy_bytes_per_cycle_l3,
                                    Primitive::copy_bytes_per_cycle_uncached};
constexpr Primitive kCacheSizes[] = {Primitive::cache_l1_bytes, Primitive::cache_l2_bytes,
                                     Primitive::cache_l3_bytes};

bool is_rate(Primitive p) {
  if (p == Primitive::copy_bytes_per_cycle_remote) return true;
  for (Primitive r : kCopyRates)
    if (p == r) return true;
  return false;
}

bool is_size(Primitive p) {
  for (Primitive c : kCacheSizes)
    if (p == c) return true;
  return false;
}

// A preset file parsed and checked. `origin` names it in errors.
struct PresetFile {
  json document;
  std::string origin;
};

// The built-in presets, parsed once.
const Registry<PresetInfo>& builtin_presets() {
  static const Registry<PresetInfo> presets = [] {
    Registry<PresetInfo> registry;
    for (const auto& [name, text] : builtin_preset_texts()) {
      json doc = json::parse(text);
      std::string description = doc.value("description", "");
      std::string frequency = doc.at("frequency").at("value").get<std::string>();
      registry.add({name, std::move(description), std::move(frequency), std::move(doc)});
    }
    return registry;
  }();
  return presets;
}

PresetFile load_preset(const std::string& name, const std::string& path, const ReadContext& ctx) {
  if (const PresetInfo* builtin = builtin_presets().find(name))
    return {builtin->document, "built-in preset \"" + name + "\""};
  if (name.find('/') == std::string::npos && name.find(".json") == std::string::npos) {
    std::vector<std::string> names = builtin_presets().names();
    fail_at(ctx.file, path,
            "unknown cost preset \"" + name + "\"" + did_you_mean(name, names) +
                "; built-in presets: " + join_list(names) + " (or a path to a preset file ending in .json)");
  }
  std::string text;
  try {
    text = read_input_file(name, "cost preset file", ctx.limits.input_bytes);
  } catch (const InputFileError& e) {
    // A relative path is taken from the working directory, which may not be where the user thinks.
    std::string looked;
    if (std::filesystem::path(name).is_relative()) {
      std::error_code ec;
      looked = " (a relative path is taken from the working directory: looked at " +
               (std::filesystem::current_path(ec) / name).lexically_normal().string() + ")";
    }
    // "cannot open cost preset file "x.json": No such file or directory", as the scenario's says it.
    const std::string open_prefix = "cannot open the cost preset file: ";
    if (e.reason.rfind(open_prefix, 0) == 0)
      fail_at(ctx.file, path,
              "cannot open cost preset file \"" + name + "\": " + e.reason.substr(open_prefix.size()) +
                  looked);
    fail_at(ctx.file, path, "cost preset file \"" + name + "\" " + e.reason + looked);
  }
  std::size_t deep_at = 0;
  if (json_text_depth(text, ctx.limits.nesting_depth, &deep_at) > ctx.limits.nesting_depth)
    fail_at(ctx.file, path,
            "preset file \"" + name + "\" nests arrays and objects more than " +
                std::to_string(ctx.limits.nesting_depth) + " levels deep (at byte " +
                std::to_string(deep_at) + ")" + limit_hint("nesting_depth"));
  try {
    return {json::parse(text), "preset file \"" + name + "\""};
  } catch (const json::parse_error& e) {
    fail_at(ctx.file, path, "preset file \"" + name + "\" is not valid JSON: " + e.what());
  } catch (const json::out_of_range&) { // a number too large for a double: the preset file's mistake
    auto overflow = find_number_overflow(text);
    if (!overflow) throw;
    fail_at("preset file \"" + name + "\" (line " + std::to_string(overflow->line) + ", column " +
                std::to_string(overflow->column) + ")",
            overflow->path, number_overflow_message(*overflow));
  }
}

// An idle_states list, a preset file's or a machine.costs override's: {"name", "target_residency",
// "exit_latency"} each, whole cycles, by increasing target residency, each state no quicker to leave
// than the shallower one (`idle_exit`, named `exit_name`, for the first). `complain` gets the place
// within the list (".2: ...", or ": ..." for the list) and throws.
std::vector<IdleState> read_idle_states(const json& states, double idle_exit, const std::string& exit_name,
                                        const std::function<void(const std::string&)>& complain) {
  const std::string expected = "idle_states must be a list of {\"name\": \"C6\", \"target_residency\": "
                               "CYCLES, \"exit_latency\": CYCLES} (and optionally \"ipi\": CYCLES), by "
                               "increasing target_residency (each > 0)";
  if (!states.is_array()) complain(": " + expected + ", got " + states.dump());
  std::vector<IdleState> out;
  double last_residency = 0, last_exit = idle_exit;
  for (std::size_t i = 0; i < states.size(); ++i) {
    const json& st = states[i];
    const std::string where = "." + std::to_string(i) + ": ";
    auto whole = [](const json& v) {
      return v.is_number() && v.get<double>() >= 0 &&
             v.get<double>() <= static_cast<double>(kMaxPrimitiveCycles) &&
             v.get<double>() == std::floor(v.get<double>());
    };
    const bool with_ipi = st.is_object() && st.contains("ipi");
    if (!st.is_object() || st.size() != (with_ipi ? 4u : 3u) || !st.contains("name") ||
        !st.at("name").is_string() || !st.contains("target_residency") || !whole(st.at("target_residency")) ||
        !st.contains("exit_latency") || !whole(st.at("exit_latency")) || (with_ipi && !whole(st.at("ipi"))))
      complain(where + expected + " (cycles: whole numbers up to 2^32)");
    double residency = st.at("target_residency").get<double>(), exit = st.at("exit_latency").get<double>();
    if (residency <= last_residency)
      complain(where + "target_residency must exceed the previous state's (" + format_number(last_residency) +
               ")");
    if (exit < last_exit)
      complain(where + "exit_latency " + format_number(exit) + " is below the shallower state's (" +
               format_number(last_exit) + (i == 0 ? ", " + exit_name : std::string()) +
               "): a deeper state is never quicker to leave");
    last_residency = residency;
    last_exit = exit;
    IdleState state{st.at("name").get<std::string>(), static_cast<Cycles>(residency),
                    static_cast<Cycles>(exit), std::nullopt};
    if (with_ipi) state.ipi = st.at("ipi").get<Cycles>();
    out.push_back(state);
  }
  return out;
}

// Preset files are checked as strictly as scenarios: every primitive present, nothing unknown.
void check_preset(const PresetFile& preset, const ReadContext& ctx, const std::string& path) {
  const json& doc = preset.document;
  auto complain = [&](const std::string& what) { fail_at(ctx.file, path, preset.origin + ": " + what); };
  if (!doc.is_object()) complain("expected an object");
  for (const auto& [key, value] : doc.items())
    if (key != "description" && key != "frequency" && key != "tagged_tlb" && key != "time_slice" &&
        key != "primitives" && key != "idle_states" && key != "idle_exit_spread" && key != "calibration")
      complain("unknown key \"" + key +
               "\"; accepted: description, frequency, tagged_tlb, time_slice, primitives, idle_states, "
               "idle_exit_spread, calibration");
  for (const char* key : {"description", "frequency", "tagged_tlb", "primitives"})
    if (!doc.contains(key)) complain(std::string("missing key \"") + key + "\"");
  auto field = [&](const json& entry, const std::string& name) -> const json& {
    if (!entry.is_object() || !entry.contains("value") || !entry.contains("source"))
      complain("\"" + name + "\" must be {\"value\": ..., \"source\": \"...\"}");
    return entry.at("value");
  };
  const json& hz = field(doc.at("frequency"), "frequency");
  if (!hz.is_string() || !parse_frequency_hz(hz.get<std::string>()))
    complain("frequency must be like \"3GHz\"");
  if (double f = *parse_frequency_hz(hz.get<std::string>()); f < kMinFrequencyHz || f > kMaxFrequencyHz)
    complain("frequency must be " + frequency_range_text() + ", got " + hz.dump());
  if (!field(doc.at("tagged_tlb"), "tagged_tlb").is_boolean()) complain("tagged_tlb must be true or false");
  if (doc.contains("time_slice")) {
    const json& slice = field(doc.at("time_slice"), "time_slice");
    auto cycles = slice.is_string() ? parse_time_cycles(slice.get<std::string>(),
                                                        *parse_frequency_hz(hz.get<std::string>()))
                                    : std::nullopt;
    if (!cycles || *cycles == 0)
      complain("time_slice must be a duration above 0 such as \"4ms\", got " + slice.dump() +
               " (at most 2^50 cycles at the preset's frequency)");
  }
  if (doc.contains("idle_exit_spread")) {
    const json& spread = field(doc.at("idle_exit_spread"), "idle_exit_spread");
    if (!spread.is_number() || spread.get<double>() < 0 || spread.get<double>() > kMaxIdleExitSpread)
      complain("idle_exit_spread must be a number from 0 to " + format_number(kMaxIdleExitSpread) + ", got " +
               spread.dump());
  }
  const json& primitives = doc.at("primitives");
  auto names = primitive_names();
  for (const auto& [key, entry] : primitives.items()) {
    bool known = false;
    for (const auto& n : names) known = known || n == key;
    if (!known) complain("unknown primitive \"" + key + "\"" + did_you_mean(key, names));
    const json& value = field(entry, key);
    if (!value.is_number() || value.get<double>() < 0)
      complain("primitive \"" + key + "\" must be a number >= 0");
  }
  for (const auto& n : names)
    if (!primitives.contains(n)) complain("missing primitive \"" + n + "\"");
  if (doc.contains("idle_states"))
    read_idle_states(field(doc.at("idle_states"), "idle_states"),
                     primitives.at("idle_exit").at("value").get<double>(), "idle_exit",
                     [&](const std::string& what) { complain("idle_states.value" + what); });
}

} // namespace

const PrimitiveInfo& primitive_info(Primitive p) { return kPrimitives[static_cast<size_t>(p)]; }

const char* primitive_name(Primitive p) {
  if (p == Primitive::user) return "user";
  if (p == Primitive::lock_wait) return "lock_wait";
  if (p == Primitive::irq_handler) return "irq_handler";
  return primitive_info(p).name;
}

std::vector<std::string> primitive_names() {
  std::vector<std::string> out;
  for (const auto& info : kPrimitives) out.emplace_back(info.name);
  return out;
}

const std::vector<PresetInfo>& list_presets() { return builtin_presets().all(); }

double CostModel::cycles_per_byte(std::uint64_t transfer) const {
  return cycles_per_byte_at(2.0 * static_cast<double>(transfer));
}

double CostModel::cycles_per_byte_at(double footprint) const {
  double t = 1.0 / get(kCopyRates[0]);
  for (size_t k = 0; k < 3; ++k) {
    const double size = get(kCacheSizes[k]);
    const double step = 1.0 / get(kCopyRates[k + 1]) - 1.0 / get(kCopyRates[k]);
    const double share = size <= 0 ? 1.0 : std::clamp((footprint - size) / size, 0.0, 1.0);
    t += step * share;
  }
  return t;
}

double CostModel::remote_cycles_per_byte_at(double footprint) const {
  const double size = get(Primitive::cache_l3_bytes);
  const double remote = 1.0 / get(Primitive::copy_bytes_per_cycle_remote);
  const double memory = 1.0 / get(Primitive::copy_bytes_per_cycle_uncached);
  const double share = size <= 0 ? 1.0 : std::clamp((footprint - size) / size, 0.0, 1.0);
  return remote + (memory - remote) * share;
}

std::array<std::pair<Primitive, Cycles>, 4> CostModel::copy_split(std::uint64_t bytes,
                                                                  std::uint64_t transfer) const {
  return copy_split_at(bytes, 2.0 * static_cast<double>(std::max(bytes, transfer)));
}

std::array<std::pair<Primitive, Cycles>, 4> CostModel::copy_split_at(std::uint64_t bytes,
                                                                     double footprint) const {
  std::array<std::pair<Primitive, Cycles>, 4> out{};
  const double n = static_cast<double>(bytes);
  const double t = cycles_per_byte_at(footprint);
  // Cumulative whole cycles up to each level, so the parts add up to ceil(n * t).
  double before = 0;
  for (size_t k = 0; k < 4; ++k) {
    double level_t = std::min(t, 1.0 / get(kCopyRates[k]));
    if (k == 3) level_t = t;
    double upto = std::ceil(n * level_t);
    // 1 TiB at 1e-6 bytes/cycle would not even fit in Cycles: saturate past the clock limit.
    if (!(upto <= static_cast<double>(kClockLimitCycles))) upto = kClockLimitCycles + 1.0;
    upto = std::max(upto, before);
    out[k] = {kCopyRates[k], static_cast<Cycles>(upto - before)};
    before = upto;
  }
  return out;
}

Cycles CostModel::copy_cycles(std::uint64_t bytes, std::uint64_t transfer) const {
  if (bytes == 0) return 0;
  Cycles total = cycles(Primitive::copy_setup);
  for (const auto& part : copy_split(bytes, transfer)) total += part.second;
  return total;
}

const ParamTable& costs_table() {
  static const ParamTable table = [] {
    ParamTable t{"machine.costs", "the cost preset and per-primitive overrides", {}};
    t.params.push_back({"preset", ParamType::String, "teaching", "",
                        "built-in preset name (see `ipcsim list`) or path to a preset .json file"});
    t.params.push_back({"tagged_tlb",
                        ParamType::Bool,
                        nullptr,
                        "",
                        "TLB entries are tagged by address space (PCID/ASID): a switch flushes nothing",
                        {},
                        {},
                        {},
                        "the preset's"});
    ParamSpec slice{"time_slice", ParamType::Time, nullptr, "cycles or duration",
                    "the host's time slice: the rr scheduler's quantum when machine.scheduler sets none"};
    slice.min = 1;
    slice.default_note = "the preset's (none: rr's 10ms)";
    t.params.push_back(slice);
    ParamSpec spread{
        "idle_exit_spread", ParamType::Number, nullptr, "",
        "the spread of leaving idle: each exit takes the idle state's latency times exp(spread x "
        "a standard normal draw), from the seed (0: always the latency)"};
    spread.min = 0;
    spread.max = kMaxIdleExitSpread;
    spread.default_note = "the preset's (none: 0)";
    t.params.push_back(spread);
    ParamSpec states{"idle_states", ParamType::ObjectList, nullptr, "",
                     "deeper idle states: a core idle for target_residency cycles or more leaves the deepest "
                     "such state in exit_latency cycles, [{\"name\": \"C6\", \"target_residency\": CYCLES, "
                     "\"exit_latency\": CYCLES}] (and optionally \"ipi\": CYCLES, what waking a core in it "
                     "costs the waker), by increasing residency ([]: idle_exit always)"};
    states.default_note = "the preset's (none: idle_exit always)";
    t.params.push_back(states);
    for (size_t i = 0; i < kPrimitiveCount; ++i) {
      auto p = static_cast<Primitive>(i);
      ParamSpec spec{primitive_info(p).name, is_rate(p) ? ParamType::Number : ParamType::Integer, nullptr,
                     primitive_info(p).unit, primitive_info(p).description};
      spec.min = is_rate(p) ? 1e-6 : 0.0;
      if (is_size(p))
        spec.max = kMaxCacheBytes;
      else if (!is_rate(p))
        spec.max = static_cast<double>(kMaxPrimitiveCycles);
      spec.default_note = "the preset's";
      t.params.push_back(spec);
    }
    return t;
  }();
  return table;
}

double preset_frequency_hz(const std::string& preset, const std::string& path, const ReadContext& ctx) {
  PresetFile file = load_preset(preset, path, ctx);
  check_preset(file, ctx, path);
  return *parse_frequency_hz(file.document.at("frequency").at("value").get<std::string>());
}

void scale_to_clock(CostModel& model, double ratio, const std::string& path, const ReadContext& ctx) {
  auto scale = [&](double cycles, const std::string& what) {
    double scaled = std::round(cycles * ratio);
    if (scaled > static_cast<double>(kMaxPrimitiveCycles))
      fail_at(ctx.file, path,
              what + " scaled to the machine's clock is " + format_number(scaled) +
                  " cycles, above the largest accepted 4294967296 (2^32); lower machine.frequency or use "
                  "frequency_scaling \"cycles\"");
    return scaled;
  };
  for (size_t i = 0; i < kPrimitiveCount; ++i) {
    auto p = static_cast<Primitive>(i);
    if (is_size(p)) continue;
    if (is_rate(p))
      model.value[i] /= ratio;
    else
      model.value[i] = scale(model.value[i], primitive_info(p).name);
  }
  for (auto& state : model.idle_states) {
    state.target_residency = static_cast<Cycles>(scale(static_cast<double>(state.target_residency),
                                                       "idle state " + state.name + "'s target_residency"));
    state.exit_latency = static_cast<Cycles>(
        scale(static_cast<double>(state.exit_latency), "idle state " + state.name + "'s exit_latency"));
    if (state.ipi)
      state.ipi =
          static_cast<Cycles>(scale(static_cast<double>(*state.ipi), "idle state " + state.name + "'s ipi"));
  }
}

CostModel build_cost_model(const json& costs, const std::string& path, const ReadContext& ctx) {
  CostModel model;
  model.preset = costs.at("preset").get<std::string>();
  PresetFile file = load_preset(model.preset, join_path(path, "preset"), ctx);
  check_preset(file, ctx, join_path(path, "preset"));
  model.preset_hz = *parse_frequency_hz(file.document.at("frequency").at("value").get<std::string>());
  model.tagged_tlb = file.document.at("tagged_tlb").at("value").get<bool>();
  if (costs.contains("tagged_tlb")) model.tagged_tlb = costs.at("tagged_tlb").get<bool>();
  if (file.document.contains("time_slice")) model.time_slice = file.document.at("time_slice").at("value");
  if (costs.contains("time_slice")) model.time_slice = costs.at("time_slice");
  if (file.document.contains("idle_exit_spread"))
    model.idle_exit_spread = file.document.at("idle_exit_spread").at("value").get<double>();
  if (costs.contains("idle_exit_spread")) model.idle_exit_spread = costs.at("idle_exit_spread").get<double>();
  for (size_t i = 0; i < kPrimitiveCount; ++i) {
    const char* name = kPrimitives[i].name;
    const json& source =
        costs.contains(name) ? costs.at(name) : file.document.at("primitives").at(name).at("value");
    model.value[i] = source.get<double>();
    if (!is_rate(static_cast<Primitive>(i)) && model.value[i] != std::floor(model.value[i])) {
      if (!costs.contains(name)) // the preset file's mistake, not the scenario's
        throw UserError("preset file \"" + model.preset + "\": at primitives." + name +
                        ".value: cycles must be a whole number, got " + source.dump());
      fail_at(ctx.file, join_path(path, name),
              std::string("cycles must be a whole number, got ") + source.dump());
    }
    // A preset file's values are held to the bounds an override is (costs_table): cycles at most
    // kMaxPrimitiveCycles, copy rates at least 1e-6 bytes/cycle (copies make progress).
    const ParamSpec& spec = *costs_table().find(name);
    std::string bound = spec.min && model.value[i] < *spec.min   ? ">= " + format_number(*spec.min)
                        : spec.max && model.value[i] > *spec.max ? "<= " + format_number(*spec.max)
                                                                 : "";
    if (!bound.empty() && !costs.contains(name))
      throw UserError("preset file \"" + model.preset + "\": at primitives." + name +
                      ".value: invalid value " + source.dump() + "; expected a value " + bound);
  }
  // Consistency: a copy never gets faster as its data moves further out, and the caches grow
  // outwards. An override of one rate or size is checked against the preset's others, and the
  // message names them, so a user knows which to set together.
  auto name_of = [](Primitive p) { return std::string(primitive_info(p).name); };
  auto origin = [&](Primitive p) {
    return costs.contains(name_of(p)) ? std::string("set here") : "the preset's";
  };
  for (size_t k = 0; k + 1 < 4; ++k) {
    Primitive faster = kCopyRates[k], slower = kCopyRates[k + 1];
    if (model.get(slower) > model.get(faster)) {
      Primitive at = costs.contains(name_of(faster)) && !costs.contains(name_of(slower)) ? faster : slower;
      // Lowering a faster rate needs the slower ones lowered with it; raising a slower rate, the
      // faster ones raised.
      std::string others;
      if (at == faster)
        for (size_t j = k + 1; j < 4; ++j) others += (others.empty() ? "" : ", ") + name_of(kCopyRates[j]);
      else
        for (size_t j = 0; j <= k; ++j) others += (others.empty() ? "" : ", ") + name_of(kCopyRates[j]);
      // The remote rate lies between the L1 and memory rates: named too when it would leave them.
      const double remote_rate = model.get(Primitive::copy_bytes_per_cycle_remote);
      if ((at == faster && k == 0 && remote_rate > model.get(faster)) ||
          (at == slower && k + 2 == 4 && remote_rate < model.get(slower)))
        others += ", " + name_of(Primitive::copy_bytes_per_cycle_remote);
      fail_at(ctx.file, join_path(path, name_of(at)),
              name_of(slower) + " (" + format_number(model.get(slower)) + " bytes/cycle, " + origin(slower) +
                  ") exceeds " + name_of(faster) + " (" + format_number(model.get(faster)) +
                  " bytes/cycle, " + origin(faster) +
                  "): a copy cannot get faster as its data moves further from the core; the rates "
                  "must not increase from copy_bytes_per_cycle to copy_bytes_per_cycle_uncached (set " +
                  others + (at == faster ? " no higher" : " no lower") + " too)");
    }
  }
  // Lines from another core's cache come no faster than from this core's L1, and no slower than
  // from memory.
  const Primitive remote = Primitive::copy_bytes_per_cycle_remote;
  for (Primitive bound : {kCopyRates[0], kCopyRates[3]}) {
    const bool above = bound == kCopyRates[0];
    if (above ? model.get(remote) <= model.get(bound) : model.get(remote) >= model.get(bound)) continue;
    Primitive at = costs.contains(name_of(bound)) && !costs.contains(name_of(remote)) ? bound : remote;
    fail_at(ctx.file, join_path(path, name_of(at)),
            name_of(remote) + " (" + format_number(model.get(remote)) + " bytes/cycle, " + origin(remote) +
                ") " + (above ? "exceeds " : "is below ") + name_of(bound) + " (" +
                format_number(model.get(bound)) + " bytes/cycle, " + origin(bound) +
                "): lines from another core's cache come no faster than from this core's L1 cache and no "
                "slower than from memory: " +
                name_of(remote) + " must lie between " + name_of(kCopyRates[3]) + " and " +
                name_of(kCopyRates[0]));
  }
  for (size_t k = 0; k + 1 < 3; ++k) {
    Primitive inner = kCacheSizes[k], outer = kCacheSizes[k + 1];
    if (model.get(outer) < model.get(inner))
      fail_at(ctx.file, join_path(path, name_of(costs.contains(name_of(inner)) ? inner : outer)),
              name_of(outer) + " (" + format_number(model.get(outer)) + ", " + origin(outer) +
                  ") is smaller than " + name_of(inner) + " (" + format_number(model.get(inner)) + ", " +
                  origin(inner) + "): cache sizes must not decrease from cache_l1_bytes to cache_l3_bytes");
  }
  // Idle states: the override's, else the preset's, each checked against the idle_exit in force.
  const double idle_exit = model.get(Primitive::idle_exit);
  if (costs.contains("idle_states")) {
    const std::string at = join_path(path, "idle_states");
    model.idle_states =
        read_idle_states(costs.at("idle_states"), idle_exit, "idle_exit, " + origin(Primitive::idle_exit),
                         [&](const std::string& what) {
                           fail_at(ctx.file, what[0] == '.' ? at + what.substr(0, what.find(':')) : at,
                                   what.substr(what.find(':') + 2));
                         });
  } else if (file.document.contains("idle_states")) {
    model.idle_states = read_idle_states(file.document.at("idle_states").at("value"), idle_exit, "idle_exit",
                                         [&](const std::string& what) {
                                           fail_at(ctx.file, join_path(path, "idle_exit"),
                                                   "the preset's idle_states" + what +
                                                       " (idle_exit set here; lower it, or give "
                                                       "machine.costs.idle_states too)");
                                         });
  }
  return model;
}

} // namespace ipcsim
