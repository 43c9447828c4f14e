// Pipes and FIFOs (models/pipe.cpp): partial reads, end of file, blocking writers continuing where
// they stopped, atomic writes up to pipe_buf, the wake-all herd and its spurious wakeups, EPIPE and
// SIGPIPE, O_NONBLOCK, named pipes and their rendezvous, the "pipe" channel, load-time errors and
// exact cycle counts under the teaching preset.
#include "error.hpp"
#include "fs.hpp"
#include "harness.hpp"
#include "ipc.hpp"
#include "report.hpp"
#include "script.hpp"

#include <doctest/doctest.h>

using namespace ipcsim;
using ipcsim::test::run_text;

// Failed comparisons of console lines show the lines.
namespace doctest {
template <> struct StringMaker<std::vector<std::string>> {
  static String convert(const std::vector<std::string>& lines) {
    std::string out = "{";
    for (const auto& line : lines) out += "\n  \"" + line + "\"";
    return (out + "}").c_str();
  }
};
} // namespace doctest

namespace {

using Lines = std::vector<std::string>;

// Console lines as "thread@cycle: text".
Lines console(const ipcsim::test::Run& run) {
  Lines lines;
  for (const auto& line : run.kernel->console())
    lines.push_back(run.kernel->threads()[line.thread].display_name() + "@" + std::to_string(line.at) + ": " +
                    line.text);
  return lines;
}

// Console texts only.
Lines texts(const ipcsim::test::Run& run) {
  Lines lines;
  for (const auto& line : run.kernel->console()) lines.push_back(line.text);
  return lines;
}

// One process "p" running `ops`.
std::string one_process(const std::string& ops, const std::string& costs = "ideal") {
  return R"({"machine": {"costs": ")" + costs +
         R"("}, "processes": [{"name": "p", "working_set_pages": 0, "script": [)" + ops + "]}]}";
}

// One process "p" with the given threads (a JSON list's inside); threads share its descriptors.
// FIFO scheduling on one core with every kernel cost zero: only sleeps and computes take time.
std::string threads(const std::string& list, const std::string& process_extra = "") {
  return R"({"machine": {"costs": "ideal", "scheduler": {"policy": "fifo"}}, "processes": [{"name": "p")" +
         process_extra + R"(, "threads": [)" + list + "]}]}";
}

using ipcsim::test::load_error;

// The rows of the end-of-run listing of pipes.
std::vector<std::vector<std::string>> pipe_rows(const ipcsim::test::Run& run) {
  for (const auto& table : run.kernel->ipc_listing())
    if (table.title == "Pipes and FIFOs") return table.rows;
  return {};
}

const char* kReadLoop = R"(
  {"op": "read", "fd": "r", "bytes": 64},
  {"op": "while", "cond": "result > 0", "body": [
    {"op": "print", "text": "{result} {msg.text}"},
    {"op": "read", "fd": "r", "bytes": 64}]},
  {"op": "print", "text": "eof {result}"})";

} // namespace

TEST_CASE("pipe: a write then a read, cycle by cycle under the teaching preset") {
  auto run = run_text(one_process(R"(
    {"op": "pipe", "fds": ["r", "w"]},
    {"op": "write", "fd": "w", "bytes": 100, "text": "hello"},
    {"op": "print", "text": "wrote {result}"},
    {"op": "read", "fd": "r", "bytes": 100},
    {"op": "print", "text": "read {result} {msg.text} from {msg.sender}"})",
                                  "teaching"));
  // dispatch: sched_pick 100 + context_restore 200 + address_space_switch 500 = 800
  // pipe: trap_enter 100 + syscall_dispatch 50 + trap_exit 100 = 250 -> 1050
  // write 100 B: 150 + fd_lookup 20 + security_hook 10 + lock_acquire 20 + page_alloc 200 (a new
  //   pipe has no tmp_page) + copy_setup 50 + ceil(100 / 8) = 13 + waitqueue_op 20 (the pipe was
  //   empty: __wake_up on its readers) + trap_exit 100 = 583 -> 1633
  // read 100 B: 150 + 20 + 10 + 20 + 50 + 13 + trap_exit 100 = 363 -> 1996 (the emptied page
  //   becomes the pipe's tmp_page); exit: trap_enter 100 + syscall_dispatch 50 -> 2146
  CHECK(console(run) == Lines{"p@1633: wrote 100", "p@1996: read 100 hello from p"});
  CHECK(run.charged("p", "write", Primitive::copy_setup) == 50);
  CHECK(run.charged("p", "write", Primitive::copy_bytes_per_cycle) == 13);
  CHECK(run.charged("p", "write", Primitive::page_alloc) == 200);
  CHECK(run.charged("p", "write", Primitive::waitqueue_op) == 20);
  CHECK(run.charged("p", "read", Primitive::copy_setup) == 50);
  CHECK(run.charged("p", "read", Primitive::copy_bytes_per_cycle) == 13);
  CHECK(run.charged("p", "read", Primitive::fd_lookup) == 20);
  CHECK(run.charged("p", "read", Primitive::security_hook) == 10);
  CHECK(run.charged("p", "read", Primitive::lock_acquire) == 20);
  CHECK(run.charged("p", "read", Primitive::waitqueue_op) == 0);
  CHECK(run.charged("p", "pipe", Primitive::trap_enter) == 100);
  CHECK(run.finished("p") == 2146);
}

TEST_CASE("pipe: an emptied page is kept as tmp_page; a write that merges takes no page") {
  // Teaching. Writes of 100 B: the first takes a page (page_alloc 200); the second merges into it
  // (100 + 100 <= 4096: no page). The read of 200 B empties the page: it becomes tmp_page. The
  // next write takes tmp_page (no page_alloc); a write of 8192 B then needs two more pages: its
  // head fragment (8192 % 4096 = 0) does not merge, and there is no tmp_page left: 2 x 200.
  auto run = run_text(one_process(R"(
    {"op": "pipe", "fds": ["r", "w"]},
    {"op": "write", "fd": "w", "bytes": 100},
    {"op": "write", "fd": "w", "bytes": 100},
    {"op": "read", "fd": "r", "bytes": 200},
    {"op": "write", "fd": "w", "bytes": 100},
    {"op": "write", "fd": "w", "bytes": 8192})",
                                  "teaching"));
  CHECK(run.charged("p", "write", Primitive::page_alloc) == 200 + 0 + 0 + 2 * 200);
  // __wake_up on the readers only when the pipe was empty: the first write and the third.
  CHECK(run.charged("p", "write", Primitive::waitqueue_op) == 2 * 20);
  // 8192 B: footprint 16 KiB fits the 64 KiB L1: 1024 cycles at 8 B/cycle, nothing at slower levels.
  CHECK(run.charged("p", "write", Primitive::copy_bytes_per_cycle) == 13 + 13 + 13 + 1024);
  CHECK(run.charged("p", "write", Primitive::copy_bytes_per_cycle_l2) == 0);
}

TEST_CASE("pipe: data queued in the pipe counts in a copy's footprint, as in a stream on one core") {
  // Teaching with a 16 KiB L1 (8 B/cycle; L2 4 B/cycle, so 0.125 cycles a byte more once a
  // footprint is twice the L1). Sixteen 4 KiB writes fill the pipe, then sixteen reads drain it: the
  // k-th write's footprint is what the pipe then holds and the user's 4 KiB, 4096 (k + 1); the j-th
  // read's, 4096 (18 - j). L2 share = clamp((footprint - 16384) / 16384, 0, 1).
  //   writes k = 4, 5, 6: shares 0.25, 0.5, 0.75 -> 128, 256, 384 cycles; k = 7..16: 512 each
  //     -> 128 + 256 + 384 + 10 x 512 = 5888
  //   reads j = 1..10: 512 each; j = 11, 12, 13: 384, 256, 128; j = 14..16: 0 -> 5888, the
  //     writes' mirror image
  // The L1 part is 4096 / 8 = 512 cycles for each of the 32 copies. Alternating one write and one
  // read keeps the footprint at 8 KiB: no L2 cycles at all.
  auto costs = R"({"preset": "teaching", "cache_l1_bytes": 16384})";
  auto scenario = [&](const std::string& ops) {
    return R"({"machine": {"costs": )" + std::string(costs) +
           R"(}, "processes": [{"name": "p", "working_set_pages": 0, "script": [{"op": "pipe", "fds": ["r", "w"]}, )" +
           ops + "]}]}";
  };
  auto stream =
      run_text(scenario(R"({"op": "repeat", "count": 16, "body": [{"op": "write", "fd": "w", "bytes": 4096}]},
      {"op": "repeat", "count": 16, "body": [{"op": "read", "fd": "r", "bytes": 4096}]})"));
  CHECK(stream.charged("p", "write", Primitive::copy_bytes_per_cycle_l2) == 5888);
  CHECK(stream.charged("p", "read", Primitive::copy_bytes_per_cycle_l2) == 5888);
  CHECK(stream.charged("p", "write", Primitive::copy_bytes_per_cycle) == 16 * 512);
  CHECK(stream.charged("p", "read", Primitive::copy_bytes_per_cycle) == 16 * 512);
  auto ping =
      run_text(scenario(R"({"op": "repeat", "count": 16, "body": [{"op": "write", "fd": "w", "bytes": 4096},
      {"op": "read", "fd": "r", "bytes": 4096}]})"));
  CHECK(ping.charged("p", "write", Primitive::copy_bytes_per_cycle_l2) == 0);
  CHECK(ping.charged("p", "read", Primitive::copy_bytes_per_cycle_l2) == 0);
}

TEST_CASE("pipe: reads are partial; a read's text is the text of every write whose first byte it takes") {
  auto run = run_text(one_process(R"(
    {"op": "pipe", "fds": ["r", "w"]},
    {"op": "write", "fd": "w", "bytes": 10, "text": "one"},
    {"op": "write", "fd": "w", "bytes": 10, "text": "two"},
    {"op": "write", "fd": "w", "bytes": 10, "text": "three"},
    {"op": "read", "fd": "r", "bytes": 4},
    {"op": "print", "text": "{result} [{msg.text}]"},
    {"op": "read", "fd": "r", "bytes": 20},
    {"op": "print", "text": "{result} [{msg.text}]"},
    {"op": "read", "fd": "r", "bytes": 100},
    {"op": "print", "text": "{result} [{msg.text}] {msg.bytes}"},
    {"op": "read", "fd": "r", "bytes": 0},
    {"op": "print", "text": "{result}"})"));
  // Under "ideal" a copy takes one cycle. min(available, requested) each time: 4 bytes of "one";
  // then 20: its last 6, all of "two" and the first 4 of "three" (both first bytes: both texts);
  // then the last 6 of "three" (no write starts there: no text); a read of 0 bytes returns 0.
  CHECK(console(run) == Lines{"p@4: 4 [one]", "p@5: 20 [twothree]", "p@6: 6 [] 6", "p@6: 0"});
}

TEST_CASE("pipe: an empty pipe blocks its reader; end of file once the last writer closes") {
  auto run = run_text(threads(R"(
    {"name": "reader", "script": [{"op": "pipe", "fds": ["r", "w"]}, )" +
                              std::string(kReadLoop) + R"(]},
    {"name": "writer", "script": [
      {"op": "sleep", "time": 100},
      {"op": "write", "fd": "w", "bytes": 5, "text": "a"},
      {"op": "sleep", "time": 100},
      {"op": "write", "fd": "w", "bytes": 6, "text": "b"},
      {"op": "sleep", "time": 100},
      {"op": "close", "fd": "w"}]})"));
  // One cycle per copy: the writer's at 100 -> 101, the reader's -> 102; the writer sleeps from 101
  // to 201, copies -> 202, the reader -> 203; the close at 302 wakes the reader with end of file.
  CHECK(console(run) == Lines{"p/reader@102: 5 a", "p/reader@203: 6 b", "p/reader@302: eof 0"});
  CHECK(run.account("p/reader").blocked_cycles == 101 + 100 + 99);
}

TEST_CASE("pipe: a read with no writer left returns 0 at once; wrong ends and unknown names give EBADF") {
  auto run = run_text(one_process(R"(
    {"op": "pipe", "fds": ["r", "w"]},
    {"op": "read", "fd": "w", "bytes": 1},
    {"op": "print", "text": "read w: {result} {errno}"},
    {"op": "write", "fd": "r", "bytes": 1},
    {"op": "print", "text": "write r: {result} {errno}"},
    {"op": "read", "fd": "nope", "bytes": 1},
    {"op": "print", "text": "read nope: {result} {errno}"},
    {"op": "pipe_stat", "fd": "nope"},
    {"op": "print", "text": "pipe_stat nope: {result} {errno}"},
    {"op": "close", "fd": "w"},
    {"op": "read", "fd": "r", "bytes": 1},
    {"op": "print", "text": "eof: {result} {errno}"})"));
  CHECK(console(run) == Lines{"p@0: read w: -1 EBADF", "p@0: write r: -1 EBADF", "p@0: read nope: -1 EBADF",
                              "p@0: pipe_stat nope: -1 EBADF", "p@0: eof: 0 "});
}

TEST_CASE("pipe: a writer blocks on a full pipe and continues where it stopped") {
  // capacity 64, no atomic writes: 200 bytes go in as 64 + 64 + 64 + 8, each chunk waking the reader.
  auto run = run_text(threads(R"(
    {"name": "writer", "script": [
      {"op": "pipe", "fds": ["r", "w"], "capacity": 64, "pipe_buf": 0},
      {"op": "write", "fd": "w", "bytes": 200, "text": "big"},
      {"op": "print", "text": "wrote {result}"},
      {"op": "close", "fd": "w"}]},
    {"name": "reader", "script": [{"op": "sleep", "time": 10}, )" +
                              std::string(kReadLoop) + "]}"));
  // The writer copies 64 (0 -> 1) and sleeps; the reader's sleep runs 1 -> 11. Then they alternate,
  // one cycle per copy; only the chunk with the write's first byte carries its text.
  CHECK(console(run) == Lines{"p/reader@12: 64 big", "p/reader@14: 64 ", "p/reader@16: 64 ",
                              "p/writer@17: wrote 200", "p/reader@18: 8 ", "p/reader@18: eof 0"});
  CHECK(run.account("p/writer").blocked_cycles == 11 + 1 + 1);
}

TEST_CASE("pipe: a write longer than pipe_buf is split and interleaves with another writer's") {
  // capacity 100, pipe_buf 100. At 10 A writes 150 (not atomic): 100 go in (-> 11), A sleeps with
  // 50 to go. At 30 R and B wake (in that order). R takes 100 (-> 31) and wakes A, behind B. B's 80
  // bytes are atomic and 100 are free: all 80 go in (-> 32). A writes 20 (-> 33) and sleeps. At 41
  // R takes B's 80 (-> 42), waking A, and then A's 20 (-> 43); A writes its last 30 (-> 44).
  // The pipe held A100 | B80 | A20 | A30: A's write was split around B's.
  auto run = run_text(threads(R"(
    {"name": "A", "script": [
      {"op": "pipe", "fds": ["r", "w"], "capacity": 100, "pipe_buf": 100},
      {"op": "sleep", "time": 10},
      {"op": "write", "fd": "w", "bytes": 150, "text": "A"},
      {"op": "print", "text": "A wrote {result}"}]},
    {"name": "R", "script": [
      {"op": "sleep", "time": 30},
      {"op": "read", "fd": "r", "bytes": 100},
      {"op": "print", "text": "{result} [{msg.text}]"},
      {"op": "sleep", "time": 10},
      {"op": "read", "fd": "r", "bytes": 80},
      {"op": "print", "text": "{result} [{msg.text}]"},
      {"op": "read", "fd": "r", "bytes": 100},
      {"op": "print", "text": "{result} [{msg.text}]"}]},
    {"name": "B", "script": [
      {"op": "sleep", "time": 30},
      {"op": "write", "fd": "w", "bytes": 80, "text": "B"},
      {"op": "print", "text": "B wrote {result}"}]})"));
  CHECK(console(run) == Lines{"p/R@31: 100 [A]", "p/B@32: B wrote 80", "p/R@42: 80 [B]", "p/R@43: 20 []",
                              "p/A@44: A wrote 150"});
}

TEST_CASE("pipe: an atomic write waits until all of it fits, so two writers never interleave") {
  // capacity 100, pipe_buf 100. A writes 80 (0 -> 1); B's 80 must wait for 80 free bytes: at 21 the
  // reader takes 50 (-> 22): 70 free, B wakes and still cannot write (a spurious wakeup); at 32 the
  // reader takes 30 (-> 33): 100 free, B writes (-> 34). Its bytes follow A's, whole.
  auto run = run_text(threads(R"(
    {"name": "A", "script": [
      {"op": "pipe", "fds": ["r", "w"], "capacity": 100, "pipe_buf": 100},
      {"op": "write", "fd": "w", "bytes": 80, "text": "A"},
      {"op": "sleep", "time": 100},
      {"op": "pipe_stat", "fd": "w"},
      {"op": "print", "text": "bytes {pipe.bytes} spurious {pipe.spurious} writes {pipe.writes}"}]},
    {"name": "B", "script": [
      {"op": "sleep", "time": 10},
      {"op": "write", "fd": "w", "bytes": 80, "text": "B"},
      {"op": "print", "text": "B wrote {result}"}]},
    {"name": "R", "script": [
      {"op": "sleep", "time": 20},
      {"op": "read", "fd": "r", "bytes": 50},
      {"op": "print", "text": "{result} [{msg.text}]"},
      {"op": "sleep", "time": 10},
      {"op": "read", "fd": "r", "bytes": 30},
      {"op": "print", "text": "{result} [{msg.text}]"}]})"));
  CHECK(console(run) == Lines{"p/R@22: 50 [A]", "p/R@33: 30 []", "p/B@34: B wrote 80",
                              "p/A@101: bytes 80 spurious 1 writes 2"});
}

TEST_CASE("pipe: wake all wakes the whole herd (spurious wakeups counted), wake one only the first") {
  auto scenario = [](const std::string& wake) {
    return threads(R"(
      {"name": "main", "script": [{"op": "pipe", "fds": ["r", "w"], "wake": ")" +
                   wake + R"("}]},
      {"name": "reader", "count": 3, "script": [
        {"op": "sleep", "time": 1},
        {"op": "read", "fd": "r", "bytes": 64},
        {"op": "print", "text": "got {msg.text}"}]},
      {"name": "writer", "script": [
        {"op": "sleep", "time": 10},
        {"op": "write", "fd": "w", "bytes": 8, "text": "m1"},
        {"op": "sleep", "time": 10},
        {"op": "write", "fd": "w", "bytes": 8, "text": "m2"},
        {"op": "sleep", "time": 10},
        {"op": "write", "fd": "w", "bytes": 8, "text": "m3"},
        {"op": "pipe_stat", "fd": "w"},
        {"op": "print", "text": "spurious {pipe.spurious} reads {pipe.reads} writes {pipe.writes}"}]})");
  };
  // all: m1 (at 10 -> 11) wakes 3 readers, 2 find nothing; m2 (21 -> 22) wakes 2, 1 finds nothing;
  // m3 (32 -> 33) wakes 1: 3 spurious. The writer looks before reader[2] has run: 2 reads so far.
  auto all = run_text(scenario("all"));
  CHECK(console(all) == Lines{"p/reader[0]@12: got m1", "p/reader[1]@23: got m2",
                              "p/writer@33: spurious 3 reads 2 writes 3", "p/reader[2]@34: got m3"});
  CHECK(pipe_rows(all).empty()); // freed at the end
  auto one = run_text(scenario("one"));
  CHECK(console(one) == Lines{"p/reader[0]@12: got m1", "p/reader[1]@23: got m2",
                              "p/writer@33: spurious 0 reads 2 writes 3", "p/reader[2]@34: got m3"});
}

TEST_CASE("pipe: the herd's cost in cycles under the teaching preset") {
  // Two reader threads of one process asleep on an empty pipe; one 8-byte write. Wake all: the
  // writer pays 2 wakeups (200); the loser pays a dispatch (sched_pick 100 + context_restore 200)
  // and a second context_save (200): 600 cycles for nothing. Wake one: 1 wakeup.
  auto scenario = [](const std::string& wake) {
    return R"({"processes": [{"name": "p", "working_set_pages": 0, "threads": [
      {"name": "r", "count": 2, "script": [
        {"op": "sleep", "time": "1us"}, {"op": "read", "fd": "r", "bytes": 8}]},
      {"name": "w", "script": [
        {"op": "pipe", "fds": ["r", "w"], "wake": ")" +
           wake + R"("},
        {"op": "sleep", "time": "10us"},
        {"op": "write", "fd": "w", "bytes": 8},
        {"op": "sleep", "time": "10us"},
        {"op": "pipe_stat", "fd": "w"},
        {"op": "print", "text": "{pipe.spurious}"},
        {"op": "close", "fd": "w"}]}]}]})";
  };
  auto all = run_text(scenario("all"));
  CHECK(console(all).back().ends_with(": 1"));
  CHECK(all.charged("p/w", "write", Primitive::wakeup) == 200);
  CHECK(all.charged("p/r[1]", "read", Primitive::context_save) == 400); // slept twice, then EOF
  CHECK(all.charged("p/r[0]", "read", Primitive::context_save) == 200);
  auto one = run_text(scenario("one"));
  CHECK(console(one).back().ends_with(": 0"));
  CHECK(one.charged("p/w", "write", Primitive::wakeup) == 100);
  CHECK(one.charged("p/r[1]", "read", Primitive::context_save) == 200);
}

TEST_CASE("pipe: a write with no reader gets EPIPE and SIGPIPE terminates the writer") {
  std::string ops = R"(
    {"op": "pipe", "fds": ["r", "w"]},
    {"op": "close", "fd": "r"},
    {"op": "write", "fd": "w", "bytes": 10},
    {"op": "print", "text": "write: {result} {errno}"})";
  auto killed = run_text(one_process(ops));
  CHECK(console(killed).empty());
  CHECK(killed.kernel->processes()[0].killed_by == kSIGPIPE);
  auto ignored = run_text(R"({"machine": {"costs": "ideal"}, "processes": [{"name": "p", "sigpipe": "ignore",
    "script": [)" + ops + "]}]}");
  CHECK(console(ignored) == Lines{"p@0: write: -1 EPIPE"});
  CHECK(ignored.kernel->processes()[0].killed_by == 0);
  // A zero-byte write returns 0 before looking for readers (Linux pipe_write).
  auto zero = run_text(one_process(R"(
    {"op": "pipe", "fds": ["r", "w"]}, {"op": "close", "fd": "r"},
    {"op": "write", "fd": "w", "bytes": 0}, {"op": "print", "text": "{result}"})"));
  CHECK(console(zero) == Lines{"p@0: 0"});
}

TEST_CASE("pipe: a writer blocked on a full pipe is woken by the last reader's close and gets EPIPE") {
  auto run = run_text(threads(R"(
    {"name": "writer", "script": [
      {"op": "pipe", "fds": ["r", "w"], "capacity": 16, "pipe_buf": 16},
      {"op": "write", "fd": "w", "bytes": 16},
      {"op": "write", "fd": "w", "bytes": 8},
      {"op": "print", "text": "second write: {result} {errno}"}]},
    {"name": "closer", "script": [
      {"op": "sleep", "time": 50},
      {"op": "close", "fd": "r"}]})",
                              R"(, "sigpipe": "ignore")"));
  CHECK(console(run) == Lines{"p/writer@51: second write: -1 EPIPE"});
  // Part of a non-atomic write already in: the count written, and SIGPIPE all the same.
  auto partial = run_text(threads(R"(
    {"name": "writer", "script": [
      {"op": "pipe", "fds": ["r", "w"], "capacity": 16, "pipe_buf": 0},
      {"op": "write", "fd": "w", "bytes": 40},
      {"op": "print", "text": "write: {result} {errno}"}]},
    {"name": "closer", "script": [{"op": "sleep", "time": 50}, {"op": "close", "fd": "r"}]})"));
  CHECK(console(partial).empty());
  CHECK(partial.kernel->processes()[0].killed_by == kSIGPIPE);
  CHECK(partial.thread("p/writer").result == 16);
}

TEST_CASE("pipe: O_NONBLOCK turns each block into EAGAIN; a long write takes what fits") {
  auto run = run_text(one_process(R"(
    {"op": "pipe", "fds": ["r", "w"], "capacity": 100, "pipe_buf": 50},
    {"op": "fcntl", "fd": "r", "nonblock": true},
    {"op": "fcntl", "fd": "w", "nonblock": true},
    {"op": "read", "fd": "r", "bytes": 10},
    {"op": "print", "text": "empty read: {result} {errno}"},
    {"op": "write", "fd": "w", "bytes": 70},
    {"op": "print", "text": "write 70: {result}"},
    {"op": "write", "fd": "w", "bytes": 40},
    {"op": "print", "text": "atomic 40 into 30 free: {result} {errno}"},
    {"op": "write", "fd": "w", "bytes": 60},
    {"op": "print", "text": "60 > pipe_buf into 30 free: {result}"},
    {"op": "write", "fd": "w", "bytes": 60},
    {"op": "print", "text": "full: {result} {errno}"},
    {"op": "fcntl", "fd": "r", "nonblock": false},
    {"op": "read", "fd": "r", "bytes": 1000},
    {"op": "print", "text": "read: {result}"})"));
  CHECK(console(run) == Lines{"p@0: empty read: -1 EAGAIN", "p@1: write 70: 70",
                              "p@1: atomic 40 into 30 free: -1 EAGAIN", "p@2: 60 > pipe_buf into 30 free: 30",
                              "p@2: full: -1 EAGAIN", "p@3: read: 100"});
}

TEST_CASE("pipe: mkfifo and open errors") {
  auto run = run_text(R"({"machine": {"costs": "ideal"}, "processes": [
    {"name": "owner", "script": [
      {"op": "mkfifo", "path": "/tmp/f", "mode": "0600"},
      {"op": "mkfifo", "path": "/tmp/f"},
      {"op": "print", "text": "again: {errno}"},
      {"op": "creat", "path": "/tmp/file"},
      {"op": "open", "path": "/tmp/nothing", "fd": "x", "mode": "read"},
      {"op": "print", "text": "missing: {errno}"},
      {"op": "open", "path": "/tmp/file", "fd": "x", "mode": "read"},
      {"op": "print", "text": "regular: {errno}"},
      {"op": "open", "path": "/tmp/f", "fd": "x", "mode": "write", "nonblock": true},
      {"op": "print", "text": "no reader: {errno}"},
      {"op": "open", "path": "/tmp/f", "fd": "x", "mode": "read", "nonblock": true},
      {"op": "print", "text": "nonblocking read open: {result}"},
      {"op": "open", "path": "/tmp/f", "fd": "y", "mode": "write", "nonblock": true},
      {"op": "print", "text": "now a reader: {result}"}]},
    {"name": "other", "uid": 1001, "gid": 1001, "arrival": 10, "script": [
      {"op": "open", "path": "/tmp/f", "fd": "x", "mode": "read"},
      {"op": "print", "text": "other user: {errno}"}]}]})");
  CHECK(console(run) == Lines{"owner@0: again: EEXIST", "owner@0: missing: ENOENT",
                              "owner@0: regular: EOPNOTSUPP", "owner@0: no reader: ENXIO",
                              "owner@0: nonblocking read open: 0", "owner@0: now a reader: 0",
                              "other@10: other user: EACCES"});
}

TEST_CASE("pipe: opening a FIFO is a rendezvous, whichever side comes first") {
  auto run = run_text(R"({"machine": {"costs": "ideal", "scheduler": {"policy": "fifo"}}, "processes": [
    {"name": "reader", "script": [
      {"op": "mkfifo", "path": "/tmp/f", "mode": "0666"},
      {"op": "open", "path": "/tmp/f", "fd": "in", "mode": "read"},
      {"op": "print", "text": "read open returned"},
      {"op": "read", "fd": "in", "bytes": 10},
      {"op": "print", "text": "{result} {msg.text}"}]},
    {"name": "writer", "arrival": 50, "script": [
      {"op": "open", "path": "/tmp/f", "fd": "out", "mode": "write"},
      {"op": "print", "text": "write open returned"},
      {"op": "write", "fd": "out", "bytes": 5, "text": "hi"},
      {"op": "close", "fd": "out"},
      {"op": "sleep", "time": 100},
      {"op": "open", "path": "/tmp/f", "fd": "out", "mode": "write"},
      {"op": "print", "text": "second write open returned"}]},
    {"name": "late", "arrival": 300, "script": [
      {"op": "open", "path": "/tmp/f", "fd": "in", "mode": "read"},
      {"op": "print", "text": "read open returned at once"},
      {"op": "open", "path": "/tmp/f", "fd": "both", "mode": "readwrite"},
      {"op": "print", "text": "readwrite open returned {result}"}]}]})");
  // The reader waits 0..50 for a writer; it runs once the writer sleeps (write: one cycle, 50 -> 51).
  // The writer's second open waits from 151 for a reader; "late" opens at 300 and wakes it.
  CHECK(console(run) == Lines{"writer@50: write open returned", "reader@51: read open returned",
                              "reader@52: 5 hi", "late@300: read open returned at once",
                              "late@300: readwrite open returned 0",
                              "writer@300: second write open returned"});
  CHECK(run.account("writer").blocked_cycles == 100 + 149);
}

TEST_CASE("pipe: unlink removes only the name; the FIFO's pipe lives while a descriptor refers to it") {
  auto run = run_text(one_process(R"(
    {"op": "mkfifo", "path": "/tmp/f"},
    {"op": "open", "path": "/tmp/f", "fd": "both", "mode": "readwrite"},
    {"op": "unlink", "path": "/tmp/f"},
    {"op": "write", "fd": "both", "bytes": 7, "text": "still"},
    {"op": "read", "fd": "both", "bytes": 7},
    {"op": "print", "text": "{result} {msg.text}"},
    {"op": "write", "fd": "both", "bytes": 3},
    {"op": "open", "path": "/tmp/f", "fd": "again", "mode": "read"},
    {"op": "print", "text": "reopen: {errno}"},
    {"op": "sleep", "time": 1})"));
  CHECK(console(run) == Lines{"p@2: 7 still", "p@3: reopen: ENOENT"});
}

TEST_CASE("pipe: the end-of-run listing shows live pipes, their bytes, ends and counts") {
  auto run = run_text(R"({"machine": {"costs": "ideal"},
    "channels": [{"name": "c", "mechanism": "pipe", "capacity": 512, "pipe_buf": 512}],
    "processes": [{"name": "p", "script": [
      {"op": "mkfifo", "path": "/tmp/f"},
      {"op": "pipe", "fds": ["r", "w"]},
      {"op": "write", "fd": "w", "bytes": 30},
      {"op": "read", "fd": "r", "bytes": 10},
      {"op": "send", "channel": "c", "bytes": 20},
      {"op": "spawn", "process": "holder"}]},
    {"name": "holder", "spawned": true, "script": [
      {"op": "open", "path": "/tmp/f", "fd": "f", "mode": "read"}]}]})");
  REQUIRE(run.kernel->deadlock()); // holder waits for a writer on /tmp/f, and keeps r and w open
  CHECK(run.kernel->deadlock()->waiters[0].waits_on == "fifo /tmp/f: waiting for a writer to open");
  CHECK(pipe_rows(run) ==
        std::vector<std::vector<std::string>>{{"1", "channel c", "512", "20", "1", "1", "0", "1", "0"},
                                              {"2", "pipe 2", "65536", "20", "1", "1", "1", "1", "0"},
                                              {"3", "fifo /tmp/f", "65536", "0", "1", "0", "0", "0", "0"}});
}

TEST_CASE("pipe: the channel carries 8 B to 1 MiB messages whole, with their text") {
  auto run = run_text(R"({"machine": {"costs": "ideal"},
    "channels": [{"name": "c", "mechanism": "pipe"}],
    "processes": [
      {"name": "sender", "script": [
        {"op": "send", "channel": "c", "bytes": 8, "text": "small"},
        {"op": "send", "channel": "c", "bytes": 4096, "text": "page"},
        {"op": "send", "channel": "c", "bytes": "1MiB", "text": "huge"},
        {"op": "print", "text": "sent {result}"},
        {"op": "send", "channel": "c", "bytes": 8, "text": "last"}]},
      {"name": "receiver", "script": [
        {"op": "recv", "channel": "c", "bytes": 8},
        {"op": "print", "text": "{result} {msg.text}"},
        {"op": "recv", "channel": "c", "bytes": 4096},
        {"op": "print", "text": "{result} {msg.text}"},
        {"op": "recv", "channel": "c", "bytes": "1MiB"},
        {"op": "print", "text": "{result} {msg.text} {msg.sender}"},
        {"op": "recv", "channel": "c", "bytes": 8},
        {"op": "print", "text": "{result} {msg.text}"}]}]})");
  CHECK(console(run) == Lines{"receiver@4: 8 small", "receiver@5: 4096 page", "sender@37: sent 1048576",
                              "receiver@39: 1048576 huge sender", "receiver@40: 8 last"});
  // One cycle per copied piece under "ideal". 1 MiB through 64 KiB: 65536 - 8 - 4096 = 61432 bytes fit
  // at first, then 15 full pieces of 65536 and one of 4104: 17 pieces each way. With the two small
  // messages before and one after: 20 copies on each side.
  CHECK(run.charged("sender", "send", Primitive::copy_bytes_per_cycle) == 20);
  CHECK(run.charged("receiver", "recv", Primitive::copy_bytes_per_cycle) == 20);
}

TEST_CASE("pipe: a channel recv stops at the message boundary; with nothing sent it times out") {
  auto run = run_text(R"({"machine": {"costs": "ideal"},
    "channels": [{"name": "c", "mechanism": "pipe"}],
    "processes": [
      {"name": "sender", "script": [{"op": "send", "channel": "c", "bytes": 8, "text": "part"}]},
      {"name": "receiver", "script": [
        {"op": "recv", "channel": "c", "bytes": 16, "timeout": 100},
        {"op": "print", "text": "{result} {msg.text} {errno}"},
        {"op": "recv", "channel": "c", "bytes": 16, "timeout": 100},
        {"op": "print", "text": "{result} {errno}"},
        {"op": "recv", "channel": "c", "bytes": 16, "timeout": 0},
        {"op": "print", "text": "{result} {errno}"}]}]})");
  CHECK(console(run) ==
        Lines{"receiver@2: 8 part ", "receiver@102: -1 ETIMEDOUT", "receiver@102: -1 EAGAIN"});
  // The sender copies 8 bytes (0 -> 1); the receiver, with a 16-byte buffer, takes the whole 8-byte
  // message (1 -> 2) and returns at its boundary; its next recv waits 100 cycles for nothing.
}

TEST_CASE("pipe: a channel recv with a small buffer reads a long message in pieces, as from a stream") {
  auto run = run_text(R"({"machine": {"costs": "ideal"},
    "channels": [{"name": "c", "mechanism": "pipe"}],
    "processes": [
      {"name": "sender", "script": [{"op": "send", "channel": "c", "bytes": 20, "text": "a"},
                                    {"op": "send", "channel": "c", "bytes": 8, "text": "b"}]},
      {"name": "receiver", "script": [{"op": "sleep", "time": 10}, {"op": "repeat", "count": 4, "body": [
        {"op": "recv", "channel": "c", "bytes": 8}, {"op": "print", "text": "{result} {msg.text}"}]}]}]})");
  std::vector<std::string> texts;
  for (const auto& line : run.kernel->console()) texts.push_back(line.text);
  // 20 bytes in a buffer of 8: 8, 8, then the 4 up to the boundary; then the 8-byte message.
  CHECK(texts == std::vector<std::string>{"8 a", "8 ", "4 ", "8 b"});
}

TEST_CASE("pipe: Linux's pipe is 16 page slots: a write that needs a new page waits for a free one") {
  // Non-blocking writes of one size into a new 64 KiB pipe until EAGAIN, as Linux 6.18 gives them
  // (measured, docs/pipe.md): a write's head merges into the last page only when it fits behind
  // what was written there; the rest takes a page per slot. 3000-byte writes take a slot each, so
  // 16 fit (48,000 bytes); 5000-byte ones two, and the eleventh is cut to the one page left.
  struct Case {
    int bytes, writes;
    long total;
  };
  for (const Case c : {Case{1, 65536, 65536}, Case{100, 640, 64000}, Case{2049, 16, 32784},
                       Case{3000, 16, 48000}, Case{4096, 16, 65536}, Case{4097, 11, 45066},
                       Case{5000, 11, 54096}, Case{10000, 7, 64096}, Case{100000, 1, 65536}}) {
    CAPTURE(c.bytes);
    auto run = run_text(one_process(R"(
      {"op": "pipe", "fds": ["r", "w"]},
      {"op": "fcntl", "fd": "w", "nonblock": true},
      {"op": "set", "var": "n", "value": 0},
      {"op": "set", "var": "total", "value": 0},
      {"op": "write", "fd": "w", "bytes": )" +
                                    std::to_string(c.bytes) + R"(},
      {"op": "while", "cond": "result > 0", "body": [
        {"op": "add", "var": "n"},
        {"op": "calc", "var": "total", "expr": "total + result"},
        {"op": "write", "fd": "w", "bytes": )" +
                                    std::to_string(c.bytes) + R"(}]},
      {"op": "print", "text": "{n} {total} {errno}"})"));
    REQUIRE(run.kernel->console().size() == 1);
    CHECK(run.kernel->console()[0].text ==
          std::to_string(c.writes) + " " + std::to_string(c.total) + " EAGAIN");
  }
}

TEST_CASE("pipe: a partly read page takes merges behind what was written into it, not behind what is left") {
  // One page slot (capacity 4096): 4000 bytes, 3000 of them read, then 1000 more: 4000 + 1000 passes
  // the page's end (offset + chars <= PAGE_SIZE fails), so the write needs a new page and there is
  // no slot: EAGAIN, though 1096 bytes are free. A byte ring of the same size takes it.
  for (const char* layout : {"pages", "bytes"}) {
    CAPTURE(layout);
    auto run = run_text(one_process(R"(
      {"op": "pipe", "fds": ["r", "w"], "capacity": 4096, "layout": ")" +
                                    std::string(layout) + R"("},
      {"op": "fcntl", "fd": "w", "nonblock": true},
      {"op": "write", "fd": "w", "bytes": 4000},
      {"op": "read", "fd": "r", "bytes": 3000},
      {"op": "write", "fd": "w", "bytes": 1000},
      {"op": "print", "text": "{result} {errno}"},
      {"op": "write", "fd": "w", "bytes": 96},
      {"op": "print", "text": "{result} {errno}"})"));
    CHECK(texts(run) == (std::string(layout) == "pages" ? Lines{"-1 EAGAIN", "96 "} : Lines{"1000 ", "96 "}));
  }
}

TEST_CASE("pipe: load-time mistakes name the field and what would be accepted") {
  auto pipe_op = [](const std::string& fields) { return one_process(R"({"op": "pipe", )" + fields + "}"); };
  CHECK(load_error(pipe_op(R"("fds": ["r"])")) ==
        "test.json: at processes.0.script.0.fds: invalid value [\"r\"]; expected the two descriptors' names "
        "[READ_NAME, WRITE_NAME], such as [\"r\", \"w\"]");
  CHECK(
      load_error(pipe_op(R"("fds": ["r", 1])")) ==
      "test.json: at processes.0.script.0.fds: invalid value [\"r\",1]; expected the two descriptors' names "
      "[READ_NAME, WRITE_NAME], such as [\"r\", \"w\"]");
  CHECK(load_error(pipe_op(R"("fds": ["x", "x"])")) ==
        "test.json: at processes.0.script.0.fds: both ends are named \"x\"; give the read end and the write "
        "end different names");
  CHECK(load_error(pipe_op(R"("fds": ["r", "w"], "capacity": 512)")) ==
        "test.json: at processes.0.script.0.pipe_buf: pipe_buf 4096 is larger than the capacity 512: a write "
        "of pipe_buf bytes could never fit; set pipe_buf to at most 512 (0: no write is atomic, as in xv6)");
  CHECK(load_error(pipe_op(R"("fds": ["r", "w"], "wake": "some")")) ==
        "test.json: at processes.0.script.0.wake: unknown value \"some\" (did you mean \"one\"?); accepted: "
        "all, one");
  CHECK(load_error(R"({"channels": [{"name": "c", "mechanism": "pipe", "capacity": "1KiB"}],
                      "processes": [{"name": "p", "script": []}]})") ==
        "test.json: at channels.0.pipe_buf: pipe_buf 4096 is larger than the capacity 1024: a write of "
        "pipe_buf bytes could never fit; set pipe_buf to at most 1024 (0: no write is atomic, as in xv6)");
  CHECK(
      load_error(one_process(R"({"op": "open", "path": "/tmp/f", "fd": "x", "mode": "append"})")) ==
      "test.json: at processes.0.script.0.mode: unknown value \"append\"; accepted: read, write, readwrite");
  CHECK(load_error(one_process(R"({"op": "mkfifo", "path": "fifo"})")) ==
        "test.json: at processes.0.script.0.path: invalid path \"fifo\"; expected an absolute path without "
        "spaces, at most 107 characters, such as \"/tmp/myfifo\"");
  CHECK(load_error(one_process(R"({"op": "print", "text": "{pipe.spurious}"})")).find("is never set") !=
        std::string::npos);
  CHECK(load_error(pipe_op(R"("fds": ["r", "w"], "capacity": 12288, "layout": "pages")")) ==
        "test.json: at processes.0.script.0.capacity: capacity 12288 is not a power of two pages; Linux "
        "rounds a pipe's size up to one (round_pipe_size): give 16384, or \"layout\": \"bytes\" for a ring "
        "of exactly this many bytes");
  CHECK(load_error(pipe_op(R"("fds": ["r", "w"], "pipe_buf": 512, "layout": "pages")")) ==
        "test.json: at processes.0.script.0.pipe_buf: pipe_buf 512 with page slots: a write of at most a "
        "page is atomic there, so pipe_buf is 4096; give \"layout\": \"bytes\" for another");
}

TEST_CASE("pipe: wake one passes the wakeup on when a reader leaves data for another") {
  // Two readers asleep, one 16-byte write with wake "one": reader[0] wakes, takes 8 and wakes
  // reader[1] for the other 8. Nobody is woken for nothing.
  auto run = run_text(threads(R"(
    {"name": "main", "script": [{"op": "pipe", "fds": ["r", "w"], "wake": "one"}]},
    {"name": "reader", "count": 2, "script": [
      {"op": "read", "fd": "r", "bytes": 8},
      {"op": "print", "text": "{result} {msg.text}"}]},
    {"name": "writer", "script": [
      {"op": "sleep", "time": 10},
      {"op": "write", "fd": "w", "bytes": 16, "text": "x"},
      {"op": "sleep", "time": 10},
      {"op": "pipe_stat", "fd": "w"},
      {"op": "print", "text": "left {pipe.bytes} spurious {pipe.spurious}"}]})"));
  CHECK(console(run) == Lines{"p/reader[0]@12: 8 x", "p/reader[1]@13: 8 ", "p/writer@21: left 0 spurious 0"});
}

TEST_CASE("pipe: the deadlock report says what each sleeper waits for") {
  // The writer fills a 16-byte pipe and waits for room; the reader waits for data on a second pipe
  // nobody writes to (both hold write ends, so no end of file).
  auto run = run_text(threads(R"(
    {"name": "writer", "script": [
      {"op": "pipe", "fds": ["r", "w"], "capacity": 16, "pipe_buf": 0},
      {"op": "pipe", "fds": ["r2", "w2"]},
      {"op": "write", "fd": "w", "bytes": 20}]},
    {"name": "reader", "script": [{"op": "read", "fd": "r2", "bytes": 1}]})"));
  REQUIRE(run.kernel->deadlock());
  const auto& waiters = run.kernel->deadlock()->waiters;
  REQUIRE(waiters.size() == 2);
  CHECK(waiters[0].waits_on == "pipe 1: waiting for room");
  CHECK(waiters[1].waits_on == "pipe 2: waiting for data");
}

TEST_CASE("pipe: the mechanism and its ops are registered") {
  REQUIRE(find_mechanism("pipe"));
  CHECK(find_mechanism("pipe")->params.names() ==
        std::vector<std::string>{"capacity", "pipe_buf", "wake", "layout"});
  for (const char* op : {"pipe", "mkfifo", "open", "pipe_stat"}) CHECK(find_op(op));
}

TEST_CASE("pipe: open of a socket file fails with ENXIO") {
  // No socket op in this file: put a socket entry in the file system before the run, as bind would.
  auto scenario = load_scenario_text(one_process(R"(
    {"op": "open", "path": "/tmp/sock", "fd": "s", "mode": "write"},
    {"op": "print", "text": "{errno}"})"),
                                     "test.json", {});
  Kernel kernel(scenario->model());
  REQUIRE(kernel.ipc<FileSystem>().create("/tmp/sock", FileKind::Socket, kernel.processes()[0], 0777));
  kernel.run();
  REQUIRE(kernel.console().size() == 1);
  CHECK(kernel.console()[0].text == "ENXIO");
}

TEST_CASE("pipe: a channel send that gives up returns the bytes it put in") {
  // Nobody receives: 64 KiB fit, then the send waits. With a timeout it returns 65536 when the time
  // is up; non-blocking, at once. A send that could put in nothing gets EAGAIN.
  auto run = run_text(R"({"machine": {"costs": "ideal"},
    "channels": [{"name": "a", "mechanism": "pipe"}, {"name": "b", "mechanism": "pipe"}],
    "processes": [{"name": "p", "script": [
      {"op": "send", "channel": "a", "bytes": "100KiB", "timeout": 50},
      {"op": "print", "text": "{result} {errno}"},
      {"op": "send", "channel": "b", "bytes": "100KiB", "timeout": 0},
      {"op": "print", "text": "{result} {errno}"},
      {"op": "send", "channel": "b", "bytes": 8, "timeout": 0},
      {"op": "print", "text": "{result} {errno}"}]}]})");
  CHECK(console(run) == Lines{"p@50: 65536 ", "p@51: 65536 ", "p@51: -1 EAGAIN"});
}

namespace {

// A writer on core 0 sends 4096 bytes over a pipe channel; a reader on core 1 computes
// `reader_delay` cycles, then receives them. Teaching preset (1 GHz), no working set.
std::string two_core_transfer(int cores, int reader_delay) {
  return R"({"machine": {"cores": )" + std::to_string(cores) + R"(, "costs": "teaching"},
    "channels": [{"name": "c", "mechanism": "pipe"}],
    "processes": [
      {"name": "writer", "affinity": [0], "working_set_pages": 0, "script": [
        {"op": "send", "channel": "c", "bytes": 4096}, {"op": "print", "text": "sent"}]},
      {"name": "reader", "affinity": [)" +
         std::string(cores == 1 ? "0" : "1") + R"(], "working_set_pages": 0, "script": [
        {"op": "compute", "time": )" +
         std::to_string(reader_delay) + R"(},
        {"op": "recv", "channel": "c", "bytes": 4096}, {"op": "print", "text": "got {result}"}]}]})";
}

} // namespace

// The writer, on core 0: dispatch 800 (sched_pick 100 + context_restore 200 + address_space_switch
// 500); send: trap_enter 100 + syscall_dispatch 50 + fd_lookup 20 + security_hook 10 +
// lock_acquire 20 = 200 -> it takes the pipe's mutex at 1000; page_alloc 200 + copy 50 + 4096 / 8 =
// 762 -> it releases it at 1762; waitqueue_op 20 (the pipe was empty) + trap_exit 100 -> 1882.
TEST_CASE("pipe: two cores: a reader that arrives during the writer's copy waits for it to end") {
  auto run = run_text(two_core_transfer(2, 300));
  // The reader, on core 1: dispatch 800 + compute 300 + the same 200 of entry -> it takes the mutex
  // at 1300, held by the writer until 1762: lock_wait 462, then the three lines the pipe's critical
  // sections share from core 0 (the mutex's, the head and tail's, the pipe_buffer's),
  // cache_line_transfer 3 x 100 -> 2062; copy 50 + 512 at L1's rate, then the bytes the writer's
  // core holds: their first line's transfer (100) and 4096 at the remote rate (2 B/cycle: 2048, of
  // which the 1536 beyond L1's rate under copy_bytes_per_cycle_remote) -> 4260; trap_exit 100 ->
  // 4360. Without the mutex it would have copied bytes the writer had not copied yet, from 1300 on.
  CHECK(console(run) == Lines{"writer@1882: sent", "reader@4360: got 4096"});
  CHECK(run.charged("reader", "recv", Primitive::lock_wait) == 1762 - 1300);
  CHECK(run.charged("reader", "recv", Primitive::cache_line_transfer) == 3 * 100 + 100);
  CHECK(run.charged("reader", "recv", Primitive::copy_bytes_per_cycle_remote) == 1536);
  CHECK(run.charged("writer", "send", Primitive::lock_wait) == 0);
  CHECK(run.charged("writer", "send", Primitive::cache_line_transfer) == 0); // nobody held it before
  // The breakdown shows the wait under its own key.
  Cycles in_breakdown = 0;
  for (const auto& row : summarize(*run.scenario, *run.kernel).breakdown)
    if (row.activity == "recv" && row.primitive == "lock_wait") in_breakdown += row.cycles;
  CHECK(in_breakdown == 462);
}

TEST_CASE("pipe: two cores: a reader that arrives after the writer's release does not wait") {
  auto run = run_text(two_core_transfer(2, 1000));
  // The reader takes the mutex at 800 + 1000 + 200 = 2000, after its release at 1762: no wait, the
  // three shared lines from core 0 (3 x 100) -> 2300; copy 562, and from the writer's core 100 +
  // 1536 (as above) -> 4498; trap_exit 100 -> 4598.
  CHECK(console(run) == Lines{"writer@1882: sent", "reader@4598: got 4096"});
  CHECK(run.charged("reader", "recv", Primitive::lock_wait) == 0);
  CHECK(run.charged("reader", "recv", Primitive::cache_line_transfer) == 3 * 100 + 100);
}

TEST_CASE("pipe: one core: the mutex costs nothing beyond lock_acquire") {
  auto run = run_text(two_core_transfer(1, 300));
  // The writer runs first: sent at 1882 as on two cores; its exit (trap_enter 100 +
  // syscall_dispatch 50) -> 2032; the reader's dispatch 800 -> 2832, compute 300 -> 3132, recv
  // entry 200 -> 3332, copy 562 -> 3894, trap_exit 100 -> 3994. Nobody ever finds the mutex held.
  CHECK(console(run) == Lines{"writer@1882: sent", "reader@3994: got 4096"});
  CHECK(run.charged("reader", "recv", Primitive::lock_wait) == 0);
  CHECK(run.charged("reader", "recv", Primitive::cache_line_transfer) == 0);
}
