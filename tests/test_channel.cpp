// The generic channel (sim/ipc.hpp Channel, docs/scripts.md "The generic channel"): one workload,
// run over every mechanism in mechanism_names() by changing only the channels' "mechanism" field,
// must print the same console text on all of them.
#include "harness.hpp"
#include "ipc.hpp"

#include <algorithm>
#include <doctest/doctest.h>
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
