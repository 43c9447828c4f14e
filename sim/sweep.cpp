// `ipcsim sweep`: a grid of runs of one scenario, each point in its own process (the ipcsim binary
// itself: `ipcsim sweep-point DIR N`), -j at a time; resumable; or written out as job lines for GNU
// parallel or a Slurm array, gathered by `ipcsim sweep-merge` (docs/sweep.md).
#include "experiment.hpp"

#include "cli.hpp"
#include "error.hpp"
#include "limits.hpp"
#include "report.hpp"
#include "units.hpp"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <set>
#include <spawn.h>
#include <sstream>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

extern char** environ;

namespace ipcsim {

namespace fs = std::filesystem;

namespace {

std::string read_text(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw UserError(path.string() + ": cannot read: " + std::strerror(errno));
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

void write_text(const fs::path& path, const std::string& text) {
  std::ofstream file(path, std::ios::binary);
  if (!file || !(file << text)) throw UserError(path.string() + ": cannot write: " + std::strerror(errno));
}

std::string point_name(std::size_t point) {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%04zu", point);
  return buffer;
}

// "params.size=8, machine.cores=1" (and the seed when the sweep gives one).
std::string describe_point(const json& point) {
  std::string text;
  for (const auto& [path, value] : point.at("values").items())
    text += (text.empty() ? "" : ", ") + path + "=" + value.get<std::string>();
  if (!point.at("seed").is_null()) text += (text.empty() ? "seed " : ", seed ") + point.at("seed").dump();
  return text;
}

// The sets that make a point: the sweep's own --set, then its values.
std::vector<std::string> point_sets(const json& sweep, const json& point) {
  std::vector<std::string> sets = sweep.at("sets").get<std::vector<std::string>>();
  for (const auto& [path, value] : point.at("values").items())
    sets.push_back(path + "=" + value.get<std::string>());
  return sets;
}

// A single-quoted shell word, for jobs.txt.
std::string shell_word(const std::string& text) {
  if (!text.empty() &&
      text.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-./=+,:@") ==
          std::string::npos)
    return text;
  std::string out = "'";
  for (char c : text) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

// One CSV line into fields (RFC 4180 quotes).
std::vector<std::string> csv_fields(const std::string& line) {
  std::vector<std::string> fields(1);
  bool quoted = false;
  for (std::size_t i = 0; i < line.size(); ++i) {
    char c = line[i];
    if (quoted) {
      if (c == '"' && i + 1 < line.size() && line[i + 1] == '"') {
        fields.back() += '"';
        ++i;
      } else if (c == '"') {
        quoted = false;
      } else {
        fields.back() += c;
      }
    } else if (c == '"') {
      quoted = true;
    } else if (c == ',') {
      fields.emplace_back();
    } else {
      fields.back() += c;
    }
  }
  return fields;
}

std::string self_binary(const std::string& given) {
  if (!given.empty()) return given;
  if (const char* env = std::getenv("IPCSIM_BINARY"); env && *env) return env;
  std::error_code ec;
  auto path = fs::read_symlink("/proc/self/exe", ec);
  if (ec) throw UserError("sweep: cannot find the ipcsim binary to run the points with: " + ec.message());
  return path.string();
}

json build_sweep(const SweepOptions& options) {
  json vary = json::array();
  std::set<std::string> paths;
  for (const auto& v : options.vary) {
    auto eq = v.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == v.size())
      throw UserError("--vary " + v +
                      ": expected PATH=v1,v2,... or PATH=FROM..TO*FACTOR, such as params.size=8..1MiB*8");
    std::string path = v.substr(0, eq);
    if (!paths.insert(path).second) throw UserError("--vary " + v + ": " + path + " is varied twice");
    for (const auto& set : options.sets)
      if (set.substr(0, set.find('=')) == path)
        throw UserError("--vary " + v + ": --set " + set + " sets the same path; give one or the other");
    vary.push_back({{"path", path}, {"values", expand_vary_values(v.substr(eq + 1), "--vary " + v)}});
  }
  std::size_t total = options.repeat;
  for (const auto& axis : vary) {
    total *= axis.at("values").size();
    if (total > 1000000) throw UserError("--vary: the grid has more than 1000000 points");
  }
  json points = json::array();
  std::vector<std::size_t> at(vary.size(), 0);
  for (std::size_t n = 0; n < total; ++n) {
    std::size_t grid = n / options.repeat, repeat = n % options.repeat;
    json values = json::object();
    std::size_t rest = grid;
    for (std::size_t a = vary.size(); a-- > 0;) {
      const auto& axis_values = vary[a].at("values");
      at[a] = rest % axis_values.size();
      rest /= axis_values.size();
    }
    for (std::size_t a = 0; a < vary.size(); ++a)
      values[vary[a].at("path").get<std::string>()] = vary[a].at("values")[at[a]];
    json seed = options.seed_from ? json(*options.seed_from + repeat) : json();
    points.push_back({{"point", n}, {"values", values}, {"seed", seed}, {"dir", "points/" + point_name(n)}});
  }
  std::string file = fs::absolute(options.scenario_file).lexically_normal().string();
  return {{"ipcsim_version", ipcsim_version()},
          {"scenario_file", file},
          {"scenario_text_hash",
           "fnv1a64:" + fnv1a64_hex(read_input_file(file, "scenario file", options.load.limits.input_bytes))},
          {"sets", options.sets},
          {"limits", options.run_flags},
          {"vary", vary},
          {"repeat", options.repeat},
          {"seed_from", options.seed_from ? json(*options.seed_from) : json()},
          {"points", points}};
}

LoadOptions point_load_options(const json& sweep, const json& point) {
  LoadOptions load;
  load.sets = point_sets(sweep, point);
  if (!point.at("seed").is_null()) load.seed = point.at("seed").get<std::uint64_t>();
  auto flags = sweep.at("limits").get<std::vector<std::string>>();
  for (std::size_t i = 0; i + 1 < flags.size(); i += 2) {
    if (flags[i] == "--limit") apply_limit(load.limits, flags[i + 1]);
    if (flags[i] == "--max-time") set_max_time(load.limits, flags[i + 1]);
    if (flags[i] == "--timeout") set_timeout(load.limits, flags[i + 1]);
  }
  return load;
}

bool point_done(const fs::path& dir, const json& point) {
  return fs::exists(dir / point.at("dir").get<std::string>() / "summary.json");
}

json read_sweep(const std::string& dir) {
  fs::path file = fs::path(dir) / "sweep.json";
  if (!fs::exists(file))
    throw UserError(dir + ": no sweep.json here: not a sweep's directory (ipcsim sweep --out DIR)");
  try {
    return json::parse(read_text(file));
  } catch (const json::exception& e) {
    throw UserError(file.string() + ": not a sweep's definition: " + e.what());
  }
}

// Progress on standard error: a bar with the time left on a terminal, a line per point otherwise.
class Progress {
public:
  Progress(std::ostream& err, std::size_t total, std::size_t done)
      : err_(err), total_(total), done_(done), first_(done), start_(std::chrono::steady_clock::now()),
        terminal_(&err == &std::cerr && ::isatty(2)) {}
  void finished(const json& point) {
    ++done_;
    if (!terminal_) {
      err_ << "point " << done_ << "/" << total_ << " done: " << describe_point(point) << "\n";
      return;
    }
    double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    double left = elapsed / static_cast<double>(done_ - first_) * static_cast<double>(total_ - done_);
    constexpr std::size_t kWidth = 30;
    std::size_t filled = total_ ? kWidth * done_ / total_ : kWidth;
    auto seconds = static_cast<long>(left + 0.5);
    char time[32];
    std::snprintf(time, sizeof time, "%ld:%02ld", seconds / 60, seconds % 60);
    err_ << "\r[" << std::string(filled, '#') << std::string(kWidth - filled, '.') << "] " << done_ << "/"
         << total_ << " points, " << time << " left " << std::flush;
    if (done_ == total_) err_ << "\n";
  }
  void abandon() {
    if (terminal_) err_ << "\n";
  }

private:
  std::ostream& err_;
  std::size_t total_, done_, first_;
  std::chrono::steady_clock::time_point start_;
  bool terminal_;
};

// The point's "error: " line, not whatever came before it on stderr (a sanitizer's or SimGrid's
// warning); failing that, its first line.
std::string first_error_line(const std::string& text) {
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind("error: ", 0) == 0) return line.substr(7);
    if (line.rfind("internal error", 0) == 0) return line;
  }
  std::string line = text.substr(0, text.find('\n'));
  return line.empty() ? "(no message)" : line;
}

} // namespace

std::vector<std::string> expand_vary_values(const std::string& values, const std::string& option) {
  auto dots = values.find("..");
  if (dots == std::string::npos) {
    std::vector<std::string> list;
    std::stringstream text(values);
    for (std::string v; std::getline(text, v, ',');) {
      if (v.empty()) throw UserError(option + ": an empty value in the list");
      list.push_back(v);
    }
    if (values.back() == ',') throw UserError(option + ": an empty value in the list");
    return list;
  }
  auto star = values.find('*', dots);
  const std::string expected =
      ": expected FROM..TO*FACTOR, FROM and TO whole numbers or sizes (8, 4KiB, 1MiB), "
      "FACTOR a whole number of at least 2, such as 8..1MiB*8";
  if (star == std::string::npos) throw UserError(option + expected);
  auto number = [&](const std::string& text) -> std::uint64_t {
    if (auto bytes = parse_bytes(text)) return *bytes;
    throw UserError(option + ": \"" + text + "\" is not a whole number or a size" + expected.substr(1));
  };
  std::uint64_t from = number(values.substr(0, dots));
  std::uint64_t to = number(values.substr(dots + 2, star - dots - 2));
  std::string factor_text = values.substr(star + 1);
  std::uint64_t factor = 0;
  if (factor_text.empty() || factor_text.size() > 9 ||
      !std::all_of(factor_text.begin(), factor_text.end(), [](char c) { return c >= '0' && c <= '9'; }) ||
      (factor = std::stoull(factor_text)) < 2)
    throw UserError(option + ": the factor \"" + factor_text + "\" is not a whole number of at least 2");
  if (from == 0) throw UserError(option + ": FROM is 0, and 0 times any factor stays 0; start at 1 or more");
  if (from > to)
    throw UserError(option + ": FROM " + std::to_string(from) + " is above TO " + std::to_string(to));
  std::vector<std::string> list;
  for (std::uint64_t v = from; v <= to; v *= factor) {
    list.push_back(std::to_string(v));
    if (v > to / factor) break;
  }
  return list;
}

int run_sweep(const SweepOptions& options, std::ostream& out, std::ostream& err) {
  json sweep = build_sweep(options);
  const fs::path dir = fs::absolute(options.out_dir).lexically_normal();
  const auto& points = sweep.at("points");
  // Every point must load before any runs: a mistake in the last one should not cost the others.
  for (const auto& point : points) {
    try {
      load_scenario(options.scenario_file, point_load_options(sweep, point));
    } catch (const UserError& e) {
      throw UserError("sweep point " + std::to_string(point.at("point").get<std::size_t>()) + " (" +
                      describe_point(point) + "): " + e.what());
    }
  }
  std::error_code ec;
  fs::create_directories(dir / "points", ec);
  if (ec) throw UserError("--out " + options.out_dir + ": cannot create the directory: " + ec.message());
  if (fs::exists(dir / "sweep.json")) {
    json before = read_sweep(dir.string());
    if (before != sweep) {
      std::string what;
      for (const auto& [key, value] : sweep.items())
        if (!before.contains(key) || before.at(key) != value) what += (what.empty() ? "" : ", ") + key;
      throw UserError("--out " + options.out_dir + " holds a different sweep (sweep.json differs: " +
                      (what.empty() ? std::string("its layout") : what) + "); use another directory");
    }
  } else {
    write_text(dir / "sweep.json", sweep.dump(2) + "\n");
  }
  const std::string self = self_binary(options.self);
  std::vector<std::size_t> todo;
  for (const auto& point : points)
    if (!point_done(dir, point)) todo.push_back(point.at("point").get<std::size_t>());
  if (options.emit_jobs) {
    std::string jobs;
    for (std::size_t n : todo)
      jobs += shell_word(self) + " sweep-point " + shell_word(dir.string()) + " " + std::to_string(n) + "\n";
    write_text(dir / "jobs.txt", jobs);
    write_text(dir / "merge.txt", shell_word(self) + " sweep-merge " + shell_word(dir.string()) + "\n");
    out << "sweep: " << points.size() << " points, " << todo.size()
        << " to run: " << (dir / "jobs.txt").string() << " (one command per line), then "
        << (dir / "merge.txt").string() << "\n";
    return kExitOk;
  }
  if (todo.size() < points.size())
    err << "sweep: " << points.size() - todo.size() << " of " << points.size() << " points already done in "
        << options.out_dir << "; running the other " << todo.size() << "\n";
  unsigned jobs = options.jobs ? options.jobs : std::max(1u, std::thread::hardware_concurrency());
  Progress progress(err, points.size(), points.size() - todo.size());
  std::map<pid_t, std::size_t> running;
  std::size_t next = 0;
  std::string failure;
  int failure_status = 0;
  while ((next < todo.size() && failure.empty()) || !running.empty()) {
    while (failure.empty() && next < todo.size() && running.size() < jobs) {
      std::size_t n = todo[next++];
      std::string index = std::to_string(n);
      std::string error_file = (dir / "points" / (point_name(n) + ".err")).string();
      posix_spawn_file_actions_t actions;
      posix_spawn_file_actions_init(&actions);
      posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
      posix_spawn_file_actions_addopen(&actions, 2, error_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      std::string dir_text = dir.string();
      std::vector<char*> argv{const_cast<char*>(self.c_str()), const_cast<char*>("sweep-point"),
                              const_cast<char*>(dir_text.c_str()), const_cast<char*>(index.c_str()), nullptr};
      pid_t pid = 0;
      int rc = posix_spawn(&pid, self.c_str(), &actions, nullptr, argv.data(), environ);
      posix_spawn_file_actions_destroy(&actions);
      if (rc != 0) {
        failure = "cannot start " + self + ": " + std::strerror(rc);
        failure_status = kExitInternal;
        break;
      }
      running[pid] = n;
    }
    if (running.empty()) break;
    int status = 0;
    pid_t pid = ::waitpid(-1, &status, 0);
    if (pid < 0) {
      if (errno == EINTR) continue;
      failure = std::string("waitpid: ") + std::strerror(errno);
      failure_status = kExitInternal;
      break;
    }
    auto found = running.find(pid);
    if (found == running.end()) continue; // not one of ours
    std::size_t n = found->second;
    running.erase(found);
    const json& point = points[n];
    fs::path error_file = dir / "points" / (point_name(n) + ".err");
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : kExitInternal;
    if (code == kExitOk && point_done(dir, point)) {
      fs::remove(error_file, ec);
      progress.finished(point);
      continue;
    }
    if (failure.empty()) {
      std::string text = fs::exists(error_file) ? read_text(error_file) : "";
      if (!WIFEXITED(status))
        text = "the point's process ended by signal " + std::to_string(WTERMSIG(status));
      failure =
          "sweep point " + std::to_string(n) + " (" + describe_point(point) + "): " + first_error_line(text);
      failure_status = code == kExitInternal ? kExitInternal : kExitBadInput;
    }
  }
  if (!failure.empty()) {
    progress.abandon();
    err << "error: " << failure << "\n";
    return failure_status;
  }
  int merged = run_sweep_merge(dir.string(), out, err);
  return merged;
}

int run_sweep_point(const std::string& dir_text, const std::string& index, std::ostream& out,
                    std::ostream& err) {
  json sweep = read_sweep(dir_text);
  const fs::path dir(dir_text);
  const auto& points = sweep.at("points");
  bool digits = !index.empty() && index.size() <= 9 &&
                std::all_of(index.begin(), index.end(), [](char c) { return c >= '0' && c <= '9'; });
  if (!digits || std::stoull(index) >= points.size())
    throw UserError("sweep-point " + index + ": expected a point from 0 to " +
                    std::to_string(points.size() - 1));
  const json& point = points[std::stoull(index)];
  if (point_done(dir, point)) {
    out << "sweep point " << index << " is already done\n";
    return kExitOk;
  }
  const fs::path final_dir = dir / point.at("dir").get<std::string>();
  const fs::path partial = final_dir.string() + ".partial";
  std::error_code ec;
  fs::remove_all(partial, ec);
  std::vector<std::string> args{"run", sweep.at("scenario_file").get<std::string>()};
  for (const auto& set : point_sets(sweep, point)) args.insert(args.end(), {"--set", set});
  if (!point.at("seed").is_null()) args.insert(args.end(), {"--seed", point.at("seed").dump()});
  for (const auto& flag : sweep.at("limits")) args.push_back(flag.get<std::string>());
  args.insert(args.end(), {"--out", partial.string(), "-q"});
  std::ostringstream ignored;
  int status = run_cli(args, ignored, err);
  if (status != kExitOk && status != kExitDeadlock) return status;
  write_text(partial / "status", std::to_string(status) + "\n");
  fs::remove_all(final_dir, ec);
  fs::rename(partial, final_dir, ec);
  if (ec)
    throw UserError(final_dir.string() + ": cannot rename the finished point into place: " + ec.message());
  return kExitOk;
}

int run_sweep_merge(const std::string& dir_text, std::ostream& out, std::ostream&) {
  json sweep = read_sweep(dir_text);
  const fs::path dir(dir_text);
  const auto& points = sweep.at("points");
  std::vector<std::string> missing;
  for (const auto& point : points)
    if (!point_done(dir, point)) missing.push_back(std::to_string(point.at("point").get<std::size_t>()));
  if (!missing.empty()) {
    std::string list;
    for (std::size_t i = 0; i < missing.size() && i < 10; ++i) list += (i ? ", " : "") + missing[i];
    if (missing.size() > 10) list += ", and " + std::to_string(missing.size() - 10) + " more";
    throw UserError("sweep-merge " + dir_text + ": " + std::to_string(missing.size()) + " of " +
                    std::to_string(points.size()) + " points are not done (" + list +
                    "); run them first (ipcsim sweep again, or the lines of jobs.txt)");
  }
  std::vector<std::string> paths;
  for (const auto& axis : sweep.at("vary")) paths.push_back(axis.at("path").get<std::string>());
  // Per point: its row's fixed part, and its intervals (name -> the fields of intervals.csv).
  struct PointRow {
    std::string head, seed;
    std::vector<std::pair<std::string, std::vector<std::string>>> intervals;
  };
  std::vector<PointRow> rows;
  std::vector<std::string> names; // first-seen order
  std::set<std::string> known;
  for (const auto& point : points) {
    fs::path pdir = dir / point.at("dir").get<std::string>();
    json summary = json::parse(read_text(pdir / "summary.json"));
    PointRow row;
    row.seed = point.at("seed").is_null() ? summary.at("context").at("seed").dump() : point.at("seed").dump();
    bool deadlock = false;
    Cycles cycles = 0;
    double ns = 0;
    if (summary.contains("machines")) {
      for (const auto& m : summary.at("machines")) {
        deadlock = deadlock || m.at("result") == "deadlock";
        cycles = std::max(cycles, m.at("simulated_cycles").get<Cycles>());
        ns = std::max(ns, m.at("simulated_ns").get<double>());
      }
    } else {
      deadlock = summary.at("result") == "deadlock";
      cycles = summary.at("simulated_cycles").get<Cycles>();
      ns = summary.at("simulated_ns").get<double>();
    }
    row.head = std::to_string(point.at("point").get<std::size_t>());
    for (const auto& path : paths)
      row.head += "," + csv_field(point.at("values").at(path).get<std::string>());
    row.head += "," + row.seed + "," + summary.at("context").at("scenario_hash").get<std::string>() + "," +
                (deadlock ? "deadlock" : "completed") + "," + std::to_string(cycles) + "," + fixed3(ns);
    std::istringstream lines(read_text(pdir / "intervals.csv"));
    std::string line;
    std::getline(lines, line);
    bool several = line.rfind("machine,", 0) == 0;
    while (std::getline(lines, line)) {
      auto fields = csv_fields(line);
      if (several) {
        fields[1] = fields[0] + "/" + fields[1];
        fields.erase(fields.begin());
      }
      if (fields.size() != 17)
        throw UserError((pdir / "intervals.csv").string() + ": not an intervals.csv: " + line);
      if (known.insert(fields[0]).second) names.push_back(fields[0]);
      std::string name = fields[0];
      row.intervals.emplace_back(name, fields);
    }
    rows.push_back(std::move(row));
  }
  // sweep.csv: the wide form, a row per point.
  static const std::vector<std::pair<const char*, std::size_t>> kWide{
      {"count", 1},   {"min_ns", 8},     {"mean_ns", 9},     {"p50_ns", 10},          {"p99_ns", 11},
      {"max_ns", 12}, {"stddev_ns", 13}, {"per_second", 14}, {"bytes_per_second", 16}};
  std::string wide = "point";
  for (const auto& path : paths) wide += "," + csv_field(path);
  wide += ",seed,scenario_hash,result,simulated_cycles,simulated_ns";
  for (const auto& name : names)
    for (const auto& [column, index] : kWide) wide += "," + csv_field(name + "." + column);
  wide += "\n";
  std::string head = "point";
  for (const auto& path : paths) head += "," + csv_field(path);
  std::string lng = head + ",seed," + interval_csv_header() + "\n";
  for (std::size_t p = 0; p < rows.size(); ++p) {
    const auto& row = rows[p];
    wide += row.head;
    for (const auto& name : names) {
      const std::vector<std::string>* fields = nullptr;
      for (const auto& [n, f] : row.intervals)
        if (n == name) fields = &f;
      for (const auto& [column, index] : kWide) wide += "," + (fields ? (*fields)[index] : std::string());
    }
    wide += "\n";
    std::string prefix = std::to_string(p);
    for (const auto& path : paths)
      prefix += "," + csv_field(points[p].at("values").at(path).get<std::string>());
    prefix += "," + row.seed;
    for (const auto& [name, fields] : row.intervals) {
      std::string line = prefix + "," + csv_field(fields[0]);
      for (std::size_t i = 1; i < fields.size(); ++i) line += "," + fields[i];
      lng += line + "\n";
    }
  }
  write_text(dir / "sweep.csv", wide);
  write_text(dir / "intervals.csv", lng);
  out << "sweep: " << points.size() << " points in " << dir_text << ": sweep.csv, intervals.csv\n";
  return kExitOk;
}

} // namespace ipcsim
