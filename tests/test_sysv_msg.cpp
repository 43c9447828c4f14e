// System V message queues: keys and ids, permissions, limits, type selection, blocking and
// wakeups, IPC_RMID, msgctl, ipcs, the sysv_msg channel, and every load-time mistake, with exact
// outcomes and cycle counts worked out from the teaching preset (1 GHz: a cycle is a nanosecond).
#include "error.hpp"
#include "harness.hpp"
#include "ipc.hpp"

#include <doctest/doctest.h>

#include <algorithm>

using namespace ipcsim;
using ipcsim::test::run_text;

namespace {

// One core under the teaching preset; `processes` is the JSON list's contents.
std::string machine(const std::string& processes, const std::string& extra = "") {
  return R"({"machine": {"cores": 1}, )" + extra + R"("processes": [)" + processes + "]}";
}

// A process with no working set, so that its dispatch costs exactly sched_pick 100 +
// context_restore 200 + address_space_switch 500 = 800 cycles.
std::string proc(const std::string& name, const std::string& script, const std::string& extra = "") {
  return R"({"name": ")" + name + R"(", "working_set_pages": 0, )" + extra + R"("script": [)" + script + "]}";
}

// What a thread printed, in order.
std::vector<std::string> printed(const ipcsim::test::Run& run, const std::string& thread) {
  std::vector<std::string> out;
  for (const auto& line : run.kernel->console())
    if (run.kernel->threads()[line.thread].display_name() == thread) out.push_back(line.text);
  return out;
}

std::vector<std::string> all_printed(const ipcsim::test::Run& run) {
  std::vector<std::string> out;
  for (const auto& line : run.kernel->console()) out.push_back(line.text);
  return out;
}

std::string load_error(const std::string& text) {
  try {
    run_text(text);
  } catch (const UserError& e) {
    return e.what();
  }
  return "<no error>";
}

const std::string kCreate = R"({"op": "msgget", "key": 42, "flags": ["IPC_CREAT"], "into": "q"})";
const std::string kOpen = R"({"op": "msgget", "key": 42, "into": "q"})";

} // namespace

TEST_CASE("sysv: ftok gives the material's key 0x27011c6c from the first file; ENOENT without the file") {
  auto run = run_text(machine(proc("p", R"(
    {"op": "ftok", "path": "/home/isscg/myshm", "id": "0x27", "into": "key"},
    {"op": "print", "text": "{errno}"},
    {"op": "creat", "path": "/home/isscg/myshm"},
    {"op": "begin", "name": "ftok"},
    {"op": "ftok", "path": "/home/isscg/myshm", "id": "0x27", "into": "key"},
    {"op": "end", "name": "ftok"},
    {"op": "print", "text": "IPC key = {key.hex} = {key} = {result}"},
    {"op": "ftok", "path": "/home/isscg/myshm", "id": 295, "into": "other"},
    {"op": "print", "text": "{other.hex}"})")));
  // 0x27 << 24 | 0x01 << 16 | 0x1c6c = 654384236. Project id 295 = 0x127: its low byte 0x27 counts.
  CHECK(printed(run, "p") ==
        std::vector<std::string>{"ENOENT", "IPC key = 0x27011c6c = 654384236 = 654384236", "0x27011c6c"});
  // ftok is one stat(): trap_enter 100 + syscall_dispatch 50 + trap_exit 100.
  CHECK(run.kernel->records()[0].end - run.kernel->records()[0].start == 250);
}

TEST_CASE("sysv: the queue's bytes count in a copy's footprint") {
  // Teaching with an 8 KiB L1 (8 B/cycle; L2 4 B/cycle: 0.125 cycles a byte more once a footprint is
  // 16 KiB). Four 4 KiB messages, then four receives. load_msg copies the k-th into a queue holding
  // 4096 (k - 1) bytes: footprint 4096 (k + 1), L2 share clamp((F - 8192) / 8192, 0, 1) = 0, 0.5, 1, 1
  // -> 0 + 256 + 512 + 512 = 1280 cycles. store_msg copies the j-th out of a queue that held
  // 4096 (5 - j) bytes with it: footprint 4096 (6 - j), shares 1, 1, 0.5, 0 -> 1280 again.
  auto run =
      run_text(R"({"machine": {"costs": {"preset": "teaching", "cache_l1_bytes": 8192}}, "processes": [)" +
               proc("p", R"(
    {"op": "msgget", "key": "IPC_PRIVATE", "into": "q"},
    {"op": "repeat", "count": 4, "body": [{"op": "msgsnd", "msqid": "q", "type": 1, "bytes": 4096}]},
    {"op": "repeat", "count": 4, "body": [{"op": "msgrcv", "msqid": "q", "bytes": 4096}]})") +
               "]}");
  CHECK(run.charged("p", "msgsnd", Primitive::copy_bytes_per_cycle_l2) == 1280);
  CHECK(run.charged("p", "msgrcv", Primitive::copy_bytes_per_cycle_l2) == 1280);
  CHECK(run.charged("p", "msgrcv", Primitive::copy_bytes_per_cycle) == 4 * 512);
}

TEST_CASE("sysv: msgget creates, finds, refuses with EEXIST and ENOENT; IPC_PRIVATE is always new") {
  auto run = run_text(machine(proc("p", R"(
    {"op": "msgget", "key": 42, "into": "a"},
    {"op": "print", "text": "open missing: {result} {errno}"},
    {"op": "msgget", "key": 42, "flags": ["IPC_CREAT"], "into": "a"},
    {"op": "print", "text": "create: {a} {result}"},
    {"op": "msgget", "key": 42, "flags": ["IPC_CREAT"], "into": "b"},
    {"op": "print", "text": "again: {b}"},
    {"op": "msgget", "key": "0x2a", "into": "b"},
    {"op": "print", "text": "open: {b}"},
    {"op": "msgget", "key": 42, "flags": ["IPC_CREAT", "IPC_EXCL"], "into": "c"},
    {"op": "print", "text": "exclusive: {result} {errno}"},
    {"op": "msgget", "key": "IPC_PRIVATE", "into": "d"},
    {"op": "msgget", "key": "IPC_PRIVATE", "flags": ["IPC_CREAT", "IPC_EXCL"], "into": "e"},
    {"op": "print", "text": "private: {d} {e}"})")));
  CHECK(printed(run, "p") == std::vector<std::string>{"open missing: -1 ENOENT", "create: 0 0", "again: 0",
                                                      "open: 0", "exclusive: -1 EEXIST", "private: 1 2"});
}

TEST_CASE("sysv: ids are seq * 32768 + an index handed out cyclically; a removed queue's id gives EINVAL") {
  // ipc_idr_alloc (Linux 5.1+): the index after the last one used, even when a lower one is free.
  auto run = run_text(machine(proc("p", R"(
    {"op": "msgget", "key": "IPC_PRIVATE", "into": "a"},
    {"op": "msgget", "key": "IPC_PRIVATE", "into": "b"},
    {"op": "msgctl", "msqid": "a", "cmd": "IPC_RMID"},
    {"op": "msgget", "key": "IPC_PRIVATE", "into": "c"},
    {"op": "msgget", "key": "IPC_PRIVATE", "into": "d"},
    {"op": "print", "text": "{a} {b} {c} {d}"},
    {"op": "msgctl", "msqid": "a", "cmd": "IPC_STAT", "into": "st"},
    {"op": "print", "text": "stale: {errno}"},
    {"op": "msgctl", "msqid": "c", "cmd": "IPC_RMID"},
    {"op": "msgget", "key": "IPC_PRIVATE", "into": "e"},
    {"op": "print", "text": "next: {e}"})")));
  CHECK(printed(run, "p") == std::vector<std::string>{"0 1 2 3", "stale: EINVAL", "next: 4"});
}

TEST_CASE("sysv: the index wraps to the lowest free one below max(in_use * 3 / 2, 64); seq then grows") {
  // Queue 0 stays; 63 more are made and removed (indices 1..63). With one queue in use the indices
  // stop below max(1 * 3 / 2, 64) = 64, so the next allocation wraps: index 0 is taken, 1 is free,
  // and 1 <= the last index 63 makes seq 1: id 32768 + 1. The next one is index 2, still seq 1.
  // The old id 1 (seq 0) is refused.
  auto run = run_text(machine(proc("p", R"(
    {"op": "msgget", "key": "IPC_PRIVATE", "into": "keep"},
    {"op": "repeat", "count": 63, "body": [{"op": "msgget", "key": "IPC_PRIVATE", "into": "q"},
                                           {"op": "msgctl", "msqid": "q", "cmd": "IPC_RMID"}]},
    {"op": "print", "text": "{keep} {q}"},
    {"op": "msgget", "key": "IPC_PRIVATE", "into": "w"},
    {"op": "msgget", "key": "IPC_PRIVATE", "into": "x"},
    {"op": "print", "text": "{w} {x}"},
    {"op": "msgctl", "msqid": 1, "cmd": "IPC_STAT", "into": "st"},
    {"op": "print", "text": "stale: {errno}"})")));
  CHECK(printed(run, "p") == std::vector<std::string>{"0 63", "32769 32770", "stale: EINVAL"});
}

TEST_CASE("sysv: with many queues in use the cycle is longer: in_use * 3 / 2") {
  // 100 queues held (indices 0..99, made while max_idx grew with in_use); removing 0..49 leaves
  // 50 in use: max_idx = max(75, 64) = 75, below the next index 100, so the allocation wraps to
  // index 0 with seq 1.
  auto run = run_text(machine(proc("p", R"(
    {"op": "repeat", "count": 100, "body": [{"op": "msgget", "key": "IPC_PRIVATE", "into": "q"}]},
    {"op": "print", "text": "{q}"},
    {"op": "set", "var": "i", "value": 0},
    {"op": "repeat", "count": 50, "body": [{"op": "msgctl", "msqid": "i", "cmd": "IPC_RMID"},
                                           {"op": "add", "var": "i", "value": 1}]},
    {"op": "msgget", "key": "IPC_PRIVATE", "into": "w"},
    {"op": "print", "text": "{w}"})")));
  CHECK(printed(run, "p") == std::vector<std::string>{"99", "32768"});
}

TEST_CASE("sysv: {msg.text} is kept as sent, even for a 0-byte message; only MSG_NOERROR cuts it") {
  auto run = run_text(machine(proc("p", kCreate + R"(,
    {"op": "msgsnd", "msqid": "q", "type": 1, "bytes": 0, "text": "zero"},
    {"op": "msgsnd", "msqid": "q", "type": 1, "bytes": 2, "text": "longer text"},
    {"op": "msgsnd", "msqid": "q", "type": 1, "bytes": 8, "text": "eight bytes"},
    {"op": "msgrcv", "msqid": "q", "bytes": 64, "flags": ["IPC_NOWAIT"]},
    {"op": "print", "text": "{result} {msg.text}"},
    {"op": "msgrcv", "msqid": "q", "bytes": 2, "flags": ["MSG_NOERROR"]},
    {"op": "print", "text": "{result} {msg.text}"},
    {"op": "msgrcv", "msqid": "q", "bytes": 3, "flags": ["MSG_NOERROR"]},
    {"op": "print", "text": "{result} {msg.text}"},
    {"op": "send", "channel": "c", "bytes": 0, "text": "zero"},
    {"op": "recv", "channel": "c", "bytes": 64},
    {"op": "print", "text": "channel: {result} {msg.text}"})"),
                              R"("channels": [{"name": "c", "mechanism": "sysv_msg"}], )"));
  // The 2-byte message fits its 2-byte buffer: not truncated, its text stays whole; the 8-byte one
  // is cut to 3 bytes by MSG_NOERROR, and its text with it.
  CHECK(printed(run, "p") == std::vector<std::string>{"0 zero", "2 longer text", "3 eig", "channel: 0 zero"});
}

TEST_CASE("sysv: MSGMNI: the 32001st queue gives ENOSPC") {
  auto run = run_text(machine(proc("p", R"(
    {"op": "repeat", "count": 32000, "body": [{"op": "msgget", "key": "IPC_PRIVATE", "into": "q"}]},
    {"op": "print", "text": "last {q}"},
    {"op": "msgget", "key": "IPC_PRIVATE", "into": "q"},
    {"op": "print", "text": "{result} {errno}"},
    {"op": "msgget", "key": 7, "flags": ["IPC_CREAT"], "into": "q"},
    {"op": "print", "text": "{result} {errno}"})")));
  CHECK(printed(run, "p") == std::vector<std::string>{"last 31999", "-1 ENOSPC", "-1 ENOSPC"});
}

TEST_CASE("sysv: a send and a receive cost the trap, the dispatch, the copy and the return") {
  auto run = run_text(machine(proc("p", kCreate + R"(,
    {"op": "begin", "name": "snd"},
    {"op": "msgsnd", "msqid": "q", "type": 1, "bytes": 512},
    {"op": "end", "name": "snd"},
    {"op": "begin", "name": "rcv"},
    {"op": "msgrcv", "msqid": "q", "bytes": 512},
    {"op": "end", "name": "rcv"},
    {"op": "begin", "name": "stat"},
    {"op": "msgctl", "msqid": "q", "cmd": "IPC_STAT", "into": "st"},
    {"op": "end", "name": "stat"},
    {"op": "begin", "name": "set"},
    {"op": "msgctl", "msqid": "q", "cmd": "IPC_SET", "qbytes": 100},
    {"op": "end", "name": "set"},
    {"op": "begin", "name": "rmid"},
    {"op": "msgctl", "msqid": "q", "cmd": "IPC_RMID"},
    {"op": "end", "name": "rmid"})")));
  const auto& r = run.kernel->records();
  REQUIRE(r.size() == 5);
  // msgsnd: trap_enter 100 + syscall_dispatch 50 + ipc_id_lookup 50 + ipc_lock_object 20 + ipcperms
  // (permission_check 20 + security_hook 10) + security_msg_queue_msgsnd 10 + load_msg (slab_alloc
  // 100 + security_msg_msg_alloc 10 + copy_setup 50 + 512 / 8 = 64) + list_add_tail 10 + trap_exit
  // 100 = 594.
  CHECK(r[0].end - r[0].start == 594);
  // msgrcv: 150 + 50 + 20 + 20 + 10 + security_msg_queue_msgrcv 10 + list_del 10 + store_msg (50 +
  // 64) + free_msg's security_msg_msg_free 10 + 100 = 494.
  CHECK(r[1].end - r[1].start == 494);
  CHECK(run.charged("p", "msgsnd", Primitive::slab_alloc) == 100);
  CHECK(run.charged("p", "msgsnd", Primitive::security_hook) == 30);
  CHECK(run.charged("p", "msgrcv", Primitive::security_hook) == 30);
  // IPC_STAT and IPC_SET copy a struct msqid_ds (120 bytes): 250 + 50 + 15 = 315.
  CHECK(r[2].end - r[2].start == 315);
  CHECK(r[3].end - r[3].start == 315);
  CHECK(r[4].end - r[4].start == 250);
  CHECK(run.charged("p", "msgsnd", Primitive::copy_setup) == 50);
  CHECK(run.charged("p", "msgsnd", Primitive::copy_bytes_per_cycle) == 64);
  CHECK(run.charged("p", "msgrcv", Primitive::copy_bytes_per_cycle) == 64);
  CHECK(run.charged("p", "msgctl", Primitive::copy_bytes_per_cycle) == 30);
}

TEST_CASE("sysv: IPC_STAT reports counts, pids, times in ns, owner and mode") {
  // Dispatch 800. msgget: enters at 800 + 150 = 950 (ctime), returns at 1050. msgsnd of 10 bytes:
  // 1050 + 150 + the entry (ipc_id_lookup 50, lock 20, ipcperms 20 + 10, msgsnd hook 10) 110 +
  // load_msg (slab 100 + hook 10 + copy 50 + 2) = 1472 (stime), list_op 10, returns at 1582.
  // msgsnd of 20 bytes: 1582 + 150 + 110 + 110 + 53 = 2005 (stime), returns at 2115. msgrcv: 2115
  // + 150 + the entry (50 + 20 + 20 + 10) + msgrcv hook 10 + list_del 10 = 2385 (rtime; the copy
  // out follows).
  auto run = run_text(machine(proc("p", kCreate + R"(,
    {"op": "msgsnd", "msqid": "q", "type": 1, "bytes": 10},
    {"op": "msgsnd", "msqid": "q", "type": 1, "bytes": 20},
    {"op": "msgrcv", "msqid": "q", "bytes": 100},
    {"op": "msgctl", "msqid": "q", "cmd": "IPC_STAT", "into": "st"},
    {"op": "print", "text": "{st.qnum} {st.cbytes} {st.qbytes} {st.lspid} {st.lrpid}"},
    {"op": "print", "text": "{st.ctime} {st.stime} {st.rtime}"},
    {"op": "print", "text": "{st.uid} {st.gid} {st.mode} {st.perms}"})",
                                   R"("uid": 1234, "gid": 99, )")));
  CHECK(printed(run, "p") ==
        std::vector<std::string>{"1 20 16384 100 100", "950 2005 2385", "1234 99 438 666"});
}

TEST_CASE("sysv: msgsnd refuses a type below 1, a size above MSGMAX or below 0, an unknown id: EINVAL") {
  auto run = run_text(machine(proc("p", kCreate + R"(,
    {"op": "msgsnd", "msqid": "q", "type": 0, "bytes": 8},
    {"op": "print", "text": "type 0: {errno}"},
    {"op": "msgsnd", "msqid": "q", "type": -3, "bytes": 8},
    {"op": "print", "text": "type -3: {errno}"},
    {"op": "msgsnd", "msqid": "q", "type": 1, "bytes": 8193},
    {"op": "print", "text": "8193 bytes: {errno}"},
    {"op": "msgsnd", "msqid": "q", "type": 1, "bytes": -1},
    {"op": "print", "text": "-1 bytes: {errno}"},
    {"op": "msgsnd", "msqid": 999, "type": 1, "bytes": 8},
    {"op": "print", "text": "id 999: {errno}"},
    {"op": "msgsnd", "msqid": -1, "type": 1, "bytes": 8},
    {"op": "print", "text": "id -1: {errno}"},
    {"op": "set", "var": "word", "value": "abc"},
    {"op": "msgsnd", "msqid": "word", "type": 1, "bytes": 8},
    {"op": "print", "text": "a word: {errno}"},
    {"op": "msgsnd", "msqid": "q", "type": 1, "bytes": "8KiB"},
    {"op": "print", "text": "8192 bytes: {result}"})")));
  CHECK(printed(run, "p") == std::vector<std::string>{"type 0: EINVAL", "type -3: EINVAL",
                                                      "8193 bytes: EINVAL", "-1 bytes: EINVAL",
                                                      "id 999: EINVAL", "id -1: EINVAL", "a word: EINVAL",
                                                      "8192 bytes: 0"});
  // Only the valid send copied anything: 50 + 8192 / 8.
  CHECK(run.charged("p", "msgsnd", Primitive::copy_bytes_per_cycle) == 1024);
}

TEST_CASE("sysv: msgrcv selects by type: 0 the first, > 0 that type, MSG_EXCEPT any other, < 0 the lowest") {
  auto run = run_text(machine(proc("p", kCreate + R"(,
    {"op": "msgsnd", "msqid": "q", "type": 3, "bytes": 8, "text": "a"},
    {"op": "msgsnd", "msqid": "q", "type": 2, "bytes": 8, "text": "b"},
    {"op": "msgsnd", "msqid": "q", "type": 1, "bytes": 8, "text": "c"},
    {"op": "msgsnd", "msqid": "q", "type": 2, "bytes": 8, "text": "d"},
    {"op": "msgsnd", "msqid": "q", "type": 1, "bytes": 8, "text": "e"},
    {"op": "msgsnd", "msqid": "q", "type": 5, "bytes": 8, "text": "f"},
    {"op": "msgrcv", "msqid": "q", "bytes": 8, "type": 2},
    {"op": "print", "text": "type 2: {msg.type} {msg.text}"},
    {"op": "msgrcv", "msqid": "q", "bytes": 8, "type": -4},
    {"op": "print", "text": "type -4: {msg.type} {msg.text}"},
    {"op": "msgrcv", "msqid": "q", "bytes": 8, "type": 3, "flags": ["MSG_EXCEPT"]},
    {"op": "print", "text": "not 3: {msg.type} {msg.text}"},
    {"op": "msgrcv", "msqid": "q", "bytes": 8, "type": -2},
    {"op": "print", "text": "type -2: {msg.type} {msg.text}"},
    {"op": "msgrcv", "msqid": "q", "bytes": 8, "type": -2, "flags": ["IPC_NOWAIT"]},
    {"op": "print", "text": "type -2: {errno}"},
    {"op": "msgrcv", "msqid": "q", "bytes": 8, "type": 0, "flags": ["MSG_EXCEPT"]},
    {"op": "print", "text": "type 0 with MSG_EXCEPT: {msg.type} {msg.text}"},
    {"op": "msgrcv", "msqid": "q", "bytes": 8},
    {"op": "print", "text": "type 0: {msg.type} {msg.text} {msg.bytes} {msg.sender} {result}"},
    {"op": "msgrcv", "msqid": "q", "bytes": 8, "flags": ["IPC_NOWAIT"]},
    {"op": "print", "text": "empty: {result} {errno}"})")));
  // Queue: 3a 2b 1c 2d 1e 5f. Type 2 takes b; -4 the first of the lowest type, c; MSG_EXCEPT 3 the
  // first not of type 3, d; -2 then e; nothing of type <= 2 is left; type 0 ignores MSG_EXCEPT: a.
  CHECK(printed(run, "p") == std::vector<std::string>{"type 2: 2 b", "type -4: 1 c", "not 3: 2 d",
                                                      "type -2: 1 e", "type -2: ENOMSG",
                                                      "type 0 with MSG_EXCEPT: 3 a", "type 0: 5 f 8 p 8",
                                                      "empty: -1 ENOMSG"});
}

TEST_CASE("sysv: a message longer than the buffer gives E2BIG and stays; MSG_NOERROR truncates it") {
  auto run = run_text(machine(proc("p", kCreate + R"(,
    {"op": "msgsnd", "msqid": "q", "type": 1, "bytes": 100, "text": "abcdefghij"},
    {"op": "msgrcv", "msqid": "q", "bytes": 50},
    {"op": "print", "text": "{result} {errno}"},
    {"op": "msgctl", "msqid": "q", "cmd": "IPC_STAT", "into": "st"},
    {"op": "print", "text": "{st.qnum} {st.cbytes}"},
    {"op": "msgrcv", "msqid": "q", "bytes": 4, "flags": ["MSG_NOERROR"]},
    {"op": "print", "text": "{result} {msg.bytes} {msg.text}"},
    {"op": "msgctl", "msqid": "q", "cmd": "IPC_STAT", "into": "st"},
    {"op": "print", "text": "{st.qnum} {st.cbytes}"})")));
  CHECK(printed(run, "p") == std::vector<std::string>{"-1 E2BIG", "1 100", "4 4 abcd", "0 0"});
  // Only the truncated 4 bytes were copied out: copy_setup 50 + 1.
  CHECK(run.charged("p", "msgrcv", Primitive::copy_setup) == 50);
  CHECK(run.charged("p", "msgrcv", Primitive::copy_bytes_per_cycle) == 1);
}

TEST_CASE("sysv: a full queue (MSGMNB) blocks the sender, or gives EAGAIN; a receive lets it in") {
  // s fills the queue with two 8192-byte messages, fails a non-blocking one, then blocks.
  // r arrives at 100 us and takes one message: its receive wakes s, whose send then fits.
  auto run = run_text(machine(proc("s", kCreate + R"(,
    {"op": "msgsnd", "msqid": "q", "type": 1, "bytes": 8192},
    {"op": "msgsnd", "msqid": "q", "type": 1, "bytes": 8192},
    {"op": "msgsnd", "msqid": "q", "type": 1, "bytes": 1, "flags": ["IPC_NOWAIT"]},
    {"op": "print", "text": "nowait: {errno}"},
    {"op": "msgsnd", "msqid": "q", "type": 2, "bytes": 1, "timeout": "1us"},
    {"op": "print", "text": "timeout: {errno}"},
    {"op": "msgsnd", "msqid": "q", "type": 3, "bytes": 8192},
    {"op": "print", "text": "sent: {result}"},
    {"op": "msgctl", "msqid": "q", "cmd": "IPC_STAT", "into": "st"},
    {"op": "print", "text": "{st.qnum} {st.cbytes}"})") +
                              "," +
                              proc("r", kOpen + R"(,
    {"op": "msgrcv", "msqid": "q", "bytes": 8192},
    {"op": "print", "text": "got {result}"})",
                                   R"("arrival": "100us", )")));
  CHECK(all_printed(run) ==
        std::vector<std::string>{"nowait: EAGAIN", "timeout: ETIMEDOUT", "got 8192", "sent: 0", "2 16384"});
  // The blocked send copied its message in once, before it slept: 3 sends of 8192 + 2 of 1 byte.
  CHECK(run.charged("s", "msgsnd", Primitive::copy_bytes_per_cycle) == 3 * 1024 + 2 * 1);
  CHECK(run.charged("r", "msgrcv", Primitive::wakeup) == 100);
  CHECK(run.account("s").blocked_cycles > 90000);
}

TEST_CASE("sysv: the queue also holds at most qbytes messages (Linux's msg_fits)") {
  auto run = run_text(machine(proc("p", kCreate + R"(,
    {"op": "msgctl", "msqid": "q", "cmd": "IPC_SET", "qbytes": 2},
    {"op": "msgsnd", "msqid": "q", "type": 1, "bytes": 0},
    {"op": "msgsnd", "msqid": "q", "type": 1, "bytes": 0},
    {"op": "print", "text": "two: {result}"},
    {"op": "msgsnd", "msqid": "q", "type": 1, "bytes": 0, "flags": ["IPC_NOWAIT"]},
    {"op": "print", "text": "third: {errno}"})")));
  CHECK(printed(run, "p") == std::vector<std::string>{"two: 0", "third: EAGAIN"});
}

TEST_CASE("sysv: a send hands the message to the first sleeping receiver that accepts it") {
  // r1 waits for type 2, r2 for any type with a 16-byte buffer, r3 for any type. s sends type 1
  // (512 bytes): r1 does not match; r2 matches but its buffer is too small: woken with E2BIG; r3
  // gets it directly, so the queue stays empty and lrpid is r3's pid (102). Then type 2 goes to r1.
  std::string receiver_script = R"({"op": "msgget", "key": 42, "flags": ["IPC_CREAT"], "into": "q"},
    {"op": "msgrcv", "msqid": "q", "bytes": BUF, "type": TYPE},
    {"op": "print", "text": "{result} {errno} {msg.type} {msg.text}"})";
  auto script = [&](const std::string& buf, const std::string& type) {
    std::string s = receiver_script;
    s.replace(s.find("BUF"), 3, buf);
    s.replace(s.find("TYPE"), 4, type);
    return s;
  };
  auto run = run_text(machine(proc("r1", script("512", "2")) + "," + proc("r2", script("16", "0")) + "," +
                              proc("r3", script("512", "0")) + "," +
                              proc("s", kOpen + R"(,
    {"op": "msgsnd", "msqid": "q", "type": 1, "bytes": 512, "text": "one"},
    {"op": "msgctl", "msqid": "q", "cmd": "IPC_STAT", "into": "st"},
    {"op": "print", "text": "queued {st.qnum}, lrpid {st.lrpid}"},
    {"op": "msgsnd", "msqid": "q", "type": 2, "bytes": 512, "text": "two"})",
                                   R"("arrival": "1ms", )")));
  CHECK(printed(run, "s") == std::vector<std::string>{"queued 0, lrpid 102"});
  CHECK(printed(run, "r1") == std::vector<std::string>{"512  2 two"});
  CHECK(printed(run, "r2") == std::vector<std::string>{"-1 E2BIG 0 "});
  CHECK(printed(run, "r3") == std::vector<std::string>{"512  1 one"});
  // Three wakeups, none for r1 on the first send.
  CHECK(run.charged("s", "msgsnd", Primitive::wakeup) == 300);
}

TEST_CASE(
    "sysv: IPC_RMID wakes every blocked sender and receiver with EIDRM; the queue outlives its creator") {
  auto run = run_text(machine(proc("owner", kCreate + R"(,
    {"op": "msgsnd", "msqid": "q", "type": 1, "bytes": 8192},
    {"op": "msgsnd", "msqid": "q", "type": 1, "bytes": 8192})") +
                              "," +
                              proc("rc", kOpen + R"(,
    {"op": "msgrcv", "msqid": "q", "bytes": 8192, "type": 9},
    {"op": "print", "text": "receiver: {result} {errno}"})",
                                   R"("arrival": "10us", )") +
                              "," +
                              proc("sd", kOpen + R"(,
    {"op": "msgsnd", "msqid": "q", "type": 1, "bytes": 8},
    {"op": "print", "text": "sender: {result} {errno}"},
    {"op": "msgsnd", "msqid": "q", "type": 1, "bytes": 8},
    {"op": "print", "text": "after: {errno}"})",
                                   R"("arrival": "10us", )") +
                              "," +
                              proc("rm", kOpen + R"(,
    {"op": "msgctl", "msqid": "q", "cmd": "IPC_RMID"},
    {"op": "msgget", "key": 42, "flags": ["IPC_CREAT"], "into": "q"},
    {"op": "print", "text": "new id {q}"})",
                                   R"("arrival": "1ms", "uid": 0, )")));
  // The owner exited long before: its queue stayed. rm (root) removes it at 1 ms.
  // The new queue takes the next index, 1 (seq 0): id 1.
  CHECK(all_printed(run) ==
        std::vector<std::string>{"new id 1", "receiver: -1 EIDRM", "sender: -1 EIDRM", "after: EINVAL"});
  CHECK(run.charged("rm", "msgctl", Primitive::wakeup) == 200);
}

TEST_CASE("sysv: two cores removing one queue at once: one IPC_RMID succeeds, the other gets EINVAL") {
  // The first remover's wakes let the other core run; the id must already be gone by then, or both
  // would remove (and free) the same queue. Linux's freeque() removes the id before waking.
  std::string receiver = kOpen + R"(,
    {"op": "msgrcv", "msqid": "q", "bytes": 8, "type": 1},
    {"op": "print", "text": "receiver: {errno}"})";
  std::string remover = kOpen + R"(,
    {"op": "msgctl", "msqid": "q", "cmd": "IPC_RMID"},
    {"op": "print", "text": "rmid: {result} {errno}"})";
  std::string processes = proc("owner", kCreate);
  for (int i = 0; i < 6; ++i)
    processes += "," + proc("r" + std::to_string(i), receiver, R"("arrival": "10us", )");
  processes += "," + proc("a", remover, R"("arrival": "1ms", "affinity": [0], )");
  processes += "," + proc("b", remover, R"("arrival": "1ms", "affinity": [1], )");
  auto run = run_text(R"({"machine": {"cores": 2}, "processes": [)" + processes + "]}");
  std::vector<std::string> rmid;
  for (const auto& who : {"a", "b"})
    for (const auto& line : printed(run, who)) rmid.push_back(line);
  std::sort(rmid.begin(), rmid.end());
  CHECK(rmid == std::vector<std::string>{"rmid: -1 EINVAL", "rmid: 0 "});
  for (int i = 0; i < 6; ++i)
    CHECK(printed(run, "r" + std::to_string(i)) == std::vector<std::string>{"receiver: EIDRM"});
  CHECK(run.charged("a", "msgctl", Primitive::wakeup) + run.charged("b", "msgctl", Primitive::wakeup) == 600);
}

TEST_CASE(
    "sysv: IPC_RMID with messages in the queue: they are dropped before the wakes let other cores look") {
  // Was a bug: the dropped messages were recorded after the wakes, and a core checking the
  // invariants in between (a waiter woken on another core) found them sent but nowhere.
  std::string owner = kCreate + R"(,
    {"op": "msgsnd", "msqid": "q", "type": 1, "bytes": 8192},
    {"op": "msgsnd", "msqid": "q", "type": 1, "bytes": 8192},
    {"op": "sleep", "time": "20us"},
    {"op": "msgctl", "msqid": "q", "cmd": "IPC_RMID"})";
  std::string receiver = kOpen + R"(,
    {"op": "msgrcv", "msqid": "q", "bytes": 8, "type": 9},
    {"op": "print", "text": "receiver: {errno}"})";
  ipcsim::LoadOptions checked;
  checked.debug_invariants = true;
  std::string sender = kOpen + R"(,
    {"op": "msgsnd", "msqid": "q", "type": 1, "bytes": 8},
    {"op": "print", "text": "sender: {errno}"})";
  auto run = run_text(R"({"machine": {"cores": 3}, "processes": [)" + proc("owner", owner) + "," +
                          proc("r", receiver, R"("arrival": "10us", )") + "," +
                          proc("s", sender, R"("arrival": "10us", )") + "]}",
                      checked);
  CHECK(run.kernel->runtime_error().empty());
  CHECK(printed(run, "r") == std::vector<std::string>{"receiver: EIDRM"});
  CHECK(printed(run, "s") == std::vector<std::string>{"sender: EIDRM"});
}

TEST_CASE("sysv: permissions: owner, group and other bits; uid 0 passes; msgget checks the mode asked") {
  std::string setup = R"({"op": "msgget", "key": 5, "flags": ["IPC_CREAT"], "mode": "0640", "into": "q"},
    {"op": "msgsnd", "msqid": "q", "type": 1, "bytes": 8})";
  std::string probe = R"({"op": "msgget", "key": 5, "into": "x"},
    {"op": "print", "text": "msgget 0666: {errno}"},
    {"op": "msgget", "key": 5, "mode": "0440", "into": "x"},
    {"op": "print", "text": "msgget 0440: {errno}"},
    {"op": "msgget", "key": 5, "mode": "0", "into": "q"},
    {"op": "msgctl", "msqid": "q", "cmd": "IPC_STAT", "into": "st"},
    {"op": "print", "text": "stat: {errno}"},
    {"op": "msgsnd", "msqid": "q", "type": 1, "bytes": 8, "flags": ["IPC_NOWAIT"]},
    {"op": "print", "text": "send: {errno}"},
    {"op": "msgrcv", "msqid": "q", "bytes": 8, "type": 7, "flags": ["IPC_NOWAIT"]},
    {"op": "print", "text": "receive: {errno}"})";
  auto run = run_text(machine(proc("owner", setup) + "," +
                              proc("group", probe, R"("arrival": "1ms", "uid": 2001, "gid": 1000, )") + "," +
                              proc("other", probe, R"("arrival": "2ms", "uid": 2002, "gid": 2002, )") + "," +
                              proc("root", probe, R"("arrival": "3ms", "uid": 0, "gid": 0, )")));
  CHECK(printed(run, "group") == std::vector<std::string>{"msgget 0666: EACCES", "msgget 0440: ", "stat: ",
                                                          "send: EACCES", "receive: ENOMSG"});
  CHECK(printed(run, "other") == std::vector<std::string>{"msgget 0666: EACCES", "msgget 0440: EACCES",
                                                          "stat: EACCES", "send: EACCES", "receive: EACCES"});
  CHECK(printed(run, "root") ==
        std::vector<std::string>{"msgget 0666: ", "msgget 0440: ", "stat: ", "send: ", "receive: ENOMSG"});
}

TEST_CASE(
    "sysv: IPC_SET and IPC_RMID need the owner, the creator or uid 0; qbytes above MSGMNB needs uid 0") {
  auto run = run_text(machine(proc("creator", kCreate + R"(,
    {"op": "msgctl", "msqid": "q", "cmd": "IPC_SET", "qbytes": 16385},
    {"op": "print", "text": "raise: {errno}"},
    {"op": "msgctl", "msqid": "q", "cmd": "IPC_SET", "uid": 3000, "gid": 3000, "mode": "0600"},
    {"op": "msgctl", "msqid": "q", "cmd": "IPC_STAT", "into": "st"},
    {"op": "print", "text": "stat as creator: {errno}"},
    {"op": "msgctl", "msqid": "q", "cmd": "IPC_SET", "qbytes": 100},
    {"op": "print", "text": "creator sets: {errno}"})") +
                              "," +
                              proc("stranger", kOpen + R"(,
    {"op": "msgctl", "msqid": "q", "cmd": "IPC_SET", "mode": "0666"},
    {"op": "print", "text": "set: {errno}"},
    {"op": "msgctl", "msqid": "q", "cmd": "IPC_RMID"},
    {"op": "print", "text": "rmid: {errno}"})",
                                   R"("arrival": "1ms", "uid": 2000, )") +
                              "," +
                              proc("newowner", kOpen + R"(,
    {"op": "msgctl", "msqid": "q", "cmd": "IPC_STAT", "into": "st"},
    {"op": "print", "text": "{st.uid} {st.gid} {st.perms} {st.qbytes}"})",
                                   R"("arrival": "2ms", "uid": 3000, )") +
                              "," +
                              proc("root", kOpen + R"(,
    {"op": "msgctl", "msqid": "q", "cmd": "IPC_SET", "qbytes": 1048576},
    {"op": "msgctl", "msqid": "q", "cmd": "IPC_STAT", "into": "st"},
    {"op": "print", "text": "root: {st.qbytes}"},
    {"op": "msgctl", "msqid": "q", "cmd": "IPC_RMID"},
    {"op": "print", "text": "rmid: {result}"})",
                                   R"("arrival": "3ms", "uid": 0, )")));
  // The creator keeps control after giving the queue away (cuid), but mode 0600 for owner 3000
  // leaves it no read permission.
  CHECK(printed(run, "creator") ==
        std::vector<std::string>{"raise: EPERM", "stat as creator: ", "creator sets: "});
  CHECK(printed(run, "stranger") == std::vector<std::string>{"set: EPERM", "rmid: EPERM"});
  CHECK(printed(run, "newowner") == std::vector<std::string>{"3000 3000 600 100"});
  CHECK(printed(run, "root") == std::vector<std::string>{"root: 1048576", "rmid: 0"});
}

TEST_CASE("sysv: a larger qbytes (IPC_SET) lets a blocked sender in") {
  auto run = run_text(machine(proc("s", kCreate + R"(,
    {"op": "msgsnd", "msqid": "q", "type": 1, "bytes": 8192},
    {"op": "msgsnd", "msqid": "q", "type": 1, "bytes": 8192},
    {"op": "msgsnd", "msqid": "q", "type": 1, "bytes": 100},
    {"op": "print", "text": "sent {result}"})") +
                              "," +
                              proc("admin", kOpen + R"(,
    {"op": "msgctl", "msqid": "q", "cmd": "IPC_SET", "qbytes": 16484},
    {"op": "print", "text": "set {result}"})",
                                   R"("arrival": "1ms", "uid": 0, )")));
  CHECK(all_printed(run) == std::vector<std::string>{"set 0", "sent 0"});
}

TEST_CASE("sysv: a blocked receive gives up with ETIMEDOUT after its timeout") {
  // Dispatch 800, msgget 250: the receive enters at 1050 + 150 = 1200 (its timer at 2200), takes
  // the entry (ipc_id_lookup 50, lock 20, ipcperms 20 + 10) -> 1300 and sleeps (waitqueue_op 20,
  // context_save 200). At 2200: timer_interrupt 500 + wakeup 100, idle_exit 1000, sched_pick 100 +
  // context_restore 200 (same address space: no switch) -> 4100; after the sleep the lock and
  // ipcperms again (50), then trap_exit 100: it returns at 4250.
  auto run = run_text(machine(proc("p", kCreate + R"(,
    {"op": "msgrcv", "msqid": "q", "bytes": 8, "timeout": "1us"},
    {"op": "print", "text": "{result} {errno}"})")));
  CHECK(printed(run, "p") == std::vector<std::string>{"-1 ETIMEDOUT"});
  CHECK(run.kernel->console()[0].at == 4250);
}

TEST_CASE("sysv: a receiver waiting for ever is named in the deadlock report") {
  auto run = run_text(machine(proc("p", kCreate + R"(, {"op": "msgrcv", "msqid": "q", "bytes": 8})")));
  const DeadlockReport* report = run.kernel->deadlock();
  REQUIRE(report != nullptr);
  REQUIRE(report->waiters.size() == 1);
  CHECK(report->waiters[0].waits_on == "msg queue 0: waiting for a message");
}

TEST_CASE("sysv: ipcs prints the ipcs -q table; the end-of-run listing shows the live queues") {
  auto run =
      run_text(machine(proc("p", R"({"op": "msgget", "key": 654384236, "flags": ["IPC_CREAT"], "into": "q"},
    {"op": "msgsnd", "msqid": "q", "type": 1, "bytes": 512},
    {"op": "msgget", "key": "IPC_PRIVATE", "mode": "0600", "into": "r"},
    {"op": "ipcs"})",
                            R"("uid": 0, )")));
  CHECK(printed(run, "p") ==
        std::vector<std::string>{"----- Message Queues -----",
                                 "key        msqid      owner      perms      used-bytes   messages",
                                 "0x27011c6c 0          root       666        512          1",
                                 "0x00000000 1          root       600        0            0"});
  auto tables = run.kernel->ipc_listing();
  REQUIRE(tables.size() == 1);
  CHECK(tables[0].title == "Message Queues");
  CHECK(tables[0].rows ==
        std::vector<std::vector<std::string>>{{"0x27011c6c", "0", "root", "666", "512", "1"},
                                              {"0x00000000", "1", "root", "600", "0", "0"}});
}

// ---- The channel ------------------------------------------------------------------------------

TEST_CASE("sysv: the sysv_msg channel carries typed messages over a private queue") {
  auto run = run_text(machine(proc("s", R"(
    {"op": "send", "channel": "c", "bytes": 64, "type": 3, "text": "hi"},
    {"op": "send", "channel": "c", "bytes": 9000},
    {"op": "print", "text": "too big: {errno}"})") +
                                  "," + proc("r", R"(
    {"op": "recv", "channel": "c", "bytes": 64},
    {"op": "print", "text": "{result} {msg.type} {msg.text} {msg.sender}"})"),
                              R"("channels": [{"name": "c", "mechanism": "sysv_msg"}], )"));
  CHECK(all_printed(run) == std::vector<std::string>{"too big: EINVAL", "64 3 hi s"});
  auto tables = run.kernel->ipc_listing();
  REQUIRE(tables.size() == 1);
  CHECK(tables[0].rows ==
        std::vector<std::vector<std::string>>{{"0x00000000", "0", "root", "666", "0", "0"}});
}

TEST_CASE(
    "sysv: a channel with msgmax 65536 and a larger qbytes carries 64 KiB messages; E2BIG on a small recv") {
  auto run = run_text(machine(proc("s", R"(
    {"op": "send", "channel": "c", "bytes": "64KiB"},
    {"op": "send", "channel": "c", "bytes": "64KiB"})") +
                                  "," + proc("r", R"(
    {"op": "recv", "channel": "c", "bytes": "64KiB"},
    {"op": "print", "text": "{result}"},
    {"op": "recv", "channel": "c", "bytes": 100},
    {"op": "print", "text": "{errno}"})"),
                              R"("channels": [{"name": "c", "mechanism": "sysv_msg", "msgmax": 65536,
                                   "qbytes": 131072}], )"));
  CHECK(all_printed(run) == std::vector<std::string>{"65536", "E2BIG"});
  // 64 KiB in: copy_setup 50 + 65536 / 8 = 8192 per message.
  CHECK(run.charged("s", "send", Primitive::copy_bytes_per_cycle) == 2 * 8192);
}

// ---- Load-time mistakes -----------------------------------------------------------------------

TEST_CASE("sysv: a channel whose msgmax exceeds qbytes is refused at load time") {
  CHECK(
      load_error(machine(proc("p", R"({"op": "compute", "time": 1})"),
                         R"("channels": [{"name": "c", "mechanism": "sysv_msg", "msgmax": 65536}], )")) ==
      "test.json: at channels.0.msgmax: msgmax 65536 is larger than qbytes 16384: a message of msgmax bytes "
      "could never fit; raise \"qbytes\" to at least 65536 or lower \"msgmax\"");
}

TEST_CASE("sysv: flags: unknown names and non-strings are refused, naming the accepted ones") {
  CHECK(
      load_error(machine(proc("p", R"({"op": "msgget", "key": 1, "flags": ["IPC_CRAET"], "into": "q"})"))) ==
      "test.json: at processes.0.script.0.flags.0: unknown flag \"IPC_CRAET\" (did you mean \"IPC_CREAT\"?); "
      "accepted: IPC_CREAT, IPC_EXCL");
  CHECK(load_error(machine(proc("p", kCreate + R"(, {"op": "msgsnd", "msqid": "q", "type": 1, "bytes": 8,
        "flags": ["MSG_NOERROR"]})"))) ==
        "test.json: at processes.0.script.1.flags.0: unknown flag \"MSG_NOERROR\"; accepted: IPC_NOWAIT");
  CHECK(load_error(
            machine(proc("p", kCreate + R"(, {"op": "msgrcv", "msqid": "q", "bytes": 8, "flags": [4]})"))) ==
        "test.json: at processes.0.script.1.flags.0: invalid value 4; expected a flag name: IPC_NOWAIT, "
        "MSG_NOERROR, MSG_EXCEPT");
}

TEST_CASE("sysv: keys, ids and sizes: a bad word is refused; a variable must be set in the script") {
  CHECK(load_error(machine(proc("p", R"({"op": "msgget", "key": "my key", "into": "q"})"))) ==
        "test.json: at processes.0.script.0.key: invalid value \"my key\"; expected a key: a whole number, a "
        "hexadecimal string such as \"0x27011c6c\", \"IPC_PRIVATE\", or the name of a script variable that "
        "holds one (ftok's \"into\")");
  CHECK(
      load_error(machine(proc("p", R"({"op": "msgctl", "msqid": "1q", "cmd": "IPC_RMID"})"))) ==
      "test.json: at processes.0.script.0.msqid: invalid value \"1q\"; expected a msqid: a whole number, or "
      "the name of a script variable that holds one (msgget's \"into\")");
  std::string unset = load_error(machine(proc("p", R"({"op": "msgrcv", "msqid": "mq", "bytes": 8})")));
  CHECK(unset.rfind("test.json: at processes.0.script.0.msqid: variable \"mq\" is never set in this script",
                    0) == 0);
  CHECK(load_error(machine(proc("p", R"({"op": "msgrcv", "msqid": 0, "bytes": "lots"})"))) ==
        "test.json: at processes.0.script.0.bytes: invalid value \"lots\"; expected a whole number of bytes "
        "or a "
        "size such as \"4KiB\", \"1MiB\", \"512B\"");
}

TEST_CASE("sysv: msgctl fields must fit the command") {
  CHECK(load_error(machine(proc("p", R"({"op": "msgctl", "msqid": 0, "cmd": "IPC_STAT"})"))) ==
        "test.json: at processes.0.script.0.into: IPC_STAT needs \"into\": the variable whose fields "
        "(INTO.qnum, "
        "...) receive the queue's state");
  CHECK(load_error(machine(proc("p", R"({"op": "msgctl", "msqid": 0, "cmd": "IPC_RMID", "into": "st"})"))) ==
        "test.json: at processes.0.script.0.into: \"into\" goes with IPC_STAT only; drop it");
  CHECK(load_error(machine(proc("p", R"({"op": "msgctl", "msqid": 0, "cmd": "IPC_STAT", "into": "st",
        "qbytes": 10})"))) ==
        "test.json: at processes.0.script.0.qbytes: \"qbytes\" goes with IPC_SET only; drop it");
  CHECK(load_error(machine(proc("p", R"({"op": "msgctl", "msqid": 0, "cmd": "IPC_SET"})"))) ==
        "test.json: at processes.0.script.0: IPC_SET changes nothing; give at least one of qbytes, uid, gid, "
        "mode");
  CHECK(load_error(machine(proc("p", R"({"op": "msgctl", "msqid": 0, "cmd": "IPC_STATS", "into": "s"})"))) ==
        "test.json: at processes.0.script.0.cmd: unknown value \"IPC_STATS\" (did you mean \"IPC_STAT\"?); "
        "accepted: IPC_STAT, IPC_SET, IPC_RMID");
}

TEST_CASE("sysv: ftok and into: a bad project id, a bad variable name, a built-in name") {
  CHECK(load_error(machine(proc("p", R"({"op": "ftok", "path": "/f", "id": "x27", "into": "k"})"))) ==
        "test.json: at processes.0.script.0.id: invalid value \"x27\"; expected a whole number or a "
        "hexadecimal "
        "string such as \"0x27\"");
  CHECK(load_error(machine(proc("p", R"({"op": "ftok", "path": "/f", "id": 1, "into": "my key"})"))) ==
        "test.json: at processes.0.script.0.into: invalid variable name \"my key\"; use letters, digits, _ "
        "and . "
        "(not starting with a digit)");
  CHECK(load_error(machine(proc("p", R"({"op": "msgget", "key": 1, "into": "result"})"))) ==
        "test.json: at processes.0.script.0.into: \"result\" is set by the system calls themselves; choose "
        "another name");
  CHECK(load_error(machine(proc("p", R"({"op": "ftok", "path": "f", "id": 1, "into": "k"})"))) ==
        "test.json: at processes.0.script.0.path: invalid path \"f\"; expected an absolute path without "
        "spaces, "
        "at most 107 characters, such as \"/tmp/myfifo\"");
}

TEST_CASE("sysv: the registry names the sysv_msg mechanism and its ops") {
  CHECK(find_mechanism("sysv_msg") != nullptr);
  for (const char* op : {"ftok", "msgget", "msgsnd", "msgrcv", "msgctl", "ipcs"})
    CHECK(find_op(op) != nullptr);
}

// Slow (8 million system calls, about 7 s): skipped by default; run it with
// ./build/tests/ipcsim_tests -tc='sysv: the namespace*' --no-skip
TEST_CASE("sysv: the namespace's seq goes back to 0 at ipcid_seq_max() (65535)" * doctest::skip()) {
  // Each wrap of the index (64 allocations with no queue in use: indices 0..63) adds 1 to seq. The
  // n-th allocation has seq (n - 1) / 64: after 65534 * 64 = 4194176 of them, the next one has seq
  // 65534 (id 65534 * 32768 = 2147418112 at index 0); 63 more fill indices 1..63, and the next
  // wrap would make seq 65535, which is ipcid_seq_max(): 0.
  auto run = run_text(machine(proc("p", R"(
    {"op": "repeat", "count": 4194176, "body": [{"op": "msgget", "key": "IPC_PRIVATE", "into": "q"},
                                                {"op": "msgctl", "msqid": "q", "cmd": "IPC_RMID"}]},
    {"op": "msgget", "key": "IPC_PRIVATE", "into": "q"},
    {"op": "print", "text": "{q}"},
    {"op": "msgctl", "msqid": "q", "cmd": "IPC_RMID"},
    {"op": "repeat", "count": 63, "body": [{"op": "msgget", "key": "IPC_PRIVATE", "into": "q"},
                                           {"op": "msgctl", "msqid": "q", "cmd": "IPC_RMID"}]},
    {"op": "msgget", "key": "IPC_PRIVATE", "into": "q"},
    {"op": "print", "text": "{q}"})")));
  CHECK(printed(run, "p") == std::vector<std::string>{"2147418112", "0"});
}

TEST_CASE("sysv: a receiver already handed a message keeps it when the queue is removed before it runs") {
  // One core: s sends (the message goes straight to the sleeping r, which is made ready) and
  // removes the queue before r runs again. r still returns the message.
  auto run = run_text(machine(proc("r", kCreate + R"(,
    {"op": "msgctl", "msqid": "q", "cmd": "IPC_STAT", "into": "st"},
    {"op": "print", "text": "never: {st.stime} {st.rtime} {st.lspid}"},
    {"op": "msgrcv", "msqid": "q", "bytes": 64},
    {"op": "print", "text": "{result} {errno} {msg.text}"})") +
                              "," +
                              proc("s", kOpen + R"(,
    {"op": "msgsnd", "msqid": "q", "type": 1, "bytes": 64, "text": "last"},
    {"op": "msgctl", "msqid": "q", "cmd": "IPC_RMID"},
    {"op": "print", "text": "removed"})",
                                   R"("arrival": "10us", )")));
  CHECK(all_printed(run) == std::vector<std::string>{"never: 0 0 0", "removed", "64  last"});
}

TEST_CASE("sysv: msgrcv refuses a negative buffer size and an unknown id with EINVAL") {
  auto run = run_text(machine(proc("p", kCreate + R"(,
    {"op": "msgrcv", "msqid": "q", "bytes": -1, "flags": ["IPC_NOWAIT"]},
    {"op": "print", "text": "{errno}"},
    {"op": "msgrcv", "msqid": 12345, "bytes": 8, "flags": ["IPC_NOWAIT"]},
    {"op": "print", "text": "{errno}"},
    {"op": "msgctl", "msqid": -1, "cmd": "IPC_RMID"},
    {"op": "print", "text": "{errno}"})")));
  CHECK(printed(run, "p") == std::vector<std::string>{"EINVAL", "EINVAL", "EINVAL"});
}

TEST_CASE("sysv: the channel with timeout 0: recv on an empty queue gives EAGAIN (msgrcv: ENOMSG), send on a "
          "full one "
          "EAGAIN") {
  auto run = run_text(machine(proc("p", R"(
    {"op": "recv", "channel": "c", "bytes": 64, "timeout": 0},
    {"op": "print", "text": "recv: {errno}"},
    {"op": "send", "channel": "c", "bytes": 100},
    {"op": "send", "channel": "c", "bytes": 1, "timeout": 0},
    {"op": "print", "text": "send: {errno}"})"),
                              R"("channels": [{"name": "c", "mechanism": "sysv_msg", "qbytes": 100,
                                   "msgmax": 100}], )"));
  // Like every channel: EAGAIN, where the msgrcv op with IPC_NOWAIT (or timeout 0) gives ENOMSG.
  CHECK(printed(run, "p") == std::vector<std::string>{"recv: EAGAIN", "send: EAGAIN"});
}
