// The futex and the mutex and condition variable built on it: FUTEX_WAIT's value check, timeouts and
// errors, FUTEX_WAKE's count, the uncontended lock that makes no system call, the contended one that
// makes exactly the calls glibc's lowlevellock makes, and a condition variable, with cycle counts
// worked out from the teaching preset (1 GHz: a cycle is a nanosecond; a system call's entry is
// trap_enter 100 + syscall_dispatch 50, its exit trap_exit 100). Every futex call looks up its
// shared key and hashes it: user_page_lookup 50 + hash_lookup 20 = 70.
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
  // The timed wait: entry 150 (its timeout counts from there), the key 70, futex_hb_waiters_inc 20,
  // the read 1, then asleep (futex_queue's waitqueue_op 20 + context_save 200, the core idles); the
  // timer at 150 + 5,000 (timer_interrupt 500 + wakeup 100), the dispatch from idle (sched_pick 100
  // + idle_exit 1000 + context_restore 200); still on the bucket's list, futex_unqueue (lock_acquire
  // 20 + list_op 10 + atomic_rmw 20); the exit 100.
  const Cycles timed = 150 + 5000 + 500 + 100 + 100 + 1000 + 200 + 50 + 100;
  MESSAGE("timed-out FUTEX_WAIT: expected " << timed << ", simulated "
                                            << run.kernel->records()[0].end - run.kernel->records()[0].start);
  CHECK(run.kernel->records()[0].end - run.kernel->records()[0].start == timed);
}

TEST_CASE("futex: FUTEX_WAKE with nobody waiting, FUTEX_WAIT on a changed word and with a zero timeout: "
          "the shared key, the hash and the bucket's waiter count, step by step") {
  auto run = run_text(machine(proc("p", kAttach + R"(,
    {"op": "mem_load", "map": "m", "offset": 0, "into": "x"},
    {"op": "begin", "name": "nobody"},
    {"op": "futex_wake", "map": "m", "offset": 0, "count": 1},
    {"op": "end", "name": "nobody"},
    {"op": "begin", "name": "changed"},
    {"op": "futex_wait", "map": "m", "offset": 0, "value": 1},
    {"op": "end", "name": "changed"},
    {"op": "begin", "name": "zero"},
    {"op": "futex_wait", "map": "m", "offset": 0, "value": 0, "timeout": 0},
    {"op": "end", "name": "zero"},
    {"op": "print", "text": "{errno}"})")));
  CHECK(printed(run, "p") == std::vector<std::string>{"ETIMEDOUT"});
  auto& r = run.kernel->records();
  // The page is present (the load faulted it in). FUTEX_WAKE: entry 150; get_futex_key
  // (user_page_lookup 50) and futex_hash (hash_lookup 20); futex_hb_waiters_pending's barrier
  // (atomic_rmw 20) finds nobody on the bucket: no lock; exit 100.
  const Cycles nobody = 150 + 50 + 20 + 20 + 100;
  MESSAGE("FUTEX_WAKE, nobody waiting: expected " << nobody << ", simulated " << r[0].end - r[0].start);
  CHECK(r[0].end - r[0].start == nobody);
  // FUTEX_WAIT on a word that changed: entry 150, the key 70, futex_q_lock (futex_hb_waiters_inc
  // 20, the bucket's lock), the read 1; EAGAIN: futex_q_unlock (the lock, lock_acquire 20, and
  // futex_hb_waiters_dec 20); exit 100.
  const Cycles changed = 150 + 70 + 20 + 1 + 20 + 20 + 100;
  MESSAGE("FUTEX_WAIT, EAGAIN: expected " << changed << ", simulated " << r[1].end - r[1].start);
  CHECK(r[1].end - r[1].start == changed);
  // A zero timeout on the word it expects: as far as the read, then futex_queue (waitqueue_op 20),
  // the timer already expired so no sleep, futex_unqueue (lock_acquire 20 + plist_del 10 +
  // futex_hb_waiters_dec 20); exit 100.
  const Cycles zero = 150 + 70 + 20 + 1 + 20 + 50 + 100;
  MESSAGE("FUTEX_WAIT, zero timeout: expected " << zero << ", simulated " << r[2].end - r[2].start);
  CHECK(r[2].end - r[2].start == zero);
}

TEST_CASE("futex: FUTEX_WAKE of a sleeper takes the bucket's lock and unlinks it; the sleeper's FUTEX_WAIT "
          "queued itself") {
  auto run = run_text(machine(proc("w", kAttach + R"(,
    {"op": "mem_load", "map": "m", "offset": 0, "into": "x"},
    {"op": "futex_wait", "map": "m", "offset": 0, "value": 0},
    {"op": "print", "text": "woken: {result}"})") +
                              "," +
                              proc("waker", kAttach + R"(,
    {"op": "mem_load", "map": "m", "offset": 0, "into": "x"},
    {"op": "begin", "name": "wake"},
    {"op": "futex_wake", "map": "m", "offset": 0, "count": 1},
    {"op": "end", "name": "wake"},
    {"op": "print", "text": "woke {result}"})",
                                   R"("arrival": "100us", )")));
  CHECK(printed(run, "w") == std::vector<std::string>{"woken: 0"});
  CHECK(printed(run, "waker") == std::vector<std::string>{"woke 1"});
  // The waker, on the one core: entry 150, the key 70, futex_hb_waiters_pending 20; a waiter is
  // there: spin_lock(&hb->lock) (lock_acquire 20), __futex_unqueue (plist_del: list_op 10,
  // futex_hb_waiters_dec: atomic_rmw 20), wake_up_q (wakeup 100); exit 100.
  const Cycles wake = 150 + 70 + 20 + 20 + 10 + 20 + 100 + 100;
  auto& r = run.kernel->records();
  MESSAGE("FUTEX_WAKE of one sleeper: expected " << wake << ", simulated " << r[0].end - r[0].start);
  CHECK(r[0].end - r[0].start == wake);
  CHECK(run.charged("waker", "futex_wake", Primitive::lock_acquire) == 20);
  CHECK(run.charged("waker", "futex_wake", Primitive::list_op) == 10);
  CHECK(run.charged("waker", "futex_wake", Primitive::atomic_rmw) == 40);
  // The sleeper's kernel path apart from the switches: the key (user_page_lookup 50, hash_lookup
  // 20), futex_hb_waiters_inc 20, futex_queue under the bucket's lock (waitqueue_op 20, as every
  // enqueue); woken by FUTEX_WAKE it was already unlinked, so nothing more.
  const Cycles path = 50 + 20 + 20 + 20;
  Cycles charged = 0;
  for (Primitive p : {Primitive::user_page_lookup, Primitive::hash_lookup, Primitive::atomic_rmw,
                      Primitive::waitqueue_op, Primitive::lock_acquire, Primitive::list_op})
    charged += run.charged("w", "futex_wait", p);
  MESSAGE("FUTEX_WAIT that sleeps, its kernel path: expected " << path << ", simulated " << charged);
  CHECK(charged == path);
  CHECK(run.charged("w", "futex_wait", Primitive::waitqueue_op) == 20);
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

// The condition variable is glibc 2.42's, one 8-byte word per field at `offset` (docs/futex.md):
// __wseq +0, __g1_start +8, __g_size[2] +16 +24, __g1_orig_size +32, __wrefs +40, __g_signals[2]
// +48 +56. The tests put the mutex at 0, the condition variable at 64 and the predicate at 128.
TEST_CASE(
    "futex: a condition variable: cond_wait releases the mutex and sleeps until cond_signal; a signal with "
    "no waiter makes no system call; a timed wait returns ETIMEDOUT holding the mutex") {
  auto run = run_text(machine(proc("consumer", kAttach + R"(,
    {"op": "mutex_lock", "map": "m", "offset": 0},
    {"op": "mem_load", "map": "m", "offset": 128, "into": "ready"},
    {"op": "while", "cond": "ready == 0", "body": [
      {"op": "cond_wait", "map": "m", "offset": 64, "mutex": 0},
      {"op": "mem_load", "map": "m", "offset": 128, "into": "ready"}]},
    {"op": "print", "text": "ready {ready}"},
    {"op": "cond_wait", "map": "m", "offset": 64, "mutex": 0, "timeout": "10us"},
    {"op": "mem_load", "map": "m", "offset": 0, "into": "lock"},
    {"op": "print", "text": "timed wait: {errno}, lock word {lock}"},
    {"op": "mutex_unlock", "map": "m", "offset": 0})") +
                              "," + proc("producer", kAttach + R"(,
    {"op": "sleep", "time": "50us"},
    {"op": "mutex_lock", "map": "m", "offset": 0},
    {"op": "mem_store", "map": "m", "offset": 128, "value": 1},
    {"op": "cond_signal", "map": "m", "offset": 64},
    {"op": "mutex_unlock", "map": "m", "offset": 0},
    {"op": "sleep", "time": "100us"},
    {"op": "cond_broadcast", "map": "m", "offset": 64},
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

TEST_CASE("futex: cond_signal and cond_broadcast with no waiter read __wrefs and return: one load, no system "
          "call") {
  auto run = run_text(machine(proc("p", kAttach + R"(,
    {"op": "mutex_lock", "map": "m", "offset": 0},
    {"op": "begin", "name": "signal"},
    {"op": "cond_signal", "map": "m", "offset": 64},
    {"op": "end", "name": "signal"},
    {"op": "begin", "name": "broadcast"},
    {"op": "cond_broadcast", "map": "m", "offset": 64},
    {"op": "end", "name": "broadcast"})")));
  auto& r = run.kernel->records();
  // The page is present (the mutex_lock faulted it in); __wrefs is one 8-byte load: 8 bytes at 8
  // bytes a cycle = 1 cycle. (The sequence-counter model this replaced charged 22: an atomic
  // increment of the sequence and a load of the waiter count.)
  const Cycles expected = 1;
  MESSAGE("signal with no waiter: expected " << expected << ", simulated " << r[0].end - r[0].start);
  CHECK(r[0].end - r[0].start == expected);
  CHECK(r[1].end - r[1].start == expected);
  CHECK(calls(run, "p", "cond_signal") == 0);
  CHECK(calls(run, "p", "cond_broadcast") == 0);
}

TEST_CASE("futex: a wait and a signal on one core: every step of glibc's algorithm, worked out") {
  auto run = run_text(machine(proc("consumer", kAttach + R"(,
    {"op": "mutex_lock", "map": "m", "offset": 0},
    {"op": "cond_wait", "map": "m", "offset": 64, "mutex": 0},
    {"op": "mutex_unlock", "map": "m", "offset": 0},
    {"op": "mem_load", "map": "m", "offset": 64, "into": "wseq"},
    {"op": "mem_load", "map": "m", "offset": 72, "into": "g1_start"},
    {"op": "mem_load", "map": "m", "offset": 80, "into": "size0"},
    {"op": "mem_load", "map": "m", "offset": 96, "into": "orig"},
    {"op": "mem_load", "map": "m", "offset": 104, "into": "wrefs"},
    {"op": "mem_load", "map": "m", "offset": 112, "into": "signals0"},
    {"op": "print", "text": "wseq {wseq} g1_start {g1_start} g_size[0] {size0} g1_orig_size {orig} wrefs {wrefs} g_signals[0] {signals0}"})") +
                              "," +
                              proc("producer", kAttach + R"(,
    {"op": "mutex_lock", "map": "m", "offset": 0},
    {"op": "begin", "name": "signal"},
    {"op": "cond_signal", "map": "m", "offset": 64},
    {"op": "end", "name": "signal"},
    {"op": "mutex_unlock", "map": "m", "offset": 0})",
                                   R"("arrival": "100us", )")));
  // After: the waiter took position 0 (wseq 2, G2 in slot 0); the signal switched groups (slot 0
  // became G1 of size 1, wseq's low bit now says G2 is slot 1), put one signal in __g_signals[0] and
  // took one off __g_size[0]; the waiter took the signal (CAS 1 -> 0) and left (__wrefs 8 -> 0).
  CHECK(printed(run, "consumer") ==
        std::vector<std::string>{"wseq 3 g1_start 0 g_size[0] 0 g1_orig_size 4 wrefs 0 g_signals[0] 0"});
  // cond_signal with one waiter, page present, one core (no line moves between cores); a load or a
  // plain store is 1 cycle, a locked instruction 1 + atomic_rmw 20 = 21:
  //   load __wrefs 1; the internal lock: load 1 + CAS 21;
  //   load __wseq 1, load __g_size[1] 1 (0: G1 has nobody left, switch):
  //     __condvar_switch_g1: load __g1_orig_size 1, __g1_start 1, __g_size[0] 1; __g1_start += 0
  //     (load 1, store 1); fetch_xor __wseq 21; store __g_signals[0] 1; set_orig_size: load 1,
  //     xchg 21; __g_size[0] += 1: 1; load __g_size[0] 1 = 51;
  //   fetch_add __g_signals[0] 21, __g_size[0] -= 1: 1; release the lock: fetch_and 21;
  //   FUTEX_WAKE(1): entry 150 + the key 70 + futex_hb_waiters_pending 20 + the bucket's lock 20 +
  //   the waiter unlinked (plist_del 10 + futex_hb_waiters_dec 20) + wakeup 100 + exit 100 = 490.
  const Cycles signal = 1 + 22 + 2 + 51 + 22 + 21 + 490;
  auto& r = run.kernel->records();
  MESSAGE("cond_signal with a waiter: expected " << signal << ", simulated " << r[0].end - r[0].start);
  CHECK(r[0].end - r[0].start == signal);
  CHECK(calls(run, "producer", "cond_signal") == 1);
  // The waiter's cond_wait, apart from sleeping: fetch_add __wseq 21, fetch_add __wrefs 21, the
  // mutex's xchg 21; load __g_signals[0] 1, __g1_start 1 (no signal yet); FUTEX_WAIT: entry 150, the
  // read 1, exit 100; again: load 1, load 1, CAS __g_signals[0] 21; fetch_add __wrefs -8: 21; the
  // mutex again, CAS 0 -> 2: 21. Six locked instructions in user space and the FUTEX_WAIT's
  // futex_hb_waiters_inc (140 of atomic_rmw; the waker unlinks it and counts it down), eleven 8-byte
  // accesses (11 cycles), one system call (250).
  const Cycles atomics = 7 * 20, words = 11, call = 150 + 100;
  Cycles charged = run.charged("consumer", "cond_wait", Primitive::atomic_rmw);
  MESSAGE("cond_wait atomics: expected " << atomics << ", simulated " << charged);
  CHECK(charged == atomics);
  CHECK(run.charged("consumer", "cond_wait", Primitive::copy_bytes_per_cycle) == words);
  CHECK(run.charged("consumer", "cond_wait", Primitive::trap_enter) +
            run.charged("consumer", "cond_wait", Primitive::syscall_dispatch) +
            run.charged("consumer", "cond_wait", Primitive::trap_exit) ==
        call);
  // Its FUTEX_WAIT's key: user_page_lookup 50 + hash_lookup 20.
  const Cycles key = 70;
  CHECK(run.charged("consumer", "cond_wait", Primitive::user_page_lookup) +
            run.charged("consumer", "cond_wait", Primitive::hash_lookup) ==
        key);
  MESSAGE("wait + signal pair, apart from the switches: expected " << signal + atomics + words + call + key);
  CHECK(calls(run, "consumer", "cond_wait") == 1);
}

TEST_CASE("futex: a signal wakes a thread blocked when it was sent, never one that started waiting later") {
  // One core. w blocks at once. At 50 us s signals (w is woken, but s keeps the core) and then
  // waits itself, before w has run: a later waiter goes to the other group (G2), so it cannot take
  // the signal meant for w, and sleeps until k's signal at 200 us.
  auto run = run_text(machine(proc("w", kAttach + R"(,
    {"op": "mutex_lock", "map": "m", "offset": 0},
    {"op": "cond_wait", "map": "m", "offset": 64, "mutex": 0},
    {"op": "print", "text": "w woken"},
    {"op": "mutex_unlock", "map": "m", "offset": 0})") +
                              "," +
                              proc("s", kAttach + R"(,
    {"op": "mutex_lock", "map": "m", "offset": 0},
    {"op": "cond_signal", "map": "m", "offset": 64},
    {"op": "cond_wait", "map": "m", "offset": 64, "mutex": 0},
    {"op": "print", "text": "s woken"},
    {"op": "mutex_unlock", "map": "m", "offset": 0})",
                                   R"("arrival": "50us", )") +
                              "," +
                              proc("k", kAttach + R"(,
    {"op": "mutex_lock", "map": "m", "offset": 0},
    {"op": "cond_signal", "map": "m", "offset": 64},
    {"op": "mutex_unlock", "map": "m", "offset": 0})",
                                   R"("arrival": "200us", )")));
  CHECK(printed(run, "w") == std::vector<std::string>{"w woken"});
  CHECK(printed(run, "s") == std::vector<std::string>{"s woken"});
  Cycles w_woken = 0, s_woken = 0;
  for (const auto& line : run.kernel->console()) {
    if (line.text == "w woken") w_woken = line.at;
    if (line.text == "s woken") s_woken = line.at;
  }
  CHECK(w_woken < 200'000);
  CHECK(s_woken > 200'000);
  // s slept in one FUTEX_WAIT (it never found a signal it could take); each signal made one FUTEX_WAKE.
  CHECK(calls(run, "s", "cond_wait") == 1);
  CHECK(calls(run, "s", "cond_signal") == 1);
  CHECK(calls(run, "k", "cond_signal") == 1);
}

TEST_CASE("futex: cond_broadcast wakes every waiter blocked when it was sent, not one that waits after") {
  const std::string waiter = kAttach + R"(,
    {"op": "mutex_lock", "map": "m", "offset": 0},
    {"op": "cond_wait", "map": "m", "offset": 64, "mutex": 0},
    {"op": "print", "text": "woken"},
    {"op": "mutex_unlock", "map": "m", "offset": 0})";
  auto run = run_text(machine(proc("w1", waiter) + "," + proc("w2", waiter) + "," + proc("w3", waiter) + "," +
                              proc("b", kAttach + R"(,
    {"op": "mutex_lock", "map": "m", "offset": 0},
    {"op": "cond_broadcast", "map": "m", "offset": 64},
    {"op": "cond_wait", "map": "m", "offset": 64, "mutex": 0},
    {"op": "print", "text": "b woken"},
    {"op": "mutex_unlock", "map": "m", "offset": 0})",
                                   R"("arrival": "100us", )") +
                              "," +
                              proc("k", kAttach + R"(,
    {"op": "mutex_lock", "map": "m", "offset": 0},
    {"op": "cond_signal", "map": "m", "offset": 64},
    {"op": "mutex_unlock", "map": "m", "offset": 0})",
                                   R"("arrival": "500us", )")));
  for (const char* w : {"w1", "w2", "w3"}) {
    CHECK(printed(run, w) == std::vector<std::string>{"woken"});
    CHECK(run.finished(w) < 500'000);
    CHECK(calls(run, w, "cond_wait") == 1); // one FUTEX_WAIT each: no spurious round
  }
  CHECK(printed(run, "b") == std::vector<std::string>{"b woken"});
  CHECK(run.finished("b") > 500'000);
  // G1 was empty: the broadcast made G2 (the three) the new G1, with three signals, and woke all
  // of them with one FUTEX_WAKE.
  CHECK(calls(run, "b", "cond_broadcast") == 1);
}

TEST_CASE("futex: a timed-out cond_wait takes itself out of its group (__condvar_cancel_waiting) and returns "
          "ETIMEDOUT holding the mutex; a later signal finds no waiter; the group sizes stay right") {
  auto run = run_text(machine(proc("t", kAttach + R"(,
    {"op": "mutex_lock", "map": "m", "offset": 0},
    {"op": "begin", "name": "timed"},
    {"op": "cond_wait", "map": "m", "offset": 64, "mutex": 0, "timeout": "10us"},
    {"op": "end", "name": "timed"},
    {"op": "print", "text": "{result} {errno}"},
    {"op": "mem_load", "map": "m", "offset": 0, "into": "lock"},
    {"op": "mem_load", "map": "m", "offset": 80, "into": "size0"},
    {"op": "mem_load", "map": "m", "offset": 104, "into": "wrefs"},
    {"op": "print", "text": "lock {lock} g_size[0] {size0} wrefs {wrefs}"},
    {"op": "mutex_unlock", "map": "m", "offset": 0},
    {"op": "cond_signal", "map": "m", "offset": 64},
    {"op": "mutex_lock", "map": "m", "offset": 0},
    {"op": "cond_wait", "map": "m", "offset": 64, "mutex": 0},
    {"op": "print", "text": "second wait woken"},
    {"op": "mutex_unlock", "map": "m", "offset": 0})") +
                              "," +
                              proc("late", kAttach + R"(,
    {"op": "mutex_lock", "map": "m", "offset": 0},
    {"op": "cond_signal", "map": "m", "offset": 64},
    {"op": "mutex_unlock", "map": "m", "offset": 0})",
                                   R"("arrival": "100us", )")));
  // G2's size is counted down by cancellations: -1 as glibc's unsigned 32-bit word (4294967295).
  CHECK(printed(run, "t") == std::vector<std::string>{"110 ETIMEDOUT", "lock 2 g_size[0] 4294967295 wrefs 0",
                                                      "second wait woken"});
  // The cancelled waiter is still counted when G2 becomes G1 (wseq - g1_start = 2 positions, one
  // cancelled: size 1), so the late signal goes to the second wait.
  CHECK(calls(run, "late", "cond_signal") == 1);
  // The signal with no waiter (wrefs 0 after the cancellation) made no system call: the thread's
  // cond_signal calls are none.
  CHECK(calls(run, "t", "cond_signal") == 0);
  // Timed wait, alone on its core, page present: fetch_add __wseq 21, __wrefs 21, the mutex's xchg 21
  // (63); loads of __g_signals[0] and __g1_start 2 (65); FUTEX_WAIT: entry 150, the key 70,
  // futex_hb_waiters_inc 20, the read 1, asleep until the deadline, start + 10,000 (glibc's
  // abstime: the same for the whole loop); the timer (timer_interrupt 500 + wakeup 100), the
  // dispatch from idle (sched_pick 100 + idle_exit 1,000 + context_restore 200), futex_unqueue
  // (lock_acquire 20 + list_op 10 + atomic_rmw 20 = 50), exit 100; __condvar_cancel_waiting: the
  // lock (load 1 + CAS 21), load __g1_start 1, __g1_orig_size 1, __g_size[0] 1, __g_size[0] -= 1:
  // 1, release (fetch_and 21) = 47; fetch_add __wrefs -8: 21; the mutex, CAS 0 -> 2: 21.
  const Cycles timed = 10'000 + 500 + 100 + 100 + 1000 + 200 + 50 + 100 + 47 + 21 + 21;
  auto& r = run.kernel->records();
  MESSAGE("timed-out cond_wait: expected " << timed << ", simulated " << r[0].end - r[0].start);
  CHECK(r[0].end - r[0].start == timed);
}

TEST_CASE("futex: a handler interrupting cond_wait's FUTEX_WAIT runs, and the wait goes on (glibc's loop)") {
  auto run = run_text(machine(proc("w", kAttach + R"(,
    {"op": "sigaction", "signal": "SIGUSR1", "handler": [{"op": "print", "text": "handler"}]},
    {"op": "mutex_lock", "map": "m", "offset": 0},
    {"op": "cond_wait", "map": "m", "offset": 64, "mutex": 0},
    {"op": "print", "text": "woken {result}"},
    {"op": "mutex_unlock", "map": "m", "offset": 0})") +
                              "," + proc("k", kAttach + R"(,
    {"op": "sleep", "time": "50us"},
    {"op": "kill", "process": "w", "signal": "SIGUSR1"},
    {"op": "sleep", "time": "50us"},
    {"op": "mutex_lock", "map": "m", "offset": 0},
    {"op": "cond_signal", "map": "m", "offset": 64},
    {"op": "mutex_unlock", "map": "m", "offset": 0})")));
  CHECK(printed(run, "w") == std::vector<std::string>{"handler", "woken 0"});
  for (const auto& line : run.kernel->console())
    if (line.text == "woken 0") CHECK(line.at > 100'000);
  // Two FUTEX_WAITs: the one the signal ended (EINTR, the handler), and the next round of the loop.
  CHECK(calls(run, "w", "cond_wait") == 2);
  CHECK(calls(run, "k", "cond_signal") == 1);
}

TEST_CASE("futex: a mutex_lock whose FUTEX_WAIT a handler ended goes on with __lll_lock_wait's xchg(2)") {
  // a holds the lock while c sleeps in FUTEX_WAIT (word 2); a unlocks (waking c) and signals c at
  // once. c's FUTEX_WAIT returns for the handler; then glibc's loop goes on with xchg(2): c takes the
  // lock leaving the word at 2 (not 1, as a fresh CAS 0 -> 1 would), so its unlock makes a FUTEX_WAKE.
  auto run = run_text(machine(proc("a", kAttach + R"(,
      {"op": "mutex_lock", "map": "m", "offset": 0},
      {"op": "sleep", "time": "100us"},
      {"op": "mutex_unlock", "map": "m", "offset": 0},
      {"op": "kill", "process": "c", "signal": "SIGUSR1"})") +
                              "," + proc("c", kAttach + R"(,
      {"op": "sigaction", "signal": "SIGUSR1", "handler": [{"op": "print", "text": "handler"}]},
      {"op": "sleep", "time": "20us"},
      {"op": "mutex_lock", "map": "m", "offset": 0},
      {"op": "mem_load", "map": "m", "offset": 0, "into": "word"},
      {"op": "print", "text": "c has the lock, word {word}"},
      {"op": "mutex_unlock", "map": "m", "offset": 0})")));
  CHECK(printed(run, "c") == std::vector<std::string>{"handler", "c has the lock, word 2"});
  CHECK(calls(run, "c", "mutex_lock") == 1);
  CHECK(calls(run, "c", "mutex_unlock") == 1);
}

TEST_CASE("futex: a condition variable's offset must be 8-byte aligned and its 64 bytes mapped") {
  CHECK(ipcsim::test::load_error(machine(proc("p", kAttach + R"(,
    {"op": "cond_signal", "map": "m", "offset": 12})"))) ==
        "test.json: at processes.0.script.2.offset: a condition variable is 8-byte aligned (pthread_cond_t); "
        "got "
        "12, give a multiple of 8");
  auto run = run_text(machine(proc("p", kAttach + R"(,
    {"op": "set", "var": "at", "value": 20},
    {"op": "cond_broadcast", "map": "m", "offset": "{at}"})")));
  CHECK(run.kernel->runtime_error().find(
            "cond_broadcast: the condition variable at offset 20 of \"m\" is not 8-byte "
            "aligned; give a multiple of 8") != std::string::npos);
  // 4,072 + 64 runs past the 4,096-byte mapping: SIGSEGV, as the first access past its end would be.
  auto past = run_text(machine(proc("p", kAttach + R"(,
    {"op": "cond_signal", "map": "m", "offset": 4072},
    {"op": "print", "text": "not reached"})")));
  CHECK(printed(past, "p").empty());
  bool killed = false;
  for (const auto& p : past.kernel->processes())
    if (p.display_name() == "p") killed = p.killed_by == 11;
  CHECK(killed);
}

TEST_CASE("futex: a mutex word must be 4-byte aligned (else glibc's lock loop would retry EINVAL forever)") {
  CHECK(ipcsim::test::load_error(machine(proc("p", kAttach + R"(,
    {"op": "mutex_lock", "map": "m", "offset": 2})"))) ==
        "test.json: at processes.0.script.2.offset: a mutex word is 4-byte aligned (the futex of "
        "pthread_mutex_t); got 2, give a multiple of 4");
  CHECK(ipcsim::test::load_error(machine(proc("p", kAttach + R"(,
    {"op": "mutex_unlock", "map": "m", "offset": 7})"))) ==
        "test.json: at processes.0.script.2.offset: a mutex word is 4-byte aligned (the futex of "
        "pthread_mutex_t); got 7, give a multiple of 4");
  CHECK(ipcsim::test::load_error(machine(proc("p", kAttach + R"(,
    {"op": "cond_wait", "map": "m", "offset": 64, "mutex": 6})"))) ==
        "test.json: at processes.0.script.2.mutex: a mutex word is 4-byte aligned (the futex of "
        "pthread_mutex_t); got 6, give a multiple of 4");
  for (const char* op : {"mutex_lock", "mutex_unlock"}) {
    auto run = run_text(machine(proc("p", kAttach + R"(,
    {"op": "set", "var": "at", "value": 10},
    {"op": ")" + std::string(op) + R"(", "map": "m", "offset": "{at}"},
    {"op": "print", "text": "not reached"})")));
    CHECK(printed(run, "p").empty());
    CHECK(run.kernel->runtime_error().find(std::string(op) +
                                           ": the mutex word at offset 10 of \"m\" is not 4-byte aligned; "
                                           "give a multiple of 4") != std::string::npos);
  }
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
  // Both keys 2 x 70, futex_hb_waiters_inc of the second bucket 20, double_lock_hb of two buckets
  // 2 x 20, and its futex_hb_waiters_dec 20 at the end: 220 in every requeue of two words.
  const Cycles keys_and_locks = 2 * 70 + 20 + 2 * 20 + 20;
  // The compare reads the first word: entry 150 + the waker's first touch of the page (page_fault
  // 1000; the waiters' reads allocated it, so no zeroing) + 8 bytes 1, then EAGAIN: exit 100.
  const Cycles changed = 150 + keys_and_locks + 1000 + 1 + 100;
  MESSAGE("FUTEX_CMP_REQUEUE, EAGAIN: expected " << changed << ", simulated " << r[0].end - r[0].start);
  CHECK(r[0].end - r[0].start == changed);
  // The requeue: entry 150 + the read 1 (present now); w1 unlinked (plist_del 10 +
  // futex_hb_waiters_dec 20) and woken (wakeup 100; one core: no IPI); w2 moved (requeue_futex:
  // plist_del + plist_add 2 x 10, the two buckets' counts 2 x 20); the exit 100.
  const Cycles requeued = 150 + keys_and_locks + 1 + 30 + 100 + 60 + 100;
  MESSAGE("FUTEX_CMP_REQUEUE, one woken, one moved: expected " << requeued << ", simulated "
                                                               << r[1].end - r[1].start);
  CHECK(r[1].end - r[1].start == requeued);
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

TEST_CASE(
    "futex: a bounded buffer on two condition variables, on 2 and 4 cores, with signal or broadcast and "
    "with timed waits: no wakeup is lost, every item arrives, the invariants hold throughout") {
  // Mutex at 0, not_empty at 64, not_full at 192 (capacity 2), the count at 128, items taken at 136.
  // 3 producers of 20 items, 4 consumers of 15, each with its own pace so that the interleavings vary.
  for (int cores : {2, 4})
    for (const char* wake : {"cond_signal", "cond_broadcast"})
      for (const char* timeout : {"", R"(, "timeout": "3us")"}) {
        CAPTURE(cores);
        CAPTURE(wake);
        CAPTURE(timeout);
        std::string processes;
        for (int p = 0; p < 3; ++p)
          processes += proc("producer" + std::to_string(p), kAttach + R"(,
            {"op": "repeat", "count": 20, "body": [
              {"op": "mutex_lock", "map": "m", "offset": 0},
              {"op": "mem_load", "map": "m", "offset": 128, "into": "n"},
              {"op": "while", "cond": "n >= 2", "body": [
                {"op": "cond_wait", "map": "m", "offset": 192, "mutex": 0)" +
                                                                timeout +
                                                                R"(},
                {"op": "mem_load", "map": "m", "offset": 128, "into": "n"}]},
              {"op": "atomic_add", "map": "m", "offset": 128, "value": 1},
              {"op": ")" + wake + R"(", "map": "m", "offset": 64},
              {"op": "mutex_unlock", "map": "m", "offset": 0},
              {"op": "compute", "time": ")" + std::to_string(1 + p) +
                                                                R"(us"}]})") +
                       ",";
        for (int c = 0; c < 4; ++c)
          processes += proc("consumer" + std::to_string(c), kAttach + R"(,
            {"op": "repeat", "count": 15, "body": [
              {"op": "mutex_lock", "map": "m", "offset": 0},
              {"op": "mem_load", "map": "m", "offset": 128, "into": "n"},
              {"op": "while", "cond": "n == 0", "body": [
                {"op": "cond_wait", "map": "m", "offset": 64, "mutex": 0)" +
                                                                timeout +
                                                                R"(},
                {"op": "mem_load", "map": "m", "offset": 128, "into": "n"}]},
              {"op": "atomic_add", "map": "m", "offset": 128, "value": -1},
              {"op": "atomic_add", "map": "m", "offset": 136, "value": 1},
              {"op": "cond_signal", "map": "m", "offset": 192},
              {"op": "mutex_unlock", "map": "m", "offset": 0},
              {"op": "compute", "time": ")" + std::to_string(2 * c + 1) +
                                                                R"(us"}]})") +
                       ",";
        processes += proc("check", kAttach + R"(,
            {"op": "mem_load", "map": "m", "offset": 128, "into": "n"},
            {"op": "mem_load", "map": "m", "offset": 136, "into": "taken"},
            {"op": "mem_load", "map": "m", "offset": 104, "into": "waiters"},
            {"op": "mem_load", "map": "m", "offset": 232, "into": "waiters2"},
            {"op": "print", "text": "count {n} taken {taken} waiters {waiters} {waiters2}"})",
                          R"("arrival": "50ms", )");
        LoadOptions checked;
        checked.debug_invariants = true;
        auto run = run_text(
            R"({"machine": {"cores": )" + std::to_string(cores) +
                R"(, "costs": "teaching", "scheduler": {"policy": "rr", "quantum": "4ms"}}, "processes": [)" +
                processes + "]}",
            checked);
        CHECK(run.kernel->runtime_error() == "");
        CHECK(printed(run, "check") == std::vector<std::string>{"count 0 taken 60 waiters 0 0"});
        for (const auto& t : run.kernel->threads())
          if (t.display_name() != "check") CHECK(t.finished_at < 50'000'000);
        // The timed variants did time out (and cancel), and still lost nothing.
        std::uint64_t timeouts = 0;
        for (const auto& f : run.kernel->failed_calls())
          if (activity_names()[f.activity] == "cond_wait" && f.error == ETIMEDOUT) timeouts += f.count;
        CHECK((timeouts > 0) == (*timeout != 0));
      }
}
