#include "report.hpp"

#include "ipc.hpp"

#include "error.hpp"
#include "limits.hpp"
#include "sched.hpp"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>

#include "git_revision.hpp"

#ifndef IPCSIM_GIT_REVISION
#define IPCSIM_GIT_REVISION "unknown"
#endif

namespace ipcsim {

const char* ipcsim_version() { return "0.1.0"; }
const char* ipcsim_git_revision() { return IPCSIM_GIT_REVISION; }

namespace {

// Nearest rank: the smallest value with at least p% of the values at or below it.
Cycles percentile(const std::vector<Cycles>& sorted, double p) {
  auto rank = static_cast<std::size_t>(std::ceil(p / 100.0 * static_cast<double>(sorted.size())));
  return sorted[std::max<std::size_t>(rank, 1) - 1];
}

std::string fixed(double value, int decimals) {
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "%.*f", decimals, value);
  return buffer;
}

std::string pad(const std::string& text, std::size_t width, bool left = false) {
  if (text.size() >= width) return text;
  return left ? text + std::string(width - text.size(), ' ') : std::string(width - text.size(), ' ') + text;
}

// Pads to a width in characters on screen: UTF-8 continuation bytes ("µ") take no column.
std::string pad_display(const std::string& text, std::size_t width) {
  std::size_t columns = 0;
  for (unsigned char c : text) columns += (c & 0xC0) != 0x80;
  return columns >= width ? text : std::string(width - columns, ' ') + text;
}

std::string percent(Cycles part, Cycles whole) {
  return whole ? fixed(100.0 * static_cast<double>(part) / static_cast<double>(whole), 1) : "0.0";
}

struct BreakdownRow {
  std::string activity;
  std::string primitive;
  Cycles cycles;
};

// A thread's charges, ordered by activity name then primitive declaration order.
std::vector<BreakdownRow> breakdown(const Kernel& kernel, const Thread& thread) {
  std::vector<Charge> charges = kernel.account(thread).charges;
  const auto& names = activity_names();
  std::sort(charges.begin(), charges.end(), [&](const Charge& a, const Charge& b) {
    return names[a.activity] != names[b.activity] ? names[a.activity] < names[b.activity]
                                                  : a.primitive < b.primitive;
  });
  std::vector<BreakdownRow> rows;
  for (std::size_t i = 0; i < charges.size(); ++i) {
    const Charge& c = charges[i];
    Cycles cycles = c.cycles;
    while (i + 1 < charges.size() && charges[i + 1].activity == c.activity &&
           charges[i + 1].primitive == c.primitive)
      cycles += charges[++i].cycles; // a total past Charge::kMaxCycles spans entries
    rows.push_back({names[c.activity], primitive_name(static_cast<Primitive>(c.primitive)), cycles});
  }
  return rows;
}

// Totals per primitive, and per activity x primitive, over every thread.
std::map<std::pair<std::string, std::string>, Cycles> total_breakdown(const Kernel& kernel) {
  std::map<std::pair<std::string, std::string>, Cycles> totals;
  for (const auto& thread : kernel.threads())
    for (const auto& row : breakdown(kernel, thread)) totals[{row.activity, row.primitive}] += row.cycles;
  return totals;
}

std::string scheduler_text(const json& scheduler) {
  std::string text = scheduler.at("policy").get<std::string>();
  std::string params;
  for (const auto& [key, value] : scheduler.items())
    if (key != "policy")
      params += (params.empty() ? "" : ", ") + key + " " +
                (value.is_string() ? value.get<std::string>() : value.dump());
  return params.empty() ? text : text + " (" + params + ")";
}

// Per process declaration, in declaration order: thread times summed over every copy.
std::vector<Summary::ProcessRow> process_rows(const Kernel& kernel) {
  std::vector<Summary::ProcessRow> rows;
  std::map<const ProcessSpec*, std::size_t> row_of;
  for (const auto& spec : kernel.model().processes) {
    row_of[spec.get()] = rows.size();
    rows.push_back({spec->name});
  }
  for (const auto& t : kernel.threads()) {
    auto row = row_of.find(t.process->spec);
    if (row == row_of.end()) continue;
    Summary::ProcessRow& group = rows[row->second];
    auto times = thread_times(kernel, t, kernel.makespan());
    group.times.run += times.run, group.times.ready += times.ready, group.times.blocked += times.blocked;
    ++group.threads;
    if (t.finished_at == kNever)
      group.all_finished = false;
    else
      group.last_finish = std::max(group.last_finish, t.finished_at);
  }
  return rows;
}

} // namespace

ThreadTimes thread_times(const Kernel& kernel, const Thread& thread, Cycles end) {
  const ThreadAccount& account = kernel.account(thread);
  ThreadTimes times{account.run_cycles, account.ready_cycles, account.blocked_cycles};
  Cycles open = end > thread.state_since ? end - thread.state_since : 0;
  switch (thread.state) {
  case ThreadState::Running:
    times.run += open;
    break;
  case ThreadState::Ready:
    times.ready += open;
    break;
  case ThreadState::Blocked:
    times.blocked += open;
    break;
  default:
    break;
  }
  return times;
}

std::vector<IntervalStats> interval_stats(const Kernel& kernel) {
  const auto& names = kernel.model().interval_names;
  std::vector<std::vector<Cycles>> durations(names.size());
  std::vector<IntervalStats> stats(names.size());
  std::vector<Cycles> first(names.size(), kNever), last(names.size(), 0);
  for (const auto& r : kernel.records()) {
    durations[r.name].push_back(r.end - r.start);
    stats[r.name].bytes += r.bytes;
    first[r.name] = std::min(first[r.name], r.start);
    last[r.name] = std::max(last[r.name], r.end);
  }
  double hz = kernel.model().hz;
  for (std::size_t i = 0; i < names.size(); ++i) {
    IntervalStats& s = stats[i];
    s.name = names[i];
    auto& d = durations[i];
    s.count = d.size();
    if (d.empty()) continue;
    std::sort(d.begin(), d.end());
    long double sum = 0;
    for (Cycles c : d) sum += c;
    s.mean_cycles = static_cast<double>(sum / d.size());
    s.min = d.front();
    s.max = d.back();
    s.p50 = percentile(d, 50);
    s.p99 = percentile(d, 99);
    long double squares = 0;
    for (Cycles c : d) {
      long double diff = static_cast<long double>(c) - static_cast<long double>(s.mean_cycles);
      squares += diff * diff;
    }
    s.stddev_cycles = static_cast<double>(std::sqrt(squares / d.size()));
    Cycles window = last[i] - first[i];
    if (window > 0) {
      s.per_second = static_cast<double>(s.count) * hz / static_cast<double>(window);
      s.bytes_per_second = static_cast<double>(s.bytes) * hz / static_cast<double>(window);
    }
  }
  return stats;
}

const char* interval_csv_header() {
  return "interval,count,min_cycles,mean_cycles,p50_cycles,p99_cycles,max_cycles,stddev_cycles,min_ns,mean_"
         "ns,"
         "p50_ns,p99_ns,max_ns,stddev_ns,per_second,bytes,bytes_per_second";
}

std::string fixed3(double value) { return fixed(value, 3); }

std::string csv_field(const std::string& text) {
  if (text.find_first_of(",\"\r\n") == std::string::npos) return text;
  std::string out = "\"";
  for (char c : text) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

std::string interval_csv_row(const IntervalStats& i, double hz) {
  auto ns = [&](double cycles) { return fixed(cycles * 1e9 / hz, 3); };
  return csv_field(i.name) + "," + std::to_string(i.count) + "," + std::to_string(i.min) + "," +
         fixed(i.mean_cycles, 3) + "," + std::to_string(i.p50) + "," + std::to_string(i.p99) + "," +
         std::to_string(i.max) + "," + fixed(i.stddev_cycles, 3) + "," + ns(static_cast<double>(i.min)) +
         "," + ns(i.mean_cycles) + "," + ns(static_cast<double>(i.p50)) + "," +
         ns(static_cast<double>(i.p99)) + "," + ns(static_cast<double>(i.max)) + "," + ns(i.stddev_cycles) +
         "," + fixed(i.per_second, 3) + "," + std::to_string(i.bytes) + "," + fixed(i.bytes_per_second, 3);
}

json interval_json(const IntervalStats& i, double hz) {
  auto to_ns = [&](double cycles) { return std::round(cycles * 1e9 / hz * 1000.0) / 1000.0; };
  return {{"name", i.name},
          {"count", i.count},
          {"mean_cycles", i.mean_cycles},
          {"p50_cycles", i.p50},
          {"p99_cycles", i.p99},
          {"max_cycles", i.max},
          {"min_cycles", i.min},
          {"stddev_cycles", std::round(i.stddev_cycles * 1000.0) / 1000.0},
          {"mean_ns", to_ns(i.mean_cycles)},
          {"p50_ns", to_ns(static_cast<double>(i.p50))},
          {"p99_ns", to_ns(static_cast<double>(i.p99))},
          {"max_ns", to_ns(static_cast<double>(i.max))},
          {"min_ns", to_ns(static_cast<double>(i.min))},
          {"stddev_ns", to_ns(i.stddev_cycles)},
          {"per_second", i.per_second},
          {"bytes", i.bytes},
          {"bytes_per_second", i.bytes_per_second}};
}

std::string format_time_fit(double cycles, double hz) {
  double ns = cycles * 1e9 / hz;
  if (ns < 1e3) return fixed(ns, 3) + " ns";
  if (ns < 1e6) return fixed(ns / 1e3, 3) + " \xC2\xB5s";
  if (ns < 1e9) return fixed(ns / 1e6, 3) + " ms";
  return fixed(ns / 1e9, 3) + " s";
}

std::vector<FailedCalls> failed_calls(const Kernel& kernel) {
  std::vector<FailedCalls> out;
  for (const auto& f : kernel.failed_calls())
    out.push_back({kernel.threads()[f.thread].display_name(), activity_names()[f.activity],
                   errno_name(f.error), f.count});
  return out;
}

Summary summarize(const Scenario& scenario, const Kernel& kernel) {
  const MachineModel& m = kernel.model();
  const Cycles end = kernel.makespan();
  Summary s;
  s.scenario_file = scenario.file;
  s.scenario_hash = scenario.hash;
  s.scenario = scenario.resolved;
  s.description = scenario.resolved.value("description", "");
  s.seed = m.seed;
  s.machine_name = m.name;
  for (std::size_t i = 0; i < scenario.machines.size(); ++i)
    if (&scenario.machines[i] == &m) s.machine_index = i;
  s.machine_count = scenario.machines.size();
  s.cores = m.cores;
  s.hz = m.hz;
  s.costs_preset = m.costs.preset;
  s.tagged_tlb = m.costs.tagged_tlb;
  s.scheduler = m.scheduler_params;
  s.end = end;
  if (const DeadlockReport* d = kernel.deadlock()) s.deadlock = *d;
  for (const auto& process : kernel.processes())
    if (process.killed_by) s.killed.push_back({process.display_name(), process.killed_by});
  for (const auto& line : kernel.console())
    s.console.push_back({line.at, kernel.threads()[line.thread].display_name(), line.text});
  s.failed_calls = failed_calls(kernel);
  s.ipc_objects = kernel.ipc_listing();
  s.intervals = interval_stats(kernel);
  for (const auto& core : kernel.cores()) {
    Cycles busy = std::min(core->busy_cycles, end);
    s.per_core.push_back({core->index, busy, end - busy,
                          end ? static_cast<double>(busy) / static_cast<double>(end) : 0.0,
                          core->context_switches});
  }
  s.threads_grouped = kernel.threads().size() > Summary::kMaxListedThreads;
  if (!s.threads_grouped)
    for (const auto& t : kernel.threads())
      s.per_thread.push_back({t.display_name(), thread_times(kernel, t, end), t.finished_at});
  s.per_process = process_rows(kernel);
  for (const auto& [key, cycles] : total_breakdown(kernel)) {
    s.breakdown.push_back({key.first, key.second, cycles});
    s.breakdown_cycles += cycles;
  }
  return s;
}

void print_summary(std::ostream& out, const Summary& s) {
  const double hz = s.hz;
  auto ns = [&](double cycles) { return fixed(cycles * 1e9 / hz, 3); };
  const Cycles end = s.end;
  if (s.machine_index == 0) {
    out << "ipcsim " << ipcsim_version() << ": " << s.scenario_file << " (seed " << s.seed << ")\n";
    if (!s.description.empty()) out << "  " << s.description << "\n";
  }
  if (s.machine_count > 1) out << "\n=== machine " << s.machine_name << " ===\n";
  out << "machine: " << s.cores << (s.cores == 1 ? " core" : " cores") << " at " << format_hz(hz)
      << ", costs " << s.costs_preset << (s.tagged_tlb ? " (tagged TLB)" : "") << ", scheduler "
      << scheduler_text(s.scheduler) << "\n";
  out << "simulated time: " << end << " cycles = " << ns(static_cast<double>(end)) << " ns\n";
  if (s.deadlock) {
    out << "result: DEADLOCK at cycle " << s.deadlock->at
        << ": every live thread is blocked and no timer is pending\n";
    for (const auto& w : s.deadlock->waiters)
      out << "  " << w.thread << " waits for " << w.waits_on << " since cycle " << w.since << "\n";
  } else {
    out << "result: completed, every thread exited\n";
  }
  for (const auto& k : s.killed)
    out << "  " << k.process << " was terminated by " << signal_name(k.signal) << "\n";

  if (!s.console.empty()) {
    out << "\nconsole (what the scripts printed)\n";
    // Runs of a second or more (a courier's 15-minute wait) read better in seconds.
    bool seconds = static_cast<double>(end) * 1e9 / hz >= 1e9;
    auto stamp = [&](Cycles at) {
      return seconds ? fixed(static_cast<double>(at) / hz, 9) + " s" : ns(static_cast<double>(at)) + " ns";
    };
    std::size_t width = 0;
    for (const auto& line : s.console) width = std::max(width, stamp(line.at).size());
    for (const auto& line : s.console)
      out << "  " << pad(stamp(line.at), std::max<std::size_t>(width, 18)) << "  "
          << pad(line.thread, 12, true) << " " << line.text << "\n";
  }

  if (!s.failed_calls.empty()) {
    out << "\nfailed calls\n  " << pad("thread", 20, true) << pad("op", 12, true) << pad("error", 14, true)
        << pad("count", 10) << "\n";
    for (const auto& f : s.failed_calls)
      out << "  " << pad(f.thread, 20, true) << pad(f.op, 12, true) << pad(f.error, 14, true)
          << pad(std::to_string(f.count), 10) << "\n";
  }

  for (const auto& table : s.ipc_objects) {
    out << "\nIPC objects alive at the end: " << table.title << "\n";
    std::vector<std::size_t> widths;
    for (std::size_t c = 0; c < table.columns.size(); ++c) {
      std::size_t w = table.columns[c].size();
      for (const auto& row : table.rows) w = std::max(w, c < row.size() ? row[c].size() : 0);
      widths.push_back(w + 2);
    }
    out << "  ";
    for (std::size_t c = 0; c < table.columns.size(); ++c) out << pad(table.columns[c], widths[c], true);
    out << "\n";
    for (const auto& row : table.rows) {
      out << "  ";
      for (std::size_t c = 0; c < row.size() && c < widths.size(); ++c) out << pad(row[c], widths[c], true);
      out << "\n";
    }
    if (table.rows.empty()) out << "  (none)\n";
  }

  const auto& stats = s.intervals;
  if (!stats.empty()) {
    // Each time in the unit that fits it; the exact cycles follow on one line.
    out << "\nmeasured intervals\n";
    out << "  " << pad("interval", 16, true) << pad("count", 9) << pad("min", 13) << pad("mean", 13)
        << pad("p50", 13) << pad("p99", 13) << pad("max", 13) << pad("stddev", 13) << pad("per second", 14)
        << "\n";
    auto time = [&](double cycles) { return pad_display(format_time_fit(cycles, hz), 13); };
    for (const auto& i : stats) {
      out << "  " << pad(i.name, 16, true) << pad(std::to_string(i.count), 9)
          << time(static_cast<double>(i.min)) << time(i.mean_cycles) << time(static_cast<double>(i.p50))
          << time(static_cast<double>(i.p99)) << time(static_cast<double>(i.max)) << time(i.stddev_cycles)
          << pad(fixed(i.per_second, 1), 14) << "\n";
      if (i.bytes)
        out << "  " << pad("", 16, true) << " throughput " << fixed(i.bytes_per_second / 1e6, 3) << " MB/s\n";
    }
    out << "  (cycles as min/mean/p50/p99/max/stddev: ";
    for (std::size_t i = 0; i < stats.size(); ++i)
      out << (i ? ", " : "") << stats[i].name << " " << stats[i].min << "/" << fixed(stats[i].mean_cycles, 1)
          << "/" << stats[i].p50 << "/" << stats[i].p99 << "/" << stats[i].max << "/"
          << fixed(stats[i].stddev_cycles, 1);
    out << ")\n";
  }

  // Time columns are 16 wide, wider when a long run needs it (a 25-minute story, many threads).
  Cycles longest = end;
  if (s.threads_grouped)
    for (const auto& g : s.per_process)
      longest = std::max({longest, g.times.run, g.times.ready, g.times.blocked});
  const std::size_t tw = std::max<std::size_t>(16, ns(static_cast<double>(longest)).size() + 2);
  out << "\ncores\n  " << pad("core", 6, true) << pad("busy %", 8) << pad("busy ns", tw) << pad("idle ns", tw)
      << pad("switches", 10) << "\n";
  for (const auto& c : s.per_core)
    out << "  " << pad(std::to_string(c.core), 6, true) << pad(percent(c.busy, end), 8)
        << pad(ns(static_cast<double>(c.busy)), tw) << pad(ns(static_cast<double>(c.idle)), tw)
        << pad(std::to_string(c.context_switches), 10) << "\n";

  out << "\nthreads" << (s.threads_grouped ? " (grouped by process: totals over every copy)" : "") << "\n  "
      << pad("thread", 20, true) << pad("count", 9) << pad("run ns", tw) << pad("ready ns", tw)
      << pad("blocked ns", tw) << pad("finished ns", tw) << "\n";
  if (!s.threads_grouped) {
    for (const auto& t : s.per_thread)
      out << "  " << pad(t.thread, 20, true) << pad("1", 9) << pad(ns(static_cast<double>(t.times.run)), tw)
          << pad(ns(static_cast<double>(t.times.ready)), tw)
          << pad(ns(static_cast<double>(t.times.blocked)), tw)
          << pad(t.finished_at == kNever ? "-" : ns(static_cast<double>(t.finished_at)), tw) << "\n";
  } else {
    for (const auto& g : s.per_process)
      out << "  " << pad(g.process, 20, true) << pad(std::to_string(g.threads), 9)
          << pad(ns(static_cast<double>(g.times.run)), tw) << pad(ns(static_cast<double>(g.times.ready)), tw)
          << pad(ns(static_cast<double>(g.times.blocked)), tw)
          << pad(g.all_finished ? ns(static_cast<double>(g.last_finish)) : "-", tw) << "\n";
  }

  // Wide enough for the longest activity ("mutex_unlock", "cond_broadcast") and a space.
  std::size_t width = 12;
  for (const auto& b : s.breakdown) width = std::max(width, b.activity.size() + 1);
  out << "\nwhere the cycles went (all threads; " << s.breakdown_cycles << " cycles)\n  "
      << pad("activity", width, true) << pad("primitive", 24, true) << pad("cycles", 16) << pad("%", 8)
      << "\n";
  for (const auto& b : s.breakdown)
    out << "  " << pad(b.activity, width, true) << pad(b.primitive, 24, true)
        << pad(std::to_string(b.cycles), 16) << pad(percent(b.cycles, s.breakdown_cycles), 8) << "\n";
}

namespace {
// How deep arrays and objects nest in `value` (0 for a scalar); iterative, whatever the depth.
std::uint64_t nesting_depth(const json& value) {
  std::uint64_t deepest = 0;
  std::vector<std::pair<const json*, std::uint64_t>> todo{{&value, 0}};
  while (!todo.empty()) {
    auto [node, depth] = todo.back();
    todo.pop_back();
    if (!node->is_structured()) continue;
    deepest = std::max(deepest, depth + 1);
    for (const auto& child : *node) todo.push_back({&child, depth + 1});
  }
  return deepest;
}
} // namespace

json summary_json(const Summary& s) {
  const Cycles end = s.end;
  auto to_ns = [&](double cycles) { return std::round(cycles * 1e9 / s.hz * 1000.0) / 1000.0; };
  json out;
  out["context"] = {{"ipcsim_version", ipcsim_version()},
                    {"git_revision", ipcsim_git_revision()},
                    {"simgrid_version", engine_version()},
                    {"scenario_file", s.scenario_file},
                    {"scenario_hash", "fnv1a64:" + s.scenario_hash},
                    {"seed", s.seed},
                    {"scenario", s.scenario}};
  out["result"] = s.deadlock ? "deadlock" : "completed";
  out["simulated_cycles"] = end;
  out["simulated_ns"] = to_ns(static_cast<double>(end));
  if (s.deadlock) {
    json waiters = json::array();
    for (const auto& w : s.deadlock->waiters)
      waiters.push_back({{"thread", w.thread}, {"waits_for", w.waits_on}, {"since_cycle", w.since}});
    out["deadlock"] = {{"at_cycle", s.deadlock->at}, {"waiters", waiters}};
  }
  json intervals = json::array();
  for (const auto& i : s.intervals) intervals.push_back(interval_json(i, s.hz));
  out["intervals"] = intervals;
  json console = json::array();
  for (const auto& line : s.console)
    console.push_back({{"cycle", line.at},
                       {"ns", to_ns(static_cast<double>(line.at))},
                       {"thread", line.thread},
                       {"text", line.text}});
  out["console"] = console;
  json failed = json::array();
  for (const auto& f : s.failed_calls)
    failed.push_back({{"thread", f.thread}, {"op", f.op}, {"error", f.error}, {"count", f.count}});
  out["failed_calls"] = failed;
  json ipc = json::array();
  for (const auto& table : s.ipc_objects) {
    json rows = json::array();
    for (const auto& row : table.rows) {
      json r = json::object();
      for (std::size_t c = 0; c < row.size() && c < table.columns.size(); ++c) r[table.columns[c]] = row[c];
      rows.push_back(r);
    }
    ipc.push_back({{"title", table.title}, {"objects", rows}});
  }
  out["ipc_objects"] = ipc;
  json killed = json::array();
  for (const auto& k : s.killed) killed.push_back({{"process", k.process}, {"signal", k.signal}});
  out["killed"] = killed;
  json cores = json::array();
  for (const auto& c : s.per_core)
    cores.push_back({{"core", c.core},
                     {"busy_cycles", c.busy},
                     {"idle_cycles", c.idle},
                     {"utilisation", c.utilisation},
                     {"context_switches", c.context_switches}});
  out["cores"] = cores;
  // Per process group: a million threads would make a per-thread list unreadable; threads.csv has them.
  json groups = json::array();
  for (const auto& g : s.per_process)
    groups.push_back({{"process", g.process},
                      {"threads", g.threads},
                      {"run_cycles", g.times.run},
                      {"ready_cycles", g.times.ready},
                      {"blocked_cycles", g.times.blocked}});
  out["processes"] = groups;
  json breakdown_totals = json::array();
  for (const auto& b : s.breakdown)
    breakdown_totals.push_back({{"activity", b.activity}, {"primitive", b.primitive}, {"cycles", b.cycles}});
  out["breakdown"] = breakdown_totals;
  return out;
}

json summary_json(const Scenario& scenario, const Kernel& kernel) {
  return summary_json(summarize(scenario, kernel));
}

std::vector<Summary> summarize(const Scenario& scenario, const Simulation& simulation) {
  std::vector<Summary> summaries;
  for (const auto& kernel : simulation.machines()) summaries.push_back(summarize(scenario, *kernel));
  return summaries;
}

json summary_json(const std::vector<Summary>& summaries) {
  if (summaries.size() == 1) return summary_json(summaries.front());
  json out;
  json machines = json::array();
  for (const auto& s : summaries) {
    json one = summary_json(s);
    if (out.empty()) out["context"] = one.at("context");
    one.erase("context");
    json named = {{"machine", s.machine_name}};
    named.update(one);
    machines.push_back(named);
  }
  out["machines"] = machines;
  return out;
}

void write_outputs(const std::string& dir, const std::vector<Summary>& summaries,
                   const std::vector<const Kernel*>& kernels) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) throw UserError("--out " + dir + ": cannot create the directory: " + ec.message());
  auto open = [&](const std::string& name) {
    std::ofstream file(std::filesystem::path(dir) / name, std::ios::binary);
    if (!file) throw UserError("--out " + dir + ": cannot write " + name + ": " + std::strerror(errno));
    return file;
  };
  // With several machines every row says which one it is from (thread names repeat across them).
  const bool several = kernels.size() > 1;
  auto machine_column = [&](const Kernel& kernel) {
    return several ? kernel.model().name + "," : std::string();
  };
  const std::string machine_head = several ? "machine," : "";
  {
    auto file = open("summary.json");
    const json summary = summary_json(summaries);
    // Indented, unless the scenario is nested past the default nesting_depth: indentation would grow
    // with depth in every line (a script of 4,000 nested ifs wrote 385 MB), so it goes on one line.
    file << summary.dump(nesting_depth(summary) > Limits{}.nesting_depth ? -1 : 2) << "\n";
  }
  {
    auto file = open("records.csv");
    file << machine_head << "interval,thread,start_cycle,end_cycle,cycles,bytes,ns,begin_thread\n";
    for (const Kernel* kernel : kernels) {
      const auto& names = kernel->model().interval_names;
      const double hz = kernel->model().hz;
      for (const auto& r : kernel->records())
        file << machine_column(*kernel) << csv_field(names[r.name]) << ","
             << kernel->threads()[r.thread].display_name() << "," << r.start << "," << r.end << ","
             << (r.end - r.start) << "," << r.bytes << ","
             << fixed(static_cast<double>(r.end - r.start) * 1e9 / hz, 3) << ","
             << kernel->threads()[r.begun_by].display_name() << "\n";
    }
  }
  {
    auto file = open("intervals.csv");
    file << machine_head << interval_csv_header() << "\n";
    for (const Summary& summary : summaries)
      for (const auto& i : summary.intervals)
        file << (several ? csv_field(summary.machine_name) + "," : std::string())
             << interval_csv_row(i, summary.hz) << "\n";
  }
  {
    auto file = open("breakdown.csv");
    file << machine_head << "thread,activity,primitive,cycles\n";
    for (const Kernel* kernel : kernels)
      for (const auto& t : kernel->threads())
        for (const auto& row : breakdown(*kernel, t))
          file << machine_column(*kernel) << t.display_name() << "," << row.activity << "," << row.primitive
               << "," << row.cycles << "\n";
  }
  {
    auto file = open("threads.csv");
    file << machine_head << "thread,process,state,run_cycles,ready_cycles,blocked_cycles,finished_cycle\n";
    static const char* states[] = {"not_started", "ready", "running", "blocked", "exited"};
    for (const Kernel* kernel : kernels)
      for (const auto& t : kernel->threads()) {
        auto times = thread_times(*kernel, t, kernel->makespan());
        file << machine_column(*kernel) << t.display_name() << "," << t.process->display_name() << ","
             << states[static_cast<int>(t.state)] << "," << times.run << "," << times.ready << ","
             << times.blocked << ","
             << (t.finished_at == kNever ? std::string("") : std::to_string(t.finished_at)) << "\n";
      }
  }
}

} // namespace ipcsim
