// Shared memory: System V segments (keys, ids, permissions, IPC_STAT, IPC_RMID after the last
// detach), POSIX objects, anonymous mappings across spawn, the memory ops and what each access
// costs, busy polling on one and two cores, and the load-time mistakes, with outcomes and cycle
// counts worked out from the teaching preset (1 GHz: a cycle is a nanosecond). A system call costs
// trap_enter 100 + syscall_dispatch 50 + trap_exit 100 = 250; a dispatch of a process without a
// working set sched_pick 100 + context_restore 200 + address_space_switch 500 = 800.
#include "error.hpp"
#include "harness.hpp"
#include "ipc.hpp"

#include <doctest/doctest.h>

using namespace ipcsim;
using ipcsim::test::run_text;

namespace {

std::string machine(const std::string& processes, int cores = 1, const std::string& extra = "") {
  return R"({"machine": {"cores": )" + std::to_string(cores) +
         R"(, "costs": "teaching", "scheduler": {"policy": "rr", "quantum": "4ms"}}, )" + extra +
         R"("processes": [)" + processes + "]}";
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

Cycles printed_at(const ipcsim::test::Run& run, const std::string& text) {
  for (const auto& line : run.kernel->console())
    if (line.text == text) return line.at;
  return kNever;
}

int killed_by(const ipcsim::test::Run& run, const std::string& process) {
  for (const auto& p : run.kernel->processes())
    if (p.display_name() == process) return p.killed_by;
  return -1;
}

std::string load_error(const std::string& text) {
  try {
    run_text(text);
  } catch (const UserError& e) {
    return e.what();
  }
  return "<no error>";
}

const std::string kAttach =
    R"({"op": "shmget", "key": 77, "bytes": 4096, "flags": ["IPC_CREAT"], "into": "id"},
       {"op": "shmat", "shmid": "id", "as": "m"})";

} // namespace

TEST_CASE("shm: the first touch of a page faults (and zeroes it once), later accesses cost their bytes; "
          "words, byte ranges and atomics read back what was written; outside the mapping is SIGSEGV") {
  auto run = run_text(machine(proc("p", R"(
    {"op": "shmget", "key": "IPC_PRIVATE", "bytes": 8192, "flags": ["IPC_CREAT"], "into": "id"},
    {"op": "shmat", "shmid": "id", "as": "m"},
    {"op": "print", "text": "at {result}"},
    {"op": "begin", "name": "t"},
    {"op": "mem_store", "map": "m", "offset": 0, "value": 7},
    {"op": "mem_load", "map": "m", "offset": 0, "into": "v"},
    {"op": "mem_store", "map": "m", "offset": 4096, "value": -3},
    {"op": "end", "name": "t"},
    {"op": "mem_write", "map": "m", "offset": 16, "bytes": 100, "text": "hello"},
    {"op": "mem_read", "map": "m", "offset": 16, "bytes": 100, "into": "s"},
    {"op": "atomic_add", "map": "m", "offset": 0, "value": 5, "into": "old"},
    {"op": "atomic_cas", "map": "m", "offset": 0, "expected": 12, "desired": 1, "into": "c1"},
    {"op": "atomic_cas", "map": "m", "offset": 0, "expected": 12, "desired": 2, "into": "c2"},
    {"op": "atomic_xchg", "map": "m", "offset": 8, "value": 9, "into": "x"},
    {"op": "atomic_store", "map": "m", "offset": 8, "value": 10},
    {"op": "atomic_load", "map": "m", "offset": 0, "into": "now"},
    {"op": "mem_load", "map": "m", "offset": 4096, "into": "w"},
    {"op": "mem_load", "map": "m", "offset": 8, "into": "y"},
    {"op": "print", "text": "{v} {s} {old} {c1} {c2} {now} {w} {x} {y}"},
    {"op": "mem_load", "map": "m", "offset": 8185, "into": "v"},
    {"op": "print", "text": "not reached"})")));
  // 0x7f0000000000: the first mapping's address.
  CHECK(printed(run, "p") == std::vector<std::string>{"at 139637976727552", "7 hello 7 12 1 1 -3 0 10"});
  // The interval starts after dispatch 800 + shmget 250 + shmat 250: page 0's first touch is a
  // fault 1000 + zeroing 500 + 8 bytes at 8 per cycle 1 = 1501; the load 1; page 1's first touch
  // 1501: 3003.
  CHECK(run.kernel->records()[0].start == 1300);
  CHECK(run.kernel->records()[0].end - run.kernel->records()[0].start == 3003);
  CHECK(run.charged("p", "mem_store", Primitive::page_fault) == 2000);
  CHECK(run.charged("p", "mem_store", Primitive::page_zero) == 1000);
  // 100 bytes: ceil(100 / 8) = 13 cycles each way; a locked instruction adds atomic_rmw 20.
  CHECK(run.charged("p", "mem_write", Primitive::copy_bytes_per_cycle) == 13);
  CHECK(run.charged("p", "mem_read", Primitive::copy_bytes_per_cycle) == 13);
  CHECK(run.charged("p", "atomic_cas", Primitive::atomic_rmw) == 40);
  CHECK(run.charged("p", "atomic_store", Primitive::atomic_rmw) == 20);
  CHECK(run.charged("p", "atomic_load", Primitive::atomic_rmw) == 0);
  // An 8-byte load at 8185 ends past the 8192-byte mapping: SIGSEGV terminates the process.
  CHECK(killed_by(run, "p") == 11);
}

TEST_CASE("shm: shmget finds by key, creates, and refuses as Linux does (ENOENT, EEXIST, EINVAL, EACCES, "
          "ENOSPC)") {
  auto run = run_text(machine(proc("owner", R"(
    {"op": "shmget", "key": 5, "bytes": 100, "into": "a"},
    {"op": "print", "text": "open missing: {result} {errno}"},
    {"op": "shmget", "key": 5, "bytes": 0, "flags": ["IPC_CREAT"], "into": "a"},
    {"op": "print", "text": "size 0: {errno}"},
    {"op": "shmget", "key": 5, "bytes": 100, "flags": ["IPC_CREAT"], "mode": "0600", "into": "a"},
    {"op": "print", "text": "create: {a}"},
    {"op": "shmget", "key": "0x5", "bytes": 50, "into": "b"},
    {"op": "print", "text": "open smaller: {b}"},
    {"op": "shmget", "key": 5, "bytes": 101, "into": "b"},
    {"op": "print", "text": "open larger: {errno}"},
    {"op": "shmget", "key": 5, "bytes": 100, "flags": ["IPC_CREAT", "IPC_EXCL"], "into": "b"},
    {"op": "print", "text": "exclusive: {errno}"},
    {"op": "shmget", "key": "IPC_PRIVATE", "bytes": 268435457, "into": "b"},
    {"op": "print", "text": "beyond shmall: {errno}"},
    {"op": "shmget", "key": "IPC_PRIVATE", "bytes": 1, "into": "b"},
    {"op": "shmget", "key": "IPC_PRIVATE", "bytes": 1, "into": "c"},
    {"op": "print", "text": "private: {b} {c}"},
    {"op": "sleep", "time": "1ms"})") +
                              "," +
                              proc("other", R"(
    {"op": "sleep", "time": "100us"},
    {"op": "shmget", "key": 5, "bytes": 100, "into": "a"},
    {"op": "print", "text": "other user: {errno}"})",
                                   R"("uid": 2000, )")));
  CHECK(printed(run, "owner") == std::vector<std::string>{"open missing: -1 ENOENT", "size 0: EINVAL",
                                                          "create: 0", "open smaller: 0",
                                                          "open larger: EINVAL", "exclusive: EEXIST",
                                                          "beyond shmall: ENOSPC", "private: 1 2"});
  CHECK(printed(run, "other") == std::vector<std::string>{"other user: EACCES"});
}

TEST_CASE("shm: IPC_RMID while attached marks the segment (dest, key freed) and it goes at the last detach; "
          "shmat by id still works meanwhile; EPERM for another user; shmdt of no attachment is EINVAL") {
  auto run = run_text(machine(proc("owner", R"(
    {"op": "shmget", "key": 9, "bytes": 4096, "flags": ["IPC_CREAT"], "into": "id"},
    {"op": "shmat", "shmid": "id", "as": "m"},
    {"op": "mem_store", "map": "m", "offset": 0, "value": 42},
    {"op": "shmctl", "shmid": "id", "cmd": "IPC_RMID"},
    {"op": "shmctl", "shmid": "id", "cmd": "IPC_STAT", "into": "st"},
    {"op": "print", "text": "after RMID: nattch {st.nattch} mode {st.perms}"},
    {"op": "shmget", "key": 9, "bytes": 4096, "into": "again"},
    {"op": "print", "text": "by key: {errno}"},
    {"op": "shmat", "shmid": "id", "as": "n"},
    {"op": "mem_load", "map": "n", "offset": 0, "into": "v"},
    {"op": "print", "text": "attached again: {v}"},
    {"op": "shmdt", "map": "m"},
    {"op": "shmdt", "map": "m"},
    {"op": "print", "text": "twice: {errno}"},
    {"op": "sleep", "time": "1ms"},
    {"op": "shmdt", "map": "n"},
    {"op": "shmat", "shmid": "id", "as": "m"},
    {"op": "print", "text": "after the last detach: {errno}"})") +
                              "," +
                              proc("other", R"(
    {"op": "sleep", "time": "100us"},
    {"op": "shmctl", "shmid": 0, "cmd": "IPC_RMID"},
    {"op": "print", "text": "other RMID: {errno}"},
    {"op": "shmget", "key": 10, "bytes": 4096, "flags": ["IPC_CREAT"], "into": "keep"})",
                                   R"("uid": 2000, )")));
  CHECK(printed(run, "owner") == std::vector<std::string>{"after RMID: nattch 1 mode 1666", "by key: ENOENT",
                                                          "attached again: 42", "twice: EINVAL",
                                                          "after the last detach: EINVAL"});
  CHECK(printed(run, "other") == std::vector<std::string>{"other RMID: EPERM"});
  // Only the other user's segment is left: System V segments outlive their creator.
  auto tables = run.kernel->ipc_listing();
  REQUIRE(tables.size() == 1);
  CHECK(tables[0].title == "Shared Memory Segments");
  REQUIRE(tables[0].rows.size() == 1);
  CHECK(tables[0].rows[0] == std::vector<std::string>{"0x0000000a", "1", "2000", "666", "4096", "0", ""});
}

TEST_CASE("shm: SHM_RDONLY attachments fault on a store (SIGSEGV); EACCES to attach read-write without write "
          "permission") {
  auto run = run_text(machine(proc("owner", R"(
    {"op": "shmget", "key": 3, "bytes": 64, "flags": ["IPC_CREAT"], "mode": "0644", "into": "id"},
    {"op": "sleep", "time": "1ms"})") +
                              "," +
                              proc("reader", R"(
    {"op": "sleep", "time": "100us"},
    {"op": "shmget", "key": 3, "bytes": 64, "mode": "0444", "into": "id"},
    {"op": "shmat", "shmid": "id", "as": "m"},
    {"op": "print", "text": "read-write: {errno}"},
    {"op": "shmat", "shmid": "id", "as": "m", "flags": ["SHM_RDONLY"]},
    {"op": "mem_load", "map": "m", "offset": 56, "into": "v"},
    {"op": "print", "text": "read-only: {v}"},
    {"op": "mem_store", "map": "m", "offset": 0, "value": 1},
    {"op": "print", "text": "not reached"})",
                                   R"("uid": 2000, )")));
  CHECK(printed(run, "reader") == std::vector<std::string>{"read-write: EACCES", "read-only: 0"});
  CHECK(killed_by(run, "reader") == 11);
}

TEST_CASE("shm: a shrink then a regrow drops the old pages from every mapping, and stores after it stay") {
  // truncate_pagecache zaps the mappings' entries (Linux 6.18, measured): a store through the old
  // mapping after the object grew again faults a fresh page in, which a new mapping reads.
  auto run = run_text(machine(proc("p", R"(
    {"op": "shm_open", "name": "/ps", "flags": ["O_RDWR", "O_CREAT"], "fd": "f"},
    {"op": "ftruncate", "fd": "f", "bytes": 4096},
    {"op": "mmap", "fd": "f", "bytes": 8192, "flags": ["MAP_SHARED"], "as": "m"},
    {"op": "mem_write", "map": "m", "offset": 0, "bytes": 6, "text": "first"},
    {"op": "ftruncate", "fd": "f", "bytes": 0},
    {"op": "ftruncate", "fd": "f", "bytes": 4096},
    {"op": "mem_read", "map": "m", "offset": 0, "bytes": 6, "into": "a"},
    {"op": "print", "text": "after the regrow: '{a}'"},
    {"op": "mem_write", "map": "m", "offset": 0, "bytes": 6, "text": "still"},
    {"op": "shm_open", "name": "/ps", "flags": ["O_RDWR"], "fd": "g"},
    {"op": "mmap", "fd": "g", "bytes": 4096, "flags": ["MAP_SHARED"], "as": "n"},
    {"op": "mem_read", "map": "n", "offset": 0, "bytes": 6, "into": "b"},
    {"op": "print", "text": "new mapping: {b}"})")));
  CHECK(printed(run, "p") == std::vector<std::string>{"after the regrow: ''", "new mapping: still"});
}

TEST_CASE("shm: POSIX shm_open, ftruncate, mmap, shm_unlink: shared data, errors, and SIGBUS past the end of "
          "the object") {
  auto run = run_text(machine(proc("writer", R"(
    {"op": "shm_open", "name": "/box", "flags": ["O_RDWR"], "fd": "f"},
    {"op": "print", "text": "missing: {errno}"},
    {"op": "shm_open", "name": "/box", "flags": ["O_RDWR", "O_CREAT"], "mode": "0644", "fd": "f"},
    {"op": "shm_open", "name": "/box", "flags": ["O_RDWR", "O_CREAT", "O_EXCL"], "fd": "g"},
    {"op": "print", "text": "exclusive: {errno}"},
    {"op": "ftruncate", "fd": "f", "bytes": 5000},
    {"op": "mmap", "fd": "f", "bytes": 12288, "flags": ["MAP_SHARED"], "as": "m"},
    {"op": "mem_write", "map": "m", "offset": 4090, "bytes": 10, "text": "across"},
    {"op": "print", "text": "written"},
    {"op": "sleep", "time": "1ms"},
    {"op": "mem_load", "map": "m", "offset": 8192, "into": "v"},
    {"op": "print", "text": "not reached"})") +
                              "," +
                              proc("reader", R"(
    {"op": "sleep", "time": "100us"},
    {"op": "shm_open", "name": "/box", "flags": ["O_RDWR"], "fd": "f"},
    {"op": "print", "text": "read-write by another user: {errno}"},
    {"op": "shm_open", "name": "/box", "flags": ["O_RDONLY"], "fd": "f"},
    {"op": "ftruncate", "fd": "f", "bytes": 1},
    {"op": "print", "text": "ftruncate read-only: {errno}"},
    {"op": "ftruncate", "fd": "nope", "bytes": 1},
    {"op": "print", "text": "ftruncate no fd: {errno}"},
    {"op": "mmap", "fd": "f", "bytes": 4096, "flags": ["MAP_SHARED"], "as": "m"},
    {"op": "print", "text": "writable mapping of a read-only fd: {errno}"},
    {"op": "mmap", "fd": "f", "bytes": 8192, "flags": ["MAP_SHARED"], "prot": ["PROT_READ"], "as": "m"},
    {"op": "mem_read", "map": "m", "offset": 4090, "bytes": 10, "into": "s"},
    {"op": "print", "text": "read: {s}"},
    {"op": "shm_unlink", "name": "/box"},
    {"op": "print", "text": "unlink by another user: {errno}"})",
                                   R"("uid": 2000, )")));
  CHECK(printed(run, "writer") ==
        std::vector<std::string>{"missing: ENOENT", "exclusive: EEXIST", "written"});
  CHECK(printed(run, "reader") ==
        std::vector<std::string>{"read-write by another user: EACCES", "ftruncate read-only: EINVAL",
                                 "ftruncate no fd: EBADF", "writable mapping of a read-only fd: EACCES",
                                 "read: across", "unlink by another user: EACCES"});
  // The object is 5000 bytes: its second page ends at 8192, so 8192 is past the end: SIGBUS.
  CHECK(killed_by(run, "writer") == 7);
  auto tables = run.kernel->ipc_listing();
  REQUIRE(tables.size() == 1);
  CHECK(tables[0].rows[0] == std::vector<std::string>{"/box", "1000", "644", "5000"});
}

TEST_CASE(
    "shm: an anonymous MAP_SHARED mapping is shared with a spawned child (its first touch faults in its own "
    "page tables); a MAP_PRIVATE one is copied on write") {
  auto run = run_text(machine(proc("parent", R"(
    {"op": "mmap", "bytes": 4096, "flags": ["MAP_SHARED", "MAP_ANONYMOUS"], "as": "s"},
    {"op": "mmap", "bytes": 4096, "flags": ["MAP_PRIVATE", "MAP_ANONYMOUS"], "as": "p"},
    {"op": "mem_store", "map": "s", "offset": 0, "value": 5},
    {"op": "mem_store", "map": "p", "offset": 0, "value": 6},
    {"op": "spawn", "process": "child"},
    {"op": "join", "process": "child"},
    {"op": "mem_load", "map": "s", "offset": 0, "into": "v"},
    {"op": "print", "text": "parent sees {v}"},
    {"op": "mem_load", "map": "p", "offset": 0, "into": "v"},
    {"op": "print", "text": "parent's private {v}"},
    {"op": "shm_unlink", "name": "/none"},
    {"op": "print", "text": "{errno}"})") +
                              "," +
                              proc("child", R"(
    {"op": "mem_load", "map": "s", "offset": 0, "into": "v"},
    {"op": "print", "text": "child sees {v}"},
    {"op": "mem_store", "map": "s", "offset": 0, "value": 9},
    {"op": "mem_load", "map": "p", "offset": 0, "into": "v"},
    {"op": "print", "text": "child's private {v}"},
    {"op": "mem_store", "map": "p", "offset": 0, "value": 7})",
                                   R"("spawned": true, )")));
  CHECK(printed(run, "parent") == std::vector<std::string>{"parent sees 9", "parent's private 6", "ENOENT"});
  CHECK(printed(run, "child") == std::vector<std::string>{"child sees 5", "child's private 6"});
  CHECK(killed_by(run, "child") == 0);
  // The child's first touch of the shared page faults (1000) but the page is already zeroed; the
  // parent wrote the line on the same core: no transfer. Its private page came with its page
  // tables (map_page 200 at the spawn): reading it does not fault; writing it does, and copies it.
  CHECK(run.charged("child", "mem_load", Primitive::page_fault) == 1000);
  CHECK(run.charged("child", "mem_load", Primitive::page_zero) == 0);
  CHECK(run.charged("parent", "spawn", Primitive::map_page) == 200);
  CHECK(run.charged("child", "mem_store", Primitive::page_fault) == 1000);
  CHECK(run.charged("child", "mem_store", Primitive::copy_bytes_per_cycle) == 512 + 2);
}

TEST_CASE("shm: MAP_PRIVATE of an object reads the object until it writes a page: a fault and a page copy") {
  auto run = run_text(machine(proc("p", R"(
    {"op": "shm_open", "name": "/o", "flags": ["O_CREAT", "O_RDWR"], "fd": "f"},
    {"op": "ftruncate", "fd": "f", "bytes": 8192},
    {"op": "mmap", "fd": "f", "bytes": 8192, "flags": ["MAP_SHARED"], "as": "s"},
    {"op": "mmap", "fd": "f", "bytes": 8192, "flags": ["MAP_PRIVATE"], "as": "v"},
    {"op": "mem_store", "map": "s", "offset": 0, "value": 5},
    {"op": "mem_load", "map": "v", "offset": 0, "into": "a"},
    {"op": "print", "text": "before the write"},
    {"op": "mem_store", "map": "v", "offset": 0, "value": 6},
    {"op": "print", "text": "after the write"},
    {"op": "mem_store", "map": "s", "offset": 8, "value": 7},
    {"op": "mem_store", "map": "s", "offset": 4096, "value": 9},
    {"op": "mem_load", "map": "v", "offset": 0, "into": "b"},
    {"op": "mem_load", "map": "v", "offset": 8, "into": "c"},
    {"op": "mem_load", "map": "v", "offset": 4096, "into": "d"},
    {"op": "mem_load", "map": "s", "offset": 0, "into": "e"},
    {"op": "print", "text": "{a} {b} {c} {d} {e}"})")));
  // v read the object (5), then its own copy (6), taken before the object's word 8 became 7 (0); its
  // second page it never wrote, so it sees the object's 9; the object kept its 5.
  CHECK(printed(run, "p") == std::vector<std::string>{"before the write", "after the write", "5 6 0 9 5"});
  // The copy-on-write store: page_fault 1000 + the 4 KiB page at 8 bytes a cycle 512 + the word 1.
  CHECK(printed_at(run, "after the write") - printed_at(run, "before the write") == 1513);
  // Faults: s's two pages (each new: page_zero 500), v's write; v's read of each page.
  CHECK(run.charged("p", "mem_store", Primitive::page_fault) == 3000);
  CHECK(run.charged("p", "mem_store", Primitive::page_zero) == 1000);
  CHECK(run.charged("p", "mem_load", Primitive::page_fault) == 2000);
  CHECK(run.charged("p", "mem_load", Primitive::page_zero) == 0);
}

TEST_CASE("shm: after a spawn both sides copy a private page on write; the last holder takes it back") {
  auto run = run_text(machine(proc("parent", R"(
    {"op": "mmap", "bytes": 8192, "flags": ["MAP_PRIVATE", "MAP_ANONYMOUS"], "as": "p"},
    {"op": "mem_store", "map": "p", "offset": 0, "value": 6},
    {"op": "spawn", "process": "child"},
    {"op": "mem_store", "map": "p", "offset": 0, "value": 8},
    {"op": "join", "process": "child"},
    {"op": "mem_load", "map": "p", "offset": 0, "into": "v"},
    {"op": "print", "text": "parent {v}"})") +
                              "," +
                              proc("child", R"(
    {"op": "mem_load", "map": "p", "offset": 0, "into": "v"},
    {"op": "print", "text": "child {v}"},
    {"op": "mem_store", "map": "p", "offset": 0, "value": 7},
    {"op": "mem_load", "map": "p", "offset": 0, "into": "v"},
    {"op": "print", "text": "child {v}"},
    {"op": "mem_load", "map": "p", "offset": 4096, "into": "v"},
    {"op": "print", "text": "child {v}"})",
                                   R"("spawned": true, )")));
  // The parent writes first (one core: the child has not run): its page is shared, so it copies
  // (1000 + 512 + 1). The child then holds the original alone: its write faults and takes it back
  // without a copy (1000 + 1). Its read of the second page, which nobody touched: a fault and a
  // zeroed page (1000 + 500 + 1).
  CHECK(printed(run, "parent") == std::vector<std::string>{"parent 8"});
  CHECK(printed(run, "child") == std::vector<std::string>{"child 6", "child 7", "child 0"});
  CHECK(run.charged("parent", "mem_store", Primitive::page_fault) == 2000);
  CHECK(run.charged("parent", "mem_store", Primitive::copy_bytes_per_cycle) == 512 + 2);
  CHECK(run.charged("child", "mem_store", Primitive::page_fault) == 1000);
  CHECK(run.charged("child", "mem_store", Primitive::copy_bytes_per_cycle) == 1);
  CHECK(run.charged("child", "mem_load", Primitive::page_fault) == 1000);
  CHECK(run.charged("child", "mem_load", Primitive::page_zero) == 500);
}

TEST_CASE("shm: a cache line last written by another core costs a transfer when read (once) or written") {
  // A writes at 1300 (after dispatch 800 + shmget + shmat) on core 0; B on core 1 reads after 10 us.
  auto run = run_text(machine(proc("a", kAttach + R"(,
    {"op": "mem_store", "map": "m", "offset": 0, "value": 1},
    {"op": "sleep", "time": "20us"},
    {"op": "mem_store", "map": "m", "offset": 8, "value": 2})",
                                   R"("affinity": [0], )") +
                                  "," +
                                  proc("b", kAttach + R"(,
    {"op": "sleep", "time": "10us"},
    {"op": "begin", "name": "first read"},
    {"op": "mem_load", "map": "m", "offset": 0, "into": "v"},
    {"op": "end", "name": "first read"},
    {"op": "begin", "name": "second read"},
    {"op": "mem_load", "map": "m", "offset": 0, "into": "v"},
    {"op": "end", "name": "second read"},
    {"op": "sleep", "time": "20us"},
    {"op": "begin", "name": "after a write"},
    {"op": "mem_load", "map": "m", "offset": 0, "into": "v"},
    {"op": "end", "name": "after a write"},
    {"op": "mem_store", "map": "m", "offset": 16, "value": 3})",
                                       R"("affinity": [1], )"),
                              2));
  auto& r = run.kernel->records();
  REQUIRE(r.size() == 3);
  // B's first touch: its own page fault 1000 (the page is zeroed already) + transfer 100 + 1.
  CHECK(r[0].end - r[0].start == 1101);
  CHECK(r[1].end - r[1].start == 1);
  // A wrote offset 8, in the same 64-byte line, at about 21 us: B's copy is stale again.
  CHECK(r[2].end - r[2].start == 101);
  // B's store to that line: A wrote it last, another transfer.
  CHECK(run.charged("b", "mem_store", Primitive::cache_line_transfer) == 100);
  CHECK(run.charged("a", "mem_store", Primitive::cache_line_transfer) == 0);
}

namespace {

// Writer "a" on core 0 writes `written` bytes of a segment of `segment` bytes at 1 ms; reader "b" on
// core `reader_core` first reads the whole segment (its page faults, before any write), then at
// 30 ms reads `bytes`, timed as "read"; then "a" writes them again at 60 ms, timed as "rewrite".
ipcsim::test::Run range_run(std::uint64_t segment, std::uint64_t written, std::uint64_t bytes,
                            int reader_core) {
  const std::string attach =
      R"({"op": "shmget", "key": 78, "bytes": )" + std::to_string(segment) +
      R"(, "flags": ["IPC_CREAT"], "into": "id"}, {"op": "shmat", "shmid": "id", "as": "m"})";
  const std::string n = std::to_string(bytes), w = std::to_string(written), all = std::to_string(segment);
  return run_text(machine(proc("a",
                               attach + R"(,
    {"op": "sleep", "time": "1ms"},
    {"op": "mem_write", "map": "m", "offset": 0, "bytes": )" +
                                   w + R"(, "text": "x"},
    {"op": "sleep", "time": "60ms"},
    {"op": "begin", "name": "rewrite"},
    {"op": "mem_write", "map": "m", "offset": 0, "bytes": )" +
                                   n + R"(, "text": "y"},
    {"op": "end", "name": "rewrite"})",
                               R"("affinity": [0], )") +
                              "," +
                              proc("b",
                                   attach + R"(,
    {"op": "mem_read", "map": "m", "offset": 0, "bytes": )" +
                                       all + R"(},
    {"op": "sleep", "time": "30ms"},
    {"op": "begin", "name": "read"},
    {"op": "mem_read", "map": "m", "offset": 0, "bytes": )" +
                                       n + R"(},
    {"op": "end", "name": "read"})",
                                   "\"affinity\": [" + std::to_string(reader_core) + "], "),
                          2));
}

Cycles record(const ipcsim::test::Run& run, const std::string& name) {
  for (const auto& r : run.kernel->records())
    if (run.scenario->model().interval_names[r.name] == name) return r.end - r.start;
  return kNever;
}

} // namespace

TEST_CASE("shm: a byte range another core's cache holds costs one transfer and its lines at the remote "
          "rate; on one core nothing changes") {
  SUBCASE("4 KiB from core 0, read on core 1") {
    auto run = range_run(4096, 4096, 4096, 1);
    // Footprint 8 KiB, in L1: ceil(4096 / 8) = 512 cycles locally; the 64 foreign lines at
    // copy_bytes_per_cycle_remote 2: 2048, so 2048 - 512 = 1536 more, plus one transfer 100.
    CHECK(record(run, "read") == 100 + 512 + 1536);
    CHECK(run.charged("b", "mem_read", Primitive::copy_bytes_per_cycle_remote) == 1536);
    CHECK(run.charged("b", "mem_read", Primitive::copy_bytes_per_cycle_uncached) == 0);
    // Writing them again takes back the lines core 1 read: the same cost (the write at 1 ms paid
    // only its bytes, 512, nobody had read them).
    CHECK(record(run, "rewrite") == 100 + 512 + 1536);
    CHECK(run.charged("a", "mem_write", Primitive::copy_bytes_per_cycle_remote) == 1536);
  }
  SUBCASE("512 KiB from core 0, read on core 1") {
    auto run = range_run(524288, 524288, 524288, 1);
    // Footprint 1 MiB, the L2's size: 1/8 + (1/4 - 1/8) = 1/4 cycle per byte locally, 131,072
    // cycles; remotely 1/2, 262,144: 131,072 more, plus one transfer.
    CHECK(record(run, "read") == 100 + 131'072 + 131'072);
    CHECK(run.charged("b", "mem_read", Primitive::copy_bytes_per_cycle_remote) == 131'072);
  }
  SUBCASE("4 MiB from core 0, read on core 1: beyond the L2 its own copy is as slow") {
    auto run = range_run(4194304, 4194304, 4194304, 1);
    // Footprint 8 MiB, the L3's size: 1/2 cycle per byte locally (the L3 rate) and remotely (the
    // shared L3 is where the other core's lines come from): 2,097,152 cycles, the transfer 100.
    CHECK(record(run, "read") == 100 + 2'097'152);
    CHECK(run.charged("b", "mem_read", Primitive::copy_bytes_per_cycle_remote) == 0);
  }
  SUBCASE("the same ranges on one core") {
    auto small = range_run(4096, 4096, 4096, 0);
    CHECK(record(small, "read") == 512);
    CHECK(record(small, "rewrite") == 512);
    auto large = range_run(524288, 524288, 524288, 0);
    CHECK(record(large, "read") == 131'072);
    CHECK(large.charged("b", "mem_read", Primitive::copy_bytes_per_cycle_remote) == 0);
  }
  SUBCASE("a word store to a line the other core read is not charged (the store buffer hides it)") {
    auto run = range_run(4096, 4096, 8, 1);
    CHECK(record(run, "read") == 100 + 1); // a word: the transfer and 8 bytes at 8 per cycle
    CHECK(record(run, "rewrite") == 1);
  }
}

TEST_CASE("shm: a range this core holds comes back at the rate of its reuse distance: the bytes of "
          "other pages it touched since") {
  // One core, teaching: L1 64 KiB, L2 1 MiB, L3 8 MiB at 8 / 4 / 2 / 1 bytes per cycle; a copy's
  // footprint is source and destination (2 x bytes) plus the distance.
  auto timed_read = [](const std::string& name, std::uint64_t offset, std::uint64_t bytes) {
    return R"(, {"op": "begin", "name": ")" + name + R"("}, {"op": "mem_read", "map": "m", "offset": )" +
           std::to_string(offset) + R"(, "bytes": )" + std::to_string(bytes) +
           R"(}, {"op": "end", "name": ")" + name + R"("})";
  };
  auto write = [](std::uint64_t offset, std::uint64_t bytes) {
    return R"(, {"op": "mem_write", "map": "m", "offset": )" + std::to_string(offset) + R"(, "bytes": )" +
           std::to_string(bytes) + R"(, "text": "x"})";
  };
  const std::string attach =
      R"({"op": "shmget", "key": 79, "bytes": 20971520, "flags": ["IPC_CREAT"], "into": "id"},
         {"op": "shmat", "shmid": "id", "as": "m"})";
  constexpr std::uint64_t KiB = 1024, MiB = 1024 * KiB;
  auto run = run_text(
      machine(proc("p", attach + write(0, 4 * KiB) + timed_read("hot", 0, 4 * KiB) +
                            write(4 * KiB, 88 * KiB) + timed_read("after 88 KiB", 0, 4 * KiB) +
                            write(4 * KiB, 128 * KiB) + timed_read("after 128 KiB", 0, 4 * KiB) +
                            write(256 * KiB, 24 * KiB) + timed_read("its own pages", 256 * KiB, 24 * KiB) +
                            write(1 * MiB, 17 * MiB) + timed_read("after 17 MiB", 0, 4 * KiB) +
                            write(1 * MiB, 960 * KiB) + timed_read("a word after 960 KiB", 0, 8))));
  // Just written: footprint 8 KiB, the L1 rate: 4096 / 8.
  CHECK(record(run, "hot") == 512);
  // 88 KiB of other pages since: footprint 96 KiB, halfway from the L1's size to twice it:
  // 1/8 + (1/4 - 1/8) / 2 = 3/16 cycle per byte.
  CHECK(record(run, "after 88 KiB") == 768);
  // 128 KiB since (the 88 KiB again and 40 more; a page counts once): footprint 136 KiB, the L2 rate.
  CHECK(record(run, "after 128 KiB") == 1024);
  // Read back at once: the range's own pages are its footprint, not its distance (48 KiB, in L1).
  CHECK(record(run, "its own pages") == 3072);
  // 17 MiB since, more than every cache's reach (twice the L3): memory's rate, 1 cycle per byte. The
  // page's record was dropped on the way (the history keeps what the caches could still hold); that
  // the core touched it before is what says it is cold.
  CHECK(record(run, "after 17 MiB") == 4096);
  CHECK(run.charged("p", "mem_read", Primitive::copy_bytes_per_cycle_uncached) == 2048);
  // A word counts its line: 960 KiB since, footprint 960 KiB + 16, the L2 rate: 8 / 4.
  CHECK(record(run, "a word after 960 KiB") == 2);
  // Each level's share under its rate's name: the L2's 256 (at 88 KiB), 512 (at 128 KiB), 512 (at
  // 17 MiB, with the L3's 1024 and memory's 2048) and 1 (the word).
  CHECK(run.charged("p", "mem_read", Primitive::copy_bytes_per_cycle_l2) == 256 + 512 + 512 + 1);
  CHECK(run.charged("p", "mem_read", Primitive::copy_bytes_per_cycle_l3) == 1024);
}

TEST_CASE("shm: one byte more of a range another core wrote never multiplies its cost") {
  // Around the word/range boundary and each cache size's footprint (half the cache), on teaching.
  for (std::uint64_t n : {64u, 100u, 4096u, 32768u, 524288u, 4194304u}) {
    auto before = range_run(n + 1, n + 1, n, 1), after = range_run(n + 1, n + 1, n + 1, 1);
    const auto a = static_cast<double>(record(before, "read")),
               b = static_cast<double>(record(after, "read"));
    INFO("bytes ", n, ": ", a, " then ", b, " cycles");
    CHECK(b >= a);
    CHECK(b <= a * 1.01 + 102); // at most one more line's transfer and a byte's share
  }
}

TEST_CASE("shm: spin on one core burns the whole slice; on two cores it ends at the store") {
  const std::string spinner = proc("spinner", kAttach + R"(,
    {"op": "spin", "map": "m", "offset": 0, "while": "== 0", "into": "seen"},
    {"op": "print", "text": "saw {seen}"})");
  const std::string store = kAttach + R"(, {"op": "mem_store", "map": "m", "offset": 0, "value": 1})";
  SUBCASE("one core") {
    auto run = run_text(machine(spinner + "," + proc("storer", store)));
    // The spinner: dispatch 800, shmget 250, shmat 250, its first read (fault 1000 + zero 500 + 1)
    // at 2801, then it spins to its slice's end at 4,000,000: timer 500, context_save 200. The
    // storer: dispatch 800 (4,001,500), shmget and shmat (4,002,000), its store (fault 1000 + 1,
    // 4,003,001), exit (trap_enter 100 + syscall_dispatch 50, 4,003,151). The spinner again:
    // dispatch 800, its read 1: it sees the store at 4,003,952.
    CHECK(printed_at(run, "saw 1") == 4'003'952);
    CHECK(run.charged("spinner", "spin", Primitive::user) == 4'000'000 - 2'801);
  }
  SUBCASE("two cores") {
    auto run = run_text(
        machine(spinner + "," + proc("storer", store, R"("affinity": [1], "arrival": "10us", )"), 2));
    // The storer arrives on idle core 1 at 10,000: sched_pick 100 + idle_exit 1000 +
    // context_restore 200 + address_space_switch 500 (11,800), shmget and shmat (12,300), its store
    // (fault 1000 + 1) is seen at 13,301; the spinner's next read costs the transfer 100 + 1.
    CHECK(printed_at(run, "saw 1") == 13'402);
    CHECK(run.charged("spinner", "spin", Primitive::user) == 13'301 - 2'801);
    CHECK(run.charged("spinner", "spin", Primitive::cache_line_transfer) == 100);
  }
}

TEST_CASE("shm: the ring buffer's busy polling in numbers: about 8 ms a round trip on one core with a 4 ms "
          "slice, well under a microsecond on two") {
  std::string path = std::string(IPCSIM_SOURCE_DIR) + "/scenarios/shm-ring-spin.json";
  for (int cores : {1, 2}) {
    LoadOptions options;
    options.sets.push_back("machine.cores=" + std::to_string(cores));
    auto scenario = load_scenario(path, options);
    Kernel kernel(scenario->model());
    kernel.run();
    std::vector<Cycles> trips;
    for (const auto& r : kernel.records()) trips.push_back(r.end - r.start);
    REQUIRE(trips.size() == 4);
    const double ns_per_cycle = 1e9 / scenario->model().hz;
    for (std::size_t i = 1; i < trips.size(); ++i) { // the first round also pays the page faults
      double ns = static_cast<double>(trips[i]) * ns_per_cycle;
      if (cores == 1) {
        // Two hand-offs, each waiting for the spinner's 4 ms slice to end; at most one of them is
        // shortened by where the slice happened to start.
        CHECK(ns >= 3.9e6);
        CHECK(ns <= 8.01e6);
      } else {
        CHECK(ns < 1000);
      }
    }
    if (cores == 1) CHECK(static_cast<double>(trips[1]) * ns_per_cycle >= 8.0e6);
  }
}

TEST_CASE("shm: every thread spinning on a word no one will store to is a livelock, reported") {
  auto run = run_text(
      machine(proc("a", kAttach + R"(, {"op": "spin", "map": "m", "offset": 0, "while": "!= 1"})") + "," +
              proc("b", kAttach + R"(, {"op": "spin", "map": "m", "offset": 8, "while": "== 0"})")));
  CHECK(run.kernel->runtime_error().find(
            "livelock: every thread spins on a word no other thread will store to") != std::string::npos);
}

TEST_CASE("shm: load-time mistakes are named with their place and what would be accepted") {
  auto op = [](const std::string& o) { return machine(proc("p", o)); };
  CHECK(load_error(op(R"({"op": "spin", "map": "m", "offset": 0, "while": "0"})")) ==
        "test.json: at processes.0.script.0.while: invalid condition \"0\": not two words; expected OP "
        "VALUE with "
        "OP one of == != < <= > >= and VALUE a whole number or a variable, such as \"== next\" (spin while "
        "the word "
        "equals next)");
  CHECK(load_error(op(R"({"op": "spin", "map": "m", "offset": 0, "while": "=< 1"})"))
            .find("unknown comparison \"=<\"") != std::string::npos);
  CHECK(load_error(op(R"({"op": "spin", "map": "m", "offset": 0, "while": "== 1x"})"))
            .find("\"1x\" is neither a number nor a variable name") != std::string::npos);
  CHECK(load_error(op(R"({"op": "spin", "map": "m", "offset": 0, "while": "== nope"})"))
            .find("variable \"nope\" is never set in this script") != std::string::npos);
  CHECK(
      load_error(op(R"({"op": "mem_load", "map": "m", "offset": "1x", "into": "v"})")) ==
      "test.json: at processes.0.script.0.offset: invalid value \"1x\"; expected a whole number or the name "
      "of a "
      "script variable that holds one");
  CHECK(load_error(op(R"({"op": "mem_load", "map": "m", "offset": 0, "into": "result"})")) ==
        "test.json: at processes.0.script.0.into: \"result\" is set by the system calls themselves; choose "
        "another "
        "name");
  CHECK(load_error(op(R"({"op": "mem_load", "map": "m", "offset": 0, "into": "1v"})"))
            .find("invalid variable name \"1v\"") != std::string::npos);
  CHECK(load_error(op(R"({"op": "mem_write", "map": "m", "offset": 0, "bytes": 2, "text": "abc"})")) ==
        "test.json: at processes.0.script.0.text: the text is 3 bytes, longer than \"bytes\" (2); raise "
        "\"bytes\" "
        "or shorten the text");
  CHECK(load_error(op(R"({"op": "shmat", "shmid": 0, "as": "a b"})")) ==
        "test.json: at processes.0.script.0.as: invalid mapping name \"a b\"; use letters, digits, _ and .");
  CHECK(load_error(op(R"({"op": "shmget", "key": 1, "bytes": 1, "flags": ["IPC_NOWAIT"], "into": "i"})")) ==
        "test.json: at processes.0.script.0.flags.0: unknown flag \"IPC_NOWAIT\"; accepted: IPC_CREAT, "
        "IPC_EXCL");
  CHECK(load_error(op(R"({"op": "shmctl", "shmid": 0, "cmd": "IPC_STAT"})")) ==
        "test.json: at processes.0.script.0.into: IPC_STAT needs \"into\": the variable whose fields "
        "(INTO.segsz, "
        "...) receive the segment's state");
  CHECK(load_error(op(R"({"op": "shmctl", "shmid": 0, "cmd": "IPC_RMID", "into": "s"})")) ==
        "test.json: at processes.0.script.0.into: \"into\" goes with IPC_STAT only; drop it");
  CHECK(load_error(op(R"({"op": "shmctl", "shmid": 0, "cmd": "IPC_RMID", "uid": 1})")) ==
        "test.json: at processes.0.script.0.uid: \"uid\" goes with IPC_SET only; drop it");
  CHECK(load_error(op(R"({"op": "shmctl", "shmid": 0, "cmd": "IPC_SET"})")) ==
        "test.json: at processes.0.script.0: IPC_SET changes nothing; give at least one of uid, gid, mode");
  CHECK(load_error(op(R"({"op": "shm_open", "name": "box", "flags": ["O_RDWR"], "fd": "f"})")) ==
        "test.json: at processes.0.script.0.name: invalid name \"box\"; expected \"/name\": a slash, then "
        "a name "
        "without slashes (shm_open gives EINVAL otherwise)");
  CHECK(load_error(op(R"({"op": "shm_unlink", "name": "/)" + std::string(256, 'x') + R"("})"))
            .find("is longer than NAME_MAX (255) after the slash") != std::string::npos);
  CHECK(load_error(op(R"({"op": "shm_open", "name": "/b", "flags": ["O_CREAT"], "fd": "f"})")) ==
        "test.json: at processes.0.script.0.flags: give exactly one access mode: \"O_RDONLY\" or \"O_RDWR\" "
        "(shm_open takes no O_WRONLY)");
  CHECK(load_error(op(R"({"op": "mmap", "bytes": 1, "flags": ["MAP_ANONYMOUS"], "as": "m"})")) ==
        "test.json: at processes.0.script.0.flags: give exactly one of \"MAP_SHARED\" and \"MAP_PRIVATE\" "
        "(mmap "
        "gives EINVAL otherwise)");
  CHECK(
      load_error(op(
          R"({"op": "mmap", "fd": "f", "bytes": 1, "flags": ["MAP_SHARED", "MAP_ANONYMOUS"], "as": "m"})")) ==
      "test.json: at processes.0.script.0.fd: MAP_ANONYMOUS maps no file: drop \"fd\"");
  CHECK(load_error(op(R"({"op": "mmap", "bytes": 1, "flags": ["MAP_SHARED"], "as": "m"})")) ==
        "test.json: at processes.0.script.0.flags: give \"fd\" (a shm_open descriptor), or "
        "\"MAP_ANONYMOUS\" for "
        "anonymous memory");
  CHECK(
      load_error(op(
          R"({"op": "mmap", "bytes": 1, "flags": ["MAP_SHARED", "MAP_ANONYMOUS"], "prot": ["PROT_WRITE"], "as": "m"})")) ==
      "test.json: at processes.0.script.0.prot: mappings without PROT_READ are not modelled (x86 has no "
      "write-only pages); include \"PROT_READ\"");
}

TEST_CASE("shm: a variable holding text where a number is needed stops the run, naming the op") {
  auto run = run_text(machine(proc("p", R"({"op": "set", "var": "o", "value": "x"},
    {"op": "mem_load", "map": "m", "offset": "o", "into": "v"})")));
  CHECK(run.kernel->runtime_error() == "p: mem_load: variable o holds text, not a number");
}

TEST_CASE(
    "shm: mmap and munmap: EINVAL for a zero length, EBADF for a missing descriptor, ENODEV for a pipe; "
    "munmap of a name not mapped succeeds; a munmapped name is SIGSEGV") {
  auto run = run_text(machine(proc("p", R"(
    {"op": "mmap", "bytes": 0, "flags": ["MAP_SHARED", "MAP_ANONYMOUS"], "as": "m"},
    {"op": "print", "text": "zero: {errno}"},
    {"op": "mmap", "fd": "nope", "bytes": 1, "flags": ["MAP_SHARED"], "as": "m"},
    {"op": "print", "text": "no fd: {errno}"},
    {"op": "pipe", "fds": ["r", "w"]},
    {"op": "mmap", "fd": "r", "bytes": 1, "flags": ["MAP_SHARED"], "as": "m"},
    {"op": "print", "text": "pipe: {errno}"},
    {"op": "munmap", "map": "never"},
    {"op": "print", "text": "munmap unknown: {result}"},
    {"op": "mmap", "bytes": 1, "flags": ["MAP_SHARED", "MAP_ANONYMOUS"], "as": "m"},
    {"op": "mem_store", "map": "m", "offset": 4088, "value": 1},
    {"op": "munmap", "map": "m"},
    {"op": "mem_load", "map": "m", "offset": 0, "into": "v"})")));
  CHECK(printed(run, "p") ==
        std::vector<std::string>{"zero: EINVAL", "no fd: EBADF", "pipe: ENODEV", "munmap unknown: 0"});
  CHECK(killed_by(run, "p") == 11);
}

TEST_CASE(
    "shm: IPC_SET changes the permissions (owner only: EPERM otherwise); IPC_STAT needs read permission") {
  auto run = run_text(machine(proc("owner", R"(
    {"op": "shmget", "key": 21, "bytes": 64, "flags": ["IPC_CREAT"], "mode": "0666", "into": "id"},
    {"op": "sleep", "time": "100us"},
    {"op": "shmctl", "shmid": "id", "cmd": "IPC_SET", "mode": "0600"},
    {"op": "shmctl", "shmid": "id", "cmd": "IPC_STAT", "into": "st"},
    {"op": "print", "text": "mode {st.perms}"},
    {"op": "sleep", "time": "1ms"})") +
                              "," +
                              proc("other", R"(
    {"op": "sleep", "time": "50us"},
    {"op": "shmget", "key": 21, "bytes": 64, "into": "id"},
    {"op": "shmctl", "shmid": "id", "cmd": "IPC_SET", "uid": 2000},
    {"op": "print", "text": "IPC_SET by another user: {errno}"},
    {"op": "sleep", "time": "100us"},
    {"op": "shmget", "key": 21, "bytes": 64, "into": "id2"},
    {"op": "print", "text": "shmget after 0600: {errno}"},
    {"op": "shmctl", "shmid": "id", "cmd": "IPC_STAT", "into": "st"},
    {"op": "print", "text": "IPC_STAT after 0600: {errno}"})",
                                   R"("uid": 2000, )")));
  CHECK(printed(run, "owner") == std::vector<std::string>{"mode 600"});
  CHECK(printed(run, "other") == std::vector<std::string>{"IPC_SET by another user: EPERM",
                                                          "shmget after 0600: EACCES",
                                                          "IPC_STAT after 0600: EACCES"});
}

TEST_CASE(
    "shm: O_TRUNC empties an object (its mapping then faults with SIGBUS); shm_unlink removes the name while "
    "the mapping lives on") {
  auto run = run_text(machine(proc("p", R"(
    {"op": "shm_open", "name": "/t", "flags": ["O_RDWR", "O_CREAT"], "fd": "f"},
    {"op": "ftruncate", "fd": "f", "bytes": 4096},
    {"op": "mmap", "fd": "f", "bytes": 4096, "flags": ["MAP_SHARED"], "as": "m"},
    {"op": "mem_store", "map": "m", "offset": 0, "value": 3},
    {"op": "shm_unlink", "name": "/t"},
    {"op": "shm_open", "name": "/t", "flags": ["O_RDWR"], "fd": "g"},
    {"op": "print", "text": "reopen after unlink: {errno}"},
    {"op": "mem_load", "map": "m", "offset": 0, "into": "v"},
    {"op": "print", "text": "mapping still holds {v}"},
    {"op": "shm_open", "name": "/u", "flags": ["O_RDWR", "O_CREAT"], "fd": "u"},
    {"op": "ftruncate", "fd": "u", "bytes": 100},
    {"op": "mmap", "fd": "u", "bytes": 100, "flags": ["MAP_SHARED"], "as": "n"},
    {"op": "mem_store", "map": "n", "offset": 88, "value": 1},
    {"op": "shm_open", "name": "/u", "flags": ["O_RDONLY", "O_TRUNC"], "fd": "w"},
    {"op": "print", "text": "truncated"},
    {"op": "mem_load", "map": "n", "offset": 0, "into": "v"},
    {"op": "print", "text": "not reached"})")));
  CHECK(printed(run, "p") ==
        std::vector<std::string>{"reopen after unlink: ENOENT", "mapping still holds 3", "truncated"});
  CHECK(killed_by(run, "p") == 7);
}

TEST_CASE("shm: spin compares with a variable and any of == != < <= > >=; atomic_add wraps around like the "
          "hardware") {
  auto run = run_text(machine(proc("p", kAttach + R"(,
    {"op": "mem_store", "map": "m", "offset": 0, "value": 5},
    {"op": "set", "var": "limit", "value": 5},
    {"op": "spin", "map": "m", "offset": 0, "while": "< limit", "into": "a"},
    {"op": "spin", "map": "m", "offset": 0, "while": "!= 5", "into": "b"},
    {"op": "spin", "map": "m", "offset": 0, "while": ">= 6", "into": "c"},
    {"op": "spin", "map": "m", "offset": 0, "while": "<= -1"},
    {"op": "mem_store", "map": "m", "offset": 8, "value": 9223372036854775807},
    {"op": "atomic_add", "map": "m", "offset": 8, "value": 1},
    {"op": "mem_load", "map": "m", "offset": 8, "into": "w"},
    {"op": "print", "text": "{a} {b} {c} {w}"})")));
  CHECK(printed(run, "p") == std::vector<std::string>{"5 5 5 -9223372036854775808"});
  CHECK(run.charged("p", "spin", Primitive::user) == 0); // no condition held: no spinning
}

TEST_CASE("shm: a spinner whose only possible storer sleeps forever is a livelock too") {
  auto run = run_text(
      machine(proc("a", kAttach + R"(, {"op": "spin", "map": "m", "offset": 0, "while": "== 0"})") + "," +
              proc("b", R"({"op": "pipe", "fds": ["r", "w"]}, {"op": "read", "fd": "r", "bytes": 1},
                                             {"op": "mem_store", "map": "m", "offset": 0, "value": 1})")));
  CHECK(run.kernel->runtime_error() == "a: livelock: every thread spins on a word no other thread will store "
                                       "to, or sleeps with nothing left to wake "
                                       "it (spin on m offset 0 while the word == 0, and it is 0)");
}

TEST_CASE(
    "shm: ipcs_shm prints the segments as `ipcs -m` does, a removed one still attached with status dest") {
  auto run = run_text(machine(proc("p", R"(
    {"op": "shmget", "key": "0x1234", "bytes": 100, "flags": ["IPC_CREAT"], "mode": "0640", "into": "a"},
    {"op": "shmget", "key": "IPC_PRIVATE", "bytes": 8192, "into": "b"},
    {"op": "shmat", "shmid": "b", "as": "m"},
    {"op": "shmctl", "shmid": "b", "cmd": "IPC_RMID"},
    {"op": "ipcs_shm"})")));
  CHECK(printed(run, "p") ==
        std::vector<std::string>{"------ Shared Memory Segments --------",
                                 "key        shmid      owner      perms      bytes      nattch     status",
                                 "0x00001234 0          1000       640        100        0",
                                 "0x00000000 1          1000       666        8192       1          dest"});
}

TEST_CASE("shm: segments, objects and anonymous mappings count against the run's ipc_objects limit") {
  LoadOptions o;
  o.limits.ipc_objects = 3;
  auto run = run_text(machine(proc("p", R"({"op": "repeat", "count": 5, "body": [
    {"op": "mmap", "bytes": 1, "flags": ["MAP_SHARED", "MAP_ANONYMOUS"], "as": "m"}]})")),
                      o);
  CHECK(run.kernel->runtime_error() ==
        "p: creating an anonymous mapping: the run created more than 3 IPC objects (--limit ipc_objects=N "
        "raises it)");
  auto segments = run_text(machine(proc("p", R"({"op": "repeat", "count": 5, "body": [
    {"op": "shmget", "key": "IPC_PRIVATE", "bytes": 1, "into": "id"},
    {"op": "shmctl", "shmid": "id", "cmd": "IPC_RMID"}]})")),
                           o);
  CHECK(segments.kernel->runtime_error() ==
        "p: creating a System V shared memory segment: the run created more than 3 IPC objects (--limit "
        "ipc_objects=N raises it)");
}
