#include "report_dir.hpp"

#include "error.hpp"
#include "figures.hpp"
#include "limits.hpp"
#include "params.hpp"
#include "report.hpp"
#include "scenario.hpp"
#include "simulation.hpp"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <sstream>

namespace ipcsim {

namespace {

namespace fs = std::filesystem;

std::string read_text(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw UserError(path.string() + ": cannot read: " + std::strerror(errno));
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

json read_json(const fs::path& path) {
  try {
    return json::parse(read_text(path));
  } catch (const json::parse_error& e) {
    throw UserError(path.string() + ": not valid JSON (" + e.what() + ")");
  }
}

// A CSV file as RFC 4180 writes it: a header row, then rows of cells (quoted cells may hold commas,
// quotes doubled).
struct Csv {
  std::vector<std::string> header;
  std::vector<std::vector<std::string>> rows;
  std::string file;
  std::optional<std::size_t> column(const std::string& name) const {
    for (std::size_t i = 0; i < header.size(); ++i)
      if (header[i] == name) return i;
    return std::nullopt;
  }
  std::size_t need(const std::string& name) const {
    auto c = column(name);
    if (!c) throw UserError(file + ": no column \"" + name + "\" (columns: " + join_list(header) + ")");
    return *c;
  }
};

Csv read_csv(const fs::path& path) {
  std::string text = read_text(path);
  Csv csv;
  csv.file = path.string();
  std::vector<std::string> row;
  std::string cell;
  bool quoted = false, any = false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (quoted) {
      if (c == '"' && i + 1 < text.size() && text[i + 1] == '"')
        cell += '"', ++i;
      else if (c == '"')
        quoted = false;
      else
        cell += c;
    } else if (c == '"') {
      quoted = true, any = true;
    } else if (c == ',') {
      row.push_back(cell), cell.clear(), any = true;
    } else if (c == '\n' || c == '\r') {
      if (c == '\r' && i + 1 < text.size() && text[i + 1] == '\n') ++i;
      if (any || !cell.empty()) row.push_back(cell);
      if (!row.empty()) (csv.header.empty() ? csv.header : (csv.rows.emplace_back(), csv.rows.back())) = row;
      row.clear(), cell.clear(), any = false;
    } else {
      cell += c, any = true;
    }
  }
  if (quoted) throw UserError(csv.file + ": a quoted cell is not closed");
  if (any || !cell.empty()) row.push_back(cell);
  if (!row.empty()) (csv.header.empty() ? csv.header : (csv.rows.emplace_back(), csv.rows.back())) = row;
  if (csv.header.empty()) throw UserError(csv.file + ": empty (expected a header row)");
  for (std::size_t r = 0; r < csv.rows.size(); ++r)
    if (csv.rows[r].size() != csv.header.size())
      throw UserError(csv.file + ": row " + std::to_string(r + 2) + " has " +
                      std::to_string(csv.rows[r].size()) + " cells, the header " +
                      std::to_string(csv.header.size()));
  return csv;
}

std::optional<double> number(const std::string& text) {
  if (text.empty()) return std::nullopt;
  char* end = nullptr;
  double v = std::strtod(text.c_str(), &end);
  if (end != text.c_str() + text.size() || !std::isfinite(v)) return std::nullopt;
  return v;
}

// A size in a name or a value: "8", "8B", "64KiB", "1MiB", "4 KiB" (the number may follow a '-').
std::optional<double> size_of(const std::string& text) {
  static const std::vector<std::pair<std::string, double>> units{
      {"GiB", 1073741824.0}, {"MiB", 1048576.0}, {"KiB", 1024.0}, {"B", 1.0}, {"", 1.0}};
  for (const auto& [unit, factor] : units) {
    if (text.size() <= unit.size() || text.compare(text.size() - unit.size(), unit.size(), unit) != 0)
      continue;
    std::string head = text.substr(0, text.size() - unit.size());
    while (!head.empty() && head.back() == ' ') head.pop_back();
    std::size_t start = head.size();
    while (start > 0 && std::isdigit(static_cast<unsigned char>(head[start - 1]))) --start;
    if (start == head.size()) continue;
    if (start > 0 && head[start - 1] != '-' && head[start - 1] != '_' && head[start - 1] != ' ' &&
        unit.empty())
      continue; // "p2" is not a size
    return std::stod(head.substr(start)) * factor;
  }
  return std::nullopt;
}

// The interval's name without its size ("rtt-8B" -> "rtt").
std::string family(const std::string& name) {
  std::string out = name;
  while (!out.empty() && !std::isdigit(static_cast<unsigned char>(out.back()))) out.pop_back();
  while (!out.empty() && std::isdigit(static_cast<unsigned char>(out.back()))) out.pop_back();
  while (!out.empty() && (out.back() == '-' || out.back() == '_' || out.back() == ' ')) out.pop_back();
  return out.empty() ? name : out;
}

// Nanoseconds in the unit that suits the largest value.
struct TimeUnit {
  const char* name;
  double per_ns;
};
TimeUnit time_unit(double max_ns) {
  if (max_ns >= 1e9) return {"s", 1e-9};
  if (max_ns >= 1e6) return {"ms", 1e-6};
  if (max_ns >= 1e3) return {"µs", 1e-3};
  return {"ns", 1.0};
}

std::string fixed(double v, int digits) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

double get_number(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_number() ? it->get<double>() : 0.0;
}

// ---- The document ------------------------------------------------------------------------------

struct Figure {
  std::string file; // fig-NAME.svg
  std::string title, caption;
  std::string svg;
};

struct Table {
  std::string title;
  std::vector<std::string> header;
  std::vector<std::vector<std::string>> rows;
};

struct Document {
  std::string kind, title;
  std::vector<std::string> what; // "what was run", one line each
  std::vector<Figure> figures;
  std::vector<Table> tables;
  std::vector<std::string> notes; // figures left out, and why
};

void add_figure(Document& doc, const std::string& name, const LineChart& chart) {
  doc.figures.push_back({"fig-" + name + ".svg", chart.title, chart.caption, render(chart)});
}
void add_figure(Document& doc, const std::string& name, const BarChart& chart) {
  doc.figures.push_back({"fig-" + name + ".svg", chart.title, chart.caption, render(chart)});
}
void add_figure(Document& doc, const std::string& name, const Timeline& chart) {
  doc.figures.push_back({"fig-" + name + ".svg", chart.title, chart.caption, render(chart)});
}

// ---- One run --------------------------------------------------------------------------------------

// One machine's summary (summary.json, or one entry of its "machines").
struct MachineSummary {
  std::string name; // "" with one machine
  json summary;
  double hz = 1e9;
};

std::vector<MachineSummary> machines_of(const json& summary) {
  std::vector<MachineSummary> out;
  auto hz_of = [](const json& s) {
    double cycles = get_number(s, "simulated_cycles"), ns = get_number(s, "simulated_ns");
    return cycles > 0 && ns > 0 ? cycles / ns * 1e9 : 1e9;
  };
  if (summary.contains("machines") && summary["machines"].is_array()) {
    for (const auto& m : summary["machines"]) out.push_back({m.value("machine", std::string()), m, hz_of(m)});
  } else {
    out.push_back({"", summary, hz_of(summary)});
  }
  return out;
}

// Latency and throughput against the size the interval names carry, one series per family (and
// machine or mechanism): what a ping-pong or stream scenario measures.
struct SizedPoint {
  std::string series;
  double size, p50_ns, bytes_per_second;
};

void size_figures(Document& doc, const std::vector<SizedPoint>& points, const std::string& what) {
  if (points.empty()) return;
  double max_ns = 0;
  for (const auto& p : points) max_ns = std::max(max_ns, p.p50_ns);
  TimeUnit unit = time_unit(max_ns);
  std::map<std::string, Series> latency, throughput;
  std::vector<std::string> order;
  bool any_bytes = false;
  for (const auto& p : points) {
    if (!latency.count(p.series))
      order.push_back(p.series), latency[p.series].name = p.series, throughput[p.series].name = p.series;
    latency[p.series].points.push_back({p.size, p.p50_ns * unit.per_ns});
    if (p.bytes_per_second > 0) {
      throughput[p.series].points.push_back({p.size, p.bytes_per_second / 1e6});
      any_bytes = true;
    }
  }
  LineChart l;
  l.title = "Latency against message size";
  l.x = {"message size (bytes, log scale)", true, true};
  l.y = {std::string("interval time, p50 (") + unit.name + ", log scale)", true, false};
  for (const auto& s : order) l.series.push_back(latency[s]);
  l.caption = "Median (p50) time of each measured interval against the message size its name carries, per " +
              what + "; both axes logarithmic. " + doc.what.front();
  add_figure(doc, "latency", l);
  if (!any_bytes) {
    doc.notes.push_back("no throughput figure: the intervals carry no bytes (\"end\" without \"bytes\").");
    return;
  }
  LineChart t;
  t.title = "Throughput against message size";
  t.x = {"message size (bytes, log scale)", true, true};
  t.y = {"throughput (MB/s, 10^6 bytes per simulated second, log scale)", true, false};
  for (const auto& s : order)
    if (!throughput[s].points.empty()) t.series.push_back(throughput[s]);
  t.caption =
      "Bytes the intervals carried per simulated second of interval time, against the message size, per " +
      what + ". " + doc.what.front();
  add_figure(doc, "throughput", t);
}

// Intervals without sizes: their p50 as bars.
void interval_bars(Document& doc, const std::vector<std::pair<std::string, double>>& p50_ns,
                   const std::string& what) {
  if (p50_ns.empty()) return;
  double max_ns = 0;
  for (const auto& [n, v] : p50_ns) max_ns = std::max(max_ns, v);
  TimeUnit unit = time_unit(max_ns);
  BarChart b;
  b.title = "Measured intervals";
  b.y_title = std::string("interval time, p50 (") + unit.name + ")";
  for (const auto& [name, v] : p50_ns) b.bars.push_back({name, {{"p50", v * unit.per_ns}}});
  b.caption = "Median (p50) time of each measured interval, " + what + ". " + doc.what.front();
  add_figure(doc, "intervals", b);
}

// Cycle breakdown: a bar per group, stacked by primitive.
BarChart breakdown_chart(const std::vector<std::pair<std::string, std::map<std::string, double>>>& groups,
                         const std::string& y_title) {
  // Primitives in order of their total, largest first, so the legend reads as a ranking.
  std::map<std::string, double> totals;
  for (const auto& [g, parts] : groups)
    for (const auto& [p, v] : parts) totals[p] += v;
  std::vector<std::string> primitives;
  for (const auto& [p, v] : totals)
    if (v > 0) primitives.push_back(p);
  std::stable_sort(primitives.begin(), primitives.end(),
                   [&](const std::string& a, const std::string& b) { return totals[a] > totals[b]; });
  BarChart b;
  b.y_title = y_title;
  for (const auto& [g, parts] : groups) {
    Bar bar{g, {}};
    for (const auto& p : primitives) {
      auto it = parts.find(p);
      bar.parts.push_back({p, it == parts.end() ? 0.0 : it->second});
    }
    b.bars.push_back(bar);
  }
  return b;
}

BarChart utilisation_chart(const std::vector<std::pair<std::string, double>>& cores) {
  BarChart b;
  b.title = "CPU utilisation";
  b.y_title = "share of the run (%)";
  for (const auto& [label, u] : cores)
    b.bars.push_back({label, {{"busy", u * 100}, {"idle", (1 - u) * 100}}});
  return b;
}

// A span of a thread on a core, recorded from a second run of the scenario.
class SpanLog : public Observer {
public:
  struct Open {
    std::string thread;
    Cycles start;
    bool open = false;
  };
  struct Done {
    std::size_t core;
    Cycles start, end;
    std::string thread;
  };
  explicit SpanLog(std::size_t cores) : open_(cores) {}
  void on_dispatch(const Core& core, const Thread& t, Cycles at) override {
    close(core.index, at);
    open_[core.index] = {t.display_name(), at, true};
  }
  void on_switch_out(const Core& core, const Thread&, Cycles at) override { close(core.index, at); }
  void on_thread_state(const Thread& t, ThreadState, ThreadState to, const WaitQueue*, Cycles at) override {
    if (to == ThreadState::Exited && t.last_core >= 0) close(static_cast<std::size_t>(t.last_core), at);
  }
  void close_all(Cycles at) {
    for (std::size_t c = 0; c < open_.size(); ++c) close(c, at);
  }
  std::vector<Done> spans;

private:
  void close(std::size_t core, Cycles at) {
    if (core >= open_.size() || !open_[core].open) return;
    spans.push_back({core, open_[core].start, std::max(at, open_[core].start), open_[core].thread});
    open_[core].open = false;
  }
  std::vector<Open> open_;
};

// The first milliseconds of a run, from a second run of its resolved scenario (the same scenario
// and seed give the same run), stopped at the window's end.
void timeline_figure(Document& doc, const json& summary, const MachineSummary& machine,
                     const std::string& dir) {
  const json* context = summary.contains("context") ? &summary["context"] : nullptr;
  if (!context || !context->contains("scenario")) {
    doc.notes.push_back("no timeline: summary.json has no context.scenario to run again.");
    return;
  }
  double end = get_number(machine.summary, "simulated_cycles");
  double window = std::min(end, machine.hz * 1e-3); // the first millisecond, or the whole run
  if (window <= 0) return;
  LoadOptions options;
  if (context->contains("seed") && (*context)["seed"].is_number_unsigned())
    options.seed = (*context)["seed"].get<std::uint64_t>();
  options.limits.max_time_seconds = (std::ceil(window) + 2) / machine.hz;
  options.limits.timeout_seconds = 60;
  std::unique_ptr<Scenario> scenario;
  try {
    scenario =
        load_scenario_text((*context)["scenario"].dump(), dir + "/summary.json (context.scenario)", options);
  } catch (const UserError& e) {
    doc.notes.push_back(std::string("no timeline: the scenario in summary.json does not load here: ") +
                        e.what());
    return;
  }
  std::size_t index = 0;
  for (std::size_t i = 0; i < scenario->machines.size(); ++i)
    if (scenario->machines[i].name == machine.name) index = i;
  Simulation simulation(scenario->machines);
  Kernel& kernel = simulation.machine(index);
  SpanLog log(kernel.cores().size());
  kernel.subscribe(log);
  simulation.run(); // stops at the window (an error we expect) or at the run's end
  log.close_all(static_cast<Cycles>(std::min(window, static_cast<double>(kernel.makespan()))));
  // Spans narrower than a pixel make a solid bar nobody can read: the window ends at the 200th.
  constexpr std::size_t kMaxSpans = 200;
  auto spans = log.spans;
  std::stable_sort(spans.begin(), spans.end(),
                   [](const auto& a, const auto& b) { return a.start < b.start; });
  double shown = window;
  if (spans.size() > kMaxSpans) {
    shown = static_cast<double>(spans[kMaxSpans - 1].end);
    spans.resize(kMaxSpans);
  }
  TimeUnit unit = time_unit(shown * 1e9 / machine.hz);
  double per_cycle = 1e9 / machine.hz * unit.per_ns;
  Timeline t;
  t.title = "Timeline: which thread ran on which core";
  t.x_title = std::string("simulated time (") + unit.name + ")";
  t.x_end = shown * per_cycle;
  for (std::size_t c = 0; c < kernel.cores().size(); ++c) t.rows.push_back({"core " + std::to_string(c), {}});
  for (const auto& s : spans)
    if (static_cast<double>(s.start) < shown)
      t.rows[s.core].spans.push_back({static_cast<double>(s.start) * per_cycle,
                                      std::min(static_cast<double>(s.end), shown) * per_cycle, s.thread});
  std::string span_text = fixed(shown * 1e9 / machine.hz * unit.per_ns, 3) + " " + unit.name;
  t.caption =
      "The first " + span_text + " of the run" +
      (machine.name.empty() ? std::string() : " (machine " + machine.name + ")") +
      ", drawn from a second run of the resolved scenario in summary.json with the same seed: a bar from "
      "each dispatch of a thread to its switch-out; gaps are idle time. " +
      doc.what.front() +
      " The whole run, with system calls and messages: `ipcsim run --trace` (docs/trace.md).";
  add_figure(doc, "timeline", t);
}

Document run_document(const std::string& dir) {
  json summary = read_json(fs::path(dir) / "summary.json");
  Document doc;
  doc.kind = "run";
  const json context = summary.value("context", json::object());
  std::string file = context.value("scenario_file", std::string("?"));
  doc.title = "ipcsim run: " + file;
  auto machines = machines_of(summary);
  {
    std::string what = "Run of " + file + " (seed " + context.value("seed", json(0)).dump() + ", scenario " +
                       context.value("scenario_hash", std::string("?")) + ", ipcsim " +
                       context.value("ipcsim_version", std::string("?")) + ").";
    doc.what.push_back(what);
    if (context.contains("scenario") && context["scenario"].contains("description"))
      doc.what.push_back(context["scenario"]["description"].get<std::string>());
  }
  std::vector<SizedPoint> sized;
  std::vector<std::pair<std::string, double>> unsized;
  std::vector<std::pair<std::string, std::map<std::string, double>>> breakdown;
  std::vector<std::pair<std::string, double>> cores;
  Table intervals{"Intervals", {"interval", "count", "mean (ns)", "p50 (ns)", "p99 (ns)", "max (ns)"}, {}};
  for (const auto& m : machines) {
    std::string prefix = m.name.empty() ? "" : m.name + ": ";
    for (const auto& i : m.summary.value("intervals", json::array())) {
      std::string name = i.value("name", std::string());
      double p50 = get_number(i, "p50_ns");
      if (auto size = size_of(name))
        sized.push_back({prefix + family(name), *size, p50, get_number(i, "bytes_per_second")});
      else
        unsized.push_back({prefix + name, p50});
      intervals.rows.push_back({prefix + name, i.value("count", json(0)).dump(),
                                fixed(get_number(i, "mean_ns"), 1), fixed(p50, 1),
                                fixed(get_number(i, "p99_ns"), 1), fixed(get_number(i, "max_ns"), 1)});
    }
    std::map<std::string, std::map<std::string, double>> by_activity;
    std::vector<std::string> activities;
    for (const auto& b : m.summary.value("breakdown", json::array())) {
      std::string a = prefix + b.value("activity", std::string());
      if (!by_activity.count(a)) activities.push_back(a);
      by_activity[a][b.value("primitive", std::string())] += get_number(b, "cycles");
    }
    for (const auto& a : activities) breakdown.push_back({a, by_activity[a]});
    for (const auto& c : m.summary.value("cores", json::array()))
      cores.push_back({prefix + "core " + c.value("core", json(0)).dump(), get_number(c, "utilisation")});
  }
  std::string what = machines.size() > 1 ? "interval family and machine" : "interval family";
  if (sized.size() >= 2) size_figures(doc, sized, what);
  if (!unsized.empty()) interval_bars(doc, unsized, "in this run");
  if (sized.empty() && unsized.empty())
    doc.notes.push_back("no latency figure: the run measured no interval.");
  if (!intervals.rows.empty()) doc.tables.push_back(intervals);
  if (!breakdown.empty()) {
    BarChart b = breakdown_chart(breakdown, "cycles");
    b.title = "Where the cycles went";
    b.caption =
        "Cycles of every core, by the op they were spent for (a bar each) and the cost primitive (the "
        "stack); `dispatch` is the kernel's switching work. " +
        doc.what.front();
    add_figure(doc, "breakdown", b);
  }
  if (!cores.empty()) {
    BarChart u = utilisation_chart(cores);
    u.caption = "Share of the run each core was busy (running a thread or the kernel for one) and idle. " +
                doc.what.front();
    add_figure(doc, "utilisation", u);
  }
  for (const auto& m : machines) timeline_figure(doc, summary, m, dir);
  return doc;
}

// ---- A comparison ---------------------------------------------------------------------------------

Document compare_document(const std::string& dir) {
  fs::path path = fs::path(dir) / "compare.json";
  json compare = read_json(path);
  if (!compare.contains("mechanisms") || !compare["mechanisms"].is_array())
    throw UserError(path.string() + ": no \"mechanisms\" list (expected what `ipcsim compare --out` writes, "
                                    "docs/compare.md)");
  Document doc;
  doc.kind = "compare";
  json context = compare.value("context", json::object());
  std::string file = context.value("scenario_file", std::string("?"));
  std::vector<std::string> names;
  for (const auto& m : compare["mechanisms"]) names.push_back(m.value("mechanism", std::string("?")));
  doc.title = "ipcsim compare: " + file;
  std::string sets;
  for (const auto& s : context.value("sets", json::array())) sets += " --set " + s.get<std::string>();
  doc.what.push_back("Comparison of " + join_list(names) + " running " + file + sets + " (seed " +
                     context.value("seed", json(0)).dump() + ", ipcsim " +
                     context.value("ipcsim_version", std::string("?")) + ").");
  std::vector<SizedPoint> sized;
  std::vector<std::pair<std::string, double>> unsized;
  std::vector<std::pair<std::string, std::map<std::string, double>>> breakdown;
  std::vector<std::pair<std::string, double>> cores;
  Table table{"Mechanisms",
              {"mechanism", "result", "messages", "cycles per message", "switches per message",
               "messages per second"},
              {}};
  for (const auto& m : compare["mechanisms"]) {
    std::string mech = m.value("mechanism", std::string("?"));
    table.rows.push_back({mech, m.value("result", std::string("?")), m.value("messages", json(0)).dump(),
                          fixed(get_number(m, "cycles_per_message"), 1),
                          fixed(get_number(m, "switches_per_message"), 3),
                          fixed(get_number(m, "messages_per_second"), 1)});
    for (const auto& i : m.value("intervals", json::array())) {
      std::string name = i.value("name", std::string());
      if (auto size = size_of(name))
        sized.push_back({mech, *size, get_number(i, "p50_ns"), get_number(i, "bytes_per_second")});
      else
        unsized.push_back({mech + ": " + name, get_number(i, "p50_ns")});
    }
    std::map<std::string, double> parts;
    for (const auto& p : m.value("primitives", json::array()))
      parts[p.value("primitive", std::string())] += get_number(p, "cycles_per_message");
    breakdown.push_back({mech, parts});
    fs::path run = fs::path(dir) / "runs" / mech / "summary.json";
    if (fs::exists(run))
      for (const auto& mm : machines_of(read_json(run)))
        for (const auto& c : mm.summary.value("cores", json::array()))
          cores.push_back({mech + " core " + c.value("core", json(0)).dump(), get_number(c, "utilisation")});
  }
  // Several families of sized intervals (rtt and one-way, say) would mix in one series: keep the
  // family in the series name when there is more than one.
  std::set<std::string> families;
  for (const auto& m : compare["mechanisms"])
    for (const auto& i : m.value("intervals", json::array()))
      if (size_of(i.value("name", std::string()))) families.insert(family(i.value("name", std::string())));
  if (families.size() > 1) {
    sized.clear();
    for (const auto& m : compare["mechanisms"])
      for (const auto& i : m.value("intervals", json::array())) {
        std::string name = i.value("name", std::string());
        if (auto size = size_of(name))
          sized.push_back({m.value("mechanism", std::string("?")) + " " + family(name), *size,
                           get_number(i, "p50_ns"), get_number(i, "bytes_per_second")});
      }
  }
  if (sized.size() >= 2) size_figures(doc, sized, "mechanism");
  if (!unsized.empty()) interval_bars(doc, unsized, "per mechanism");
  doc.tables.push_back(table);
  BarChart b = breakdown_chart(breakdown, "cycles per message");
  b.title = "Cycles per message, by primitive";
  b.caption =
      "Busy cycles of every core divided by the messages sent, per mechanism, stacked by cost primitive. " +
      doc.what.front();
  add_figure(doc, "breakdown", b);
  if (!cores.empty()) {
    BarChart u = utilisation_chart(cores);
    u.caption = "Share of each run every core was busy and idle, per mechanism. " + doc.what.front();
    add_figure(doc, "utilisation", u);
  } else {
    doc.notes.push_back("no utilisation figure: runs/MECHANISM/summary.json is missing.");
  }
  return doc;
}

// ---- A sweep ----------------------------------------------------------------------------------------

Document sweep_document(const std::string& dir) {
  json sweep = read_json(fs::path(dir) / "sweep.json");
  Csv points = read_csv(fs::path(dir) / "sweep.csv");
  Document doc;
  doc.kind = "sweep";
  std::string file = sweep.value("scenario_file", std::string("?"));
  doc.title = "ipcsim sweep: " + fs::path(file).filename().string();
  std::vector<std::string> paths;
  std::string vary;
  for (const auto& v : sweep.value("vary", json::array())) {
    paths.push_back(v.value("path", std::string()));
    std::vector<std::string> values;
    for (const auto& x : v.value("values", json::array()))
      values.push_back(x.is_string() ? x.get<std::string>() : x.dump());
    vary += " --vary " + paths.back() + "=" + join_list(values, ",");
  }
  if (paths.empty())
    throw UserError(dir + "/sweep.json: no \"vary\" list (expected what `ipcsim sweep --out` writes)");
  std::string sets;
  for (const auto& s : sweep.value("sets", json::array())) sets += " --set " + s.get<std::string>();
  doc.what.push_back("Sweep of " + file + vary + sets + " (" + std::to_string(points.rows.size()) +
                     " points, repeat " + sweep.value("repeat", json(1)).dump() + ", ipcsim " +
                     sweep.value("ipcsim_version", std::string("?")) + ").");
  // The x axis: the first varied path whose values are all numbers or sizes; the others name series.
  std::optional<std::size_t> x_path;
  bool x_bytes = false;
  for (std::size_t p = 0; p < paths.size() && !x_path; ++p) {
    std::size_t col = points.need(paths[p]);
    bool all = !points.rows.empty();
    bool units = false;
    for (const auto& row : points.rows) {
      if (number(row[col])) continue;
      if (size_of(row[col])) {
        units = true;
        continue;
      }
      all = false;
    }
    if (all)
      x_path = p, x_bytes = units || paths[p].find("size") != std::string::npos ||
                            paths[p].find("bytes") != std::string::npos;
  }
  std::size_t result_col = points.need("result");
  // Interval families: the NAME of every NAME.p50_ns column.
  std::vector<std::string> intervals;
  for (const auto& h : points.header)
    if (h.size() > 7 && h.compare(h.size() - 7, 7, ".p50_ns") == 0)
      intervals.push_back(h.substr(0, h.size() - 7));
  auto x_value = [&](const std::vector<std::string>& row) {
    const std::string& v = row[points.need(paths[*x_path])];
    if (auto n = number(v)) return *n;
    return size_of(v).value_or(0.0);
  };
  auto series_name = [&](const std::vector<std::string>& row, const std::string& interval) {
    std::string name = intervals.size() > 1 ? interval : "";
    for (std::size_t p = 0; p < paths.size(); ++p)
      if (!x_path || p != *x_path)
        name += (name.empty() ? "" : ", ") + paths[p] + "=" + row[points.need(paths[p])];
    return name.empty() ? (intervals.empty() ? std::string("run") : interval) : name;
  };
  Table table{"Points", {}, {}};
  table.header = {"point"};
  for (const auto& p : paths) table.header.push_back(p);
  table.header.push_back("seed");
  table.header.push_back("result");
  for (const auto& i : intervals) table.header.push_back(i + " p50 (ns)");
  for (const auto& row : points.rows) {
    std::vector<std::string> cells{row[points.need("point")]};
    for (const auto& p : paths) cells.push_back(row[points.need(p)]);
    cells.push_back(row[points.need("seed")]);
    cells.push_back(row[result_col]);
    for (const auto& i : intervals) cells.push_back(row[points.need(i + ".p50_ns")]);
    table.rows.push_back(cells);
  }
  doc.tables.push_back(table);
  // Latency, throughput and utilisation against x; repeats (several seeds) averaged.
  struct Acc {
    double sum = 0;
    std::size_t n = 0;
  };
  std::map<std::string, std::map<double, Acc>> latency, throughput, utilisation;
  std::vector<std::string> order, util_order;
  double max_ns = 0;
  std::vector<std::pair<std::string, std::map<std::string, double>>> breakdown;
  std::vector<std::pair<std::string, double>> bars; // categorical x: p50 per point
  for (const auto& row : points.rows) {
    std::string point = row[points.need("point")];
    std::string label;
    for (std::size_t p = 0; p < paths.size(); ++p) label += (p ? " " : "") + row[points.need(paths[p])];
    for (const auto& i : intervals) {
      auto p50 = number(row[points.need(i + ".p50_ns")]);
      if (!p50) continue;
      max_ns = std::max(max_ns, *p50);
      if (x_path) {
        std::string s = series_name(row, i);
        if (!latency.count(s)) order.push_back(s);
        auto& a = latency[s][x_value(row)];
        a.sum += *p50, ++a.n;
        if (auto c = points.column(i + ".bytes_per_second"))
          if (auto bps = number(row[*c]); bps && *bps > 0) {
            auto& t = throughput[s][x_value(row)];
            t.sum += *bps / 1e6, ++t.n;
          }
      } else {
        bars.push_back({label + (intervals.size() > 1 ? " " + i : ""), *p50});
      }
    }
    // The point's own run: the breakdown and the cores.
    fs::path run = fs::path(dir) / "points" / point / "summary.json";
    if (point.size() < 4)
      run = fs::path(dir) / "points" / (std::string(4 - point.size(), '0') + point) / "summary.json";
    if (!fs::exists(run)) continue;
    for (const auto& m : machines_of(read_json(run))) {
      std::map<std::string, double> parts;
      double total = 0;
      for (const auto& b : m.summary.value("breakdown", json::array())) total += get_number(b, "cycles");
      for (const auto& b : m.summary.value("breakdown", json::array()))
        parts[b.value("primitive", std::string())] += total > 0 ? get_number(b, "cycles") / total * 100 : 0;
      std::string bar = label + (m.name.empty() ? "" : " " + m.name);
      if (breakdown.size() < 40) breakdown.push_back({bar, parts});
      double u = 0;
      std::size_t n = 0;
      for (const auto& c : m.summary.value("cores", json::array())) u += get_number(c, "utilisation"), ++n;
      if (x_path && n) {
        std::string s = series_name(row, "");
        if (s == "run" || s.empty()) s = "mean over cores";
        if (!utilisation.count(s)) util_order.push_back(s);
        auto& a = utilisation[s][x_value(row)];
        a.sum += u / static_cast<double>(n) * 100, ++a.n;
      }
    }
  }
  std::string x_title = x_path ? paths[*x_path] : "";
  bool x_log = false;
  if (x_path) {
    double lo = INFINITY, hi = 0;
    for (const auto& row : points.rows) lo = std::min(lo, x_value(row)), hi = std::max(hi, x_value(row));
    x_log = lo > 0 && hi / lo >= 16; // a geometric range reads best on a log axis
  }
  Axis x_axis{x_title + (x_bytes ? " (bytes" : " (as set") + (x_log ? ", log scale)" : ")"), x_log,
              x_bytes && x_log};
  auto to_series = [](const std::map<std::string, std::map<double, Acc>>& data,
                      const std::vector<std::string>& names, double scale) {
    std::vector<Series> out;
    for (const auto& s : names) {
      auto it = data.find(s);
      if (it == data.end()) continue;
      Series series{s, {}};
      for (const auto& [x, a] : it->second)
        series.points.push_back({x, a.sum / static_cast<double>(a.n) * scale});
      out.push_back(series);
    }
    return out;
  };
  TimeUnit unit = time_unit(max_ns);
  if (!latency.empty()) {
    LineChart l;
    l.title = "Latency against " + x_title;
    l.x = x_axis;
    l.y = {std::string("interval time, p50 (") + unit.name + (x_log ? ", log scale)" : ")"), x_log, false};
    l.series = to_series(latency, order, unit.per_ns);
    l.caption = "Median (p50) interval time at each point of the sweep" +
                std::string(sweep.value("repeat", 1) > 1 ? ", averaged over the repeats" : "") +
                ", one line per interval and value of the other varied fields. " + doc.what.front();
    add_figure(doc, "latency", l);
  }
  if (!throughput.empty()) {
    LineChart t;
    t.title = "Throughput against " + x_title;
    t.x = x_axis;
    t.y = {std::string("throughput (MB/s") + (x_log ? ", log scale)" : ")"), x_log, false};
    t.series = to_series(throughput, order, 1.0);
    t.caption = "Bytes the intervals carried per simulated second of interval time at each point. " +
                doc.what.front();
    add_figure(doc, "throughput", t);
  }
  if (!bars.empty()) {
    BarChart b;
    b.title = "Measured intervals per point";
    b.y_title = std::string("interval time, p50 (") + unit.name + ")";
    for (const auto& [l, v] : bars) b.bars.push_back({l, {{"p50", v * unit.per_ns}}});
    b.caption = "Median (p50) interval time at each point of the sweep. " + doc.what.front();
    add_figure(doc, "intervals", b);
  }
  if (!breakdown.empty()) {
    BarChart b = breakdown_chart(breakdown, "share of busy cycles (%)");
    b.title = "Where the cycles went, per point";
    b.caption =
        "Each point's busy cycles by cost primitive, as a share of its total (points/NNNN/summary.json)" +
        std::string(points.rows.size() > 40 ? "; the first 40 points" : "") + ". " + doc.what.front();
    add_figure(doc, "breakdown", b);
  } else {
    doc.notes.push_back("no breakdown figure: no points/NNNN/summary.json found.");
  }
  if (!utilisation.empty()) {
    LineChart u;
    u.title = "CPU utilisation against " + x_title;
    u.x = x_axis;
    u.y = {"busy share, mean over cores (%)", false, false};
    u.series = to_series(utilisation, util_order, 1.0);
    u.caption = "The mean share of the run the cores were busy, at each point. " + doc.what.front();
    add_figure(doc, "utilisation", u);
  }
  return doc;
}

// ---- Writing --------------------------------------------------------------------------------------

std::string html_of(const Document& doc) {
  std::ostringstream out;
  out << "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>"
      << xml_escape(doc.title) << "</title>\n<style>\n"
      << "body { font-family: DejaVu Sans, Arial, sans-serif; max-width: 860px; margin: 2em auto; color: "
         "#222; }\n"
      << "figure { margin: 2em 0; } figcaption { font-size: 0.9em; color: #444; }\n"
      << "table { border-collapse: collapse; font-size: 0.9em; } td, th { border: 1px solid #ccc; padding: "
         "2px 6px; "
         "text-align: right; } th { background: #f4f4f4; }\n"
      << "</style>\n</head>\n<body>\n<h1>" << xml_escape(doc.title) << "</h1>\n";
  for (const auto& line : doc.what) out << "<p>" << xml_escape(line) << "</p>\n";
  for (std::size_t i = 0; i < doc.figures.size(); ++i) {
    const auto& f = doc.figures[i];
    out << "<figure id=\"" << f.file.substr(0, f.file.size() - 4) << "\">\n"
        << f.svg << "<figcaption>Figure " << i + 1 << ": " << xml_escape(f.title) << " (" << f.file
        << "; its caption is under the plot)</figcaption>\n</figure>\n";
  }
  for (const auto& t : doc.tables) {
    out << "<h2>" << xml_escape(t.title) << "</h2>\n<table>\n<tr>";
    for (const auto& h : t.header) out << "<th>" << xml_escape(h) << "</th>";
    out << "</tr>\n";
    for (const auto& row : t.rows) {
      out << "<tr>";
      for (const auto& c : row) out << "<td>" << xml_escape(c) << "</td>";
      out << "</tr>\n";
    }
    out << "</table>\n";
  }
  if (!doc.notes.empty()) {
    out << "<h2>Notes</h2>\n<ul>\n";
    for (const auto& n : doc.notes) out << "<li>" << xml_escape(n) << "</li>\n";
    out << "</ul>\n";
  }
  out << "<p><small>Written by ipcsim " << ipcsim_version()
      << " (`ipcsim report`).</small></p>\n</body>\n</html>\n";
  return out.str();
}

std::string markdown_of(const Document& doc) {
  std::ostringstream out;
  out << "# " << doc.title << "\n\n";
  for (const auto& line : doc.what) out << line << "\n\n";
  for (std::size_t i = 0; i < doc.figures.size(); ++i) {
    const auto& f = doc.figures[i];
    out << "## Figure " << i + 1 << ": " << f.title << "\n\n![" << f.title << "](" << f.file << ")\n\n"
        << f.caption << "\n\n";
  }
  for (const auto& t : doc.tables) {
    out << "## " << t.title << "\n\n|";
    for (const auto& h : t.header) out << " " << h << " |";
    out << "\n|";
    for (std::size_t i = 0; i < t.header.size(); ++i) out << (i ? "---:|" : "---|");
    out << "\n";
    for (const auto& row : t.rows) {
      out << "|";
      for (const auto& c : row) out << " " << c << " |";
      out << "\n";
    }
    out << "\n";
  }
  if (!doc.notes.empty()) {
    out << "## Notes\n\n";
    for (const auto& n : doc.notes) out << "- " << n << "\n";
    out << "\n";
  }
  return out.str();
}

void write_file(const fs::path& path, const std::string& text) {
  std::ofstream file(path, std::ios::binary);
  if (!file) throw UserError(path.string() + ": cannot write: " + std::strerror(errno));
  file << text;
  if (!file.flush()) throw UserError(path.string() + ": cannot write: " + std::strerror(errno));
}

} // namespace

ReportFiles write_report(const std::string& dir, const std::string& out_dir_arg) {
  fs::path d(dir);
  std::error_code ec;
  if (!fs::is_directory(d, ec)) throw UserError(dir + ": not a directory");
  Document doc;
  if (fs::exists(d / "compare.json"))
    doc = compare_document(dir);
  else if (fs::exists(d / "sweep.json") && fs::exists(d / "sweep.csv"))
    doc = sweep_document(dir);
  else if (fs::exists(d / "summary.json"))
    doc = run_document(dir);
  else if (fs::exists(d / "sweep.json"))
    throw UserError(dir +
                    ": a sweep without sweep.csv: finish it (run the same sweep again) or merge it "
                    "(`ipcsim sweep-merge " +
                    dir + "`) first");
  else
    throw UserError(dir +
                    ": not an ipcsim output directory: expected compare.json (`ipcsim compare --out`), "
                    "sweep.json and sweep.csv (`ipcsim sweep --out`) or summary.json (`ipcsim run --out`)");
  fs::path out = out_dir_arg.empty() ? d / "report" : fs::path(out_dir_arg);
  fs::create_directories(out, ec);
  if (ec) throw UserError("--out " + out.string() + ": cannot create the directory: " + ec.message());
  ReportFiles files;
  files.kind = doc.kind;
  for (const auto& f : doc.figures) {
    write_file(out / f.file, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n" + f.svg);
    files.figures.push_back((out / f.file).string());
  }
  files.html = (out / "report.html").string();
  files.markdown = (out / "report.md").string();
  write_file(files.html, html_of(doc));
  write_file(files.markdown, markdown_of(doc));
  return files;
}

} // namespace ipcsim
