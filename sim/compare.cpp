// `ipcsim compare`: one scenario's workload over each mechanism of a list, through the generic
// channel, printed side by side and written as CSV and JSON (docs/compare.md).
#include "experiment.hpp"

#include "cli.hpp"
#include "costs.hpp"
#include "error.hpp"
#include "ipc.hpp"
#include "limits.hpp"
#include "report.hpp"
#include "simulation.hpp"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

namespace ipcsim {

namespace {

// Counts the messages the mechanisms carried (one per send, however many partial writes it took:
// message_sent is called once per message).
class MessageCounter : public Observer {
public:
  void on_message_sent(const Thread&, const Message& message, const std::string&, Cycles) override {
    ++messages;
    bytes += message.bytes;
  }
  std::uint64_t messages = 0, bytes = 0;
};

struct MechanismRun {
  std::string mechanism;
  Summary summary;
  std::vector<const Kernel*> kernels;
  std::unique_ptr<Scenario> scenario;
  std::unique_ptr<Simulation> simulation;
  std::uint64_t messages = 0, message_bytes = 0, context_switches = 0;
  bool deadlocked = false;
  double per_message(double value) const { return messages ? value / static_cast<double>(messages) : 0.0; }
  std::vector<std::pair<std::string, Cycles>> primitives; // declaration order, nonzero only
};

// The scenario text with every channel carried by `mechanism`: a channel keeps the parameters the
// mechanism declares and drops the others, each named in a note.
std::string with_mechanism(const json& doc, const std::string& mechanism, std::vector<std::string>& notes) {
  json changed = doc;
  const MechanismDecl* decl = find_mechanism(mechanism);
  for (auto& channel : changed.at("channels")) {
    if (!channel.is_object()) continue; // the loader names the mistake
    std::vector<std::string> dropped;
    for (const auto& [key, value] : channel.items())
      if (!channel_table().find(key) && !decl->params.find(key)) dropped.push_back(key);
    for (const auto& key : dropped) {
      notes.push_back("channel " + channel.value("name", std::string("?")) + ": \"" + key + "\" is not a " +
                      mechanism + " parameter; " + mechanism + "'s default applies");
      channel.erase(key);
    }
    channel["mechanism"] = mechanism;
  }
  return changed.dump();
}

const char* kTooBigErrors[] = {"EMSGSIZE", "EINVAL"};

MechanismRun run_one(const std::string& file, const json& doc, const std::string& mechanism,
                     const LoadOptions& load, std::ostream& err) {
  MechanismRun run;
  run.mechanism = mechanism;
  std::vector<std::string> notes;
  std::string text = with_mechanism(doc, mechanism, notes);
  for (const auto& note : notes) err << "note: " << file << ": under " << mechanism << ": " << note << "\n";
  try {
    run.scenario = load_scenario_text(text, file, load);
  } catch (const UserError& e) {
    throw UserError(std::string(e.what()) + " (under " + mechanism + ")");
  }
  run.simulation = std::make_unique<Simulation>(run.scenario->machines);
  MessageCounter counter;
  run.simulation->machine(0).subscribe(counter);
  run.simulation->run();
  if (std::string error = run.simulation->runtime_error(); !error.empty())
    throw UserError(file + ": under " + mechanism + ": " + error);
  const Kernel& kernel = *run.simulation->machines().front();
  // A message the mechanism refuses as too large fails every send of that size: the comparison
  // would compare nothing there.
  for (const auto& f : failed_calls(kernel))
    if (f.op == "send" &&
        std::find(std::begin(kTooBigErrors), std::end(kTooBigErrors), f.error) != std::end(kTooBigErrors))
      throw UserError(file + ": under " + mechanism + ": " + f.thread + "'s send failed with " + f.error +
                      " (" + std::to_string(f.count) + (f.count == 1 ? " time" : " times") +
                      "): the message is larger than " + mechanism +
                      " takes (ipcsim list mechanisms gives its limits); leave " + mechanism +
                      " out, or make the messages smaller");
  run.kernels.push_back(&kernel);
  run.summary = summarize(*run.scenario, kernel);
  run.messages = counter.messages;
  run.message_bytes = counter.bytes;
  run.deadlocked = run.simulation->deadlocked();
  for (const auto& core : run.summary.per_core) run.context_switches += core.context_switches;
  std::map<std::string, Cycles> by_primitive;
  for (const auto& b : run.summary.breakdown) by_primitive[b.primitive] += b.cycles;
  // The preset's primitives, then the lock waits and interrupt handlers (times, not preset values).
  std::vector<std::string> names = primitive_names();
  names.emplace_back(primitive_name(Primitive::lock_wait));
  names.emplace_back(primitive_name(Primitive::irq_handler));
  for (const auto& name : names)
    if (auto found = by_primitive.find(name); found != by_primitive.end() && found->second > 0)
      run.primitives.emplace_back(name, found->second);
  return run;
}

std::string percent1(Cycles part, Cycles whole) {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%.1f",
                whole ? 100.0 * static_cast<double>(part) / static_cast<double>(whole) : 0.0);
  return buffer;
}

std::string pad_left(const std::string& text, std::size_t width) {
  std::size_t columns = 0;
  for (unsigned char c : text) columns += (c & 0xC0) != 0x80;
  return columns >= width ? text : std::string(width - columns, ' ') + text;
}

std::string pad_right(const std::string& text, std::size_t width) {
  return text.size() >= width ? text : text + std::string(width - text.size(), ' ');
}

void print_comparison(std::ostream& out, const std::string& file, const std::vector<MechanismRun>& runs) {
  const Summary& first = runs.front().summary;
  out << "ipcsim " << ipcsim_version() << " compare: " << file << " (seed " << first.seed << ")\n";
  out << "machine: " << first.cores << (first.cores == 1 ? " core" : " cores") << " at "
      << format_hz(first.hz) << ", costs " << first.costs_preset << "\n\n";
  // Rows: a label and a value per mechanism.
  std::vector<std::pair<std::string, std::vector<std::string>>> rows;
  auto row = [&](const std::string& label, auto value) {
    std::vector<std::string> cells;
    for (const auto& r : runs) cells.push_back(value(r));
    rows.emplace_back(label, cells);
  };
  row("result", [](const MechanismRun& r) { return std::string(r.deadlocked ? "deadlock" : "completed"); });
  row("simulated time", [](const MechanismRun& r) {
    return format_time_fit(static_cast<double>(r.summary.end), r.summary.hz);
  });
  // Intervals in the order the first run names them.
  for (const auto& interval : first.intervals) {
    auto stat = [&](const MechanismRun& r) -> const IntervalStats* {
      for (const auto& i : r.summary.intervals)
        if (i.name == interval.name && i.count > 0) return &i;
      return nullptr;
    };
    for (const char* which : {"p50", "p99", "mean"})
      row(interval.name + " " + which, [&](const MechanismRun& r) {
        const IntervalStats* s = stat(r);
        if (!s) return std::string("-");
        double cycles = std::string(which) == "p50"   ? static_cast<double>(s->p50)
                        : std::string(which) == "p99" ? static_cast<double>(s->p99)
                                                      : s->mean_cycles;
        return format_time_fit(cycles, r.summary.hz);
      });
    if (interval.bytes)
      row(interval.name + " MB/s", [&](const MechanismRun& r) {
        const IntervalStats* s = stat(r);
        return s ? fixed3(s->bytes_per_second / 1e6) : std::string("-");
      });
  }
  row("messages", [](const MechanismRun& r) { return std::to_string(r.messages); });
  row("messages per second", [](const MechanismRun& r) {
    return r.summary.end
               ? fixed3(static_cast<double>(r.messages) * r.summary.hz / static_cast<double>(r.summary.end))
               : std::string("-");
  });
  row("CPU cycles per message", [](const MechanismRun& r) {
    return fixed3(r.per_message(static_cast<double>(r.summary.breakdown_cycles)));
  });
  row("context switches per message",
      [](const MechanismRun& r) { return fixed3(r.per_message(static_cast<double>(r.context_switches))); });
  std::vector<std::string> primitives;
  std::vector<std::string> names = primitive_names();
  names.emplace_back(primitive_name(Primitive::lock_wait));
  names.emplace_back(primitive_name(Primitive::irq_handler));
  for (const auto& name : names)
    for (const auto& r : runs)
      if (std::any_of(r.primitives.begin(), r.primitives.end(),
                      [&](const auto& p) { return p.first == name; })) {
        primitives.push_back(name);
        break;
      }
  std::size_t heading = rows.size();
  for (const auto& name : primitives)
    row("  " + name, [&](const MechanismRun& r) {
      for (const auto& [p, cycles] : r.primitives)
        if (p == name) return fixed3(r.per_message(static_cast<double>(cycles)));
      return std::string("0.000");
    });
  std::size_t label_width = 30;
  for (const auto& [label, cells] : rows) label_width = std::max(label_width, label.size() + 2);
  std::vector<std::size_t> widths;
  for (std::size_t c = 0; c < runs.size(); ++c) {
    std::size_t w = runs[c].mechanism.size() + 2;
    for (const auto& [label, cells] : rows) w = std::max(w, cells[c].size() + 2);
    widths.push_back(std::max<std::size_t>(w, 14));
  }
  out << pad_right("", label_width);
  for (std::size_t c = 0; c < runs.size(); ++c) out << pad_left(runs[c].mechanism, widths[c]);
  out << "\n";
  for (std::size_t i = 0; i < rows.size(); ++i) {
    if (i == heading) out << "CPU cycles per message, by primitive\n";
    out << pad_right(rows[i].first, label_width);
    for (std::size_t c = 0; c < runs.size(); ++c) out << pad_left(rows[i].second[c], widths[c]);
    out << "\n";
  }
}

json mechanism_json(const MechanismRun& r) {
  const Summary& s = r.summary;
  json intervals = json::array();
  for (const auto& i : s.intervals) intervals.push_back(interval_json(i, s.hz));
  json primitives = json::array();
  for (const auto& [name, cycles] : r.primitives)
    primitives.push_back(
        {{"primitive", name},
         {"cycles", cycles},
         {"cycles_per_message", std::round(r.per_message(static_cast<double>(cycles)) * 1000) / 1000},
         {"percent", s.breakdown_cycles ? std::round(1000.0 * static_cast<double>(cycles) /
                                                     static_cast<double>(s.breakdown_cycles)) /
                                              10.0
                                        : 0.0}});
  double mps = s.end ? static_cast<double>(r.messages) * s.hz / static_cast<double>(s.end) : 0.0;
  return {{"mechanism", r.mechanism},
          {"result", r.deadlocked ? "deadlock" : "completed"},
          {"scenario_hash", "fnv1a64:" + s.scenario_hash},
          {"hz", s.hz},
          {"simulated_cycles", s.end},
          {"simulated_ns", std::round(static_cast<double>(s.end) * 1e9 / s.hz * 1000) / 1000},
          {"messages", r.messages},
          {"message_bytes", r.message_bytes},
          {"busy_cycles", s.breakdown_cycles},
          {"cycles_per_message",
           std::round(r.per_message(static_cast<double>(s.breakdown_cycles)) * 1000) / 1000},
          {"context_switches", r.context_switches},
          {"switches_per_message",
           std::round(r.per_message(static_cast<double>(r.context_switches)) * 1000) / 1000},
          {"messages_per_second", std::round(mps * 1000) / 1000},
          {"intervals", intervals},
          {"primitives", primitives}};
}

void write_comparison(const std::string& dir, const CompareOptions& options,
                      const std::vector<MechanismRun>& runs) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw UserError("--out " + dir + ": cannot create the directory: " + ec.message());
  auto open = [&](const std::string& name) {
    std::ofstream file(fs::path(dir) / name, std::ios::binary);
    if (!file) throw UserError("--out " + dir + ": cannot write " + name + ": " + std::strerror(errno));
    return file;
  };
  json mechanisms = json::array();
  for (const auto& r : runs) mechanisms.push_back(mechanism_json(r));
  {
    json context = {{"ipcsim_version", ipcsim_version()},
                    {"git_revision", ipcsim_git_revision()},
                    {"scenario_file", options.scenario_file},
                    {"seed", runs.front().summary.seed},
                    {"sets", options.load.sets}};
    auto file = open("compare.json");
    file << json{{"context", context}, {"mechanisms", mechanisms}}.dump(2) << "\n";
  }
  {
    auto file = open("mechanisms.csv");
    file << "mechanism,result,scenario_hash,simulated_cycles,simulated_ns,messages,message_bytes,busy_cycles,"
            "cycles_per_message,context_switches,switches_per_message,messages_per_second\n";
    for (const auto& r : runs) {
      const Summary& s = r.summary;
      file << r.mechanism << "," << (r.deadlocked ? "deadlock" : "completed")
           << ",fnv1a64:" << s.scenario_hash << "," << s.end << ","
           << fixed3(static_cast<double>(s.end) * 1e9 / s.hz) << "," << r.messages << "," << r.message_bytes
           << "," << s.breakdown_cycles << ","
           << fixed3(r.per_message(static_cast<double>(s.breakdown_cycles))) << "," << r.context_switches
           << "," << fixed3(r.per_message(static_cast<double>(r.context_switches))) << ","
           << fixed3(s.end ? static_cast<double>(r.messages) * s.hz / static_cast<double>(s.end) : 0.0)
           << "\n";
    }
  }
  {
    auto file = open("intervals.csv");
    file << "mechanism," << interval_csv_header() << "\n";
    for (const auto& r : runs)
      for (const auto& i : r.summary.intervals)
        file << r.mechanism << "," << interval_csv_row(i, r.summary.hz) << "\n";
  }
  {
    auto file = open("primitives.csv");
    file << "mechanism,primitive,cycles,cycles_per_message,percent\n";
    for (const auto& r : runs)
      for (const auto& [name, cycles] : r.primitives)
        file << r.mechanism << "," << name << "," << cycles << ","
             << fixed3(r.per_message(static_cast<double>(cycles))) << ","
             << percent1(cycles, r.summary.breakdown_cycles) << "\n";
  }
  for (const auto& r : runs) {
    std::vector<Summary> summaries{r.summary};
    write_outputs((fs::path(dir) / "runs" / r.mechanism).string(), summaries, r.kernels);
  }
}

} // namespace

int run_compare(const CompareOptions& options, std::ostream& out, std::ostream& err) {
  const std::string& file = options.scenario_file;
  if (options.mechanisms.empty())
    throw UserError("--mechanisms: expected a list of mechanisms, such as pipe,sysv_msg; mechanisms: " +
                    join_list(mechanism_names()));
  std::set<std::string> seen;
  for (const auto& m : options.mechanisms) {
    if (!find_mechanism(m))
      throw UserError("--mechanisms: unknown mechanism \"" + m + "\"" + did_you_mean(m, mechanism_names()) +
                      "; mechanisms: " + join_list(mechanism_names()));
    if (!seen.insert(m).second) throw UserError("--mechanisms: \"" + m + "\" is listed twice");
  }
  for (const auto& set : options.load.sets) {
    auto path = set.substr(0, set.find('='));
    if (path.rfind("channels.", 0) == 0 && path.size() > 10 && path.substr(path.size() - 10) == ".mechanism")
      throw UserError("--set " + set +
                      ": compare sets every channel's mechanism itself, from --mechanisms; leave "
                      "this --set out");
  }
  // The scenario as given (with --set) must load; then its channels are what compare changes.
  auto base = load_scenario(file, options.load);
  if (base->machines.size() > 1)
    throw UserError(file + ": compare runs one machine; this scenario lists several \"machines\"");
  if (base->model().channels.empty())
    throw UserError(file +
                    ": compare runs the scenario's generic channels over each mechanism, and this scenario "
                    "declares no \"channels\" (see docs/scripts.md, the generic channel)");
  // The text again, with the sets applied by the loader's own reading: the loader gets the file's
  // text with each channel changed, and the same --set, --seed and limits.
  json doc = json::parse(read_input_file(file, "scenario file", options.load.limits.input_bytes));
  if (!doc.contains("channels") || !doc.at("channels").is_array())
    throw UserError(file +
                    ": compare changes the channels the file declares, and --set cannot add them: declare "
                    "\"channels\" in the file");
  std::vector<MechanismRun> runs;
  for (const auto& m : options.mechanisms) runs.push_back(run_one(file, doc, m, options.load, err));
  if (!options.quiet) print_comparison(out, file, runs);
  if (!options.out_dir.empty()) write_comparison(options.out_dir, options, runs);
  bool deadlock = std::any_of(runs.begin(), runs.end(), [](const MechanismRun& r) { return r.deadlocked; });
  if (deadlock) {
    err << "error: " << file << ": the simulated system deadlocked under";
    for (const auto& r : runs)
      if (r.deadlocked) err << " " << r.mechanism;
    err << " (ipcsim run with --set channels.NAME.mechanism=... shows the report)\n";
    return kExitDeadlock;
  }
  return kExitOk;
}

} // namespace ipcsim
