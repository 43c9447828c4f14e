// ipcsim sweep: a grid of runs, each point in its own process (the ipcsim binary), resumable, or
// written out as jobs for GNU parallel (docs/sweep.md). The workload: scenarios/sweep-pingpong.json
// on the teaching preset (1 GHz), whose 64-byte round trip on one core is 4072 cycles (worked out in
// tests/test_compare.cpp).
#include "cli.hpp"
#include "experiment.hpp"
#include "report.hpp"

#include "cli_harness.hpp"
#include <cstdlib>

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

// sweep.csv with each scenario_hash replaced by "H" (checked against the point's summary.json apart).
std::string without_hashes(const std::string& csv) {
  std::string out;
  std::istringstream lines(csv);
  for (std::string line; std::getline(lines, line);) {
    auto at = line.find("fnv1a64:");
    if (at != std::string::npos) line.replace(at, 24, "H");
    out += line + "\n";
  }
  return out;
}

} // namespace

TEST_CASE("sweep: ranges and lists of values") {
  using ipcsim::expand_vary_values;
  CHECK(expand_vary_values("8..1MiB*8", "o") ==
        std::vector<std::string>{"8", "64", "512", "4096", "32768", "262144"});
  CHECK(expand_vary_values("1..16*2", "o") == std::vector<std::string>{"1", "2", "4", "8", "16"});
  CHECK(expand_vary_values("4KiB..4KiB*2", "o") == std::vector<std::string>{"4096"});
  CHECK(expand_vary_values("pipe,mailbox", "o") == std::vector<std::string>{"pipe", "mailbox"});
  CHECK(expand_vary_values("3GHz", "o") == std::vector<std::string>{"3GHz"});
  auto error = [](const std::string& values) {
    try {
      expand_vary_values(values, "--vary x=" + values);
    } catch (const ipcsim::UserError& e) {
      return std::string(e.what());
    }
    return std::string("<no error>");
  };
  CHECK(error("8..64") ==
        "--vary x=8..64: expected FROM..TO*FACTOR, FROM and TO whole numbers or sizes (8, 4KiB, "
        "1MiB), FACTOR a whole number of at least 2, such as 8..1MiB*8");
  CHECK(error("8..64*1") == "--vary x=8..64*1: the factor \"1\" is not a whole number of at least 2");
  CHECK(error("8..64*x") == "--vary x=8..64*x: the factor \"x\" is not a whole number of at least 2");
  CHECK(error("a..64*2") ==
        "--vary x=a..64*2: \"a\" is not a whole number or a size expected FROM..TO*FACTOR, "
        "FROM and TO whole numbers or sizes (8, 4KiB, 1MiB), FACTOR a whole number of at least "
        "2, such as 8..1MiB*8");
  CHECK(error("0..64*2") ==
        "--vary x=0..64*2: FROM is 0, and 0 times any factor stays 0; start at 1 or more");
  CHECK(error("64..8*2") == "--vary x=64..8*2: FROM 64 is above TO 8");
  CHECK(error("1,,2") == "--vary x=1,,2: an empty value in the list");
  CHECK(error("1,") == "--vary x=1,: an empty value in the list");
}

TEST_CASE("sweep: a device as the scenario is refused, not read for ever") {
  TempDir dir("device");
  auto r = cli({"sweep", "/dev/zero", "--vary", "params.size=8", "--out", (dir.path / "s").string()});
  CHECK(r.status == ipcsim::kExitBadInput);
  CHECK(r.err.find("/dev/zero: is not a regular file (a device, FIFO or socket); a scenario file must be an "
                   "ordinary .json file") != std::string::npos);
}

TEST_CASE("sweep: a grid in parallel, one CSV row per point, and a resumed sweep redoes nothing finished") {
  TempDir dir("grid");
  auto out = (dir.path / "s").string();
  std::vector<std::string> args{
      "sweep", kPingPong, "--vary", "params.size=8,64", "--vary", "machine.cores=1,2", "--out",
      out,     "-j",      "2"};
  auto r = cli(args);
  CHECK(r.status == ipcsim::kExitOk);
  CHECK(r.out == "sweep: 4 points in " + out + ": sweep.csv, intervals.csv\n");
  // Each point's line, in the order the points finish.
  for (const char* point : {"params.size=8, machine.cores=1", "params.size=8, machine.cores=2",
                            "params.size=64, machine.cores=1", "params.size=64, machine.cores=2"})
    CHECK(r.err.find(std::string(" done: ") + point + "\n") != std::string::npos);
  // Point 2 (64 bytes, one core): the 4392-cycle round trip as p50 (worked out in test_compare); 20
  // round trips in 89320 cycles. Point 3, two cores: each side is asleep on its idle core when the
  // other's message comes (a reader takes the pipe's mutex, finds it empty, sleeps). Half a round
  // trip, from one wakeup to the next: idle_exit 1000 + sched_pick 100 + context_restore 200, the
  // read's lock_acquire 20 + cache_line_transfer 3 x 100 (the pipe's three shared lines: its mutex
  // was last taken on the other core) + copy 50 + 64 / 8 + trap_exit 100, the write's entry 150 + 50
  // + cache_line_transfer 3 x 100 + copy 58 + waitqueue_op 20 + wakeup 100 (its ipi comes after: the
  // woken core is already going) = 2456, and the read's bytes come from the writer's core: their
  // first line's cache_line_transfer 100 and 64 B at the remote rate (2 B/cycle: 32 cycles, 24 more
  // than L1's 8) = 2580; and the write's copy goes into the page the other core's read emptied
  // (the pipe's tmp_page), its lines in that core's cache: 100 + 24 more = 2704; the round trip 5408
  // as p50 (5296 at 8 bytes: each copy 7 cycles shorter, and each remote part 4 cycles instead of 1,
  // 3 more: 2648 a half).
  CHECK(
      without_hashes(slurp(fs::path(out) / "sweep.csv")) ==
      "point,params.size,machine.cores,seed,scenario_hash,result,simulated_cycles,simulated_ns,rtt.count,"
      "rtt.min_ns,rtt.mean_ns,rtt.p50_ns,rtt.p99_ns,rtt.max_ns,rtt.stddev_ns,rtt.per_second,rtt.bytes_per_"
      "second\n"
      "0,8,1,1,H,completed,88760,88760.000,20,4094.000,4374.500,4364.000,4844.000,4844.000,122.698,228597."
      "554,"
      "1828780.432\n"
      "1,8,2,1,H,completed,105644,105644.000,20,3750.000,5218.700,5296.000,5296.000,5296.000,336.943,191618."
      "602,1532948.819\n"
      "2,64,1,1,H,completed,89320,89320.000,20,4122.000,4402.500,4392.000,4872.000,4872.000,122.698,227143."
      "668,"
      "14537194.776\n"
      "3,64,2,1,H,completed,107842,107842.000,20,3820.000,5328.600,5408.000,5408.000,5408.000,346.097,187666."
      "554,12010659.460\n");
  // The hash is the point's resolved scenario's, as its summary.json gives it.
  json summary = json::parse(slurp(fs::path(out) / "points" / "0002" / "summary.json"));
  CHECK(slurp(fs::path(out) / "sweep.csv")
            .find(",1," + summary["context"]["scenario_hash"].get<std::string>() + ",") != std::string::npos);
  CHECK(slurp(fs::path(out) / "points" / "0002" / "status") == "0\n");
  std::string intervals = slurp(fs::path(out) / "intervals.csv");
  CHECK(intervals.rfind(std::string("point,params.size,machine.cores,seed,") + ipcsim::interval_csv_header() +
                            "\n0,8,1,1,rtt,20,4094,4374.500,4364,4844,4844,122.698,",
                        0) == 0);
  json sweep = json::parse(slurp(fs::path(out) / "sweep.json"));
  CHECK(sweep["points"][3]["values"] == json{{"params.size", "64"}, {"machine.cores", "2"}});
  CHECK(sweep["points"][3]["dir"] == "points/0003");
  CHECK(sweep["points"][3]["seed"].is_null());

  // Interrupted: one point's directory is gone, another's left half written. Only that point runs.
  auto stamp = fs::last_write_time(fs::path(out) / "points" / "0000" / "summary.json");
  fs::remove_all(fs::path(out) / "points" / "0001");
  fs::create_directories(fs::path(out) / "points" / "0001.partial");
  auto again = cli(args);
  CHECK(again.status == ipcsim::kExitOk);
  CHECK(again.err == "sweep: 3 of 4 points already done in " + out +
                         "; running the other 1\npoint 4/4 done: params.size=8, machine.cores=2\n");
  CHECK(fs::last_write_time(fs::path(out) / "points" / "0000" / "summary.json") == stamp);
  CHECK(!fs::exists(fs::path(out) / "points" / "0001.partial"));
  CHECK(without_hashes(slurp(fs::path(out) / "sweep.csv")).find("\n1,8,2,1,H,completed,105644,") !=
        std::string::npos);

  // Another sweep into the same directory is refused.
  auto other = cli({"sweep", kPingPong, "--vary", "params.size=8,128", "--out", out});
  CHECK(other.status == ipcsim::kExitBadInput);
  CHECK(other.err ==
        "error: --out " + out +
            " holds a different sweep (sweep.json differs: vary, points); use another directory\n");
}

TEST_CASE("sweep: --repeat runs each point under several seeds") {
  TempDir dir("repeat");
  auto out = (dir.path / "s").string();
  auto r = cli({"sweep", kPingPong, "--vary", "params.size=8", "--repeat", "3", "--seed-from", "7", "--out",
                out, "-j", "1", "--set", "params.rounds=2"});
  CHECK(r.status == ipcsim::kExitOk);
  CHECK(r.err == "point 1/3 done: params.size=8, seed 7\npoint 2/3 done: params.size=8, seed 8\n"
                 "point 3/3 done: params.size=8, seed 9\n");
  std::string csv = slurp(fs::path(out) / "sweep.csv");
  CHECK(csv.find("\n0,8,7,fnv1a64:") != std::string::npos);
  CHECK(csv.find("\n1,8,8,fnv1a64:") != std::string::npos);
  CHECK(csv.find("\n2,8,9,fnv1a64:") != std::string::npos);
  json summary = json::parse(slurp(fs::path(out) / "points" / "0001" / "summary.json"));
  CHECK(summary["context"]["seed"] == 8);
  CHECK(summary["context"]["scenario"]["params"]["rounds"] == 2);
}

TEST_CASE("sweep: an invalid point stops the sweep, naming it") {
  TempDir dir("invalid");
  auto out = (dir.path / "s").string();
  auto r = cli({"sweep", kPingPong, "--vary", "params.size=8,-5", "--out", out});
  CHECK(r.status == ipcsim::kExitBadInput);
  CHECK(r.err ==
        "error: sweep point 1 (params.size=-5): " + kPingPong +
            ": at processes.0.script.0.body.1.bytes: invalid value -5; expected a whole number of bytes or "
            "a size such as \"4KiB\", \"1MiB\", \"512B\", or a script variable as \"{NAME}\"\n");
  CHECK(!fs::exists(fs::path(out) / "points")); // nothing ran
  // A point that fails while it runs (a division by zero at run time) stops the sweep too.
  auto file = dir.write("div.json", R"({"params": {"d": 1}, "processes": [{"name": "p", "script": [
    {"op": "set", "var": "d", "value": "${d}"}, {"op": "calc", "var": "x", "expr": "10 / d"}]}]})");
  auto run = cli({"sweep", file, "--vary", "params.d=1,0,2", "--out", out, "-j", "1"});
  CHECK(run.status == ipcsim::kExitBadInput);
  CHECK(run.err == "point 1/3 done: params.d=1\nerror: sweep point 1 (params.d=0): " + file +
                       ": p: calc \"10 / d\": division by zero\n");
  CHECK(!fs::exists(fs::path(out) / "points" / "0002")); // not started after the failure
}

TEST_CASE("sweep: a failed point's error line is found after warnings on its stderr") {
  // A sanitizer build or SimGrid may print warnings before the point's own error line.
  TempDir dir("warned");
  auto fake = dir.write("fake-ipcsim", "#!/bin/sh\necho '==1==WARNING: something noisy' >&2\n"
                                       "echo 'error: the real reason' >&2\nexit 2\n");
  fs::permissions(fake, fs::perms::owner_all);
  std::ostringstream out, err;
  ::setenv("IPCSIM_BINARY", fake.c_str(), 1);
  int status = ipcsim::run_cli(
      {"sweep", kPingPong, "--vary", "params.size=8", "--out", (dir.path / "s").string(), "-j", "1"}, out,
      err);
  ::setenv("IPCSIM_BINARY", IPCSIM_BINARY, 1);
  CHECK(status == ipcsim::kExitBadInput);
  CHECK(err.str() == "error: sweep point 0 (params.size=8): the real reason\n");
}

TEST_CASE("sweep: command-line mistakes") {
  TempDir dir("options");
  auto check = [](const std::vector<std::string>& args, const std::string& message) {
    auto r = cli(args);
    CHECK(r.status == ipcsim::kExitBadInput);
    CHECK(r.err == message);
  };
  const std::string out = (dir.path / "s").string();
  check({"sweep", kPingPong, "--vary", "params.size", "--out", out},
        "error: --vary params.size: expected PATH=v1,v2,... or PATH=FROM..TO*FACTOR, such as "
        "params.size=8..1MiB*8\n");
  check({"sweep", kPingPong, "--vary", "params.size=8", "--vary", "params.size=16", "--out", out},
        "error: --vary params.size=16: params.size is varied twice\n");
  check({"sweep", kPingPong, "--vary", "params.size=8", "--set", "params.size=16", "--out", out},
        "error: --vary params.size=8: --set params.size=16 sets the same path; give one or the other\n");
  check(
      {"sweep", kPingPong, "--vary", "params.size=8", "--repeat", "3", "--out", out},
      "error: --repeat 3: each run of a point needs its own seed: give --seed-from S (seeds S, S+1, ...)\n");
  check(
      {"sweep", kPingPong, "--vary", "params.size=8", "--seed", "3", "--out", out},
      "error: --seed: a sweep gives each point its seed: use --seed-from (with --repeat), or vary seed with "
      "--vary seed=1,2,3\n");
  check({"sweep", kPingPong, "--vary", "params.size=8", "-j", "0", "--out", out},
        "error: -j 0: expected a whole number from 1 to 1024\n");
  check({"sweep-merge", out},
        "error: " + out + ": no sweep.json here: not a sweep's directory (ipcsim sweep --out DIR)\n");
}

TEST_CASE("sweep: --emit-jobs runs under GNU parallel, then sweep-merge gathers the points") {
  TempDir dir("jobs");
  auto out = (dir.path / "s").string();
  auto r = cli({"sweep", kPingPong, "--vary", "params.size=8,64,512", "--out", out, "--emit-jobs"});
  CHECK(r.status == ipcsim::kExitOk);
  CHECK(r.out == "sweep: 3 points, 3 to run: " + out + "/jobs.txt (one command per line), then " + out +
                     "/merge.txt\n");
  CHECK(slurp(fs::path(out) / "jobs.txt") == std::string(IPCSIM_BINARY) + " sweep-point " + out + " 0\n" +
                                                 IPCSIM_BINARY + " sweep-point " + out + " 1\n" +
                                                 IPCSIM_BINARY + " sweep-point " + out + " 2\n");
  CHECK(slurp(fs::path(out) / "merge.txt") == std::string(IPCSIM_BINARY) + " sweep-merge " + out + "\n");
  // Before the points run, the merge names what is missing.
  auto early = cli({"sweep-merge", out});
  CHECK(early.status == ipcsim::kExitBadInput);
  CHECK(early.err ==
        "error: sweep-merge " + out +
            ": 3 of 3 points are not done (0, 1, 2); run them first (ipcsim sweep again, or the lines of "
            "jobs.txt)\n");
  auto bad = cli({"sweep-point", out, "3"});
  CHECK(bad.err == "error: sweep-point 3: expected a point from 0 to 2\n");
  if (std::system("command -v parallel > /dev/null 2>&1") != 0) {
    MESSAGE("GNU parallel is not installed (Debian: apt-get install parallel; tools/setup.sh does): the job "
            "lines run one by one here instead");
    std::ifstream jobs(fs::path(out) / "jobs.txt");
    for (std::string line; std::getline(jobs, line);) CHECK(std::system(line.c_str()) == 0);
  } else {
    std::string command = "parallel -j2 --halt now,fail=1 < " + out + "/jobs.txt";
    CHECK(std::system(command.c_str()) == 0);
  }
  CHECK(std::system(("sh " + out + "/merge.txt > /dev/null").c_str()) == 0);
  std::string csv = slurp(fs::path(out) / "sweep.csv");
  CHECK(without_hashes(csv).find("\n1,64,1,H,completed,89320,89320.000,20,4122.000,4402.500,4392.000,") !=
        std::string::npos);
  // The same grid run by sweep itself gives the same file.
  auto local = (dir.path / "local").string();
  CHECK(cli({"sweep", kPingPong, "--vary", "params.size=8,64,512", "--out", local}).status == 0);
  CHECK(slurp(fs::path(local) / "sweep.csv") == csv);
  // A point already done is not run again.
  auto done = cli({"sweep-point", out, "1"});
  CHECK(done.status == 0);
  CHECK(done.out == "sweep point 1 is already done\n");
}
