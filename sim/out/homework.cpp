#include "homework.hpp"

#include "error.hpp"
#include "kernel.hpp"
#include "report.hpp"
#include "scenario.hpp"
#include "simulation.hpp"

#include <algorithm>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <sstream>

namespace ipcsim {

namespace {

// ---- A portable PRNG ------------------------------------------------------------------------------

// SplitMix64 (Steele, Lea and Flood 2014): one 64-bit state, the same sequence everywhere.
class Rng {
public:
  explicit Rng(std::uint64_t seed) : state_(seed) {}
  std::uint64_t next() {
    std::uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  // Uniform in [0, n), by rejection (no modulo bias), n > 0.
  std::uint64_t below(std::uint64_t n) {
    std::uint64_t limit = ~std::uint64_t{0} - (~std::uint64_t{0} % n);
    std::uint64_t x;
    do x = next();
    while (x >= limit);
    return x % n;
  }
  // Uniform in [lo, hi].
  std::int64_t range(std::int64_t lo, std::int64_t hi) {
    return lo + static_cast<std::int64_t>(below(static_cast<std::uint64_t>(hi - lo) + 1));
  }
  template <class T> const T& pick(const std::vector<T>& items) { return items[below(items.size())]; }
  // k distinct values of [lo, hi], in drawing order (a partial Fisher-Yates shuffle).
  std::vector<std::int64_t> distinct(std::int64_t lo, std::int64_t hi, std::size_t k) {
    std::vector<std::int64_t> all;
    for (std::int64_t v = lo; v <= hi; ++v) all.push_back(v);
    for (std::size_t i = 0; i < k; ++i) std::swap(all[i], all[i + below(all.size() - i)]);
    all.resize(k);
    return all;
  }

private:
  std::uint64_t state_;
};

// ---- What the run did --------------------------------------------------------------------------

// The run's events, as the questions and their explanations need them.
class RunLog : public Observer {
public:
  struct MessageEvent {
    std::uint64_t id;
    std::uint32_t thread;
    Cycles at;
    std::uint64_t bytes;
  };
  struct Happening {
    Cycles at;
    std::uint32_t thread;
    std::string what;
  };
  std::vector<MessageEvent> sent, received;
  std::vector<Happening> happenings; // per thread in time order; sorted at the end
  std::map<std::uint32_t, std::vector<std::pair<Cycles, std::string>>> blocks; // thread: when, on what
  std::vector<Happening> prints;

  void on_thread_state(const Thread& t, ThreadState, ThreadState to, const WaitQueue* queue,
                       Cycles at) override {
    if (to == ThreadState::Blocked) {
      std::string on = queue ? queue->label : std::string("a timer (sleep)");
      blocks[t.id].push_back({at, on});
      add(at, t, "blocks, waiting for " + on);
    } else if (to == ThreadState::Exited) {
      add(at, t, "exits");
    }
  }
  void on_dispatch(const Core& core, const Thread& t, Cycles at) override {
    add(at, t, "is dispatched on core " + std::to_string(core.index));
  }
  void on_wakeup(const Thread& woken, const Thread* waker, Cycles at) override {
    add(at, woken, waker ? "is woken by " + waker->display_name() : std::string("is woken by a timer"));
  }
  void on_message_sent(const Thread& t, const Message& m, const std::string& object, Cycles at) override {
    sent.push_back({m.id, t.id, at, m.bytes});
    add(at, t, "sends a message of " + std::to_string(m.bytes) + " bytes on " + object);
  }
  void on_message_received(const Thread& t, const Message& m, const std::string& object, Cycles at) override {
    received.push_back({m.id, t.id, at, m.bytes});
    add(at, t, "receives a message of " + std::to_string(m.bytes) + " bytes from " + object);
  }
  void on_syscall_enter(const Core&, const Thread& t, std::uint16_t activity, Cycles at) override {
    add(at, t, "enters " + activity_names()[activity]);
  }
  void on_return_to_user(const Core&, const Thread& t, std::uint16_t activity, Cycles at) override {
    add(at, t, "returns from " + activity_names()[activity]);
  }
  void on_user_run(const Core&, const Thread& t, Cycles start, Cycles end) override {
    add(end, t,
        "has computed " + std::to_string(end - start) + " cycles (user time, from cycle " +
            std::to_string(start) + ")");
  }
  void on_print(const Thread& t, const std::string& text, Cycles at) override {
    prints.push_back({at, t.id, text});
    add(at, t, "prints \"" + text + "\"");
  }
  void finish() {
    auto by_time = [](const Happening& a, const Happening& b) { return a.at < b.at; };
    std::stable_sort(happenings.begin(), happenings.end(), by_time);
    std::stable_sort(prints.begin(), prints.end(), by_time);
  }

private:
  void add(Cycles at, const Thread& t, std::string what) {
    happenings.push_back({at, t.id, std::move(what)});
  }
};

struct RunData {
  const Scenario* scenario = nullptr;
  const Kernel* kernel = nullptr;
  const RunLog* log = nullptr;
  Summary summary;

  std::uint32_t thread(const std::string& name) const {
    for (const auto& t : kernel->threads())
      if (t.display_name() == name) return t.id;
    throw std::logic_error("homework: no thread " + name);
  }
  std::string name(std::uint32_t thread) const { return kernel->threads()[thread].display_name(); }
  double hz() const { return summary.hz; }
  Cycles cost(Primitive p) const { return kernel->model().costs.cycles(p); }
  // The receives of one thread, one per message (the last piece of a message completes it).
  std::vector<RunLog::MessageEvent> receives(std::uint32_t thread) const {
    std::vector<RunLog::MessageEvent> out;
    for (const auto& r : log->received) {
      if (r.thread != thread) continue;
      if (!out.empty() && out.back().id == r.id)
        out.back() = r;
      else
        out.push_back(r);
    }
    return out;
  }
  // The messages one thread sent, in sending order (each once).
  std::vector<RunLog::MessageEvent> sends(std::uint32_t thread) const {
    std::vector<RunLog::MessageEvent> out;
    for (const auto& s : log->sent)
      if (s.thread == thread && (out.empty() || out.back().id != s.id)) out.push_back(s);
    return out;
  }
  std::optional<std::uint32_t> receiver_of(std::uint64_t id) const {
    for (const auto& r : log->received)
      if (r.id == id) return r.thread;
    return std::nullopt;
  }
  std::uint64_t context_switches() const {
    std::uint64_t n = 0;
    for (const auto& c : summary.per_core) n += c.context_switches;
    return n;
  }
  // A thread's own prints, in order.
  std::vector<RunLog::Happening> prints_of(std::uint32_t thread) const {
    std::vector<RunLog::Happening> out;
    for (const auto& p : log->prints)
      if (p.thread == thread) out.push_back(p);
    return out;
  }
  // The last `n` things that happened to `thread` in (after, upto].
  std::vector<std::string> story(std::uint32_t thread, Cycles after, Cycles upto, std::size_t n) const;
  std::string time(Cycles at) const;
};

std::string with_commas(std::uint64_t v) {
  std::string digits = std::to_string(v), out;
  for (std::size_t i = 0; i < digits.size(); ++i) {
    if (i && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

std::string RunData::time(Cycles at) const {
  // The teaching preset runs at 1 GHz: a cycle is a nanosecond. Otherwise both are given.
  double ns = static_cast<double>(at) * 1e9 / hz();
  std::ostringstream text;
  if (hz() == 1e9)
    text << with_commas(at) << " ns (cycle " << at << ")";
  else
    text << format_number(ns) << " ns (cycle " << at << ")";
  return text.str();
}

std::vector<std::string> RunData::story(std::uint32_t thread, Cycles after, Cycles upto,
                                        std::size_t n) const {
  std::vector<std::string> lines;
  for (const auto& h : log->happenings)
    if (h.thread == thread && h.at > after && h.at <= upto)
      lines.push_back("at " + time(h.at) + ": " + name(thread) + " " + h.what);
  if (lines.size() > n) lines.erase(lines.begin(), lines.end() - static_cast<std::ptrdiff_t>(n));
  return lines;
}

// The breakdown's cycles for some primitives, in total and by activity.
struct PrimitiveSum {
  Cycles total = 0;
  std::map<std::string, Cycles> by_primitive;
  std::map<std::string, Cycles> by_activity;
};
PrimitiveSum sum_primitives(const Summary& s, const std::set<std::string>& primitives) {
  PrimitiveSum out;
  for (const auto& b : s.breakdown)
    if (primitives.count(b.primitive)) {
      out.total += b.cycles;
      out.by_primitive[b.primitive] += b.cycles;
      out.by_activity[b.activity] += b.cycles;
    }
  return out;
}
std::string list_cycles(const std::map<std::string, Cycles>& parts) {
  std::string out;
  for (const auto& [name, cycles] : parts)
    out += (out.empty() ? "" : ", ") + name + " " + with_commas(cycles);
  return out;
}

std::string ordinal(std::size_t n) {
  static const char* words[] = {"zeroth", "first",   "second", "third", "fourth", "fifth",
                                "sixth",  "seventh", "eighth", "ninth", "tenth"};
  return n < std::size(words) ? words[n] : std::to_string(n) + "th";
}

// ---- Questions every topic can ask ---------------------------------------------------------------

HomeworkQuestion ask_context_switches(const RunData& run) {
  HomeworkQuestion q;
  q.text = "How many context switches happen in the whole run (dispatches of a thread onto a core)?";
  q.answer = std::to_string(run.context_switches());
  std::string per_core;
  for (const auto& c : run.summary.per_core)
    per_core += (per_core.empty() ? "" : ", ") +
                ("core " + std::to_string(c.core) + ": " + std::to_string(c.context_switches));
  q.explanation.push_back("per core: " + per_core + ".");
  PrimitiveSum d = sum_primitives(run.summary, {"context_save", "context_restore", "sched_pick",
                                                "address_space_switch", "tlb_refill_per_page", "idle_exit"});
  q.explanation.push_back(
      "switching cost " + with_commas(d.total) + " cycles: " + list_cycles(d.by_primitive) +
      " (context_save " + std::to_string(run.cost(Primitive::context_save)) + ", sched_pick " +
      std::to_string(run.cost(Primitive::sched_pick)) + ", context_restore " +
      std::to_string(run.cost(Primitive::context_restore)) + " cycles each; address_space_switch " +
      std::to_string(run.cost(Primitive::address_space_switch)) +
      " and the TLB refills when the next thread is in another process).");
  return q;
}

HomeworkQuestion ask_copy_cycles(const RunData& run) {
  HomeworkQuestion q;
  q.text = "How many cycles go to copying data between user and kernel space (copy_setup and the bytes)?";
  PrimitiveSum c =
      sum_primitives(run.summary, {"copy_setup", "copy_bytes_per_cycle", "copy_bytes_per_cycle_uncached"});
  q.answer = with_commas(c.total) + " cycles";
  Cycles setup = run.cost(Primitive::copy_setup);
  auto it = c.by_primitive.find("copy_setup");
  Cycles setups = it == c.by_primitive.end() ? 0 : it->second;
  q.explanation.push_back(
      std::to_string(setup ? setups / setup : 0) + " copies at copy_setup " + std::to_string(setup) +
      " cycles = " + with_commas(setups) + ", plus the bytes at " +
      format_number(
          run.kernel->model().costs.value[static_cast<std::size_t>(Primitive::copy_bytes_per_cycle)]) +
      " bytes per cycle = " + with_commas(c.total - setups) + ".");
  q.explanation.push_back("by op: " + list_cycles(c.by_activity) + ".");
  return q;
}

HomeworkQuestion ask_end(const RunData& run) {
  HomeworkQuestion q;
  q.text = "At what simulated time does the run end (the last thread exits)?";
  q.answer = run.time(run.summary.end);
  Cycles busy = 0, idle = 0;
  for (const auto& c : run.summary.per_core) busy += c.busy, idle += c.idle;
  q.explanation.push_back("the cores were busy " + with_commas(busy) + " cycles and idle " +
                          with_commas(idle) + " cycles in all.");
  std::map<std::string, Cycles> by_activity;
  for (const auto& b : run.summary.breakdown) by_activity[b.activity] += b.cycles;
  q.explanation.push_back("busy cycles by activity: " + list_cycles(by_activity) + ".");
  return q;
}

// "When does THREAD receive its K-th message?"
HomeworkQuestion ask_kth_receive(const RunData& run, const std::string& receiver, std::size_t k) {
  HomeworkQuestion q;
  q.text = "When does " + receiver + " receive its " + ordinal(k) + " message?";
  auto thread = run.thread(receiver);
  auto receives = run.receives(thread);
  const auto& r = receives.at(k - 1);
  q.answer = run.time(r.at);
  Cycles before = k >= 2 ? receives[k - 2].at : 0;
  for (const auto& s : run.log->sent)
    if (s.id == r.id) {
      q.explanation.push_back("it was sent by " + run.name(s.thread) + " at " + run.time(s.at) +
                              ": it took " + with_commas(r.at - s.at) + " cycles to arrive.");
      break;
    }
  for (auto& line : run.story(thread, before, r.at, 8)) q.explanation.push_back(line);
  q.explanation.push_back("a receive costs trap_enter " + std::to_string(run.cost(Primitive::trap_enter)) +
                          " + syscall_dispatch " + std::to_string(run.cost(Primitive::syscall_dispatch)) +
                          " + the copy (copy_setup " + std::to_string(run.cost(Primitive::copy_setup)) +
                          " + the bytes) + trap_exit " + std::to_string(run.cost(Primitive::trap_exit)) +
                          " cycles; a dispatch adds sched_pick and context_restore.");
  return q;
}

// "When does THREAD print its K-th line?" (shared memory and semaphores: no message to follow)
HomeworkQuestion ask_kth_print(const RunData& run, const std::string& who, std::size_t k,
                               const std::string& what) {
  HomeworkQuestion q;
  q.text = "When does " + who + " " + what + "?";
  auto thread = run.thread(who);
  auto prints = run.prints_of(thread);
  const auto& p = prints.at(k - 1);
  q.answer = run.time(p.at);
  Cycles before = k >= 2 ? prints[k - 2].at : 0;
  for (auto& line : run.story(thread, before, p.at, 8)) q.explanation.push_back(line);
  return q;
}

HomeworkQuestion ask_blocks(const RunData& run, const std::string& who, const std::string& in) {
  HomeworkQuestion q;
  q.text = "How many times does " + who + " block (sleep in the kernel) " + in + "?";
  auto thread = run.thread(who);
  auto it = run.log->blocks.find(thread);
  std::size_t n = it == run.log->blocks.end() ? 0 : it->second.size();
  q.answer = std::to_string(n);
  if (n == 0) q.explanation.push_back(who + " never had to wait.");
  if (it != run.log->blocks.end())
    for (const auto& [at, on] : it->second)
      q.explanation.push_back("at " + run.time(at) + ", waiting for " + on);
  return q;
}

HomeworkQuestion ask_finish(const RunData& run, const std::string& who) {
  HomeworkQuestion q;
  q.text = "When does " + who + " finish (its last op done, the thread exits)?";
  const auto& t = run.kernel->threads()[run.thread(who)];
  q.answer = run.time(t.finished_at);
  ThreadTimes times = thread_times(*run.kernel, t, run.summary.end);
  q.explanation.push_back(who + " ran " + with_commas(times.run) + " cycles, waited ready " +
                          with_commas(times.ready) + " and was blocked " + with_commas(times.blocked) +
                          " (from its arrival).");
  for (auto& line : run.story(t.id, 0, t.finished_at, 4)) q.explanation.push_back(line);
  return q;
}

// ---- Topics ---------------------------------------------------------------------------------------

struct Draft {
  std::string title, statement;
  json scenario;
  // Run on the finished run: false when the draw is not a good problem (drawn again).
  std::function<bool(const RunData&)> well_posed;
  std::vector<std::function<HomeworkQuestion(const RunData&)>> questions;
};

std::string us(std::int64_t v) { return std::to_string(v) + "us"; }

json machine(std::int64_t cores, const std::string& quantum = "1ms") {
  return json{
      {"cores", cores}, {"costs", "teaching"}, {"scheduler", {{"policy", "rr"}, {"quantum", quantum}}}};
}

std::string teaching(const std::string& quantum = "1 ms") {
  return " The machine uses the teaching cost preset (1 GHz, so one cycle is one nanosecond; "
         "`ipcsim list presets`, docs/presets.md) and round-robin scheduling with a " +
         quantum + " quantum.";
}
const std::string kTeaching = teaching();

std::string cores_text(std::int64_t cores) {
  return cores == 1 ? "one core" : std::to_string(cores) + " cores";
}

bool only_expected_failures(const RunData& run, const std::set<std::string>& allowed) {
  for (const auto& f : run.summary.failed_calls)
    if (!allowed.count(f.error)) return false;
  return true;
}

// A producer writes messages of drawn sizes into a small pipe; a slower consumer reads them.
Draft draw_pipes(Rng& rng) {
  Draft d;
  std::int64_t cores = rng.range(1, 2);
  std::int64_t n = rng.range(4, 7);
  std::int64_t capacity = rng.pick<std::int64_t>({256, 512, 1024});
  std::int64_t consume = rng.range(2, 6);
  std::int64_t arrival = rng.range(0, 4);
  std::vector<std::int64_t> sizes, gaps;
  json producer = json::array();
  for (std::int64_t i = 1; i <= n; ++i) {
    sizes.push_back(rng.pick<std::int64_t>({64, 128, 192, 256}));
    gaps.push_back(rng.range(1, 4));
    producer.push_back(json{{"op", "compute"}, {"time", us(gaps.back())}});
    producer.push_back(json{{"op", "send"}, {"channel", "data"}, {"bytes", sizes.back()}});
  }
  json consumer =
      json::array({json{{"op", "repeat"},
                        {"count", n},
                        {"body", json::array({json{{"op", "recv"}, {"channel", "data"}, {"bytes", 256}},
                                              json{{"op", "compute"}, {"time", us(consume)}}})}}});
  d.scenario = {
      {"description", "homework: a producer and a consumer on a pipe"},
      {"machine", machine(cores)},
      {"channels",
       json::array(
           {{{"name", "data"}, {"mechanism", "pipe"}, {"capacity", capacity}, {"pipe_buf", capacity}}})},
      {"processes", json::array({{{"name", "producer"}, {"script", producer}},
                                 {{"name", "consumer"}, {"arrival", us(arrival)}, {"script", consumer}}})}};
  std::string sizes_text, gaps_text;
  for (std::size_t i = 0; i < sizes.size(); ++i) {
    sizes_text += (i ? ", " : "") + std::to_string(sizes[i]);
    gaps_text += (i ? ", " : "") + std::to_string(gaps[i]);
  }
  d.title = "A producer and a consumer on a pipe";
  d.statement = "Two processes share a pipe of " + std::to_string(capacity) +
                " bytes (writes up to that size are atomic) on " + cores_text(cores) +
                ". The producer sends " + std::to_string(n) + " messages of " + sizes_text +
                " bytes, computing " + gaps_text + " us before each. The consumer arrives at " +
                std::to_string(arrival) + " us and, " + std::to_string(n) +
                " times, receives a message (into a 256-byte buffer) and "
                "computes " +
                std::to_string(consume) + " us on it." + kTeaching;
  std::int64_t k = rng.range(2, n);
  d.well_posed = [n](const RunData& run) {
    return run.receives(run.thread("consumer")).size() == static_cast<std::size_t>(n) &&
           run.summary.failed_calls.empty();
  };
  d.questions = {
      [k](const RunData& run) { return ask_kth_receive(run, "consumer", static_cast<std::size_t>(k)); },
      [](const RunData& run) { return ask_blocks(run, "producer", "in its sends (the pipe full)"); },
      ask_context_switches, ask_copy_cycles, ask_end};
  return d;
}

// A POSIX message queue: drawn priorities, a queue that may fill, a receiver that comes late.
Draft draw_message_queues(Rng& rng) {
  Draft d;
  std::int64_t cores = rng.range(1, 2);
  std::int64_t n = rng.range(4, 7);
  std::int64_t maxmsg = rng.range(2, 5);
  std::int64_t arrival = rng.range(2, 12);
  std::int64_t consume = rng.range(1, 4);
  auto priorities = rng.distinct(0, 9, static_cast<std::size_t>(n));
  json producer = json::array();
  std::string prio_text;
  for (std::int64_t i = 0; i < n; ++i) {
    producer.push_back(json{{"op", "compute"}, {"time", "1us"}});
    producer.push_back(json{{"op", "send"},
                            {"channel", "jobs"},
                            {"bytes", 64},
                            {"priority", priorities[i]},
                            {"text", "message " + std::to_string(i + 1)}});
    prio_text += (i ? ", " : "") + std::to_string(priorities[i]);
  }
  json consumer =
      json::array({json{{"op", "repeat"},
                        {"count", n},
                        {"body", json::array({json{{"op", "recv"}, {"channel", "jobs"}, {"bytes", 64}},
                                              json{{"op", "print"}, {"text", "got {msg.text}"}},
                                              json{{"op", "compute"}, {"time", us(consume)}}})}}});
  d.scenario = {
      {"description", "homework: priorities on a POSIX message queue"},
      {"machine", machine(cores)},
      {"channels", json::array({{{"name", "jobs"}, {"mechanism", "posix_mq"}, {"maxmsg", maxmsg}}})},
      {"processes", json::array({{{"name", "producer"}, {"script", producer}},
                                 {{"name", "consumer"}, {"arrival", us(arrival)}, {"script", consumer}}})}};
  d.title = "Priorities on a POSIX message queue";
  d.statement = "A POSIX message queue holds at most " + std::to_string(maxmsg) +
                " messages (mq_maxmsg) on " + cores_text(cores) + ". The producer sends " +
                std::to_string(n) + " messages of 64 bytes, \"message 1\" to \"message " + std::to_string(n) +
                "\", with priorities " + prio_text +
                ", computing 1 us before each; a send to a full queue waits. The consumer arrives at " +
                std::to_string(arrival) + " us and receives " + std::to_string(n) +
                " messages (mq_receive takes the highest priority first, FIFO within a priority), "
                "computing " +
                std::to_string(consume) + " us after each." + kTeaching;
  d.well_posed = [n](const RunData& run) {
    return run.receives(run.thread("consumer")).size() == static_cast<std::size_t>(n) &&
           run.summary.failed_calls.empty();
  };
  d.questions = {
      [n](const RunData& run) {
        HomeworkQuestion q;
        q.text = "In which order does the consumer receive the messages (by number)?";
        auto sends = run.sends(run.thread("producer"));
        std::map<std::uint64_t, std::size_t> number;
        for (std::size_t i = 0; i < sends.size(); ++i) number[sends[i].id] = i + 1;
        std::string order;
        for (const auto& r : run.receives(run.thread("consumer")))
          order += (order.empty() ? "" : ", ") + std::to_string(number.at(r.id));
        q.answer = order;
        for (const auto& p : run.prints_of(run.thread("consumer")))
          q.explanation.push_back("at " + run.time(p.at) + ": consumer prints \"" + p.what + "\"");
        (void)n;
        return q;
      },
      [](const RunData& run) { return ask_blocks(run, "producer", "in mq_send (the queue full)"); },
      [](const RunData& run) { return ask_finish(run, "producer"); }, ask_context_switches};
  return d;
}

// A textbook mailbox shared by several receivers under a drawn policy.
Draft draw_mailboxes(Rng& rng) {
  Draft d;
  std::int64_t receivers = rng.range(2, 3);
  std::int64_t n = rng.range(5, 8);
  std::string policy = rng.pick<std::string>({"shared", "round-robin", "random"});
  json courier = json::array({json{{"op", "sleep"}, {"time", "100us"}}});
  std::string gaps_text;
  for (std::int64_t i = 1; i <= n; ++i) {
    courier.push_back(
        json{{"op", "send"}, {"channel", "group"}, {"bytes", 64}, {"text", "message " + std::to_string(i)}});
    if (i < n) {
      std::int64_t gap = rng.range(1, 6) * 50;
      courier.push_back(json{{"op", "sleep"}, {"time", us(gap)}});
      gaps_text += (i > 1 ? ", " : "") + std::to_string(gap);
    }
  }
  json processes = json::array({{{"name", "courier"}, {"script", courier}}});
  std::string receivers_text;
  for (std::int64_t r = 1; r <= receivers; ++r) {
    std::int64_t arrival = rng.range(0, 8) * 50;
    std::int64_t handling = rng.range(1, 8) * 50;
    std::string name = "r" + std::to_string(r);
    json body = json::array({json{{"op", "recv"}, {"channel", "group"}, {"bytes", 64}, {"timeout", "2ms"}},
                             json{{"op", "if"},
                                  {"cond", "ok"},
                                  {"then", json::array({json{{"op", "sleep"}, {"time", us(handling)}}})}}});
    processes.push_back(
        {{"name", name},
         {"arrival", us(arrival)},
         {"script", json::array({json{{"op", "while"}, {"cond", "errno != ETIMEDOUT"}, {"body", body}}})}});
    receivers_text += (r > 1 ? "; " : "") + name + " arrives at " + std::to_string(arrival) +
                      " us and, after each message, is away " + std::to_string(handling) + " us";
  }
  d.scenario = {
      {"description", "homework: a mailbox with several receivers"},
      {"seed", rng.range(1, 1000)},
      {"machine", machine(1)},
      {"channels",
       json::array(
           {{{"name", "group"}, {"mechanism", "mailbox"}, {"capacity", "unbounded"}, {"policy", policy}}})},
      {"processes", processes}};
  d.title = "A mailbox with several receivers";
  std::string policy_text =
      policy == "shared" ? "\"shared\": a message goes to the receiver that has waited longest"
      : policy == "round-robin"
          ? "\"round-robin\": receivers take turns in the order they first received"
          : "\"random\": among the waiting receivers, one drawn with the scenario's seed";
  d.statement =
      "A courier posts " + std::to_string(n) +
      " messages (\"message 1\", ...) to the mailbox `group`, the first at 100 us, then after " + gaps_text +
      " us. " + std::to_string(receivers) + " receivers wait on it: " + receivers_text +
      ". Each gives up after waiting 2 ms without a message. The mailbox is unbounded; its policy is " +
      policy_text + " (docs/mailbox.md). One core." + kTeaching;
  std::int64_t k = rng.range(2, n);
  d.well_posed = [n, receivers](const RunData& run) {
    auto sends = run.sends(run.thread("courier"));
    if (sends.size() != static_cast<std::size_t>(n)) return false;
    std::set<std::uint32_t> who;
    for (const auto& s : sends) {
      auto r = run.receiver_of(s.id);
      if (!r) return false;
      who.insert(*r);
    }
    // Every receiver gets something: "which receiver" has more than one possible answer.
    return who.size() == static_cast<std::size_t>(receivers) && only_expected_failures(run, {"ETIMEDOUT"});
  };
  d.questions = {[k](const RunData& run) {
                   HomeworkQuestion q;
                   q.text = "Which receiver gets message " + std::to_string(k) + "?";
                   auto sends = run.sends(run.thread("courier"));
                   const auto& s = sends.at(static_cast<std::size_t>(k - 1));
                   auto r = *run.receiver_of(s.id);
                   q.answer = run.name(r);
                   q.explanation.push_back("the courier sends it at " + run.time(s.at) +
                                           "; each receiver's last event before it:");
                   // Each receiver's last event at or before the send: waiting in recv, or away.
                   for (const auto& t : run.kernel->threads()) {
                     if (t.display_name() == "courier") continue;
                     std::string last = t.display_name() + " had not arrived yet";
                     for (const auto& h : run.log->happenings)
                       if (h.thread == t.id && h.at <= s.at)
                         last = "at " + run.time(h.at) + ", " + t.display_name() + " " + h.what;
                     q.explanation.push_back(last);
                   }
                   q.explanation.push_back(
                       "policy " + run.scenario->resolved["channels"][0]["policy"].get<std::string>() +
                       " chose " + run.name(r) + ".");
                   return q;
                 },
                 [](const RunData& run) {
                   HomeworkQuestion q;
                   q.text = "How many messages does each receiver get?";
                   std::map<std::string, std::size_t> counts;
                   for (const auto& t : run.kernel->threads())
                     if (t.display_name() != "courier") counts[t.display_name()] = run.receives(t.id).size();
                   for (const auto& [name, c] : counts)
                     q.answer += (q.answer.empty() ? "" : ", ") + name + ": " + std::to_string(c);
                   for (const auto& s : run.sends(run.thread("courier")))
                     q.explanation.push_back("message sent at " + run.time(s.at) + " goes to " +
                                             run.name(*run.receiver_of(s.id)));
                   return q;
                 },
                 ask_end};
  return d;
}

// Shared memory: a producer stores a counter, a consumer polls it with a sleep between checks.
Draft draw_shared_memory(Rng& rng) {
  Draft d;
  std::int64_t cores = rng.range(1, 2);
  std::int64_t n = rng.range(3, 5);
  std::int64_t poll = rng.pick<std::int64_t>({20, 30, 50});
  std::int64_t quantum = rng.pick<std::int64_t>({10, 20, 50}); // short: one core interleaves the two
  std::vector<std::int64_t> work;
  json producer = json::array({json{{"op", "shmget"},
                                    {"key", "0x4857"},
                                    {"bytes", 4096},
                                    {"flags", json::array({"IPC_CREAT"})},
                                    {"mode", "0600"},
                                    {"into", "shmid"}},
                               json{{"op", "shmat"}, {"shmid", "shmid"}, {"as", "board"}}});
  std::string work_text;
  for (std::int64_t i = 1; i <= n; ++i) {
    work.push_back(rng.range(2, 12) * 5);
    producer.push_back(json{{"op", "compute"}, {"time", us(work.back())}});
    producer.push_back(json{{"op", "mem_store"}, {"map", "board"}, {"offset", 0}, {"value", i}});
    work_text += (i > 1 ? ", " : "") + std::to_string(work.back());
  }
  json poll_body = json::array({json{{"op", "sleep"}, {"time", us(poll)}},
                                json{{"op", "mem_load"}, {"map", "board"}, {"offset", 0}, {"into", "seen"}},
                                json{{"op", "add"}, {"var", "checks"}},
                                json{{"op", "calc"}, {"var", "missing"}, {"expr", "want - seen"}}});
  json consumer = json::array(
      {json{{"op", "shmget"},
            {"key", "0x4857"},
            {"bytes", 4096},
            {"flags", json::array({"IPC_CREAT"})},
            {"mode", "0600"},
            {"into", "shmid"}},
       json{{"op", "shmat"}, {"shmid", "shmid"}, {"as", "board"}},
       json{{"op", "set"}, {"var", "checks"}, {"value", 0}},
       json{{"op", "repeat"},
            {"count", n},
            {"body", json::array({json{{"op", "add"}, {"var", "want"}},
                                  json{{"op", "mem_load"}, {"map", "board"}, {"offset", 0}, {"into", "seen"}},
                                  json{{"op", "add"}, {"var", "checks"}},
                                  json{{"op", "calc"}, {"var", "missing"}, {"expr", "want - seen"}},
                                  json{{"op", "while"}, {"cond", "missing > 0"}, {"body", poll_body}},
                                  json{{"op", "print"}, {"text", "saw item {want}"}}})}},
       json{{"op", "print"}, {"text", "checked the counter {checks} times"}}});
  d.scenario = {
      {"description", "homework: polling a counter in shared memory"},
      {"machine", machine(cores, us(quantum))},
      {"processes", json::array({{{"name", "producer"}, {"script", producer}},
                                 {{"name", "consumer"}, {"arrival", "1us"}, {"script", consumer}}})}};
  d.title = "Polling a counter in shared memory";
  d.statement = "A producer and a consumer attach the same System V shared memory segment (key 0x4857) on " +
                cores_text(cores) + ". The producer makes " + std::to_string(n) + " items, computing " +
                work_text +
                " us for each, and after each stores the item's number in the segment's first word. The "
                "consumer (arriving at 1 us) waits for each item in turn: it loads the word, and while the "
                "item is not there it sleeps " +
                std::to_string(poll) +
                " us and loads it again; then it prints \"saw item K\". A first touch of the segment's page "
                "costs a page fault (and, the very first, clearing the page); a word written last by another "
                "core costs a cache-line transfer (docs/shm.md)." +
                teaching(std::to_string(quantum) + " us");
  std::int64_t k = rng.range(2, n);
  d.well_posed = [n](const RunData& run) {
    // The consumer must have polled at least once: otherwise the problem has nothing to poll for.
    return run.prints_of(run.thread("consumer")).size() == static_cast<std::size_t>(n) + 1 &&
           run.log->blocks.count(run.thread("consumer")) && run.summary.failed_calls.empty();
  };
  d.questions = {
      [k](const RunData& run) {
        return ask_kth_print(run, "consumer", static_cast<std::size_t>(k),
                             "see item " + std::to_string(k) + " (print \"saw item " + std::to_string(k) +
                                 "\")");
      },
      [](const RunData& run) {
        HomeworkQuestion q;
        q.text = "How many times does the consumer load the counter in all?";
        auto prints = run.prints_of(run.thread("consumer"));
        // The script counts its loads and prints the count last: read it from the console.
        const std::string& last = prints.back().what;
        std::string digits;
        for (char c : last)
          if (c >= '0' && c <= '9') digits += c;
        q.answer = digits;
        q.explanation.push_back("the consumer's last line: \"" + last + "\" (at " +
                                run.time(prints.back().at) + ").");
        auto it = run.log->blocks.find(run.thread("consumer"));
        std::size_t sleeps = it == run.log->blocks.end() ? 0 : it->second.size();
        q.explanation.push_back("it slept " + std::to_string(sleeps) +
                                " times between loads: one load per item, plus one after each sleep.");
        return q;
      },
      [](const RunData& run) {
        HomeworkQuestion q;
        q.text = "How many cycles go to page faults, clearing pages and cache-line transfers?";
        PrimitiveSum m = sum_primitives(run.summary, {"page_fault", "page_zero", "cache_line_transfer"});
        q.answer = with_commas(m.total) + " cycles";
        q.explanation.push_back("by primitive: " + list_cycles(m.by_primitive) + " (page_fault " +
                                std::to_string(run.cost(Primitive::page_fault)) + ", page_zero " +
                                std::to_string(run.cost(Primitive::page_zero)) + ", cache_line_transfer " +
                                std::to_string(run.cost(Primitive::cache_line_transfer)) + " cycles each).");
        q.explanation.push_back("by op: " + list_cycles(m.by_activity) + ".");
        return q;
      },
      ask_context_switches};
  return d;
}

// A System V semaphore counting items between a producer and a consumer.
Draft draw_semaphores(Rng& rng) {
  Draft d;
  std::int64_t cores = rng.range(1, 2);
  std::int64_t n = rng.range(3, 6);
  std::int64_t use = rng.range(1, 5);
  json semget = json{{"op", "semget"}, {"key", "0x5e4a"}, {"nsems", 1}, {"flags", json::array({"IPC_CREAT"})},
                     {"mode", "0600"}, {"into", "items"}};
  json producer = json::array({semget});
  std::string work_text;
  for (std::int64_t i = 1; i <= n; ++i) {
    std::int64_t w = rng.range(1, 6);
    producer.push_back(json{{"op", "compute"}, {"time", us(w)}});
    producer.push_back(json{
        {"op", "semop"}, {"semid", "items"}, {"ops", json::array({json{{"sem_num", 0}, {"sem_op", 1}}})}});
    work_text += (i > 1 ? ", " : "") + std::to_string(w);
  }
  json consumer = json::array(
      {semget, json{{"op", "repeat"},
                    {"count", n},
                    {"body", json::array({json{{"op", "semop"},
                                               {"semid", "items"},
                                               {"ops", json::array({json{{"sem_num", 0}, {"sem_op", -1}}})}},
                                          json{{"op", "add"}, {"var", "taken"}},
                                          json{{"op", "print"}, {"text", "took item {taken}"}},
                                          json{{"op", "compute"}, {"time", us(use)}}})}}});
  d.scenario = {{"description", "homework: a semaphore counting items"},
                {"machine", machine(cores)},
                {"processes", json::array({{{"name", "consumer"}, {"script", consumer}},
                                           {{"name", "producer"}, {"script", producer}}})}};
  d.title = "A semaphore counting items";
  d.statement =
      "A producer and a consumer share a System V semaphore (key 0x5e4a, one semaphore, starting at "
      "0) on " +
      cores_text(cores) + ". The producer makes " + std::to_string(n) + " items, computing " + work_text +
      " us for each, and signals the semaphore (semop +1, V) after each. The consumer waits on it "
      "(semop -1, P) before each item, prints \"took item K\" and computes " +
      std::to_string(use) + " us on it. Both start at time 0, the consumer first." + kTeaching;
  std::int64_t k = rng.range(2, n);
  d.well_posed = [n](const RunData& run) {
    return run.prints_of(run.thread("consumer")).size() == static_cast<std::size_t>(n) &&
           run.summary.failed_calls.empty();
  };
  d.questions = {[k](const RunData& run) {
                   return ask_kth_print(run, "consumer", static_cast<std::size_t>(k),
                                        "take item " + std::to_string(k));
                 },
                 [](const RunData& run) { return ask_blocks(run, "consumer", "in semop"); },
                 ask_context_switches, ask_end};
  return d;
}

// Scheduling of communicating processes: a pipeline and a CPU hog under round robin on one core.
Draft draw_scheduling(Rng& rng) {
  Draft d;
  std::int64_t quantum = rng.pick<std::int64_t>({1, 2, 4});
  std::int64_t n = rng.range(3, 5);
  std::int64_t make = rng.range(1, 4);
  std::int64_t use = rng.range(1, 4);
  std::int64_t hog = rng.range(4, 12);
  std::int64_t hog_arrival = rng.range(0, 5);
  json producer = json::array(
      {json{{"op", "repeat"},
            {"count", n},
            {"body", json::array({json{{"op", "compute"}, {"time", std::to_string(make) + "ms"}},
                                  json{{"op", "send"}, {"channel", "items"}, {"bytes", 128}}})}}});
  json consumer = json::array(
      {json{{"op", "repeat"},
            {"count", n},
            {"body", json::array({json{{"op", "recv"}, {"channel", "items"}, {"bytes", 128}},
                                  json{{"op", "compute"}, {"time", std::to_string(use) + "ms"}}})}}});
  json hog_script = json::array({json{{"op", "compute"}, {"time", std::to_string(hog) + "ms"}}});
  json m = machine(1);
  m["scheduler"]["quantum"] = std::to_string(quantum) + "ms";
  d.scenario = {{"description", "homework: round robin with communicating processes"},
                {"machine", m},
                {"channels", json::array({{{"name", "items"}, {"mechanism", "pipe"}}})},
                {"processes", json::array({{{"name", "producer"}, {"script", producer}},
                                           {{"name", "consumer"}, {"script", consumer}},
                                           {{"name", "hog"},
                                            {"arrival", std::to_string(hog_arrival) + "ms"},
                                            {"script", hog_script}}})}};
  d.title = "Round robin with communicating processes";
  d.statement =
      "One core, round-robin scheduling with a " + std::to_string(quantum) +
      " ms quantum, the teaching cost preset (1 GHz: one cycle is one nanosecond). A producer makes " +
      std::to_string(n) + " items, computing " + std::to_string(make) +
      " ms for each, and sends each (128 bytes) into a pipe; a consumer receives them one by one and "
      "computes " +
      std::to_string(use) +
      " ms on each. Both start at 0 (producer first). A CPU-bound process, hog, "
      "arrives at " +
      std::to_string(hog_arrival) + " ms and computes " + std::to_string(hog) +
      " ms. A process that blocks gives up the rest of its quantum; a woken one joins the back of "
      "the run queue (docs/machine.md).";
  std::int64_t k = rng.range(2, n);
  d.well_posed = [n](const RunData& run) {
    if (run.receives(run.thread("consumer")).size() != static_cast<std::size_t>(n)) return false;
    // "In which order do they finish" needs three different finishing times.
    std::set<Cycles> ends;
    for (const auto& t : run.kernel->threads()) ends.insert(t.finished_at);
    return ends.size() == 3 && run.summary.failed_calls.empty();
  };
  d.questions = {
      [](const RunData& run) {
        HomeworkQuestion q;
        q.text = "In which order do the three processes finish?";
        std::vector<const Thread*> threads;
        for (const auto& t : run.kernel->threads()) threads.push_back(&t);
        std::sort(threads.begin(), threads.end(),
                  [](const Thread* a, const Thread* b) { return a->finished_at < b->finished_at; });
        for (const Thread* t : threads) {
          q.answer += (q.answer.empty() ? "" : ", ") + t->display_name();
          q.explanation.push_back(t->display_name() + " finishes at " + run.time(t->finished_at));
        }
        return q;
      },
      [k](const RunData& run) { return ask_kth_receive(run, "consumer", static_cast<std::size_t>(k)); },
      ask_context_switches, [](const RunData& run) { return ask_finish(run, "hog"); }};
  return d;
}

struct TopicEntry {
  HomeworkTopic topic;
  Draft (*draw)(Rng&);
};

const std::vector<TopicEntry>& topic_entries() {
  static const std::vector<TopicEntry> entries{
      {{"pipes", "a producer and a consumer on a small pipe: when messages arrive, blocking, copies"},
       draw_pipes},
      {{"message-queues",
        "priorities on a POSIX message queue that fills: the order of receipt, blocked sends"},
       draw_message_queues},
      {{"mailboxes", "a textbook mailbox with several receivers under a buffering policy: who gets what"},
       draw_mailboxes},
      {{"shared-memory",
        "polling a counter in shared memory with sleeps: when items are seen, loads, faults"},
       draw_shared_memory},
      {{"semaphores",
        "a System V semaphore counting items: when they are taken, how often the consumer waits"},
       draw_semaphores},
      {{"scheduling", "round robin with a pipeline and a CPU hog on one core: finishing order, switches"},
       draw_scheduling},
  };
  return entries;
}

// Indentation for containers, one line for any object or array that fits in `width` characters.
void write_compact(std::ostringstream& out, const json& value, int indent, std::size_t width) {
  std::string flat = value.dump();
  if (!value.is_structured() || value.empty() || flat.size() + static_cast<std::size_t>(indent) <= width) {
    // ordered_json::dump gives {"a":1}; add the spaces a reader expects.
    std::string spaced;
    bool in_string = false;
    for (std::size_t i = 0; i < flat.size(); ++i) {
      char c = flat[i];
      spaced += c;
      if (c == '"' && (i == 0 || flat[i - 1] != '\\')) in_string = !in_string;
      if (!in_string && (c == ':' || c == ',')) spaced += ' ';
    }
    out << spaced;
    return;
  }
  std::string pad(static_cast<std::size_t>(indent) + 2, ' ');
  bool object = value.is_object();
  out << (object ? "{\n" : "[\n");
  std::size_t i = 0;
  for (auto it = value.begin(); it != value.end(); ++it, ++i) {
    out << pad;
    if (object) out << json(it.key()).dump() << ": ";
    write_compact(out, *it, indent + 2, width);
    out << (i + 1 < value.size() ? ",\n" : "\n");
  }
  out << std::string(static_cast<std::size_t>(indent), ' ') << (object ? "}" : "]");
}

} // namespace

std::string compact_json(const json& value) {
  std::ostringstream out;
  write_compact(out, value, 0, 100);
  return out.str();
}

const std::vector<HomeworkTopic>& homework_topics() {
  static const std::vector<HomeworkTopic> topics = [] {
    std::vector<HomeworkTopic> out;
    for (const auto& e : topic_entries()) out.push_back(e.topic);
    return out;
  }();
  return topics;
}

HomeworkProblem make_homework(const std::string& topic, std::uint64_t seed) {
  const TopicEntry* entry = nullptr;
  std::vector<std::string> names;
  for (const auto& e : topic_entries()) {
    names.push_back(e.topic.name);
    if (e.topic.name == topic) entry = &e;
  }
  if (!entry)
    throw UserError("unknown homework topic \"" + topic + "\"" + did_you_mean(topic, names) +
                    "; topics: " + join_list(names));
  // Each topic draws from its own stream, so that pipes 7 and semaphores 7 are unrelated.
  Rng rng(seed ^ std::stoull(fnv1a64_hex(topic), nullptr, 16));
  constexpr unsigned kMaxAttempts = 50;
  for (unsigned attempt = 1; attempt <= kMaxAttempts; ++attempt) {
    Draft draft = entry->draw(rng);
    std::string file = "homework-" + topic + "-" + std::to_string(seed) + ".json";
    auto scenario = load_scenario_text(draft.scenario.dump(), file, LoadOptions{});
    Simulation simulation(scenario->machines);
    RunLog log;
    Kernel& kernel = simulation.machine(0);
    kernel.subscribe(log);
    simulation.run();
    log.finish();
    if (!simulation.runtime_error().empty() || simulation.deadlocked()) continue;
    RunData run;
    run.scenario = scenario.get();
    run.kernel = &kernel;
    run.log = &log;
    run.summary = summarize(*scenario, kernel);
    if (!draft.well_posed(run)) continue;
    HomeworkProblem problem;
    problem.topic = topic;
    problem.seed = seed;
    problem.title = draft.title;
    problem.scenario = draft.scenario;
    problem.statement = draft.statement;
    problem.result = "completed";
    problem.simulated = run.summary.end;
    problem.attempts = attempt;
    for (const auto& ask : draft.questions) problem.questions.push_back(ask(run));
    return problem;
  }
  throw std::logic_error("homework " + topic + " -s " + std::to_string(seed) + ": no well-posed problem in " +
                         std::to_string(kMaxAttempts) + " draws");
}

void print_homework(std::ostream& out, const HomeworkProblem& p, bool with_answers, bool markdown) {
  std::string file = "homework-" + p.topic + "-" + std::to_string(p.seed) + ".json";
  auto heading = [&](const std::string& text, int level) {
    if (markdown)
      out << std::string(static_cast<std::size_t>(level), '#') << " " << text << "\n\n";
    else
      out << text << "\n" << std::string(text.size(), level == 1 ? '=' : '-') << "\n\n";
  };
  heading("Homework: " + p.title + " (topic " + p.topic + ", seed " + std::to_string(p.seed) + ")",
          markdown ? 2 : 1);
  out << p.statement << "\n\n";
  out << "The scenario (save it as " << file << "; `ipcsim run " << file << "` runs it, `ipcsim homework "
      << p.topic << " -s " << p.seed << " --scenario-only > " << file << "` writes it):\n\n";
  if (markdown) out << "```json\n";
  out << compact_json(p.scenario) << "\n";
  if (markdown) out << "```\n";
  out << "\n";
  heading("Questions", 3);
  for (std::size_t i = 0; i < p.questions.size(); ++i) out << i + 1 << ". " << p.questions[i].text << "\n";
  out << "\n";
  if (!with_answers) return;
  heading("Answers (from the simulated run)", 3);
  for (std::size_t i = 0; i < p.questions.size(); ++i) {
    const auto& q = p.questions[i];
    out << i + 1 << ". " << (markdown ? "**" + q.answer + "**" : q.answer) << "\n";
    for (const auto& line : q.explanation) out << "   - " << line << "\n";
  }
  out << "\n";
}

} // namespace ipcsim
