#include "check_preset.hpp"

#include "limits.hpp"

#include "costs.hpp"
#include "error.hpp"
#include "kernel.hpp"
#include "params.hpp"
#include "scenario.hpp"
#include "sched.hpp"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <map>
#include <sstream>

namespace ipcsim {

namespace {

const char* const kHeader =
    "kind,mechanism,bytes,placement,trials,ops_per_trial,median_ns,p99_ns,min_ns,bytes_per_s";
const std::vector<std::string> kKinds = {"roundtrip",  "stream",      "send_call",    "recv_call",
                                         "wakeup",     "wakeup_call", "null_syscall", "context_switch",
                                         "lone_yield", "memcpy"};
const std::vector<std::string> kIpcMechanisms = {"pipe",       "sysv_msg", "posix_mq",  "unix_stream",
                                                 "unix_dgram", "shm_spin", "shm_yield", "shm_futex"};
const std::vector<std::string> kPlacements = {"same_core", "cross_core"};
// The mechanisms whose messages go through a send and a receive system call (the call cells).
const std::vector<std::string> kCallMechanisms = {"pipe", "sysv_msg", "posix_mq", "unix_stream",
                                                  "unix_dgram"};

bool is_call(const std::string& kind) { return kind == "send_call" || kind == "recv_call"; }

// Hostbench's timing, reproduced: warm-up rounds (or trials) first, not counted.
constexpr int kRoundTripWarmup = 2, kRoundTrips = 20;
// Across cores an idle exit may vary from one wakeup to the next (a preset's idle_exit_spread): the
// median then needs more round trips to settle (about 1/sqrt(n) of the spread).
constexpr int kCrossCoreRoundTrips = 200;
int round_trips(const HostbenchRow& row) {
  return row.placement == "cross_core" ? kCrossCoreRoundTrips : kRoundTrips;
}
constexpr int kStreamWarmup = 1, kStreamTrials = 3;
// A stream trial's messages, as hostbench sent them, bounded so that a hostile file cannot make a
// check run for hours.
constexpr long kMaxStreamMessages = 10000;
constexpr unsigned kRingSlots = 10; // the course's BUFFER_SIZE, as in tools/hostbench
// How long hostbench's wakeup cells let the reader sleep before the write (wake_idle_ns there).
constexpr const char* kWakeIdle = "20us";

std::string join(const std::vector<std::string>& v, const std::string& sep) {
  std::string out;
  for (std::size_t i = 0; i < v.size(); ++i) out += (i ? sep : "") + v[i];
  return out;
}

std::vector<std::string> split_commas(const std::string& line) {
  std::vector<std::string> fields;
  std::string cur;
  for (char c : line) {
    if (c == ',') {
      fields.push_back(cur);
      cur.clear();
    } else {
      cur += c;
    }
  }
  fields.push_back(cur);
  return fields;
}

std::string where(const std::string& path, std::size_t line) {
  return path + ":" + std::to_string(line) + ": ";
}

double read_number(const std::string& text, const std::string& field, const std::string& at, bool positive) {
  double v = 0;
  std::size_t used = 0;
  bool ok = !text.empty() && text.find_first_not_of("0123456789.eE+-") == std::string::npos;
  if (ok) {
    try {
      v = std::stod(text, &used);
    } catch (const std::exception&) {
      ok = false;
    }
  }
  if (!ok || used != text.size() || !std::isfinite(v))
    throw UserError(at + "field " + field + ": '" + text + "' is not a number");
  if (positive ? !(v > 0) : v < 0)
    throw UserError(at + "field " + field + ": " + text + " must be " + (positive ? "above 0" : "0 or more"));
  return v;
}

std::uint64_t read_count(const std::string& text, const std::string& field, const std::string& at,
                         bool positive) {
  bool digits =
      !text.empty() && text.size() <= 15 && text.find_first_not_of("0123456789") == std::string::npos;
  if (!digits) throw UserError(at + "field " + field + ": '" + text + "' is not a whole number");
  std::uint64_t v = std::stoull(text);
  if (positive && v == 0) throw UserError(at + "field " + field + ": must be at least 1");
  return v;
}

// A switches_per_message note: "stream,MECHANISM,BYTES,PLACEMENT" and each side's voluntary and
// involuntary context switches per message (writer, then reader); their sum.
std::pair<std::string, double> parse_switches(const std::string& value, const std::string& at) {
  std::istringstream in(value);
  std::vector<std::string> tokens;
  for (std::string t; in >> t;) tokens.push_back(t);
  if (tokens.size() != 5 || tokens[0].rfind("stream,", 0) != 0 ||
      std::count(tokens[0].begin(), tokens[0].end(), ',') != 3)
    throw UserError(at +
                    "switches_per_message: expected a stream cell's name (stream,MECHANISM,BYTES,PLACEMENT) "
                    "and four numbers (the writer's voluntary and involuntary switches per message, then "
                    "the reader's), found '" +
                    value + "'");
  double total = 0;
  for (std::size_t i = 1; i < tokens.size(); ++i)
    total += read_number(tokens[i], "switches_per_message " + std::to_string(i), at, false);
  if (!std::isfinite(total))
    throw UserError(at + "switches_per_message: the four numbers add up past any count of switches");
  return {tokens[0], total};
}

// A wakeup_after_idle_ns note: the idle time (ns, a whole number), the median, 10th and 90th
// percentiles (ns) of the wakeup after it, the trials, and (files from 2026-11-29 06:00 UTC) the
// median of the writer's write() over the same trials.
WakeupRung parse_rung(const std::string& value, const std::string& at, std::size_t line) {
  std::istringstream in(value);
  std::vector<std::string> tokens;
  for (std::string t; in >> t;) tokens.push_back(t);
  if (tokens.size() != 5 && tokens.size() != 6)
    throw UserError(
        at +
        "wakeup_after_idle_ns: expected five or six fields (the idle time in ns, the median, 10th "
        "and 90th percentiles of the wakeup in ns, the trials, and the median write() in ns), found '" +
        value + "'");
  WakeupRung rung;
  rung.line = line;
  rung.idle_ns = read_count(tokens[0], "wakeup_after_idle_ns idle time", at, true);
  if (rung.idle_ns > kMaxLadderIdleNs)
    throw UserError(at + "wakeup_after_idle_ns: an idle time of " + tokens[0] +
                    " ns is above the largest accepted, " +
                    format_number(static_cast<double>(kMaxLadderIdleNs)) + " (10 s)");
  rung.median_ns = read_number(tokens[1], "wakeup_after_idle_ns median", at, true);
  rung.p10_ns = read_number(tokens[2], "wakeup_after_idle_ns 10th percentile", at, true);
  rung.p90_ns = read_number(tokens[3], "wakeup_after_idle_ns 90th percentile", at, true);
  rung.trials = static_cast<long>(read_count(tokens[4], "wakeup_after_idle_ns trials", at, true));
  if (tokens.size() == 6)
    rung.call_median_ns = read_number(tokens[5], "wakeup_after_idle_ns write() median", at, true);
  if (!(rung.p10_ns <= rung.median_ns && rung.median_ns <= rung.p90_ns))
    throw UserError(at +
                    "wakeup_after_idle_ns: the 10th percentile, the median and the 90th percentile must not "
                    "decrease, found " +
                    tokens[2] + ", " + tokens[1] + ", " + tokens[3]);
  return rung;
}

const std::vector<std::string>& mechanisms_of(const std::string& kind) {
  static const std::vector<std::string> getppid = {"getppid"}, yield = {"sched_yield"}, memcpy = {"memcpy"},
                                        pipe = {"pipe"};
  if (kind == "wakeup" || kind == "wakeup_call") return pipe;
  if (kind == "null_syscall") return getppid;
  if (kind == "context_switch" || kind == "lone_yield") return yield;
  if (kind == "memcpy") return memcpy;
  if (is_call(kind)) return kCallMechanisms;
  return kIpcMechanisms;
}

HostbenchRow parse_row(const std::string& line, const std::string& path, std::size_t number) {
  const std::string at = where(path, number);
  auto f = split_commas(line);
  if (f.size() != 10)
    throw UserError(at + "expected 10 comma-separated fields (" + kHeader + "), found " +
                    std::to_string(f.size()));
  HostbenchRow r;
  r.line = number;
  r.kind = f[0];
  if (std::find(kKinds.begin(), kKinds.end(), r.kind) == kKinds.end())
    throw UserError(at + "unknown kind '" + r.kind + "'; accepted: " + join(kKinds, ", "));
  r.mechanism = f[1];
  const auto& mechanisms = mechanisms_of(r.kind);
  if (std::find(mechanisms.begin(), mechanisms.end(), r.mechanism) == mechanisms.end())
    throw UserError(at + "unknown mechanism '" + r.mechanism + "' for kind " + r.kind +
                    "; accepted: " + join(mechanisms, ", "));
  r.bytes = read_count(f[2], "bytes", at,
                       r.kind == "roundtrip" || r.kind == "stream" || r.kind == "memcpy" ||
                           r.kind == "wakeup" || r.kind == "wakeup_call" || is_call(r.kind));
  // Simulated memory is real memory: a ring holds 20 messages, a memcpy row maps its size.
  const std::uint64_t max_bytes = r.kind == "memcpy" ? std::uint64_t{1} << 28 : std::uint64_t{1} << 24;
  if (r.bytes > max_bytes)
    throw UserError(at + "field bytes: " + f[2] + " is above " + (r.kind == "memcpy" ? "256 MiB" : "16 MiB") +
                    ", the largest " + r.kind + " this check simulates (hostbench measures up to " +
                    (r.kind == "memcpy" ? "64 MiB" : "1 MiB") + ")");
  r.placement = f[3];
  if (std::find(kPlacements.begin(), kPlacements.end(), r.placement) == kPlacements.end())
    throw UserError(at + "unknown placement '" + r.placement + "'; accepted: " + join(kPlacements, ", "));
  if ((r.kind == "wakeup" || r.kind == "wakeup_call") && r.placement != "cross_core")
    throw UserError(at + "a " + r.kind + " row wakes another core: its placement must be cross_core, not " +
                    r.placement);
  const bool one_cpu =
      r.kind == "null_syscall" || r.kind == "context_switch" || r.kind == "lone_yield" || r.kind == "memcpy";
  if (one_cpu && r.placement != "same_core")
    throw UserError(at + "a " + r.kind +
                    " row is measured on one CPU: its placement must be same_core, not " + r.placement);
  if (one_cpu && r.kind != "memcpy" && r.bytes != 0)
    throw UserError(at + "field bytes: a " + r.kind + " row moves no message: its bytes must be 0, not " +
                    f[2]);
  if (is_call(r.kind) && r.placement != "same_core")
    throw UserError(at + "a " + r.kind +
                    " row times one side of a stream on one core: its placement must be "
                    "same_core, not " +
                    r.placement);
  r.trials = static_cast<long>(read_count(f[4], "trials", at, true));
  r.ops_per_trial = static_cast<long>(read_count(f[5], "ops_per_trial", at, true));
  r.median_ns = read_number(f[6], "median_ns", at, true);
  r.p99_ns = read_number(f[7], "p99_ns", at, true);
  r.min_ns = read_number(f[8], "min_ns", at, true);
  if (!f[9].empty()) r.bytes_per_s = read_number(f[9], "bytes_per_s", at, true);
  if (r.kind == "stream" && !r.bytes_per_s)
    throw UserError(at + "field bytes_per_s: a stream row needs its throughput (bytes * 1e9 / median_ns)");
  return r;
}

// Milliseconds, microseconds or nanoseconds, whichever reads best.
std::string readable_ns(double ns) {
  std::ostringstream s;
  s << std::fixed;
  if (ns >= 1e6)
    s << std::setprecision(3) << ns / 1e6 << " ms";
  else if (ns >= 1e3)
    s << std::setprecision(3) << ns / 1e3 << " us";
  else
    s << std::setprecision(1) << ns << " ns";
  return s.str();
}

std::string fixed(double v, int digits) {
  std::ostringstream s;
  s << std::fixed << std::setprecision(digits) << v;
  return s.str();
}

// ---- the workloads, as scenarios ---------------------------------------------------------------

json op(std::initializer_list<std::pair<const std::string, json>> fields) {
  json o = json::object();
  for (const auto& [k, v] : fields) o[k] = v;
  return o;
}

json machine(const json& costs) {
  // Two cores whatever the placement: hostbench pins both processes to one CPU of the host
  // (same_core) or to two (cross_core), and the affinities here do the same.
  return op({{"cores", 2}, {"costs", costs}});
}

json affinity(int core) { return json::array({core}); }

// The shared-memory ring of tools/hostbench: kRingSlots slots of `size` bytes, then `in` and `out`
// on their own cache lines. Ring A carries requests (or the stream), ring B replies.
struct RingLayout {
  std::uint64_t size;
  std::uint64_t base(char ring) const { return ring == 'A' ? 0 : stride(); }
  std::uint64_t in(char ring) const { return base(ring) + kRingSlots * size; }
  std::uint64_t out(char ring) const { return in(ring) + 64; }
  std::uint64_t stride() const { return (kRingSlots * size + 128 + 63) / 64 * 64; }
  std::uint64_t segment() const { return (2 * stride() + 4095) / 4096 * 4096; }
};

// Ops that wait while the word at `offset` equals variable `var` (as hostbench's wait_while_equal).
json wait_while_equal(const std::string& how, std::uint64_t offset, const std::string& var) {
  if (how == "spin")
    return json::array({op({{"op", "spin"}, {"map", "ring"}, {"offset", offset}, {"while", "== " + var}})});
  json load = json::array({op({{"op", "mem_load"}, {"map", "ring"}, {"offset", offset}, {"into", "seen"}}),
                           op({{"op", "calc"}, {"var", "same"}, {"expr", "seen - " + var}})});
  json body = json::array();
  if (how == "yield")
    body.push_back(op({{"op", "yield"}}));
  else
    body.push_back(op({{"op", "futex_wait"}, {"map", "ring"}, {"offset", offset}, {"value", var}}));
  for (const auto& o : load) body.push_back(o);
  json out = load;
  out.push_back(op({{"op", "while"}, {"cond", "same == 0"}, {"body", body}}));
  return out;
}

void append(json& script, const json& ops) {
  for (const auto& o : ops) script.push_back(o);
}

// while (((in + 1) % N) == out) wait; memcpy(slot[in], data); in = (in + 1) % N; [FUTEX_WAKE]
json ring_put(const std::string& how, const RingLayout& l, char ring) {
  std::string in = std::string("in") + ring;
  json s = json::array();
  s.push_back(
      op({{"op", "calc"}, {"var", "next"}, {"expr", "(" + in + " + 1) % " + std::to_string(kRingSlots)}}));
  append(s, wait_while_equal(how, l.out(ring), "next"));
  s.push_back(op({{"op", "calc"},
                  {"var", "slot"},
                  {"expr", std::to_string(l.base(ring)) + " + " + in + " * " + std::to_string(l.size)}}));
  s.push_back(op({{"op", "mem_write"}, {"map", "ring"}, {"offset", "slot"}, {"bytes", l.size}}));
  s.push_back(op({{"op", "mem_store"}, {"map", "ring"}, {"offset", l.in(ring)}, {"value", "next"}}));
  s.push_back(op({{"op", "calc"}, {"var", in}, {"expr", "next"}}));
  if (how == "futex")
    s.push_back(op({{"op", "futex_wake"}, {"map", "ring"}, {"offset", l.in(ring)}, {"count", 1}}));
  return s;
}

// while (in == out) wait; memcpy(data, slot[out]); out = (out + 1) % N; [FUTEX_WAKE]
json ring_get(const std::string& how, const RingLayout& l, char ring) {
  std::string out = std::string("out") + ring;
  json s = wait_while_equal(how, l.in(ring), out);
  s.push_back(op({{"op", "calc"},
                  {"var", "slot"},
                  {"expr", std::to_string(l.base(ring)) + " + " + out + " * " + std::to_string(l.size)}}));
  s.push_back(
      op({{"op", "mem_read"}, {"map", "ring"}, {"offset", "slot"}, {"bytes", l.size}, {"into", "got"}}));
  s.push_back(
      op({{"op", "calc"}, {"var", out}, {"expr", "(" + out + " + 1) % " + std::to_string(kRingSlots)}}));
  s.push_back(op({{"op", "mem_store"}, {"map", "ring"}, {"offset", l.out(ring)}, {"value", out}}));
  if (how == "futex")
    s.push_back(op({{"op", "futex_wake"}, {"map", "ring"}, {"offset", l.out(ring)}, {"count", 1}}));
  return s;
}

json ring_attach(const RingLayout& l) {
  json s = json::array({op({{"op", "shmget"},
                            {"key", "0x48424e43"},
                            {"bytes", l.segment()},
                            {"flags", json::array({"IPC_CREAT"})},
                            {"mode", "0600"},
                            {"into", "shmid"}}),
                        op({{"op", "shmat"}, {"shmid", "shmid"}, {"as", "ring"}})});
  for (const char* v : {"inA", "outA", "inB", "outB"})
    s.push_back(op({{"op", "set"}, {"var", v}, {"value", 0}}));
  return s;
}

// Send and receive of one message on the side that sends on `out_channel`/ring A (side 0) or B.
struct Side {
  json send, recv;
};

// hostbench's stream-socket round trips go both ways over one socketpair: each side reads on the
// socket it writes on, so the peer's read of what it wrote wakes it (docs/unix-socket.md). The
// simulated cell does the same over one connected pair (socket, bind, listen, accept / connect).
bool duplex_socket(const HostbenchRow& row) {
  return row.kind == "roundtrip" && row.mechanism == "unix_stream";
}
constexpr const char* kDuplexPath = "/tmp/hostbench.sock";

Side message_side(const HostbenchRow& row, int side) {
  if (row.mechanism.rfind("shm_", 0) == 0) {
    std::string how = row.mechanism.substr(4);
    RingLayout l{row.bytes};
    char mine = side == 0 ? 'A' : 'B', theirs = side == 0 ? 'B' : 'A';
    return {ring_put(how, l, mine), ring_get(how, l, theirs)};
  }
  if (duplex_socket(row)) // write(); read() until the message is in (hostbench's read_all)
    return {json::array({op({{"op", "write"}, {"fd", "sock"}, {"bytes", row.bytes}})}),
            json::array(
                {op({{"op", "set"}, {"var", "left"}, {"value", row.bytes}}),
                 op({{"op", "while"},
                     {"cond", "left > 0"},
                     {"body",
                      json::array({op({{"op", "read"}, {"fd", "sock"}, {"bytes", "{left}"}}),
                                   op({{"op", "calc"}, {"var", "left"}, {"expr", "left - result"}})})}})})};
  std::string out = side == 0 ? "ping" : "pong", in = side == 0 ? "pong" : "ping";
  return {json::array({op({{"op", "send"}, {"channel", out}, {"bytes", row.bytes}})}),
          json::array({op({{"op", "recv"}, {"channel", in}, {"bytes", row.bytes}})})};
}

json concat(const json& a, const json& b) {
  json s = a;
  append(s, b);
  return s;
}

long stream_messages(const HostbenchRow& row) { return std::min(row.ops_per_trial, kMaxStreamMessages); }

} // namespace

std::string cell_name(const HostbenchRow& row) {
  return row.kind + "," + row.mechanism + "," + std::to_string(row.bytes) + "," + row.placement;
}

HostbenchFile parse_hostbench(const std::string& text, const std::string& path) {
  HostbenchFile file;
  file.path = path;
  std::istringstream in(text);
  std::string line;
  std::size_t number = 0;
  bool header = false;
  std::map<std::string, std::size_t> seen;
  std::map<std::uint64_t, std::size_t> rung_lines; // idle time -> its note's line
  while (std::getline(in, line)) {
    ++number;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (number == 1) {
      if (line.rfind("# hostbench ", 0) != 0)
        throw UserError(where(path, 1) + "not a hostbench file: the first line must be '# hostbench 1' "
                                         "(docs/hostbench.md)");
      std::string version = line.substr(12);
      if (version != "1")
        throw UserError(where(path, 1) + "hostbench format version '" + version +
                        "'; this ipcsim reads version 1");
      continue;
    }
    if (line.empty()) continue;
    if (line[0] == '#') {
      auto colon = line.find(": ");
      if (colon != std::string::npos && colon > 2) {
        file.keys.emplace_back(line.substr(2, colon - 2), line.substr(colon + 2));
        file.key_lines.push_back(number);
        if (file.keys.back().first == "switches_per_message") {
          auto [cell, total] = parse_switches(file.keys.back().second, where(path, number));
          if (!file.switches_per_message.emplace(cell, total).second)
            throw UserError(where(path, number) + "switches_per_message: a second note for " + cell);
        }
        if (file.keys.back().first == "wakeup_after_idle_ns") {
          WakeupRung rung = parse_rung(file.keys.back().second, where(path, number), number);
          if (file.wakeup_ladder.size() == kMaxLadderRungs)
            throw UserError(where(path, number) + "wakeup_after_idle_ns: more than " +
                            std::to_string(kMaxLadderRungs) + " rungs (hostbench writes 15)");
          if (auto [it, fresh] = rung_lines.emplace(rung.idle_ns, number); !fresh)
            throw UserError(where(path, number) + "wakeup_after_idle_ns: a second note for " +
                            std::to_string(rung.idle_ns) + " ns (first on line " +
                            std::to_string(it->second) + ")");
          file.wakeup_ladder.push_back(rung);
        }
      }
      continue;
    }
    if (!header) {
      if (line != kHeader)
        throw UserError(where(path, number) + "expected the header line '" + kHeader + "'");
      header = true;
      continue;
    }
    HostbenchRow row = parse_row(line, path, number);
    std::string cell = cell_name(row);
    if (auto it = seen.find(cell); it != seen.end())
      throw UserError(where(path, number) + "cell " + cell + " appears twice (first on line " +
                      std::to_string(it->second) + ")");
    seen[cell] = number;
    file.rows.push_back(row);
  }
  if (number == 0) throw UserError(path + ": empty file; expected a hostbench file (docs/hostbench.md)");
  if (!header) throw UserError(path + ": no header line '" + std::string(kHeader) + "'");
  if (file.rows.empty()) throw UserError(path + ": no measurement rows after the header");
  std::stable_sort(file.wakeup_ladder.begin(), file.wakeup_ladder.end(),
                   [](const WakeupRung& a, const WakeupRung& b) { return a.idle_ns < b.idle_ns; });
  return file;
}

HostbenchFile read_hostbench(const std::string& path) {
  return parse_hostbench(read_input_file(path, "hostbench file", Limits{}.input_bytes, ".csv file"), path);
}

std::string cell_scenario(const HostbenchRow& row, const std::string& preset, std::string& why,
                          const std::string& scheduler) {
  return cell_scenario_costs(row, json(preset), why, scheduler);
}

static std::string cell_document(const HostbenchRow& row, const json& preset, std::string& why);

std::string cell_scenario_costs(const HostbenchRow& row, const json& preset, std::string& why,
                                const std::string& scheduler) {
  std::string text = cell_document(row, preset, why);
  if (text.empty() || scheduler.empty()) return text;
  json doc = json::parse(text);
  doc["machine"]["scheduler"] = op({{"policy", scheduler}});
  doc["description"] = doc.at("description").get<std::string>() + "; under the " + scheduler + " scheduler";
  return doc.dump(1);
}

static std::string cell_document(const HostbenchRow& row, const json& preset, std::string& why) {
  if (row.kind == "null_syscall") {
    why =
        "no scenario op is a system call that does nothing (getppid); the preset's trap_enter and trap_exit "
        "are its cost";
    return "";
  }
  if (row.kind == "context_switch") {
    // Two processes on one core, each calling sched_yield in a loop; the first times its loop:
    // elapsed / (2 x its yields) per switch, as hostbench does.
    long yields = std::max(1L, std::min(row.ops_per_trial, 2 * kMaxStreamMessages) / 2);
    json timed = json::array(
        {op({{"op", "begin"}, {"name", "switches"}}),
         op({{"op", "repeat"}, {"count", yields}, {"body", json::array({op({{"op", "yield"}})})}}),
         op({{"op", "end"}, {"name", "switches"}})});
    json timer = json::array(), other = json::array();
    timer.push_back(op({{"op", "repeat"}, {"count", kStreamWarmup + kStreamTrials}, {"body", timed}}));
    other.push_back(op({{"op", "repeat"},
                        {"count", (kStreamWarmup + kStreamTrials) * yields},
                        {"body", json::array({op({{"op", "yield"}})})}}));
    json doc = json::object();
    doc["description"] = "check-preset: two processes on one core calling sched_yield in turn, timed as "
                         "tools/hostbench times its context_switch cell";
    doc["machine"] = machine(preset);
    doc["processes"] = json::array({op({{"name", "timer"}, {"affinity", affinity(0)}, {"script", timer}}),
                                    op({{"name", "other"}, {"affinity", affinity(0)}, {"script", other}})});
    return doc.dump(1);
  }
  if (row.kind == "lone_yield") {
    // One process alone on its core calling sched_yield in a loop, timed per call as hostbench does.
    long yields = std::max(1L, std::min(row.ops_per_trial, 2 * kMaxStreamMessages));
    json timed = json::array(
        {op({{"op", "begin"}, {"name", "yields"}}),
         op({{"op", "repeat"}, {"count", yields}, {"body", json::array({op({{"op", "yield"}})})}}),
         op({{"op", "end"}, {"name", "yields"}})});
    json doc = json::object();
    doc["description"] = "check-preset: one process alone on its core calling sched_yield, timed as "
                         "tools/hostbench times its lone_yield cell";
    doc["machine"] = machine(preset);
    doc["processes"] = json::array({op(
        {{"name", "alone"},
         {"affinity", affinity(0)},
         {"script", json::array({op(
                        {{"op", "repeat"}, {"count", kStreamWarmup + kStreamTrials}, {"body", timed}})})}})});
    return doc.dump(1);
  }
  if (row.kind == "memcpy") {
    // memcpy between two buffers of a process: a write of the whole range into a private
    // anonymous mapping, touched once before timing (hostbench touches its buffers first).
    long copies = std::max(1L, std::min(row.ops_per_trial, kMaxStreamMessages));
    json timed = json::array(
        {op({{"op", "begin"}, {"name", "copies"}}),
         op({{"op", "repeat"},
             {"count", copies},
             {"body", json::array({op(
                          {{"op", "mem_write"}, {"map", "buf"}, {"offset", 0}, {"bytes", row.bytes}})})}}),
         op({{"op", "end"}, {"name", "copies"}})});
    json script =
        json::array({op({{"op", "mmap"},
                         {"bytes", row.bytes},
                         {"flags", json::array({"MAP_PRIVATE", "MAP_ANONYMOUS"})},
                         {"as", "buf"}}),
                     op({{"op", "mem_write"}, {"map", "buf"}, {"offset", 0}, {"bytes", row.bytes}})});
    script.push_back(op({{"op", "repeat"}, {"count", kStreamWarmup + kStreamTrials}, {"body", timed}}));
    json doc = json::object();
    doc["description"] =
        "check-preset: memcpy of " + std::to_string(row.bytes) + " bytes, timed as tools/hostbench times it";
    doc["machine"] = machine(preset);
    doc["processes"] = json::array({op({{"name", "copier"}, {"affinity", affinity(0)}, {"script", script}})});
    return doc.dump(1);
  }
  if (row.kind == "wakeup" || row.kind == "wakeup_call") {
    // tools/hostbench's wakeup cells: the reader (core 0) announces in shared memory that it is
    // about to block and reads the pipe; the writer (core 1) spins until the announcement, lets
    // the reader sleep kWakeIdle, then writes the byte. "wake": from the write to the reader's
    // return (keyed across the two); "call": the write itself.
    const std::string idle = row.idle_ns ? std::to_string(row.idle_ns) + "ns" : std::string(kWakeIdle);
    json reader = ring_attach(RingLayout{1}), writer = ring_attach(RingLayout{1});
    json round = json::array({op({{"op", "add"}, {"var", "round"}}),
                              op({{"op", "mem_store"}, {"map", "ring"}, {"offset", 0}, {"value", "round"}}),
                              op({{"op", "recv"}, {"channel", "ping"}, {"bytes", row.bytes}}),
                              op({{"op", "end"}, {"name", "wake"}, {"key", "{round}"}})});
    json write = json::array({op({{"op", "add"}, {"var", "round"}}),
                              op({{"op", "spin"}, {"map", "ring"}, {"offset", 0}, {"while", "!= round"}}),
                              op({{"op", "compute"}, {"time", idle}}),
                              op({{"op", "begin"}, {"name", "wake"}, {"key", "{round}"}}),
                              op({{"op", "begin"}, {"name", "call"}}),
                              op({{"op", "send"}, {"channel", "ping"}, {"bytes", row.bytes}}),
                              op({{"op", "end"}, {"name", "call"}})});
    reader.push_back(op({{"op", "set"}, {"var", "round"}, {"value", 0}}));
    writer.push_back(op({{"op", "set"}, {"var", "round"}, {"value", 0}}));
    reader.push_back(op({{"op", "repeat"}, {"count", kRoundTripWarmup + round_trips(row)}, {"body", round}}));
    writer.push_back(op({{"op", "repeat"}, {"count", kRoundTripWarmup + round_trips(row)}, {"body", write}}));
    json doc = json::object();
    doc["description"] = "check-preset: a writer on core 1 wakes a reader blocked in read() on core 0 for " +
                         idle + ", as tools/hostbench times its wakeup cells";
    doc["machine"] = machine(preset);
    doc["channels"] = json::array({op({{"name", "ping"}, {"mechanism", "pipe"}})});
    doc["processes"] = json::array({op({{"name", "reader"}, {"affinity", affinity(0)}, {"script", reader}}),
                                    op({{"name", "writer"}, {"affinity", affinity(1)}, {"script", writer}})});
    return doc.dump(1);
  }
  const bool shm = row.mechanism.rfind("shm_", 0) == 0;
  const int server_core = row.placement == "same_core" ? 0 : 1;
  json doc = json::object();
  json client = json::array(), server = json::array();
  Side c = message_side(row, 0), s = message_side(row, 1);
  if (shm) {
    client = ring_attach(RingLayout{row.bytes});
    server = ring_attach(RingLayout{row.bytes});
  }
  if (duplex_socket(row)) {
    server = json::array({op({{"op", "socket"}, {"fd", "listener"}, {"type", "stream"}}),
                          op({{"op", "bind"}, {"fd", "listener"}, {"path", kDuplexPath}}),
                          op({{"op", "listen"}, {"fd", "listener"}, {"backlog", 1}}),
                          op({{"op", "accept"}, {"fd", "listener"}, {"as", "sock"}})});
    client = json::array({op({{"op", "sleep"}, {"time", "10us"}}), // the server listens first
                          op({{"op", "socket"}, {"fd", "sock"}, {"type", "stream"}}),
                          op({{"op", "connect"}, {"fd", "sock"}, {"path", kDuplexPath}})});
  }
  if (row.kind == "roundtrip") {
    doc["description"] =
        "check-preset: round trips over " + row.mechanism + " of " + std::to_string(row.bytes) +
        " bytes each way, " + row.placement +
        (duplex_socket(row) ? ", over one connected pair both ways as hostbench's socketpair" : "") +
        ", timed as tools/hostbench times them";
    json timed = json::array({op({{"op", "begin"}, {"name", "rtt"}})});
    append(timed, concat(c.send, c.recv));
    timed.push_back(op({{"op", "end"}, {"name", "rtt"}}));
    client.push_back(op({{"op", "repeat"}, {"count", kRoundTripWarmup}, {"body", concat(c.send, c.recv)}}));
    client.push_back(op({{"op", "repeat"}, {"count", round_trips(row)}, {"body", timed}}));
    server.push_back(op({{"op", "repeat"},
                         {"count", kRoundTripWarmup + round_trips(row)},
                         {"body", concat(s.recv, s.send)}}));
  } else {
    doc["description"] = "check-preset: a stream of " + row.mechanism + " messages of " +
                         std::to_string(row.bytes) + " bytes, " + row.placement +
                         ", timed as tools/hostbench times it: from the producer's "
                         "first send to the consumer's last receive";
    if (is_call(row.kind))
      doc["description"] = "check-preset: a stream of " + row.mechanism + " messages of " +
                           std::to_string(row.bytes) + " bytes on one core, each " +
                           (row.kind == "send_call" ? "send" : "receive") +
                           " timed on its own as tools/hostbench times it";
    // The server is the producer, the client the consumer; a control pipe starts each trial.
    long n = stream_messages(row);
    // A call cell times each of one side's calls ("call").
    auto timed_call = [&](const json& body, bool timed) {
      if (!timed) return body;
      json out = json::array({op({{"op", "begin"}, {"name", "call"}})});
      append(out, body);
      out.push_back(op({{"op", "end"}, {"name", "call"}}));
      return out;
    };
    json produce = json::array(
        {op({{"op", "recv"}, {"channel", "ctl"}, {"bytes", 1}}), op({{"op", "begin"}, {"name", "start"}}),
         op({{"op", "end"}, {"name", "start"}}),
         op({{"op", "repeat"}, {"count", n}, {"body", timed_call(c.send, row.kind == "send_call")}})});
    json consume = json::array(
        {op({{"op", "send"}, {"channel", "ctl"}, {"bytes", 1}}),
         op({{"op", "repeat"}, {"count", n}, {"body", timed_call(s.recv, row.kind == "recv_call")}}),
         op({{"op", "begin"}, {"name", "stop"}}), op({{"op", "end"}, {"name", "stop"}})});
    // Side 0 (ring A, channel ping) sends: the producer uses side 0's send, the consumer side 1's
    // receive; so the producer is the "client" script position here.
    client.push_back(op({{"op", "repeat"}, {"count", kStreamWarmup + kStreamTrials}, {"body", produce}}));
    server.push_back(op({{"op", "repeat"}, {"count", kStreamWarmup + kStreamTrials}, {"body", consume}}));
  }
  doc["machine"] = machine(preset);
  json channels = json::array();
  if (!shm && !duplex_socket(row))
    for (const char* name : {"ping", "pong"})
      channels.push_back(row.mechanism == "unix_dgram" // hostbench's datagrams go through a socketpair
                             ? op({{"name", name}, {"mechanism", row.mechanism}, {"pair", true}})
                             : op({{"name", name}, {"mechanism", row.mechanism}}));
  if (row.kind == "stream" || is_call(row.kind))
    channels.push_back(op({{"name", "ctl"}, {"mechanism", "pipe"}}));
  if (!channels.empty()) doc["channels"] = channels;
  // Stream: "client" produces on the consumer's core placement as hostbench does (consumer on
  // the first CPU, producer on the other for cross_core).
  const bool stream = row.kind == "stream" || is_call(row.kind);
  doc["processes"] = json::array({op({{"name", stream ? "producer" : "client"},
                                      {"affinity", affinity(stream ? server_core : 0)},
                                      {"script", client}}),
                                  op({{"name", stream ? "consumer" : "server"},
                                      {"affinity", affinity(stream ? 0 : server_core)},
                                      {"script", server}})});
  return doc.dump(1);
}

namespace {

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  std::size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

// Simulates one cell: the round trip's median in ns, or the stream's throughput in bytes/s.
double simulate(const HostbenchRow& row, const std::string& text, std::string& why, double* switches) {
  auto scenario = load_scenario_text(text, "check-preset(" + cell_name(row) + ")", {});
  Kernel kernel(scenario->model());
  kernel.run();
  if (!kernel.runtime_error().empty()) {
    why = "the simulation stopped: " + kernel.runtime_error();
    return 0;
  }
  if (kernel.deadlock()) {
    why = "the simulated workload deadlocked (a limit of the mechanism in the simulator?)";
    return 0;
  }
  const auto& names = kernel.model().interval_names;
  const double ns_per_cycle = 1e9 / kernel.model().hz;
  auto records_named = [&](const std::string& name) {
    std::vector<const IntervalRecord*> out;
    for (const auto& r : kernel.records())
      if (names[r.name] == name) out.push_back(&r);
    return out;
  };
  if (row.kind == "roundtrip") {
    std::vector<double> rtts;
    for (const auto* r : records_named("rtt"))
      rtts.push_back(static_cast<double>(r->end - r->start) * ns_per_cycle);
    if (rtts.size() != static_cast<std::size_t>(round_trips(row))) {
      why = "the simulated client finished " + std::to_string(rtts.size()) + " of " +
            std::to_string(round_trips(row)) + " round trips";
      return 0;
    }
    return median(rtts);
  }
  if (row.kind == "wakeup" || row.kind == "wakeup_call") {
    std::vector<double> times;
    for (const auto* r : records_named(row.kind == "wakeup" ? "wake" : "call"))
      times.push_back(static_cast<double>(r->end - r->start) * ns_per_cycle);
    if (times.size() != static_cast<std::size_t>(kRoundTripWarmup + round_trips(row))) {
      why = "the simulated reader was woken " + std::to_string(times.size()) + " of " +
            std::to_string(kRoundTripWarmup + round_trips(row)) + " times";
      return 0;
    }
    times.erase(times.begin(), times.begin() + kRoundTripWarmup);
    return median(times);
  }
  if (row.kind == "context_switch" || row.kind == "lone_yield" || row.kind == "memcpy") {
    const bool copy = row.kind == "memcpy", alone = row.kind == "lone_yield";
    auto timed = records_named(copy ? "copies" : alone ? "yields" : "switches");
    const std::size_t trials = kStreamWarmup + kStreamTrials;
    if (timed.size() != trials) {
      why = "the simulated workload finished " + std::to_string(timed.size()) + " of " +
            std::to_string(trials) + " trials";
      return 0;
    }
    const double ops =
        copy ? static_cast<double>(std::max(1L, std::min(row.ops_per_trial, kMaxStreamMessages)))
        : alone
            ? static_cast<double>(std::max(1L, std::min(row.ops_per_trial, 2 * kMaxStreamMessages)))
            : 2.0 *
                  static_cast<double>(std::max(1L, std::min(row.ops_per_trial, 2 * kMaxStreamMessages) / 2));
    std::vector<double> per_op;
    for (std::size_t t = kStreamWarmup; t < trials; ++t)
      per_op.push_back(static_cast<double>(timed[t]->end - timed[t]->start) * ns_per_cycle / ops);
    return copy ? static_cast<double>(row.bytes) * 1e9 / median(per_op) : median(per_op);
  }
  if (is_call(row.kind)) { // every call of the timed trials
    auto calls = records_named("call");
    const auto per_trial = static_cast<std::size_t>(stream_messages(row));
    const std::size_t trials = kStreamWarmup + kStreamTrials;
    if (calls.size() != trials * per_trial) {
      why = "the simulated stream finished " + std::to_string(calls.size()) + " of " +
            std::to_string(trials * per_trial) + " timed calls";
      return 0;
    }
    std::vector<double> times;
    for (std::size_t i = kStreamWarmup * per_trial; i < calls.size(); ++i)
      times.push_back(static_cast<double>(calls[i]->end - calls[i]->start) * ns_per_cycle);
    return median(times);
  }
  auto starts = records_named("start"), stops = records_named("stop");
  const std::size_t trials = kStreamWarmup + kStreamTrials;
  if (starts.size() != trials || stops.size() != trials) {
    why = "the simulated stream finished " + std::to_string(stops.size()) + " of " + std::to_string(trials) +
          " trials";
    return 0;
  }
  const long n = stream_messages(row);
  if (switches) {
    std::uint64_t dispatches = 0;
    for (const auto& core : kernel.cores()) dispatches += core->context_switches;
    *switches = static_cast<double>(dispatches) / static_cast<double>(trials * static_cast<std::size_t>(n));
  }
  std::vector<double> per_message;
  for (std::size_t t = kStreamWarmup; t < trials; ++t)
    per_message.push_back(static_cast<double>(stops[t]->end - starts[t]->start) * ns_per_cycle /
                          static_cast<double>(n));
  return static_cast<double>(row.bytes) * 1e9 / median(per_message);
}

} // namespace

std::string resolve_preset(const std::string& preset) {
  std::vector<std::string> names;
  for (const auto& p : list_presets()) {
    if (p.name == preset) return preset;
    names.push_back(p.name);
  }
  std::error_code ec;
  if (std::filesystem::is_regular_file(preset, ec)) return std::filesystem::absolute(preset).string();
  throw UserError("check-preset: preset '" + preset + "' is neither a built-in preset (" + join(names, ", ") +
                  ") nor a preset file");
}

std::vector<OrderCheck> order_checks(const std::vector<CheckedCell>& cells, double tie_pct) {
  std::map<std::tuple<std::string, std::string, std::uint64_t>, std::vector<const CheckedCell*>> groups;
  for (const auto& c : cells)
    if (c.simulated && (c.row.kind == "roundtrip" || c.row.kind == "stream"))
      groups[{c.row.kind, c.row.placement, c.row.bytes}].push_back(&c);
  std::vector<OrderCheck> orders;
  for (auto& entry : groups) {
    // Named, not a structured binding: lambdas below capture them, which clang before 16 refuses.
    const auto& key = entry.first;
    const auto& group = entry.second;
    if (group.size() < 2) continue;
    // Faster: a shorter round trip, a higher throughput.
    const double sign = std::get<0>(key) == "stream" ? -1 : 1;
    auto measured = [&](const CheckedCell* c) { return sign * c->measured; };
    auto simulated = [&](const CheckedCell* c) { return sign * *c->simulated; };
    OrderCheck order{std::get<0>(key), std::get<1>(key), std::get<2>(key), {}, {}, true, true, {}};
    auto ranked = [&](auto value) {
      std::vector<const CheckedCell*> v = group;
      std::stable_sort(v.begin(), v.end(),
                       [&](const CheckedCell* a, const CheckedCell* b) { return value(a) < value(b); });
      std::vector<std::string> names;
      for (const auto* c : v) names.push_back(c->row.mechanism);
      return names;
    };
    order.measured = ranked(measured);
    order.simulated = ranked(simulated);
    // Every pair the host tells apart must come out the same way round, and not as a tie: a model
    // that charges two mechanisms the same has not reproduced their order. Apart: by more than the
    // tie margin, the slower's time (or the faster's throughput) over the other's.
    for (const auto* a : group)
      for (const auto* b : group) {
        if (!(measured(a) < measured(b)) || simulated(a) < simulated(b)) continue;
        order.strict = false;
        const double apart_pct =
            (std::max(a->measured, b->measured) / std::min(a->measured, b->measured) - 1) * 100;
        if (apart_pct <= tie_pct) continue;
        order.reproduced = false;
        order.misordered.push_back(a->row.mechanism + " before " + b->row.mechanism + " (measured " +
                                   fixed(apart_pct, 1) + "% apart)");
      }
    orders.push_back(order);
  }
  return orders;
}

std::optional<double> simulate_cell(const HostbenchRow& row, const json& costs, std::string& why,
                                    const std::string& scheduler, double* switches) {
  why.clear();
  std::string text = cell_scenario_costs(row, costs, why, scheduler);
  if (text.empty()) return std::nullopt;
  try {
    double v = simulate(row, text, why, switches);
    if (why.empty()) return row.kind == "stream" || row.kind == "memcpy" ? v / 1e6 : v;
  } catch (const UserError& e) {
    // The preset loaded (the callers check it first): what fails here is this cell's workload
    // meeting a limit of the simulator.
    why = std::string("the simulator refused the workload: ") + e.what();
  }
  return std::nullopt;
}

CheckReport check_preset(const std::string& preset_arg, const HostbenchFile& file, double tie_pct,
                         const std::string& scheduler) {
  const std::string preset = resolve_preset(preset_arg);
  // A preset file that does not load is the user's mistake, reported once: "check-preset: at
  // machine.costs.preset: ..." names the preset and what is wrong.
  load_scenario_text(
      json::object({{"machine", json::object({{"costs", preset}})},
                    {"processes", json::array({json::object({{"name", "p"}, {"script", json::array()}})})}})
          .dump(),
      "check-preset", {});
  if (!scheduler.empty() && !find_scheduler(scheduler))
    throw UserError("check-preset --scheduler: unknown scheduler policy \"" + scheduler + "\"" +
                    did_you_mean(scheduler, scheduler_names()) +
                    "; accepted: " + join_list(scheduler_names()));
  return check_costs(json(preset), preset_arg, file, tie_pct, scheduler);
}

CheckReport check_costs(const json& costs, const std::string& label, const HostbenchFile& file,
                        double tie_pct, const std::string& scheduler) {
  CheckReport report;
  report.tie_pct = tie_pct;
  report.scheduler = scheduler;
  report.preset = label;
  report.file = file.path;
  for (const auto& [key, value] : file.keys)
    if (key == "cross_core_siblings") {
      char* end = nullptr;
      const double ratio = std::strtod(value.c_str(), &end);
      // hostbench writes "RATIO (what it says)", or "unknown (why)": anything else says nothing.
      if (end != value.c_str() && (*end == '\0' || *end == ' ') && std::isfinite(ratio) && ratio >= 0)
        report.siblings_ratio = ratio;
    }
  const auto& host_switches = file.switches_per_message;
  for (const auto& row : file.rows) {
    CheckedCell cell;
    cell.row = row;
    const bool stream = row.kind == "stream" || row.kind == "memcpy"; // compared by throughput
    cell.metric = stream ? "MB/s" : "ns";
    cell.measured = stream ? static_cast<double>(row.bytes) * 1e3 / row.median_ns : row.median_ns;
    cell.target_pct = stream ? 25 : 20;
    std::string why;
    const std::string name = cell_name(row);
    double switches = 0;
    const bool count_switches = row.kind == "stream" && host_switches.contains(name);
    cell.simulated = simulate_cell(row, costs, why, scheduler, count_switches ? &switches : nullptr);
    if (count_switches && cell.simulated) {
      cell.host_switches = host_switches.at(name);
      cell.simulated_switches = switches;
    }
    if (cell.simulated) {
      cell.error_pct = (*cell.simulated - cell.measured) / cell.measured * 100;
      cell.within = std::abs(cell.error_pct) <= cell.target_pct;
    } else {
      cell.skipped = why;
    }
    report.cells.push_back(cell);
  }
  report.orders = order_checks(report.cells, tie_pct);
  for (const auto& rung : file.wakeup_ladder) {
    CheckedRung checked;
    checked.rung = rung;
    checked.simulated = simulate_cell(rung_row(rung), costs, checked.skipped, scheduler);
    if (checked.simulated) {
      checked.error_pct = (*checked.simulated - rung.median_ns) / rung.median_ns * 100;
      checked.within = std::abs(checked.error_pct) <= 20;
    }
    if (rung.call_median_ns) {
      std::string why;
      checked.simulated_call = simulate_cell(rung_row(rung, "wakeup_call"), costs, why, scheduler);
      if (checked.simulated_call) {
        checked.call_error_pct =
            (*checked.simulated_call - *rung.call_median_ns) / *rung.call_median_ns * 100;
        checked.call_within = std::abs(checked.call_error_pct) <= 20;
      }
    }
    report.ladder.push_back(checked);
  }
  return report;
}

std::string short_duration(double ns) {
  if (ns >= 1e6) return format_number(std::round(ns / 1e3) / 1e3) + " ms";
  if (ns >= 1e3) return format_number(std::round(ns / 10) / 100) + " us";
  return format_number(std::round(ns)) + " ns";
}

HostbenchRow rung_row(const WakeupRung& rung, const std::string& kind) {
  HostbenchRow row;
  row.kind = kind;
  row.mechanism = "pipe";
  row.bytes = 1;
  row.placement = "cross_core";
  row.trials = rung.trials;
  row.ops_per_trial = 1;
  row.median_ns = kind == "wakeup_call" ? rung.call_median_ns.value_or(rung.median_ns) : rung.median_ns;
  row.line = rung.line;
  row.idle_ns = rung.idle_ns;
  return row;
}

std::string check_verdict(const CheckReport& report) {
  int rtt = 0, rtt_ok = 0, tput = 0, tput_ok = 0, calls = 0, calls_ok = 0, other = 0, other_ok = 0,
      skipped = 0, orders_ok = 0;
  for (const auto& c : report.cells) {
    if (!c.simulated) {
      ++skipped;
      continue;
    }
    const bool call = is_call(c.row.kind);
    int& all = c.row.kind == "roundtrip" ? rtt : c.row.kind == "stream" ? tput : call ? calls : other;
    int& ok = c.row.kind == "roundtrip" ? rtt_ok
              : c.row.kind == "stream"  ? tput_ok
              : call                    ? calls_ok
                                        : other_ok;
    ++all;
    ok += c.within;
  }
  std::string ladder;
  if (!report.ladder.empty()) {
    int ok = 0, simulated = 0, calls_ok = 0, calls = 0;
    for (const auto& r : report.ladder) {
      simulated += r.simulated.has_value();
      ok += r.within;
      calls += r.rung.call_median_ns.has_value();
      calls_ok += r.call_within;
    }
    ladder = "; wakeups after " + std::to_string(report.ladder.size()) + " idle times (" +
             short_duration(static_cast<double>(report.ladder.front().rung.idle_ns)) + " to " +
             short_duration(static_cast<double>(report.ladder.back().rung.idle_ns)) +
             "): " + std::to_string(ok) + " of " + std::to_string(simulated) + " within 20%" +
             (calls ? ", the waker's write() " + std::to_string(calls_ok) + " of " + std::to_string(calls)
                    : std::string());
  }
  int orders_strict = 0;
  for (const auto& o : report.orders) {
    orders_ok += o.reproduced;
    orders_strict += o.strict;
  }
  return "verdict: " + std::to_string(rtt_ok) + " of " + std::to_string(rtt) +
         " round-trip cells within 20%, " + std::to_string(tput_ok) + " of " + std::to_string(tput) +
         " throughput cells within 25%; mechanism order reproduced in " + std::to_string(orders_ok) + " of " +
         std::to_string(report.orders.size()) + " size x placement groups (pairs measured within " +
         format_number(report.tie_pct) +
         "% of each other are ties; with every pair: " + std::to_string(orders_strict) + " of " +
         std::to_string(report.orders.size()) + ")" +
         (calls ? "; each side's call in a one-core stream: " + std::to_string(calls_ok) + " of " +
                      std::to_string(calls) + " within 20%"
                : std::string()) +
         "; context switch, memcpy and wakeups: " + std::to_string(other_ok) + " of " +
         std::to_string(other) + " within target" + ladder + "; " + std::to_string(skipped) +
         (skipped == 1 ? " row" : " rows") + " not modelled";
}

void print_check_report(std::ostream& out, const CheckReport& report) {
  out << "check-preset: preset " << report.preset << " against " << report.file << "\n";
  if (!report.scheduler.empty())
    out << "every cell simulated under the " << report.scheduler
        << " scheduler (--scheduler); calibrate fits a preset under rr\n";
  if (report.siblings_ratio && *report.siblings_ratio < kSharedCoreBelow)
    out << "the cross-core cells ran on two CPUs of one core (hostbench's cross_core_siblings "
        << fixed(*report.siblings_ratio, 2)
        << "): each side slowed the other down, which the simulated machine's cores never do\n";
  out << std::left << std::setw(15) << "kind" << std::setw(12) << "mechanism" << std::right << std::setw(9)
      << "bytes"
      << "  " << std::left << std::setw(11) << "placement" << std::right << std::setw(14) << "measured"
      << std::setw(14) << "simulated" << std::setw(9) << "error"
      << "  within\n";
  std::vector<const CheckedCell*> skipped;
  for (const auto& c : report.cells) {
    if (!c.simulated) {
      skipped.push_back(&c);
      continue;
    }
    auto value = [&](double v) {
      return c.metric == "MB/s" ? fixed(v, v < 10 ? 3 : 1) + " MB/s" : readable_ns(v);
    };
    out << std::left << std::setw(15) << c.row.kind << std::setw(12) << c.row.mechanism << std::right
        << std::setw(9) << c.row.bytes << "  " << std::left << std::setw(11) << c.row.placement << std::right
        << std::setw(14) << value(c.measured) << std::setw(14) << value(*c.simulated) << std::setw(8)
        << ((c.error_pct >= 0 ? "+" : "") + fixed(c.error_pct, 1)) << "%  " << (c.within ? "yes" : "no")
        << " (" << fixed(c.target_pct, 0) << "%)\n";
  }
  if (!report.orders.empty()) out << "mechanism order, fastest first (measured | simulated):\n";
  for (const auto& o : report.orders)
    out << "  " << o.kind << " " << o.bytes << " B " << o.placement << ": " << join(o.measured, " < ")
        << " | "
        << (o.reproduced ? std::string(o.strict ? "reproduced" : "reproduced but for ties")
                         : "not reproduced: " + join(o.simulated, " <= ") +
                               "; out of order: " + join(o.misordered, ", "))
        << "\n";
  // Only files whose hostbench recorded them (switches_per_message notes) have this section.
  if (std::any_of(report.cells.begin(), report.cells.end(),
                  [](const CheckedCell& c) { return c.host_switches && c.simulated_switches; }))
    out << "context switches per message in the streams, both sides (measured | simulated):\n";
  for (const auto& c : report.cells)
    if (c.host_switches && c.simulated_switches)
      out << "  " << c.row.kind << " " << c.row.mechanism << " " << c.row.bytes << " B " << c.row.placement
          << ": " << fixed(*c.host_switches, 2) << " | " << fixed(*c.simulated_switches, 2) << "\n";
  if (!report.ladder.empty())
    out << "waking a reader on an idle core after each idle time, from the write to its return (measured | "
           "simulated):\n";
  for (const auto& r : report.ladder) {
    out << "  after " << std::left << std::setw(9) << short_duration(static_cast<double>(r.rung.idle_ns))
        << std::right << std::setw(12) << readable_ns(r.rung.median_ns) << " | ";
    if (r.simulated)
      out << std::setw(11) << readable_ns(*r.simulated) << std::setw(8)
          << ((r.error_pct >= 0 ? "+" : "") + fixed(r.error_pct, 1)) << "%  " << (r.within ? "yes" : "no")
          << " (20%)";
    else
      out << "not simulated (line " << r.rung.line << "): " << r.skipped;
    if (r.rung.call_median_ns && r.simulated_call)
      out << "; the write " << readable_ns(*r.rung.call_median_ns) << " | " << readable_ns(*r.simulated_call)
          << " " << ((r.call_error_pct >= 0 ? "+" : "") + fixed(r.call_error_pct, 1)) << "% "
          << (r.call_within ? "yes" : "no");
    else if (r.rung.call_median_ns)
      out << "; the write " << readable_ns(*r.rung.call_median_ns) << " | not simulated";
    out << "\n";
  }
  if (!skipped.empty()) out << "not modelled:\n";
  for (const auto* c : skipped)
    out << "  " << c->row.kind << "," << c->row.mechanism << "," << c->row.bytes << "," << c->row.placement
        << " (line " << c->row.line << "): " << c->skipped << "\n";
  out << check_verdict(report) << "\n";
}

void write_check_csv(const std::string& path, const CheckReport& report) {
  std::ofstream f(path, std::ios::binary);
  if (!f) throw UserError("--out " + path + ": cannot write: " + std::strerror(errno));
  f << "kind,mechanism,bytes,placement,unit,measured,simulated,error_pct,target_pct,within,not_modelled\n";
  for (const auto& c : report.cells) {
    f << c.row.kind << "," << c.row.mechanism << "," << c.row.bytes << "," << c.row.placement << ","
      << c.metric << "," << fixed(c.measured, 3) << ",";
    if (c.simulated)
      f << fixed(*c.simulated, 3) << "," << fixed(c.error_pct, 2) << "," << fixed(c.target_pct, 0) << ","
        << (c.within ? "yes" : "no") << ",";
    else
      f << ",,,,";
    std::string reason = c.skipped;
    std::replace(reason.begin(), reason.end(), ',', ';'); // one field, unquoted
    f << reason << "\n";
  }
  // The wakeup ladder's rungs: kind wakeup_after_IDLEns (the idle time in the kind).
  for (const auto& r : report.ladder) {
    f << "wakeup_after_" << r.rung.idle_ns << "ns,pipe,1,cross_core,ns," << fixed(r.rung.median_ns, 3) << ",";
    if (r.simulated)
      f << fixed(*r.simulated, 3) << "," << fixed(r.error_pct, 2) << ",20," << (r.within ? "yes" : "no")
        << ",";
    else
      f << ",,,,";
    std::string reason = r.skipped;
    std::replace(reason.begin(), reason.end(), ',', ';');
    f << reason << "\n";
    if (!r.rung.call_median_ns) continue;
    f << "wakeup_call_after_" << r.rung.idle_ns << "ns,pipe,1,cross_core,ns,"
      << fixed(*r.rung.call_median_ns, 3) << ",";
    if (r.simulated_call)
      f << fixed(*r.simulated_call, 3) << "," << fixed(r.call_error_pct, 2) << ",20,"
        << (r.call_within ? "yes" : "no") << ",\n";
    else
      f << ",,,,not simulated\n";
  }
  f.close();
  if (!f) throw UserError("--out " + path + ": cannot write: " + std::strerror(errno));
}

int write_cell_scenarios(const std::string& dir, const std::string& preset_arg, const HostbenchFile& file,
                         const std::string& scheduler) {
  const std::string preset = resolve_preset(preset_arg);
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) throw UserError("--scenarios " + dir + ": cannot create the directory: " + ec.message());
  // Names from the file's fields, kept to letters, digits and '_' (a hostile field never makes a path).
  auto clean = [](std::string s) {
    for (char& ch : s)
      if (!std::isalnum(static_cast<unsigned char>(ch)) && ch != '_') ch = '_';
    return s;
  };
  int written = 0;
  for (const auto& row : file.rows) {
    std::string why;
    const std::string text = cell_scenario(row, preset, why, scheduler);
    if (text.empty()) continue;
    const std::string path =
        (std::filesystem::path(dir) / (clean(row.kind) + "-" + clean(row.mechanism) + "-" +
                                       std::to_string(row.bytes) + "-" + clean(row.placement) + ".json"))
            .string();
    std::ofstream f(path, std::ios::binary);
    f << text << "\n";
    f.close();
    if (!f) throw UserError("--scenarios " + dir + ": cannot write " + path + ": " + std::strerror(errno));
    ++written;
  }
  for (const auto& rung : file.wakeup_ladder) {
    std::string why;
    const std::string text = cell_scenario(rung_row(rung), preset, why, scheduler);
    if (text.empty()) continue;
    const std::string path =
        (std::filesystem::path(dir) / ("wakeup-after-" + std::to_string(rung.idle_ns) + "ns.json")).string();
    std::ofstream f(path, std::ios::binary);
    f << text << "\n";
    f.close();
    if (!f) throw UserError("--scenarios " + dir + ": cannot write " + path + ": " + std::strerror(errno));
    ++written;
  }
  return written;
}

} // namespace ipcsim
