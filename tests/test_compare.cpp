// ipcsim compare: one workload over each mechanism, side by side (docs/compare.md). The workload is
// scenarios/sweep-pingpong.json on the teaching preset (1 GHz: a cycle is a nanosecond).
#include "cli.hpp"
#include "experiment.hpp"
#include "report.hpp"

#include "cli_harness.hpp"

#include <doctest/doctest.h>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <unistd.h>

namespace fs = std::filesystem;
using ipcsim::json;

using ipcsim::test::cli;
using ipcsim::test::contains;
using ipcsim::test::slurp;
using ipcsim::test::TempDir;

namespace {

const std::string kPingPong = std::string(IPCSIM_SOURCE_DIR) + "/scenarios/sweep-pingpong.json";

} // namespace

TEST_CASE("compare: a ping-pong over pipe, mailbox and stream socket, side by side, to the cycle") {
  // One round trip on one core, teaching preset, 64-byte messages. Each side's send: trap_enter 100 +
  // syscall_dispatch 50 + copy_setup 50 + 64 bytes at 8 per cycle + wakeup 100 + trap_exit 100 = 408,
  // plus the pipe's own path (docs/costs.md): fd_lookup 20 + security_hook 10 + lock_acquire 20 +
  // waitqueue_op 20 (the pipe was empty) = 70; its recv: 150 to enter, fd_lookup 20 + security_hook 10
  // + lock_acquire 20, then asleep (waitqueue_op 20, context_save 200), the dispatch of the other side
  // (sched_pick 100, context_restore 200, address_space_switch 500, 16 working-set pages x
  // tlb_refill_per_page 20 = 1120), and when woken lock_acquire 20, the copy (58) and trap_exit (100).
  // A round trip: 2 x (478 + 150 + 50 + 220 + 1120 + 178) = 4392 cycles = 4.392 us. The mailbox and the
  // stream socket take their own paths (docs/costs.md; tests/test_mailbox.cpp, test_unix_socket.cpp).
  // The first round trip is longer (its p99: the server's first dispatch and first page).
  auto r = cli({"compare", kPingPong, "--mechanisms", "pipe,mailbox,unix_stream"});
  CHECK(r.status == ipcsim::kExitOk);
  CHECK(r.err.empty());
  CHECK(r.out ==
        "ipcsim 0.1.0 compare: " + kPingPong +
            " (seed 1)\n"
            "machine: 1 core at 1GHz, costs teaching\n"
            "\n"
            "                                        pipe       mailbox   unix_stream\n"
            "result                             completed     completed     completed\n"
            "simulated time                     89.320 \xC2\xB5s     85.060 \xC2\xB5s    111.300 \xC2\xB5s\n"
            "rtt p50                             4.392 \xC2\xB5s      4.192 \xC2\xB5s      5.512 \xC2\xB5s\n"
            "rtt p99                             4.872 \xC2\xB5s      4.382 \xC2\xB5s      5.692 \xC2\xB5s\n"
            "rtt mean                            4.402 \xC2\xB5s      4.189 \xC2\xB5s      5.502 \xC2\xB5s\n"
            "rtt MB/s                              14.537        15.276        11.633\n"
            "messages                                  40            40            40\n"
            "messages per second               447828.034    470256.290    359389.039\n"
            "CPU cycles per message              2233.000      2126.500      2782.500\n"
            "context switches per message           1.025         1.025         1.025\n"
            "CPU cycles per message, by primitive\n"
            "  trap_enter                         205.000       205.000       205.000\n"
            "  trap_exit                          200.000       200.000       200.000\n"
            "  syscall_dispatch                   102.500       102.500       102.500\n"
            "  context_save                       195.000       195.000       195.000\n"
            "  context_restore                    205.000       205.000       205.000\n"
            "  address_space_switch               512.500       512.500       512.500\n"
            "  tlb_refill_per_page                328.000       328.000       328.000\n"
            "  sched_pick                         102.500       102.500       102.500\n"
            "  wakeup                              97.500        97.500        97.500\n"
            "  copy_setup                         100.000       100.000       100.000\n"
            "  copy_bytes_per_cycle                16.000        16.000        16.000\n"
            "  atomic_rmw                           0.000         0.000        80.000\n"
            "  fd_lookup                           40.000         0.000        40.000\n"
            "  security_hook                       20.000         0.000        20.000\n"
            "  lock_acquire                        59.500        40.000       139.000\n"
            "  slab_alloc                           0.000         2.500       200.000\n"
            "  page_alloc                          10.000         0.000         0.000\n"
            "  list_op                              0.000         0.500        20.000\n"
            "  waitqueue_op                        39.500        19.500        19.500\n"
            "  socket_dispatch                      0.000         0.000       200.000\n");
  // 20 round trips are 40 messages; the busy cycles (89320 on one busy core) over them: 2233.
  CHECK(89320.0 / 40 == 2233.0);
}

TEST_CASE(
    "compare: --out writes compare.json, the CSV files and each run's files, agreeing with ipcsim run") {
  TempDir dir("compare");
  auto out = (dir.path / "cmp").string();
  auto r = cli({"compare", kPingPong, "--mechanisms", "unix_dgram,posix_mq", "--out", out, "-q", "--set",
                "params.size=512"});
  CHECK(r.status == ipcsim::kExitOk);
  CHECK(r.out.empty());
  CHECK(r.err.empty());
  json doc = json::parse(slurp(fs::path(out) / "compare.json"));
  CHECK(doc["context"]["sets"] == json::array({"params.size=512"}));
  REQUIRE(doc["mechanisms"].size() == 2);
  CHECK(doc["mechanisms"][0]["mechanism"] == "unix_dgram");
  CHECK(doc["mechanisms"][1]["mechanism"] == "posix_mq");
  CHECK(doc["mechanisms"][1]["messages"] == 40);
  CHECK(doc["mechanisms"][1]["message_bytes"] == 40 * 512);
  // The same workload run directly over posix_mq gives the same interval.
  auto run_dir = (dir.path / "direct").string();
  auto direct =
      cli({"run", kPingPong, "--set", "params.size=512", "--set", "channels.ping.mechanism=posix_mq", "--set",
           "channels.pong.mechanism=posix_mq", "--out", run_dir, "-q"});
  CHECK(direct.status == 0);
  json summary = json::parse(slurp(fs::path(run_dir) / "summary.json"));
  CHECK(doc["mechanisms"][1]["intervals"][0] == summary["intervals"][0]);
  CHECK(slurp(fs::path(out) / "runs" / "posix_mq" / "intervals.csv") ==
        slurp(fs::path(run_dir) / "intervals.csv"));
  std::string intervals = slurp(fs::path(out) / "intervals.csv");
  CHECK(intervals.rfind(std::string("mechanism,") + ipcsim::interval_csv_header() + "\nunix_dgram,rtt,20,",
                        0) == 0);
  std::string mechanisms = slurp(fs::path(out) / "mechanisms.csv");
  CHECK(mechanisms.rfind(
            "mechanism,result,scenario_hash,simulated_cycles,simulated_ns,messages,message_bytes,"
            "busy_cycles,cycles_per_message,context_switches,switches_per_message,messages_per_second\n"
            "unix_dgram,completed,fnv1a64:",
            0) == 0);
  std::string primitives = slurp(fs::path(out) / "primitives.csv");
  CHECK(primitives.rfind("mechanism,primitive,cycles,cycles_per_message,percent\nunix_dgram,trap_enter,",
                         0) == 0);
  for (const char* file : {"summary.json", "records.csv", "intervals.csv", "breakdown.csv", "threads.csv"})
    CHECK(fs::exists(fs::path(out) / "runs" / "unix_dgram" / file));
}

TEST_CASE("compare: every mistake is named") {
  TempDir dir("compare");
  auto check = [](const std::vector<std::string>& args, const std::string& message) {
    auto r = cli(args);
    CHECK(r.status == ipcsim::kExitBadInput);
    CHECK(r.out.empty());
    CHECK(r.err == message);
  };
  check({"compare", kPingPong, "--mechanisms", "pipe,pip"},
        "error: --mechanisms: unknown mechanism \"pip\" (did you mean \"pipe\"?); mechanisms: mailbox, pipe, "
        "posix_mq, sysv_msg, unix_dgram, unix_stream\n");
  check({"compare", kPingPong, "--mechanisms", "pipe,mailbox,pipe"},
        "error: --mechanisms: \"pipe\" is listed twice\n");
  check(
      {"compare", kPingPong, "--mechanisms", ""},
      "error: --mechanisms: expected a list of mechanisms, such as pipe,sysv_msg; mechanisms: mailbox, pipe, "
      "posix_mq, sysv_msg, unix_dgram, unix_stream\n");
  check({"compare", kPingPong, "--mechanisms", "pipe", "--set", "channels.ping.mechanism=mailbox"},
        "error: --set channels.ping.mechanism=mailbox: compare sets every channel's mechanism itself, from "
        "--mechanisms; leave this --set out\n");
  auto no_channels =
      dir.write("plain.json", R"({"processes": [{"name": "p", "script": [{"op": "yield"}]}]})");
  check(
      {"compare", no_channels, "--mechanisms", "pipe"},
      "error: " + no_channels +
          ": compare runs the scenario's generic channels over each mechanism, and this scenario declares no "
          "\"channels\" (see docs/scripts.md, the generic channel)\n");
  auto two = dir.write("two.json", R"({"machines": [{"name": "a"}, {"name": "b"}],
    "channels": [{"name": "c", "mechanism": "pipe", "machine": "a"}],
    "processes": [{"name": "p", "machine": "a", "script": [{"op": "yield"}]},
                  {"name": "q", "machine": "b", "script": [{"op": "yield"}]}]})");
  check({"compare", two, "--mechanisms", "pipe"},
        "error: " + two + ": compare runs one machine; this scenario lists several \"machines\"\n");
  // 16 KiB is past System V's MSGMAX (8 KiB) and POSIX's default mq_msgsize (8 KiB).
  check(
      {"compare", kPingPong, "--mechanisms", "pipe,sysv_msg", "--set", "params.size=16384"},
      "error: " + kPingPong +
          ": under sysv_msg: client's send failed with EINVAL (1 time): the message is larger than sysv_msg "
          "takes (ipcsim list mechanisms gives its limits); leave sysv_msg out, or make the messages "
          "smaller\n");
  check({"compare", kPingPong, "--mechanisms", "posix_mq", "--set", "params.size=16384"},
        "error: " + kPingPong +
            ": under posix_mq: client's send failed with EMSGSIZE (1 time): the message is larger than "
            "posix_mq "
            "takes (ipcsim list mechanisms gives its limits); leave posix_mq out, or make the messages "
            "smaller\n");
}

TEST_CASE("compare: a channel parameter the mechanism does not take is dropped, with a note") {
  TempDir dir("compare");
  auto file = dir.write("cap.json", R"({"machine": {"costs": "teaching"},
    "channels": [{"name": "c", "mechanism": "pipe", "capacity": 4096}],
    "processes": [{"name": "a", "script": [{"op": "send", "channel": "c", "bytes": 8}]},
                  {"name": "b", "script": [{"op": "recv", "channel": "c", "bytes": 8}]}]})");
  auto r = cli({"compare", file, "--mechanisms", "pipe,posix_mq", "-q"});
  CHECK(r.status == ipcsim::kExitOk);
  CHECK(r.err ==
        "note: " + file +
            ": under posix_mq: channel c: \"capacity\" is not a posix_mq parameter; posix_mq's default "
            "applies\n");
}
