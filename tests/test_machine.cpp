// The simulated machine: scheduler policies on small job sets worked out by hand, time exactness,
// attribution, affinity, cross-core wakeups and preemption, and the deadlock report.
#include "harness.hpp"

#include <cstdio>
#include <doctest/doctest.h>
#include <functional>
#include <iostream>
#include <sys/wait.h>
#include <unistd.h>

using namespace ipcsim;
using ipcsim::test::run_text;

namespace {

// A job: a single-threaded process arriving at `arrival` that computes for `work` cycles.
std::string job(const std::string& name, Cycles arrival, Cycles work, int priority = 0) {
  return R"({"name": ")" + name + R"(", "arrival": )" + std::to_string(arrival) + R"(, "priority": )" +
         std::to_string(priority) + R"(, "script": [{"op": "compute", "time": )" + std::to_string(work) +
         "}]}";
}

// One core, every kernel cost zero: the policy alone decides the timeline.
std::string ideal_machine(const std::string& scheduler, const std::string& jobs) {
  return R"({"machine": {"cores": 1, "costs": "ideal", "scheduler": )" + scheduler + R"(}, "processes": [)" +
         jobs + "]}";
}

void expect_finish(const ipcsim::test::Run& run, const std::string& name, Cycles expected) {
  INFO("thread " << name << ": expected to finish at cycle " << expected);
  CHECK(run.finished(name) == expected);
}

// Runs `text` in a child process: "LIMIT\nRUNTIME_ERROR\nCONSOLE LINES...", LIMIT being the child's
// kClockLimitCycles. A run that reaches the clock limit leaves SimGrid's clock, which keeps
// running from one run to the next in a process (engine.hpp), near 2^53 for every later test.
// `report` adds a line of its own after the console.
std::string run_in_child(const std::string& text,
                         const std::function<std::string(const ipcsim::test::Run&)>& report = nullptr) {
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  std::cout.flush(); // or the child, flushing on its way, prints it again
  std::fflush(nullptr);
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::close(fds[0]);
    std::string out;
    try {
      ipcsim::LoadOptions options;
      options.limits.max_time_seconds = 0; // only the clock's own limit
      auto run = run_text(text, options);
      out = std::to_string(kClockLimitCycles) + "\n" + run.kernel->runtime_error() + "\n";
      for (const auto& line : run.kernel->console()) out += line.text + "\n";
      if (report) out += report(run) + "\n";
    } catch (const std::exception& e) {
      out = std::string("exception: ") + e.what();
    }
    for (std::size_t done = 0; done < out.size();) {
      auto n = ::write(fds[1], out.data() + done, out.size() - done);
      if (n <= 0) break;
      done += static_cast<std::size_t>(n);
    }
    ::_exit(0);
  }
  ::close(fds[1]);
  std::string out;
  char buffer[4096];
  for (ssize_t n; (n = ::read(fds[0], buffer, sizeof buffer)) > 0;)
    out.append(buffer, static_cast<std::size_t>(n));
  ::close(fds[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  CHECK(WIFEXITED(status));
  return out;
}

} // namespace

TEST_CASE("fifo runs jobs to completion in arrival order") {
  // A(0, 30) B(0, 20) C(10, 10): A 0-30, B 30-50, C 50-60.
  auto run = run_text(ideal_machine(R"({"policy": "fifo"})",
                                    job("A", 0, 30) + "," + job("B", 0, 20) + "," + job("C", 10, 10)));
  expect_finish(run, "A", 30);
  expect_finish(run, "B", 50);
  expect_finish(run, "C", 60);
  CHECK(run.account("C").ready_cycles == 40); // arrived at 10, ran at 50
}

TEST_CASE("round robin rotates on the quantum; an arrival joins the tail") {
  // quantum 10. A(0, 30) B(0, 20) C(5, 10).
  // 0-10 A (C arrives at 5: queue B C), 10-20 B, 20-30 C done, 30-40 A, 40-50 B done, 50-60 A done.
  auto run = run_text(ideal_machine(R"({"policy": "rr", "quantum": 10})",
                                    job("A", 0, 30) + "," + job("B", 0, 20) + "," + job("C", 5, 10)));
  expect_finish(run, "C", 30);
  expect_finish(run, "B", 50);
  expect_finish(run, "A", 60);
  CHECK(run.kernel->cores()[0]->context_switches == 6); // A B C A B A
}

TEST_CASE("round robin: a thread alone keeps the core when its quantum ends") {
  auto run = run_text(ideal_machine(R"({"policy": "rr", "quantum": 10})", job("A", 0, 95)));
  expect_finish(run, "A", 95);
  CHECK(run.kernel->cores()[0]->context_switches == 1);
}

TEST_CASE("static priority preempts the running thread at the arrival of a higher priority") {
  // M(prio 3, 0, 20) L(prio 1, 0, 50) H(prio 5, 15, 10):
  // 0-15 M, H arrives and preempts: 15-25 H, 25-30 M done, 30-80 L done.
  auto run =
      run_text(ideal_machine(R"({"policy": "priority"})",
                             job("L", 0, 50, 1) + "," + job("M", 0, 20, 3) + "," + job("H", 15, 10, 5)));
  expect_finish(run, "H", 25);
  expect_finish(run, "M", 30);
  expect_finish(run, "L", 80);
  CHECK(run.account("M").ready_cycles == 10);
}

TEST_CASE("priority with a quantum round-robins equal priorities only") {
  // A and B at prio 2, C at prio 1, quantum 10: A 0-10, B 10-20, A 20-30 done, B 30-40 done, C 40-50.
  auto run =
      run_text(ideal_machine(R"({"policy": "priority", "quantum": 10})",
                             job("A", 0, 20, 2) + "," + job("B", 0, 20, 2) + "," + job("C", 0, 10, 1)));
  expect_finish(run, "A", 30);
  expect_finish(run, "B", 40);
  expect_finish(run, "C", 50);
}

TEST_CASE("eevdf: 300 threads sleeping and computing in turn with CPU hogs on two cores all finish") {
  // Many threads asleep on the queues (delayed) with early deadlines exercise the tree of waiting
  // threads; every invariant is checked at each dispatch, switch and wakeup.
  ipcsim::LoadOptions checked;
  checked.debug_invariants = true;
  auto run = run_text(R"({"machine": {"cores": 2, "costs": "teaching", "scheduler": {"policy": "eevdf",
    "slice": "300us", "tick": "100us"}}, "processes": [
    {"name": "w", "count": 300, "script": [{"op": "repeat", "count": 5, "body": [{"op": "compute", "time": "50us"},
      {"op": "sleep", "time": "300us"}, {"op": "compute", "time": "200us"}, {"op": "yield"},
      {"op": "sleep", "time": "5ms"}]}]},
    {"name": "hog", "count": 3, "script": [{"op": "compute", "time": "200ms"}]}]})",
                      checked);
  CHECK(run.kernel->runtime_error().empty());
  for (const auto& thread : run.kernel->threads()) CHECK(thread.state == ThreadState::Exited);
}

TEST_CASE("mlfq demotes on used allotment and lets a new arrival preempt") {
  // levels 3, allotments 10/20/40, no boost. A(0, 100) B(25, 15).
  // 0-10 A at level 0 (alone, keeps running, demoted to 1); 10-25 A at level 1;
  // 25: B arrives at level 0 and preempts A (A has used 15 of 20 at level 1);
  // 25-35 B uses its 10 at level 0, demoted to 1, behind A; 35-40 A uses its last 5, demoted to 2;
  // 40-45 B (level 1) done; 45-115 A at level 2 done.
  auto run =
      run_text(ideal_machine(R"({"policy": "mlfq", "levels": 3, "quantum": [10, 20, 40], "boost_period": 0})",
                             job("A", 0, 100) + "," + job("B", 25, 15)));
  expect_finish(run, "B", 45);
  expect_finish(run, "A", 115);
  CHECK(run.thread("A").level == 2);
  CHECK(run.thread("B").level == 1);
}

TEST_CASE("mlfq boost returns every thread to the top level") {
  // levels 2, allotments 10/1000, boost every 50. A(0, 200) B(0, 30).
  // 0-10 A (to level 1), 10-20 B (to level 1), 20-50 A at level 1, stopped by the boost at 50:
  // both back at level 0, B first. 50-60 B (to level 1), 60-70 A (to level 1), 70-80 B done.
  // A then runs alone to 230. Without boosts A would run 20-210 and B finish at 230.
  const std::string jobs = job("A", 0, 200) + "," + job("B", 0, 30);
  auto boosted = run_text(
      ideal_machine(R"({"policy": "mlfq", "levels": 2, "quantum": [10, 1000], "boost_period": 50})", jobs));
  expect_finish(boosted, "B", 80);
  expect_finish(boosted, "A", 230);
  auto unboosted = run_text(
      ideal_machine(R"({"policy": "mlfq", "levels": 2, "quantum": [10, 1000], "boost_period": 0})", jobs));
  expect_finish(unboosted, "A", 210);
  expect_finish(unboosted, "B", 230);
}

TEST_CASE("eevdf: two CPU-bound threads take whole requests, switched at the tick that finds one used up") {
  // slice 30, tick 10. Both placed at V = 0 with half a request (PLACE_DEADLINE_INITIAL): deadline
  // 15; A was queued first. A 0-20 (the tick at 20 finds vruntime 20 >= 15: deadline 50, and A,
  // ahead of V = 10, is not eligible); B 20-40 (deadline 50; both at 20, equal deadlines: A, queued
  // first); A 40-70 (its whole request, 20 to 50); B 70-100; A 100-130; B 130-160; A 160-180 done
  // (it has run 20+30+30+20 = 100); B alone 180-200.
  auto run = run_text(ideal_machine(R"({"policy": "eevdf", "slice": 30, "tick": 10})",
                                    job("A", 0, 100) + "," + job("B", 0, 100)));
  expect_finish(run, "A", 180);
  expect_finish(run, "B", 200);
  CHECK(run.kernel->cores()[0]->context_switches == 8);
}

TEST_CASE("eevdf: a thread that slept while owed service preempts the running one when it wakes") {
  // slice 30, tick 10. H 0-20 (as above); S 20-24, then sleeps with lag V - v = 12 - 4 = 8 (V, the
  // mean of 20 and 4). H runs from 24: at 34, S wakes and is placed that lag, doubled for the weight
  // it adds back (PLACE_LAG), before V = 30: vruntime 14, deadline 44. H (30) is then ahead of the
  // mean (22) and not eligible: S preempts it at once and runs 34-44. H finishes its remaining 70
  // at 114. Round robin with the same slice would let H run to the end of its slice first.
  const std::string jobs = job("H", 0, 100) + R"(, {"name": "S", "script": [{"op": "compute", "time": 4},
    {"op": "sleep", "time": 10}, {"op": "compute", "time": 10}]})";
  auto run = run_text(ideal_machine(R"({"policy": "eevdf", "slice": 30, "tick": 10})", jobs));
  expect_finish(run, "S", 44);
  expect_finish(run, "H", 114);
  auto rr = run_text(ideal_machine(R"({"policy": "rr", "quantum": 30})", jobs));
  expect_finish(rr, "S", 74); // H 0-30, S 30-34, H 34-64 (S woken at 44 waits), S 64-74
}

TEST_CASE(
    "eevdf: a thread woken while delayed is requeued against the running one's last accounted runtime") {
  // slice 30, tick 10; S queued first. S 0-20 (the tick at 20 finds its request used up: deadline
  // 50, and ahead of V = 10); H 20-40 (likewise: deadline 50; equal deadlines, S queued first);
  // S 40-45 ends its compute at vruntime 25 and sleeps ahead of V = 22: it stays queued, asleep
  // (DELAY_DEQUEUE). H runs from 45; the tick at 50 accounts it to vruntime 25. S's timer at 55
  // wakes it: as Linux's ttwu_runnable -> requeue_delayed_entity, without update_curr, S's lag is
  // taken against H at 25 (V = 25, lag 0: S keeps vruntime 25, deadline 50). The wakeup check then
  // brings H to 30: H is ahead of V = 27 and S preempts it, running 55-65. Brought up to date
  // first, S would have had lag 2, been placed at H's 30 without it, and waited for the tick that
  // finds H's protection over (80: S done at 90).
  const std::string jobs = R"({"name": "S", "script": [{"op": "compute", "time": 25},
    {"op": "sleep", "time": 10}, {"op": "compute", "time": 10}]}, )" +
                           job("H", 0, 100);
  auto run = run_text(ideal_machine(R"({"policy": "eevdf", "slice": 30, "tick": 10})", jobs));
  expect_finish(run, "S", 65);
  expect_finish(run, "H", 135);
}

TEST_CASE("time is exact: one cycle at 3 GHz counts, and totals are sums of their parts") {
  auto run = run_text(R"({"machine": {"cores": 1, "costs": "ideal", "frequency": "3GHz"},
    "processes": [{"name": "p", "script": [
      {"op": "sleep", "time": 1099511627776},
      {"op": "begin", "name": "one"}, {"op": "compute", "time": 1}, {"op": "end", "name": "one"},
      {"op": "repeat", "count": 100000, "body": [{"op": "compute", "time": 1}]},
      {"op": "begin", "name": "ns"}, {"op": "compute", "time": "1ns"}, {"op": "end", "name": "ns"}]}]})");
  const auto& records = run.kernel->records();
  REQUIRE(records.size() == 2);
  CHECK(records[0].end - records[0].start == 1);
  CHECK(records[1].end - records[1].start == 3); // 1 ns at 3 GHz
  CHECK(run.kernel->makespan() == 1099511627776ull + 1 + 100000 + 3);
  CHECK(run.account("p").charges.size() == 1); // compute/user only: the ideal preset charges nothing else
}

TEST_CASE("fixed: a run whose clock passes 2^53 cycles hangs") {
  // Was a bug: SimGrid's clock is a double, so past 2^53 cycles a deadline rounds to a time already
  // reached and the core waits for it forever (a compute of 2^53 + 1 cycles hung). Single times are now
  // at most 2^50 cycles (test_loader.cpp), and the kernel stops a run that would pass the limit: in
  // sim/kernel/kernel.cpp Kernel::sync (kernel cycles), Kernel::wait (a compute's end, a timer).
  auto expect_stop = [](const std::string& text) {
    std::string out = run_in_child(text);
    auto newline = out.find('\n');
    REQUIRE(newline != std::string::npos);
    auto limit = std::stoull(out.substr(0, newline));
    // The limit is 2^53 less where the child's SimGrid clock started (the tests before it).
    CHECK(limit <= (Cycles{1} << 53));
    CHECK(limit > (Cycles{1} << 53) - (Cycles{1} << 45));
    CHECK(out.substr(newline + 1) ==
          "simulated time would pass " + std::to_string(limit) + " cycles (\"" + format_duration(limit, 1e9) +
              "\" at 1GHz), the most the simulator's clock counts exactly; the run "
              "stops there\n");
  };
  const std::string most = "1125899906842624"; // 2^50, the longest time
  // An idle core waiting for a timer past the limit.
  expect_stop(R"({"machine": {"costs": "ideal"}, "processes": [{"name": "p", "script": [
    {"op": "repeat", "count": 9, "body": [{"op": "sleep", "time": )" +
              most + "}]}]}]}");
  // A compute ending past it.
  expect_stop(R"({"machine": {"costs": "ideal", "scheduler": "fifo"}, "processes": [{"name": "p", "script": [
    {"op": "repeat", "count": 9, "body": [{"op": "compute", "time": )" +
              most + "}]}]}]}");
  // Kernel cycles (2^32 per system call) carrying the clock past it.
  expect_stop(
      R"({"machine": {"costs": {"preset": "ideal", "trap_enter": 4294967296}, "scheduler": "fifo"},
    "processes": [{"name": "p", "script": [{"op": "repeat", "count": 7, "body": [{"op": "compute", "time": )" +
      most + R"(}]}, {"op": "while", "cond": "ok", "body": [{"op": "yield"}]}]}]})");
  // A timeout past the limit is fine while something else wakes the thread first.
  std::string out = run_in_child(R"({"machine": {"cores": 2, "costs": "ideal", "scheduler": "fifo"},
    "channels": [{"name": "c", "mechanism": "pipe"}], "processes": [
    {"name": "a", "affinity": [0], "script": [
      {"op": "repeat", "count": 7, "body": [{"op": "compute", "time": )" +
                                 most + R"(}]},
      {"op": "recv", "channel": "c", "bytes": 8, "timeout": )" +
                                 most + R"(}, {"op": "print", "text": "{result} {errno}"}]},
    {"name": "b", "affinity": [1], "script": [
      {"op": "repeat", "count": 7, "body": [{"op": "sleep", "time": )" +
                                 most + R"(}]},
      {"op": "sleep", "time": 562949953421312}, {"op": "send", "channel": "c", "bytes": 8}]}]})");
  CHECK(out.substr(out.find('\n') + 1) == "\n8 \n");
}

TEST_CASE("fixed: a cost times a count can overflow the charge") {
  // Was a bug: nothing bounded a primitive, so tlb_refill_per_page * working_set_pages (dispatch) and
  // map_page * working_set_pages (spawn) could wrap, and a copy's cycles come from a double. Fix in
  // sim/machine/costs.hpp: primitives at most 2^32 cycles and working sets at most 10^6 pages, so the
  // largest product, 4294967296000000 cycles, is exact and inside the clock's range; a copy longer
  // than the clock's range saturates in CostModel::copy_cycles and the kernel stops the run.
  std::string out = run_in_child(
      R"({"machine": {"costs": {"preset": "ideal", "tagged_tlb": false, "tlb_refill_per_page": 4294967296}},
    "processes": [{"name": "p", "working_set_pages": 1000000, "script": []}]})",
      [](const ipcsim::test::Run& run) {
        return std::to_string(run.charged("p", "dispatch", Primitive::tlb_refill_per_page)) + " " +
               std::to_string(run.kernel->makespan());
      });
  CHECK(out.substr(out.find('\n') + 1) == "\n4294967296000000 4294967296000000\n");
  out = run_in_child(R"({"machine": {"costs": {"preset": "ideal", "map_page": 4294967296}},
    "processes": [{"name": "p", "script": [{"op": "spawn", "process": "c"}]},
                  {"name": "c", "spawned": true, "working_set_pages": 1000000, "script": []}]})",
                     [](const ipcsim::test::Run& run) {
                       return std::to_string(run.charged("p", "spawn", Primitive::map_page)) + " " +
                              std::to_string(run.kernel->makespan());
                     });
  CHECK(out.substr(out.find('\n') + 1) == "\n4294967296000000 4294967296000000\n");

  out = run_in_child(R"({"machine": {"costs": {"preset": "teaching", "copy_bytes_per_cycle": 1e-6,
      "copy_bytes_per_cycle_l2": 1e-6, "copy_bytes_per_cycle_l3": 1e-6, "copy_bytes_per_cycle_uncached": 1e-6,
      "copy_bytes_per_cycle_remote": 1e-6}},
    "channels": [{"name": "c", "mechanism": "mailbox"}],
    "processes": [{"name": "p", "script": [{"op": "send", "channel": "c", "bytes": "1TiB"},
                                           {"op": "print", "text": "sent {result}"}]}]})");
  CHECK(out.find("simulated time would pass ") != std::string::npos);
  CHECK(out.find("sent") == std::string::npos);
}

TEST_CASE("attribution: the breakdown adds up to the busy time of every core") {
  auto run = run_text(R"({"machine": {"cores": 2, "costs": "teaching"},
    "processes": [
      {"name": "a", "count": 3, "script": [{"op": "repeat", "count": 5, "body": [
        {"op": "compute", "time": 700}, {"op": "yield"}, {"op": "sleep", "time": 300}]}]},
      {"name": "b", "threads": [{"name": "t", "count": 2, "script": [{"op": "compute", "time": "3us"}, {"op": "join", "process": "a"}]}]}]})");
  // Leaving the idle state is charged (to the dispatch it delays) but is idle time on the core.
  Cycles charged = 0, idle_exit = 0, busy = 0;
  for (const auto& t : run.kernel->threads())
    for (const auto& c : run.kernel->account(t).charges) {
      charged += c.cycles;
      if (c.primitive == static_cast<std::uint8_t>(Primitive::idle_exit)) idle_exit += c.cycles;
    }
  for (const auto& core : run.kernel->cores()) busy += core->busy_cycles;
  std::cout << "attribution: charged " << charged << " cycles (idle_exit " << idle_exit << "), cores busy "
            << busy << " cycles\n";
  CHECK(idle_exit > 0);
  CHECK(charged - idle_exit == busy);
  // User work is exactly what the scripts asked for: 3*5*700 + 2*3000.
  Cycles user = 0;
  for (const auto& t : run.kernel->threads())
    for (const auto& c : run.kernel->account(t).charges)
      if (c.primitive == static_cast<std::uint8_t>(Primitive::user)) user += c.cycles;
  CHECK(user == 3 * 5 * 700 + 2 * 3000);
}

TEST_CASE("a yield with nothing else runnable costs a system call and no switch") {
  auto run = run_text(R"({"machine": {"costs": "teaching"},
    "processes": [{"name": "p", "script": [{"op": "yield"}]}]})");
  // dispatch: sched_pick 100 + restore 200 + address space 500 + 16 pages * 20;
  // yield: trap_enter 100 + dispatch 50 + sched_pick 100 + trap_exit 100; exit: 100 + 50.
  CHECK(run.kernel->makespan() == 1120 + 350 + 150);
  CHECK(run.charged("p", "yield", Primitive::context_save) == 0);
}

TEST_CASE("switching between threads of one process costs no address-space switch") {
  auto two_processes = run_text(R"({"machine": {"costs": "teaching"},
    "processes": [{"name": "p", "count": 2, "script": [{"op": "yield"}]}]})");
  auto two_threads = run_text(R"({"machine": {"costs": "teaching"},
    "processes": [{"name": "p", "threads": [{"name": "t", "count": 2, "script": [{"op": "yield"}]}]}]})");
  auto tagged = run_text(R"({"machine": {"costs": {"preset": "teaching", "tagged_tlb": true}},
    "processes": [{"name": "p", "count": 2, "script": [{"op": "yield"}]}]})");
  // Two processes: 4 dispatches (p0, p1, p0, p1), each an address-space switch + 16-page refill.
  // Two threads: only the first dispatch loads the space. Tagged TLB: four switches, and a refill
  // only on each space's first run on the core (a cold TLB): p0 and p1 once each.
  Cycles as = 500, refill = 16 * 20;
  CHECK(two_processes.kernel->makespan() - two_threads.kernel->makespan() == 3 * (as + refill));
  CHECK(two_processes.kernel->makespan() - tagged.kernel->makespan() == 2 * refill);
  CHECK(tagged.charged("p[0]", "dispatch", Primitive::tlb_refill_per_page) == refill);
  CHECK(tagged.charged("p[1]", "dispatch", Primitive::tlb_refill_per_page) == refill);
}

TEST_CASE("a tagged TLB is warm per core: a space's first run on each core refills it") {
  // a and b take turns on core 0, c runs alone on core 1: each space is cold on its core once, and
  // the turns on core 0 refill nothing more.
  auto run = run_text(R"({"machine": {"cores": 2, "costs": {"preset": "teaching", "tagged_tlb": true}},
    "processes": [{"name": "a", "affinity": [0], "script": [{"op": "yield"}, {"op": "yield"}]},
                  {"name": "b", "affinity": [0], "script": [{"op": "yield"}, {"op": "yield"}]},
                  {"name": "c", "affinity": [1], "script": [{"op": "yield"}]}]})");
  const Cycles refill = 16 * 20;
  CHECK(run.charged("a", "dispatch", Primitive::tlb_refill_per_page) == refill);
  CHECK(run.charged("b", "dispatch", Primitive::tlb_refill_per_page) == refill);
  CHECK(run.charged("c", "dispatch", Primitive::tlb_refill_per_page) == refill);
  // a and b alternate on core 0: every dispatch but the first of each switches spaces.
  CHECK(run.charged("a", "dispatch", Primitive::address_space_switch) == 3 * 500);
}

TEST_CASE("affinity keeps threads on their cores") {
  auto run = run_text(R"({"machine": {"cores": 2, "costs": "ideal", "scheduler": "fifo"},
    "processes": [{"name": "p", "count": 2, "affinity": [1], "script": [{"op": "compute", "time": 100}]}]})");
  CHECK(run.kernel->cores()[0]->busy_cycles == 0);
  CHECK(run.kernel->cores()[1]->busy_cycles == 200);
  CHECK(run.finished("p[1]") == 200);
}

TEST_CASE("a woken thread goes to an idle core, paying an IPI and the idle exit") {
  // w waits on core 0 for the exit of x, which runs on core 1: x's exit wakes w across cores.
  auto run = run_text(R"({"machine": {"cores": 2, "costs": "teaching", "scheduler": "fifo"},
    "processes": [
      {"name": "w", "affinity": [0], "script": [{"op": "join", "process": "x"}]},
      {"name": "x", "affinity": [1], "script": [{"op": "compute", "time": 5000}]}]})");
  CHECK(run.charged("x", "exit", Primitive::ipi) == 1000);
  CHECK(run.charged("x", "exit", Primitive::wakeup) == 100);
  CHECK(run.charged("w", "dispatch", Primitive::idle_exit) == 1000);
  CHECK(run.account("w").blocked_cycles > 5000);
}

TEST_CASE("a wakeup on another core preempts a lower priority at that moment") {
  // Core 1: H (prio 5) joins A and blocks, L (prio 1) computes. A exits on core 0 at 300, waking H,
  // which takes core 1 from L at once: H 300-400, L resumes and ends at 10100.
  auto run = run_text(R"({"machine": {"cores": 2, "costs": "ideal", "scheduler": "priority"},
    "processes": [
      {"name": "A", "affinity": [0], "script": [{"op": "compute", "time": 300}]},
      {"name": "H", "priority": 5, "affinity": [1], "script": [{"op": "join", "process": "A"}, {"op": "compute", "time": 100}]},
      {"name": "L", "priority": 1, "affinity": [1], "script": [{"op": "compute", "time": 10000}]}]})");
  expect_finish(run, "A", 300);
  expect_finish(run, "H", 400);
  expect_finish(run, "L", 10100);
}

TEST_CASE("a deadlock ends the run with a report of who waits for what") {
  auto run = run_text(R"({"machine": {"costs": "teaching"},
    "processes": [
      {"name": "a", "script": [{"op": "compute", "time": 10}, {"op": "join", "process": "b"}]},
      {"name": "b", "script": [{"op": "join", "process": "a"}]}]})");
  const DeadlockReport* report = run.kernel->deadlock();
  REQUIRE(report != nullptr);
  REQUIRE(report->waiters.size() == 2);
  CHECK(report->waiters[0].thread == "a");
  CHECK(report->waiters[0].waits_on == "exit of b");
  CHECK(report->waiters[1].thread == "b");
  CHECK(report->waiters[1].waits_on == "exit of a");
}

TEST_CASE("sleep blocks for exactly its time, plus the system call around it") {
  auto run = run_text(R"({"machine": {"costs": "ideal"},
    "processes": [{"name": "p", "script": [{"op": "begin", "name": "nap"}, {"op": "sleep", "time": "2us"}, {"op": "end", "name": "nap"}]}]})");
  CHECK(run.kernel->records().at(0).end - run.kernel->records().at(0).start == 2000);
  CHECK(run.account("p").blocked_cycles == 2000);
}

TEST_CASE("the summary: per core, per thread or per process, and a breakdown adding up to the busy time") {
  auto small = run_text(R"({"machine": {"cores": 2, "costs": "teaching"},
    "processes": [{"name": "a", "count": 3, "script": [{"op": "compute", "time": 500}, {"op": "yield"}]}]})");
  Summary s = summarize(*small.scenario, *small.kernel);
  CHECK(!s.threads_grouped);
  CHECK(s.per_thread.size() == 3);
  REQUIRE(s.per_process.size() == 1);
  CHECK(s.per_process[0].threads == 3);
  CHECK(s.per_process[0].all_finished);
  REQUIRE(s.per_core.size() == 2);
  Cycles busy = 0;
  for (const auto& core : s.per_core) {
    CHECK(core.busy + core.idle == s.end);
    busy += core.busy;
  }
  CHECK(s.breakdown_cycles == busy);
  auto many = run_text(R"({"machine": {"costs": "ideal"},
    "processes": [{"name": "w", "count": 33, "script": [{"op": "compute", "time": 10}]}]})");
  Summary grouped = summarize(*many.scenario, *many.kernel);
  CHECK(grouped.threads_grouped);
  CHECK(grouped.per_thread.empty());
  CHECK(grouped.per_process.at(0).threads == 33);
  CHECK(grouped.per_process.at(0).last_finish == grouped.end);
}

TEST_CASE("same scenario, same seed: identical results") {
  const char* text = R"({"machine": {"cores": 2, "costs": "teaching"},
    "processes": [{"name": "a", "count": 5, "script": [{"op": "repeat", "count": 20, "body": [
      {"op": "begin", "name": "x"}, {"op": "compute", "time": 333}, {"op": "yield"}, {"op": "sleep", "time": 77}, {"op": "end", "name": "x"}]}]}]})";
  auto first = run_text(text);
  auto second = run_text(text);
  CHECK(summary_json(*first.scenario, *first.kernel).dump() ==
        summary_json(*second.scenario, *second.kernel).dump());
}

TEST_CASE("counters agree with the charges: a switch per context restored, idle exits are idle time") {
  // A ping-pong across two cores: each side runs alone on its core, sleeping between messages, so
  // every message costs its receiver a save, an idle exit and a restore of the same thread. (a
  // computes before each send, so b is asleep when the message comes: with no gap the two cores
  // could run in lock step, each finding the other's message already there.)
  auto run = run_text(R"({"machine": {"cores": 2, "costs": "teaching"},
    "channels": [{"name": "ping", "mechanism": "pipe"}, {"name": "pong", "mechanism": "pipe"}],
    "processes": [
      {"name": "a", "affinity": [0], "script": [{"op": "repeat", "count": 20, "body": [
        {"op": "compute", "time": 1000},
        {"op": "send", "channel": "ping", "bytes": 8}, {"op": "recv", "channel": "pong", "bytes": 8}]}]},
      {"name": "b", "affinity": [1], "script": [{"op": "repeat", "count": 20, "body": [
        {"op": "recv", "channel": "ping", "bytes": 8}, {"op": "send", "channel": "pong", "bytes": 8}]}]}]})");
  Cycles restore = 0, idle_exit = 0;
  for (const auto& t : run.kernel->threads())
    for (const auto& c : run.kernel->account(t).charges) {
      if (c.primitive == static_cast<std::uint8_t>(Primitive::context_restore)) restore += c.cycles;
      if (c.primitive == static_cast<std::uint8_t>(Primitive::idle_exit)) idle_exit += c.cycles;
    }
  std::uint64_t switches = 0;
  Cycles busy = 0, idle_exits = 0;
  for (const auto& core : run.kernel->cores()) {
    switches += core->context_switches;
    busy += core->busy_cycles;
    idle_exits += core->idle_exit_cycles;
  }
  std::cout << "cross-core ping-pong: " << switches << " switches, " << restore / 200 << " restores\n";
  CHECK(switches == restore / 200); // teaching: context_restore 200
  CHECK(switches >= 40);            // each of the 20 messages each way wakes its receiver
  CHECK(idle_exits == idle_exit);
  CHECK(busy + idle_exits <= 2 * run.kernel->makespan());
}

TEST_CASE("cores acting at the same cycle act in core order: core 0 first") {
  // Both senders reach the queue at cycle 100 on the ideal preset, one per core; whatever the order
  // they are declared in, core 0's message is queued first and received first.
  const std::string sender = R"({"op": "compute", "time": 100},
    {"op": "send", "channel": "q", "bytes": 1, "text": "from core CORE"})";
  auto on_core = [&](const std::string& name, int core) {
    std::string script = sender;
    script.replace(script.find("CORE"), 4, std::to_string(core));
    return R"({"name": ")" + name + R"(", "affinity": [)" + std::to_string(core) + R"(], "script": [)" +
           script + "]}";
  };
  auto run = run_text(R"({"machine": {"cores": 2, "costs": "ideal", "scheduler": "fifo"},
    "channels": [{"name": "q", "mechanism": "sysv_msg"}],
    "processes": [)" + on_core("one", 1) +
                      ", " + on_core("zero", 0) + R"(,
      {"name": "reader", "arrival": 1000, "script": [
        {"op": "recv", "channel": "q", "bytes": 8}, {"op": "print", "text": "{msg.text}"},
        {"op": "recv", "channel": "q", "bytes": 8}, {"op": "print", "text": "{msg.text}"}]}]})");
  CHECK(console_texts(run) == std::vector<std::string>{"from core 0", "from core 1"});
  CHECK(run.finished("zero") == run.finished("one")); // a true tie
}

TEST_CASE("fixed: format_duration showed 333 cycles at 1 GHz as \"332.999ns\" (floating-point noise)") {
  CHECK(format_duration(333, 1e9) == "333ns");
  CHECK(format_duration(1, 3e9) == "0.333ns"); // a third of a nanosecond, rounded down
  CHECK(format_duration(2, 3e9) == "0.666ns"); // 0.6666...: down, never up
  CHECK(format_duration(1500, 1e9) == "1.5us");
  CHECK(format_duration(4000000, 1e9) == "4ms");
  CHECK(format_duration(999999, 1e9) == "999.999us"); // truly below 1 ms: stays below
}

TEST_CASE("machine: device interrupts arrive per core as a seeded Poisson stream, off by default") {
  // One thread computes 1,000,000 cycles on the teaching preset (timer_interrupt = 500 cycles);
  // interrupts come every 10,000 cycles on average, each with a 1,500-cycle handler.
  auto text = [](const std::string& irq) {
    return R"({"machine": {"costs": "teaching")" + irq +
           R"(}, "processes": [{"name": "p", "script": [{"op": "compute", "time": 1000000}]}]})";
  };
  auto quiet = run_text(text(""));
  CHECK(quiet.charged("p", "irq", Primitive::timer_interrupt) == 0);

  const std::string irq = R"(, "irq_every": 10000, "irq_handler": 1500)";
  ipcsim::LoadOptions checked;
  checked.debug_invariants = true; // every invariant checked at each dispatch, switch and wakeup
  auto noisy = run_text(text(irq), checked);
  CHECK(noisy.kernel->runtime_error().empty());
  Cycles handlers = noisy.charged("p", "irq", Primitive::irq_handler);
  REQUIRE(handlers % 1500 == 0);
  Cycles taken = handlers / 1500;
  // Each interrupt costs exactly timer_interrupt + the handler, and lengthens the run by that much.
  CHECK(noisy.charged("p", "irq", Primitive::timer_interrupt) == taken * 500);
  CHECK(noisy.kernel->makespan() == quiet.kernel->makespan() + taken * 2000);
  // The stream covers the whole run, interrupts included: about T / 10,000 arrivals with
  // T = 1,000,000 / (1 - 2,000 / 10,000) = 1,250,000, so 125 expected; a Poisson count's standard
  // deviation is sqrt(125) = 11.2, and this bound is 4 of them.
  MESSAGE("interrupts taken: " << taken << " (expected about 125)");
  CHECK(taken >= 80);
  CHECK(taken <= 170);

  // Same seed, same arrivals; another seed, others.
  CHECK(run_text(text(irq)).kernel->makespan() == noisy.kernel->makespan());
  ipcsim::LoadOptions seed2;
  seed2.seed = 2;
  CHECK(run_text(text(irq), seed2).kernel->makespan() != noisy.kernel->makespan());
}

TEST_CASE("machine: an idle core lets its device interrupts pass unseen") {
  // A thread sleeps 1 s with an interrupt every 1,000 cycles on average: nobody runs to pay for the
  // million arrivals meanwhile (the stream goes on from the wakeup).
  auto text = [](const std::string& irq) {
    return R"({"machine": {"costs": "teaching")" + irq +
           R"(}, "processes": [{"name": "p", "script": [{"op": "sleep", "time": "1s"}]}]})";
  };
  auto quiet = run_text(text(""));
  auto noisy = run_text(text(R"(, "irq_every": 1000, "irq_handler": 0)"));
  Cycles taken = noisy.charged("p", "irq", Primitive::timer_interrupt) / 500;
  MESSAGE("interrupts taken while p runs: " << taken);
  CHECK(noisy.kernel->makespan() == quiet.kernel->makespan() + taken * 500);
  CHECK(taken < 100); // those while p runs (a few thousand cycles of calls), not the second asleep
}

TEST_CASE("machine: interrupts that come faster than they are handled are refused at load") {
  auto text = [](const std::string& irq) {
    return R"({"machine": {"costs": "teaching")" + irq +
           R"(}, "processes": [{"name": "p", "script": [{"op": "compute", "time": 10}]}]})";
  };
  CHECK(ipcsim::test::load_error(text(R"(, "irq_every": 600, "irq_handler": 100)")) ==
        "test.json: at machine.irq_every: 600 cycles is not longer than one interrupt takes (timer_interrupt "
        "500 "
        "+ irq_handler 100 cycles): the cores would do nothing but take interrupts; give a longer mean time");
  CHECK(ipcsim::test::load_error(text(R"(, "irq_every": 700, "irq_handler": 100, "jitter": 0.2)")) ==
        "test.json: at machine.irq_every: 700 cycles is not longer than one interrupt takes (timer_interrupt "
        "500 "
        "+ irq_handler 100 cycles, lengthened up to 20 % by jitter): the cores would do nothing but take "
        "interrupts; give a longer mean time");
  CHECK(ipcsim::test::load_error(text(R"(, "irq_every": 601, "irq_handler": 100)")) == "<no error>");
}
