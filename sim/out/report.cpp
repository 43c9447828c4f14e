#include "report.hpp"

#include "ipc.hpp"

#include "error.hpp"
#include "sched.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
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

std::string percent(Cycles part, Cycles whole) {
  return whole ? fixed(100.0 * static_cast<double>(part) / static_cast<double>(whole), 1) : "0.0";
}

struct BreakdownRow {
  std::string activity;
  std::string primitive;
  Cycles cycles;
};

// A thread's charges, ordered by activity name then primitive declaration order.
std::vector<BreakdownRow> breakdown(const Thread& thread) {
  std::vector<Charge> charges = thread.charges;
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
    for (const auto& row : breakdown(thread)) totals[{row.activity, row.primitive}] += row.cycles;
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

struct ProcessGroup {
  ThreadTimes sum{0, 0, 0};
  std::size_t threads = 0;
  Cycles last_finish = 0;
  bool all_finished = true;
};

ProcessGroup group_of(const Kernel& kernel, const ProcessSpec& spec) {
  ProcessGroup group;
  for (const auto& t : kernel.threads()) {
    if (t.process->spec != &spec) continue;
    auto times = thread_times(t, kernel.makespan());
    group.sum.run += times.run, group.sum.ready += times.ready, group.sum.blocked += times.blocked;
    ++group.threads;
    if (t.finished_at == kNever)
      group.all_finished = false;
    else
      group.last_finish = std::max(group.last_finish, t.finished_at);
  }
  return group;
}

} // namespace

ThreadTimes thread_times(const Thread& thread, Cycles end) {
  ThreadTimes times{thread.run_cycles, thread.ready_cycles, thread.blocked_cycles};
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
    Cycles window = last[i] - first[i];
    if (window > 0) {
      s.per_second = static_cast<double>(s.count) * hz / static_cast<double>(window);
      s.bytes_per_second = static_cast<double>(s.bytes) * hz / static_cast<double>(window);
    }
  }
  return stats;
}

void print_summary(std::ostream& out, const Scenario& scenario, const Kernel& kernel) {
  const MachineModel& m = kernel.model();
  double hz = m.hz;
  auto ns = [&](double cycles) { return fixed(cycles * 1e9 / hz, 3); };
  Cycles end = kernel.makespan();
  out << "ipcsim " << ipcsim_version() << ": " << scenario.file << " (seed " << m.seed << ")\n";
  std::string description = scenario.resolved.value("description", "");
  if (!description.empty()) out << "  " << description << "\n";
  out << "machine: " << m.cores << (m.cores == 1 ? " core" : " cores") << " at " << format_hz(hz)
      << ", costs " << m.costs.preset << (m.costs.tagged_tlb ? " (tagged TLB)" : "") << ", scheduler "
      << scheduler_text(m.scheduler_params) << "\n";
  out << "simulated time: " << end << " cycles = " << ns(static_cast<double>(end)) << " ns\n";
  if (const DeadlockReport* d = kernel.deadlock()) {
    out << "result: DEADLOCK at cycle " << d->at
        << ": every live thread is blocked and no timer is pending\n";
    for (const auto& w : d->waiters)
      out << "  " << w.thread << " waits for " << w.waits_on << " since cycle " << w.since << "\n";
  } else {
    out << "result: completed, every thread exited\n";
  }
  for (const auto& process : kernel.processes())
    if (process.killed_by)
      out << "  " << process.display_name() << " was terminated by "
          << (process.killed_by == kSIGPIPE ? std::string("SIGPIPE")
                                            : "signal " + std::to_string(process.killed_by))
          << "\n";

  const auto& console = kernel.console();
  if (!console.empty()) {
    out << "\nconsole (what the scripts printed)\n";
    // Runs of a second or more (a courier's 15-minute wait) read better in seconds.
    bool seconds = static_cast<double>(end) * 1e9 / hz >= 1e9;
    auto stamp = [&](Cycles at) {
      return seconds ? fixed(static_cast<double>(at) / hz, 9) + " s" : ns(static_cast<double>(at)) + " ns";
    };
    std::size_t width = 0;
    for (const auto& line : console) width = std::max(width, stamp(line.at).size());
    for (const auto& line : console)
      out << "  " << pad(stamp(line.at), std::max<std::size_t>(width, 18)) << "  "
          << pad(kernel.threads()[line.thread].display_name(), 12, true) << " " << line.text << "\n";
  }

  auto failed = failed_calls(kernel);
  if (!failed.empty()) {
    out << "\nfailed calls\n  " << pad("thread", 20, true) << pad("op", 12, true) << pad("error", 14, true)
        << pad("count", 10) << "\n";
    for (const auto& f : failed)
      out << "  " << pad(f.thread, 20, true) << pad(f.op, 12, true) << pad(f.error, 14, true)
          << pad(std::to_string(f.count), 10) << "\n";
  }

  for (const auto& table : kernel.ipc_listing()) {
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

  auto stats = interval_stats(kernel);
  if (!stats.empty()) {
    out << "\nmeasured intervals\n";
    out << "  " << pad("interval", 16, true) << pad("count", 9) << pad("mean ns", 14) << pad("p50 ns", 14)
        << pad("p99 ns", 14) << pad("max ns", 14) << pad("mean cycles", 14) << pad("per second", 14) << "\n";
    for (const auto& s : stats) {
      out << "  " << pad(s.name, 16, true) << pad(std::to_string(s.count), 9) << pad(ns(s.mean_cycles), 14)
          << pad(ns(static_cast<double>(s.p50)), 14) << pad(ns(static_cast<double>(s.p99)), 14)
          << pad(ns(static_cast<double>(s.max)), 14) << pad(fixed(s.mean_cycles, 1), 14)
          << pad(fixed(s.per_second, 1), 14) << "\n";
      if (s.bytes)
        out << "  " << pad("", 16, true) << " throughput " << fixed(s.bytes_per_second / 1e6, 3) << " MB/s\n";
    }
    out << "  (cycles: p50 ";
    for (std::size_t i = 0; i < stats.size(); ++i)
      out << (i ? ", " : "") << stats[i].name << " " << stats[i].p50 << "/" << stats[i].p99 << "/"
          << stats[i].max;
    out << " as p50/p99/max)\n";
  }

  // Time columns are 16 wide, wider when a long run needs it (a 25-minute story, many threads).
  const auto& threads = kernel.threads();
  Cycles longest = end;
  if (threads.size() > 32)
    for (const auto& spec : m.processes) {
      ProcessGroup g = group_of(kernel, *spec);
      longest = std::max({longest, g.sum.run, g.sum.ready, g.sum.blocked});
    }
  const std::size_t tw = std::max<std::size_t>(16, ns(static_cast<double>(longest)).size() + 2);
  out << "\ncores\n  " << pad("core", 6, true) << pad("busy %", 8) << pad("busy ns", tw) << pad("idle ns", tw)
      << pad("switches", 10) << "\n";
  for (const auto& core : kernel.cores()) {
    Cycles busy = std::min(core->busy_cycles, end);
    out << "  " << pad(std::to_string(core->index), 6, true) << pad(percent(busy, end), 8)
        << pad(ns(static_cast<double>(busy)), tw) << pad(ns(static_cast<double>(end - busy)), tw)
        << pad(std::to_string(core->context_switches), 10) << "\n";
  }

  out << "\nthreads" << (threads.size() > 32 ? " (grouped by process: totals over every copy)" : "") << "\n  "
      << pad("thread", 20, true) << pad("count", 9) << pad("run ns", tw) << pad("ready ns", tw)
      << pad("blocked ns", tw) << pad("finished ns", tw) << "\n";
  if (threads.size() <= 32) {
    for (const auto& t : threads) {
      auto times = thread_times(t, end);
      out << "  " << pad(t.display_name(), 20, true) << pad("1", 9)
          << pad(ns(static_cast<double>(times.run)), tw) << pad(ns(static_cast<double>(times.ready)), tw)
          << pad(ns(static_cast<double>(times.blocked)), tw)
          << pad(t.finished_at == kNever ? "-" : ns(static_cast<double>(t.finished_at)), tw) << "\n";
    }
  } else {
    for (const auto& spec : m.processes) {
      ProcessGroup g = group_of(kernel, *spec);
      out << "  " << pad(spec->name, 20, true) << pad(std::to_string(g.threads), 9)
          << pad(ns(static_cast<double>(g.sum.run)), tw) << pad(ns(static_cast<double>(g.sum.ready)), tw)
          << pad(ns(static_cast<double>(g.sum.blocked)), tw)
          << pad(g.all_finished ? ns(static_cast<double>(g.last_finish)) : "-", tw) << "\n";
    }
  }

  auto totals = total_breakdown(kernel);
  Cycles all = 0;
  for (const auto& [key, cycles] : totals) all += cycles;
  out << "\nwhere the cycles went (all threads; " << all << " cycles)\n  " << pad("activity", 12, true)
      << pad("primitive", 24, true) << pad("cycles", 16) << pad("%", 8) << "\n";
  for (const auto& [key, cycles] : totals)
    out << "  " << pad(key.first, 12, true) << pad(key.second, 24, true) << pad(std::to_string(cycles), 16)
        << pad(percent(cycles, all), 8) << "\n";
}

std::vector<FailedCalls> failed_calls(const Kernel& kernel) {
  std::vector<FailedCalls> out;
  for (const auto& f : kernel.failed_calls())
    out.push_back({kernel.threads()[f.thread].display_name(), activity_names()[f.activity],
                   errno_name(f.error), f.count});
  return out;
}

json summary_json(const Scenario& scenario, const Kernel& kernel) {
  const MachineModel& m = kernel.model();
  Cycles end = kernel.makespan();
  auto to_ns = [&](double cycles) { return std::round(cycles * 1e9 / m.hz * 1000.0) / 1000.0; };
  json out;
  out["context"] = {{"ipcsim_version", ipcsim_version()},
                    {"git_revision", ipcsim_git_revision()},
                    {"simgrid_version", engine_version()},
                    {"scenario_file", scenario.file},
                    {"scenario_hash", "fnv1a64:" + scenario.hash},
                    {"seed", m.seed},
                    {"scenario", scenario.resolved}};
  out["result"] = kernel.deadlock() ? "deadlock" : "completed";
  out["simulated_cycles"] = end;
  out["simulated_ns"] = to_ns(static_cast<double>(end));
  if (const DeadlockReport* d = kernel.deadlock()) {
    json waiters = json::array();
    for (const auto& w : d->waiters)
      waiters.push_back({{"thread", w.thread}, {"waits_for", w.waits_on}, {"since_cycle", w.since}});
    out["deadlock"] = {{"at_cycle", d->at}, {"waiters", waiters}};
  }
  json intervals = json::array();
  for (const auto& s : interval_stats(kernel)) {
    intervals.push_back({{"name", s.name},
                         {"count", s.count},
                         {"mean_cycles", s.mean_cycles},
                         {"p50_cycles", s.p50},
                         {"p99_cycles", s.p99},
                         {"max_cycles", s.max},
                         {"min_cycles", s.min},
                         {"mean_ns", to_ns(s.mean_cycles)},
                         {"p50_ns", to_ns(static_cast<double>(s.p50))},
                         {"p99_ns", to_ns(static_cast<double>(s.p99))},
                         {"max_ns", to_ns(static_cast<double>(s.max))},
                         {"per_second", s.per_second},
                         {"bytes", s.bytes},
                         {"bytes_per_second", s.bytes_per_second}});
  }
  out["intervals"] = intervals;
  json console = json::array();
  for (const auto& line : kernel.console())
    console.push_back({{"cycle", line.at},
                       {"ns", to_ns(static_cast<double>(line.at))},
                       {"thread", kernel.threads()[line.thread].display_name()},
                       {"text", line.text}});
  out["console"] = console;
  json failed = json::array();
  for (const auto& f : failed_calls(kernel))
    failed.push_back({{"thread", f.thread}, {"op", f.op}, {"error", f.error}, {"count", f.count}});
  out["failed_calls"] = failed;
  json ipc = json::array();
  for (const auto& table : kernel.ipc_listing()) {
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
  for (const auto& process : kernel.processes())
    if (process.killed_by)
      killed.push_back({{"process", process.display_name()}, {"signal", process.killed_by}});
  out["killed"] = killed;
  json cores = json::array();
  for (const auto& core : kernel.cores()) {
    Cycles busy = std::min(core->busy_cycles, end);
    cores.push_back({{"core", core->index},
                     {"busy_cycles", busy},
                     {"idle_cycles", end - busy},
                     {"utilisation", end ? static_cast<double>(busy) / static_cast<double>(end) : 0.0},
                     {"context_switches", core->context_switches}});
  }
  out["cores"] = cores;
  // Per process group: a million threads would make a per-thread list unreadable; threads.csv has them.
  json groups = json::array();
  for (const auto& spec : m.processes) {
    ProcessGroup g = group_of(kernel, *spec);
    groups.push_back({{"process", spec->name},
                      {"threads", g.threads},
                      {"run_cycles", g.sum.run},
                      {"ready_cycles", g.sum.ready},
                      {"blocked_cycles", g.sum.blocked}});
  }
  out["processes"] = groups;
  json breakdown_totals = json::array();
  for (const auto& [key, cycles] : total_breakdown(kernel))
    breakdown_totals.push_back({{"activity", key.first}, {"primitive", key.second}, {"cycles", cycles}});
  out["breakdown"] = breakdown_totals;
  return out;
}

void write_outputs(const std::string& dir, const Scenario& scenario, const Kernel& kernel) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) throw UserError("--out " + dir + ": cannot create the directory: " + ec.message());
  auto open = [&](const std::string& name) {
    std::ofstream file(std::filesystem::path(dir) / name, std::ios::binary);
    if (!file) throw UserError("--out " + dir + ": cannot write " + name);
    return file;
  };
  const auto& names = kernel.model().interval_names;
  const auto& threads = kernel.threads();
  {
    auto file = open("summary.json");
    file << summary_json(scenario, kernel).dump(2) << "\n";
  }
  {
    auto file = open("records.csv");
    file << "interval,thread,start_cycle,end_cycle,cycles,bytes\n";
    for (const auto& r : kernel.records())
      file << names[r.name] << "," << threads[r.thread].display_name() << "," << r.start << "," << r.end
           << "," << (r.end - r.start) << "," << r.bytes << "\n";
  }
  {
    auto file = open("breakdown.csv");
    file << "thread,activity,primitive,cycles\n";
    for (const auto& t : threads)
      for (const auto& row : breakdown(t))
        file << t.display_name() << "," << row.activity << "," << row.primitive << "," << row.cycles << "\n";
  }
  {
    auto file = open("threads.csv");
    file << "thread,process,state,run_cycles,ready_cycles,blocked_cycles,finished_cycle\n";
    static const char* states[] = {"not_started", "ready", "running", "blocked", "exited"};
    for (const auto& t : threads) {
      auto times = thread_times(t, kernel.makespan());
      file << t.display_name() << "," << t.process->display_name() << "," << states[static_cast<int>(t.state)]
           << "," << times.run << "," << times.ready << "," << times.blocked << ","
           << (t.finished_at == kNever ? std::string("") : std::to_string(t.finished_at)) << "\n";
    }
  }
}

} // namespace ipcsim
