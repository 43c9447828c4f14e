#include "costs.hpp"

#include "error.hpp"
#include "registry.hpp"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace ipcsim {

namespace {

const PrimitiveInfo kPrimitives[] = {
#define IPCSIM_INFO(name, unit, description) {#name, unit, description},
    IPCSIM_PRIMITIVES(IPCSIM_INFO)
#undef IPCSIM_INFO
};

bool is_rate(Primitive p) {
  return p == Primitive::copy_bytes_per_cycle || p == Primitive::copy_bytes_per_cycle_uncached;
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

// Preset files are checked as strictly as scenarios: every primitive present, nothing unknown.
void check_preset(const PresetFile& preset, const ReadContext& ctx, const std::string& path) {
  const json& doc = preset.document;
  auto complain = [&](const std::string& what) { fail_at(ctx.file, path, preset.origin + ": " + what); };
  if (!doc.is_object()) complain("expected an object");
  for (const auto& [key, value] : doc.items())
    if (key != "description" && key != "frequency" && key != "tagged_tlb" && key != "primitives")
      complain("unknown key \"" + key + "\"; accepted: description, frequency, tagged_tlb, primitives");
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
}

} // namespace

const PrimitiveInfo& primitive_info(Primitive p) { return kPrimitives[static_cast<size_t>(p)]; }

const char* primitive_name(Primitive p) { return p == Primitive::user ? "user" : primitive_info(p).name; }

std::vector<std::string> primitive_names() {
  std::vector<std::string> out;
  for (const auto& info : kPrimitives) out.emplace_back(info.name);
  return out;
}

const std::vector<PresetInfo>& list_presets() { return builtin_presets().all(); }

Cycles CostModel::copy_cycles(std::uint64_t bytes) const {
  if (bytes == 0) return 0;
  bool cached = static_cast<double>(bytes) <= value[static_cast<size_t>(Primitive::copy_cache_bytes)];
  double rate = value[static_cast<size_t>(cached ? Primitive::copy_bytes_per_cycle
                                                 : Primitive::copy_bytes_per_cycle_uncached)];
  double byte_cycles = std::ceil(static_cast<double>(bytes) / rate);
  // 1 TiB at 1e-6 bytes/cycle would not even fit in Cycles: saturate past the clock limit.
  if (!(byte_cycles <= static_cast<double>(kClockLimitCycles))) byte_cycles = kClockLimitCycles + 1.0;
  return cycles(Primitive::copy_setup) + static_cast<Cycles>(byte_cycles);
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
    for (size_t i = 0; i < kPrimitiveCount; ++i) {
      auto p = static_cast<Primitive>(i);
      ParamSpec spec{primitive_info(p).name, is_rate(p) ? ParamType::Number : ParamType::Integer, nullptr,
                     primitive_info(p).unit, primitive_info(p).description};
      spec.min = is_rate(p) ? 1e-6 : 0.0;
      if (p == Primitive::copy_cache_bytes)
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

CostModel build_cost_model(const json& costs, const std::string& path, const ReadContext& ctx) {
  CostModel model;
  model.preset = costs.at("preset").get<std::string>();
  PresetFile file = load_preset(model.preset, join_path(path, "preset"), ctx);
  check_preset(file, ctx, join_path(path, "preset"));
  model.preset_hz = *parse_frequency_hz(file.document.at("frequency").at("value").get<std::string>());
  model.tagged_tlb = file.document.at("tagged_tlb").at("value").get<bool>();
  if (costs.contains("tagged_tlb")) model.tagged_tlb = costs.at("tagged_tlb").get<bool>();
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
  // Consistency: the uncached rate cannot beat the cached one.
  if (model.value[static_cast<size_t>(Primitive::copy_bytes_per_cycle_uncached)] >
      model.value[static_cast<size_t>(Primitive::copy_bytes_per_cycle)])
    fail_at(ctx.file, join_path(path, "copy_bytes_per_cycle_uncached"),
            "the uncached copy rate exceeds the cached one (" +
                json(model.value[static_cast<size_t>(Primitive::copy_bytes_per_cycle)]).dump() +
                " bytes/cycle); set it no higher");
  return model;
}

} // namespace ipcsim
