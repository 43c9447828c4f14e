// The futex and the mutex and condition variable built on it: FUTEX_WAIT's value check, timeouts and
// errors, FUTEX_WAKE's count, the uncontended lock that makes no system call, the contended one that
// makes exactly the calls glibc's lowlevellock makes, and a condition variable, with cycle counts
// worked out from the teaching preset (1 GHz: a cycle is a nanosecond; a system call's entry is
// trap_enter 100 + syscall_dispatch 50, its exit trap_exit 100).
#include "harness.hpp"
#include "ipc.hpp"

#include <doctest/doctest.h>

using namespace ipcsim;
using ipcsim::test::run_text;

namespace {

std::string machine(const std::string& processes, int cores = 1) {
  return R"({"machine": {"cores": )" + std::to_string(cores) +
         R"(, "costs": "teaching", "scheduler": {"policy": "rr", "quantum": "4ms"}}, "processes": [)" +
         processes + "]}";
}

std::string proc(const std::string& name, const std::string& script, const std::string& extra = "") {
  return R"({"name": ")" + name + R"(", "working_set_pages": 0, )" + extra + R"("script": [)" + script + "]}";
}

std::vector<std::string> printed(const ipcsim::test::Run& run, const std::string& thread) {
  std::vector<std::string> out;
  for (const auto& line : run.kernel->console())
    if (run.kernel->threads()[line.thread].display_name() == thread) out.push_back(line.text);
  return out;
}

const std::string kAttach =
    R"({"op": "shmget", "key": 88, "bytes": 4096, "flags": ["IPC_CREAT"], "into": "id"},
       {"op": "shmat", "shmid": "id", "as": "m"})";

// System calls a thread made under an activity: each charges trap_enter (100) once.
Cycles calls(const ipcsim::test::Run& run, const std::string& thread, const std::string& activity) {
  return run.charged(thread, activity, Primitive::trap_enter) / 100;
}

} // namespace

TEST_CASE(
    "futex: FUTEX_WAIT fails with EAGAIN when the word changed, ETIMEDOUT on a zero or elapsed timeout, "
    "EINVAL when misaligned, EFAULT when unmapped") {
  auto run = run_text(machine(proc("p", R"(
    {"op": "mmap", "bytes": 4096, "flags": ["MAP_SHARED", "MAP_ANONYMOUS"], "as": "m"},
    {"op": "futex_wait", "map": "m", "offset": 0, "value": 1},
    {"op": "print", "text": "changed: {result} {errno}"},
    {"op": "futex_wait", "map": "m", "offset": 0, "value": 0, "timeout": 0},
    {"op": "print", "text": "zero timeout: {errno}"},
    {"op": "futex_wait", "map": "m", "offset": 2, "value": 0},
    {"op": "print", "text": "misaligned: {errno}"},
    {"op": "futex_wait", "map": "nope", "offset": 0, "value": 0},
    {"op": "print", "text": "unmapped: {errno}"},
    {"op": "begin", "name": "timed"},
    {"op": "futex_wait", "map": "m", "offset": 0, "value": 0, "timeout": "5us"},
    {"op": "end", "name": "timed"},
    {"op": "print", "text": "timed: {errno}"},
    {"op": "futex_wake", "map": "m", "offset": 0, "count": 5},
    {"op": "print", "text": "nobody to wake: {result}"})")));
  CHECK(printed(run, "p") == std::vector<std::string>{"changed: -1 EAGAIN", "zero timeout: ETIMEDOUT",
                                                      "misaligned: EINVAL", "unmapped: EFAULT",
                                                      "timed: ETIMEDOUT", "nobody to wake: 0"});
  // The first FUTEX_WAIT reads the word: its first touch faults (1000) and zeroes the page (500).
  CHECK(run.charged("p", "futex_wait", Primitive::page_fault) == 1000);
  CHECK(run.charged("p", "futex_wait", Primitive::page_zero) == 500);
  // The timed wait: entry 150 (its timeout counts from there), the read 1, then asleep
  // (context_save 200, the core idles); the timer at 150 + 5,000 (timer_interrupt 500 + wakeup 100),
  // the dispatch from idle (sched_pick 100 + idle_exit 1000 + context_restore 200), the exit 100:
  // 7,150.
  CHECK(run.kernel->records()[0].end - run.kernel->records()[0].start == 7150);
}

TEST_CASE(
    "futex: FUTEX_WAKE wakes at most `count` waiters in the order they came; a count of 0 wakes one, as in "
    "Linux") {
  const std::string waiter = kAttach + R"(,
    {"op": "futex_wait", "map": "m", "offset": 0, "value": 0},
    {"op": "print", "text": "woken: {result}"})";
  auto run = run_text(machine(proc("w1", waiter) + "," + proc("w2", waiter) + "," + proc("w3", waiter) + "," +
                              proc("waker", kAttach + R"(,
    {"op": "futex_wake", "map": "m", "offset": 0, "count": 2},
    {"op": "print", "text": "first wake: {result}"},
    {"op": "futex_wake", "map": "m", "offset": 0, "count": 0},
    {"op": "print", "text": "count 0: {result}"})",
                                   R"("arrival": "100us", )")));
  CHECK(printed(run, "waker") == std::vector<std::string>{"first wake: 2", "count 0: 1"});
  for (const char* w : {"w1", "w2", "w3"}) CHECK(printed(run, w) == std::vector<std::string>{"woken: 0"});
  // w1 and w2 went first, then w3.
  CHECK(run.finished("w1") < run.finished("w3"));
  CHECK(run.finished("w2") < run.finished("w3"));
}

TEST_CASE("futex: an uncontended mutex_lock and mutex_unlock stay in user space") {
  auto run = run_text(machine(proc("p", kAttach + R"(,
    {"op": "begin", "name": "lock"},
    {"op": "mutex_lock", "map": "m", "offset": 0},
    {"op": "end", "name": "lock"},
    {"op": "begin", "name": "unlock"},
    {"op": "mutex_unlock", "map": "m", "offset": 0},
    {"op": "end", "name": "unlock"},
    {"op": "mutex_lock", "map": "m", "offset": 0},
    {"op": "mem_load", "map": "m", "offset": 0, "into": "word"},
    {"op": "print", "text": "locked word {word}, {result}"})")));
  auto& r = run.kernel->records();
  // The CAS: first touch (fault 1000 + zeroing 500) + 8 bytes 1 + atomic_rmw 20; the unlock's xchg 21.
  CHECK(r[0].end - r[0].start == 1521);
  CHECK(r[1].end - r[1].start == 21);
  CHECK(calls(run, "p", "mutex_lock") == 0);
  CHECK(calls(run, "p", "mutex_unlock") == 0);
  CHECK(printed(run, "p") == std::vector<std::string>{"locked word 1, 0"});
}

TEST_CASE(
    "futex: a contended mutex: the waiter sets the word to 2 and sleeps in one FUTEX_WAIT; the holder's "
    "unlock makes one FUTEX_WAKE; the waiter's own unlock then makes another, with nobody left to wake") {
  // One core, 4 ms slices: a holds the lock across its slice's end; b runs, finds it taken, sleeps.
  auto run = run_text(machine(proc("a", kAttach + R"(,
    {"op": "mutex_lock", "map": "m", "offset": 0},
    {"op": "compute", "time": "5ms"},
    {"op": "mutex_unlock", "map": "m", "offset": 0},
    {"op": "print", "text": "a unlocked"})") +
                              "," + proc("b", kAttach + R"(,
    {"op": "mutex_lock", "map": "m", "offset": 0},
    {"op": "mem_load", "map": "m", "offset": 0, "into": "word"},
    {"op": "print", "text": "b has it: word {word}"},
    {"op": "mutex_unlock", "map": "m", "offset": 0},
    {"op": "futex_wake", "map": "m", "offset": 0},
    {"op": "print", "text": "b unlocked"})")));
  CHECK(printed(run, "a") == std::vector<std::string>{"a unlocked"});
  // glibc's lock after waiting leaves the word at 2: it cannot know whether others still wait.
  CHECK(printed(run, "b") == std::vector<std::string>{"b has it: word 2", "b unlocked"});
  CHECK(calls(run, "a", "mutex_lock") == 0);
  CHECK(calls(run, "b", "mutex_lock") == 1);
  CHECK(calls(run, "a", "mutex_unlock") == 1);
  CHECK(calls(run, "b", "mutex_unlock") == 1);
  // b slept from its FUTEX_WAIT until a's wake.
  CHECK(run.account("b").blocked_cycles > 0);
}

TEST_CASE(
    "futex: a condition variable: cond_wait releases the mutex and sleeps until cond_signal; a signal with "
    "no waiter makes no system call; a timed wait returns ETIMEDOUT holding the mutex") {
  auto run = run_text(machine(proc("consumer", kAttach + R"(,
    {"op": "mutex_lock", "map": "m", "offset": 0},
    {"op": "mem_load", "map": "m", "offset": 64, "into": "ready"},
    {"op": "while", "cond": "ready == 0", "body": [
      {"op": "cond_wait", "map": "m", "offset": 16, "mutex": 0},
      {"op": "mem_load", "map": "m", "offset": 64, "into": "ready"}]},
    {"op": "print", "text": "ready {ready}"},
    {"op": "cond_wait", "map": "m", "offset": 16, "mutex": 0, "timeout": "10us"},
    {"op": "mem_load", "map": "m", "offset": 0, "into": "lock"},
    {"op": "print", "text": "timed wait: {errno}, lock word {lock}"},
    {"op": "mutex_unlock", "map": "m", "offset": 0})") +
                              "," + proc("producer", kAttach + R"(,
    {"op": "sleep", "time": "50us"},
    {"op": "mutex_lock", "map": "m", "offset": 0},
    {"op": "mem_store", "map": "m", "offset": 64, "value": 1},
    {"op": "cond_signal", "map": "m", "offset": 16},
    {"op": "mutex_unlock", "map": "m", "offset": 0},
    {"op": "sleep", "time": "100us"},
    {"op": "cond_broadcast", "map": "m", "offset": 16},
    {"op": "print", "text": "done"})")));
  CHECK(printed(run, "consumer") ==
        std::vector<std::string>{"ready 1", "timed wait: ETIMEDOUT, lock word 2"});
  // The signal found a waiter: one FUTEX_WAKE; the broadcast at 150 us found none: no call.
  CHECK(calls(run, "producer", "cond_signal") == 1);
  CHECK(calls(run, "producer", "cond_broadcast") == 0);
  // The consumer: two FUTEX_WAITs (woken, timed out), and one FUTEX_WAKE: retaking the mutex after
  // the first wait left its word at 2 (lll_cond_lock), so the second cond_wait's unlock wakes.
  CHECK(calls(run, "consumer", "cond_wait") == 3);
}

TEST_CASE("futex: a handled signal ends FUTEX_WAIT with EINTR, or restarts it under SA_RESTART; a mutex_lock "
          "asleep "
          "in the kernel runs the handler and goes on waiting for the lock") {
  auto scenario = [](const std::string& restart) {
    return machine(proc("w", kAttach + R"(,
      {"op": "sigaction", "signal": "SIGUSR1", "restart": )" +
                                 restart + R"(, "handler": [
        {"op": "print", "text": "handler"}]},
      {"op": "futex_wait", "map": "m", "offset": 0, "value": 0},
      {"op": "print", "text": "futex_wait: {result} {errno}"})") +
                   "," + proc("k", kAttach + R"(,
      {"op": "sleep", "time": "50us"},
      {"op": "kill", "process": "w", "signal": "SIGUSR1"},
      {"op": "sleep", "time": "50us"},
      {"op": "futex_wake", "map": "m", "offset": 0},
      {"op": "print", "text": "woke {result}"})"));
  };
  auto plain = run_text(scenario("false"));
  CHECK(printed(plain, "w") == std::vector<std::string>{"handler", "futex_wait: -1 EINTR"});
  CHECK(printed(plain, "k") == std::vector<std::string>{"woke 0"});
  auto restarted = run_text(scenario("true"));
  CHECK(printed(restarted, "w") == std::vector<std::string>{"handler", "futex_wait: 0 "});
  CHECK(printed(restarted, "k") == std::vector<std::string>{"woke 1"});

  auto lock = run_text(machine(proc("a", kAttach + R"(,
      {"op": "mutex_lock", "map": "m", "offset": 0},
      {"op": "sleep", "time": "100us"},
      {"op": "mutex_unlock", "map": "m", "offset": 0})") +
                               "," + proc("b", kAttach + R"(,
      {"op": "sigaction", "signal": "SIGUSR1", "handler": [{"op": "print", "text": "handler"}]},
      {"op": "sleep", "time": "10us"},
      {"op": "mutex_lock", "map": "m", "offset": 0},
      {"op": "print", "text": "b has the lock"})") +
                               "," + proc("k", R"({"op": "sleep", "time": "50us"},
      {"op": "kill", "process": "b", "signal": "SIGUSR1"})")));
  CHECK(printed(lock, "b") == std::vector<std::string>{"handler", "b has the lock"});
  // b slept in FUTEX_WAIT twice: before the signal and after its handler.
  CHECK(calls(lock, "b", "mutex_lock") == 2);
  // ... and took it only once a had slept its 100 us and unlocked.
  for (const auto& line : lock.kernel->console())
    if (line.text == "b has the lock") CHECK(line.at > 100'000);
}

TEST_CASE("futex: FUTEX_REQUEUE wakes `count` and moves `requeue` more to another word, asleep; "
          "FUTEX_CMP_REQUEUE fails with EAGAIN when the word changed") {
  const std::string waiter = kAttach + R"(,
    {"op": "futex_wait", "map": "m", "offset": 0, "value": 0},
    {"op": "print", "text": "woken: {result}"})";
  auto run = run_text(machine(proc("w1", waiter) + "," + proc("w2", waiter) + "," + proc("w3", waiter) + "," +
                              proc("waker", kAttach + R"(,
    {"op": "begin", "name": "cmp"},
    {"op": "futex_cmp_requeue", "map": "m", "offset": 0, "offset2": 8, "value": 1},
    {"op": "end", "name": "cmp"},
    {"op": "print", "text": "changed: {result} {errno}"},
    {"op": "futex_requeue", "map": "m", "offset": 0, "offset2": 8, "count": -1},
    {"op": "print", "text": "negative: {errno}"},
    {"op": "futex_requeue", "map": "m", "offset": 0, "map2": "nope", "offset2": 8},
    {"op": "print", "text": "unmapped: {errno}"},
    {"op": "futex_requeue", "map": "m", "offset": 0, "offset2": 6},
    {"op": "print", "text": "misaligned: {errno}"},
    {"op": "begin", "name": "requeue"},
    {"op": "futex_cmp_requeue", "map": "m", "offset": 0, "offset2": 8, "count": 1, "requeue": 1, "value": 0},
    {"op": "end", "name": "requeue"},
    {"op": "print", "text": "requeue: {result}"},
    {"op": "futex_wake", "map": "m", "offset": 0, "count": 5},
    {"op": "print", "text": "left on 0: {result}"},
    {"op": "futex_wake", "map": "m", "offset": 8, "count": 5},
    {"op": "print", "text": "moved to 8: {result}"},
    {"op": "futex_requeue", "map": "m", "offset": 0, "offset2": 8, "count": 0},
    {"op": "print", "text": "nobody: {result}"})",
                                   R"("arrival": "100us", )")));
  CHECK(printed(run, "waker") == std::vector<std::string>{"changed: -1 EAGAIN", "negative: EINVAL",
                                                          "unmapped: EFAULT", "misaligned: EINVAL",
                                                          "requeue: 2", "left on 0: 1", "moved to 8: 1",
                                                          "nobody: 0"});
  for (const char* w : {"w1", "w2", "w3"}) CHECK(printed(run, w) == std::vector<std::string>{"woken: 0"});
  auto& r = run.kernel->records();
  // The compare reads the first word: entry 150 + the waker's first touch of the page (page_fault
  // 1000; the waiters' reads allocated it, so no zeroing) + 8 bytes 1, then EAGAIN: exit 100. 1,251.
  CHECK(r[0].end - r[0].start == 1251);
  // The requeue: entry 150 + the read 1 (present now) + one wakeup 100 (w1; one core: no IPI) + the
  // exit 100: 351. The move of w2 costs nothing beyond the call.
  CHECK(r[1].end - r[1].start == 351);
  // w1 was woken by the requeue, w3 by the wake of word 0, w2 (moved) by the wake of word 8.
  CHECK(run.finished("w1") < run.finished("w3"));
  CHECK(run.finished("w3") < run.finished("w2"));
}

TEST_CASE("futex: a waiter moved by FUTEX_REQUEUE keeps its timeout") {
  auto run = run_text(machine(proc("w", kAttach + R"(,
    {"op": "futex_wait", "map": "m", "offset": 0, "value": 0, "timeout": "50us"},
    {"op": "print", "text": "w: {errno}"})") +
                              "," +
                              proc("r", kAttach + R"(,
    {"op": "futex_requeue", "map": "m", "offset": 0, "offset2": 64, "count": 0},
    {"op": "print", "text": "moved {result}"})",
                                   R"("arrival": "10us", )")));
  CHECK(printed(run, "r") == std::vector<std::string>{"moved 1"});
  CHECK(printed(run, "w") == std::vector<std::string>{"w: ETIMEDOUT"});
}
