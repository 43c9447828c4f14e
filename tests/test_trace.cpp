// The timeline (--trace): real scenarios run with a TraceRecorder subscribed, and the JSON it writes
// checked against the rules of the Trace Event Format and of the timeline itself: it parses; every
// B has its E on the same track, in order, and slices nest on every track; the threads a core runs
// never overlap; every flow has one start and one finish, not before the start, each inside a
// slice; every time lies within the run; counters never go negative; two runs give the same bytes.
#include "cli.hpp"
#include "harness.hpp"
#include "trace.hpp"

#include <algorithm>
#include <cmath>
#include <doctest/doctest.h>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <tuple>
#include <unistd.h>

namespace fs = std::filesystem;
using namespace ipcsim;

namespace {

std::string read_text(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

struct Traced {
  std::unique_ptr<Scenario> scenario;
  std::unique_ptr<Kernel> kernel;
  std::string json; // the trace, as written
};

// Runs a loaded scenario with the timeline subscribed, as `ipcsim run --trace` does.
Traced trace_run(std::unique_ptr<Scenario> scenario) {
  Traced t;
  t.scenario = std::move(scenario);
  t.kernel = std::make_unique<Kernel>(t.scenario->model());
  TraceRecorder recorder(*t.kernel);
  t.kernel->subscribe(recorder);
  t.kernel->run();
  std::FILE* file = std::tmpfile();
  REQUIRE(file != nullptr);
  recorder.write(file, "(temporary file)", *t.scenario);
  CHECK(recorder.out_of_order() == 0);
  std::rewind(file);
  char buffer[1 << 16];
  for (std::size_t n; (n = std::fread(buffer, 1, sizeof buffer, file)) > 0;) t.json.append(buffer, n);
  std::fclose(file);
  return t;
}

Traced trace_text(const std::string& text, const LoadOptions& options = {}) {
  return trace_run(load_scenario_text(text, "test.json", options));
}

Traced trace_file(const std::string& name, const LoadOptions& options = {}) {
  return trace_run(load_scenario(IPCSIM_SOURCE_DIR "/scenarios/" + name + ".json", options));
}

LoadOptions sets(std::vector<std::string> assignments) {
  LoadOptions options;
  options.sets = std::move(assignments);
  return options;
}

// ---- What a trace says, read back ----------------------------------------------------------------

struct Slice {
  std::string track; // "core 0", or a thread's display name
  std::string name;
  Cycles start, end;
  std::size_t depth;
};

struct FlowEnd {
  Cycles at;
  std::string track;
  std::string slice; // the innermost slice open on the track at that moment
  std::size_t count = 0;
};

struct Flow {
  FlowEnd start, finish;
};

struct Instant {
  std::string track, name;
  Cycles at;
};

struct Reading {
  std::vector<std::string> problems; // broken rules: must be empty
  std::vector<Slice> slices;         // in order of their end
  std::map<std::uint64_t, Flow> flows;
  std::map<std::string, std::vector<std::pair<Cycles, double>>> counters; // "object unit"
  std::vector<Instant> instants;
  std::vector<std::string> core_tracks, thread_tracks; // names given by thread_name metadata
  std::size_t events = 0;

  std::vector<Slice> on(const std::string& track, std::size_t depth) const {
    std::vector<Slice> out;
    for (const auto& s : slices)
      if (s.track == track && s.depth == depth) out.push_back(s);
    std::sort(out.begin(), out.end(), [](const Slice& a, const Slice& b) {
      return a.start != b.start ? a.start < b.start : a.end < b.end;
    });
    return out;
  }
  std::size_t count(const std::string& track, const std::string& name) const {
    std::size_t n = 0;
    for (const auto& s : slices) n += s.track == track && s.name == name ? 1 : 0;
    return n;
  }
};

// Reads a trace and checks every rule that holds for any run. Times are turned back into cycles at
// the machine's clock: the file gives them to the picosecond, so this is exact.
Reading read_trace(const std::string& text, const Kernel& kernel) {
  Reading r;
  auto problem = [&](const std::string& what) { r.problems.push_back(what); };
  json doc;
  try {
    doc = json::parse(text);
  } catch (const std::exception& e) {
    problem(std::string("does not parse: ") + e.what());
    return r;
  }
  if (doc.value("displayTimeUnit", "") != "ns") problem("displayTimeUnit is not \"ns\"");
  if (!doc.contains("traceEvents") || !doc["traceEvents"].is_array()) {
    problem("no traceEvents array");
    return r;
  }
  const double hz = kernel.model().hz;
  const Cycles makespan = kernel.makespan();
  std::map<std::pair<std::uint64_t, std::uint64_t>, std::string> names; // (pid, tid) -> thread name
  std::uint64_t cores_pid = 0, objects_pid = 0;
  for (const auto& e : doc["traceEvents"])
    if (e.value("ph", "") == "M" && e.value("name", "") == "process_name") {
      if (e["args"]["name"] == "cores") cores_pid = e["pid"].get<std::uint64_t>();
      if (e["args"]["name"] == "IPC objects") objects_pid = e["pid"].get<std::uint64_t>();
    }
  for (const auto& e : doc["traceEvents"])
    if (e.value("ph", "") == "M" && e.value("name", "") == "thread_name") {
      std::string name = e["args"]["name"].get<std::string>();
      std::uint64_t pid = e["pid"].get<std::uint64_t>();
      names[{pid, e["tid"].get<std::uint64_t>()}] = name;
      if (pid != objects_pid) (pid == cores_pid ? r.core_tracks : r.thread_tracks).push_back(name);
    }

  struct Open {
    std::string name;
    Cycles start;
  };
  std::map<std::string, std::vector<Open>> stacks;
  std::map<std::uint64_t, std::vector<FlowEnd>> starts, finishes;
  double last_ts = -1;
  std::size_t index = 0;
  for (const auto& e : doc["traceEvents"]) {
    ++index;
    std::string where = "event " + std::to_string(index) + " " + e.dump();
    std::string ph = e.value("ph", "");
    if (ph == "M") continue;
    ++r.events;
    if (!e.contains("ts") || !e["ts"].is_number()) {
      problem(where + ": no ts");
      continue;
    }
    double ts = e["ts"].get<double>();
    if (ts < last_ts) problem(where + ": earlier than the event before it (the file is sorted by time)");
    last_ts = ts;
    const double exact = ts * hz / 1e6;
    if (exact < -0.01 || exact > static_cast<double>(makespan) + 0.01)
      problem(where + ": outside the run [0, " + std::to_string(makespan) + "] cycles");
    if (std::fabs(exact - std::round(exact)) > 0.01) problem(where + ": not a whole cycle");
    const auto at = static_cast<Cycles>(std::llround(std::max(exact, 0.0)));
    auto key = std::make_pair(e.value("pid", std::uint64_t{0}), e.value("tid", std::uint64_t{0}));
    if (!names.count(key) && ph != "C") {
      problem(where + ": on a track without a thread_name");
      continue;
    }
    const std::string track = names[key];
    auto& stack = stacks[track];
    const std::string name = e.value("name", "");
    if (ph == "B") {
      stack.push_back({name, at});
    } else if (ph == "E") {
      if (stack.empty()) {
        problem(where + ": E without its B on " + track);
        continue;
      }
      if (stack.back().name != name)
        problem(where + ": E of \"" + name + "\" while \"" + stack.back().name + "\" is open on " + track);
      if (at < stack.back().start) problem(where + ": ends before it begins");
      r.slices.push_back({track, stack.back().name, stack.back().start, at, stack.size() - 1});
      stack.pop_back();
    } else if (ph == "X") {
      r.slices.push_back({track, name, at,
                          at + static_cast<Cycles>(std::llround(e.value("dur", 0.0) * hz / 1e6)),
                          stack.size()});
    } else if (ph == "s" || ph == "f") {
      if (stack.empty()) problem(where + ": a flow event outside any slice on " + track);
      if (ph == "f" && e.value("bp", "") != "e")
        problem(where + ": a flow finish not bound to its enclosing slice");
      FlowEnd end{at, track, stack.empty() ? "" : stack.back().name};
      (ph == "s" ? starts : finishes)[e.value("id", std::uint64_t{0})].push_back(end);
    } else if (ph == "C") {
      for (const auto& [unit, value] : e["args"].items()) {
        if (!value.is_number() || value.get<double>() < 0 || value.get<double>() >= 9.2e18)
          problem(where + ": a counter below zero (or wrapped around)");
        r.counters[name + " " + unit].push_back({at, value.get<double>()});
      }
    } else if (ph == "i") {
      r.instants.push_back({track, name, at});
    } else {
      problem(where + ": unexpected phase");
    }
  }
  for (const auto& [track, stack] : stacks)
    for (const auto& open : stack) problem("\"" + open.name + "\" on " + track + " never ends");
  // Slices nest on every track (X slices included): none ends after the one it started in.
  std::map<std::string, std::vector<Slice>> by_track;
  for (const auto& s : r.slices) by_track[s.track].push_back(s);
  for (auto& [track, list] : by_track) {
    std::sort(list.begin(), list.end(), [](const Slice& a, const Slice& b) {
      return a.start != b.start ? a.start < b.start : a.depth < b.depth;
    });
    std::vector<Slice> enclosing;
    for (const auto& s : list) {
      while (!enclosing.empty() && enclosing.back().end <= s.start && enclosing.back().depth >= s.depth)
        enclosing.pop_back();
      while (!enclosing.empty() && enclosing.back().depth >= s.depth) enclosing.pop_back();
      if (!enclosing.empty() && s.end > enclosing.back().end)
        problem("\"" + s.name + "\" on " + track + " ends after \"" + enclosing.back().name +
                "\" that it is in");
      enclosing.push_back(s);
    }
  }
  // A core runs one thread at a time.
  for (const auto& core : r.core_tracks) {
    auto threads = r.on(core, 0);
    for (std::size_t i = 1; i < threads.size(); ++i)
      if (threads[i].start < threads[i - 1].end)
        problem(core + ": " + threads[i].name + " dispatched at " + std::to_string(threads[i].start) +
                " while " + threads[i - 1].name + " runs until " + std::to_string(threads[i - 1].end));
  }
  for (const auto& [id, list] : starts) {
    auto f = finishes.find(id);
    std::size_t n = f == finishes.end() ? 0 : f->second.size();
    if (list.size() != 1 || n != 1) {
      problem("flow " + std::to_string(id) + ": " + std::to_string(list.size()) + " starts, " +
              std::to_string(n) + " finishes");
      continue;
    }
    if (f->second[0].at < list[0].at) problem("flow " + std::to_string(id) + " finishes before it starts");
    r.flows[id] = {list[0], f->second[0]};
  }
  for (const auto& [id, list] : finishes)
    if (!starts.count(id)) problem("flow " + std::to_string(id) + " finishes without a start");
  return r;
}

#define CHECK_RULES(reading)                                                                                 \
  do {                                                                                                       \
    for (std::size_t i_ = 0; i_ < (reading).problems.size() && i_ < 5; ++i_)                                 \
      CAPTURE((reading).problems[i_]);                                                                       \
    CHECK((reading).problems.empty());                                                                       \
  } while (0)

std::size_t slices_named(const Reading& r, const std::string& name) {
  return static_cast<std::size_t>(
      std::count_if(r.slices.begin(), r.slices.end(), [&](const Slice& s) { return s.name == name; }));
}

// Every flow of a ping-pong goes from a send to a receive.
void check_send_to_recv(const Reading& r) {
  for (const auto& [id, flow] : r.flows) {
    CAPTURE(id);
    CHECK(flow.start.slice == "send");
    CHECK((flow.finish.slice == "recv" || flow.finish.slice == "recv (resumed)"));
  }
}

} // namespace

TEST_CASE("trace: by hand, a compute, a sleep and a compute on the teaching preset") {
  // 1 GHz: one cycle is a nanosecond. Dispatch: sched_pick 100 + context_restore 200 +
  // address_space_switch 500 = 800; compute 1000 to 1800; sleep: trap_enter 100 + syscall_dispatch 50,
  // out at 1950 (context_save 200 after), the timer at 1950 + 5000 = 6950 charges timer_interrupt
  // 500 and wakeup 100: ready at 7550; dispatch from idle: sched_pick 100 + idle_exit 1000 +
  // context_restore 200, then trap_exit 100: back in user mode at 8950; compute 500 to 9450; exit:
  // trap_enter 100 + syscall_dispatch 50, gone at 9600.
  auto t = trace_text(R"({"processes": [{"name": "p", "working_set_pages": 0, "script": [
    {"op": "compute", "time": 1000}, {"op": "sleep", "time": 5000}, {"op": "compute", "time": 500}]}]})");
  REQUIRE(t.kernel->makespan() == 9600);
  auto r = read_trace(t.json, *t.kernel);
  CHECK_RULES(r);
  CHECK(r.core_tracks == std::vector<std::string>{"core 0"});
  CHECK(r.thread_tracks == std::vector<std::string>{"p"});
  auto outer = r.on("core 0", 0);
  REQUIRE(outer.size() == 2);
  CHECK((outer[0].name == "p" && outer[0].start == 0 && outer[0].end == 1950));
  CHECK((outer[1].name == "p" && outer[1].start == 7550 && outer[1].end == 9600));
  auto inner = r.on("core 0", 1);
  REQUIRE(inner.size() == 4);
  CHECK((inner[0].name == "user" && inner[0].start == 800 && inner[0].end == 1800));
  CHECK((inner[1].name == "sleep" && inner[1].start == 1800 && inner[1].end == 1950));
  CHECK((inner[2].name == "sleep (resumed)" && inner[2].start == 7550 && inner[2].end == 8950));
  CHECK((inner[3].name == "user" && inner[3].start == 8950 && inner[3].end == 9450));
  std::vector<std::tuple<std::string, Cycles, Cycles>> states;
  for (const auto& slice : r.on("p", 0)) states.emplace_back(slice.name, slice.start, slice.end);
  CHECK(states == std::vector<std::tuple<std::string, Cycles, Cycles>>{{"ready", 0, 0},
                                                                       {"running", 0, 1950},
                                                                       {"sleep", 1950, 7550},
                                                                       {"ready", 7550, 7550},
                                                                       {"running", 7550, 9600}});
  // The times as written: microseconds to the picosecond.
  CHECK(t.json.find(R"({"ph":"B","ts":7.550000,)") != std::string::npos);
  CHECK(t.json.find(R"x("name":"sleep (resumed)")x") != std::string::npos);
  CHECK(t.json.find(R"("woken by":"a timer")") != std::string::npos);
}

TEST_CASE("trace: pipe ping-pong on one core and on two") {
  for (int cores : {1, 2}) {
    CAPTURE(cores);
    auto t = trace_file("pingpong-pipe", sets({"machine.cores=" + std::to_string(cores)}));
    auto r = read_trace(t.json, *t.kernel);
    CHECK_RULES(r);
    CHECK(r.core_tracks.size() == static_cast<std::size_t>(cores));
    CHECK(r.thread_tracks == std::vector<std::string>{"client", "server"});
    // 100 round trips at each of 8B, 64B, 512B, 4KiB, 64KiB, 1MiB... every message has its arrow,
    // the 1 MiB ones too, which the 64 KiB pipe carries in pieces: from the send to the first read.
    CHECK(r.flows.size() == slices_named(r, "send"));
    CHECK(r.flows.size() == 2 * t.kernel->records().size());
    check_send_to_recv(r);
    CHECK(r.counters.count("channel ping bytes") == 1);
    CHECK(r.counters.at("channel ping bytes").back().second == 0);
    double most = 0;
    for (const auto& [at, value] : r.counters.at("channel ping bytes")) most = std::max(most, value);
    CHECK(most == 65536); // a 1 MiB message fills the pipe
    std::size_t crossing = 0;
    for (const auto& [id, flow] : r.flows) crossing += flow.start.track != flow.finish.track ? 1 : 0;
    if (cores == 1) {
      CHECK(crossing == 0);
      CHECK(slices_named(r, "recv (resumed)") > 0); // the receiver blocks, the sender runs
    } else {
      CHECK(crossing == r.flows.size()); // client and server on their own cores
      for (const auto& core : r.core_tracks) CHECK(!r.on(core, 0).empty());
    }
  }
}

TEST_CASE("trace: a message keeps its id from its send to its receive, over every mechanism") {
  // Every ping-pong message is numbered as it is sent: pings odd, pongs even. The last message the
  // client receives is the last pong, and the script's received message carries its id.
  for (const char* mechanism : {"pipe", "sysv-msg", "posix-mq", "mailbox", "unix-stream", "unix-dgram"}) {
    CAPTURE(mechanism);
    auto t = trace_file(std::string("pingpong-") + mechanism);
    auto r = read_trace(t.json, *t.kernel);
    CHECK_RULES(r);
    const std::uint64_t messages = 2 * t.kernel->records().size();
    CHECK(r.flows.size() == messages);
    CHECK(r.flows.rbegin()->first == messages);
    const Thread& client = t.kernel->threads()[0];
    REQUIRE(client.locals);
    CHECK(client.locals->message.id == messages);
  }
}

TEST_CASE("trace: System V and POSIX message queues") {
  SUBCASE("sysv-msg-demo: ten typed messages, two taken by type, the rest in order") {
    auto t = trace_file("sysv-msg-demo");
    auto r = read_trace(t.json, *t.kernel);
    CHECK_RULES(r);
    CHECK(r.flows.size() == 10);
    for (const auto& [id, flow] : r.flows) {
      CHECK(flow.start.slice == "msgsnd");
      CHECK(flow.finish.slice == "msgrcv");
      CHECK(flow.start.track == "core 0");
    }
    const auto& fill = r.counters.at("msqid 0 messages");
    REQUIRE(fill.size() == 20);
    for (std::size_t i = 0; i < 10; ++i) CHECK(fill[i].second == static_cast<double>(i + 1));
    for (std::size_t i = 10; i < 20; ++i) CHECK(fill[i].second == static_cast<double>(19 - i));
    // The console lines and the failed calls are instants on the thread's track.
    bool nomsg = false, printed = false;
    for (const auto& i : r.instants) {
      nomsg = nomsg || (i.track == "recv-type2" && i.name == "msgrcv failed: ENOMSG");
      printed = printed || (i.track == "sender" && i.name == "1 Luffy");
    }
    CHECK(nomsg);
    CHECK(printed);
  }
  SUBCASE("posix-mq-priority and the sysv/posix ping-pongs on two cores") {
    for (const auto& [name, options] :
         std::vector<std::pair<std::string, LoadOptions>>{{"posix-mq-priority", {}},
                                                          {"pingpong-posix-mq", sets({"machine.cores=2"})},
                                                          {"pingpong-sysv-msg", sets({"machine.cores=2"})}}) {
      CAPTURE(name);
      auto t = trace_file(name, options);
      auto r = read_trace(t.json, *t.kernel);
      CHECK_RULES(r);
      CHECK(!r.flows.empty());
      // A ping-pong's receiver is always waiting: each message goes straight to it, never queued.
      CHECK(r.counters.empty() == (name != "posix-mq-priority"));
      if (name != "posix-mq-priority") check_send_to_recv(r);
    }
  }
}

TEST_CASE("trace: a call that blocks and times out") {
  // mq_timedsend on a full queue: the call's slice ends when the thread leaves the core and goes on
  // as "mq_send (resumed)" when the timer brings it back; the thread waits on the queue meanwhile.
  auto t = trace_file("posix-mq-timed");
  auto r = read_trace(t.json, *t.kernel);
  CHECK_RULES(r);
  CHECK(slices_named(r, "mq_send (resumed)") == 3);
  CHECK(slices_named(r, "mq_receive (resumed)") == 1);
  CHECK(r.count("producer", "blocked on posix mq /jobs: waiting for room (full at 2 messages)") == 3);
  std::size_t timeouts = 0;
  for (const auto& i : r.instants) timeouts += i.name == "mq_send failed: ETIMEDOUT" ? 1 : 0;
  CHECK(timeouts == 3);
  // Only the two messages a receive took have arrows; a timed-out send has none.
  CHECK(r.flows.size() == 2);
  CHECK(r.counters.at("posix mq /jobs messages").back().second == 0);

  // A mailbox send with a timeout, then a retry that is delivered.
  auto m = trace_file("mailbox-courier-timeout");
  auto mr = read_trace(m.json, *m.kernel);
  CHECK_RULES(mr);
  CHECK(mr.flows.size() == 1);
}

TEST_CASE("trace: threads of one process preempted on two cores") {
  // Three threads computing 10 ms each under round robin (2 ms) on two cores, and a fourth that
  // sleeps and prints: each core's track runs one thread at a time, slices cut at every tick.
  auto t = trace_text(R"({
    "machine": {"cores": 2, "scheduler": {"policy": "rr", "quantum": "2ms"}},
    "processes": [{"name": "app", "threads": [
      {"name": "w", "count": 3, "script": [{"op": "compute", "time": "10ms"}]},
      {"name": "tick", "script": [{"op": "repeat", "count": 3, "body": [
        {"op": "sleep", "time": "3ms"}, {"op": "print", "text": "tick"}]}]}]}]})");
  auto r = read_trace(t.json, *t.kernel);
  CHECK_RULES(r);
  CHECK(r.thread_tracks == std::vector<std::string>{"app/w[0]", "app/w[1]", "app/w[2]", "app/tick"});
  for (const char* w : {"app/w[0]", "app/w[1]", "app/w[2]"}) {
    CAPTURE(w);
    CHECK(r.count(w, "running") > 1); // preempted, dispatched again
    CHECK(r.count(w, "ready") > 1);
    CHECK(r.count("core 0", w) + r.count("core 1", w) == r.count(w, "running"));
  }
  CHECK(r.count("app/tick", "sleep") == 3);
  std::size_t ticks = 0;
  for (const auto& i : r.instants) ticks += i.track == "app/tick" && i.name == "tick" ? 1 : 0;
  CHECK(ticks == 3);
  // User time is nested in the thread slices and adds up to the 30 ms of compute.
  Cycles user = 0;
  for (const auto& s : r.slices)
    if (s.name == "user") user += s.end - s.start;
  CHECK(user == 3 * 10'000'000);
}

TEST_CASE("trace: every scenario and variant keeps the rules") {
  for (const auto& entry : fs::directory_iterator(IPCSIM_SOURCE_DIR "/scenarios")) {
    if (entry.path().extension() != ".json") continue;
    const std::string name = entry.path().stem().string();
    std::vector<std::pair<std::string, LoadOptions>> runs{{"", {}}};
    // 10,000 processes make a 120 MB trace: a tenth of them shows the same.
    if (name == "machine-many-threads") runs[0].second.sets.push_back("params.processes=1000");
    std::ifstream variants(fs::path(IPCSIM_SOURCE_DIR "/tests/expected") / (name + ".variants"));
    for (std::string line; std::getline(variants, line);) {
      std::istringstream words(line);
      std::string label, word;
      if (!(words >> label) || label[0] == '#') continue;
      LoadOptions options;
      while (words >> word) {
        std::string value;
        words >> value;
        if (word == "--set") options.sets.push_back(value);
        if (word == "--seed") options.seed = std::stoull(value);
      }
      runs.push_back({label, options});
    }
    for (const auto& [label, options] : runs) {
      CAPTURE(name);
      CAPTURE(label);
      auto t = trace_run(load_scenario(entry.path().string(), options));
      auto r = read_trace(t.json, *t.kernel);
      CHECK_RULES(r);
      CHECK(r.core_tracks.size() == t.kernel->cores().size());
      CHECK(r.thread_tracks.size() == t.kernel->threads().size());
    }
  }
}

TEST_CASE("trace: the same run gives the same bytes") {
  for (const auto& [name, options] : std::vector<std::pair<std::string, LoadOptions>>{
           {"pingpong-pipe", sets({"machine.cores=2"})},
           {"pipe-herd", sets({"machine.cores=3"})},
           {"mailbox-courier-group", sets({"channels.group.policy=random"})},
           {"stream-unix-stream", sets({"machine.cores=2"})}}) {
    CAPTURE(name);
    auto first = trace_file(name, options);
    auto second = trace_file(name, options);
    CHECK(first.json.size() > 1000);
    CHECK(first.json == second.json);
  }
}

TEST_CASE("trace: ipcsim run --trace") {
  fs::path dir = fs::temp_directory_path() / ("ipcsim_test_trace_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const std::string scenario = (dir / "good.json").string();
  std::ofstream(scenario) << R"({"processes": [{"name": "p", "script": [{"op": "compute", "time": 100}]}]})";
  auto cli = [](std::vector<std::string> args) {
    std::ostringstream out, err;
    int status = run_cli(args, out, err);
    return std::make_tuple(status, out.str(), err.str());
  };

  SUBCASE("writes the file, creating its directory") {
    const std::string path = (dir / "sub" / "run.json").string();
    auto [status, out, err] = cli({"run", scenario, "--trace", path, "-q"});
    CHECK(status == kExitOk);
    CHECK(out.empty());
    CHECK(err.empty());
    json doc = json::parse(read_text(path));
    // Dispatch 800 and 16 TLB refills 320, compute 100, exit 150.
    CHECK(doc["otherData"]["makespan_cycles"] == 1370);
    CHECK(doc["traceEvents"].size() > 5);
  }
  SUBCASE("a directory") {
    auto [status, out, err] = cli({"run", scenario, "--trace", dir.string()});
    CHECK(status == kExitBadInput);
    CHECK(err == "error: --trace " + dir.string() +
                     ": cannot write the trace: it is a directory; give a file name\n");
    CHECK(out.empty()); // nothing ran
  }
  SUBCASE("the scenario itself") {
    auto [status, out, err] = cli({"run", scenario, "--trace", scenario});
    CHECK(status == kExitBadInput);
    CHECK(err == "error: --trace " + scenario + ": that is the scenario file; give the trace another name\n");
    CHECK(read_text(scenario).find("compute") != std::string::npos); // untouched
  }
  SUBCASE("a path through a file") {
    const std::string path = (dir / "good.json" / "run.json").string();
    auto [status, out, err] = cli({"run", scenario, "--trace", path});
    CHECK(status == kExitBadInput);
    CHECK(err ==
          "error: --trace " + path + ": cannot create the directory " + scenario + ": Not a directory\n");
  }
  SUBCASE("a directory that cannot be written") {
    if (::geteuid() != 0) { // root writes anywhere
      fs::create_directories(dir / "locked");
      fs::permissions(dir / "locked", fs::perms::owner_read | fs::perms::owner_exec);
      const std::string path = (dir / "locked" / "run.json").string();
      auto [status, out, err] = cli({"run", scenario, "--trace", path});
      CHECK(status == kExitBadInput);
      CHECK(err == "error: --trace " + path + ": cannot write the trace: Permission denied\n");
      fs::permissions(dir / "locked", fs::perms::owner_all);
    }
  }
  SUBCASE("a deadlock is traced too") {
    const std::string deadlock = (dir / "deadlock.json").string();
    std::ofstream(deadlock) << R"({"processes": [
      {"name": "a", "script": [{"op": "join", "process": "b"}]},
      {"name": "b", "script": [{"op": "join", "process": "a"}]}]})";
    const std::string path = (dir / "deadlock-trace.json").string();
    auto [status, out, err] = cli({"run", deadlock, "--trace", path, "-q"});
    CHECK(status == kExitDeadlock);
    std::string text = read_text(path);
    CHECK(text.find(R"("name":"blocked on exit of b")") != std::string::npos);
    CHECK(text.find(R"("name":"blocked on exit of a")") != std::string::npos);
  }
  std::error_code ec;
  fs::remove_all(dir, ec);
}
