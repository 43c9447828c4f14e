// Semaphores: System V arrays (atomic semop, SEM_UNDO, IPC_NOWAIT, sleepers completed by
// update_queue, semctl, IPC_RMID, errors) and POSIX semaphores (the user-space fast path, the futex
// slow path, named and unnamed, errors). Cycle counts from the teaching preset (1 GHz).
#include "error.hpp"
#include "harness.hpp"
#include "ipc.hpp"

#include <doctest/doctest.h>

#include <algorithm>

using namespace ipcsim;
using ipcsim::test::run_text;

namespace {

std::string machine(const std::string& processes) {
  return R"({"machine": {"cores": 1}, "processes": [)" + processes + "]}";
}
std::string proc(const std::string& name, const std::string& script, const std::string& extra = "") {
  return R"({"name": ")" + name + R"(", "working_set_pages": 0, )" + extra + R"("script": [)" + script + "]}";
}
std::vector<std::string> texts(const ipcsim::test::Run& run) { return ipcsim::test::console_texts(run); }
std::string load_error(const std::string& text) {
  try {
    run_text(text);
  } catch (const UserError& e) {
    return e.what();
  }
  return "<no error>";
}

const std::string kArray = R"({"op": "semget", "key": 7, "nsems": 2, "flags": ["IPC_CREAT"], "into": "s"})";

} // namespace

TEST_CASE("sysv sem: a semop applies all of its operations or none; errors as ipc/sem.c gives them") {
  auto run = run_text(machine(proc("p", kArray + R"(,
    {"op": "semctl", "semid": "s", "cmd": "SETALL", "values": [1, 0]},
    {"op": "semop", "semid": "s", "ops": [{"sem_num": 0, "sem_op": -1}, {"sem_num": 1, "sem_op": -1, "sem_flg": ["IPC_NOWAIT"]}]},
    {"op": "print", "text": "both: {errno}"},
    {"op": "semctl", "semid": "s", "cmd": "GETVAL", "semnum": 0},
    {"op": "print", "text": "sem 0 still {result}"},
    {"op": "semop", "semid": "s", "ops": [{"sem_num": 2, "sem_op": 1}]},
    {"op": "print", "text": "sem 2: {errno}"},
    {"op": "semop", "semid": "s", "ops": [{"sem_num": 0, "sem_op": 32767}]},
    {"op": "print", "text": "past SEMVMX: {errno}"},
    {"op": "semctl", "semid": "s", "cmd": "SETVAL", "semnum": 1, "value": 40000},
    {"op": "print", "text": "SETVAL 40000: {errno}"},
    {"op": "semget", "key": 7, "nsems": 3, "into": "t"},
    {"op": "print", "text": "nsems 3 of 2: {errno}"},
    {"op": "semget", "key": 7, "nsems": 2, "flags": ["IPC_CREAT", "IPC_EXCL"], "into": "t"},
    {"op": "print", "text": "IPC_EXCL: {errno}"},
    {"op": "semget", "key": 8, "nsems": 1, "into": "t"},
    {"op": "print", "text": "key 8: {errno}"},
    {"op": "semop", "semid": 99, "ops": [{"sem_num": 0, "sem_op": 1}]},
    {"op": "print", "text": "semid 99: {errno}"},
    {"op": "semop", "semid": "s", "ops": [{"sem_num": 0, "sem_op": 0}], "timeout": "1us"},
    {"op": "print", "text": "wait for zero, 1 us: {errno}"},
    {"op": "semctl", "semid": "s", "cmd": "GETALL", "into": "v"},
    {"op": "print", "text": "values {v.0} {v.1}"})")));
  CHECK(texts(run) == std::vector<std::string>{
                          "both: EAGAIN", "sem 0 still 1", "sem 2: EFBIG", "past SEMVMX: ERANGE",
                          "SETVAL 40000: ERANGE", "nsems 3 of 2: EINVAL", "IPC_EXCL: EEXIST", "key 8: ENOENT",
                          "semid 99: EINVAL", "wait for zero, 1 us: EAGAIN", "values 1 0"});
}

TEST_CASE("sysv sem: a V completes the sleeper's P for it and wakes it; costs of an uncontended semop") {
  auto run = run_text(machine(proc("waiter", kArray + R"(,
      {"op": "begin", "name": "p"},
      {"op": "semop", "semid": "s", "ops": [{"sem_num": 0, "sem_op": -1}]},
      {"op": "end", "name": "p"},
      {"op": "semctl", "semid": "s", "cmd": "GETVAL", "semnum": 0},
      {"op": "print", "text": "after P: {result}"})") +
                              "," + proc("poster", R"(
      {"op": "semget", "key": 7, "nsems": 0, "into": "s"},
      {"op": "semctl", "semid": "s", "cmd": "GETNCNT", "semnum": 0},
      {"op": "print", "text": "waiting for it: {result}"},
      {"op": "begin", "name": "v"},
      {"op": "semop", "semid": "s", "ops": [{"sem_num": 0, "sem_op": 1}]},
      {"op": "end", "name": "v"})")));
  CHECK(texts(run) == std::vector<std::string>{"waiting for it: 1", "after P: 0"});
  // The V: trap 150 + the sembuf copy (copy_setup 50 + 6 bytes at 8 a cycle = 1) + the sleeper's
  // wakeup 100 + trap_exit 100 = 401.
  Cycles p = 0, v = 0;
  for (const auto& r : run.kernel->records())
    (run.scenario->model().interval_names[r.name] == "v" ? v : p) = r.end - r.start;
  CHECK(v == 401);
  CHECK(p > v); // the P waited through the poster's whole turn
}

TEST_CASE("sysv sem: SEM_UNDO is applied when the process exits; IPC_RMID wakes a sleeper with EIDRM") {
  auto run = run_text(machine(proc("a", kArray + R"(,
      {"op": "semop", "semid": "s", "ops": [{"sem_num": 0, "sem_op": 2, "sem_flg": ["SEM_UNDO"]}, {"sem_num": 1, "sem_op": 1}]})") +
                              "," + proc("b", R"(
      {"op": "sleep", "time": "10us"},
      {"op": "semget", "key": 7, "nsems": 0, "into": "s"},
      {"op": "semctl", "semid": "s", "cmd": "GETALL", "into": "v"},
      {"op": "print", "text": "after a exited: {v.0} {v.1}"},
      {"op": "semop", "semid": "s", "ops": [{"sem_num": 0, "sem_op": -1}]},
      {"op": "print", "text": "semop: {errno}"})") +
                              "," + proc("c", R"(
      {"op": "sleep", "time": "20us"},
      {"op": "semget", "key": 7, "nsems": 0, "into": "s"},
      {"op": "semctl", "semid": "s", "cmd": "IPC_RMID"})")));
  CHECK(texts(run) == std::vector<std::string>{"after a exited: 0 1", "semop: EIDRM"});
}

TEST_CASE("sysv sem: an undo adjustment outside -32768..32767 is ERANGE, and nothing changes") {
  // perform_atomic_semop: semadj - sem_op must stay within SEMAEM (Linux 6.18, measured): after
  // SETVAL 32767, a -32767 with SEM_UNDO makes semadj 32767; a +1 without it, then a -1 with it,
  // would make 32768.
  auto run = run_text(machine(proc("p", kArray + R"(,
      {"op": "semctl", "semid": "s", "cmd": "SETVAL", "semnum": 0, "value": 32767},
      {"op": "semop", "semid": "s", "ops": [{"sem_num": 0, "sem_op": -32767, "sem_flg": ["SEM_UNDO"]}]},
      {"op": "semop", "semid": "s", "ops": [{"sem_num": 0, "sem_op": 1}]},
      {"op": "semop", "semid": "s", "ops": [{"sem_num": 0, "sem_op": -1, "sem_flg": ["SEM_UNDO"]}]},
      {"op": "print", "text": "{result} {errno}"},
      {"op": "semctl", "semid": "s", "cmd": "GETVAL", "semnum": 0}, {"op": "print", "text": "value {result}"})")));
  CHECK(texts(run) == std::vector<std::string>{"-1 ERANGE", "value 1"});
}

TEST_CASE("sysv sem: GETNCNT and GETZCNT count a sleeper on the operation it waits on (q->blocking)") {
  // check_qop: [0 -1, 1 -1] with values 1, 0 waits on semaphore 1, not 0; [0 +1, 0 -3] with value
  // 1 waits on its second operation, a decrement of semaphore 0 (Linux 6.18, measured).
  auto run = run_text(
      machine(proc("main", R"({"op": "semget", "key": 7, "nsems": 3, "flags": ["IPC_CREAT"], "into": "s"},
      {"op": "semctl", "semid": "s", "cmd": "SETALL", "values": [1, 0, 1]},
      {"op": "sleep", "time": "10us"},
      {"op": "semctl", "semid": "s", "cmd": "GETNCNT", "semnum": 0}, {"op": "print", "text": "ncnt0 {result}"},
      {"op": "semctl", "semid": "s", "cmd": "GETNCNT", "semnum": 1}, {"op": "print", "text": "ncnt1 {result}"},
      {"op": "sleep", "time": "10us"},
      {"op": "semctl", "semid": "s", "cmd": "GETNCNT", "semnum": 0}, {"op": "print", "text": "ncnt0 {result}"},
      {"op": "semctl", "semid": "s", "cmd": "IPC_RMID"})") +
              "," + proc("w1", R"({"op": "sleep", "time": "5us"},
      {"op": "semget", "key": 7, "nsems": 0, "into": "s"},
      {"op": "semop", "semid": "s", "ops": [{"sem_num": 0, "sem_op": -1}, {"sem_num": 1, "sem_op": -1}]})") +
              "," + proc("w2", R"({"op": "sleep", "time": "15us"},
      {"op": "semget", "key": 7, "nsems": 0, "into": "s"},
      {"op": "semop", "semid": "s", "ops": [{"sem_num": 0, "sem_op": 1}, {"sem_num": 0, "sem_op": -3}]})")));
  CHECK(texts(run) == std::vector<std::string>{"ncnt0 0", "ncnt1 1", "ncnt0 1"});
}

TEST_CASE("sysv sem: errors come in ipc/sem.c's order") {
  // semctl_setval: ERANGE before the lookup and the number; semctl_main: the permission before
  // the number (GETVAL) and before the range (SETALL); semget of an existing set:
  // sem_more_checks (EINVAL) before the permission. Measured on Linux 6.18 as uid 1000 against a
  // set root made with mode 0600.
  auto run = run_text(machine(
      proc("root",
           R"({"op": "semget", "key": 7, "nsems": 2, "flags": ["IPC_CREAT"], "mode": "0600", "into": "s"},
      {"op": "semctl", "semid": 999, "cmd": "SETVAL", "semnum": 0, "value": 40000},
      {"op": "print", "text": "SETVAL of a bad id: {errno}"},
      {"op": "semctl", "semid": "s", "cmd": "SETVAL", "semnum": 5, "value": 40000},
      {"op": "print", "text": "SETVAL of a bad number: {errno}"},
      {"op": "sleep", "time": "100us"})",
           R"("uid": 0, "gid": 0, )") +
      "," +
      proc("user", R"({"op": "sleep", "time": "10us"},
      {"op": "semget", "key": 7, "nsems": 5, "into": "t"}, {"op": "print", "text": "semget of 5: {errno}"},
      {"op": "semget", "key": 7, "nsems": 0, "into": "t"}, {"op": "print", "text": "semget of 0: {errno}"},
      {"op": "set", "var": "id", "value": 0},
      {"op": "semctl", "semid": "id", "cmd": "GETVAL", "semnum": 5}, {"op": "print", "text": "GETVAL: {errno}"},
      {"op": "semctl", "semid": "id", "cmd": "SETALL", "values": [40000, 1]},
      {"op": "print", "text": "SETALL: {errno}"})",
           R"("uid": 1000, "gid": 1000, )")));
  CHECK(texts(run) == std::vector<std::string>{"SETVAL of a bad id: ERANGE", "SETVAL of a bad number: ERANGE",
                                               "semget of 5: EINVAL", "semget of 0: EACCES", "GETVAL: EACCES",
                                               "SETALL: EACCES"});
}

TEST_CASE("sysv sem: two cores removing one array at once: one IPC_RMID succeeds, the other gets EINVAL") {
  // The first remover's wakes let the other core run; the id must already be gone by then, or both
  // would remove the array (the second one by a stale index). freeary() runs after ipc_rmid().
  std::string sleeper = R"({"op": "semget", "key": 7, "nsems": 0, "into": "s"},
      {"op": "semop", "semid": "s", "ops": [{"sem_num": 0, "sem_op": -1}]},
      {"op": "print", "text": "semop: {errno}"})";
  std::string remover = R"({"op": "semget", "key": 7, "nsems": 0, "into": "s"},
      {"op": "semctl", "semid": "s", "cmd": "IPC_RMID"},
      {"op": "print", "text": "rmid: {result} {errno}"})";
  std::string processes = proc("owner", kArray);
  for (int i = 0; i < 6; ++i)
    processes += "," + proc("w" + std::to_string(i), sleeper, R"("arrival": "10us", )");
  processes += "," + proc("a", remover, R"("arrival": "1ms", "affinity": [0], )") + "," +
               proc("b", remover, R"("arrival": "1ms", "affinity": [1], )");
  auto run = run_text(R"({"machine": {"cores": 2}, "processes": [)" + processes + "]}");
  auto lines = texts(run);
  std::sort(lines.begin(), lines.end());
  std::vector<std::string> expected(6, "semop: EIDRM");
  expected.insert(expected.begin(), {"rmid: -1 EINVAL", "rmid: 0 "});
  CHECK(lines == expected);
}

TEST_CASE("sysv sem: IPC_SET gives the array a new owner and mode; only the owner, creator or uid 0 may") {
  auto run = run_text(machine(proc("owner", kArray + R"(,
      {"op": "begin", "name": "set"},
      {"op": "semctl", "semid": "s", "cmd": "IPC_SET", "uid": 2001, "mode": "0640"},
      {"op": "end", "name": "set"},
      {"op": "semctl", "semid": "s", "cmd": "IPC_STAT", "into": "st"},
      {"op": "print", "text": "uid {st.uid} gid {st.gid} mode {st.mode}"})",
                                   R"("uid": 1000, "gid": 1000, )") +
                              "," +
                              proc("other", R"(
      {"op": "semget", "key": 7, "nsems": 0, "mode": "0400", "into": "s"},
      {"op": "semctl", "semid": "s", "cmd": "IPC_SET", "mode": "0666"},
      {"op": "print", "text": "other: {errno}"},
      {"op": "semctl", "semid": "s", "cmd": "GETVAL", "semnum": 0},
      {"op": "print", "text": "read as group: {errno}"})",
                                   R"("uid": 3000, "gid": 1000, )") +
                              "," +
                              proc("new_owner", R"(
      {"op": "semget", "key": 7, "nsems": 0, "into": "s"},
      {"op": "semctl", "semid": "s", "cmd": "IPC_SET", "gid": 5},
      {"op": "print", "text": "new owner: {errno}"})",
                                   R"("uid": 2001, "gid": 2001, )")));
  // 0640 = 416: the group (gid 1000) may read, not write; the creator (uid 1000) stays allowed.
  CHECK(texts(run) == std::vector<std::string>{"uid 2001 gid 1000 mode 416", "other: EPERM",
                                               "read as group: ", "new owner: "});
  // trap 150 + the semid_ds copy (copy_setup 50 + 104 bytes at 8 a cycle = 13) + trap_exit 100.
  Cycles set = 0;
  for (const auto& r : run.kernel->records()) set = r.end - r.start;
  MESSAGE("IPC_SET: simulated " << set << " cycles, expected 150 + 50 + 13 + 100 = 313");
  CHECK(set == 313);
}

TEST_CASE("sysv sem and shm, msgctl: IPC_SET's fields are refused elsewhere, and an IPC_SET must change "
          "something") {
  const std::string semctl = R"({"op": "semctl", "semid": "s", "cmd": )";
  CHECK(load_error(machine(proc("p", kArray + "," + semctl + R"("IPC_SET"})"))) ==
        "test.json: at processes.0.script.1: IPC_SET changes nothing; give at least one of uid, gid, mode");
  CHECK(load_error(machine(proc("p", kArray + "," + semctl + R"("IPC_RMID", "uid": 3})"))) ==
        "test.json: at processes.0.script.1.uid: \"uid\" goes with IPC_SET only; drop it");
  CHECK(load_error(machine(proc("p", kArray + "," + semctl + R"("IPC_SET", "mode": "999"})"))).find("mode") !=
        std::string::npos);
  CHECK(load_error(machine(
            proc("p", R"({"op": "msgctl", "msqid": 1, "cmd": "IPC_STAT", "into": "x", "gid": 3})"))) ==
        "test.json: at processes.0.script.0.gid: \"gid\" goes with IPC_SET only; drop it");
  CHECK(load_error(machine(proc("p", R"({"op": "msgctl", "msqid": 1, "cmd": "IPC_RMID", "qbytes": 3})"))) ==
        "test.json: at processes.0.script.0.qbytes: \"qbytes\" goes with IPC_SET only; drop it");
}

TEST_CASE("sysv sem: semop is never restarted after a handler (EINTR even under SA_RESTART)") {
  auto run = run_text(machine(proc("p", kArray + R"(,
      {"op": "sigaction", "signal": "SIGUSR1", "restart": true, "handler": [{"op": "print", "text": "handler"}]},
      {"op": "semop", "semid": "s", "ops": [{"sem_num": 0, "sem_op": -1}]},
      {"op": "print", "text": "semop: {errno}"})") +
                              "," + proc("q", R"({"op": "kill", "process": "p", "signal": "SIGUSR1"})")));
  CHECK(texts(run) == std::vector<std::string>{"handler", "semop: EINTR"});
}

TEST_CASE("posix sem: uncontended sem_wait and sem_post stay in user space: one atomic_rmw each") {
  auto run = run_text(machine(proc("p", R"(
    {"op": "sem_init", "sem": "m", "value": 1},
    {"op": "begin", "name": "pair"},
    {"op": "sem_wait", "sem": "m"},
    {"op": "sem_post", "sem": "m"},
    {"op": "end", "name": "pair"},
    {"op": "sem_trywait", "sem": "m"},
    {"op": "sem_trywait", "sem": "m"},
    {"op": "print", "text": "second trywait: {errno}"},
    {"op": "sem_timedwait", "sem": "m", "timeout": "2us"},
    {"op": "print", "text": "timedwait: {errno}"},
    {"op": "sem_getvalue", "sem": "m"},
    {"op": "print", "text": "value {result}"},
    {"op": "sem_wait", "sem": "nothing"},
    {"op": "print", "text": "unknown: {errno}"})")));
  REQUIRE(run.kernel->records().size() == 1);
  CHECK(run.kernel->records()[0].end - run.kernel->records()[0].start == 40);
  CHECK(run.charged("p", "sem_wait", Primitive::trap_enter) == 0);
  CHECK(run.charged("p", "sem_post", Primitive::trap_enter) == 0);
  // The timed wait sleeps in a private futex (pshared 0: FUTEX_PRIVATE_FLAG): its key is the mm and
  // the address, no page lookup; hash_lookup 20, futex_hb_waiters_inc, futex_queue (waitqueue_op
  // 20), and after the timer futex_unqueue (lock_acquire 20 + list_op 10 + atomic_rmw 20).
  CHECK(run.charged("p", "sem_timedwait", Primitive::user_page_lookup) == 0);
  CHECK(run.charged("p", "sem_timedwait", Primitive::hash_lookup) == 20);
  CHECK(run.charged("p", "sem_timedwait", Primitive::waitqueue_op) == 20);
  CHECK(run.charged("p", "sem_timedwait", Primitive::lock_acquire) == 20);
  CHECK(run.charged("p", "sem_timedwait", Primitive::list_op) == 10);
  // The CAS, the registration as a waiter, futex_hb_waiters_inc, futex_hb_waiters_dec: 4 x 20.
  CHECK(run.charged("p", "sem_timedwait", Primitive::atomic_rmw) == 80);
  CHECK(texts(run) == std::vector<std::string>{"second trywait: EAGAIN", "timedwait: ETIMEDOUT", "value 0",
                                               "unknown: EINVAL"});
}

TEST_CASE(
    "posix sem: a named semaphore between processes: the waiter sleeps in the futex, the post wakes it") {
  auto run = run_text(machine(proc("waiter", R"(
      {"op": "sem_open", "name": "/s", "sem": "s"},
      {"op": "print", "text": "open before create: {errno}"},
      {"op": "sem_open", "name": "/s", "sem": "s", "flags": ["O_CREAT"], "value": 0},
      {"op": "sem_wait", "sem": "s"},
      {"op": "print", "text": "got it"})") +
                              "," + proc("poster", R"(
      {"op": "sleep", "time": "5us"},
      {"op": "sem_open", "name": "/s", "sem": "x", "flags": ["O_CREAT", "O_EXCL"]},
      {"op": "print", "text": "O_EXCL: {errno}"},
      {"op": "sem_open", "name": "/s", "sem": "x"},
      {"op": "sem_post", "sem": "x"},
      {"op": "sem_unlink", "name": "/s"},
      {"op": "sem_unlink", "name": "/s"},
      {"op": "print", "text": "unlink twice: {errno}"})")));
  CHECK(texts(run) == std::vector<std::string>{"open before create: ENOENT", "O_EXCL: EEXIST",
                                               "unlink twice: ENOENT", "got it"});
  // The post found a waiter: one futex wake system call (trap 150 + wakeup 100 + exit 100), on a
  // shared futex (a named semaphore: its page of /dev/shm): the key's page lookup 50, the hash 20,
  // the bucket's lock 20, the waiter unlinked (plist_del 10); atomics: the fetch-and-add,
  // futex_hb_waiters_pending, futex_hb_waiters_dec.
  CHECK(run.charged("poster", "sem_post", Primitive::atomic_rmw) == 60);
  CHECK(run.charged("poster", "sem_post", Primitive::trap_enter) == 100);
  CHECK(run.charged("poster", "sem_post", Primitive::wakeup) == 100);
  CHECK(run.charged("poster", "sem_post", Primitive::user_page_lookup) == 50);
  CHECK(run.charged("poster", "sem_post", Primitive::hash_lookup) == 20);
  CHECK(run.charged("poster", "sem_post", Primitive::lock_acquire) == 20);
  CHECK(run.charged("poster", "sem_post", Primitive::list_op) == 10);
  // The waiter: CAS, waiter registration, futex_hb_waiters_inc, and the CAS after the wake: 4
  // atomics; the shared key 50 + 20; futex_queue (waitqueue_op 20).
  CHECK(run.charged("waiter", "sem_wait", Primitive::atomic_rmw) == 80);
  CHECK(run.charged("waiter", "sem_wait", Primitive::user_page_lookup) == 50);
  CHECK(run.charged("waiter", "sem_wait", Primitive::hash_lookup) == 20);
  CHECK(run.charged("waiter", "sem_wait", Primitive::waitqueue_op) == 20);
}

TEST_CASE("posix sem: sem_wait interrupted by a handler: EINTR, or restarted under SA_RESTART") {
  auto scenario = [](bool restart) {
    return machine(proc("p", R"({"op": "sem_init", "sem": "s"},
      {"op": "sigaction", "signal": "SIGUSR1", "restart": )" +
                                 std::string(restart ? "true" : "false") +
                                 R"(, "handler": [{"op": "sem_post", "sem": "s"}]},
      {"op": "sem_wait", "sem": "s"},
      {"op": "print", "text": "sem_wait: {result} {errno}"})") +
                   "," + proc("q", R"({"op": "kill", "process": "p", "signal": "SIGUSR1"})"));
  };
  CHECK(texts(run_text(scenario(false))) == std::vector<std::string>{"sem_wait: -1 EINTR"});
  CHECK(texts(run_text(scenario(true))) == std::vector<std::string>{"sem_wait: 0 "});
}

TEST_CASE("posix sem: sem_timedwait interrupted by a handler: EINTR even under SA_RESTART") {
  // Its futex wait has a deadline: -ERESTART_RESTARTBLOCK, which a handler turns into EINTR
  // (Linux 6.18 with glibc, measured); the handler's post does not make the wait succeed.
  auto run = run_text(machine(proc("p", R"({"op": "sem_init", "sem": "s"},
      {"op": "sigaction", "signal": "SIGUSR1", "restart": true, "handler": [{"op": "sem_post", "sem": "s"}]},
      {"op": "sem_timedwait", "sem": "s", "timeout": "1s"},
      {"op": "print", "text": "sem_timedwait: {result} {errno}"})") +
                              "," + proc("q", R"({"op": "kill", "process": "p", "signal": "SIGUSR1"})")));
  CHECK(texts(run) == std::vector<std::string>{"sem_timedwait: -1 EINTR"});
}

TEST_CASE("posix sem: sem_close of a named semaphore is 0; of one sem_init made, EINVAL") {
  auto run = run_text(
      machine(proc("p", R"({"op": "sem_open", "name": "/sc", "sem": "s", "flags": ["O_CREAT"], "value": 1},
      {"op": "sem_close", "sem": "s"}, {"op": "print", "text": "named: {result} {errno}"},
      {"op": "sem_init", "sem": "u"},
      {"op": "sem_close", "sem": "u"}, {"op": "print", "text": "unnamed: {result} {errno}"})")));
  CHECK(texts(run) == std::vector<std::string>{"named: 0 ", "unnamed: -1 EINVAL"});
}

TEST_CASE("semaphores: load-time mistakes are named; pshared 1 needs a place in shared memory") {
  CHECK(load_error(machine(proc("p", R"({"op": "sem_init", "sem": "s", "pshared": 1})"))) ==
        "test.json: at processes.0.script.0.pshared: pshared 1 shares the semaphore between processes, so it "
        "lives in shared memory: give \"map\" (a mapping of a shared segment, from shmat or mmap) and "
        "\"offset\" (where its sem_t is), as a program places a sem_t");
  CHECK(load_error(machine(proc("p", R"({"op": "sem_init", "sem": "s", "map": "m"})"))) ==
        "test.json: at processes.0.script.0.map: a semaphore placed in shared memory is there to be shared "
        "between processes: set pshared 1 (a pshared 0 semaphore is the process's own: drop map and offset)");
  CHECK(
      load_error(machine(proc("p", R"({"op": "sem_init", "sem": "s", "map": "m", "pshared": 1})"))) ==
      "test.json: at processes.0.script.0.sem: a semaphore in shared memory is named by its place, as every "
      "process reaches it: drop \"sem\" and give the other sem ops \"map\" and \"offset\"");
  CHECK(
      load_error(machine(proc("p", R"({"op": "sem_init", "value": 1})"))) ==
      "test.json: at processes.0.script.0: give the semaphore's handle, \"sem\" (the sem_t variable of this "
      "process)");
  CHECK(load_error(machine(proc("p", R"({"op": "sem_init", "sem": "s", "offset": 8})"))) ==
        "test.json: at processes.0.script.0.offset: \"offset\" goes with pshared 1 and \"map\"; drop it");
  CHECK(load_error(machine(proc("p", R"({"op": "sem_wait"})"))) ==
        "test.json: at processes.0.script.0: which semaphore? give \"sem\" (a handle from sem_open or "
        "sem_init) "
        "or \"map\" and \"offset\" (a sem_t that sem_init placed in shared memory)");
  CHECK(load_error(machine(proc("p", R"({"op": "sem_post", "sem": "s", "map": "m"})"))) ==
        "test.json: at processes.0.script.0: give the semaphore as \"sem\" (a handle) or as \"map\" and "
        "\"offset\" (a sem_t in shared memory), not both");
  CHECK(
      load_error(machine(proc("p", R"({"op": "sem_getvalue", "sem": "s", "offset": 4})"))) ==
      "test.json: at processes.0.script.0.offset: \"offset\" goes with \"map\" (a sem_t in shared memory); a "
      "handle needs none: drop it");
  CHECK(
      load_error(machine(proc("p", R"({"op": "semctl", "semid": 0, "cmd": "SETALL", "values": 3})"))) ==
      "test.json: at processes.0.script.0.values: invalid value 3; expected a list of whole numbers, such as "
      "[1, 0]");
  CHECK(load_error(machine(proc("p", R"({"op": "sem_open", "name": "s", "sem": "s"})"))) ==
        "test.json: at processes.0.script.0.name: invalid semaphore name \"s\"; expected \"/name\": a slash, "
        "then at "
        "least one character, no other slash (sem_overview(7))");
  CHECK(load_error(machine(proc("p", R"({"op": "semop", "semid": 0, "ops": []})"))) ==
        "test.json: at processes.0.script.0.ops: semop needs at least one operation (nsops 0 is EINVAL)");
  CHECK(
      load_error(machine(proc(
          "p",
          R"({"op": "semop", "semid": 0, "ops": [{"sem_num": 0, "sem_op": 1, "sem_flg": ["SEM_FOO"]}]})"))) ==
      "test.json: at processes.0.script.0.ops.0.sem_flg.0: unknown flag \"SEM_FOO\"; "
      "accepted: IPC_NOWAIT, SEM_UNDO");
  CHECK(load_error(machine(proc("p", R"({"op": "semctl", "semid": 0, "cmd": "SETVAL"})"))) ==
        "test.json: at processes.0.script.0.value: SETVAL needs \"value\": the semaphore's new value");
}

TEST_CASE(
    "semaphores: sem_init with pshared 1 places a semaphore in shared memory, used by every process that "
    "maps it") {
  // The parent places the semaphore (value 0) at offset 64 of an anonymous shared mapping, which a
  // spawned child inherits; the child waits on it by its place, the parent posts.
  auto run = run_text(machine(proc("parent", R"(
    {"op": "mmap", "bytes": 4096, "flags": ["MAP_SHARED", "MAP_ANONYMOUS"], "as": "m"},
    {"op": "begin", "name": "init"},
    {"op": "sem_init", "map": "m", "offset": 64, "pshared": 1, "value": 0},
    {"op": "end", "name": "init"},
    {"op": "spawn", "process": "child"},
    {"op": "sleep", "time": "100us"},
    {"op": "sem_post", "map": "m", "offset": 64},
    {"op": "join", "process": "child"},
    {"op": "sem_getvalue", "map": "m", "offset": 64},
    {"op": "print", "text": "parent: value {result}"})") +
                              "," +
                              proc("child", R"(
    {"op": "sem_trywait", "map": "m", "offset": 64}, {"op": "print", "text": "child: trywait {errno}"},
    {"op": "sem_wait", "map": "m", "offset": 64}, {"op": "print", "text": "child: got it"},
    {"op": "sem_post", "map": "m", "offset": 64},
    {"op": "sem_wait", "map": "m", "offset": 0}, {"op": "print", "text": "child: nothing at 0: {errno}"},
    {"op": "sem_post", "map": "nope", "offset": 64}, {"op": "print", "text": "not reached"})",
                                   R"("spawned": true, )")));
  CHECK(texts(run) == std::vector<std::string>{"child: trywait EAGAIN", "child: got it",
                                               "child: nothing at 0: EINVAL", "parent: value 1"});
  // sem_init is a store into the fresh page: page_fault 1000 + page_zero 500 + the 8-byte word 1.
  auto& r = run.kernel->records();
  CHECK(r[0].end - r[0].start == 1501);
  // The child's first access (its trywait's CAS) faults the page into its own page tables (1000, no
  // zeroing); every atomic charges the word (1) and atomic_rmw (20).
  CHECK(run.charged("child", "sem_trywait", Primitive::page_fault) == 1000);
  CHECK(run.charged("child", "sem_trywait", Primitive::page_zero) == 0);
  CHECK(run.charged("child", "sem_trywait", Primitive::atomic_rmw) == 20);
  // sem_post outside any mapping: SIGSEGV, as the user-space atomic would be.
  CHECK(run.thread("child").process->killed_by == 11);
}

TEST_CASE("semaphores: an uncontended wait and post on a semaphore in shared memory cost 21 cycles each") {
  auto run = run_text(machine(proc("p", R"(
    {"op": "shmget", "key": 5, "bytes": 4096, "flags": ["IPC_CREAT"], "into": "id"},
    {"op": "shmat", "shmid": "id", "as": "m"},
    {"op": "sem_init", "map": "m", "offset": 8, "pshared": 1, "value": 1},
    {"op": "begin", "name": "wait"}, {"op": "sem_wait", "map": "m", "offset": 8}, {"op": "end", "name": "wait"},
    {"op": "begin", "name": "post"}, {"op": "sem_post", "map": "m", "offset": 8}, {"op": "end", "name": "post"},
    {"op": "sem_init", "map": "m", "offset": 6, "pshared": 1, "value": 1}, {"op": "print", "text": "misaligned {errno}"},
    {"op": "sem_destroy", "map": "m", "offset": 8}, {"op": "print", "text": "destroy {result}"},
    {"op": "sem_getvalue", "map": "m", "offset": 8}, {"op": "print", "text": "gone {errno}"})")));
  auto& r = run.kernel->records();
  CHECK(r[0].end - r[0].start == 21); // the word (1) + atomic_rmw (20): no system call
  CHECK(r[1].end - r[1].start == 21);
  CHECK(texts(run) == std::vector<std::string>{"misaligned EINVAL", "destroy 0", "gone EINVAL"});
}

TEST_CASE("semaphores: sem_open and shm_open names take {pid} and variables, checked again once filled") {
  auto run = run_text(machine(proc("p", R"(
    {"op": "sem_open", "name": "/s{pid}", "sem": "a", "flags": ["O_CREAT"], "value": 2},
    {"op": "sem_getvalue", "sem": "a"}, {"op": "print", "text": "opened {result}"},
    {"op": "set", "var": "bad", "value": "x/y"},
    {"op": "sem_open", "name": "/{bad}", "sem": "b", "flags": ["O_CREAT"]}, {"op": "print", "text": "slash {errno}"},
    {"op": "shm_open", "name": "/{bad}", "fd": "f", "flags": ["O_CREAT", "O_RDWR"]}, {"op": "print", "text": "shm slash {errno}"},
    {"op": "shm_open", "name": "/shm{pid}", "fd": "f", "flags": ["O_CREAT", "O_RDWR"]}, {"op": "print", "text": "shm {result}"},
    {"op": "shm_unlink", "name": "/shm{pid}"}, {"op": "print", "text": "unlinked {result}"},
    {"op": "sem_unlink", "name": "/s{pid}"}, {"op": "print", "text": "sem unlinked {result}"},
    {"op": "sem_unlink", "name": "/s{pid}"}, {"op": "print", "text": "again {errno}"})")));
  CHECK(texts(run) == std::vector<std::string>{"opened 2", "slash EINVAL", "shm slash EINVAL", "shm 0",
                                               "unlinked 0", "sem unlinked 0", "again ENOENT"});
}
