// The generic channel (sim/ipc.hpp Channel, docs/scripts.md "The generic channel"): one workload,
// run over every mechanism in mechanism_names() by changing only the channels' "mechanism" field,
// must print the same console text on all of them.
#include "harness.hpp"
#include "ipc.hpp"

#include <algorithm>
#include <doctest/doctest.h>
#include <map>
#include <string>
#include <vector>

using namespace ipcsim;
using ipcsim::test::run_text;

namespace {

// A 64-byte ping-pong of 3 rounds with text; then, on the empty "pong" channel, a recv that must not
// block (timeout 0) and a recv that gives up after 1 ms. Every recv buffer is 64 bytes: what a program
// written for a pipe would use.
std::string workload(const std::string& mechanism, const std::string& buffer = "64") {
  return R"({"machine": {"costs": "teaching"},
  "channels": [{"name": "ping", "mechanism": ")" +
         mechanism + R"("}, {"name": "pong", "mechanism": ")" + mechanism + R"("}],
  "processes": [
    {"name": "client", "script": [
      {"op": "repeat", "count": 3, "body": [
        {"op": "send", "channel": "ping", "bytes": 64, "text": "ping"},
        {"op": "recv", "channel": "pong", "bytes": )" +
         buffer + R"(},
        {"op": "print", "text": "{result} {msg.text}"}]},
      {"op": "recv", "channel": "pong", "bytes": 64, "timeout": 0},
      {"op": "print", "text": "nowait {result} {errno}"},
      {"op": "recv", "channel": "pong", "bytes": 64, "timeout": "1ms"},
      {"op": "print", "text": "timed {result} {errno}"}]},
    {"name": "server", "script": [
      {"op": "repeat", "count": 3, "body": [
        {"op": "recv", "channel": "ping", "bytes": )" +
         buffer + R"(},
        {"op": "print", "text": "{result} {msg.text}"},
        {"op": "send", "channel": "pong", "bytes": 64, "text": "pong"}]}]}]})";
}

// The console, one "THREAD: TEXT" line each, joined so that a mismatch shows the whole text.
std::string printed(const std::string& mechanism, const std::string& buffer = "64") {
  auto run = run_text(workload(mechanism, buffer));
  std::string text;
  for (const auto& line : run.kernel->console())
    text += run.kernel->threads()[line.thread].display_name() + ": " + line.text + "\n";
  return text;
}

const std::string kExpected = "server: 64 ping\n"
                              "client: 64 pong\n"
                              "server: 64 ping\n"
                              "client: 64 pong\n"
                              "server: 64 ping\n"
                              "client: 64 pong\n"
                              "client: nowait -1 EAGAIN\n"
                              "client: timed -1 ETIMEDOUT\n";

} // namespace

TEST_CASE("channel: the mechanisms are the ones this test covers") {
  auto names = mechanism_names(); // in registration (link) order
  std::sort(names.begin(), names.end());
  CHECK(names ==
        std::vector<std::string>{"mailbox", "pipe", "posix_mq", "sysv_msg", "unix_dgram", "unix_stream"});
}

TEST_CASE("channel: the same workload prints the same text over every mechanism") {
  for (const auto& mechanism : mechanism_names()) {
    CAPTURE(mechanism);
    CHECK(printed(mechanism) == kExpected);
  }
}

TEST_CASE("channel: a buffer larger than the message receives the message, over every mechanism") {
  // A byte stream returns at the message's boundary (StreamFraming); a queue hands over the message.
  for (const auto& mechanism : mechanism_names()) {
    CAPTURE(mechanism);
    CHECK(printed(mechanism, "\"8KiB\"") == kExpected);
  }
}

TEST_CASE("channel: a 0-byte message keeps its text over every message mechanism") {
  // Byte streams (pipe, unix_stream) are left out: a 0-byte write carries nothing there, so no
  // message arrives and a recv waits for bytes; that is a stream's nature.
  for (const char* mechanism : {"sysv_msg", "posix_mq", "mailbox", "unix_dgram"}) {
    CAPTURE(mechanism);
    auto run = run_text(R"({"machine": {"costs": "teaching"},
      "channels": [{"name": "c", "mechanism": ")" +
                        std::string(mechanism) + R"("}],
      "processes": [{"name": "p", "script": [
        {"op": "send", "channel": "c", "bytes": 0, "text": "zero"},
        {"op": "recv", "channel": "c", "bytes": 64, "timeout": 0},
        {"op": "print", "text": "{result} {msg.bytes} {msg.text}"}]}]})");
    REQUIRE(run.kernel->console().size() == 1);
    CHECK(run.kernel->console()[0].text == "0 0 zero");
  }
}

namespace {

std::vector<std::string> texts_of(const std::string& scenario, const std::vector<std::string>& sets = {}) {
  LoadOptions options;
  options.sets = sets;
  auto run = run_text(scenario, options);
  REQUIRE(run.kernel->deadlock() == nullptr);
  return ipcsim::test::console_texts(run);
}

} // namespace

TEST_CASE(
    "channel: over a byte stream, senders take turns and receivers get whole messages, on 1 to 4 cores") {
  // Three senders of four 3000-byte messages each, two receivers with 8 KiB buffers: every receive
  // is one whole message with its sender's text, whatever the cores do.
  const std::string scenario = R"({"channels": [{"name": "c", "mechanism": "pipe"}], "processes": [
    {"name": "s", "count": 3, "script": [{"op": "repeat", "count": 4, "body": [
      {"op": "send", "channel": "c", "bytes": 3000, "text": "m{pid}"}]}]},
    {"name": "r", "count": 2, "script": [{"op": "repeat", "count": 6, "body": [
      {"op": "recv", "channel": "c", "bytes": "8KiB"}, {"op": "print", "text": "{result} {msg.text}"}]}]}]})";
  for (const char* mechanism : {"pipe", "unix_stream"})
    for (int cores = 1; cores <= 4; ++cores) {
      CAPTURE(mechanism);
      CAPTURE(cores);
      auto texts = texts_of(scenario, {std::string("channels.c.mechanism=") + mechanism,
                                       "machine.cores=" + std::to_string(cores)});
      REQUIRE(texts.size() == 12);
      std::map<std::string, int> per_sender;
      for (const auto& t : texts) ++per_sender[t];
      CHECK(per_sender == std::map<std::string, int>{{"3000 m100", 4}, {"3000 m101", 4}, {"3000 m102", 4}});
    }
}

TEST_CASE("channel: over a byte stream, a message longer than the buffers is read in pieces by turns") {
  // Six 300000-byte messages, three receivers with 200000-byte buffers: each message is read as
  // 200000 then 100000, never two messages in one receive.
  const std::string scenario = R"({"channels": [{"name": "c", "mechanism": "pipe"}], "processes": [
    {"name": "s", "script": [{"op": "repeat", "count": 6, "body": [{"op": "send", "channel": "c", "bytes": 300000}]}]},
    {"name": "r", "count": 3, "script": [{"op": "repeat", "count": 4, "body": [
      {"op": "recv", "channel": "c", "bytes": 200000}, {"op": "print", "text": "{result}"}]}]}]})";
  for (const char* mechanism : {"pipe", "unix_stream"})
    for (int cores = 1; cores <= 4; ++cores) {
      CAPTURE(mechanism);
      CAPTURE(cores);
      auto texts = texts_of(scenario, {std::string("channels.c.mechanism=") + mechanism,
                                       "machine.cores=" + std::to_string(cores)});
      CHECK(std::count(texts.begin(), texts.end(), "200000") == 6);
      CHECK(std::count(texts.begin(), texts.end(), "100000") == 6);
    }
}

TEST_CASE("channel: over a byte stream, a sender's turn covers its whole message, even when it must wait") {
  // A's 4000-byte write waits for room behind P's 2000 bytes (capacity 5000); B, arriving while A
  // waits, waits for A's turn: the stream holds P, A, B, each whole.
  auto texts = texts_of(R"({"channels": [{"name": "c", "mechanism": "pipe", "capacity": 5000}], "processes": [
    {"name": "p", "script": [{"op": "send", "channel": "c", "bytes": 2000, "text": "P"}]},
    {"name": "a", "arrival": "10us", "script": [{"op": "send", "channel": "c", "bytes": 4000, "text": "A"}]},
    {"name": "b", "arrival": "20us", "script": [{"op": "send", "channel": "c", "bytes": 100, "text": "B"}]},
    {"name": "r", "arrival": "50us", "script": [{"op": "repeat", "count": 4, "body": [
      {"op": "recv", "channel": "c", "bytes": 8192, "timeout": "1ms"},
      {"op": "print", "text": "{result} {msg.text} {errno}"}]}]}]})");
  CHECK(texts == std::vector<std::string>{"2000 P ", "4000 A ", "100 B ", "-1  ETIMEDOUT"});
}

TEST_CASE("channel: over a byte stream, a sender terminated mid-message leaves what it sent as a message") {
  // b's 10000-byte send fills the stream and waits: a 1000-byte pipe, or a socket's smallest send
  // buffer (4608 bytes: two sk_buffs of 2240, each 4352 bytes of truesize, the second allocated
  // while 4352 < 4608). A SIGPIPE from its sibling thread kills the process. The receiver gets what
  // fitted as one message, then q's 10 bytes as the next.
  for (const char* mechanism : {"pipe", "unix_stream"}) {
    CAPTURE(mechanism);
    const bool pipe = std::string(mechanism) == "pipe";
    const std::string params = pipe ? R"("capacity": 1000, "pipe_buf": 0)" : R"("buffer": 4608)";
    auto texts = texts_of(R"({"channels": [{"name": "c", "mechanism": ")" + std::string(mechanism) + "\", " +
                          params + R"(}], "processes": [
      {"name": "p", "threads": [
        {"name": "a", "script": [{"op": "sleep", "time": "50us"}, {"op": "pipe", "fds": ["r", "w"]},
                                 {"op": "close", "fd": "r"}, {"op": "write", "fd": "w", "bytes": 1}]},
        {"name": "b", "script": [{"op": "send", "channel": "c", "bytes": 10000, "text": "P"}]}]},
      {"name": "q", "arrival": "200us", "script": [{"op": "send", "channel": "c", "bytes": 10, "text": "Q"}]},
      {"name": "r", "script": [{"op": "sleep", "time": "100us"}, {"op": "repeat", "count": 3, "body": [
        {"op": "recv", "channel": "c", "bytes": 20000, "timeout": "1ms"},
        {"op": "print", "text": "{result} {msg.text} {errno}"}]}]}]})");
    CHECK(texts == std::vector<std::string>{pipe ? "1000 P " : "4480 P ", "10 Q ", "-1  ETIMEDOUT"});
  }
}

TEST_CASE("channel: over a byte stream, a sender killed mid-message hands its turn to the sender waiting") {
  // b's 10000-byte send fills the stream (as above) and waits; q, from 20us, waits for b's turn. b is
  // killed at 50us: q takes the turn then (it used to wait for good, ending in a deadlock).
  for (const char* mechanism : {"pipe", "unix_stream"}) {
    CAPTURE(mechanism);
    const bool pipe = std::string(mechanism) == "pipe";
    const std::string params = pipe ? R"("capacity": 1000, "pipe_buf": 0)" : R"("buffer": 4608)";
    auto texts = texts_of(R"({"channels": [{"name": "c", "mechanism": ")" + std::string(mechanism) + "\", " +
                          params + R"(}], "processes": [
      {"name": "b", "script": [{"op": "send", "channel": "c", "bytes": 10000, "text": "B"}]},
      {"name": "q", "arrival": "20us", "script": [{"op": "send", "channel": "c", "bytes": 10, "text": "Q"}]},
      {"name": "k", "arrival": "50us", "script": [{"op": "kill", "process": "b", "signal": "SIGKILL"}]},
      {"name": "r", "arrival": "100us", "script": [{"op": "repeat", "count": 3, "body": [
        {"op": "recv", "channel": "c", "bytes": 20000, "timeout": "1ms"},
        {"op": "print", "text": "{result} {msg.text} {errno}"}]}]}]})");
    CHECK(texts == std::vector<std::string>{pipe ? "1000 B " : "4480 B ", "10 Q ", "-1  ETIMEDOUT"});
  }
}

TEST_CASE("channel: over a byte stream, an interrupted sender keeps its turn until its call returns") {
  // A handled SIGUSR1 interrupts b's send after 1000 of its 2500 bytes: the write returns 1000 (a
  // partial write is not EINTR), the stream holds a 1000-byte message, and only then does q, waiting
  // since 20us, take the turn.
  auto texts = texts_of(R"({"channels": [{"name": "c", "mechanism": "pipe", "capacity": 1000, "pipe_buf": 0}],
    "processes": [
      {"name": "b", "script": [
        {"op": "sigaction", "signal": "SIGUSR1", "handler": [{"op": "print", "text": "handler"}]},
        {"op": "send", "channel": "c", "bytes": 2500, "text": "B"},
        {"op": "print", "text": "b sent {result} {errno}"}]},
      {"name": "q", "arrival": "20us", "script": [{"op": "send", "channel": "c", "bytes": 10, "text": "Q"}]},
      {"name": "k", "arrival": "50us", "script": [{"op": "kill", "process": "b", "signal": "SIGUSR1"}]},
      {"name": "r", "arrival": "100us", "script": [{"op": "repeat", "count": 3, "body": [
        {"op": "recv", "channel": "c", "bytes": 5000, "timeout": "1ms"},
        {"op": "print", "text": "{result} {msg.text} {errno}"}]}]}]})");
  CHECK(texts == std::vector<std::string>{"handler", "b sent 1000 ", "1000 B ", "10 Q ", "-1  ETIMEDOUT"});
}

TEST_CASE("channel: send returns the bytes sent and a failed recv leaves no message, over every mechanism") {
  for (const auto& mechanism : mechanism_names()) {
    CAPTURE(mechanism);
    auto texts = texts_of(R"({"channels": [{"name": "c", "mechanism": ")" + mechanism + R"("}], "processes": [
      {"name": "p", "script": [
        {"op": "send", "channel": "c", "bytes": 64, "text": "hello"}, {"op": "print", "text": "sent {result}"},
        {"op": "recv", "channel": "c", "bytes": 64}, {"op": "print", "text": "{result} {msg.text}"},
        {"op": "recv", "channel": "c", "bytes": 64, "timeout": 0},
        {"op": "print", "text": "{result} {errno} [{msg.text}] {msg.bytes}"}]}]})");
    CHECK(texts == std::vector<std::string>{"sent 64", "64 hello", "-1 EAGAIN [] 0"});
  }
}

namespace {
// The cache lines each mechanism's critical sections share (docs/costs.md, "Locks across cores").
const std::map<std::string, Cycles>& shared_lines() {
  static const std::map<std::string, Cycles> lines{{"pipe", 3},        {"sysv_msg", 4},   {"posix_mq", 5},
                                                   {"unix_stream", 5}, {"unix_dgram", 5}, {"mailbox", 1}};
  return lines;
}

// Two sends of 64 bytes from core 0, 2 ms apart, and one receive on core 1: late (after 1 ms, the
// first message queued meanwhile) or waiting from the start (the message handed over to it).
ipcsim::test::Run two_sends_one_receive(const std::string& mechanism, bool receiver_waits) {
  const std::string delay = R"({"op": "compute", "time": "1ms"}, )";
  return run_text(R"({"machine": {"cores": 2, "costs": "teaching"},
      "channels": [{"name": "c", "mechanism": ")" +
                  mechanism + R"("}],
      "processes": [
        {"name": "sender", "affinity": [0], "working_set_pages": 0, "script": [)" +
                  (receiver_waits ? delay : "") + R"({"op": "send", "channel": "c", "bytes": 64},
          {"op": "compute", "time": "2ms"}, {"op": "send", "channel": "c", "bytes": 64}]},
        {"name": "receiver", "affinity": [1], "working_set_pages": 0, "script": [)" +
                  (receiver_waits ? "" : delay) + R"({"op": "recv", "channel": "c", "bytes": 64}]}]})");
}
} // namespace

TEST_CASE("channel: across two cores, each mechanism's lock brings the lines its sections share") {
  // A sender on core 0, a receiver on core 1 that arrives long after it: the receive takes the lock
  // the send last held on the other core, and every line the two sections share comes over at
  // cache_line_transfer (teaching: 100 cycles each). The counts are the kernel structures' (docs/
  // costs.md, "Locks across cores"); on one core nothing is charged. The payload, which the sender's
  // core holds, comes over too (not a textbook mailbox's): one more transfer for its first line, and
  // its 64 bytes at the remote rate (2 bytes a cycle: 32 cycles) instead of L1's (8: 8 cycles), the
  // 24 between booked under copy_bytes_per_cycle_remote.
  // Named, not a structured binding: CAPTURE's lambda captures it, which clang before 16 refuses.
  for (const auto& entry : shared_lines()) {
    const std::string& mechanism = entry.first;
    const Cycles count = entry.second;
    CAPTURE(mechanism);
    for (int cores : {1, 2}) {
      auto run = run_text(R"({"machine": {"cores": )" + std::to_string(cores) + R"(, "costs": "teaching"},
        "channels": [{"name": "c", "mechanism": ")" +
                          mechanism + R"("}],
        "processes": [
          {"name": "sender", "affinity": [0], "working_set_pages": 0, "script": [
            {"op": "send", "channel": "c", "bytes": 64}]},
          {"name": "receiver", "affinity": [)" +
                          std::string(cores == 1 ? "0" : "1") + R"(], "working_set_pages": 0, "script": [
            {"op": "compute", "time": "1ms"}, {"op": "recv", "channel": "c", "bytes": 64}]}]})");
      const bool payload = cores == 2 && mechanism != "mailbox";
      CHECK(run.charged("receiver", "recv", Primitive::cache_line_transfer) ==
            (cores == 2 ? count * 100 : 0) + (payload ? 100 : 0));
      CHECK(run.charged("receiver", "recv", Primitive::copy_bytes_per_cycle_remote) == (payload ? 24 : 0));
    }
  }
}

TEST_CASE(
    "channel: across two cores, a send writes into memory the receiver's core freed, and takes its lines") {
  // The sender on core 0 sends twice; the receiver on core 1 takes the first message in between.
  // The second send's copy goes into kernel memory the receive emptied on core 1 (a pipe's
  // tmp_page, a msg_msg or an sk_buff freed there and allocated again): its first line comes over
  // (cache_line_transfer 100) and its 64 bytes at the remote rate (32 cycles instead of L1's 8: 24
  // under copy_bytes_per_cycle_remote). Its lock brings the lines the sections share, the receive
  // having held it last (the counts of the test above). The first send pays neither: nothing was
  // received yet. A textbook mailbox keeps no kernel buffer to recycle.
  for (const auto& entry : shared_lines()) {
    const std::string& mechanism = entry.first;
    const Cycles count = entry.second;
    CAPTURE(mechanism);
    auto run = two_sends_one_receive(mechanism, false);
    const bool recycled = mechanism != "mailbox";
    CHECK(run.charged("sender", "send", Primitive::cache_line_transfer) ==
          count * 100 + (recycled ? 100 : 0));
    CHECK(run.charged("sender", "send", Primitive::copy_bytes_per_cycle_remote) == (recycled ? 24 : 0));
  }
}

TEST_CASE("channel: across two cores, a message handed to a waiting receiver is freed on its core too") {
  // The receiver on core 1 waits first, so the first message is handed to it (System V's and POSIX's
  // pipelined_send; a pipe's or a socket's reader woken with the data): its receive still frees the
  // kernel memory on core 1, and the second send's copy into it pays the remote rate for its 64
  // bytes (24 cycles beyond L1's 8 under copy_bytes_per_cycle_remote).
  for (const auto& entry : shared_lines()) {
    const std::string& mechanism = entry.first;
    CAPTURE(mechanism);
    auto run = two_sends_one_receive(mechanism, true);
    CHECK(run.charged("sender", "send", Primitive::copy_bytes_per_cycle_remote) ==
          (mechanism == "mailbox" ? 0 : 24));
  }
}
