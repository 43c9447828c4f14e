// `ipcsim calibrate` (docs/calibrate.md): the direct fits worked out by hand on a fixture written
// for them, the kernel-path fit's properties, determinism, and every message for bad input.
#include "calibrate.hpp"
#include "check_preset.hpp"
#include "cli.hpp"
#include "error.hpp"

#include "cli_harness.hpp"

#include <cmath>
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

const std::string kFixture = std::string(IPCSIM_SOURCE_DIR) + "/tests/fixtures/hostbench-calibrate.csv";
const std::string kHeader =
    "kind,mechanism,bytes,placement,trials,ops_per_trial,median_ns,p99_ns,min_ns,bytes_per_s\n";

// The fixture calibrated once on teaching (1 GHz: a nanosecond is a cycle), shared by the tests.
const Calibration& fixture_on_teaching() {
  static const Calibration c = calibrate(read_hostbench(kFixture), "teaching");
  return c;
}

const json& primitive(const Calibration& c, const std::string& name) {
  return c.preset.at("primitives").at(name);
}

double value(const Calibration& c, const std::string& name) {
  return primitive(c, name).at("value").get<double>();
}

std::string source(const Calibration& c, const std::string& name) {
  return primitive(c, name).at("source").get<std::string>();
}

} // namespace

TEST_CASE("calibrate: the system call and the switch, by hand") {
  const Calibration& c = fixture_on_teaching();
  // Null system call 300 ns = 300 cycles at 1 GHz, split as teaching's 100 : 100 : 50.
  CHECK(value(c, "trap_enter") == 120);
  CHECK(value(c, "trap_exit") == 120);
  CHECK(value(c, "syscall_dispatch") == 60);
  CHECK(source(c, "trap_enter").find("null_syscall,getppid,0,same_core (hostbench-calibrate.csv line 11)") !=
        std::string::npos);
  CHECK(source(c, "trap_enter").find("measured on Hand-made CPU; cpu MHz 1000.000") != std::string::npos);
  CHECK(source(c, "trap_enter").find("Residual: 0.0 cycles") != std::string::npos);
  // A switching sched_yield 1200 ns, less the rest of its simulated path: the 300-cycle system call
  // and, teaching's TLB being untagged, 16 working-set pages x tlb_refill_per_page 20 = 320. That
  // leaves 580 cycles, split as teaching's context_save 200 : context_restore 200 : sched_pick 100 :
  // address_space_switch 500.
  CHECK(value(c, "context_save") == 116);
  CHECK(value(c, "context_restore") == 116);
  CHECK(value(c, "sched_pick") == 58);
  CHECK(value(c, "address_space_switch") == 290);
  CHECK(source(c, "context_save")
            .find("(the system call, the TLB refill of an untagged switch: 620.0 cycles)") !=
        std::string::npos);
  // The integers stay integers in the file.
  CHECK(primitive(c, "context_save").at("value").is_number_integer());
}

TEST_CASE("calibrate: sched_yield alone on its core splits sched_pick from the switch, by hand") {
  // Without a lone_yield cell the four pieces keep teaching's proportions (above). With one of 400 ns:
  // the simulated cell with sched_pick at 0 is the fitted system call, 300 cycles, so sched_pick =
  // 100; the switch's other 480 cycles go 200 : 200 : 500 to context_save, context_restore and
  // address_space_switch: 106.7, 106.7, 266.7, the two largest remainders (ties to the earlier) up.
  TempDir dir("calibrate");
  const std::string file = dir.write(
      "alone.csv", slurp(kFixture) + "lone_yield,sched_yield,0,same_core,100,1000,400.0,450.0,390.0,\n");
  Calibration c = calibrate(read_hostbench(file), "teaching");
  CHECK(value(c, "sched_pick") == 100);
  CHECK(value(c, "context_save") == 107);
  CHECK(value(c, "context_restore") == 107);
  CHECK(value(c, "address_space_switch") == 266);
  CHECK(contains(source(c, "sched_pick"), "Source: lone_yield,sched_yield,0,same_core (alone.csv line 28), "
                                          "median 400 ns per call = 400.0 cycles"));
  CHECK(contains(source(c, "sched_pick"), "less the system call as the simulator charges it (300.0 cycles), "
                                          "that leaves sched_pick = 100 cycles."));
  CHECK(contains(source(c, "context_save"), "less sched_pick (100 cycles, from lone_yield,sched_yield,0,"
                                            "same_core (alone.csv line 28)) leaves 480 cycles"));
  CHECK(contains(c.summary, "sched_yield alone 400 ns: sched_pick 100 of the switch's 580 cycles"));
  // check-preset reproduces both cells: the yield alone exactly, the switch to rounding.
  const std::string preset = dir.write("alone.json", calibration_text(c));
  CheckReport report = check_preset(preset, read_hostbench(file));
  for (const auto& cell : report.cells) {
    if (cell.row.kind == "lone_yield") {
      REQUIRE(cell.simulated);
      CHECK(*cell.simulated == doctest::Approx(400));
    }
    if (cell.row.kind == "context_switch") CHECK(*cell.simulated == doctest::Approx(1200));
  }
  // A yield measured faster than its system call holds sched_pick at 0, and says so.
  const std::string fast = dir.write(
      "fast.csv", slurp(kFixture) + "lone_yield,sched_yield,0,same_core,100,1000,250.0,260.0,240.0,\n");
  Calibration f = calibrate(read_hostbench(fast), "teaching");
  CHECK(value(f, "sched_pick") == 0);
  CHECK(contains(source(f, "sched_pick"), "The yield measured faster than its system call: held at 0."));
}

TEST_CASE("calibrate: copy rates and cache sizes from memcpy by size, by hand") {
  const Calibration& c = fixture_on_teaching();
  // The fixture's rows are the footprint model at 16, 8, 4, 1 bytes/cycle with caches of 32 KiB,
  // 1 MiB and 8 MiB: e.g. 786,432 bytes (footprint 1.5 MiB, half-way out of L2) take
  // 786432 x (1/8 + 0.5 x (1/4 - 1/8)) = 147,456 cycles; 6 MiB (footprint 12 MiB, half-way out of
  // L3) 6291456 x (1/4 + 0.5 x (1 - 1/4)) = 3,932,160. The fit finds them exactly.
  CHECK(value(c, "copy_bytes_per_cycle") == 16);
  CHECK(value(c, "copy_bytes_per_cycle_l2") == 8);
  CHECK(value(c, "copy_bytes_per_cycle_l3") == 4);
  CHECK(value(c, "copy_bytes_per_cycle_uncached") == 1);
  CHECK(value(c, "cache_l1_bytes") == 32768);
  CHECK(value(c, "cache_l2_bytes") == 1048576);
  CHECK(value(c, "cache_l3_bytes") == 8388608);
  CHECK(source(c, "copy_bytes_per_cycle").find("RMS 0.0%") != std::string::npos);
}

TEST_CASE("calibrate: kernel paths stay physical; what no cell charges keeps the base value") {
  const Calibration& c = fixture_on_teaching();
  // No cross-core ring in the fixture: the remote copy rate is the base's, and says why.
  CHECK(value(c, "copy_bytes_per_cycle_remote") == 2);
  CHECK(
      source(c, "copy_bytes_per_cycle_remote")
          .rfind("Not determined by hostbench-calibrate.csv (it has no cross-core shm_spin or shm_yield cell "
                 "longer than a cache line): the base preset teaching's value.",
                 0) == 0);
  for (const char* p : {"fd_lookup", "security_hook", "lock_acquire", "slab_alloc", "list_op", "waitqueue_op",
                        "socket_dispatch", "wakeup"}) {
    CAPTURE(p);
    CHECK(primitive(c, p).at("value").is_number_integer());
    CHECK(value(c, p) >= 0);
    CHECK(value(c, p) <= 10000); // 10 us at 1 GHz
    CHECK(source(c, p).find("Fitted by ipcsim calibrate") == 0);
  }
  // No System V cell in the fixture: the id lookup and ipcperms keep teaching's values, and say so;
  // so does tree_op, since each POSIX message is handed straight to the sleeping receiver.
  CHECK(value(c, "ipc_id_lookup") == 50);
  CHECK(value(c, "permission_check") == 20);
  CHECK(value(c, "tree_op") == 50);
  // The pipe cells' small messages never need a new page once the pipe holds two spare ones
  // (tmp_page[]), and the sockets' 8-byte sk_buffs have no fragments: page_alloc is teaching's.
  CHECK(value(c, "page_alloc") == 200);
  CHECK(source(c, "page_alloc").rfind("Not determined by hostbench-calibrate.csv", 0) == 0);
  CHECK(source(c, "tree_op").rfind("Not determined by hostbench-calibrate.csv (no fitted cell's path", 0) ==
        0);
  CHECK(source(c, "ipc_id_lookup")
            .rfind("Not determined by hostbench-calibrate.csv (no fitted cell's path "
                   "charges it): the base preset teaching's value.",
                   0) == 0);
  // Nothing in hostbench measures a page fault: teaching's value and source.
  CHECK(value(c, "page_fault") == 1000);
  CHECK(source(c, "page_fault")
            .rfind("Not determined by hostbench-calibrate.csv (no hostbench cell measures "
                   "it): the base preset teaching's value. Base preset's source: ",
                   0) == 0);
}

TEST_CASE("calibrate: the result loads, and check-preset reproduces the fitted cells") {
  TempDir dir("calibrate");
  const std::string preset = dir.write("fitted.json", calibration_text(fixture_on_teaching()));
  CheckReport report = check_preset(preset, read_hostbench(kFixture));
  for (const auto& cell : report.cells) {
    CAPTURE(cell.row.kind);
    CAPTURE(cell.row.mechanism);
    CAPTURE(cell.row.bytes);
    CAPTURE(cell.row.placement);
    if (cell.row.kind == "null_syscall") {
      CHECK(!cell.simulated);
      continue;
    }
    REQUIRE(cell.simulated);
    if (cell.row.kind == "memcpy") CHECK(std::abs(cell.error_pct) < 0.01); // the footprint model, exactly
    // The switch: its pieces add up to the measured 1200 cycles.
    if (cell.row.kind == "context_switch") CHECK(*cell.simulated == doctest::Approx(1200));
    // The one cross-core cell is the only one idle_exit is fitted to (two idle exits per round
    // trip): reproduced to within rounding.
    if (cell.row.placement == "cross_core") CHECK(std::abs(cell.error_pct) < 0.1);
  }
  CHECK(source(fixture_on_teaching(), "idle_exit")
            .find("Source: the 1 cross-core round trips and wakeups of hostbench-calibrate.csv that leave a "
                  "core idle "
                  "(2.0 idle "
                  "exits per round trip on average)") != std::string::npos);
  // The preset says where it came from, and what check-preset made of it.
  const json& cal = fixture_on_teaching().preset.at("calibration");
  CHECK(cal.at("hostbench_file") == "hostbench-calibrate.csv");
  CHECK(cal.at("base") == "teaching");
  CHECK(cal.at("machine").at("cpu_model") == "Hand-made CPU");
  CHECK(cal.at("check").get<std::string>() == check_verdict(report));
}

TEST_CASE("calibrate: the machine a value names says whether the cross-core CPUs share a core") {
  // hostbench's sibling test (tools/hostbench/siblings.hpp) on the line after the hypervisor's.
  TempDir dir("calibrate");
  std::string text = slurp(kFixture);
  const std::string after = "# hypervisor: none\n";
  text.insert(
      text.find(after) + after.size(),
      "# cross_core_siblings: 0.98 (64 KiB copies on CPU 0 ran at 0.98 of their rate alone while CPU 1 "
      "copied too: separate cores)\n");
  Calibration c = calibrate(read_hostbench(dir.write("siblings.csv", text)), "teaching");
  CHECK(contains(
      source(c, "trap_enter"),
      "; the two CPUs of the cross-core cells beside each other: 0.98 (64 KiB copies on CPU 0 ran at "
      "0.98 of their rate alone while CPU 1 copied too: separate cores); "));
}

TEST_CASE("calibrate: a cache-line transfer from the cross-core spinning ring's one-line round trips") {
  // The fixture has no such cell: the base's value, and why.
  CHECK(value(fixture_on_teaching(), "cache_line_transfer") == 100);
  CHECK(
      source(fixture_on_teaching(), "cache_line_transfer")
          .rfind("Not determined by hostbench-calibrate.csv (it has no cross-core shm_spin round trip of 64 "
                 "bytes or less): the base preset teaching's value.",
                 0) == 0);
  CHECK(contains(fixture_on_teaching().summary,
                 "cache-line transfers: no cell measures them, the base preset's value"));
  // Two cores spinning on a ring pass a one-line message back and forth. On the fixture's preset the
  // round trip is cache-line transfers and a few cycles of copying: 300 cycles more for 50 more per
  // line, so six lines move per round trip (the message and its sequence word, each way).
  TempDir dir("calibrate");
  const std::string fitted = dir.write("fitted.json", calibration_text(fixture_on_teaching()));
  HostbenchRow row{"roundtrip", "shm_spin", 8, "cross_core", 10, 1, 0, 0, 0, {}, 0};
  auto simulated = [&](int transfer) {
    std::string why;
    auto t = simulate_cell(row, json{{"preset", fitted}, {"cache_line_transfer", transfer}}, why);
    REQUIRE_MESSAGE(t, why);
    return *t;
  };
  const double at_400 = simulated(400);
  CHECK(at_400 - simulated(350) == 300);
  MESSAGE("one-line spinning round trip at 400 cycles per line: " << at_400 << " ns = 6 x 400 + "
                                                                  << at_400 - 2400 << " (analytic: 6 lines)");
  // A host measuring that round trip (at 8 and 64 bytes) gets 400 cycles back, exactly: the fit is a
  // least squares in the one unknown, by secant steps on the simulated cells.
  std::string text = slurp(kFixture);
  row.bytes = 64;
  const double at_400_64 = simulated(400);
  text += "roundtrip,shm_spin,8,cross_core,10,1," + std::to_string(at_400) + "," + std::to_string(at_400) +
          "," + std::to_string(at_400) + ",\n" + "roundtrip,shm_spin,64,cross_core,10,1," +
          std::to_string(at_400_64) + "," + std::to_string(at_400_64) + "," + std::to_string(at_400_64) +
          ",\n";
  const std::string file = dir.write("transfer.csv", text);
  Calibration c = calibrate(read_hostbench(file), "teaching");
  CHECK(value(c, "cache_line_transfer") == 400);
  CHECK(primitive(c, "cache_line_transfer").at("value").is_number_integer());
  CHECK(contains(
      source(c, "cache_line_transfer"),
      "Source: the 2 cross-core shm_spin round trips of transfer.csv with messages of one cache line "
      "(lines 28, 29)"));
  CHECK(contains(source(c, "cache_line_transfer"),
                 "400 cycles = 400.0 ns per line. Residuals: roundtrip shm_spin "
                 "8 B +0.0%, roundtrip shm_spin 64 B +0.0%; RMS 0.0%."));
  CHECK(contains(
      c.summary,
      "cache-line transfers (2 cross-core spinning round trips, RMS error 0.0%): cache_line_transfer 400 "
      "cycles"));
  // A host a thousand seconds slow is held at the bound (10 us at 1 GHz), and the source says so.
  const std::string slow =
      dir.write("slow.csv", slurp(kFixture) + "roundtrip,shm_spin,8,cross_core,10,1,1e12,1e12,1e12,\n");
  Calibration held = calibrate(read_hostbench(slow), "teaching");
  CHECK(value(held, "cache_line_transfer") == 10000);
  CHECK(contains(source(held, "cache_line_transfer"),
                 "Held at the bound of 10000 ns: the measurement is beyond any cache-line transfer."));
}

TEST_CASE("calibrate: the time slice from one-core busy polling, by hand") {
  // The fixture has no shm_spin cell: no time_slice, as its base (teaching) has none.
  CHECK(!fixture_on_teaching().preset.contains("time_slice"));
  // Three one-core busy-polling round trips of 8.0, 8.1 and 8.3 ms. On teaching each is simulated
  // as two slices and 1000 ns more (two switches; the copies fit inside the slices), so each cell
  // gives (measured - 1000) / 2 and the median cell (8.1 ms) 4,049,500 ns: 4050 us, rounded.
  TempDir dir("calibrate");
  std::string text = slurp(kFixture);
  text += "roundtrip,shm_spin,8,same_core,10,1,8000000.0,8100000.0,7990000.0,\n"
          "roundtrip,shm_spin,64,same_core,10,1,8100000.0,8200000.0,8000000.0,\n"
          "roundtrip,shm_spin,4096,same_core,10,1,8300000.0,8400000.0,8200000.0,\n";
  const std::string file = (dir.path / "slice.csv").string();
  std::ofstream(file) << text;
  Calibration c = calibrate(read_hostbench(file), "teaching");
  REQUIRE(c.preset.contains("time_slice"));
  CHECK(c.preset.at("time_slice").at("value") == "4050us");
  const std::string why = c.preset.at("time_slice").at("source").get<std::string>();
  CHECK(contains(why, "roundtrip,shm_spin,64,same_core (slice.csv line 29) median 8100000 ns, rest 1000 ns"));
  CHECK(contains(why, "Largest deviation of one cell from the median: 2.47%"));
  CHECK(contains(c.summary, "time slice (3 one-core busy-polling round trips): 4050 us"));
  // The preset loads, and its busy-polling round trips come out at two of its slices.
  const std::string preset = (dir.path / "slice.json").string();
  std::ofstream(preset) << calibration_text(c);
  CheckReport report = check_preset(preset, read_hostbench(file));
  for (const auto& cell : report.cells)
    if (cell.row.mechanism == "shm_spin") {
      REQUIRE(cell.simulated);
      CHECK(*cell.simulated == 2 * 4'050'000.0 + 1000);
    }
  // Calibrating from that preset on a file without such cells keeps its slice, and says so.
  Calibration again = calibrate(read_hostbench(kFixture), preset);
  CHECK(again.preset.at("time_slice").at("value") == "4050us");
  CHECK(
      contains(again.preset.at("time_slice").at("source").get<std::string>(),
               "Not determined by hostbench-calibrate.csv (it has no one-core busy-polling round trip): the "
               "base preset " +
                   preset + "'s."));
}

TEST_CASE("calibrate: ipi and the spread of leaving idle from the wakeup cells, by hand") {
  // The fixture has no wakeup cell: ipi is the base's, and no spread.
  CHECK(value(fixture_on_teaching(), "ipi") == 1000);
  CHECK(contains(source(fixture_on_teaching(), "ipi"), "Not determined by hostbench-calibrate.csv (it has no "
                                                       "wakeup_call cell"));
  CHECK(!fixture_on_teaching().preset.contains("idle_exit_spread"));
  TempDir dir("calibrate");
  auto with_wakeups = [&](const std::string& name, const std::string& note) {
    std::string text = slurp(kFixture);
    text.insert(text.find("kind,mechanism"), note);
    text += "wakeup,pipe,1,cross_core,100,1,30000.0,60000.0,3000.0,\n"
            "wakeup_call,pipe,1,cross_core,100,1,12000.0,15000.0,700.0,\n";
    const std::string file = (dir.path / name).string();
    std::ofstream(file) << text;
    return file;
  };
  const std::string file = with_wakeups("wake.csv", "# wakeup_p10_p90_ns: 24000.0 36000.0\n");
  Calibration c = calibrate(read_hostbench(file), "teaching");
  const std::string preset = (dir.path / "wake.json").string();
  std::ofstream(preset) << calibration_text(c);
  // ipi = the measured write() less the rest of it as simulated: exact, the call being linear in
  // ipi, so the fitted preset gives the measured 12000 ns (teaching: 1 GHz, a ns is a cycle).
  CheckReport report = check_preset(preset, read_hostbench(file));
  const HostbenchRow* wake = nullptr;
  for (const auto& cell : report.cells) {
    if (cell.row.kind == "wakeup_call") {
      REQUIRE(cell.simulated);
      CHECK(*cell.simulated == 12000.0);
    }
    if (cell.row.kind == "wakeup") wake = &cell.row;
  }
  REQUIRE(wake);
  CHECK(contains(source(c, "ipi"), "wakeup_call,pipe,1,cross_core (wake.csv line"));
  // The spread: the reader's path without an exit, P, from the cell simulated with idle_exit 0 and
  // no spread; then the 10th and 90th percentiles less P are exp(sigma x 2 x 1.2816) apart.
  json costs = {{"preset", preset}, {"idle_exit", 0}, {"idle_exit_spread", 0}};
  std::string why;
  auto path = simulate_cell(*wake, costs, why);
  REQUIRE(path);
  const double sigma =
      std::round(std::log((36000 - *path) / (24000 - *path)) / (2 * 1.281551566) * 1000) / 1000;
  MESSAGE("path without the exit " << *path
                                   << " ns; sigma = ln((36000 - P) / (24000 - P)) / 2.563 = " << sigma);
  CHECK(sigma == doctest::Approx(0.166).epsilon(0.01)); // P = 1305 ns: ln(34695 / 22695) / 2.563
  CHECK(c.preset.at("idle_exit_spread").at("value").get<double>() == sigma);
  CHECK(contains(c.preset.at("idle_exit_spread").at("source").get<std::string>(),
                 "its 10th and 90th percentiles 24000 and 36000 ns (the file's wakeup_p10_p90_ns)"));
  // Without the note: the median and the p99 (2.326 standard deviations apart).
  Calibration tail = calibrate(read_hostbench(with_wakeups("tail.csv", "")), "teaching");
  const double from_tail =
      std::round(std::log((60000 - *path) / (30000 - *path)) / 2.326347874 * 1000) / 1000;
  CHECK(tail.preset.at("idle_exit_spread").at("value").get<double>() ==
        doctest::Approx(from_tail).epsilon(0.01));
  CHECK(contains(tail.preset.at("idle_exit_spread").at("source").get<std::string>(),
                 "(the file has no wakeup_p10_p90_ns note)"));
  // Twice is refused too.
  const std::string twice = with_wakeups(
      "twice.csv", "# wakeup_p10_p90_ns: 24000.0 36000.0\n# wakeup_p10_p90_ns: 24000.0 36000.0\n");
  try {
    calibrate(read_hostbench(twice), "teaching");
    FAIL("accepted two notes");
  } catch (const UserError& e) {
    CHECK(std::string(e.what()) == twice +
                                       ":11: the note '# wakeup_p10_p90_ns' appears more than once (first on "
                                       "line 10); hostbench writes it once, with its wakeup cell");
  }
  // A note that is not two numbers, p10 > 0 and p90 >= p10, is refused, naming the file and line.
  for (const char* bad : {"fast slow", "35000 25000", "0 100", "1 2 3", "25000"}) {
    const std::string file = with_wakeups("bad.csv", std::string("# wakeup_p10_p90_ns: ") + bad + "\n");
    try {
      calibrate(read_hostbench(file), "teaching");
      FAIL("accepted the note " << bad);
    } catch (const UserError& e) {
      CHECK(std::string(e.what()) ==
            file + ":10: the note '# wakeup_p10_p90_ns: " + bad +
                "' must give two numbers of nanoseconds, the 10th percentile above 0 and the 90th at least "
                "as large, such as '# wakeup_p10_p90_ns: 25520.0 35169.0'");
    }
  }
}

TEST_CASE("calibrate: idle states from the wakeup ladder, by hand") {
  // The fixture with a wakeup cell (its p99 its median: no spread, so every simulated exit is exact)
  // and a ladder: about 5 us to leave idle up to 100 us, about 46 us from 150 us on.
  TempDir dir("calibrate");
  std::string text = slurp(kFixture);
  text += "wakeup,pipe,1,cross_core,100,1,6000.0,6000.0,3000.0,\n"
          "# wakeup_after_idle_ns: 10000 5000.0 4900.0 5100.0 100\n"
          "# wakeup_after_idle_ns: 50000 5100.0 5000.0 5200.0 100\n"
          "# wakeup_after_idle_ns: 100000 4900.0 4800.0 5000.0 100\n"
          "# wakeup_after_idle_ns: 150000 45000.0 44000.0 46000.0 100\n"
          "# wakeup_after_idle_ns: 300000 47000.0 46000.0 48000.0 100\n"
          "# wakeup_after_idle_ns: 1000000 46000.0 45000.0 47000.0 100\n";
  const std::string file = (dir.path / "ladder.csv").string();
  std::ofstream(file) << text;
  Calibration c = calibrate(read_hostbench(file), "teaching");
  const std::string preset = (dir.path / "ladder.json").string();
  std::ofstream(preset) << calibration_text(c);
  // The reader's path without an exit, P, from the fitted preset with no idle exit at all; each
  // rung's exit is its median less P; the first three rungs are one level (within 25% of the first),
  // the last three the next, whose latency is the median of its rungs' exits, 46000 - P, from
  // sqrt(100 us x 150 us) = 122.474 us (teaching: 1 GHz). The shallowest level, 5000 - P, is
  // idle_exit's state; idle_exit itself stays as the round trips (and the wakeup cell) fit it.
  const json bare = {
      {"preset", preset}, {"idle_exit", 0}, {"idle_exit_spread", 0}, {"idle_states", json::array()}};
  std::string why;
  HostbenchFile hb = read_hostbench(file);
  auto path = simulate_cell(rung_row(hb.wakeup_ladder[0]), bare, why);
  REQUIRE(path);
  MESSAGE("the reader's path without an idle exit: " << *path << " ns");
  const json& states = c.preset.at("idle_states").at("value");
  REQUIRE(states.size() == 1);
  CHECK(states[0] == json{{"name", "after_122.5us"},
                          {"target_residency", 122474},
                          {"exit_latency", std::llround(46000 - *path)}});
  CHECK(contains(source(c, "idle_exit"), "Gauss-Newton"));
  const std::string states_source = c.preset.at("idle_states").at("source").get<std::string>();
  CHECK(contains(states_source, "Source: the wakeup ladder of ladder.csv (6 idle times from 10 us (line"));
  CHECK(contains(states_source,
                 "after_122.5us: idle 122.47 us or more (between the rungs of 100 us and 150 us), exit "));
  const double idle_exit = value(c, "idle_exit");
  CHECK(contains(states_source, "The shallowest level, " + short_duration(5000 - *path) +
                                    " (the median of 3 rungs, idle up to 100 us), is idle_exit's state; "
                                    "idle_exit stays as the round trips fit it, " +
                                    short_duration(idle_exit) + " ("));
  // The fitted preset gives the deeper rungs their level (exact at the level's median) and the
  // shallow ones the path and idle_exit.
  CheckReport report = check_preset(preset, hb);
  REQUIRE(report.ladder.size() == 6);
  REQUIRE(report.ladder[0].simulated);
  REQUIRE(report.ladder[5].simulated);
  CHECK(*report.ladder[0].simulated == doctest::Approx(*path + idle_exit).epsilon(1e-3));
  CHECK(*report.ladder[5].simulated == doctest::Approx(46000).epsilon(1e-3));
  // Rungs whose wakeups are all about the reader's path (exits near 0): a few ns of noise is no
  // state (measured as the rungs are, 25% of the whole wakeup).
  std::string near = slurp(kFixture) + "wakeup,pipe,1,cross_core,100,1,6000.0,6000.0,3000.0,\n";
  const double p = *path;
  for (auto [idle, extra] : {std::pair{10000, 0.0}, {50000, 5.0}, {150000, 15.0}, {1000000, 40.0}})
    near += "# wakeup_after_idle_ns: " + std::to_string(idle) + " " + std::to_string(p + extra) + " " +
            std::to_string(p + extra - 1) + " " + std::to_string(p + extra + 1) + " 100\n";
  std::ofstream(dir.path / "near.csv") << near;
  Calibration none = calibrate(read_hostbench((dir.path / "near.csv").string()), "teaching");
  CHECK(none.preset.at("idle_states").at("value") == json::array());
  // One level only: no deeper state, an empty list that replaces the base's.
  std::string flat = slurp(kFixture) + "wakeup,pipe,1,cross_core,100,1,6000.0,6000.0,3000.0,\n"
                                       "# wakeup_after_idle_ns: 10000 5000.0 4900.0 5100.0 100\n"
                                       "# wakeup_after_idle_ns: 1000000 5500.0 5400.0 5600.0 100\n";
  std::ofstream(dir.path / "flat.csv") << flat;
  Calibration one = calibrate(read_hostbench((dir.path / "flat.csv").string()), "teaching");
  CHECK(one.preset.at("idle_states").at("value") == json::array());
  CHECK(contains(one.preset.at("idle_states").at("source").get<std::string>(),
                 "no deeper state: leaving idle costs the same after every idle time measured"));
}

TEST_CASE("calibrate: a deeper state's ipi from the ladder's write() medians, by hand") {
  // The ladder of the test above with each rung's write(): 3000 ns in the shallow state, 40000 ns
  // after 150 us idle and more (the host wakes a descheduled vCPU inside the waker's trap).
  TempDir dir("calibrate");
  std::string text = slurp(kFixture);
  text += "wakeup,pipe,1,cross_core,100,1,6000.0,6000.0,3000.0,\n"
          "# wakeup_after_idle_ns: 10000 5000.0 4900.0 5100.0 100 3000.0\n"
          "# wakeup_after_idle_ns: 100000 4900.0 4800.0 5000.0 100 3000.0\n"
          "# wakeup_after_idle_ns: 150000 45000.0 44000.0 46000.0 100 39000.0\n"
          "# wakeup_after_idle_ns: 300000 47000.0 46000.0 48000.0 100 40000.0\n"
          "# wakeup_after_idle_ns: 1000000 46000.0 45000.0 47000.0 100 41000.0\n";
  const std::string file = (dir.path / "calls.csv").string();
  std::ofstream(file) << text;
  // On a base at 2 GHz, so that a cycle is not a nanosecond.
  json base = json::parse(slurp(std::string(IPCSIM_SOURCE_DIR) + "/models/costs/teaching.json"));
  base["frequency"]["value"] = "2GHz";
  const std::string base_path = (dir.path / "base.json").string();
  std::ofstream(base_path) << base.dump(2);
  Calibration c = calibrate(read_hostbench(file), base_path);
  const std::string preset = (dir.path / "calls.json").string();
  std::ofstream(preset) << calibration_text(c);
  // The rest of the write, R, is the write simulated without the state less the ipi primitive
  // (teaching's 1000: the file has no wakeup_call cell); the state's ipi is the median of its rungs'
  // writes less R: 40000 - R.
  HostbenchFile hb = read_hostbench(file);
  std::string why;
  const json flat = {{"preset", preset}, {"idle_states", json::array()}, {"idle_exit_spread", 0}};
  auto write = simulate_cell(rung_row(hb.wakeup_ladder[0], "wakeup_call"), flat, why);
  REQUIRE(write);
  const double rest = *write - 500; // the ipi primitive: 1000 cycles at 2 GHz
  MESSAGE("the write without its IPI: " << rest << " ns");
  CHECK(value(c, "ipi") == 1000);
  const json& states = c.preset.at("idle_states").at("value");
  REQUIRE(states.size() == 1);
  CHECK(states[0].at("ipi") == std::llround(2 * (40000 - rest)));
  // The state's residency and latency in cycles of the 2 GHz clock: sqrt(100 us x 150 us) and the
  // median of its rungs' exits, 46000 ns less the reader's path.
  const json bare = {
      {"preset", preset}, {"idle_exit", 0}, {"idle_exit_spread", 0}, {"idle_states", json::array()}};
  auto path = simulate_cell(rung_row(hb.wakeup_ladder[0]), bare, why);
  REQUIRE(path);
  CHECK(states[0].at("target_residency") == std::llround(2 * std::sqrt(100000.0 * 150000.0)));
  CHECK(states[0].at("exit_latency") == std::llround(2 * (46000 - *path)));
  CHECK(contains(c.preset.at("idle_states").at("source").get<std::string>(), "; the waker's write() there "));
  // check-preset simulates each rung's write with it: the deep rungs' at the median, exactly.
  CheckReport report = check_preset(preset, hb);
  REQUIRE(report.ladder.size() == 5);
  REQUIRE(report.ladder[3].simulated_call);
  REQUIRE(report.ladder[0].simulated_call);
  CHECK(*report.ladder[3].simulated_call == doctest::Approx(40000).epsilon(1e-4));
  CHECK(*report.ladder[0].simulated_call == doctest::Approx(rest + 500).epsilon(1e-4));
  // The preset's calibration.machine keeps the file's machine keys, not the rungs (they repeat).
  CHECK(!c.preset.at("calibration").at("machine").contains("wakeup_after_idle_ns"));
  CHECK(contains(check_verdict(report), "wakeups after 5 idle times (10 us to 1 ms): "));
  CHECK(contains(check_verdict(report), " within 20%, the waker's write() "));
  std::ostringstream out;
  print_check_report(out, report);
  CHECK(contains(out.str(),
                 "  after 300 us      47.000 us |   46.000 us    -2.1%  yes (20%); the write 40.000 us | "
                 "40.000 us +0.0% yes\n"));
}

TEST_CASE("calibrate: a base's deeper idle state bounds idle_exit, and stays in the preset") {
  // The fixture's cross-core round trip wants an idle exit of many microseconds; a base whose first
  // deeper state leaves in 5000 cycles holds it there (the loader refuses an idle_exit above it),
  // and the fit probes downwards at the bound instead of leaving the round trip out.
  TempDir dir("calibrate");
  json base = json::parse(slurp(std::string(IPCSIM_SOURCE_DIR) + "/models/costs/teaching.json"));
  base["idle_states"] = {
      {"value", json::array({{{"name", "C6"}, {"target_residency", 1000000}, {"exit_latency", 5000}}})},
      {"source", "test"}};
  const std::string base_path = (dir.path / "base.json").string();
  std::ofstream(base_path) << base.dump(2);
  // With a wakeup cell that measures a longer exit, the fit starts at the bound itself.
  const std::string file = (dir.path / "wake.csv").string();
  std::ofstream(file) << slurp(kFixture) + "wakeup,pipe,1,cross_core,100,1,30000.0,60000.0,3000.0,\n";
  Calibration c = calibrate(read_hostbench(file), base_path);
  CHECK(value(c, "idle_exit") == 5000);
  CHECK(contains(source(c, "idle_exit"), "Source: the 2 cross-core round trips and wakeups of wake.csv"));
  CHECK(contains(source(c, "idle_exit"), "Held at the exit latency of the base preset's first deeper idle "
                                         "state (C6), which it may not exceed."));
  CHECK(c.preset.at("idle_states") == base.at("idle_states"));
  const std::string preset = (dir.path / "bounded.json").string();
  std::ofstream(preset) << calibration_text(c);
  CHECK(check_preset(preset, read_hostbench(file)).cells.size() > 0); // it loads
}

TEST_CASE("calibrate: the same file gives the same preset, byte for byte") {
  TempDir dir("calibrate");
  const std::string a = (dir.path / "a.json").string(), b = (dir.path / "b.json").string();
  auto first = cli({"calibrate", kFixture, "--base", "teaching", "--out", a});
  auto second = cli({"calibrate", kFixture, "--base", "teaching", "--out", b});
  CHECK(first.status == 0);
  CHECK(second.status == 0);
  // The same summary, but for the file each wrote.
  CHECK(first.out.substr(0, first.out.rfind("wrote ")) == second.out.substr(0, second.out.rfind("wrote ")));
  CHECK(first.out.find("wrote " + a) != std::string::npos);
  CHECK(first.out.find("check-preset on the result: verdict: ") != std::string::npos);
  CHECK(slurp(a) == slurp(b));
  CHECK(slurp(a) == calibration_text(fixture_on_teaching()));
  // Without --out the preset goes to standard output, the summary to standard error.
  auto piped = cli({"calibrate", kFixture, "--base", "teaching"});
  CHECK(piped.status == 0);
  CHECK(piped.out == slurp(a));
  CHECK(piped.err.rfind("calibrate: hostbench-calibrate.csv on the base preset teaching", 0) == 0);
}

TEST_CASE("calibrate: bad input is refused with a message naming it") {
  TempDir dir("calibrate");
  auto error_of = [](const std::vector<std::string>& args) {
    auto r = cli(args);
    CHECK(r.status == 2);
    CHECK(r.out.empty());
    return r.err;
  };
  // Missing cells.
  const std::string no_null =
      dir.write("no-null.csv", "# hostbench 1\n" + kHeader +
                                   "context_switch,sched_yield,0,same_core,10,100,600.0,700,500,\n");
  CHECK(
      error_of({"calibrate", no_null}) ==
      "error: " + no_null +
          ": no null_syscall cell (null_syscall,getppid,0,same_core): calibrate fits the system call and the "
          "switch from it, and every kernel path above them; run tools/hostbench with it (without --only, or "
          "--only 'null_syscall|...')\n");
  const std::string no_switch = dir.write(
      "no-switch.csv", "# hostbench 1\n" + kHeader + "null_syscall,getppid,0,same_core,10,100,80.0,90,70,\n");
  CHECK(
      error_of({"calibrate", no_switch}) ==
      "error: " + no_switch +
          ": no context_switch cell (context_switch,sched_yield,0,same_core): calibrate fits the system call "
          "and the switch from it, and every kernel path above them; run tools/hostbench with it (without "
          "--only, or --only 'context_switch|...')\n");
  // A non-number.
  const std::string nan = dir.write("nan.csv", "# hostbench 1\n" + kHeader +
                                                   "null_syscall,getppid,0,same_core,10,100,fast,90,70,\n");
  CHECK(error_of({"calibrate", nan}) == "error: " + nan + ":3: field median_ns: 'fast' is not a number\n");
  // A directory.
  CHECK(error_of({"calibrate", dir.path.string()}) ==
        "error: " + dir.path.string() + ": is a directory, not a hostbench file (give a .csv file)\n");
  // A missing file.
  CHECK(error_of({"calibrate", (dir.path / "none.csv").string()}).find("none.csv") != std::string::npos);
  // An unknown base.
  CHECK(error_of({"calibrate", kFixture, "--base", "no-such"}) ==
        "error: calibrate: --base 'no-such' is neither a built-in preset (ideal, linux-x86, lrpc-firefly, "
        "teaching) nor a preset file\n");
  // A base file that does not load.
  const std::string broken = dir.write("broken.json", "{\"description\": \"x\"}");
  CHECK(error_of({"calibrate", kFixture, "--base", broken}).find("missing key \"frequency\"") !=
        std::string::npos);
  // An --out that cannot be written.
  CHECK(error_of(
            {"calibrate", kFixture, "--base", "teaching", "--out", (dir.path / "no/such/dir.json").string()})
            .find("cannot write") != std::string::npos);
}
