// ipcsim_bench: the simulator's own benchmark (see docs/benchmark.md).
//
// One run times a plain SimGrid baseline (two actors doing a Mailbox put/get ping-pong) and a few
// ipcsim workloads, and prints their rates as ratios to the baseline measured in the same run, so
// the verdicts do not depend on how fast the machine is. Every measurement runs in its own forked
// child: each gets a fresh SimGrid, and its peak resident memory is its own (wait4's ru_maxrss).
#include "experiment.hpp"
#include "kernel.hpp"
#include "scenario.hpp"

#include <CLI/CLI.hpp>
#include <simgrid/s4u.hpp>
#include <xbt/log.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <sys/resource.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <vector>

namespace sg4 = simgrid::s4u;

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// What a child measured, sent back through a pipe as plain bytes.
// One trial is one timing; a workload keeps its best trial (the least disturbed by other load).
struct Sample {
  std::uint64_t events = 0;
  std::uint64_t runs = 0; // runs back to back in the trial, to reach the minimum timing
  double wall = 0;        // seconds, summed over the trial's runs
  std::uint32_t trials = 0;
  char error[240] = {}; // non-empty: the workload failed
  double rate() const { return wall > 0 ? static_cast<double>(events) / wall : 0; }
};

Sample best_of(std::uint32_t trials, const std::function<Sample()>& trial) {
  Sample best;
  for (std::uint32_t i = 0; i < trials; ++i) {
    Sample sample = trial();
    if (i == 0 || sample.rate() > best.rate()) best = sample;
  }
  best.trials = trials;
  return best;
}

struct Measurement {
  Sample sample;
  double peak_rss_mib = 0;
  std::string failure; // empty when the child finished cleanly
  bool ok() const { return failure.empty(); }
  double rate() const { return sample.rate(); }
  double wall_per_event() const {
    return sample.events ? sample.wall / static_cast<double>(sample.events) : 0;
  }
};

// Runs `body` in a forked child and collects its sample and peak resident set size.
Measurement in_child(const std::function<Sample()>& body) {
  std::cout.flush();
  std::fflush(nullptr);
  int fds[2];
  if (pipe(fds) != 0) return {{}, 0, std::string("pipe: ") + std::strerror(errno)};
  pid_t pid = fork();
  if (pid < 0) return {{}, 0, std::string("fork: ") + std::strerror(errno)};
  if (pid == 0) {
    close(fds[0]);
    Sample sample;
    try {
      sample = body();
    } catch (const std::exception& e) {
      std::snprintf(sample.error, sizeof sample.error, "%s", e.what());
    }
    ssize_t written = write(fds[1], &sample, sizeof sample);
    _exit(written == static_cast<ssize_t>(sizeof sample) ? 0 : 1);
  }
  close(fds[1]);
  Measurement m;
  ssize_t got = 0;
  while (got < static_cast<ssize_t>(sizeof m.sample)) {
    ssize_t n = read(fds[0], reinterpret_cast<char*>(&m.sample) + got, sizeof m.sample - got);
    if (n <= 0) break;
    got += n;
  }
  close(fds[0]);
  int status = 0;
  rusage usage{};
  if (wait4(pid, &status, 0, &usage) < 0) return {{}, 0, std::string("wait4: ") + std::strerror(errno)};
  m.peak_rss_mib = static_cast<double>(usage.ru_maxrss) / 1024.0; // ru_maxrss is in KiB on Linux
  if (WIFSIGNALED(status))
    m.failure = std::string("killed by signal ") + std::to_string(WTERMSIG(status));
  else if (got != static_cast<ssize_t>(sizeof m.sample) || WEXITSTATUS(status) != 0)
    m.failure = "child exited with status " + std::to_string(WEXITSTATUS(status));
  else if (m.sample.error[0])
    m.failure = m.sample.error;
  return m;
}

// ---- The baseline: SimGrid alone ---------------------------------------------------------------

// Two actors on two hosts joined by one link: `ping` puts an 8-byte message, `pong` gets it and
// puts it back. Timed: Engine::run, i.e. all `round_trips` round trips.
Sample mailbox_ping_pong(std::uint64_t round_trips) {
  int argc = 1;
  char name[] = "ipcsim_bench";
  char* argv[] = {name, nullptr};
  sg4::Engine engine(&argc, argv);
  xbt_log_control_set("root.thresh:critical");
  sg4::Engine::set_config("contexts/factory:raw"); // what ipcsim's engine uses
  auto* zone = sg4::create_full_zone("net");
  sg4::Host* a = zone->create_host("a", 1e9);
  sg4::Host* b = zone->create_host("b", 1e9);
  const sg4::Link* link = zone->create_link("wire", 1e9)->set_latency(1e-6)->seal();
  zone->add_route(a->get_netpoint(), b->get_netpoint(), nullptr, nullptr, {sg4::LinkInRoute(link)}, true);
  zone->seal();
  static int token = 42;
  sg4::Actor::create("ping", a, [round_trips] {
    sg4::Mailbox* out = sg4::Mailbox::by_name("to_pong");
    sg4::Mailbox* in = sg4::Mailbox::by_name("to_ping");
    for (std::uint64_t i = 0; i < round_trips; ++i) {
      out->put(&token, 8);
      in->get<int>();
    }
  });
  sg4::Actor::create("pong", b, [round_trips] {
    sg4::Mailbox* in = sg4::Mailbox::by_name("to_pong");
    sg4::Mailbox* out = sg4::Mailbox::by_name("to_ping");
    for (std::uint64_t i = 0; i < round_trips; ++i) out->put(in->get<int>(), 8);
  });
  auto start = Clock::now();
  engine.run();
  Sample sample;
  sample.wall = seconds_since(start);
  sample.events = round_trips;
  sample.runs = 1;
  return sample;
}

// ---- ipcsim workloads --------------------------------------------------------------------------

// `threads` threads of one process on `cores` cores, each running `script` (JSON ops).
std::string scenario_text(std::size_t cores, std::uint64_t threads, const std::string& script) {
  return R"({"description": "ipcsim_bench workload", "machine": {"cores": )" + std::to_string(cores) +
         R"(, "costs": "teaching"}, "processes": [{"name": "p", "threads": [{"name": "t", "count": )" +
         std::to_string(threads) + R"(, "script": )" + script + "}]}]}";
}

// How long each ipcsim trial must last at least, and how many trials a workload gets.
struct Timing {
  double min_wall;
  std::uint32_t trials;
};

// Loads the scenario once, then runs `timing.trials` trials and keeps the fastest. A trial runs the
// simulation back to back until it has lasted at least `timing.min_wall` seconds (at least once).
// Timed per run: building the Kernel (its threads) and Kernel::run. `count` turns one finished
// kernel into the number of events it did.
Sample simulate(const std::string& name, const std::string& text, Timing timing,
                const std::function<std::uint64_t(const ipcsim::Kernel&)>& count) {
  auto scenario = ipcsim::load_scenario_text(text, "bench:" + name, {});
  return best_of(timing.trials, [&] {
    Sample sample;
    while (sample.runs == 0 || sample.wall < timing.min_wall) {
      auto start = Clock::now();
      ipcsim::Kernel kernel(scenario->model());
      kernel.run();
      sample.wall += seconds_since(start);
      if (kernel.deadlock()) throw std::runtime_error(name + ": the simulated system deadlocked");
      for (const auto& thread : kernel.threads())
        if (thread.state != ipcsim::ThreadState::Exited)
          throw std::runtime_error(name + ": a thread did not finish");
      sample.events += count(kernel);
      ++sample.runs;
    }
    return sample;
  });
}

std::uint64_t context_switches(const ipcsim::Kernel& kernel) {
  std::uint64_t switches = 0;
  for (const auto& core : kernel.cores()) switches += core->context_switches;
  return switches;
}

// Two threads per core, each yielding `yields_per_thread` times: every yield finds the other
// thread of its core ready, so every yield is a context switch. (With one thread per core a yield
// returns at once without a switch, as Linux's sched_yield does.)
Sample yield_ping_pong(std::size_t cores, std::uint64_t yields_per_thread, Timing timing) {
  std::string script = R"([{"op": "repeat", "count": )" + std::to_string(yields_per_thread) +
                       R"(, "body": [{"op": "yield"}]}])";
  return simulate("yield-" + std::to_string(cores), scenario_text(cores, 2 * cores, script), timing,
                  context_switches);
}

constexpr std::uint64_t kSteps = 10;           // compute+yield steps per thread
constexpr std::uint64_t kComputeCycles = 1000; // per compute op: 1 us at the teaching preset's 1 GHz
constexpr std::size_t kManyCores = 2;

Sample compute_yield(std::uint64_t threads, Timing timing) {
  std::string script = R"([{"op": "repeat", "count": )" + std::to_string(kSteps) +
                       R"(, "body": [{"op": "compute", "time": )" + std::to_string(kComputeCycles) +
                       R"(}, {"op": "yield"}]}])";
  return simulate("compute-yield-" + std::to_string(threads), scenario_text(kManyCores, threads, script),
                  timing, [threads](const ipcsim::Kernel&) { return threads * kSteps * 2; });
}

// A 64-byte ping-pong over two pipe channels between two processes on `cores` cores: each round
// trip is two sends, two receives and (on one core) two context switches.
Sample pipe_ping_pong(std::size_t cores, std::uint64_t round_trips, Timing timing) {
  std::string n = std::to_string(round_trips);
  std::string text =
      R"({"description": "ipcsim_bench pipe ping-pong", "machine": {"cores": )" + std::to_string(cores) +
      R"(, "costs": "teaching"}, "channels": [{"name": "ping", "mechanism": "pipe"},
      {"name": "pong", "mechanism": "pipe"}], "processes": [
      {"name": "client", "script": [{"op": "repeat", "count": )" +
      n +
      R"(, "body": [{"op": "send", "channel": "ping", "bytes": 64}, {"op": "recv", "channel": "pong", "bytes": 64}]}]},
      {"name": "server", "script": [{"op": "repeat", "count": )" +
      n +
      R"(, "body": [{"op": "recv", "channel": "ping", "bytes": 64}, {"op": "send", "channel": "pong", "bytes": 64}]}]}]})";
  return simulate("pipe-" + std::to_string(cores), text, timing,
                  [round_trips](const ipcsim::Kernel&) { return round_trips; });
}

// ---- Reporting ---------------------------------------------------------------------------------

std::string fixed(double value, int decimals) {
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "%.*f", decimals, value);
  return buffer;
}

std::string with_commas(std::uint64_t value) {
  std::string digits = std::to_string(value), out;
  for (std::size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

// `ipcsim sweep` of `points` short points (a pipe ping-pong of `rounds` round trips, each point its
// own ipcsim process) with `jobs` at a time: events = points, wall = the whole sweep.
Sample sweep_points(unsigned jobs, std::uint64_t points, std::uint64_t rounds) {
  namespace fs = std::filesystem;
  fs::path dir = fs::temp_directory_path() / ("ipcsim_bench_sweep_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  std::ofstream(dir / "s.json") << R"({"machine": {"costs": "teaching"},
    "channels": [{"name": "ping", "mechanism": "pipe"}, {"name": "pong", "mechanism": "pipe"}],
    "processes": [
      {"name": "client", "script": [{"op": "repeat", "count": )"
                                << rounds << R"(, "body": [
        {"op": "send", "channel": "ping", "bytes": 64}, {"op": "recv", "channel": "pong", "bytes": 64}]}]},
      {"name": "server", "script": [{"op": "repeat", "count": )"
                                << rounds << R"(, "body": [
        {"op": "recv", "channel": "ping", "bytes": 64}, {"op": "send", "channel": "pong", "bytes": 64}]}]}]})";
  ipcsim::SweepOptions options;
  options.scenario_file = (dir / "s.json").string();
  options.vary = {"machine.cores=1"};
  options.repeat = static_cast<unsigned>(points);
  options.seed_from = 1;
  options.jobs = jobs;
  options.out_dir = (dir / "out").string();
  // The ipcsim binary beside this one runs the points.
  options.self = (fs::read_symlink("/proc/self/exe").parent_path() / "ipcsim").string();
  std::ostringstream out, err;
  auto start = Clock::now();
  int status = ipcsim::run_sweep(options, out, err);
  Sample sample;
  sample.wall = seconds_since(start);
  sample.events = points;
  sample.runs = 1;
  fs::remove_all(dir);
  if (status != 0) std::snprintf(sample.error, sizeof sample.error, "sweep: %s", err.str().c_str());
  return sample;
}

struct Row {
  std::string workload;
  std::string counted; // what one event is
  Measurement m;
};

void print_row(const Row& row, double baseline_rate) {
  std::printf("%-38s %-16s", row.workload.c_str(), row.counted.c_str());
  if (!row.m.ok()) {
    std::printf(" FAILED: %s\n", row.m.failure.c_str());
    return;
  }
  std::string ratio = baseline_rate > 0 ? fixed(row.m.rate() / baseline_rate, 2) : "-";
  std::printf(" %13s %6u %4llu %8s %12s %7s %9s\n", with_commas(row.m.sample.events).c_str(),
              row.m.sample.trials, static_cast<unsigned long long>(row.m.sample.runs),
              fixed(row.m.sample.wall, 3).c_str(),
              with_commas(static_cast<std::uint64_t>(row.m.rate())).c_str(), ratio.c_str(),
              fixed(row.m.peak_rss_mib, 1).c_str());
}

// A target line: `pass` empty means not judged (SKIP when not run, "-" for an informative line).
struct Verdicts {
  int failed = 0;
  void check(const std::string& what, const std::string& measured, const std::string& target,
             std::optional<bool> pass) {
    const char* verdict = pass ? (*pass ? "PASS" : "FAIL") : target == "(info)" ? "-" : "SKIP";
    if (pass && !*pass) ++failed;
    std::printf("  %-58s %12s   %-10s %s\n", what.c_str(), measured.c_str(), target.c_str(), verdict);
  }
};

} // namespace

int main(int argc, char** argv) {
  CLI::App app{"ipcsim_bench: times a SimGrid Mailbox ping-pong baseline and ipcsim workloads in one run, "
               "and checks ipcsim's performance targets as ratios to that baseline"};
  bool quick = false;
  app.add_flag("--quick", quick, "smaller counts, and no 1,000,000-thread run (well under a minute)");
  CLI11_PARSE(app, argc, argv);

  // Counts chosen so that each trial lasts about half a second or more on a 2-core VM.
  const std::uint64_t round_trips = quick ? 60'000 : 100'000;
  const std::uint64_t switches = quick ? 300'000 : 600'000; // per yield workload and run
  const std::uint32_t trials = 3;
  const Timing short_timing{quick ? 0.3 : 0.5, trials};
  struct ManyThreads {
    std::uint64_t threads;
    std::uint32_t trials;
  };
  std::vector<ManyThreads> sizes{{1'000, trials}, {100'000, quick ? 1u : 2u}};
  if (!quick) sizes.push_back({1'000'000, 1});

  std::printf("ipcsim_bench (%s mode): %s; every workload runs in its own child process\n",
              quick ? "quick" : "full", ipcsim::engine_version());
  std::printf("ipcsim workloads use the teaching cost preset; ratio = events/s of the row / round trips/s "
              "of the baseline\n");
  std::printf("each row is the fastest of `trials` timings; a timing sums `runs` back-to-back runs\n\n");
  std::printf("%-38s %-16s %13s %6s %4s %8s %12s %7s %9s\n", "workload", "event counted", "events", "trials",
              "runs", "wall s", "events/s", "ratio", "peak MiB");

  int broken = 0; // workloads that did not finish
  auto measure = [&broken](Row row, const std::function<Sample()>& body, double baseline_rate) {
    row.m = in_child(body);
    print_row(row, baseline_rate);
    if (!row.m.ok()) ++broken;
    return row.m;
  };

  Measurement baseline = measure(
      {"SimGrid Mailbox put/get, 2 actors", "round trip", {}},
      [&] { return best_of(trials, [&] { return mailbox_ping_pong(round_trips); }); }, 0);
  const double base_rate = baseline.ok() ? baseline.rate() : 0;

  Measurement yield1 = measure(
      {"yield: 2 threads, 1 core", "context switch", {}},
      [&] { return yield_ping_pong(1, switches / 2, short_timing); }, base_rate);
  Measurement yield2 = measure(
      {"yield: 4 threads, 2 cores (2 per core)", "context switch", {}},
      [&] { return yield_ping_pong(2, switches / 4, short_timing); }, base_rate);
  Measurement pipe1 = measure(
      {"pipe ping-pong, 2 processes, 1 core", "round trip", {}},
      [&] { return pipe_ping_pong(1, switches / 4, short_timing); }, base_rate);
  Measurement pipe2 = measure(
      {"pipe ping-pong, 2 processes, 2 cores", "round trip", {}},
      [&] { return pipe_ping_pong(2, switches / 4, short_timing); }, base_rate);
  std::vector<Measurement> many;
  for (const ManyThreads& size : sizes)
    many.push_back(measure(
        {with_commas(size.threads) + " threads x 10 compute+yield", "op step", {}},
        [&] {
          return compute_yield(size.threads, {short_timing.min_wall, size.trials});
        },
        base_rate));

  // The sweep's parallel speed-up: the same 40 points with -j1 and -j2, in this run.
  const std::uint64_t sweep_rounds = 20'000;
  Measurement sweep1 = measure(
      {"sweep of 40 points, -j1", "point", {}}, [&] { return sweep_points(1, 40, sweep_rounds); }, 0);
  Measurement sweep2 = measure(
      {"sweep of 40 points, -j2", "point", {}}, [&] { return sweep_points(2, 40, sweep_rounds); }, 0);

  std::printf("\ncompute+yield workloads: %zu cores, each thread repeats 10 x {compute %llu cycles, yield}; "
              "events = threads x 10 x 2.\n",
              kManyCores, static_cast<unsigned long long>(kComputeCycles));
  std::printf("op step = one compute op or one yield op; timed: Kernel construction + Kernel::run.\n\n");

  std::printf("targets\n");
  Verdicts verdicts;
  // The kernel's second edition's targets (docs/benchmark.md).
  auto ratio_check = [&](const std::string& what, const Measurement& m, double target) {
    std::string bound = ">= " + fixed(target, 1);
    if (!baseline.ok() || !m.ok()) return verdicts.check(what, "error", bound, false);
    double ratio = m.rate() / base_rate;
    verdicts.check(what, fixed(ratio, 2), bound, ratio >= target);
  };
  ratio_check("yield, 1 core: switches/s / baseline round trips/s", yield1, 5.0);
  ratio_check("yield, 2 cores: switches/s / baseline round trips/s", yield2, 2.0);
  ratio_check("pipe ping-pong, 1 core: round trips/s / baseline round trips/s", pipe1, 3.0);
  ratio_check("pipe ping-pong, 2 cores: round trips/s / baseline round trips/s", pipe2, 1.5);

  {
    const std::string what = "sweep of 40 points: -j2 points/s / -j1 points/s";
    if (!sweep1.ok() || !sweep2.ok() || sweep1.rate() <= 0)
      verdicts.check(what, "error", ">= 1.8", false);
    else if (std::thread::hardware_concurrency() < 2)
      verdicts.check(what, fixed(sweep2.rate() / sweep1.rate(), 2), ">= 1.8",
                     std::nullopt); // one core: not judged
    else
      verdicts.check(what, fixed(sweep2.rate() / sweep1.rate(), 2), ">= 1.8",
                     sweep2.rate() / sweep1.rate() >= 1.8);
  }

  const Measurement& first = many.front();
  for (std::size_t i = 1; i < many.size(); ++i) {
    std::string label = with_commas(sizes[i].threads) + " threads: wall/event / 1,000 threads' wall/event";
    bool target = sizes[i].threads == 1'000'000;
    if (!first.ok() || !many[i].ok()) {
      verdicts.check(label, "error", target ? "<= 2.0" : "(info)",
                     target ? std::optional(false) : std::nullopt);
      continue;
    }
    double ratio = many[i].wall_per_event() / first.wall_per_event();
    verdicts.check(label, fixed(ratio, 2), target ? "<= 2.0" : "(info)",
                   target ? std::optional(ratio <= 2.0) : std::nullopt);
  }
  if (quick) {
    verdicts.check("1,000,000 threads: wall/event / 1,000 threads' wall/event", "not run", "<= 2.0",
                   std::nullopt);
    verdicts.check("1,000,000 threads: peak resident MiB", "not run", "< 500", std::nullopt);
  } else {
    const Measurement& million = many.back();
    verdicts.check("1,000,000 threads: peak resident MiB",
                   million.ok() ? fixed(million.peak_rss_mib, 1) : std::string("error"), "< 500",
                   million.ok() && million.peak_rss_mib < 500.0);
  }
  if (broken) std::printf("\n%d workload(s) FAILED to run\n", broken);
  if (verdicts.failed)
    std::printf("\n%d target(s) FAILED\n", verdicts.failed);
  else
    std::printf("\nall %s\n",
                quick ? "checked targets pass (quick mode skips the 1,000,000-thread ones)" : "targets pass");
  return verdicts.failed || broken ? 1 : 0;
}
