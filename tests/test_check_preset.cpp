// `ipcsim check-preset` (docs/hostbench.md): reading hostbench files, the simulated workloads on
// the teaching preset worked out by hand, the mechanism order, and every message for bad input.
#include "check_preset.hpp"
#include "cli.hpp"
#include "error.hpp"

#include "cli_harness.hpp"

#include <doctest/doctest.h>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <unistd.h>

namespace fs = std::filesystem;
using namespace ipcsim;

using ipcsim::test::cli;
using ipcsim::test::contains;
using ipcsim::test::slurp;
using ipcsim::test::TempDir;

namespace {

const std::string kFixture = std::string(IPCSIM_SOURCE_DIR) + "/tests/fixtures/hostbench-tiny.csv";
const std::string kHeader =
    "kind,mechanism,bytes,placement,trials,ops_per_trial,median_ns,p99_ns,min_ns,bytes_per_s\n";

// The message parsing `text` as file x.csv gives, or "<no error>".
std::string parse_error(const std::string& text) {
  try {
    parse_hostbench(text, "x.csv");
  } catch (const UserError& e) {
    return e.what();
  }
  return "<no error>";
}

// A file with the version line, the header and one data line.
std::string one_row(const std::string& row) { return "# hostbench 1\n" + kHeader + row + "\n"; }

const CheckedCell& cell(const CheckReport& r, const std::string& kind) {
  for (const auto& c : r.cells)
    if (c.row.kind == kind) return c;
  throw std::runtime_error("no cell " + kind);
}

CheckedCell synthetic(const std::string& kind, const std::string& mechanism, double measured,
                      double simulated) {
  CheckedCell c;
  c.row.kind = kind;
  c.row.mechanism = mechanism;
  c.row.bytes = 8;
  c.row.placement = "same_core";
  c.measured = measured;
  c.simulated = simulated;
  return c;
}

} // namespace

TEST_CASE("check-preset: reads the fixture's keys, rows and fields") {
  auto f = read_hostbench(kFixture);
  REQUIRE(f.rows.size() == 3);
  CHECK(f.rows[0].kind == "roundtrip");
  CHECK(f.rows[0].mechanism == "pipe");
  CHECK(f.rows[0].bytes == 8);
  CHECK(f.rows[0].placement == "same_core");
  CHECK(f.rows[0].trials == 100);
  CHECK(f.rows[0].median_ns == 5000.0);
  CHECK(!f.rows[0].bytes_per_s);
  CHECK(f.rows[0].line == 6);
  CHECK(f.rows[1].bytes_per_s == 6.4e9);
  REQUIRE(f.keys.size() == 3);
  CHECK(f.keys[0] == std::pair<std::string, std::string>{"tool", "hostbench 1"});
  CHECK(f.keys[2].first == "skip");
}

TEST_CASE("check-preset: a pipe round trip and a memcpy on the teaching preset, worked out by hand") {
  auto report = check_preset("teaching", read_hostbench(kFixture));
  // Pipe, 8 B, both processes on core 0 (teaching: 1 GHz, so a cycle is a nanosecond). Each side,
  // each round trip: write = trap_enter 100 + syscall_dispatch 50 + the pipe's path (fd_lookup 20 +
  // security_hook 10 + lock_acquire 20 + waitqueue_op 20, docs/costs.md) + copy_setup 50 + 8 B at 8 B
  // per cycle 1 + wakeup 100 + trap_exit 100 = 471; read = 100 + 50 + 20 + 10 + 20 + 50 + 1 + 100 +
  // lock_acquire 20 again when woken = 371, and it blocks (waitqueue_op 20, context_save 200); the
  // switch to the other side = sched_pick 100 + context_restore 200 + address_space_switch 500 +
  // tlb_refill_per_page 20 x 16 working-set pages = 1120. 2 x (471 + 371 + 220 + 1120) = 4364 ns.
  const auto& rtt = cell(report, "roundtrip");
  REQUIRE(rtt.simulated);
  CHECK(*rtt.simulated == 4364.0);
  CHECK(rtt.measured == 5000.0);
  CHECK(rtt.error_pct == doctest::Approx((4364.0 - 5000.0) / 5000.0 * 100)); // -12.72%
  CHECK(rtt.within);
  CHECK(rtt.target_pct == 20);
  // memcpy of 4096 B: copy_bytes_per_cycle 8 -> 512 cycles per copy once the pages are in (the
  // warm-up write faults them), 4096 B / 512 ns = 8000 MB/s; measured 4096 B / 640 ns = 6400 MB/s:
  // +25.0%, and the limit of the 25% target counts as within.
  const auto& copy = cell(report, "memcpy");
  REQUIRE(copy.simulated);
  CHECK(copy.metric == "MB/s");
  CHECK(*copy.simulated == 8000.0);
  CHECK(copy.measured == 6400.0);
  CHECK(copy.error_pct == 25.0);
  CHECK(copy.within);
  const auto& null = cell(report, "null_syscall");
  CHECK(!null.simulated);
  CHECK(null.skipped ==
        "no scenario op is a system call that does nothing (getppid); the preset's trap_enter and "
        "trap_exit are its cost");
  CHECK(report.orders.empty());
  CHECK(check_verdict(report) ==
        "verdict: 1 of 1 round-trip cells within 20%, 0 of 0 throughput cells within 25%; mechanism order "
        "reproduced in 0 of 0 size x placement groups (pairs measured within 5% of each other are ties; with "
        "every pair: 0 of 0); context switch, memcpy and wakeups: 1 of 1 within target; 1 "
        "row not "
        "modelled");
}

TEST_CASE("check-preset: the wakeup cells on the teaching preset, worked out by hand") {
  TempDir dir("check_wakeup");
  const std::string file = (dir.path / "wake.csv").string();
  std::ofstream(file) << "# hostbench 1\n" + kHeader +
                             "wakeup,pipe,1,cross_core,100,1,4000.0,9000.0,1000.0,\n"
                             "wakeup_call,pipe,1,cross_core,100,1,1500.0,2000.0,500.0,\n";
  auto report = check_preset("teaching", read_hostbench(file));
  // teaching, 1 GHz; timed after two warm-up wakeups. The writer's write() of 1 byte to a pipe whose
  // reader sleeps on the other core: trap_enter 100 + syscall_dispatch 50 + fd_lookup 20 +
  // security_hook 10 + lock_acquire 20 + the pipe's lines from the reader's core (cache_line_transfer
  // 100 x 3) + copy_setup 50 + 1 B at 8 B/cycle 1 + waitqueue_op 20 (the pipe was empty) + wakeup 100
  // + ipi 1000 (the reader's core is idle) + trap_exit 100 = 1771 ns; and no page_alloc: the write
  // reuses the page the reader emptied (the pipe's tmp_page), whose lines the reader's core holds:
  // one comes over (cache_line_transfer 100; 1 B at the remote rate is no slower) = 1871 ns.
  const auto& call = cell(report, "wakeup_call");
  REQUIRE(call.simulated);
  CHECK(*call.simulated == 1871.0);
  // From the write's start to the reader's return: the write up to its wakeup (1871 - ipi 1000 -
  // trap_exit 100 = 771), then on the reader's core idle_exit 1000 + sched_pick 100 +
  // context_restore 200, and the rest of its read: lock_acquire 20 (woken, it takes the mutex again)
  // + the pipe's lines back from the writer's core 300 + copy_setup 50 + 1 + the byte from the
  // writer's cache (cache_line_transfer 100) + trap_exit 100 = 2642 ns.
  const auto& wake = cell(report, "wakeup");
  REQUIRE(wake.simulated);
  CHECK(*wake.simulated == 2642.0);
  CHECK(check_verdict(report) ==
        "verdict: 0 of 0 round-trip cells within 20%, 0 of 0 throughput cells within 25%; mechanism order "
        "reproduced in 0 of 0 size x placement groups (pairs measured within 5% of each other are ties; with "
        "every pair: 0 of 0); context switch, memcpy and wakeups: 0 of 2 within target; 0 rows not modelled");
  // --scenarios writes each modelled cell's scenario, which `ipcsim run` runs.
  auto r = cli({"check-preset", "teaching", file, "--scenarios", (dir.path / "cells").string()});
  CHECK(r.status == kExitOk);
  CHECK(contains(r.out, "wrote 2 scenarios to " + (dir.path / "cells").string() + "\n"));
  const std::string scenario = (dir.path / "cells" / "wakeup-pipe-1-cross_core.json").string();
  CHECK(fs::exists(scenario));
  CHECK(fs::exists(dir.path / "cells" / "wakeup_call-pipe-1-cross_core.json"));
  auto run = cli({"run", scenario});
  CHECK(run.status == kExitOk);
  CHECK(contains(run.out, "result: completed, every thread exited"));
  std::ofstream(dir.path / "taken") << "a file";
  auto blocked = cli({"check-preset", "teaching", file, "--scenarios", (dir.path / "taken").string()});
  CHECK(blocked.status == kExitBadInput);
  CHECK(contains(blocked.err,
                 "error: --scenarios " + (dir.path / "taken").string() + ": cannot create the directory: "));
}

TEST_CASE("check-preset: the wakeup ladder, each idle time simulated with the preset's idle states") {
  TempDir dir("check_ladder");
  const std::string file = (dir.path / "ladder.csv").string();
  std::ofstream(file) << "# hostbench 1\n" + kHeader +
                             "wakeup,pipe,1,cross_core,100,1,2642.0,9000.0,1000.0,\n"
                             "# wakeup_after_idle_ns: 200000 60000.0 55000.0 70000.0 50\n"
                             "# wakeup_after_idle_ns: 20000 2700.0 2600.0 2800.0 200\n"
                             "# wakeup_after_idle_ns: 50000 3000.0 2900.0 3300.0 200\n";
  const HostbenchFile hb = read_hostbench(file);
  REQUIRE(hb.wakeup_ladder.size() == 3); // sorted by idle time
  CHECK(hb.wakeup_ladder[0].idle_ns == 20000);
  CHECK(hb.wakeup_ladder[0].line == 5);
  CHECK(hb.wakeup_ladder[2].idle_ns == 200000);
  CHECK(hb.wakeup_ladder[2].median_ns == 60000.0);
  CHECK(hb.wakeup_ladder[2].p10_ns == 55000.0);
  CHECK(hb.wakeup_ladder[2].p90_ns == 70000.0);
  CHECK(hb.wakeup_ladder[2].trials == 50);
  // teaching (1 GHz) with a deeper state from 100 us idle that takes 50 us to leave: the reader's
  // path is the wakeup cell's 2642 ns less teaching's idle_exit 1000 (the test above), so 2642 ns
  // after 20 and 50 us idle and 1642 + 50000 = 51642 ns after 200 us.
  const json costs = {
      {"preset", "teaching"},
      {"idle_states",
       json::array({{{"name", "deep"}, {"target_residency", 100000}, {"exit_latency", 50000}}})}};
  CheckReport report = check_costs(costs, "teaching with a deep state", hb);
  REQUIRE(report.ladder.size() == 3);
  REQUIRE(report.ladder[0].simulated);
  REQUIRE(report.ladder[1].simulated);
  REQUIRE(report.ladder[2].simulated);
  CHECK(*report.ladder[0].simulated == 2642.0);
  CHECK(*report.ladder[1].simulated == 2642.0);
  CHECK(*report.ladder[2].simulated == 51642.0);
  CHECK(report.ladder[1].error_pct == doctest::Approx((2642.0 - 3000) / 3000 * 100));
  CHECK(report.ladder[1].within);
  CHECK(report.ladder[2].within); // 51642 against 60000: -13.9%
  std::ostringstream out;
  print_check_report(out, report);
  CHECK(contains(out.str(),
                 "waking a reader on an idle core after each idle time, from the write to its return "
                 "(measured | simulated):\n"
                 "  after 20 us        2.700 us |    2.642 us    -2.1%  yes (20%)\n"
                 "  after 50 us        3.000 us |    2.642 us   -11.9%  yes (20%)\n"
                 "  after 200 us      60.000 us |   51.642 us   -13.9%  yes (20%)\n"));
  CHECK(contains(check_verdict(report), "; context switch, memcpy and wakeups: 1 of 1 within target; wakeups "
                                        "after 3 idle times (20 us to 200 us): 3 of 3 within 20%; 0 rows"));
  // Without the deep state every rung leaves idle in idle_exit: the 200 us rung is 96% too fast.
  CheckReport flat = check_preset("teaching", hb);
  REQUIRE(flat.ladder.size() == 3);
  REQUIRE(flat.ladder[2].simulated);
  CHECK(*flat.ladder[2].simulated == 2642.0);
  CHECK(contains(check_verdict(flat), "wakeups after 3 idle times (20 us to 200 us): 2 of 3 within 20%"));
  // --out: one row a rung, the idle time in the kind; --scenarios: one scenario a rung, which runs.
  const std::string csv = (dir.path / "out.csv").string();
  auto r =
      cli({"check-preset", "teaching", file, "--out", csv, "--scenarios", (dir.path / "cells").string()});
  CHECK(r.status == kExitOk);
  CHECK(contains(slurp(csv),
                 "\nwakeup_after_200000ns,pipe,1,cross_core,ns,60000.000,2642.000,-95.60,20,no,\n"));
  CHECK(contains(r.out, "wrote 4 scenarios to "));
  const std::string rung = (dir.path / "cells" / "wakeup-after-200000ns.json").string();
  REQUIRE(fs::exists(rung));
  CHECK(contains(slurp(rung), "for 200000ns, as tools/hostbench times its wakeup cells"));
  auto run = cli({"run", rung});
  CHECK(run.status == kExitOk);
  // A file without a ladder keeps its verdict as it was (no ladder clause).
  CHECK(!contains(check_verdict(check_preset("teaching", read_hostbench(kFixture))), "idle times"));
}

TEST_CASE("check-preset: each side's call in a one-core stream, on the teaching preset, worked out by hand") {
  TempDir dir("check_calls");
  const std::string file = (dir.path / "calls.csv").string();
  std::ofstream(file) << "# hostbench 1\n" + kHeader +
                             "send_call,pipe,8,same_core,10,1000,150.0,200.0,100.0,\n"
                             "recv_call,sysv_msg,8,same_core,10,1000,200.0,300.0,100.0,\n";
  auto report = check_preset("teaching", read_hostbench(file));
  // teaching, 1 GHz; the median call is one that neither waits nor wakes. A pipe write of 8 B into
  // a pipe that holds data (the bytes merge into its last page: no page_alloc): trap_enter 100 +
  // syscall_dispatch 50 + fd_lookup 20 + security_hook 10 + lock_acquire 20 + copy_setup 50 + 8 B at
  // 8 B/cycle 1 + trap_exit 100 = 351 ns.
  const auto& send = cell(report, "send_call");
  REQUIRE(send.simulated);
  CHECK(*send.simulated == 351.0);
  // msgrcv of 8 B from a queue that holds it: trap_enter 100 + syscall_dispatch 50 + ipc_id_lookup 50
  // + lock_acquire 20 + permission_check 20 + security_hook 10 (ipcperms' security_ipc_permission) +
  // security_hook 10 (find_msg's security_msg_queue_msgrcv) + list_op 10 (unlinking it) + copy_setup
  // 50 + 1 + security_hook 10 (free_msg's security_msg_msg_free) + trap_exit 100 = 431 ns.
  const auto& recv = cell(report, "recv_call");
  REQUIRE(recv.simulated);
  CHECK(*recv.simulated == 431.0);
  CHECK(contains(check_verdict(report), "; each side's call in a one-core stream: 0 of 2 within 20%;"));
}

TEST_CASE("check-preset: the command prints the table and verdict and writes --out") {
  fs::path dir = fs::temp_directory_path() / ("ipcsim_test_check_preset_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  auto r = cli({"check-preset", "teaching", kFixture, "--out", (dir / "check.csv").string()});
  CHECK(r.status == kExitOk);
  CHECK(r.err.empty());
  CHECK(r.out.find(
            "roundtrip      pipe                8  same_core        5.000 us      4.364 us   -12.7%  yes "
            "(20%)\n") != std::string::npos);
  CHECK(r.out.find("\nverdict: 1 of 1 round-trip cells within 20%") != std::string::npos);
  std::ifstream f(dir / "check.csv");
  std::stringstream csv;
  csv << f.rdbuf();
  CHECK(csv.str() ==
        "kind,mechanism,bytes,placement,unit,measured,simulated,error_pct,target_pct,within,not_modelled\n"
        "roundtrip,pipe,8,same_core,ns,5000.000,4364.000,-12.72,20,yes,\n"
        "memcpy,memcpy,4096,same_core,MB/s,6400.000,8000.000,25.00,25,yes,\n"
        "null_syscall,getppid,0,same_core,ns,90.000,,,,,no scenario op is a system call that does nothing "
        "(getppid); the preset's trap_enter and trap_exit are its cost\n");
  auto unwritable =
      cli({"check-preset", "teaching", kFixture, "--out", (dir / "no" / "such" / "x.csv").string()});
  CHECK(unwritable.status == kExitBadInput);
  CHECK(unwritable.err == "error: --out " + (dir / "no" / "such" / "x.csv").string() +
                              ": cannot write: No such file or directory\n");
  // --tie: the order check's margin, a percentage.
  auto wide = cli({"check-preset", "teaching", kFixture, "--tie", "12"});
  CHECK(wide.status == kExitOk);
  CHECK(contains(wide.out, "(pairs measured within 12% of each other are ties; with every pair: 0 of 0)"));
  auto negative = cli({"check-preset", "teaching", kFixture, "--tie", "-1"});
  CHECK(negative.status == kExitBadInput);
  CHECK(contains(negative.err, "error: --tie: Value -1 not in range 0.000000 to 1000.000000\n"));
  std::error_code ec;
  fs::remove_all(dir, ec);
}

TEST_CASE(
    "check-preset --scheduler: every cell runs under the policy given, named in the report and scenarios") {
  TempDir dir("check_scheduler");
  // fifo never preempts either: the pipe round trip worked out above, 4364 ns.
  auto fifo = cli({"check-preset", "teaching", kFixture, "--scheduler", "fifo"});
  CHECK(fifo.status == kExitOk);
  CHECK(contains(fifo.out, "every cell simulated under the fifo scheduler (--scheduler); calibrate fits a "
                           "preset under rr\n"));
  CHECK(contains(fifo.out, "5.000 us      4.364 us   -12.7%"));
  // eevdf: the side that writes a request (or reply) wakes its peer, which slept owed service and
  // preempts the writer as it returns; the writer's read then finds the answer waiting. A round trip
  // saves that read's wait-queue entry (waitqueue_op 20), its wakeup by the peer's write
  // (wakeup 100) and the lock taken again when woken (lock_acquire 20): 4364 - 140 = 4224 ns.
  auto eevdf =
      cli({"check-preset", "teaching", kFixture, "--scheduler", "eevdf", "--scenarios", dir.path.string()});
  CHECK(eevdf.status == kExitOk);
  CHECK(contains(eevdf.out, "5.000 us      4.224 us   -15.5%"));
  const std::string scenario = slurp((dir.path / "roundtrip-pipe-8-same_core.json").string());
  CHECK(contains(scenario, "\"scheduler\": {\n   \"policy\": \"eevdf\"\n  }"));
  CHECK(contains(scenario, "timed as tools/hostbench times them; under the eevdf scheduler\""));
  // Without the option the report says nothing of it and the scenarios leave the machine's default.
  auto plain = cli({"check-preset", "teaching", kFixture});
  CHECK(!contains(plain.out, "scheduler"));
  auto empty = cli({"check-preset", "teaching", kFixture, "--scheduler", ""});
  CHECK(empty.status == kExitBadInput);
  CHECK(empty.err == "error: check-preset --scheduler: an empty policy; accepted: fifo, rr, priority, mlfq, "
                     "eevdf\n");
  auto unknown = cli({"check-preset", "teaching", kFixture, "--scheduler", "eevdff"});
  CHECK(unknown.status == kExitBadInput);
  CHECK(unknown.err == "error: check-preset --scheduler: unknown scheduler policy \"eevdff\" (did you mean "
                       "\"eevdf\"?); accepted: fifo, rr, priority, mlfq, eevdf\n");
}

TEST_CASE(
    "check-preset: a stream's context switches per message, the host's note beside the simulated run's") {
  // hostbench's note: each side's voluntary and involuntary switches per message (writer, reader).
  const std::string text = "# hostbench 1\n"
                           "# switches_per_message: stream,pipe,8,same_core 0.0010 0.0200 0.0200 0.0010\n"
                           "# switches_per_message: stream,pipe,65536,same_core 1.0 0.0 1.0 0.0\n"
                           "# switches_per_message: stream,pipe,64,same_core 0.5 0 0.5 0\n" +
                           kHeader +
                           "stream,pipe,8,same_core,10,1000,400.0,500.0,300.0,20000000.0\n"
                           "stream,pipe,64,same_core,10,1000,400.0,500.0,300.0,160000000.0\n"
                           "stream,pipe,65536,same_core,10,100,40000.0,50000.0,30000.0,1638400000.0\n"
                           "roundtrip,pipe,8,same_core,100,1,5000.0,6000.0,4000.0,\n";
  auto report = check_preset("teaching", parse_hostbench(text, "x.csv"));
  auto stream_of = [&](std::uint64_t bytes) -> const CheckedCell& {
    for (const auto& c : report.cells)
      if (c.row.kind == "stream" && c.row.bytes == bytes) return c;
    throw std::runtime_error("no stream cell");
  };
  // 8 B: the pipe holds a trial's 1,000 messages, so each side runs a trial through: the producer
  // blocks on the control pipe, the consumer on the empty pipe. 10 dispatches in the 4 trials of
  // 1,000 (warm-up included): the producer's first, then one at each of the 9 blocks and exits.
  REQUIRE(stream_of(8).host_switches);
  CHECK(*stream_of(8).host_switches == doctest::Approx(0.042));
  REQUIRE(stream_of(8).simulated_switches);
  CHECK(*stream_of(8).simulated_switches == 10.0 / 4000);
  // 64 KiB: each message fills the pipe, so the producer blocks at every next write and the
  // consumer at every empty pipe: two switches a message, and the first two dispatches.
  CHECK(*stream_of(65536).simulated_switches == 802.0 / 400);
  CHECK(*stream_of(64).host_switches == 1.0);
  // A note that is not a stream cell's name and four numbers 0 or more is refused with its line.
  auto note_error = [](const std::string& note) {
    return parse_error("# hostbench 1\n# switches_per_message: " + note + "\n" + kHeader +
                       "stream,pipe,8,same_core,10,1000,400.0,500.0,300.0,20000000.0\n");
  };
  const std::string expected = "x.csv:2: switches_per_message: expected a stream cell's name "
                               "(stream,MECHANISM,BYTES,PLACEMENT) and four numbers (the writer's voluntary "
                               "and involuntary switches per message, then the reader's), found '";
  CHECK(note_error("stream,pipe,8,same_core 0.5 0.5") == expected + "stream,pipe,8,same_core 0.5 0.5'");
  CHECK(note_error("roundtrip,pipe,8,same_core 1 1 1 1") == expected + "roundtrip,pipe,8,same_core 1 1 1 1'");
  CHECK(note_error("stream,pipe,8,same_core 1 1 1 x") ==
        "x.csv:2: field switches_per_message 4: 'x' is not a number");
  CHECK(note_error("stream,pipe,8,same_core 1 -1 1 1") ==
        "x.csv:2: field switches_per_message 2: -1 must be 0 or more");
  CHECK(note_error("stream,pipe,8,same_core 1e308 1e308 1e308 1e308") ==
        "x.csv:2: switches_per_message: the four numbers add up past any count of switches");
  CHECK(parse_error("# hostbench 1\n# switches_per_message: stream,pipe,8,same_core 1 1 1 1\n"
                    "# switches_per_message: stream,pipe,8,same_core 1 1 1 1\n" +
                    kHeader) == "x.csv:3: switches_per_message: a second note for stream,pipe,8,same_core");
  std::ostringstream out;
  print_check_report(out, report);
  CHECK(contains(out.str(),
                 "context switches per message in the streams, both sides (measured | simulated):\n"
                 "  stream pipe 8 B same_core: 0.04 | 0.00\n"
                 "  stream pipe 64 B same_core: 1.00 | 0.00\n"
                 "  stream pipe 65536 B same_core: 2.00 | 2.00\n"));
  // Without notes, no such section (the files measured before hostbench wrote them).
  std::ostringstream plain;
  print_check_report(plain, check_preset("teaching", read_hostbench(kFixture)));
  CHECK(!contains(plain.str(), "context switches per message"));
}

TEST_CASE("check-preset: a file whose cross-core CPUs share a core says so above the table") {
  const std::string row = "roundtrip,pipe,8,same_core,100,1,5000.0,6000.0,4900.0,\n";
  auto report_for = [&](const std::string& line) {
    HostbenchFile file = parse_hostbench("# hostbench 1\n" + line + kHeader + row, "x.csv");
    CheckReport report = check_preset("teaching", file);
    std::ostringstream out;
    print_check_report(out, report);
    return std::pair{report.siblings_ratio, out.str()};
  };
  const std::string said = "the cross-core cells ran on two CPUs of one core";
  // hostbench-probe siblings on an SMT pair gives about 0.6; the AMD EPYC guest's separate cores 1.00.
  auto [shared_ratio, shared] =
      report_for("# cross_core_siblings: 0.61 (64 KiB copies on CPU 0 ran at 0.61 of their rate alone while "
                 "CPU 1 copied too: they share a core (SMT siblings, or one host core under two vCPUs))\n");
  REQUIRE(shared_ratio);
  CHECK(*shared_ratio == doctest::Approx(0.61));
  CHECK(contains(shared, said + " (hostbench's cross_core_siblings 0.61): each side slowed the other down, "
                                "which the simulated machine's cores never do\n"));
  auto [apart_ratio, apart] = report_for("# cross_core_siblings: 0.99 (...: separate cores)\n");
  CHECK(apart_ratio == std::optional<double>(0.99));
  CHECK(!contains(apart, said));
  // Files from before the key, and a run that could not tell, print nothing about it.
  CHECK(!report_for("").first);
  auto [unknown_ratio, unknown] =
      report_for("# cross_core_siblings: unknown (the two CPUs could not both be used)\n");
  CHECK(!unknown_ratio);
  CHECK(!contains(unknown, said));
  // A value hostbench does not write says nothing either.
  for (const char* bad : {"0.5x", "-1", "nan", "inf", "", "0.5,0.6"})
    CHECK(!report_for("# cross_core_siblings: " + std::string(bad) + "\n").first);
}

TEST_CASE("check-preset: the mechanism order counts only pairs simulated apart the same way round") {
  // Round trips: shorter is faster. Measured pipe < posix_mq < sysv_msg.
  std::vector<CheckedCell> same = {synthetic("roundtrip", "sysv_msg", 3000, 4200),
                                   synthetic("roundtrip", "pipe", 1000, 4000),
                                   synthetic("roundtrip", "posix_mq", 2000, 4100)};
  auto orders = order_checks(same);
  REQUIRE(orders.size() == 1);
  CHECK(orders[0].measured == std::vector<std::string>{"pipe", "posix_mq", "sysv_msg"});
  CHECK(orders[0].simulated == std::vector<std::string>{"pipe", "posix_mq", "sysv_msg"});
  CHECK(orders[0].reproduced);
  // A tie in the model does not reproduce an order the host shows.
  std::vector<CheckedCell> tie = {synthetic("roundtrip", "pipe", 1000, 4044),
                                  synthetic("roundtrip", "sysv_msg", 2000, 4044)};
  CHECK(!order_checks(tie)[0].reproduced);
  // Streams: a higher throughput is faster.
  std::vector<CheckedCell> stream = {synthetic("stream", "pipe", 100, 50),
                                     synthetic("stream", "unix_stream", 200, 40)};
  auto s = order_checks(stream);
  CHECK(s[0].measured == std::vector<std::string>{"unix_stream", "pipe"});
  CHECK(s[0].simulated == std::vector<std::string>{"pipe", "unix_stream"});
  CHECK(!s[0].reproduced);
  // Pairs the host measured within the tie margin (5%) are ties: either simulated order passes, but
  // the group is not reproduced "with every pair".
  std::vector<CheckedCell> close = {synthetic("roundtrip", "pipe", 1000, 2100),
                                    synthetic("roundtrip", "posix_mq", 1040, 2000)};
  auto c = order_checks(close);
  CHECK(c[0].reproduced);
  CHECK(!c[0].strict);
  CHECK(c[0].misordered.empty());
  // Beyond it they must come out the same way round; the report names the pair and the distance.
  std::vector<CheckedCell> apart = {synthetic("roundtrip", "pipe", 1000, 2100),
                                    synthetic("roundtrip", "posix_mq", 1100, 2000)};
  auto a = order_checks(apart);
  CHECK(!a[0].reproduced);
  CHECK(a[0].misordered == std::vector<std::string>{"pipe before posix_mq (measured 10.0% apart)"});
  // A wider margin makes that a tie too.
  CHECK(order_checks(apart, 15)[0].reproduced);
  // One mechanism alone has no order; other kinds are not ranked.
  CHECK(order_checks({synthetic("roundtrip", "pipe", 1, 1)}).empty());
  CHECK(order_checks({synthetic("memcpy", "memcpy", 1, 1), synthetic("memcpy", "memcpy", 2, 2)}).empty());
}

TEST_CASE("check-preset: bad files name the file, the line and what is accepted") {
  CHECK(parse_error("") == "x.csv: empty file; expected a hostbench file (docs/hostbench.md)");
  CHECK(parse_error("kind,mechanism\n") ==
        "x.csv:1: not a hostbench file: the first line must be '# hostbench 1' (docs/hostbench.md)");
  CHECK(parse_error("# hostbench 2\n") ==
        "x.csv:1: hostbench format version '2'; this ipcsim reads version 1");
  CHECK(parse_error("# hostbench 1\n# date: now\n") ==
        "x.csv: no header line 'kind,mechanism,bytes,placement,trials,ops_per_trial,median_ns,p99_ns,min_ns,"
        "bytes_per_s'");
  CHECK(parse_error("# hostbench 1\nkind,mechanism,size\n") ==
        "x.csv:2: expected the header line "
        "'kind,mechanism,bytes,placement,trials,ops_per_trial,median_ns,p99_ns,"
        "min_ns,bytes_per_s'");
  CHECK(parse_error("# hostbench 1\n" + kHeader) == "x.csv: no measurement rows after the header");
  CHECK(parse_error(one_row("roundtrip,pipe,8")) ==
        "x.csv:3: expected 10 comma-separated fields (kind,mechanism,bytes,placement,trials,ops_per_trial,"
        "median_ns,p99_ns,min_ns,bytes_per_s), found 3");
  CHECK(parse_error(one_row("pingpong,pipe,8,same_core,1,1,1,1,1,")) ==
        "x.csv:3: unknown kind 'pingpong'; accepted: roundtrip, stream, send_call, recv_call, wakeup, "
        "wakeup_call, null_syscall, context_switch, lone_yield, memcpy");
  CHECK(parse_error(one_row("send_call,pipe,8,cross_core,1,1,1,1,1,")) ==
        "x.csv:3: a send_call row times one side of a stream on one core: its placement must be same_core, "
        "not cross_core");
  CHECK(parse_error(one_row("recv_call,shm_spin,8,same_core,1,1,1,1,1,")) ==
        "x.csv:3: unknown mechanism 'shm_spin' for kind recv_call; accepted: pipe, sysv_msg, posix_mq, "
        "unix_stream, unix_dgram");
  CHECK(parse_error(one_row("send_call,pipe,0,same_core,1,1,1,1,1,")) ==
        "x.csv:3: field bytes: must be at least 1");
  CHECK(parse_error(one_row("wakeup,pipe,1,same_core,1,1,1,1,1,")) ==
        "x.csv:3: a wakeup row wakes another core: its placement must be cross_core, not same_core");
  // The one-CPU measurements: no placement but same_core, no bytes where there is no message.
  CHECK(parse_error(one_row("context_switch,sched_yield,0,cross_core,1,1,1,1,1,")) ==
        "x.csv:3: a context_switch row is measured on one CPU: its placement must be same_core, not "
        "cross_core");
  CHECK(parse_error(one_row("memcpy,memcpy,4096,cross_core,1,1,1,1,1,1")) ==
        "x.csv:3: a memcpy row is measured on one CPU: its placement must be same_core, not cross_core");
  CHECK(parse_error(one_row("lone_yield,sched_yield,5,same_core,1,1,1,1,1,")) ==
        "x.csv:3: field bytes: a lone_yield row moves no message: its bytes must be 0, not 5");
  CHECK(parse_error(one_row("null_syscall,getppid,8,same_core,1,1,1,1,1,")) ==
        "x.csv:3: field bytes: a null_syscall row moves no message: its bytes must be 0, not 8");
  CHECK(parse_error(one_row("wakeup_call,futex,1,cross_core,1,1,1,1,1,")) ==
        "x.csv:3: unknown mechanism 'futex' for kind wakeup_call; accepted: pipe");
  CHECK(parse_error(one_row("wakeup,pipe,0,cross_core,1,1,1,1,1,")) ==
        "x.csv:3: field bytes: must be at least 1");
  CHECK(parse_error(one_row("roundtrip,carrier_pigeon,8,same_core,1,1,1,1,1,")) ==
        "x.csv:3: unknown mechanism 'carrier_pigeon' for kind roundtrip; accepted: pipe, sysv_msg, posix_mq, "
        "unix_stream, unix_dgram, shm_spin, shm_yield, shm_futex");
  CHECK(parse_error(one_row("memcpy,pipe,4096,same_core,1,1,1,1,1,1")) ==
        "x.csv:3: unknown mechanism 'pipe' for kind memcpy; accepted: memcpy");
  CHECK(parse_error(one_row("roundtrip,pipe,8,next_door,1,1,1,1,1,")) ==
        "x.csv:3: unknown placement 'next_door'; accepted: same_core, cross_core");
  CHECK(parse_error(one_row("roundtrip,pipe,eight,same_core,1,1,1,1,1,")) ==
        "x.csv:3: field bytes: 'eight' is not a whole number");
  CHECK(parse_error(one_row("roundtrip,pipe,0,same_core,1,1,1,1,1,")) ==
        "x.csv:3: field bytes: must be at least 1");
  CHECK(
      parse_error(one_row("roundtrip,pipe,16777217,same_core,1,1,1,1,1,")) ==
      "x.csv:3: field bytes: 16777217 is above 16 MiB, the largest roundtrip this check simulates (hostbench "
      "measures up to 1 MiB)");
  CHECK(
      parse_error(one_row("memcpy,memcpy,268435457,same_core,1,1,1,1,1,1")) ==
      "x.csv:3: field bytes: 268435457 is above 256 MiB, the largest memcpy this check simulates (hostbench "
      "measures up to 64 MiB)");
  CHECK(parse_error(one_row("roundtrip,pipe,8,same_core,0,1,1,1,1,")) ==
        "x.csv:3: field trials: must be at least 1");
  CHECK(parse_error(one_row("roundtrip,pipe,8,same_core,1,1,fast,1,1,")) ==
        "x.csv:3: field median_ns: 'fast' is not a number");
  CHECK(parse_error(one_row("roundtrip,pipe,8,same_core,1,1,0,1,1,")) ==
        "x.csv:3: field median_ns: 0 must be above 0");
  CHECK(parse_error(one_row("roundtrip,pipe,8,same_core,1,1,1e999,1,1,")) ==
        "x.csv:3: field median_ns: '1e999' is not a number");
  CHECK(parse_error(one_row("stream,pipe,8,same_core,1,1,1,1,1,")) ==
        "x.csv:3: field bytes_per_s: a stream row needs its throughput (bytes * 1e9 / median_ns)");
  CHECK(parse_error("# hostbench 1\n" + kHeader + "roundtrip,pipe,8,same_core,1,1,1,1,1,\n\n" +
                    "roundtrip,pipe,8,same_core,2,1,1,1,1,\n") ==
        "x.csv:5: cell roundtrip,pipe,8,same_core appears twice (first on line 3)");
  // The wakeup ladder's notes: five fields, an idle time from 1 ns to 10 s, quantiles in order, once each.
  auto ladder = [](const std::string& note) {
    return parse_error("# hostbench 1\n" + kHeader + "wakeup,pipe,1,cross_core,1,1,1,1,1,\n" +
                       "# wakeup_after_idle_ns: " + note + "\n");
  };
  CHECK(ladder("20000 9000 8000 10000 100") == "<no error>");
  CHECK(
      ladder("20000 9000 8000 10000") ==
      "x.csv:4: wakeup_after_idle_ns: expected five or six fields (the idle time in ns, the median, 10th and "
      "90th percentiles of the wakeup in ns, the trials, and the median write() in ns), found '20000 9000 "
      "8000 10000'");
  CHECK(ladder("20000 9000 8000 10000 100 6000") == "<no error>");
  CHECK(ladder("20000 9000 8000 10000 100 0") ==
        "x.csv:4: field wakeup_after_idle_ns write() median: 0 must be above 0");
  CHECK(
      ladder("20000 9000 8000 10000 100 6000 7") ==
      "x.csv:4: wakeup_after_idle_ns: expected five or six fields (the idle time in ns, the median, 10th and "
      "90th percentiles of the wakeup in ns, the trials, and the median write() in ns), found '20000 9000 "
      "8000 10000 100 6000 7'");
  CHECK(ladder("0 9000 8000 10000 100") ==
        "x.csv:4: field wakeup_after_idle_ns idle time: must be at least 1");
  CHECK(ladder("2e4 9000 8000 10000 100") ==
        "x.csv:4: field wakeup_after_idle_ns idle time: '2e4' is not a whole number");
  CHECK(ladder("10000000001 9000 8000 10000 100") ==
        "x.csv:4: wakeup_after_idle_ns: an idle time of 10000000001 ns is above the largest accepted, "
        "10000000000 (10 s)");
  CHECK(ladder("20000 fast 8000 10000 100") ==
        "x.csv:4: field wakeup_after_idle_ns median: 'fast' is not a number");
  CHECK(ladder("20000 9000 0 10000 100") ==
        "x.csv:4: field wakeup_after_idle_ns 10th percentile: 0 must be above 0");
  CHECK(ladder("20000 9000 8000 10000 0") ==
        "x.csv:4: field wakeup_after_idle_ns trials: must be at least 1");
  CHECK(ladder("20000 9000 9500 10000 100") ==
        "x.csv:4: wakeup_after_idle_ns: the 10th percentile, the median and the 90th percentile must not "
        "decrease, found 9500, 9000, 10000");
  std::string many = "# hostbench 1\n" + kHeader + "wakeup,pipe,1,cross_core,1,1,1,1,1,\n";
  for (int i = 1; i <= 65; ++i) many += "# wakeup_after_idle_ns: " + std::to_string(i * 1000) + " 9 8 10 1\n";
  CHECK(parse_error(many) == "x.csv:68: wakeup_after_idle_ns: more than 64 rungs (hostbench writes 15)");
  CHECK(parse_error(
            "# hostbench 1\n" + kHeader + "wakeup,pipe,1,cross_core,1,1,1,1,1,\n" +
            "# wakeup_after_idle_ns: 20000 9000 8000 10000 100\n# wakeup_after_idle_ns: 20000 1 1 1 1\n") ==
        "x.csv:5: wakeup_after_idle_ns: a second note for 20000 ns (first on line 4)");
  // Comment lines anywhere, CRLF line ends and empty lines are accepted.
  CHECK(parse_error("# hostbench 1\r\n# a: b\r\n" + std::string("kind,mechanism,bytes,placement,trials,") +
                    "ops_per_trial,median_ns,p99_ns,min_ns,bytes_per_s\r\n\r\n# skip: x\r\n" +
                    "null_syscall,getppid,0,same_core,1,1,1,1,1,\r\n") == "<no error>");
}

TEST_CASE("check-preset: a missing file, an unknown preset and missing arguments") {
  auto missing = cli({"check-preset", "teaching", "/no/such/hostbench.csv"});
  CHECK(missing.status == kExitBadInput);
  CHECK(missing.err ==
        "error: /no/such/hostbench.csv: cannot open the hostbench file: No such file or directory\n");
  // A device is never read (it could go on for ever), nor a directory.
  auto device = cli({"check-preset", "teaching", "/dev/zero"});
  CHECK(device.status == kExitBadInput);
  CHECK(device.err == "error: /dev/zero: is not a regular file (a device, FIFO or socket); a hostbench file "
                      "must be an ordinary .csv file\n");
  auto directory = cli({"check-preset", "teaching", "/tmp"});
  CHECK(directory.err == "error: /tmp: is a directory, not a hostbench file (give a .csv file)\n");
  auto preset = cli({"check-preset", "no-such-preset", kFixture});
  CHECK(preset.status == kExitBadInput);
  // The built-in presets are listed between the parentheses (the list may grow: two are checked).
  CHECK(preset.err.rfind("error: check-preset: preset 'no-such-preset' is neither a built-in preset (", 0) ==
        0);
  CHECK(preset.err.find("linux-x86") != std::string::npos);
  CHECK(preset.err.find("teaching") != std::string::npos);
  CHECK(preset.err.ends_with(") nor a preset file\n"));
  // A preset file that does not load is reported once, with its own message.
  fs::path bad =
      fs::temp_directory_path() / ("ipcsim_test_bad_preset_" + std::to_string(::getpid()) + ".json");
  std::ofstream(bad) << "{ not json";
  auto file = cli({"check-preset", bad.string(), kFixture});
  CHECK(file.status == kExitBadInput);
  CHECK(file.err.rfind("error: check-preset: at machine.costs.preset: preset file \"" + bad.string() +
                           "\" is not valid JSON: ",
                       0) == 0);
  fs::remove(bad);
  auto none = cli({"check-preset", "teaching"});
  CHECK(none.status == kExitBadInput);
  CHECK(none.err.find("hostbench is required") != std::string::npos);
}
