// Several machines in one simulation: the `machines` list, placement of processes and channels,
// isolation between machines, and what the reports say about each.
#include "cli.hpp"
#include "harness.hpp"
#include "simulation.hpp"

#include "cli_harness.hpp"

#include <doctest/doctest.h>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <unistd.h>

using namespace ipcsim;
using namespace ipcsim::test;
namespace fs = std::filesystem;

using ipcsim::test::cli;
using ipcsim::test::slurp;
using ipcsim::test::TempDir;

namespace {

// A pipe ping-pong of `rounds` 64-byte round trips between CLIENT and SERVER over PING and PONG.
json ping_pong(const std::string& suffix, const std::string& machine, int rounds, bool pinned) {
  json client = {{"name", "client" + suffix},
                 {"script",
                  {{{"op", "repeat"},
                    {"count", rounds},
                    {"body",
                     {{{"op", "begin"}, {"name", "rtt"}},
                      {{"op", "send"}, {"channel", "ping" + suffix}, {"bytes", 64}},
                      {{"op", "recv"}, {"channel", "pong" + suffix}, {"bytes", 64}},
                      {{"op", "end"}, {"name", "rtt"}}}}}}}};
  json server = {{"name", "server" + suffix},
                 {"script",
                  {{{"op", "repeat"},
                    {"count", rounds},
                    {"body",
                     {{{"op", "recv"}, {"channel", "ping" + suffix}, {"bytes", 64}},
                      {{"op", "send"}, {"channel", "pong" + suffix}, {"bytes", 64}}}}}}}};
  if (pinned) {
    client["affinity"] = {0};
    server["affinity"] = {1};
  }
  json channels = {{{"name", "ping" + suffix}, {"mechanism", "pipe"}},
                   {{"name", "pong" + suffix}, {"mechanism", "pipe"}}};
  if (!machine.empty()) {
    client["machine"] = server["machine"] = machine;
    for (auto& c : channels) c["machine"] = machine;
  }
  return {{"channels", channels}, {"processes", {client, server}}};
}

const json kOneCore = {{"cores", 1}, {"costs", "teaching"}, {"scheduler", "fifo"}};
const json kTwoCores = {{"cores", 2}, {"costs", "teaching"}, {"scheduler", "fifo"}};

json two_machines() {
  json a = ping_pong("1", "a", 20, false), b = ping_pong("2", "b", 30, true);
  json machine_a = kOneCore, machine_b = kTwoCores;
  machine_a["name"] = "a";
  machine_b["name"] = "b";
  json doc = {
      {"machines", {machine_a, machine_b}}, {"channels", a["channels"]}, {"processes", a["processes"]}};
  for (const auto& c : b["channels"]) doc["channels"].push_back(c);
  for (const auto& p : b["processes"]) doc["processes"].push_back(p);
  return doc;
}

std::unique_ptr<Simulation> simulate(const Scenario& scenario) {
  auto simulation = std::make_unique<Simulation>(scenario.machines);
  simulation->run();
  return simulation;
}

// Everything a run's kernel reports, as text, for comparisons.
std::string outcome(const Kernel& kernel) {
  std::ostringstream out;
  out << "end " << kernel.makespan() << "\n";
  for (const auto& t : kernel.threads()) {
    const auto& account = kernel.account(t);
    out << t.display_name() << " finished " << t.finished_at << " run " << account.run_cycles << " ready "
        << account.ready_cycles << " blocked " << account.blocked_cycles << "\n";
    for (const auto& c : account.charges)
      out << "  " << activity_names()[c.activity] << " " << int(c.primitive) << " " << c.cycles << "\n";
  }
  for (const auto& r : kernel.records()) out << "rtt " << r.start << ".." << r.end << "\n";
  for (const auto& core : kernel.cores())
    out << "core " << core->index << " busy " << core->busy_cycles << " switches " << core->context_switches
        << "\n";
  return out.str();
}

} // namespace

TEST_CASE("machines: each machine runs side by side exactly as it runs alone") {
  auto both = load_scenario_text(two_machines().dump(), "test.json", {});
  REQUIRE(both->machines.size() == 2);
  CHECK(both->machines[0].name == "a");
  CHECK(both->machines[1].name == "b");
  CHECK(both->machines[0].cores == 1);
  CHECK(both->machines[1].cores == 2);
  CHECK(both->machines[0].channels.size() == 2);
  CHECK(both->machines[1].processes.size() == 2);
  auto simulation = simulate(*both);

  json alone_a = ping_pong("1", "", 20, false), alone_b = ping_pong("2", "", 30, true);
  alone_a["machine"] = kOneCore;
  alone_b["machine"] = kTwoCores;
  Run a = run_text(alone_a.dump()), b = run_text(alone_b.dump());
  CHECK(outcome(simulation->machine(0)) == outcome(*a.kernel));
  CHECK(outcome(simulation->machine(1)) == outcome(*b.kernel));
  // The machines really differ: the one-core round trip pays two switches, the two-core one an IPI
  // and an idle exit per message instead (the teaching preset's 1000 + 1000 cycles).
  CHECK(simulation->machine(0).makespan() != simulation->machine(1).makespan());
  CHECK(simulation->machine(0).records().size() == 20);
  CHECK(simulation->machine(1).records().size() == 30);
}

TEST_CASE("machines: the same scenario and seed give the same results") {
  auto scenario = load_scenario_text(two_machines().dump(), "test.json", {});
  auto first = simulate(*scenario), second = simulate(*scenario);
  for (std::size_t m = 0; m < 2; ++m) CHECK(outcome(first->machine(m)) == outcome(second->machine(m)));
}

TEST_CASE("machines: kernel objects of one machine are invisible on another") {
  // Each machine has its own IPC namespace: the same FIFO path on both is two FIFOs.
  json doc = two_machines();
  auto scenario = load_scenario_text(doc.dump(), "test.json", {});
  auto simulation = simulate(*scenario);
  CHECK(simulation->machine(0).ipc_listing().front().rows.size() == 2); // ping1, pong1 only
  CHECK(simulation->machine(1).ipc_listing().front().rows.size() == 2);

  // A script naming another machine's channel or process is refused at load time, with where it is.
  doc["processes"][0]["script"][0]["body"][1]["channel"] = "ping2";
  CHECK(load_error(doc.dump()) == "test.json: at processes.0.script.0.body.1.channel: unknown channel "
                                  "\"ping2\" (did you mean \"ping1\"?); "
                                  "channels: ping1, pong1 (\"ping2\" is on machine b; this script runs on "
                                  "machine a, and machines share no "
                                  "kernel objects)");
  doc = two_machines();
  doc["processes"][0]["script"] = {{{"op", "join"}, {"process", "server2"}}};
  CHECK(
      load_error(doc.dump()) ==
      "test.json: at processes.0.script.0.process: unknown process \"server2\" (did you mean \"server1\"?); "
      "processes: client1, server1 (\"server2\" is on machine b; this script runs on machine a, and machines "
      "share no kernel objects)");
}

TEST_CASE("machines: a deadlock on one machine does not stop the other") {
  json doc = two_machines();
  // Machine a's client waits for a reply its server never sends.
  doc["processes"][1]["script"][0]["body"] = {{{"op", "recv"}, {"channel", "ping1"}, {"bytes", 64}}};
  auto scenario = load_scenario_text(doc.dump(), "test.json", {});
  auto simulation = simulate(*scenario);
  CHECK(simulation->deadlocked());
  CHECK(simulation->machine(0).deadlock() != nullptr);
  CHECK(simulation->machine(1).deadlock() == nullptr);
  CHECK(simulation->machine(1).records().size() == 30);
}

TEST_CASE("machines: a runtime error names its machine") {
  json doc = two_machines();
  doc["processes"][2]["script"] = {{{"op", "set"}, {"var", "x"}, {"value", 9223372036854775807LL}},
                                   {{"op", "add"}, {"var", "x"}, {"value", 1}}};
  auto scenario = load_scenario_text(doc.dump(), "test.json", {});
  auto simulation = simulate(*scenario);
  CHECK(simulation->runtime_error().rfind("machine b: client2: ", 0) == 0);
}

TEST_CASE("machines: loader errors") {
  json doc = two_machines();
  json both = doc;
  both["machine"] = kOneCore;
  CHECK(load_error(both.dump()) ==
        "test.json: at machines: give either \"machine\" (one machine) or \"machines\" (a list), not both");
  json empty = doc;
  empty["machines"] = json::array();
  CHECK(load_error(empty.dump()) ==
        "test.json: at machines: expected at least one machine, such as [{\"name\": \"a\"}]");
  json unnamed = doc;
  unnamed["machines"][1].erase("name");
  CHECK(load_error(unnamed.dump()) ==
        "test.json: at machines.1: expected a machine object with a \"name\", such "
        "as {\"name\": \"a\", \"cores\": 2}");
  json twice = doc;
  twice["machines"][1]["name"] = "a";
  CHECK(load_error(twice.dump()) == "test.json: at machines.1.name: duplicate machine name \"a\"");
  json bad_name = doc;
  bad_name["machines"][1]["name"] = "b c";
  CHECK(load_error(bad_name.dump()) ==
        "test.json: at machines.1.name: invalid name \"b c\"; use letters, digits, _ and -");
  json unplaced = doc;
  unplaced["processes"][3].erase("machine");
  CHECK(load_error(unplaced.dump()) ==
        "test.json: at processes.3: missing \"machine\": the scenario has several "
        "machines; name the one it is on: a, b");
  json unknown = doc;
  unknown["processes"][3]["machine"] = "bb";
  CHECK(load_error(unknown.dump()) ==
        "test.json: at processes.3.machine: unknown machine \"bb\" (did you mean \"b\"?); machines: a, b");
  json channel = doc;
  channel["channels"][0].erase("machine");
  CHECK(load_error(channel.dump()) ==
        "test.json: at channels.0: missing \"machine\": the scenario has several "
        "machines; name the one it is on: a, b");
  json idle = doc;
  idle["machines"].push_back({{"name", "c"}});
  CHECK(load_error(idle.dump()) ==
        "test.json: at processes: no process runs on machine c; give each machine at "
        "least one");
  json same_name = doc;
  same_name["processes"][2]["name"] = "client1";
  CHECK(load_error(same_name.dump()) == "test.json: at processes.2.name: duplicate process name \"client1\"");
  // Every core is a SimGrid actor: the machines together have at most 4096 (64 x 1024 aborted
  // SimGrid, out of memory mappings).
  json huge = doc;
  for (auto& m : huge["machines"]) m["cores"] = 1024;
  for (int i = 0; i < 3; ++i) {
    huge["machines"].push_back({{"name", "x" + std::to_string(i)}, {"cores", 1024}});
    huge["processes"].push_back(
        {{"name", "q" + std::to_string(i)}, {"machine", "x" + std::to_string(i)}, {"script", json::array()}});
  }
  CHECK(load_error(huge.dump()) ==
        "test.json: at machines: the machines have 5120 cores in all; at most 4096 are "
        "simulated in one run (each core is a SimGrid actor)");
  // Affinity is checked against the process's own machine.
  json affinity = doc;
  affinity["processes"][0]["affinity"] = {1};
  CHECK(load_error(affinity.dump()) ==
        "test.json: at processes.0.affinity.0: core 1 does not exist; the machine has cores 0 to 0");
  // Each machine has its own clock: times are read at its frequency.
  json clocks = doc;
  clocks["machines"][1]["frequency"] = "2GHz";
  clocks["processes"][2]["arrival"] = "1us";
  clocks["processes"][0]["arrival"] = "1us";
  auto scenario = load_scenario_text(clocks.dump(), "test.json", {});
  CHECK(scenario->machines[0].processes[0]->arrival == 1000);
  CHECK(scenario->machines[1].processes[0]->arrival == 2000);
  // One machine may still name itself, and a single machine needs no "machine" on processes.
  auto named = load_scenario_text(
      R"({"machine": {"name": "box"}, "processes": [{"name": "p", "machine": "box", "script": []}]})",
      "test.json", {});
  CHECK(named->model().name == "box");
  CHECK(load_error(R"({"processes": [{"name": "p", "machine": "box", "script": []}]})") ==
        "test.json: at processes.0.machine: unknown machine \"box\"; machines: machine");
}

TEST_CASE("machines: --set reaches one machine of the list") {
  LoadOptions options;
  options.sets = {"machines.1.cores=4"};
  auto scenario = load_scenario_text(two_machines().dump(), "test.json", options);
  CHECK(scenario->machines[1].cores == 4);
  CHECK(scenario->machines[0].cores == 1);
  LoadOptions by_name;
  by_name.sets = {"machines.a.frequency=2GHz"};
  CHECK(load_scenario_text(two_machines().dump(), "test.json", by_name)->machines[0].hz == 2e9);
  LoadOptions one_machine_form;
  one_machine_form.sets = {"machine.cores=4"};
  CHECK_THROWS_WITH(load_scenario_text(two_machines().dump(), "test.json", one_machine_form),
                    "--set machine.cores=4: test.json lists several \"machines\"; set one of them, such as "
                    "machines.0.cores=4");
}

TEST_CASE("machines: the command line reports each machine") {
  TempDir dir("machines");
  std::string file = dir.write("two.json", two_machines().dump());
  auto validate = cli({"validate", file});
  CHECK(validate.status == 0);
  CHECK(validate.out == file + ": valid (2 machines, 4 process declarations, 4 threads, 3 cores)\n");

  auto run =
      cli({"run", file, "--out", (dir.path / "out").string(), "--trace", (dir.path / "t.json").string()});
  CHECK(run.status == 0);
  CHECK(run.err.empty());
  // The scenario's heading once, then a section per machine.
  CHECK(run.out.find("ipcsim ") == 0);
  CHECK(run.out.find("ipcsim ", 1) == std::string::npos);
  auto a = run.out.find("\n=== machine a ===\nmachine: 1 core at 1GHz");
  auto b = run.out.find("\n=== machine b ===\nmachine: 2 cores at 1GHz");
  CHECK(a != std::string::npos);
  CHECK(b != std::string::npos);
  CHECK(a < b);

  json summary = json::parse(slurp(dir.path / "out/summary.json"));
  CHECK(summary.contains("context"));
  REQUIRE(summary.at("machines").size() == 2);
  CHECK(summary["machines"][0]["machine"] == "a");
  CHECK(summary["machines"][1]["machine"] == "b");
  CHECK(summary["machines"][0]["intervals"][0]["count"] == 20);
  CHECK(summary["machines"][1]["intervals"][0]["count"] == 30);
  std::string records = slurp(dir.path / "out/records.csv");
  CHECK(records.rfind(
            "machine,interval,thread,start_cycle,end_cycle,cycles,bytes,ns,begin_thread\na,rtt,client1,",
            0) == 0);
  CHECK(records.find("\nb,rtt,client2,") != std::string::npos);
  CHECK(slurp(dir.path / "out/threads.csv").rfind("machine,thread,process,", 0) == 0);
  CHECK(slurp(dir.path / "out/breakdown.csv").rfind("machine,thread,activity,", 0) == 0);
  // A trace per machine, named after it.
  CHECK(fs::exists(dir.path / "t.a.json"));
  CHECK(fs::exists(dir.path / "t.b.json"));
  CHECK(!fs::exists(dir.path / "t.json"));
  CHECK(json::parse(slurp(dir.path / "t.b.json")).contains("traceEvents"));
}
