// Unix domain sockets: stream and datagram semantics, every error, exact costs under the teaching
// preset, the channels, the end-of-run listing and the load-time checks.
#include "error.hpp"
#include "harness.hpp"
#include "ipc.hpp"

#include <doctest/doctest.h>

using namespace ipcsim;
using ipcsim::test::run_text;

namespace {

// One process running `script` (a JSON list of ops) on one core under the teaching preset.
std::string one(const std::string& script, const std::string& extra = "") {
  return R"({"machine": {"cores": 1}, )" + extra + R"("processes": [{"name": "p", "script": )" + script +
         "}]}";
}

std::vector<std::string> lines(const ipcsim::test::Run& run) { return ipcsim::test::console_texts(run); }

using ipcsim::test::load_error;

using Lines = std::vector<std::string>;

} // namespace

namespace doctest {
template <> struct StringMaker<Lines> {
  static String convert(const Lines& lines) {
    std::string out = "[";
    for (const auto& line : lines) out += "\"" + line + "\" ";
    return (out + "]").c_str();
  }
};
} // namespace doctest

TEST_CASE("unix_socket: a stream socketpair is a byte stream with partial reads and end of file") {
  auto run = run_text(one(R"([
    {"op": "socketpair", "fds": ["a", "b"], "type": "stream"},
    {"op": "write", "fd": "a", "bytes": 100, "text": "one"},
    {"op": "write", "fd": "a", "bytes": 50, "text": "two"},
    {"op": "read", "fd": "b", "bytes": 120},
    {"op": "print", "text": "{result} {msg.text}"},
    {"op": "read", "fd": "b", "bytes": 120},
    {"op": "print", "text": "{result} {msg.text}"},
    {"op": "close", "fd": "a"},
    {"op": "read", "fd": "b", "bytes": 120},
    {"op": "print", "text": "{result} {errno}"}])"));
  // Boundaries are not kept: the first read takes all of "one" and 20 bytes of "two" (whose text goes
  // with its first byte); the second the remaining 30; after the peer's close, end of file.
  CHECK(lines(run) == Lines{"120 onetwo", "30 ", "0 "});
}

TEST_CASE("unix_socket: exact costs of a stream write and read under the teaching preset") {
  auto run = run_text(one(R"([
    {"op": "socketpair", "fds": ["a", "b"], "type": "stream"},
    {"op": "begin", "name": "w"}, {"op": "write", "fd": "a", "bytes": 100}, {"op": "end", "name": "w"},
    {"op": "begin", "name": "r"}, {"op": "read", "fd": "b", "bytes": 100}, {"op": "end", "name": "r"}])"));
  const auto& records = run.kernel->records();
  REQUIRE(records.size() == 2);
  // write: trap_enter 100 + syscall_dispatch 50 + fd_lookup 20 + socket_dispatch 100 +
  // security_hook 10 + credentials 2 x atomic_rmw 20 + sk_buff 2 x slab_alloc 100 + copy in
  // (copy_setup 50 + ceil(100 / 8) = 13) + enqueue (2 x lock_acquire 20 + list_op 10) + trap_exit
  // 100 = 733.
  CHECK(records[0].end - records[0].start == 733);
  // read: 150 + 20 + 100 + 10 + 2 x lock_acquire 20 (iolock, unix_state_lock) + copy out (50 +
  // 13) + skb_unlink (lock_acquire 20 + list_op 10) + credentials dropped 2 x 20 + 100 = 553.
  CHECK(records[1].end - records[1].start == 553);
  CHECK(run.charged("p", "write", Primitive::copy_setup) == 50);
  CHECK(run.charged("p", "write", Primitive::slab_alloc) == 200);
  CHECK(run.charged("p", "write", Primitive::socket_dispatch) == 100);
  CHECK(run.charged("p", "write", Primitive::copy_bytes_per_cycle) == 13);
  CHECK(run.charged("p", "read", Primitive::copy_setup) == 50);
  CHECK(run.charged("p", "read", Primitive::lock_acquire) == 60);
  CHECK(run.charged("p", "read", Primitive::atomic_rmw) == 40);
}

TEST_CASE(
    "unix_socket: a large stream write is split into sk_buffs of a page's head and 32 KiB of fragments") {
  auto run = run_text(one(R"([
    {"op": "socketpair", "fds": ["a", "b"], "type": "stream"},
    {"op": "write", "fd": "a", "bytes": 70000},
    {"op": "read", "fd": "b", "bytes": 70000},
    {"op": "print", "text": "{result}"}])"));
  CHECK(lines(run) == Lines{"70000"});
  // Two sk_buffs (SKB_MAX_HEAD(0) + 32 KiB = 36544, then 33456): 2 x (2 slab_alloc + copy_setup
  // 50), and each has its bytes beyond the head in one order-3 block of pages: 2 page_alloc. The
  // bytes: the whole write's footprint, 140000 B, is past twice the 64 KiB L1: each piece at the L2
  // rate (4 B/cycle), booked as ceil(n / 8) under copy_bytes_per_cycle (4568 + 4182) and as much
  // again under copy_bytes_per_cycle_l2.
  CHECK(run.charged("p", "write", Primitive::copy_setup) == 100);
  CHECK(run.charged("p", "write", Primitive::slab_alloc) == 400);
  CHECK(run.charged("p", "write", Primitive::page_alloc) == 400);
  CHECK(run.charged("p", "write", Primitive::copy_bytes_per_cycle) == 8750);
  CHECK(run.charged("p", "write", Primitive::copy_bytes_per_cycle_l2) == 8750);
  // The read copies out of each sk_buff in turn.
  CHECK(run.charged("p", "read", Primitive::copy_setup) == 100);
}

TEST_CASE("unix_socket: a send buffer counts each sk_buff's truesize, as Linux 6.18 does") {
  // Non-blocking writes on a socketpair with the default 212992-byte buffer until EAGAIN: how many
  // go, measured on Linux 6.18 with `hostbench-probe sndbuf` (docs/unix-socket.md). A write starts
  // a new sk_buff while what is in flight is below the buffer, so the last one passes it.
  struct Case {
    const char* type;
    int bytes, writes;
  };
  for (const Case c :
       {Case{"stream", 8, 278}, Case{"stream", 192, 278}, Case{"stream", 193, 167}, Case{"stream", 512, 167},
        Case{"stream", 4096, 44}, Case{"stream", 8192, 24}, Case{"stream", 36544, 6}, Case{"dgram", 8, 278},
        Case{"dgram", 512, 167}, Case{"dgram", 4096, 26}, Case{"dgram", 8192, 13}, Case{"dgram", 36544, 6},
        Case{"dgram", 65536, 4}}) {
    CAPTURE(c.type);
    CAPTURE(c.bytes);
    auto run = run_text(one(R"([
      {"op": "socketpair", "fds": ["a", "b"], "type": ")" +
                            std::string(c.type) + R"("},
      {"op": "fcntl", "fd": "a", "nonblock": true},
      {"op": "set", "var": "n", "value": 0},
      {"op": "write", "fd": "a", "bytes": )" +
                            std::to_string(c.bytes) + R"(},
      {"op": "while", "cond": "result > 0", "body": [
        {"op": "add", "var": "n"},
        {"op": "write", "fd": "a", "bytes": )" +
                            std::to_string(c.bytes) + R"(}]},
      {"op": "print", "text": "{n} {errno}"}])"));
    CHECK(lines(run) == Lines{std::to_string(c.writes) + " EAGAIN"});
  }
}

TEST_CASE("unix_socket: a full stream buffer blocks the writer, which continues where it stopped") {
  auto run = run_text(R"({"machine": {"cores": 1}, "processes": [
    {"name": "w", "script": [
      {"op": "socketpair", "fds": ["a", "b"], "type": "stream", "buffer": 4608},
      {"op": "spawn", "process": "r", "fds": {"b": "b"}},
      {"op": "close", "fd": "b"},
      {"op": "write", "fd": "a", "bytes": 10000},
      {"op": "print", "text": "wrote {result}"}]},
    {"name": "r", "spawned": true, "script": [
      {"op": "sleep", "time": "1us"},
      {"op": "read", "fd": "b", "bytes": 100000}, {"op": "print", "text": "read {result}"},
      {"op": "read", "fd": "b", "bytes": 100000}, {"op": "print", "text": "read {result}"},
      {"op": "read", "fd": "b", "bytes": 100000}, {"op": "print", "text": "read {result}"},
      {"op": "read", "fd": "b", "bytes": 100000}, {"op": "print", "text": "read {result}"}]}]})");
  // The smallest buffer, 4608: sk_buffs of 2240 bytes (half the buffer less 64), 4352 of truesize
  // each; the second goes while 4352 < 4608, then the writer waits for the reader.
  CHECK(lines(run) == Lines{"read 4480", "read 4480", "wrote 10000", "read 1040", "read 0"});
}

TEST_CASE("unix_socket: non-blocking stream writes return what fit, then EAGAIN") {
  // As Linux 6.18: the first write goes whole (six sk_buffs, 204288 bytes of truesize, below the
  // buffer); the second gets one more sk_buff of 36544 bytes; the third none.
  auto run = run_text(one(R"([
    {"op": "socketpair", "fds": ["a", "b"], "type": "stream"},
    {"op": "fcntl", "fd": "a", "nonblock": true},
    {"op": "write", "fd": "a", "bytes": 200000}, {"op": "print", "text": "{result} {errno}"},
    {"op": "write", "fd": "a", "bytes": 200000}, {"op": "print", "text": "{result} {errno}"},
    {"op": "write", "fd": "a", "bytes": 200000}, {"op": "print", "text": "{result} {errno}"},
    {"op": "fcntl", "fd": "b", "nonblock": true},
    {"op": "read", "fd": "b", "bytes": "1MiB"}, {"op": "print", "text": "{result} {errno}"},
    {"op": "read", "fd": "b", "bytes": "1MiB"}, {"op": "print", "text": "{result} {errno}"}])"));
  CHECK(lines(run) == Lines{"200000 ", "36544 ", "-1 EAGAIN", "236544 ", "-1 EAGAIN"});
}

TEST_CASE("unix_socket: writing to a closed peer raises SIGPIPE, or EPIPE when it is ignored") {
  const std::string script = R"([
    {"op": "socketpair", "fds": ["a", "b"], "type": "stream"},
    {"op": "close", "fd": "b"},
    {"op": "write", "fd": "a", "bytes": 10},
    {"op": "print", "text": "{result} {errno}"}])";
  auto killed = run_text(one(script));
  CHECK(lines(killed).empty());
  CHECK(killed.kernel->processes()[0].killed_by == kSIGPIPE);
  auto ignored = run_text(R"({"processes": [{"name": "p", "sigpipe": "ignore", "script": )" + script + "}]}");
  CHECK(lines(ignored) == Lines{"-1 EPIPE"});
}

TEST_CASE(
    "unix_socket: shutdown of writing gives the peer end of file; of reading, the peer's writes EPIPE") {
  auto run = run_text(R"({"processes": [{"name": "p", "sigpipe": "ignore", "script": [
    {"op": "socketpair", "fds": ["a", "b"], "type": "stream"},
    {"op": "write", "fd": "a", "bytes": 10},
    {"op": "shutdown", "fd": "a", "how": "write"},
    {"op": "read", "fd": "b", "bytes": 100}, {"op": "print", "text": "{result}"},
    {"op": "read", "fd": "b", "bytes": 100}, {"op": "print", "text": "{result}"},
    {"op": "write", "fd": "a", "bytes": 10}, {"op": "print", "text": "{result} {errno}"},
    {"op": "write", "fd": "b", "bytes": 10}, {"op": "print", "text": "{result} {errno}"},
    {"op": "shutdown", "fd": "a", "how": "read"},
    {"op": "write", "fd": "b", "bytes": 10}, {"op": "print", "text": "{result} {errno}"}]}]})");
  CHECK(lines(run) == Lines{"10", "0", "-1 EPIPE", "10 ", "-1 EPIPE"});
}

TEST_CASE("unix_socket: closing with unread data resets the peer: ECONNRESET once, then end of file") {
  auto run = run_text(one(R"([
    {"op": "socketpair", "fds": ["a", "b"], "type": "stream"},
    {"op": "write", "fd": "b", "bytes": 10},
    {"op": "close", "fd": "a"},
    {"op": "read", "fd": "b", "bytes": 100}, {"op": "print", "text": "{result} {errno}"},
    {"op": "read", "fd": "b", "bytes": 100}, {"op": "print", "text": "{result} {errno}"}])"));
  CHECK(lines(run) == Lines{"-1 ECONNRESET", "0 "});
}

TEST_CASE("unix_socket: datagrams keep their boundaries; a short buffer truncates") {
  auto run = run_text(one(R"([
    {"op": "socketpair", "fds": ["a", "b"], "type": "dgram"},
    {"op": "write", "fd": "a", "bytes": 100, "text": "x"},
    {"op": "write", "fd": "a", "bytes": 100, "text": "y"},
    {"op": "read", "fd": "b", "bytes": 1000}, {"op": "print", "text": "{result} {msg.text}"},
    {"op": "read", "fd": "b", "bytes": 30}, {"op": "print", "text": "{result} {msg.text}"},
    {"op": "fcntl", "fd": "b", "nonblock": true},
    {"op": "read", "fd": "b", "bytes": 1000}, {"op": "print", "text": "{result} {errno}"}])"));
  // The 70 bytes the 30-byte buffer could not hold are lost with their datagram.
  CHECK(lines(run) == Lines{"100 x", "30 y", "-1 EAGAIN"});
  // The truncated receive copies only what it returns: 50 + ceil(30 / 8) = 4.
  CHECK(run.charged("p", "read", Primitive::copy_bytes_per_cycle) == 13 + 4);
}

TEST_CASE("unix_socket: a datagram larger than the send buffer minus 32 fails with EMSGSIZE") {
  auto run = run_text(one(R"([
    {"op": "socketpair", "fds": ["a", "b"], "type": "dgram", "buffer": 4608},
    {"op": "write", "fd": "a", "bytes": 4577}, {"op": "print", "text": "{result} {errno}"},
    {"op": "write", "fd": "a", "bytes": 4576}, {"op": "print", "text": "{result} {errno}"}])"));
  CHECK(lines(run) == Lines{"-1 EMSGSIZE", "4576 "});
}

TEST_CASE("unix_socket: a receiver's queue takes max_dgram_qlen + 1 datagrams from others, then blocks") {
  auto run = run_text(R"({"processes": [
    {"name": "r", "script": [
      {"op": "socket", "fd": "s", "type": "dgram", "max_dgram_qlen": 1},
      {"op": "bind", "fd": "s", "path": "/tmp/r"},
      {"op": "sleep", "time": "20us"},
      {"op": "repeat", "count": 3, "body": [
        {"op": "recvfrom", "fd": "s", "bytes": 10}, {"op": "print", "text": "got {msg.text} from {from}"}]}]},
    {"name": "s", "arrival": "1us", "script": [
      {"op": "socket", "fd": "c", "type": "dgram"},
      {"op": "sendto", "fd": "c", "bytes": 10, "text": "1", "path": "/tmp/r"},
      {"op": "sendto", "fd": "c", "bytes": 10, "text": "2", "path": "/tmp/r"},
      {"op": "sendto", "fd": "c", "bytes": 10, "text": "3", "path": "/tmp/r", "timeout": 0},
      {"op": "print", "text": "{result} {errno}"},
      {"op": "sendto", "fd": "c", "bytes": 10, "text": "3", "path": "/tmp/r"},
      {"op": "print", "text": "sent after waiting"}]}]})");
  CHECK(lines(run) == Lines{"-1 EAGAIN", "got 1 from ", "got 2 from ", "sent after waiting", "got 3 from "});
  // The waiting send looked its path up once: four sends, four lookups.
  // (On one core the receiver keeps running after it wakes the sender, so "got 2" comes first.)
  CHECK(run.charged("s", "sendto", Primitive::capability_lookup) == 80);
}

TEST_CASE("unix_socket: a datagram socketpair is limited by the sender's buffer, not max_dgram_qlen") {
  auto run = run_text(one(R"([
    {"op": "socketpair", "fds": ["a", "b"], "type": "dgram", "max_dgram_qlen": 0, "buffer": 4608},
    {"op": "fcntl", "fd": "a", "nonblock": true},
    {"op": "write", "fd": "a", "bytes": 2000}, {"op": "print", "text": "{result} {errno}"},
    {"op": "write", "fd": "a", "bytes": 2000}, {"op": "print", "text": "{result} {errno}"},
    {"op": "write", "fd": "a", "bytes": 2000}, {"op": "print", "text": "{result} {errno}"},
    {"op": "read", "fd": "b", "bytes": 5000},
    {"op": "write", "fd": "a", "bytes": 2000}, {"op": "print", "text": "{result} {errno}"}])"));
  // Linux lets a send start while less than the buffer is in flight: each datagram is 4352 bytes
  // of truesize (2000 in a 4 KiB head, and the sk_buff), and 4352 < 4608, not 8704 (Linux 6.18).
  CHECK(lines(run) == Lines{"2000 ", "2000 ", "-1 EAGAIN", "2000 "});
}

TEST_CASE(
    "unix_socket: sendto errors: ENOENT, ECONNREFUSED, EPROTOTYPE, EPERM, ENOTCONN after a refused peer") {
  auto run = run_text(one(R"([
    {"op": "creat", "path": "/tmp/file"},
    {"op": "socket", "fd": "st", "type": "stream"},
    {"op": "bind", "fd": "st", "path": "/tmp/stream"},
    {"op": "socket", "fd": "d", "type": "dgram"},
    {"op": "bind", "fd": "d", "path": "/tmp/d"},
    {"op": "socket", "fd": "e", "type": "dgram"},
    {"op": "bind", "fd": "e", "path": "/tmp/e"},
    {"op": "socket", "fd": "c", "type": "dgram"},
    {"op": "sendto", "fd": "c", "bytes": 1, "path": "/tmp/none"}, {"op": "print", "text": "{errno}"},
    {"op": "sendto", "fd": "c", "bytes": 1, "path": "/tmp/file"}, {"op": "print", "text": "{errno}"},
    {"op": "sendto", "fd": "c", "bytes": 1, "path": "/tmp/stream"}, {"op": "print", "text": "{errno}"},
    {"op": "connect", "fd": "e", "path": "/tmp/d"},
    {"op": "sendto", "fd": "c", "bytes": 1, "path": "/tmp/e"}, {"op": "print", "text": "{errno}"},
    {"op": "write", "fd": "c", "bytes": 1}, {"op": "print", "text": "{errno}"},
    {"op": "connect", "fd": "c", "path": "/tmp/d"}, {"op": "print", "text": "connect {result}"},
    {"op": "close", "fd": "d"},
    {"op": "write", "fd": "c", "bytes": 1}, {"op": "print", "text": "{errno}"},
    {"op": "write", "fd": "c", "bytes": 1}, {"op": "print", "text": "{errno}"},
    {"op": "sendto", "fd": "c", "bytes": 1, "path": "/tmp/d"}, {"op": "print", "text": "{errno}"}])"));
  CHECK(lines(run) == Lines{"ENOENT", "ECONNREFUSED", "EPROTOTYPE", "EPERM", "ENOTCONN", "connect 0",
                            "ECONNREFUSED", "ENOTCONN", "ECONNREFUSED"});
}

TEST_CASE("unix_socket: bind, listen and accept errors") {
  auto run = run_text(one(R"([
    {"op": "socket", "fd": "s", "type": "stream"},
    {"op": "listen", "fd": "s", "backlog": 1}, {"op": "print", "text": "listen unbound: {errno}"},
    {"op": "accept", "fd": "s", "as": "c"}, {"op": "print", "text": "accept not listening: {errno}"},
    {"op": "bind", "fd": "s", "path": "/tmp/s"}, {"op": "print", "text": "bind: {result}"},
    {"op": "bind", "fd": "s", "path": "/tmp/s"}, {"op": "print", "text": "bind the same path: {errno}"},
    {"op": "bind", "fd": "s", "path": "/tmp/t"}, {"op": "print", "text": "bind again: {errno}"},
    {"op": "socket", "fd": "d", "type": "dgram"},
    {"op": "bind", "fd": "d", "path": "/tmp/d"},
    {"op": "listen", "fd": "d", "backlog": 1}, {"op": "print", "text": "listen dgram: {errno}"},
    {"op": "accept", "fd": "d", "as": "c"}, {"op": "print", "text": "accept dgram: {errno}"},
    {"op": "listen", "fd": "s", "backlog": 1},
    {"op": "accept", "fd": "s", "as": "c", "timeout": 0}, {"op": "print", "text": "accept nothing: {errno}"},
    {"op": "accept", "fd": "s", "as": "c", "timeout": "5us"}, {"op": "print", "text": "accept timed: {errno}"},
    {"op": "listen", "fd": "nosuch", "backlog": 1}, {"op": "print", "text": "no descriptor: {errno}"},
    {"op": "socketpair", "fds": ["x", "y"], "type": "stream"},
    {"op": "bind", "fd": "x", "path": "/tmp/x"},
    {"op": "listen", "fd": "x", "backlog": 1}, {"op": "print", "text": "listen connected: {errno}"}])"));
  CHECK(lines(run) == Lines{"listen unbound: EINVAL", "accept not listening: EINVAL", "bind: 0",
                            "bind the same path: EADDRINUSE", "bind again: EINVAL",
                            "listen dgram: EOPNOTSUPP", "accept dgram: EOPNOTSUPP", "accept nothing: EAGAIN",
                            "accept timed: EAGAIN", "no descriptor: EBADF", "listen connected: EINVAL"});
}

TEST_CASE("unix_socket: connect errors and a full backlog") {
  auto run = run_text(one(R"([
    {"op": "socket", "fd": "l", "type": "stream"},
    {"op": "bind", "fd": "l", "path": "/tmp/l"},
    {"op": "listen", "fd": "l", "backlog": 1},
    {"op": "socket", "fd": "a", "type": "stream"},
    {"op": "connect", "fd": "a", "path": "/tmp/l"}, {"op": "print", "text": "first: {result}"},
    {"op": "connect", "fd": "a", "path": "/tmp/l"}, {"op": "print", "text": "again: {errno}"},
    {"op": "connect", "fd": "l", "path": "/tmp/l"}, {"op": "print", "text": "listener: {errno}"},
    {"op": "socket", "fd": "b", "type": "stream"},
    {"op": "connect", "fd": "b", "path": "/tmp/l"}, {"op": "print", "text": "second: {result}"},
    {"op": "socket", "fd": "c", "type": "stream"},
    {"op": "fcntl", "fd": "c", "nonblock": true},
    {"op": "connect", "fd": "c", "path": "/tmp/l"}, {"op": "print", "text": "backlog full: {errno}"},
    {"op": "accept", "fd": "l", "as": "x"},
    {"op": "connect", "fd": "c", "path": "/tmp/l"}, {"op": "print", "text": "after accept: {result}"},
    {"op": "close", "fd": "l"},
    {"op": "socket", "fd": "z", "type": "stream"},
    {"op": "connect", "fd": "z", "path": "/tmp/l"}, {"op": "print", "text": "closed listener: {errno}"},
    {"op": "read", "fd": "b", "bytes": 10}, {"op": "print", "text": "never accepted: {result} {errno}"},
    {"op": "read", "fd": "b", "bytes": 10}, {"op": "print", "text": "then: {result} {errno}"},
    {"op": "creat", "path": "/tmp/f"},
    {"op": "connect", "fd": "z", "path": "/tmp/f"}, {"op": "print", "text": "a file: {errno}"},
    {"op": "connect", "fd": "p", "path": "/tmp/f"}, {"op": "print", "text": "no descriptor: {errno}"}])"));
  // Backlog 1 lets two connections wait: the queue is full when it holds MORE than the backlog.
  CHECK(lines(run) == Lines{"first: 0", "again: EISCONN", "listener: EINVAL", "second: 0",
                            "backlog full: EAGAIN", "after accept: 0", "closed listener: ECONNREFUSED",
                            "never accepted: -1 ECONNRESET", "then: 0 ", "a file: ECONNREFUSED",
                            "no descriptor: EBADF"});
}

TEST_CASE("unix_socket: a connect to a full listener waits for room, even from a connected socket") {
  // Linux checks the listener's backlog before the caller's own state: this connect blocks for ever.
  auto run = run_text(one(R"([
    {"op": "socket", "fd": "l", "type": "stream"},
    {"op": "bind", "fd": "l", "path": "/tmp/l"},
    {"op": "listen", "fd": "l", "backlog": 0},
    {"op": "socket", "fd": "a", "type": "stream"},
    {"op": "connect", "fd": "a", "path": "/tmp/l"},
    {"op": "connect", "fd": "a", "path": "/tmp/l"}])"));
  REQUIRE(run.kernel->deadlock());
  CHECK(run.kernel->deadlock()->waiters[0].waits_on == "unix socket 1: waiting for room in its backlog");
}

TEST_CASE("unix_socket: a blocked connect proceeds once accept makes room") {
  auto run = run_text(R"({"processes": [
    {"name": "server", "script": [
      {"op": "socket", "fd": "l", "type": "stream"},
      {"op": "bind", "fd": "l", "path": "/tmp/l"},
      {"op": "listen", "fd": "l", "backlog": 0},
      {"op": "sleep", "time": "50us"},
      {"op": "accept", "fd": "l", "as": "c1"}, {"op": "print", "text": "accepted 1"},
      {"op": "accept", "fd": "l", "as": "c2"}, {"op": "print", "text": "accepted 2"}]},
    {"name": "client", "count": 2, "arrival": "1us", "script": [
      {"op": "socket", "fd": "s", "type": "stream"},
      {"op": "connect", "fd": "s", "path": "/tmp/l"},
      {"op": "print", "text": "connected"}]}]})");
  CHECK(lines(run) == Lines{"connected", "accepted 1", "connected", "accepted 2"});
}

TEST_CASE("unix_socket: calls on unconnected sockets, addresses on stream sockets, receive timeouts") {
  auto run = run_text(one(R"([
    {"op": "socketpair", "fds": ["a", "b"], "type": "stream"},
    {"op": "socket", "fd": "s", "type": "stream"},
    {"op": "write", "fd": "s", "bytes": 1}, {"op": "print", "text": "write: {errno}"},
    {"op": "read", "fd": "s", "bytes": 1}, {"op": "print", "text": "read: {errno}"},
    {"op": "sendto", "fd": "s", "bytes": 1, "path": "/tmp/f"}, {"op": "print", "text": "sendto unconnected: {errno}"},
    {"op": "sendto", "fd": "a", "bytes": 1, "path": "/tmp/f"}, {"op": "print", "text": "sendto connected: {errno}"},
    {"op": "recvfrom", "fd": "b", "bytes": 1, "timeout": "1us"}, {"op": "print", "text": "recvfrom: {errno}"},
    {"op": "socket", "fd": "d", "type": "dgram"},
    {"op": "write", "fd": "d", "bytes": 1}, {"op": "print", "text": "dgram write: {errno}"},
    {"op": "recvfrom", "fd": "d", "bytes": 1, "timeout": 0}, {"op": "print", "text": "dgram recvfrom: {errno}"},
    {"op": "shutdown", "fd": "d", "how": "both"},
    {"op": "recvfrom", "fd": "d", "bytes": 1}, {"op": "print", "text": "after shutdown: {result}"},
    {"op": "sendto", "fd": "d", "bytes": 1, "path": "/tmp/f"}, {"op": "print", "text": "after shutdown: {errno}"},
    {"op": "shutdown", "fd": "x", "how": "both"}, {"op": "print", "text": "no descriptor: {errno}"}])"));
  CHECK(lines(run) == Lines{"write: ENOTCONN", "read: EINVAL", "sendto unconnected: EOPNOTSUPP",
                            "sendto connected: EISCONN", "recvfrom: EAGAIN", "dgram write: ENOTCONN",
                            "dgram recvfrom: EAGAIN", "after shutdown: 0", "after shutdown: EPIPE",
                            "no descriptor: EBADF"});
}

TEST_CASE("unix_socket: an echo over connect and accept, the sender's address, end of file") {
  auto run = run_text(R"({"processes": [
    {"name": "server", "script": [
      {"op": "socket", "fd": "l", "type": "stream"},
      {"op": "bind", "fd": "l", "path": "/tmp/srv"},
      {"op": "listen", "fd": "l", "backlog": 5},
      {"op": "accept", "fd": "l", "as": "c"},
      {"op": "recvfrom", "fd": "c", "bytes": 64, "from": "peer"},
      {"op": "print", "text": "server got {result} '{msg.text}' from '{peer}'"},
      {"op": "sendto", "fd": "c", "bytes": 64, "text": "re: {msg.text}"},
      {"op": "read", "fd": "c", "bytes": 64}, {"op": "print", "text": "server read {result}"}]},
    {"name": "client", "arrival": "1us", "script": [
      {"op": "socket", "fd": "s", "type": "stream"},
      {"op": "connect", "fd": "s", "path": "/tmp/srv"},
      {"op": "write", "fd": "s", "bytes": 64, "text": "ping"},
      {"op": "recvfrom", "fd": "s", "bytes": 64},
      {"op": "print", "text": "client got {result} '{msg.text}' from '{from}'"}]}]})");
  CHECK(lines(run) ==
        Lines{"server got 64 'ping' from ''", "client got 64 're: ping' from '/tmp/srv'", "server read 0"});
}

TEST_CASE("unix_socket: the unix_stream channel delivers exactly the bytes asked for") {
  auto run = run_text(R"({"machine": {"cores": 2},
    "channels": [{"name": "c", "mechanism": "unix_stream", "buffer": 4608}],
    "processes": [
      {"name": "tx", "script": [
        {"op": "send", "channel": "c", "bytes": "1MiB", "text": "big"},
        {"op": "print", "text": "sent {result}"}]},
      {"name": "rx", "script": [
        {"op": "recv", "channel": "c", "bytes": "1MiB"},
        {"op": "print", "text": "received {result} {msg.text}"}]}]})");
  CHECK(lines(run).size() == 2);
  CHECK(run.thread("tx").result == 1048576);
  CHECK(run.thread("rx").result == 1048576);
  CHECK(run.kernel->console().back().text.find("received 1048576 big") == 0);
}

TEST_CASE("unix_socket: the unix_dgram channel keeps boundaries and blocks on a full queue") {
  auto run = run_text(R"({"channels": [{"name": "c", "mechanism": "unix_dgram", "max_dgram_qlen": 0}],
    "processes": [
      {"name": "tx", "script": [
        {"op": "send", "channel": "c", "bytes": 100, "text": "a"},
        {"op": "send", "channel": "c", "bytes": 100, "text": "b", "timeout": 0},
        {"op": "print", "text": "{errno}"},
        {"op": "send", "channel": "c", "bytes": 212961},
        {"op": "print", "text": "{errno}"},
        {"op": "send", "channel": "c", "bytes": 100, "text": "b"}]},
      {"name": "rx", "arrival": "10us", "script": [
        {"op": "recv", "channel": "c", "bytes": 1000}, {"op": "print", "text": "{result} {msg.text}"},
        {"op": "recv", "channel": "c", "bytes": 1000}, {"op": "print", "text": "{result} {msg.text}"}]}]})");
  CHECK(lines(run) == Lines{"EAGAIN", "EMSGSIZE", "100 a", "100 b"});
}

TEST_CASE("unix_socket: the end-of-run listing shows live sockets like ss -x") {
  auto run = run_text(R"({"channels": [{"name": "c", "mechanism": "unix_stream"}],
    "processes": [{"name": "p", "script": [
      {"op": "send", "channel": "c", "bytes": 10}]}]})");
  auto tables = run.kernel->ipc_listing();
  REQUIRE(tables.size() == 1);
  CHECK(tables[0].title == "Unix domain sockets (ss -x)");
  REQUIRE(tables[0].rows.size() == 2);
  // Send-Q is the sender's sk_wmem_alloc (unix_diag: the sk_buff's truesize), Recv-Q the bytes.
  CHECK(tables[0].rows[0] == std::vector<std::string>{"u_str", "ESTAB", "0", "768", "*", "1", "2"});
  CHECK(tables[0].rows[1] == std::vector<std::string>{"u_str", "ESTAB", "10", "0", "*", "2", "1"});
}

TEST_CASE("unix_socket: a blocked reader is woken across cores and charged its wakeup and copy") {
  auto run = run_text(R"({"machine": {"cores": 2}, "processes": [
    {"name": "w", "script": [
      {"op": "socketpair", "fds": ["a", "b"], "type": "stream"},
      {"op": "spawn", "process": "r", "fds": {"b": "b"}},
      {"op": "sleep", "time": "10us"},
      {"op": "write", "fd": "a", "bytes": 64}]},
    {"name": "r", "spawned": true, "script": [{"op": "read", "fd": "b", "bytes": 64}]}]})");
  // The writer wakes the reader on the idle core: wakeup 100 + ipi 1000, charged to the write.
  CHECK(run.charged("w", "write", Primitive::wakeup) == 100);
  CHECK(run.charged("w", "write", Primitive::ipi) == 1000);
  CHECK(run.thread("r").result == 64);
}

TEST_CASE("unix_socket: load-time mistakes name the field and what is accepted") {
  auto scenario = [](const std::string& op) {
    return R"({"processes": [{"name": "p", "script": [)" + op + "]}]}";
  };
  CHECK(
      load_error(scenario(R"({"op": "socketpair", "fds": ["a"], "type": "stream"})")) ==
      "test.json: at processes.0.script.0.fds: expected two descriptor names such as [\"a\", \"b\"], got 1");
  CHECK(load_error(scenario(R"({"op": "socketpair", "fds": ["a", "a"], "type": "stream"})")) ==
        "test.json: at processes.0.script.0.fds.1: the two descriptors need different names");
  CHECK(load_error(scenario(R"({"op": "socketpair", "fds": ["a", 2], "type": "stream"})")) ==
        "test.json: at processes.0.script.0.fds.1: invalid value 2; expected a descriptor name such as "
        "\"sock\"");
  CHECK(load_error(scenario(R"({"op": "socket", "fd": "s", "type": "seqpacket"})")) ==
        "test.json: at processes.0.script.0.type: unknown value \"seqpacket\"; accepted: stream, dgram");
  CHECK(
      load_error(scenario(R"({"op": "bind", "fd": "s", "path": "relative"})")) ==
      "test.json: at processes.0.script.0.path: invalid path \"relative\"; expected an absolute path without "
      "spaces, at most 107 characters, such as \"/tmp/myfifo\"");
  CHECK(load_error(scenario(R"({"op": "recvfrom", "fd": "s", "bytes": 1, "from": "result"})")) ==
        "test.json: at processes.0.script.0.from: invalid variable name \"result\"; use letters, digits, _ "
        "and ., "
        "and not a name the system calls set (result, errno, msg.*, ...)");
  CHECK(load_error(scenario(R"({"op": "shutdown", "fd": "s", "how": "all"})")) ==
        "test.json: at processes.0.script.0.how: unknown value \"all\"; accepted: read, write, both");
  CHECK(load_error(scenario(R"({"op": "socket", "fd": "s", "type": "dgram", "buffer": 4607})")) ==
        "test.json: at processes.0.script.0.buffer: invalid value 4607; expected a value >= 4608");
  CHECK(load_error(R"({"channels": [{"name": "c", "mechanism": "unix_dgram", "max_dgram_qlen": -1}],
    "processes": [{"name": "p", "script": []}]})")
            .find("test.json: at channels.0.max_dgram_qlen:") == 0);
}

TEST_CASE("unix_socket: a datagram channel as a socketpair skips max_dgram_qlen (\"pair\": true)") {
  // Ten datagrams to a receiver that sleeps 1 ms first. With max_dgram_qlen 2 the queue is full at
  // three (unix_recvq_full: more than 2), so the fourth send waits for the receiver; in a socketpair
  // Linux skips that check and all ten go before it wakes.
  auto finish = [](const char* pair) {
    auto run = run_text(std::string(R"({"machine": {"costs": "teaching"},
      "channels": [{"name": "c", "mechanism": "unix_dgram", "max_dgram_qlen": 2, "pair": )") +
                        pair + R"(}],
      "processes": [
        {"name": "sender", "script": [{"op": "repeat", "count": 10, "body": [
          {"op": "send", "channel": "c", "bytes": 8}]}]},
        {"name": "receiver", "script": [{"op": "sleep", "time": "1ms"},
          {"op": "repeat", "count": 10, "body": [{"op": "recv", "channel": "c", "bytes": 8}]}]}]})");
    return run.finished("sender");
  };
  CHECK(finish("true") < 1'000'000);
  CHECK(finish("false") > 1'000'000);
}

TEST_CASE("unix_socket: a sender waiting for its buffer wakes once a quarter of it is in flight") {
  // buffer 20000, datagrams of 100 (768 bytes of truesize each): 27 go (a send starts while less
  // than 20000 is in flight: 26 x 768 = 19968), the 28th waits. sock_wfree -> unix_write_space
  // wakes it only when unix_writable(): in flight x 4 <= 20000, i.e. once 6 are left, after the
  // 21st receive (as Linux 6.18, polled for POLLOUT). The receiver takes one each millisecond on
  // its own core (teaching: 1 GHz).
  auto run = run_text(R"({"machine": {"costs": "teaching", "cores": 2},
    "channels": [{"name": "c", "mechanism": "unix_dgram", "buffer": 20000, "pair": true}],
    "processes": [
      {"name": "sender", "script": [{"op": "repeat", "count": 27, "body": [
        {"op": "send", "channel": "c", "bytes": 100}]},
        {"op": "begin", "name": "next"}, {"op": "send", "channel": "c", "bytes": 100},
        {"op": "end", "name": "next"}]},
      {"name": "receiver", "script": [{"op": "repeat", "count": 28, "body": [
        {"op": "compute", "time": "1ms"}, {"op": "recv", "channel": "c", "bytes": 100}]}]}]})");
  const auto& next = run.kernel->records().at(0);
  CHECK(next.end > 21'000'000);
  CHECK(next.end < 21'100'000);
}

TEST_CASE("unix_socket: shutdown for writing wakes a sender waiting for its buffer, which fails with EPIPE") {
  // Two threads of one process share a datagram socketpair: the writer fills its 4608-byte buffer
  // (two datagrams of 2000, 4352 bytes of truesize each) and waits; the other thread shuts the
  // socket down for writing 1 ms later (sk_state_change wakes it).
  auto run = run_text(R"({"machine": {"costs": "teaching"}, "processes": [{"name": "p", "threads": [
    {"name": "writer", "script": [
      {"op": "socketpair", "fds": ["a", "b"], "type": "dgram", "buffer": 4608},
      {"op": "write", "fd": "a", "bytes": 2000}, {"op": "write", "fd": "a", "bytes": 2000},
      {"op": "write", "fd": "a", "bytes": 2000}, {"op": "print", "text": "{result} {errno}"}]},
    {"name": "closer", "script": [
      {"op": "sleep", "time": "1ms"}, {"op": "shutdown", "fd": "a", "how": "write"}]}]}]})");
  CHECK(lines(run) == Lines{"-1 EPIPE"});
}

TEST_CASE("unix_socket: a stream writer waiting for its buffer wakes once a quarter of it is in flight") {
  // As for datagrams (above): buffer 20000; 27 writes of 100 bytes fill it, and the next waits
  // until the reader, taking 100 each millisecond on its own core, has brought what is in flight
  // down to 6 sk_buffs (6 x 768 x 4 <= 20000): after the 21st read (Linux 6.18, polled).
  auto run = run_text(R"({"machine": {"costs": "teaching", "cores": 2},
    "processes": [
      {"name": "w", "affinity": [0], "script": [
        {"op": "socketpair", "fds": ["a", "b"], "type": "stream", "buffer": 20000},
        {"op": "spawn", "process": "r", "fds": {"b": "b"}},
        {"op": "repeat", "count": 27, "body": [{"op": "write", "fd": "a", "bytes": 100}]},
        {"op": "begin", "name": "more"}, {"op": "write", "fd": "a", "bytes": 100},
        {"op": "end", "name": "more"}]},
      {"name": "r", "spawned": true, "affinity": [1], "script": [{"op": "repeat", "count": 28, "body": [
        {"op": "compute", "time": "1ms"}, {"op": "read", "fd": "b", "bytes": 100}]}]}]})");
  const auto& more = run.kernel->records().at(0);
  CHECK(more.end > 21'000'000);
  CHECK(more.end < 21'100'000);
}

TEST_CASE("unix_socket: the peer's read of a request wakes its writer blocked reading the same socket") {
  // One socket, both ways (a request and its reply over one connection): the client writes 10
  // bytes and blocks reading the same socket. The server's read frees the client's sk_buff, and
  // unix_write_space wakes the client's socket's one wait queue: the client, blocked in read(),
  // wakes (wakeup 100, charged to the server's read), finds nothing and sleeps again; the server's
  // reply wakes it a second time. Over two socketpairs, or with datagrams (whose reader ignores
  // EPOLLOUT), only the reply wakes it.
  auto script = [](const std::string& type, bool one) {
    const std::string reply = one ? "b" : "d", wait = one ? "a" : "c";
    return R"({"machine": {"costs": "teaching"}, "processes": [
      {"name": "client", "script": [
        {"op": "socketpair", "fds": ["a", "b"], "type": ")" +
           type + R"("},
        {"op": "socketpair", "fds": ["c", "d"], "type": ")" +
           type + R"("},
        {"op": "spawn", "process": "server", "fds": {"b": "b", "d": "d"}},
        {"op": "write", "fd": "a", "bytes": 10},
        {"op": "read", "fd": ")" +
           wait + R"(", "bytes": 10}, {"op": "print", "text": "reply {result}"}]},
      {"name": "server", "spawned": true, "script": [
        {"op": "read", "fd": "b", "bytes": 10}, {"op": "sleep", "time": "1ms"},
        {"op": "write", "fd": ")" +
           reply + R"(", "bytes": 10}]}]})";
  };
  auto one_stream = run_text(script("stream", true));
  CHECK(lines(one_stream) == Lines{"reply 10"});
  CHECK(one_stream.charged("server", "read", Primitive::wakeup) == 100);
  CHECK(one_stream.charged("server", "write", Primitive::wakeup) == 100);
  for (const auto& [type, one] :
       std::vector<std::pair<std::string, bool>>{{"stream", false}, {"dgram", true}}) {
    CAPTURE(type);
    CAPTURE(one);
    auto run = run_text(script(type, one));
    CHECK(lines(run) == Lines{"reply 10"});
    CHECK(run.charged("server", "read", Primitive::wakeup) == 0);
    CHECK(run.charged("server", "write", Primitive::wakeup) == 100);
  }
}

TEST_CASE("unix_socket: a requester woken by the peer's read keeps its receive timeout") {
  // The client's receive on the socket it wrote on has a 1 ms timeout (SO_RCVTIMEO); the server reads the
  // request (waking the client, which finds nothing and sleeps again) and never replies. The read still gives
  // up (EAGAIN) at its deadline, 1 ms after it started, not 1 ms after the wakeup.
  auto run = run_text(R"({"machine": {"costs": "teaching"}, "processes": [
    {"name": "client", "script": [
      {"op": "socketpair", "fds": ["a", "b"], "type": "stream"},
      {"op": "spawn", "process": "server", "fds": {"b": "b"}},
      {"op": "write", "fd": "a", "bytes": 10},
      {"op": "begin", "name": "wait"}, {"op": "recvfrom", "fd": "a", "bytes": 10, "timeout": "1ms"},
      {"op": "end", "name": "wait"}, {"op": "print", "text": "{result} {errno}"}]},
    {"name": "server", "spawned": true, "script": [
      {"op": "sleep", "time": "300us"}, {"op": "read", "fd": "b", "bytes": 10},
      {"op": "sleep", "time": "5ms"}]}]})");
  CHECK(lines(run) == Lines{"-1 EAGAIN"});
  CHECK(run.charged("server", "read", Primitive::wakeup) == 100); // the spurious wakeup happened
  const auto& wait = run.kernel->records().at(0);
  const auto waited = wait.end - wait.start;
  CHECK(waited >= 1'000'000);
  CHECK(waited < 1'010'000);
}

TEST_CASE("unix_socket: a read of 0 bytes returns 0 at once and leaves the queue alone; recv of 0 waits") {
  // As Linux 6.18: read(2) of 0 bytes returns in sock_read_iter before the protocol sees it, on an
  // empty datagram socket too, and takes nothing; recvfrom of 0 bytes on a stream waits for data
  // (unix_stream_read_generic's target is one byte): EAGAIN when it may not, and 0 with data
  // queued, which it leaves.
  auto run = run_text(one(R"([
    {"op": "socketpair", "fds": ["a", "b"], "type": "dgram"},
    {"op": "read", "fd": "b", "bytes": 0}, {"op": "print", "text": "dgram read 0, empty: {result} {errno}"},
    {"op": "write", "fd": "a", "bytes": 10},
    {"op": "read", "fd": "b", "bytes": 0}, {"op": "print", "text": "dgram read 0, queued: {result} {errno}"},
    {"op": "read", "fd": "b", "bytes": 100}, {"op": "print", "text": "dgram read 100: {result} {errno}"},
    {"op": "socketpair", "fds": ["c", "d"], "type": "stream"},
    {"op": "recvfrom", "fd": "d", "bytes": 0, "timeout": 0},
    {"op": "print", "text": "stream recvfrom 0, empty: {result} {errno}"},
    {"op": "write", "fd": "c", "bytes": 10},
    {"op": "recvfrom", "fd": "d", "bytes": 0}, {"op": "print", "text": "stream recvfrom 0, queued: {result} {errno}"},
    {"op": "read", "fd": "d", "bytes": 100}, {"op": "print", "text": "stream read 100: {result} {errno}"}])"));
  CHECK(lines(run) == Lines{"dgram read 0, empty: 0 ", "dgram read 0, queued: 0 ", "dgram read 100: 10 ",
                            "stream recvfrom 0, empty: -1 EAGAIN", "stream recvfrom 0, queued: 0 ",
                            "stream read 100: 10 "});
}

TEST_CASE("unix_socket: a datagram socket shut down for reading: EAGAIN when the call may not wait, else 0") {
  // unix_dgram_recvmsg: an empty queue is EAGAIN without a timeout to wait (only SOCK_SEQPACKET makes
  // that end of file); a call that may wait finds RCV_SHUTDOWN in __skb_wait_for_more_packets and
  // returns 0. Linux 6.18 gives the same.
  auto run = run_text(one(R"([
    {"op": "socketpair", "fds": ["a", "b"], "type": "dgram"},
    {"op": "shutdown", "fd": "b", "how": "read"},
    {"op": "read", "fd": "b", "bytes": 100}, {"op": "print", "text": "blocking: {result} {errno}"},
    {"op": "recvfrom", "fd": "b", "bytes": 100, "timeout": 0},
    {"op": "print", "text": "timeout 0: {result} {errno}"},
    {"op": "fcntl", "fd": "b", "nonblock": true},
    {"op": "read", "fd": "b", "bytes": 100}, {"op": "print", "text": "non-blocking: {result} {errno}"}])"));
  CHECK(lines(run) == Lines{"blocking: 0 ", "timeout 0: -1 EAGAIN", "non-blocking: -1 EAGAIN"});
}

TEST_CASE("unix_socket: a stream writer waiting for buffer space when the peer goes: its error, no SIGPIPE") {
  // Woken in sock_alloc_send_pskb with nothing sent: the peer closed with data unread gives
  // ECONNRESET (sock_error takes sk_err), a peer that shut down reading EPIPE; neither sends
  // SIGPIPE, which the next write gets (Linux 6.18, measured likewise).
  // The main process ends the peer's side with `end` once the writer waits; the writer fills its
  // 20000-byte buffer, then writes twice more.
  auto scenario = [](const std::string& end, const std::string& writer_extra) {
    return R"({"processes": [
      {"name": "main", "script": [
        {"op": "socketpair", "fds": ["p", "q"], "type": "stream", "buffer": 20000},
        {"op": "spawn", "process": "writer"},
        {"op": "close", "fd": "q"},
        {"op": "sleep", "time": "100us"},)" +
           end + R"(,
        {"op": "join", "process": "writer"}]},
      {"name": "writer", "spawned": true, )" +
           writer_extra + R"("script": [
        {"op": "close", "fd": "p"},
        {"op": "write", "fd": "q", "bytes": 19872}, {"op": "print", "text": "{result} {errno}"},
        {"op": "write", "fd": "q", "bytes": 10}, {"op": "print", "text": "{result} {errno}"},
        {"op": "write", "fd": "q", "bytes": 10}, {"op": "print", "text": "{result} {errno}"}]}]})";
  };
  for (const char* how : {"close", "shutdown"}) {
    CAPTURE(how);
    const bool close = std::string(how) == "close";
    const std::string end =
        close ? R"({"op": "close", "fd": "p"})" : R"({"op": "shutdown", "fd": "p", "how": "read"})";
    const std::string blocked = close ? "-1 ECONNRESET" : "-1 EPIPE";
    CHECK(lines(run_text(scenario(end, R"("sigpipe": "ignore", )"))) == Lines{"19872 ", blocked, "-1 EPIPE"});
    // Without "sigpipe": "ignore" the blocked write returns, and the next one is killed.
    CHECK(lines(run_text(scenario(end, ""))) == Lines{"19872 ", blocked});
  }
}
