// Scenario loader: every mistake a user can make in a scenario file or with --set gets a message
// naming the file, the place and what would have been accepted. These tests pin those messages.
#include "costs.hpp"
#include "error.hpp"
#include "harness.hpp"
#include "params.hpp"
#include "scenario.hpp"
#include "sched.hpp"
#include "script.hpp"

#include <algorithm>
#include <doctest/doctest.h>
#include <filesystem>
#include <fstream>
#include <unistd.h>

using ipcsim::json;

namespace {

const std::string kCompute = R"({"op": "compute", "time": 100})";

// A scenario with one process running `ops` (the inside of a JSON list) and `extra` top-level keys.
std::string with_script(const std::string& ops, const std::string& extra = "") {
  return R"({"processes": [{"name": "p", "script": [)" + ops + "]}]" + (extra.empty() ? "" : ", " + extra) +
         "}";
}

// A scenario with one trivial process and the given "machine" object text.
std::string with_machine(const std::string& machine) {
  return with_script(kCompute, "\"machine\": " + machine);
}

// A scenario with the given processes list text.
std::string with_processes(const std::string& processes) { return R"({"processes": )" + processes + "}"; }

std::unique_ptr<ipcsim::Scenario> load(const std::string& text, std::vector<std::string> sets = {},
                                       std::optional<std::uint64_t> seed = std::nullopt) {
  ipcsim::LoadOptions options;
  options.sets = std::move(sets);
  options.seed = seed;
  return ipcsim::load_scenario_text(text, "test.json", options);
}

// The UserError message loading `text` gives, or "<no error>". Any other exception fails the test
// (it would be an internal error reaching the user).
std::string load_error(const std::string& text, std::vector<std::string> sets = {}) {
  try {
    load(text, std::move(sets));
  } catch (const ipcsim::UserError& e) {
    return e.what();
  } catch (const std::exception& e) {
    FAIL("not a UserError: " << std::string(e.what()));
  }
  return "<no error>";
}

std::string set_error(json doc, const std::string& assignment) {
  try {
    ipcsim::apply_set(doc, assignment);
  } catch (const ipcsim::UserError& e) {
    return e.what();
  } catch (const std::exception& e) {
    FAIL("not a UserError: " << std::string(e.what()));
  }
  return "<no error>";
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

const std::string kTimeForms =
    R"(a whole number of cycles or a duration such as "1.5us", "10ms", "300ns", "20 cycles")";
// Every registered op, sorted (mechanisms add their own; the message lists them all).
// (A function: the registry fills during static initialisation of other files.)
std::string ops_list() { return ipcsim::join_list(ipcsim::op_names()); }

// A private directory under the system temp directory, removed at the end of the test.
struct TempDir {
  std::filesystem::path path;
  TempDir() {
    path = std::filesystem::temp_directory_path() / ("ipcsim_test_loader_" + std::to_string(::getpid()));
    std::filesystem::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  std::string write(const std::string& name, const std::string& text) const {
    std::ofstream(path / name) << text;
    return (path / name).string();
  }
};

std::string read_text(const std::string& file) {
  std::ifstream in(file);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// A copy of the teaching preset with `from` replaced by `to` (to make a broken preset file).
std::string teaching_preset_with(const std::string& from, const std::string& to) {
  std::string text = read_text(IPCSIM_SOURCE_DIR "/models/costs/teaching.json");
  auto at = text.find(from);
  REQUIRE(at != std::string::npos);
  return text.replace(at, from.size(), to);
}

} // namespace

// ---- JSON syntax -------------------------------------------------------------------------------

TEST_CASE("loader: JSON syntax error names line and column") {
  CHECK(load_error(R"({"processes": })") ==
        "test.json:1:15: JSON syntax error: syntax error while parsing value - unexpected '}'; expected "
        "'[', '{', or a literal");
  CHECK(load_error("{\n  \"processes\": [\n    {\"name\": \"p\" \"script\": []}\n  ]\n}") ==
        "test.json:3:25: JSON syntax error: syntax error while parsing object - unexpected string literal; "
        "expected '}'");
}

TEST_CASE("loader: JSON syntax error at end of input") {
  CHECK(load_error("") == "test.json:1:1: JSON syntax error: syntax error while parsing value - unexpected "
                          "end of input; expected '[', '{', or a literal");
  CHECK(load_error(R"({"processes":[1])") ==
        "test.json:1:17: JSON syntax error: syntax error while parsing object - unexpected end of input; "
        "expected '}'");
}

TEST_CASE("fixed: a number too large for a double is an internal error with no place") {
  // Was a bug: nlohmann's parser throws out_of_range 406 ("number overflow parsing '1e400'") where only
  // parse_error was caught, so main() said "internal error (please report it)", exit 70, with no file or
  // place. Fix in sim/lang/scenario.cpp parse_text and apply_set, sim/machine/costs.cpp load_preset;
  // find_number_overflow (sim/common/params.cpp) locates the number.
  const std::string tail = " is too large to read (a number must be below 1.8e308 in magnitude)";
  CHECK(load_error(with_script(R"({"op": "compute", "time": 1e400})")) ==
        "test.json:1:67: at processes.0.script.0.time: number 1e400" + tail);
  CHECK(load_error("{\n  \"seed\": 1,\n  \"params\": {\"n\": [0, [1, -2E+999]]}}") ==
        "test.json:3:27: at params.n.1.1: number -2E+999" + tail);
  CHECK(load_error("1e400") == "test.json:1:1: number 1e400" + tail);
  CHECK(load_error(with_script(kCompute), {"processes.p.script.0.time=1e400"}) ==
        "--set processes.p.script.0.time=1e400: number 1e400" + tail);
  CHECK(set_error(json::object(), "a=[1, 2e308]") == "--set a=[1, 2e308]: number 2e308" + tail);
  // Small numbers are fine: 1e-400 reads as 0.
  CHECK(load_error(with_script(R"({"op": "compute", "time": "${tiny}"})", R"("params": {"tiny": 1e-400})")) ==
        "test.json: at processes.0.script.0.time: invalid value 0.0; expected a whole number of cycles or a "
        "duration such as \"1.5us\", \"10ms\", \"300ns\", \"20 cycles\"");
}

TEST_CASE("fixed: a number too large for a double in a preset file is an internal error") {
  // Was a bug: as above, in sim/machine/costs.cpp load_preset.
  TempDir dir;
  std::string text = teaching_preset_with("\"value\": 100", "\"value\": 1e400");
  auto at = text.find("1e400");
  auto line = std::count(text.begin(), text.begin() + static_cast<long>(at), '\n') + 1;
  auto column = at - text.rfind('\n', at);
  auto file = dir.write("huge.json", text);
  CHECK(load_error(with_machine(R"({"costs": ")" + file + R"("})")) ==
        "preset file \"" + file + "\" (line " + std::to_string(line) + ", column " + std::to_string(column) +
            "): at primitives.trap_enter.value: number 1e400 is too large to read (a number must be below "
            "1.8e308 in magnitude)");
}

TEST_CASE("loader: a scenario must be a JSON object") {
  CHECK(load_error("[1]") == R"(test.json: a scenario is a JSON object with at least "processes")");
}

TEST_CASE("fixed: duplicate JSON keys are silently accepted, the last one winning") {
  // Was a bug: nlohmann's parser keeps the last of two equal keys, so {"cores": 2, "cores": 4} silently runs
  // with 4 cores. Fix in sim/scenario.cpp parse_text (a parser callback rejecting repeated keys).
  CHECK(contains(load_error(with_machine(R"({"cores": 2, "cores": 4})")), "machine.cores"));
  CHECK(contains(load_error(with_machine(R"({"cores": 2, "cores": 4})")), "duplicate"));
}

// ---- Unknown keys ------------------------------------------------------------------------------

TEST_CASE("loader: unknown top-level key, with did-you-mean") {
  CHECK(load_error(with_script(kCompute, R"("sed": 1)")) ==
        R"(test.json: at sed: unknown key "sed" (did you mean "seed"?) in the scenario; accepted keys: )"
        "description, params, seed, machine, machines, channels, processes");
}

TEST_CASE("loader: unknown machine key, with did-you-mean") {
  CHECK(
      load_error(with_machine(R"({"core": 2})")) ==
      R"(test.json: at machine.core: unknown key "core" (did you mean "cores"?) in machine; accepted keys: )"
      "name, cores, frequency, frequency_scaling, costs, scheduler, jitter, irq_every, irq_handler");
}

TEST_CASE("loader: unknown process key, with did-you-mean") {
  CHECK(load_error(with_processes(R"([{"name": "p", "arival": 1, "script": []}])")) ==
        R"(test.json: at processes.0.arival: unknown key "arival" (did you mean "arrival"?) in process; )"
        "accepted keys: name, machine, count, affinity, arrival, priority, working_set_pages, spawned, uid, "
        "gid, "
        "sigpipe, "
        "script, threads");
}

TEST_CASE("loader: unknown thread key") {
  CHECK(load_error(with_processes(
            R"([{"name": "p", "threads": [{"name": "t", "affinity": [0], "script": []}]}])")) ==
        R"(test.json: at processes.0.threads.0.affinity: unknown key "affinity" in thread; accepted keys: )"
        "name, count, priority, script");
  CHECK(contains(load_error(with_processes(R"([{"name": "p", "threads": [{"name": "t", "scrip": []}]}])")),
                 R"(at processes.0.threads.0.scrip: unknown key "scrip" (did you mean "script"?))"));
}

TEST_CASE("loader: unknown op, with did-you-mean and the accepted ops") {
  CHECK(load_error(with_script(R"({"op": "comput", "time": 100})")) ==
        R"(test.json: at processes.0.script.0.op: unknown op "comput" (did you mean "compute"?); accepted )"
        "ops: " +
            ops_list());
  CHECK(load_error(with_script(R"({"op": "xyzzy"})")) ==
        R"(test.json: at processes.0.script.0.op: unknown op "xyzzy"; accepted ops: )" + ops_list());
}

TEST_CASE("loader: unknown op field, with did-you-mean") {
  CHECK(load_error(with_script(R"({"op": "compute", "time": 100, "tme": 3})")) ==
        R"(test.json: at processes.0.script.0.tme: unknown key "tme" (did you mean "time"?) in compute op; )"
        "accepted keys: op, time");
  CHECK(load_error(with_script(R"({"op": "yield", "time": 3})")) ==
        R"(test.json: at processes.0.script.0.time: unknown key "time" in yield op; accepted keys: op)");
}

TEST_CASE("loader: unknown key inside a nested repeat body names the nested path") {
  CHECK(
      contains(load_error(with_script(R"({"op": "repeat", "count": 2, "body": [)" + kCompute +
                                      R"(, {"op": "sleep", "tim": 5}]})")),
               R"(test.json: at processes.0.script.0.body.1.tim: unknown key "tim" (did you mean "time"?))"));
}

TEST_CASE("loader: op missing or not an object") {
  CHECK(load_error(with_script(R"({"time": 100})")) ==
        R"(test.json: at processes.0.script.0: missing "op"; accepted ops: )" + ops_list());
  CHECK(
      load_error(with_script("5")) ==
      R"(test.json: at processes.0.script.0: expected an op object such as {"op": "compute", "time": 1000})");
}

TEST_CASE("fixed: an op name that is not a string is reported as missing") {
  // Was a bug: {"op": 5} says 'missing "op"' though "op" is there; the message should show the bad value.
  // Fix in sim/script.cpp compile_ops (the `!op.at("op").is_string()` branch).
  std::string message = load_error(with_script(R"({"op": 5})"));
  CHECK(contains(message, "processes.0.script.0.op"));
  CHECK(!contains(message, "missing"));
}

TEST_CASE("loader: missing required op field") {
  CHECK(load_error(with_script(R"({"op": "compute"})")) ==
        R"(test.json: at processes.0.script.0.time: missing required key "time" (time: how long: whole )"
        "cycles, or a duration at the machine clock)");
}

// ---- Wrong types, one per parameter type -----------------------------------------------------------

TEST_CASE("loader: integer fields reject non-integers") {
  CHECK(load_error(with_machine(R"({"cores": 2.5})")) ==
        "test.json: at machine.cores: invalid value 2.5; expected a whole number");
  CHECK(load_error(with_machine(R"({"cores": "4"})")) ==
        R"(test.json: at machine.cores: invalid value "4"; expected a whole number)");
  CHECK(load_error(with_processes(R"([{"name": "p", "count": true, "script": []}])")) ==
        "test.json: at processes.0.count: invalid value true; expected a whole number");
}

TEST_CASE("loader: time fields reject malformed durations") {
  CHECK(load_error(with_script(R"({"op": "compute", "time": 1.5})")) ==
        "test.json: at processes.0.script.0.time: invalid value 1.5; expected " + kTimeForms);
  CHECK(load_error(with_script(R"({"op": "compute", "time": "5 fortnights"})")) ==
        R"(test.json: at processes.0.script.0.time: invalid value "5 fortnights"; expected )" + kTimeForms);
  CHECK(load_error(with_script(R"({"op": "sleep", "time": "1.5 cycles"})")) ==
        R"(test.json: at processes.0.script.0.time: invalid value "1.5 cycles"; expected )" + kTimeForms);
  CHECK(load_error(with_script(R"({"op": "sleep", "time": [1]})")) ==
        R"(test.json: at processes.0.script.0.time: invalid value [1]; expected )" + kTimeForms);
}

TEST_CASE("loader: negative times are rejected") {
  CHECK(load_error(with_script(R"({"op": "compute", "time": -5})")) ==
        "test.json: at processes.0.script.0.time: invalid value -5; expected " + kTimeForms);
  CHECK(load_error(with_processes(R"([{"name": "p", "arrival": "-1ms", "script": []}])")) ==
        R"(test.json: at processes.0.arrival: invalid value "-1ms"; expected )" + kTimeForms);
}

TEST_CASE("fixed: a cycle count beyond 64 bits is accepted and silently wraps") {
  // Was a bug: "1e20 cycles" passes (the 9e15 limit only guards durations) and the out-of-range double to
  // integer cast is undefined behaviour: the compute op silently ran 0 cycles. Fix in sim/units.cpp
  // parse_time_cycles, the "cycles" branch (apply the same > 9e15 limit).
  CHECK(contains(load_error(with_script(R"({"op": "compute", "time": "1e20 cycles"})")),
                 "at processes.0.script.0.time: invalid value \"1e20 cycles\""));
}

TEST_CASE("loader: frequency fields reject malformed frequencies") {
  const std::string accepted =
      R"(expected a frequency such as "3GHz", "2.4GHz", "12.5MHz" or a number of Hz)";
  CHECK(load_error(with_machine(R"({"frequency": "3 GHZ"})")) ==
        R"(test.json: at machine.frequency: invalid value "3 GHZ"; )" + accepted);
  CHECK(load_error(with_machine(R"({"frequency": 0})")) ==
        "test.json: at machine.frequency: invalid value 0; expected a frequency from 1kHz to 100GHz");
  CHECK(load_error(with_machine(R"({"frequency": true})")) ==
        "test.json: at machine.frequency: invalid value true; " + accepted);
}

TEST_CASE("fixed: a huge machine frequency is accepted and the run never ends") {
  // Was a bug: frequency has no upper bound and defaults are never checked against the clock: at "1e10GHz"
  // the default rr quantum "10ms" exceeds the exact range, read_time_cycles dereferences an empty
  // optional, and `ipcsim run` hangs. Fix in sim/params.cpp resolve_object (check defaults too, with
  // check_value) and/or a `max` on machine.frequency in sim/scenario.cpp machine_table.
  CHECK(contains(load_error(with_machine(R"({"frequency": "1e10GHz"})")), "machine"));
}

TEST_CASE("fixed: a tiny machine frequency makes the default quantum 0 cycles and the run hangs") {
  // Was a bug: at "10Hz" the default rr quantum "10ms" rounds to 0 cycles, below the declared minimum 1,
  // but defaults are not checked, and `ipcsim run` with two processes livelocks. Fix in
  // sim/params.cpp resolve_object (check defaults with check_value as well). Clocks now start at 1 kHz,
  // where every built-in default time is at least a cycle, so "10Hz" is refused as a frequency, and the
  // check of defaults is exercised on a declaration of its own.
  CHECK(load_error(with_machine(R"({"frequency": "10Hz"})")) ==
        R"(test.json: at machine.frequency: invalid value "10Hz"; expected a frequency from 1kHz to 100GHz)");
  ipcsim::ParamTable table{"t", "", {{"quantum", ipcsim::ParamType::Time, "10us", "", "a slice", 1.0}}};
  std::string message = "<no error>";
  try {
    ipcsim::resolve_object(json::object(), "machine.scheduler", table, {"test.json", 1e3});
  } catch (const ipcsim::UserError& e) {
    message = e.what();
  }
  CHECK(message == R"(test.json: at machine.scheduler.quantum: invalid value "10us"; expected a value >= 1 )"
                   R"((this is the default; at 1kHz set "quantum" explicitly))");
}

TEST_CASE("fixed: a time beyond the clock's exact range hangs the run") {
  // Was a bug: an integer time had no upper bound, and a duration only 9e15 cycles: {"op": "compute",
  // "time": 9007199254740993} (2^53 + 1) hung `ipcsim run`, since SimGrid's clock, a double, cannot reach
  // that cycle. Fix in sim/common/params.cpp check_time and sim/common/units.cpp parse_time_cycles: every
  // time is at most kMaxTimeCycles = 2^50 cycles.
  const std::string at_1ghz = R"(; expected a time of at most 1125899906842624 cycles (2^50), which is )"
                              R"("312.749h" at 1GHz)";
  CHECK(load_error(with_script(R"({"op": "compute", "time": 9007199254740993})")) ==
        "test.json: at processes.0.script.0.time: invalid value 9007199254740993" + at_1ghz);
  CHECK(load_error(with_script(R"({"op": "compute", "time": 18446744073709551615})")) ==
        "test.json: at processes.0.script.0.time: invalid value 18446744073709551615" + at_1ghz);
  CHECK(load_error(with_script(R"({"op": "sleep", "time": 1125899906842625})")) ==
        "test.json: at processes.0.script.0.time: invalid value 1125899906842625" + at_1ghz);
  CHECK(load_error(with_script(R"({"op": "sleep", "time": 1125899906842624})")) == "<no error>");
  CHECK(load_error(with_script(R"({"op": "sleep", "time": "10000000000s"})")) ==
        R"(test.json: at processes.0.script.0.time: invalid value "10000000000s")" + at_1ghz);
  CHECK(load_error(with_script(R"({"op": "sleep", "time": "1125899906842625 cycles"})")) ==
        R"(test.json: at processes.0.script.0.time: invalid value "1125899906842625 cycles")" + at_1ghz);
  CHECK(load_error(with_script(R"({"op": "sleep", "time": "1e300h"})")) ==
        R"(test.json: at processes.0.script.0.time: invalid value "1e300h")" + at_1ghz);
  CHECK(load_error(with_script(R"({"op": "sleep", "time": "312.749h"})")) == "<no error>");
  CHECK(load_error(with_script(R"({"op": "sleep", "time": "312.75h"})")) ==
        R"(test.json: at processes.0.script.0.time: invalid value "312.75h")" + at_1ghz);
  // Every time field, at the machine's clock.
  CHECK(load_error(with_processes(R"([{"name": "p", "arrival": "105h", "script": []}], )"
                                  R"("machine": {"frequency": "3GHz"})")) ==
        R"(test.json: at processes.0.arrival: invalid value "105h"; expected a time of at most )"
        R"(1125899906842624 cycles (2^50), which is "104.249h" at 3GHz)");
  CHECK(load_error(with_machine(R"({"scheduler": {"policy": "mlfq", "quantum": ["1ms", "400h"]}})")) ==
        R"(test.json: at machine.scheduler.quantum.1: invalid value "400h")" + at_1ghz);
  CHECK(load_error(with_machine(R"({"scheduler": {"policy": "mlfq", "boost_period": "400h"}})")) ==
        R"(test.json: at machine.scheduler.boost_period: invalid value "400h")" + at_1ghz);
  CHECK(load_error(with_script(R"({"op": "recv", "channel": "c", "bytes": 8, "timeout": "400h"})",
                               R"("channels": [{"name": "c", "mechanism": "pipe"}])")) ==
        R"(test.json: at processes.0.script.0.timeout: invalid value "400h")" + at_1ghz);
  CHECK(load_error(with_machine(R"({"frequency": "100GHz"})"), {"processes.0.script.0.time=3.2h"}) ==
        R"(--set processes.0.script.0.time=3.2h: invalid value "3.2h"; expected a time of at most )"
        R"(1125899906842624 cycles (2^50), which is "3.127h" at 100GHz (at processes.0.script.0.time in )"
        "test.json)");
}

TEST_CASE("fixed: a frequency out of range gets the message for a malformed one") {
  // Was a bug: "1e30Hz" was refused with 'expected a frequency such as "3GHz" ...', though it is well
  // formed. Fix in sim/common/params.cpp check_value (ParamType::Frequency): the range, 1 kHz to 100 GHz
  // (units.hpp), has its own message; and a preset file's frequency is held to it too.
  const std::string range = "; expected a frequency from 1kHz to 100GHz";
  CHECK(load_error(with_machine(R"({"frequency": "1e30Hz"})")) ==
        R"(test.json: at machine.frequency: invalid value "1e30Hz")" + range);
  CHECK(load_error(with_machine(R"({"frequency": "101GHz"})")) ==
        R"(test.json: at machine.frequency: invalid value "101GHz")" + range);
  CHECK(load_error(with_machine(R"({"frequency": 999})")) ==
        "test.json: at machine.frequency: invalid value 999" + range);
  CHECK(load_error(with_machine(R"({"frequency": "0GHz"})")) ==
        R"(test.json: at machine.frequency: invalid value "0GHz")" + range);
  CHECK(load_error(with_machine(R"({"frequency": "1kHz"})")) == "<no error>");
  CHECK(load_error(with_machine(R"({"frequency": "100GHz"})")) == "<no error>");
  CHECK(load_error(with_machine(R"({"frequency": 1e11})")) == "<no error>");
  CHECK(load_error(with_script(kCompute), {"machine.frequency=1e30Hz"}) ==
        R"(--set machine.frequency=1e30Hz: invalid value "1e30Hz"; expected a frequency from 1kHz to 100GHz )"
        "(at machine.frequency in test.json)");
  TempDir dir;
  auto file = dir.write("fast.json", teaching_preset_with("\"1GHz\"", "\"1e30Hz\""));
  CHECK(load_error(with_machine(R"({"costs": ")" + file + R"("})")) ==
        "test.json: at machine.costs.preset: preset file \"" + file +
            "\": frequency must be from 1kHz to 100GHz, got \"1e30Hz\"");
}

TEST_CASE("loader: size fields reject malformed sizes") {
  const std::string ops = R"({"op": "begin", "name": "x"}, {"op": "end", "name": "x", "bytes": )";
  CHECK(load_error(with_script(ops + R"("4KB!"})")) ==
        R"(test.json: at processes.0.script.1.bytes: invalid value "4KB!"; expected a whole number of )"
        R"(bytes or a size such as "4KiB", "1MiB", "512B")");
  CHECK(contains(load_error(with_script(ops + "-1}")), "at processes.0.script.1.bytes: invalid value -1;"));
  CHECK(contains(load_error(with_script(ops + R"("1.5B"})")), "invalid value \"1.5B\";"));
}

TEST_CASE("loader: boolean fields reject non-booleans") {
  CHECK(load_error(with_machine(R"({"costs": {"tagged_tlb": "yes"}})")) ==
        R"(test.json: at machine.costs.tagged_tlb: invalid value "yes"; expected true or false)");
}

TEST_CASE("loader: string fields reject non-strings and empty strings") {
  CHECK(load_error(with_processes(R"([{"name": 5, "script": []}])")) ==
        "test.json: at processes.0.name: invalid value 5; expected a non-empty string");
  CHECK(load_error(with_script(R"({"op": "begin", "name": ""})")) ==
        R"(test.json: at processes.0.script.0.name: invalid value ""; expected a non-empty string)");
}

TEST_CASE("loader: choice values name the accepted choices") {
  // No built-in table declares a choice yet; check the declaration machinery directly.
  ipcsim::ParamSpec spec{"mode", ipcsim::ParamType::Choice, "fast", "", "how", {}, {}, {"fast", "slow"}};
  ipcsim::ReadContext ctx{"test.json", 1e9};
  auto message = [&](const json& value) {
    try {
      ipcsim::check_value(value, "machine.mode", spec, ctx);
    } catch (const ipcsim::UserError& e) {
      return std::string(e.what());
    }
    return std::string("<no error>");
  };
  CHECK(message("fast") == "<no error>");
  CHECK(message("fats") ==
        R"(test.json: at machine.mode: unknown value "fats" (did you mean "fast"?); accepted: fast, slow)");
  CHECK(message(3) == "test.json: at machine.mode: invalid value 3; expected one of: fast, slow");
}

TEST_CASE("loader: core lists reject non-lists, empty lists and negative cores") {
  CHECK(load_error(with_processes(R"([{"name": "p", "affinity": "0", "script": []}])")) ==
        R"(test.json: at processes.0.affinity: invalid value "0"; expected a non-empty list of core )"
        "indices such as [0, 1]");
  CHECK(load_error(with_processes(R"([{"name": "p", "affinity": [], "script": []}])")) ==
        "test.json: at processes.0.affinity: invalid value []; expected a non-empty list of core indices "
        "such as [0, 1]");
  CHECK(load_error(with_processes(R"([{"name": "p", "affinity": [0, -1], "script": []}])")) ==
        "test.json: at processes.0.affinity.1: invalid value -1; expected a core index (a whole number "
        "from 0)");
}

TEST_CASE("loader: scripts must be lists of ops") {
  CHECK(load_error(with_processes(R"([{"name": "p", "script": {"op": "exit"}}])")) ==
        R"(test.json: at processes.0.script: invalid value {"op":"exit"}; expected a list of ops)");
  CHECK(load_error(with_script(R"({"op": "repeat", "count": 2, "body": 5})")) ==
        "test.json: at processes.0.script.0.body: invalid value 5; expected a list of ops");
}

TEST_CASE("loader: object fields reject other types") {
  CHECK(load_error(with_script(kCompute, R"("machine": 5)")) ==
        "test.json: at machine: invalid value 5; expected an object");
  CHECK(load_error(with_script(kCompute, R"("machine": "big")")) ==
        R"(test.json: at machine: expected an object (machine), got "big")");
  CHECK(load_error(with_processes("[5]")) ==
        "test.json: at processes.0: expected an object (process), got 5");
}

TEST_CASE("loader: processes and threads must be lists of objects") {
  CHECK(load_error("{}") ==
        R"(test.json: at processes: missing required key "processes" (list of objects: the )"
        "processes to run (a list of process objects))");
  CHECK(load_error(with_processes("5")) ==
        "test.json: at processes: invalid value 5; expected a list of objects");
  CHECK(load_error(with_processes(R"([{"name": "p", "threads": 5}])")) ==
        "test.json: at processes.0.threads: invalid value 5; expected a list of objects");
}

// ---- Ranges ------------------------------------------------------------------------------------

TEST_CASE("loader: cores out of range") {
  CHECK(load_error(with_machine(R"({"cores": 0})")) ==
        "test.json: at machine.cores: invalid value 0; expected a value >= 1");
  CHECK(load_error(with_machine(R"({"cores": 2000})")) ==
        "test.json: at machine.cores: invalid value 2000; expected a value <= 1024");
}

TEST_CASE("loader: other ranges") {
  CHECK(load_error(with_script(kCompute, R"("seed": -1)")) ==
        "test.json: at seed: invalid value -1; expected a value >= 0");
  CHECK(load_error(with_script(R"({"op": "repeat", "count": -1, "body": []})")) ==
        "test.json: at processes.0.script.0.count: invalid value -1; expected a value >= 0");
  CHECK(load_error(with_processes(R"([{"name": "p", "count": 0, "script": []}])")) ==
        "test.json: at processes.0.count: invalid value 0; expected a value >= 1");
  CHECK(load_error(with_machine(R"({"scheduler": {"policy": "rr", "quantum": 0}})")) ==
        "test.json: at machine.scheduler.quantum: invalid value 0; expected a value >= 1");
  CHECK(load_error(with_machine(R"({"scheduler": {"policy": "eevdf", "slice": 0}})")) ==
        "test.json: at machine.scheduler.slice: invalid value 0; expected a value >= 1");
  CHECK(load_error(with_machine(R"({"scheduler": {"policy": "eevdf", "tick": "0ms"}})")) ==
        "test.json: at machine.scheduler.tick: invalid value \"0ms\"; expected a value >= 1");
  CHECK(load_error(with_machine(R"({"scheduler": {"policy": "mlfq", "levels": 65}})")) ==
        "test.json: at machine.scheduler.levels: invalid value 65; expected a value <= 64");
  CHECK(load_error(with_machine(R"({"costs": {"copy_bytes_per_cycle": 0}})")) ==
        "test.json: at machine.costs.copy_bytes_per_cycle: invalid value 0; expected a value >= 1e-06");
}

TEST_CASE("loader: too many threads") {
  CHECK(load_error(with_processes(R"([{"name": "p", "count": 10000000, "threads": [{"name": "t", "count": )"
                                  R"(10, "script": []}]}])")) ==
        "test.json: at processes.0: the scenario starts 100000000 threads, more than the limit of 1000000 "
        "(--limit threads=N raises it)");
}

// ---- Schedulers --------------------------------------------------------------------------------

TEST_CASE("loader: unknown scheduler policy, with did-you-mean") {
  CHECK(load_error(with_machine(R"({"scheduler": {"policy": "fifoo"}})")) ==
        R"(test.json: at machine.scheduler.policy: unknown scheduler policy "fifoo" (did you mean "fifo"?); )"
        "accepted: fifo, rr, priority, mlfq, eevdf");
  CHECK(load_error(with_machine(R"({"scheduler": "robin"})")) ==
        R"(test.json: at machine.scheduler.policy: unknown scheduler policy "robin"; accepted: fifo, rr, )"
        "priority, mlfq, eevdf");
}

TEST_CASE("fixed: a scheduler policy that is not a string escapes as an internal error") {
  // Was a bug: {"policy": 5} makes json::value("policy", "rr") throw nlohmann type_error 302, which reaches
  // main() as "internal error" (exit 70). Fix in sim/scenario.cpp load_scenario_text, where
  // scheduler_in.value("policy", "rr") is read: check that policy is a string first.
  CHECK(contains(load_error(with_machine(R"({"scheduler": {"policy": 5}})")), "machine.scheduler.policy"));
}

TEST_CASE("loader: scheduler must be an object or a policy name") {
  CHECK(load_error(with_machine(R"({"scheduler": 5})")) ==
        "test.json: at machine.scheduler: invalid value 5; expected an object");
}

TEST_CASE("loader: scheduler parameter not valid for the policy") {
  CHECK(load_error(with_machine(R"({"scheduler": {"policy": "fifo", "quantum": "1ms"}})")) ==
        R"(test.json: at machine.scheduler.quantum: unknown key "quantum" in machine.scheduler (fifo); )"
        "accepted keys: policy");
  CHECK(load_error(with_machine(R"({"scheduler": {"policy": "rr", "levels": 3}})")) ==
        R"(test.json: at machine.scheduler.levels: unknown key "levels" in machine.scheduler (rr); )"
        "accepted keys: policy, quantum");
}

TEST_CASE("loader: mlfq quantum list length must match the levels") {
  CHECK(load_error(with_machine(
            R"({"scheduler": {"policy": "mlfq", "levels": 2, "quantum": ["1ms", "2ms", "3ms"]}})")) ==
        "test.json: at machine.scheduler.quantum: gives 3 quanta for 2 levels; give one per level, or a "
        "single time for all");
  CHECK(load_error(with_machine(R"({"scheduler": {"policy": "mlfq", "quantum": []}})")) ==
        "test.json: at machine.scheduler.quantum: invalid value []; expected a non-empty list of times");
  CHECK(load_error(with_machine(R"({"scheduler": {"policy": "mlfq", "quantum": ["1ms", "x"]}})")) ==
        R"(test.json: at machine.scheduler.quantum.1: invalid value "x"; expected )" + kTimeForms);
}

TEST_CASE("fixed: mlfq levels alone blames a quantum the user never wrote") {
  // Was a bug: {"policy": "mlfq", "levels": 5} fails with 'at machine.scheduler.quantum: gives 3 quanta for
  // 5 levels' -- the 3 quanta are the default, which the message does not say. Fix in sim/scenario.cpp
  // load_scenario_text (the mlfq check): say the default has 3, or extend the default to `levels`.
  CHECK(contains(load_error(with_machine(R"({"scheduler": {"policy": "mlfq", "levels": 5}})")), "default"));
}

// ---- Costs -------------------------------------------------------------------------------------

TEST_CASE("loader: unknown preset, with did-you-mean") {
  std::vector<std::string> presets;
  for (const auto& preset : ipcsim::list_presets()) presets.push_back(preset.name);
  CHECK(load_error(with_machine(R"({"costs": "teachin"})")) ==
        R"(test.json: at machine.costs.preset: unknown cost preset "teachin" (did you mean "teaching"?); )"
        "built-in presets: " +
            ipcsim::join_list(presets) + " (or a path to a preset file ending in .json)");
  CHECK(contains(ipcsim::join_list(presets), "ideal, "));
  CHECK(contains(load_error(with_machine(R"({"costs": {"preset": "idael"}})")), "(did you mean \"ideal\"?)"));
}

TEST_CASE("loader: preset file that does not exist") {
  CHECK(load_error(with_machine(R"({"costs": "/nonexistent/dir/x.json"})")) ==
        R"(test.json: at machine.costs.preset: cannot open cost preset file "/nonexistent/dir/x.json": )"
        "No such file or directory");
}

TEST_CASE("loader: a preset file is loaded and checked as strictly as a scenario") {
  TempDir dir;
  auto good = dir.write("good.json", read_text(IPCSIM_SOURCE_DIR "/models/costs/teaching.json"));
  auto scenario = load(with_machine(R"({"costs": ")" + good + R"("})"));
  CHECK(scenario->model().costs.cycles(ipcsim::Primitive::trap_enter) == 100);

  auto bad_json = dir.write("bad.json", "{");
  CHECK(contains(load_error(with_machine(R"({"costs": ")" + bad_json + R"("})")),
                 "test.json: at machine.costs.preset: preset file \"" + bad_json + "\" is not valid JSON"));
  auto unknown = dir.write("unknown.json", teaching_preset_with("\"trap_exit\"", "\"trap_exti\""));
  CHECK(contains(load_error(with_machine(R"({"costs": ")" + unknown + R"("})")),
                 "preset file \"" + unknown +
                     "\": unknown primitive \"trap_exti\" (did you mean \"trap_exit\"?)"));
  auto extra = dir.write("extra.json", teaching_preset_with("\"tagged_tlb\"", "\"taged_tlb\""));
  CHECK(contains(
      load_error(with_machine(R"({"costs": ")" + extra + R"("})")),
      "unknown key \"taged_tlb\"; accepted: description, frequency, tagged_tlb, time_slice, primitives"));
  auto negative = dir.write("negative.json", teaching_preset_with("\"value\": 100", "\"value\": -1"));
  CHECK(contains(load_error(with_machine(R"({"costs": ")" + negative + R"("})")),
                 "primitive \"trap_enter\" must be a number >= 0"));
}

TEST_CASE("loader: a preset's time_slice is the rr quantum unless the scenario gives one") {
  TempDir dir;
  const std::string slice = R"("time_slice": {"value": "4ms", "source": "test"}, "tagged_tlb")";
  auto file = dir.write("slice.json", teaching_preset_with("\"tagged_tlb\"", slice));
  auto quantum = [](const std::unique_ptr<ipcsim::Scenario>& s) {
    return s->model().scheduler_params.at("quantum").dump();
  };
  // rr without a quantum: the preset's slice (teaching's clock, 1 GHz: 4 ms is 4,000,000 cycles).
  auto rr = load(with_machine(R"({"costs": ")" + file + R"("})"));
  CHECK(quantum(rr) == "\"4ms\"");
  CHECK(ipcsim::read_time_cycles(rr->model().scheduler_params.at("quantum"), rr->model().hz) == 4'000'000);
  // The scenario's own quantum wins; machine.costs.time_slice overrides the preset's.
  CHECK(quantum(load(with_machine(R"({"costs": ")" + file +
                                  R"(", "scheduler": {"policy": "rr", "quantum": "1ms"}})"))) == "\"1ms\"");
  CHECK(quantum(load(with_machine(R"({"costs": {"preset": ")" + file + R"(", "time_slice": "2ms"}})"))) ==
        "\"2ms\"");
  // eevdf's tick is the preset's slice too: on Linux, what the busy-poll measurement finds.
  auto eevdf = load(with_machine(R"({"costs": ")" + file + R"(", "scheduler": "eevdf"})"));
  CHECK(eevdf->model().scheduler_params.at("tick").dump() == "\"4ms\"");
  CHECK(load(with_machine(R"({"costs": ")" + file + R"(", "scheduler": {"policy": "eevdf", "tick": "1ms"}})"))
            ->model()
            .scheduler_params.at("tick")
            .dump() == "\"1ms\"");
  // Without one: rr's own default. Other policies keep theirs.
  CHECK(quantum(load(with_machine(R"({"costs": "teaching"})"))) == "\"10ms\"");
  CHECK(quantum(load(with_machine(R"({"costs": ")" + file + R"(", "scheduler": "priority"})"))) == "0");
  // Bad values, in the preset file and as an override.
  auto bad = dir.write(
      "bad.json", teaching_preset_with("\"tagged_tlb\"",
                                       R"("time_slice": {"value": "fast", "source": "x"}, "tagged_tlb")"));
  CHECK(contains(load_error(with_machine(R"({"costs": ")" + bad + R"("})")),
                 "preset file \"" + bad +
                     "\": time_slice must be a duration above 0 such as \"4ms\", got \"fast\""));
  auto zero = dir.write(
      "zero.json", teaching_preset_with("\"tagged_tlb\"",
                                        R"("time_slice": {"value": "0ms", "source": "x"}, "tagged_tlb")"));
  CHECK(contains(load_error(with_machine(R"({"costs": ")" + zero + R"("})")),
                 "time_slice must be a duration above 0 such as \"4ms\", got \"0ms\""));
  auto huge =
      dir.write("huge.json",
                teaching_preset_with("\"tagged_tlb\"",
                                     R"("time_slice": {"value": "1000000h", "source": "x"}, "tagged_tlb")"));
  CHECK(contains(load_error(with_machine(R"({"costs": ")" + huge + R"("})")),
                 "got \"1000000h\" (at most 2^50 cycles at the preset's frequency)"));
  CHECK(
      load_error(with_machine(R"({"costs": {"preset": "teaching", "time_slice": "soon"}})")) ==
      R"(test.json: at machine.costs.time_slice: invalid value "soon"; expected a whole number of cycles or a duration such as "1.5us", "10ms", "300ns", "20 cycles")");
}

TEST_CASE("loader: a fractional cycle cost in a preset file names the preset file") {
  TempDir dir;
  auto file = dir.write("frac.json", teaching_preset_with("\"value\": 100", "\"value\": 100.5"));
  CHECK(load_error(with_machine(R"({"costs": ")" + file + R"("})")) ==
        "preset file \"" + file +
            "\": at primitives.trap_enter.value: cycles must be a whole number, got 100.5");
}

TEST_CASE("loader: cost override of an unknown primitive") {
  CHECK(contains(
      load_error(with_machine(R"({"costs": {"trap_entr": 1}})")),
      R"(test.json: at machine.costs.trap_entr: unknown key "trap_entr" (did you mean "trap_enter"?) )"
      "in machine.costs; accepted keys: preset, tagged_tlb, time_slice, idle_exit_spread, idle_states, "
      "trap_enter, "
      "trap_exit,"));
}

TEST_CASE("loader: cycle overrides must be whole numbers") {
  CHECK(load_error(with_machine(R"({"costs": {"trap_enter": 1.5}})")) ==
        "test.json: at machine.costs.trap_enter: invalid value 1.5; expected a whole number");
  CHECK(load_error(with_machine(R"({"costs": {"trap_enter": -1}})")) ==
        "test.json: at machine.costs.trap_enter: invalid value -1; expected a value >= 0");
}

TEST_CASE("fixed: a cost of 2^64 - 1 cycles is accepted and charges 0") {
  // Was a bug: primitives had no upper bound; 18446744073709551615 (in a preset file, an override or a
  // --set) became a double, 2^64, whose conversion back to cycles is undefined: it charged 0. Fix in
  // sim/machine/costs.cpp costs_table and build_cost_model: every cycle-valued primitive is at most
  // kMaxPrimitiveCycles = 2^32 cycles, copy_cache_bytes at most 1 TiB, and a preset file is held to the
  // same bounds.
  CHECK(load_error(with_machine(R"({"costs": {"trap_enter": 18446744073709551615}})")) ==
        "test.json: at machine.costs.trap_enter: invalid value 18446744073709551615; expected a value <= "
        "4294967296");
  CHECK(load_error(with_machine(R"({"costs": {"tlb_refill_per_page": 4294967297}})")) ==
        "test.json: at machine.costs.tlb_refill_per_page: invalid value 4294967297; expected a value <= "
        "4294967296");
  CHECK(load(with_machine(R"({"costs": {"trap_enter": 4294967296}})"))
            ->model()
            .costs.cycles(ipcsim::Primitive::trap_enter) == 4294967296);
  CHECK(load_error(with_machine(R"({"costs": {"cache_l3_bytes": 1099511627777}})")) ==
        "test.json: at machine.costs.cache_l3_bytes: invalid value 1099511627777; expected a value <= "
        "1099511627776");
  CHECK(load_error(with_script(kCompute), {"machine.costs.trap_enter=18446744073709551615"}) ==
        "--set machine.costs.trap_enter=18446744073709551615: invalid value 18446744073709551615; expected a "
        "value <= 4294967296 (at machine.costs.trap_enter in test.json)");
  TempDir dir;
  auto huge =
      dir.write("huge.json", teaching_preset_with("\"value\": 100", "\"value\": 18446744073709551615"));
  CHECK(load_error(with_machine(R"({"costs": ")" + huge + R"("})")) ==
        "preset file \"" + huge +
            "\": at primitives.trap_enter.value: invalid value 18446744073709551615; expected a value <= "
            "4294967296");
  // An override replaces the preset's value before it is checked.
  CHECK(load_error(with_machine(R"({"costs": {"preset": ")" + huge + R"(", "trap_enter": 5}})")) ==
        "<no error>");
  auto slow =
      dir.write("slow.json", teaching_preset_with("\"copy_bytes_per_cycle_uncached\": {\"value\": 1",
                                                  "\"copy_bytes_per_cycle_uncached\": {\"value\": 0"));
  CHECK(load_error(with_machine(R"({"costs": ")" + slow + R"("})")) ==
        "preset file \"" + slow +
            "\": at primitives.copy_bytes_per_cycle_uncached.value: invalid value 0; expected a value >= "
            "1e-06");
}

TEST_CASE("loader: copy rates may not increase from L1 to memory; cache sizes may not decrease") {
  // Raising the memory rate alone: the faster rates it passed are named.
  CHECK(load_error(with_machine(R"({"costs": {"copy_bytes_per_cycle_uncached": 16}})")) ==
        "test.json: at machine.costs.copy_bytes_per_cycle_uncached: copy_bytes_per_cycle_uncached (16 "
        "bytes/cycle, set here) exceeds copy_bytes_per_cycle_l3 (2 bytes/cycle, the preset's): a copy cannot "
        "get faster as its data moves further from the core; the rates must not increase from "
        "copy_bytes_per_cycle to copy_bytes_per_cycle_uncached (set copy_bytes_per_cycle, "
        "copy_bytes_per_cycle_l2, copy_bytes_per_cycle_l3, copy_bytes_per_cycle_remote no lower too)");
  // Issue 10: overriding only copy_bytes_per_cycle names the rates to set with it, the uncached one
  // among them.
  CHECK(load_error(with_machine(R"({"costs": {"preset": "linux-x86", "copy_bytes_per_cycle": 1}})")) ==
        "test.json: at machine.costs.copy_bytes_per_cycle: copy_bytes_per_cycle_l2 (14.83 bytes/cycle, the "
        "preset's) exceeds copy_bytes_per_cycle (1 bytes/cycle, set here): a copy cannot get faster as its "
        "data moves further from the core; the rates must not increase from copy_bytes_per_cycle to "
        "copy_bytes_per_cycle_uncached (set copy_bytes_per_cycle_l2, copy_bytes_per_cycle_l3, "
        "copy_bytes_per_cycle_uncached, copy_bytes_per_cycle_remote no higher too)");
  // All five together are accepted.
  CHECK(load_error(with_machine(R"({"costs": {"preset": "linux-x86", "copy_bytes_per_cycle": 1,
        "copy_bytes_per_cycle_l2": 1, "copy_bytes_per_cycle_l3": 1, "copy_bytes_per_cycle_uncached": 1,
        "copy_bytes_per_cycle_remote": 1}})")) == "<no error>");
  // The remote rate (lines from another core's cache) lies between the L1 and memory rates.
  CHECK(
      load_error(with_machine(R"({"costs": {"copy_bytes_per_cycle_remote": 16}})")) ==
      "test.json: at machine.costs.copy_bytes_per_cycle_remote: copy_bytes_per_cycle_remote (16 bytes/cycle, "
      "set here) exceeds copy_bytes_per_cycle (8 bytes/cycle, the preset's): lines from another core's cache "
      "come no faster than from this core's L1 cache and no slower than from memory: "
      "copy_bytes_per_cycle_remote must lie between copy_bytes_per_cycle_uncached and copy_bytes_per_cycle");
  CHECK(load_error(with_machine(R"({"costs": {"copy_bytes_per_cycle_remote": 0.5}})")) ==
        "test.json: at machine.costs.copy_bytes_per_cycle_remote: copy_bytes_per_cycle_remote (0.5 "
        "bytes/cycle, set here) is below copy_bytes_per_cycle_uncached (1 bytes/cycle, the preset's): lines "
        "from another core's cache come no faster than from this core's L1 cache and no slower than from "
        "memory: copy_bytes_per_cycle_remote must lie between copy_bytes_per_cycle_uncached and "
        "copy_bytes_per_cycle");
  CHECK(load_error(with_machine(R"({"costs": {"cache_l2_bytes": 1000}})")) ==
        "test.json: at machine.costs.cache_l2_bytes: cache_l2_bytes (1000, set here) is smaller than "
        "cache_l1_bytes (65536, the preset's): cache sizes must not decrease from cache_l1_bytes to "
        "cache_l3_bytes");
}

TEST_CASE("loader: costs must be an object or a preset name") {
  CHECK(load_error(with_machine(R"({"costs": 5})")) ==
        "test.json: at machine.costs: invalid value 5; expected an object");
  CHECK(load_error(with_machine(R"({"costs": {"preset": 5}})")) ==
        "test.json: at machine.costs.preset: invalid value 5; expected a non-empty string");
}

// ---- Processes and threads ---------------------------------------------------------------------

TEST_CASE("loader: affinity naming a core that does not exist") {
  CHECK(load_error(
            R"({"machine": {"cores": 2}, "processes": [{"name": "p", "affinity": [0, 3], "script": []}]})") ==
        "test.json: at processes.0.affinity.1: core 3 does not exist; the machine has cores 0 to 1");
}

TEST_CASE("loader: duplicate process names") {
  CHECK(load_error(with_processes(R"([{"name": "p", "script": []}, {"name": "p", "script": []}])")) ==
        R"(test.json: at processes.1.name: duplicate process name "p")");
}

TEST_CASE("loader: duplicate thread names") {
  CHECK(load_error(with_processes(
            R"([{"name": "p", "threads": [{"name": "t", "script": []}, {"name": "t", "script": []}]}])")) ==
        R"(test.json: at processes.0.threads.1.name: duplicate thread name "t" in this process)");
}

TEST_CASE("loader: invalid name characters") {
  CHECK(load_error(with_processes(R"([{"name": "p q", "script": []}])")) ==
        R"(test.json: at processes.0.name: invalid name "p q"; use letters, digits, _ and -)");
  CHECK(load_error(with_processes(R"([{"name": "p[0]", "script": []}])")) ==
        R"(test.json: at processes.0.name: invalid name "p[0]"; use letters, digits, _ and -)");
  CHECK(load_error(with_processes(R"([{"name": "", "script": []}])")) ==
        R"(test.json: at processes.0.name: invalid name ""; use letters, digits, _ and -)");
  CHECK(load_error(with_processes(R"([{"name": "p", "threads": [{"name": "t.x", "script": []}]}])")) ==
        R"(test.json: at processes.0.threads.0.name: invalid name "t.x"; use letters, digits, _ and -)");
}

TEST_CASE("loader: missing names") {
  CHECK(load_error(with_processes(R"([{"script": []}])")) ==
        R"(test.json: at processes.0.name: missing required key "name" (string: unique name (letters, )"
        "digits, _ and -))");
  CHECK(load_error(with_processes(R"([{"name": "p", "threads": [{"script": []}]}])")) ==
        R"(test.json: at processes.0.threads.0.name: missing required key "name" (string: name, unique )"
        "within the process)");
}

TEST_CASE("loader: both script and threads, or neither") {
  CHECK(load_error(with_processes(R"([{"name": "p", "script": [], "threads": []}])")) ==
        R"(test.json: at processes.0: give either "script" or "threads", not both)");
  CHECK(load_error(with_processes(R"([{"name": "p"}])")) ==
        R"(test.json: at processes.0: missing "script" (the ops its thread runs) or "threads")");
  CHECK(load_error(with_processes(R"([{"name": "p", "threads": []}])")) ==
        "test.json: at processes.0.threads: expected at least one thread");
}

TEST_CASE("loader: empty or missing processes") {
  CHECK(load_error(with_processes("[]")) ==
        R"(test.json: at processes: expected a non-empty list of processes, such as [{"name": "p", )"
        R"("script": [...]}])");
}

// ---- ${param} substitution ---------------------------------------------------------------------

TEST_CASE("loader: unknown ${param} lists the declared params") {
  CHECK(load_error(with_script(kCompute, R"("params": {"n": 1, "m": 2}, "description": "x ${nn}")")) ==
        R"(test.json: at description: unknown parameter "${nn}" (did you mean "n"?); params: n, m)");
  CHECK(load_error(with_script(R"({"op": "compute", "time": "${t}"})")) ==
        R"(test.json: at processes.0.script.0.time: unknown parameter "${t}"; the scenario declares no )"
        "params");
}

TEST_CASE("loader: unterminated ${") {
  CHECK(load_error(with_script(kCompute, R"("params": {"n": 1}, "description": "x ${n")")) ==
        R"(test.json: at description: unterminated "${" in "x ${n")");
}

TEST_CASE("loader: params must be an object of plain values") {
  CHECK(load_error(with_script(kCompute, R"("params": {"n": {"a": 1}})")) ==
        "test.json: at params.n: a parameter is a number, string or boolean (without ${...})");
  CHECK(load_error(with_script(kCompute, R"("params": {"n": [1]})")) ==
        "test.json: at params.n: a parameter is a number, string or boolean (without ${...})");
  CHECK(load_error(with_script(kCompute, R"("params": {"n": "${m}", "m": 1})")) ==
        "test.json: at params.n: a parameter is a number, string or boolean (without ${...})");
  CHECK(load_error(with_script(kCompute, R"("params": [1])")) ==
        R"(test.json: at params: expected an object of named values, such as {"n": 10})");
}

TEST_CASE("loader: a param name with a dash keeps its type as a whole value") {
  auto scenario =
      load(with_processes(R"([{"name": "p", "count": "${my-n}", "script": []}], "params": {"my-n": 5})"));
  CHECK(scenario->model().processes.at(0)->count == 5);
}

// ---- Intervals and joins -----------------------------------------------------------------------

TEST_CASE("loader: begin without end") {
  CHECK(
      load_error(with_script(R"({"op": "begin", "name": "x"})")) ==
      R"(test.json: at processes.0.script.0: interval "x" is begun but never ended in the same list of ops)");
}

TEST_CASE("loader: end without begin") {
  CHECK(load_error(with_script(R"({"op": "end", "name": "x"})")) ==
        R"(test.json: at processes.0.script.0: "end" of interval "x" with no "begin" before it in the same )"
        "list of ops");
  CHECK(load_error(with_script(R"({"op": "begin", "name": "x"}, {"op": "repeat", "count": 2, "body": )"
                               R"([{"op": "end", "name": "x"}]})")) ==
        R"(test.json: at processes.0.script.1.body.0: "end" of interval "x" with no "begin" before it in )"
        "the same list of ops");
}

TEST_CASE("loader: interval begun twice") {
  CHECK(
      load_error(with_script(
          R"({"op": "begin", "name": "x"}, {"op": "begin", "name": "x"}, {"op": "end", "name": "x"})")) ==
      R"(test.json: at processes.0.script.1: interval "x" is already open (begun at processes.0.script.0))");
}

TEST_CASE("loader: join of an unknown process") {
  CHECK(
      load_error(with_script(R"({"op": "join", "process": "q"})")) ==
      R"(test.json: at processes.0.script.0.process: unknown process "q" (did you mean "p"?); processes: p)");
  CHECK(load_error(with_script(R"({"op": "join", "process": "server"})")) ==
        R"(test.json: at processes.0.script.0.process: unknown process "server"; processes: p)");
}

// ---- --set -------------------------------------------------------------------------------------

TEST_CASE("--set: missing '='") {
  CHECK(set_error(json::object(), "machine.cores") ==
        "--set machine.cores: expected dotted.path=value, such as machine.cores=4");
  CHECK(set_error(json::object(), "=4") == "--set =4: expected dotted.path=value, such as machine.cores=4");
}

TEST_CASE("--set: empty path segment") {
  const std::string kSegments =
      "; expected names and indices joined by single dots, such as machine.cores or processes.0.count";
  CHECK(set_error(json::object(), "machine..cores=4") ==
        R"(--set machine..cores=4: empty path segment in "machine..cores")" + kSegments);
  CHECK(set_error(json::object(), ".cores=4") ==
        R"(--set .cores=4: empty path segment in ".cores")" + kSegments);
  // Was accepted as machine.cores=2: getline drops a trailing empty segment.
  CHECK(set_error(json::object(), "machine.cores.=2") ==
        R"(--set machine.cores.=2: empty path segment in "machine.cores.")" + kSegments);
}

TEST_CASE("--set: index out of range") {
  json doc = json::parse(with_script(kCompute));
  CHECK(set_error(doc, "processes.3.count=2") ==
        R"(--set processes.3.count=2: index 3 is out of range at "processes" (1 items))");
}

TEST_CASE("fixed: --set with an index beyond unsigned long escapes as an internal error") {
  // Was a bug: std::stoul throws std::out_of_range for "99999999999999999999999", which reaches main() as
  // "internal error: stoul" (exit 70). Fix in sim/scenario.cpp apply_set (the `numeric` branch).
  json doc = json::parse(with_script(kCompute));
  CHECK(contains(set_error(doc, "processes.99999999999999999999999.count=2"), "out of range"));
}

TEST_CASE("--set: unknown item name in an array") {
  json doc =
      json::parse(with_processes(R"([{"name": "client", "script": []}, {"name": "server", "script": []}])"));
  CHECK(set_error(doc, "processes.clinet.count=2") ==
        R"(--set processes.clinet.count=2: no item named "clinet" in "processes"; names: client, server)");
  json nameless = json::parse(R"({"a": [1, 2]})");
  CHECK(set_error(nameless, "a.x=1") == R"(--set a.x=1: no item named "x" in "a"; names: none)");
}

TEST_CASE("--set: setting into a non-object") {
  json doc = json::parse(with_machine(R"({"cores": 2})"));
  CHECK(set_error(doc, "machine.cores.x=1") ==
        R"(--set machine.cores.x=1: "machine.cores" is not an object, cannot set "x" in it)");
}

TEST_CASE("--set: errors reach the loader") {
  CHECK(load_error(with_script(kCompute), {"machine.cores"}) ==
        "--set machine.cores: expected dotted.path=value, such as machine.cores=4");
  CHECK(load_error(with_script(kCompute), {"machine.cpus=4"}) ==
        R"(--set machine.cpus=4: unknown key "cpus" in machine; accepted keys: name, cores, frequency, )"
        "frequency_scaling, costs, scheduler, jitter, irq_every, irq_handler (at machine.cpus in test.json)");
}

TEST_CASE("--set: a bad value is blamed on the --set that wrote it, not on the file") {
  CHECK(load_error(with_script(kCompute), {"machine.cores=0"}) ==
        "--set machine.cores=0: invalid value 0; expected a value >= 1 (at machine.cores in test.json)");
  // A mistake elsewhere in the file is still the file's.
  CHECK(load_error(with_machine(R"({"cores": 0})"), {"machine.frequency=2GHz"}) ==
        "test.json: at machine.cores: invalid value 0; expected a value >= 1");
}

// ---- What loads, and how -----------------------------------------------------------------------

TEST_CASE("loader: defaults are filled in the resolved scenario") {
  auto scenario = load(with_script(kCompute));
  const json& resolved = scenario->resolved;
  CHECK(resolved.at("seed") == 1);
  CHECK(resolved.at("description") == "");
  CHECK(resolved.at("params") == json::object());
  const json& machine = resolved.at("machine");
  CHECK(machine.at("cores") == 1);
  CHECK(machine.at("frequency") == "1GHz"); // the teaching preset's
  CHECK(machine.at("costs").at("preset") == "teaching");
  CHECK(machine.at("scheduler").at("policy") == "rr");
  CHECK(machine.at("scheduler").at("quantum") == "10ms");
  const json& process = resolved.at("processes").at(0);
  CHECK(process.at("count") == 1);
  CHECK(process.at("arrival") == 0);
  CHECK(process.at("priority") == 0);
  CHECK(process.at("working_set_pages") == 16);
  CHECK(!process.contains("affinity"));
  CHECK(scenario->model().cores == 1);
  CHECK(scenario->model().hz == 1e9);
  CHECK(scenario->model().scheduler_policy == "rr");
  CHECK(scenario->model().costs.preset == "teaching");
  CHECK(scenario->model().seed == 1);
  CHECK(scenario->hash == ipcsim::fnv1a64_hex(resolved.dump()));
}

TEST_CASE("loader: policy defaults per scheduler") {
  auto mlfq = load(with_machine(R"({"scheduler": "mlfq"})"));
  CHECK(mlfq->resolved.at("machine").at("scheduler") ==
        json::parse(
            R"({"policy": "mlfq", "levels": 3, "quantum": ["10ms", "20ms", "40ms"], "boost_period": "1s"})"));
  auto priority = load(with_machine(R"({"scheduler": {"policy": "priority"}})"));
  CHECK(priority->resolved.at("machine").at("scheduler").at("quantum") == 0);
  auto fifo = load(with_machine(R"({"scheduler": "fifo"})"));
  CHECK(fifo->resolved.at("machine").at("scheduler") == json::parse(R"({"policy": "fifo"})"));
  // A single time serves every mlfq level.
  CHECK(load_error(with_machine(R"({"scheduler": {"policy": "mlfq", "levels": 5, "quantum": "1ms"}})")) ==
        "<no error>");
}

TEST_CASE("loader: thread priority defaults to the process's") {
  auto scenario = load(with_processes(
      R"([{"name": "p", "priority": 7, "threads": [{"name": "a", "script": []}, {"name": "b", "priority": 2, "script": []}]}])"));
  const auto& threads = scenario->model().processes.at(0)->threads;
  REQUIRE(threads.size() == 2);
  CHECK(threads[0].priority == 7);
  CHECK(threads[1].priority == 2);
  CHECK(scenario->resolved.at("processes").at(0).at("threads").at(0).at("priority") == 7);
}

TEST_CASE("--set: by item name and by index") {
  auto by_name = load(with_script(kCompute), {"processes.p.count=3"});
  CHECK(by_name->model().processes.at(0)->count == 3);
  auto by_index = load(with_script(kCompute), {"processes.0.count=4"});
  CHECK(by_index->model().processes.at(0)->count == 4);
  CHECK(by_index->resolved.at("processes").at(0).at("count") == 4);
  auto nested = load(with_script(kCompute), {"processes.p.script.0.time=250"});
  CHECK(nested->resolved.at("processes").at(0).at("script").at(0).at("time") == 250);
}

TEST_CASE("--set: a value that is not JSON is a string") {
  auto scenario = load(with_script(kCompute), {"machine.frequency=2GHz", "machine.scheduler=fifo"});
  CHECK(scenario->model().hz == 2e9);
  CHECK(scenario->resolved.at("machine").at("frequency") == "2GHz");
  CHECK(scenario->model().scheduler_policy == "fifo");
  json doc = json::object();
  ipcsim::apply_set(doc, "a.b=true");
  ipcsim::apply_set(doc, "a.c=[1, 2]");
  ipcsim::apply_set(doc, "a.d=hello world");
  CHECK(doc == json::parse(R"({"a": {"b": true, "c": [1, 2], "d": "hello world"}})"));
}

TEST_CASE("--set: into the costs and scheduler shorthand forms") {
  auto scenario = load(with_machine(R"({"costs": "ideal", "scheduler": "mlfq"})"),
                       {"machine.costs.trap_enter=9", "machine.scheduler.boost_period=0"});
  CHECK(scenario->model().costs.preset == "ideal");
  CHECK(scenario->model().costs.cycles(ipcsim::Primitive::trap_enter) == 9);
  CHECK(scenario->model().scheduler_policy == "mlfq");
  CHECK(scenario->model().scheduler_params.at("boost_period") == 0);
  CHECK(load_error(with_machine(R"({"scheduler": "fifo"})"), {"machine.scheduler.quantum=5"}) ==
        R"(--set machine.scheduler.quantum=5: unknown key "quantum" in machine.scheduler (fifo); )"
        "accepted keys: policy (at machine.scheduler.quantum in test.json)");
}

TEST_CASE("--set and --seed override the file") {
  auto scenario = load(with_script(kCompute, R"("seed": 5)"), {"machine.cores=4"}, 9);
  CHECK(scenario->model().cores == 4);
  CHECK(scenario->model().seed == 9);
  CHECK(scenario->resolved.at("seed") == 9);
  auto params = load(with_processes(R"([{"name": "p", "count": "${n}", "script": []}], "params": {"n": 2})"),
                     {"params.n=6"});
  CHECK(params->model().processes.at(0)->count == 6);
}

TEST_CASE("loader: ${param} as a whole value keeps its type") {
  auto scenario = load(with_processes(R"([{"name": "p", "count": "${n}", "script": [{"op": "compute", )"
                                      R"("time": "${t}"}]}], "params": {"n": 3, "t": "2us"})"));
  CHECK(scenario->model().processes.at(0)->count == 3);
  CHECK(scenario->resolved.at("processes").at(0).at("count") == 3);
  CHECK(scenario->resolved.at("processes").at(0).at("script").at(0).at("time") == "2us");
  CHECK(scenario->resolved.at("params") == json::parse(R"({"n": 3, "t": "2us"})"));
}

TEST_CASE("loader: ${param} inside text is spliced in") {
  auto scenario = load(with_processes(R"([{"name": "worker-${n}", "script": [{"op": "compute", "time": )"
                                      R"("${k} cycles"}]}], "params": {"n": 3, "k": 20, "what": "pipes"}, )"
                                      R"("description": "${n} ${what}")"));
  CHECK(scenario->model().processes.at(0)->name == "worker-3");
  CHECK(scenario->resolved.at("description") == "3 pipes");
  CHECK(scenario->resolved.at("processes").at(0).at("script").at(0).at("time") == "20 cycles");
}

TEST_CASE("loader: durations are converted exactly at the machine clock") {
  auto arrival = [](const std::string& time, const std::string& frequency) {
    return load(R"({"machine": {"frequency": ")" + frequency +
                R"("}, "processes": [{"name": "p", "arrival": )" + time + R"(, "script": []}]})")
        ->model()
        .processes.at(0)
        ->arrival;
  };
  CHECK(arrival(R"("1.5us")", "3GHz") == 4500);
  CHECK(arrival(R"("1ns")", "3GHz") == 3);
  CHECK(arrival(R"("20 cycles")", "3GHz") == 20);
  CHECK(arrival("20", "3GHz") == 20);
  CHECK(arrival(R"("10ms")", "3GHz") == 30'000'000);
  CHECK(arrival(R"("2s")", "2.4GHz") == 4'800'000'000ull);
  CHECK(arrival(R"("300ns")", "1GHz") == 300);
  CHECK(arrival(R"("1 us")", "12.5MHz") == 13); // 12.5 cycles, rounded to the nearest
}

TEST_CASE("loader: sizes") {
  CHECK(ipcsim::read_bytes(json("4KiB")) == 4096);
  CHECK(ipcsim::read_bytes(json("1MiB")) == 1048576);
  CHECK(ipcsim::read_bytes(json("512B")) == 512);
  CHECK(ipcsim::read_bytes(json("64 KB")) == 64000);
  CHECK(ipcsim::read_bytes(json(100)) == 100);
  CHECK(load_error(with_script(
            R"({"op": "begin", "name": "x"}, {"op": "end", "name": "x", "bytes": "4KiB"})")) == "<no error>");
}

TEST_CASE("loader: cost overrides and presets") {
  auto scenario =
      load(with_machine(R"({"costs": {"preset": "ideal", "trap_enter": 7, "tagged_tlb": true}})"));
  CHECK(scenario->model().costs.preset == "ideal");
  CHECK(scenario->model().costs.cycles(ipcsim::Primitive::trap_enter) == 7);
  CHECK(scenario->model().costs.tagged_tlb);
  auto teaching = load(with_machine(R"({"costs": "teaching", "frequency": "3GHz"})"));
  CHECK(teaching->model().hz == 3e9);
  CHECK(teaching->model().costs.preset_hz == 1e9);
}

TEST_CASE("loader: load_scenario names a missing file") {
  CHECK_THROWS_WITH_AS(ipcsim::load_scenario("/nonexistent/scenario.json", {}),
                       "/nonexistent/scenario.json: cannot open the scenario file: No such file or directory",
                       ipcsim::UserError);
}

TEST_CASE("costs: copies by footprint, by hand on the teaching preset") {
  // Teaching: L1 64 KiB at 8 B/cycle, L2 1 MiB at 4, L3 8 MiB at 2, memory at 1; the footprint is
  // twice the transfer; the time per byte moves linearly from one level's to the next's as the
  // footprint grows from a cache's size to twice it (docs/costs.md).
  const ipcsim::CostModel costs = load(with_machine(R"({"costs": "teaching"})"))->model().costs;
  CHECK(costs.copy_cycles(100) == 50 + 13);          // footprint 200 B: L1, ceil(100 / 8)
  CHECK(costs.copy_cycles(32768) == 50 + 4096);      // footprint 64 KiB: still L1
  CHECK(costs.copy_cycles(49152) == 50 + 9216);      // 96 KiB: halfway to L2, 3/16 cycle a byte
  CHECK(costs.copy_cycles(65536) == 50 + 16384);     // 128 KiB = 2 x L1: the L2 rate
  CHECK(costs.copy_cycles(1048576) == 50 + 524288);  // 2 MiB = 2 x L2: the L3 rate, 1/2 a byte
  CHECK(costs.copy_cycles(1048577) == 50 + 524289);  // one more byte costs one byte's worth (issue 10)
  CHECK(costs.copy_cycles(8388608) == 50 + 8388608); // 16 MiB = 2 x L3: memory, 1 a byte
  // A 4 KiB piece of a 1 MiB transfer goes at the whole transfer's rate, each level's share under
  // its own name: 512 at the L1 rate, + 512 for L2, + 1024 for L3.
  CHECK(costs.copy_cycles(4096, 1048576) == 50 + 2048);
  auto split = costs.copy_split(4096, 1048576);
  CHECK(split[0] == std::pair{ipcsim::Primitive::copy_bytes_per_cycle, ipcsim::Cycles{512}});
  CHECK(split[1] == std::pair{ipcsim::Primitive::copy_bytes_per_cycle_l2, ipcsim::Cycles{512}});
  CHECK(split[2] == std::pair{ipcsim::Primitive::copy_bytes_per_cycle_l3, ipcsim::Cycles{1024}});
  CHECK(split[3] == std::pair{ipcsim::Primitive::copy_bytes_per_cycle_uncached, ipcsim::Cycles{0}});
}

TEST_CASE("costs: idle states: the exit latency of the deepest state the idle period reached") {
  TempDir dir;
  auto deep =
      dir.write("deep.json", teaching_preset_with("\"primitives\": {",
                                                  "\"idle_states\": {\"value\": [{\"name\": \"C6\", "
                                                  "\"target_residency\": 10000, \"exit_latency\": 50000}], "
                                                  "\"source\": \"test\"},\n  \"primitives\": {"));
  const ipcsim::CostModel costs = load(with_machine(R"({"costs": ")" + deep + R"("})"))->model().costs;
  CHECK(costs.idle_exit_after(0) == 1000); // idle_exit: the shallow state
  CHECK(costs.idle_exit_after(9999) == 1000);
  CHECK(costs.idle_exit_after(10000) == 50000);
  // Two sleeps: the core idles 5000 - 200 (the context_save) = 4800 cycles, then 19800: idle_exit
  // 1000 for the first wake, C6's 50000 for the second.
  auto run = ipcsim::test::run_text(R"({"machine": {"costs": ")" + deep + R"("}, "processes": [{"name": "p",
      "working_set_pages": 0, "script": [{"op": "sleep", "time": 5000}, {"op": "sleep", "time": 20000}]}]})");
  CHECK(run.charged("p", "dispatch", ipcsim::Primitive::idle_exit) == 1000 + 50000);
  auto shallower =
      dir.write("bad.json", teaching_preset_with("\"primitives\": {",
                                                 "\"idle_states\": {\"value\": [{\"name\": \"C6\", "
                                                 "\"target_residency\": 10000, \"exit_latency\": 500}], "
                                                 "\"source\": \"test\"},\n  \"primitives\": {"));
  CHECK(load_error(with_machine(R"({"costs": ")" + shallower + R"("})")) ==
        "test.json: at machine.costs.preset: preset file \"" + shallower +
            "\": idle_states.value.0: exit_latency 500 is below the shallower state's (1000, idle_exit): a "
            "deeper state is never quicker to leave");
}

TEST_CASE("costs: machine.costs.idle_states replaces the preset's idle states, checked as a preset's are") {
  // Teaching has none: a halted vCPU polled by the host for a while (cheap to wake), then descheduled.
  auto run = ipcsim::test::run_text(R"({"machine": {"costs": {"preset": "teaching", "idle_exit": 2000,
      "idle_states": [{"name": "descheduled", "target_residency": 10000, "exit_latency": 90000}]}},
      "processes": [{"name": "p", "working_set_pages": 0,
      "script": [{"op": "sleep", "time": 5000}, {"op": "sleep", "time": 20000}]}]})");
  // The first sleep idles 4800 cycles (5000 less the context_save): idle_exit; the second 19800.
  CHECK(run.charged("p", "dispatch", ipcsim::Primitive::idle_exit) == 2000 + 90000);
  const ipcsim::CostModel none =
      load(with_machine(R"({"costs": {"preset": "teaching", "idle_states": []}})"))->model().costs;
  CHECK(none.idle_states.empty());
  CHECK(none.idle_exit_after(1000000) == none.cycles(ipcsim::Primitive::idle_exit));

  CHECK(
      load_error(with_machine(R"({"costs": {"preset": "teaching", "idle_states": {"name": "C6"}}})")) ==
      "test.json: at machine.costs.idle_states: invalid value {\"name\":\"C6\"}; expected a list of objects");
  CHECK(load_error(with_machine(R"({"costs": {"preset": "teaching", "idle_states": [{"name": "C6",
      "target_residency": "10us", "exit_latency": 5000}]}})")) ==
        "test.json: at machine.costs.idle_states.0: idle_states must be a list of {\"name\": \"C6\", "
        "\"target_residency\": CYCLES, \"exit_latency\": CYCLES} (and optionally \"ipi\": CYCLES), by "
        "increasing target_residency (each > 0) (cycles: whole numbers up to 2^32)");
  CHECK(contains(load_error(with_machine(R"({"costs": {"preset": "teaching", "idle_states": [{"name": "C6",
      "target_residency": 10000, "exit_latency": 5000, "ipi": -1}]}})")),
                 "test.json: at machine.costs.idle_states.0: idle_states must be a list of"));
  CHECK(contains(load_error(with_machine(R"({"costs": {"preset": "teaching", "idle_states": [{"name": "C6",
      "target_residency": 10000, "exit_latency": 5000, "ipl": 7}]}})")),
                 "test.json: at machine.costs.idle_states.0: idle_states must be a list of"));
  CHECK(
      load_error(with_machine(R"({"costs": {"preset": "teaching", "idle_states": [
      {"name": "C1", "target_residency": 5000, "exit_latency": 3000},
      {"name": "C6", "target_residency": 5000, "exit_latency": 9000}]}})")) ==
      "test.json: at machine.costs.idle_states.1: target_residency must exceed the previous state's (5000)");
  CHECK(load_error(with_machine(R"({"costs": {"preset": "teaching", "idle_exit": 4000, "idle_states": [
      {"name": "C6", "target_residency": 5000, "exit_latency": 3000}]}})")) ==
        "test.json: at machine.costs.idle_states.0: exit_latency 3000 is below the shallower state's (4000, "
        "idle_exit, set here): a deeper state is never quicker to leave");
  // An idle_exit raised above the preset's own deeper state: named with what to do.
  TempDir dir;
  auto deep =
      dir.write("deep.json", teaching_preset_with("\"primitives\": {",
                                                  "\"idle_states\": {\"value\": [{\"name\": \"C6\", "
                                                  "\"target_residency\": 10000, \"exit_latency\": 50000}], "
                                                  "\"source\": \"test\"},\n  \"primitives\": {"));
  CHECK(load_error(with_machine(R"({"costs": {"preset": ")" + deep + R"(", "idle_exit": 60000}})")) ==
        "test.json: at machine.costs.idle_exit: the preset's idle_states.0: exit_latency 50000 is below the "
        "shallower state's (60000, idle_exit): a deeper state is never quicker to leave (idle_exit set here; "
        "lower it, or give machine.costs.idle_states too)");
}

TEST_CASE("costs: an idle state's ipi is what waking a core in it costs the waker") {
  // A reader blocked on core 0, woken by writes from core 1 after 5000 and then 20000 cycles: its core
  // idles about 4700 cycles the first time (shallow: the waker pays the ipi primitive, teaching's
  // 1000, and the reader idle_exit 2000) and over 10000 the second (the state's ipi 25000 and its
  // exit 90000). Without the state's ipi the waker pays 1000 both times.
  const std::string script = R"(, "channels": [{"name": "c", "mechanism": "pipe"}], "processes": [
      {"name": "reader", "affinity": [0], "working_set_pages": 0, "script": [
        {"op": "recv", "channel": "c", "bytes": 1}, {"op": "recv", "channel": "c", "bytes": 1}]},
      {"name": "writer", "affinity": [1], "working_set_pages": 0, "script": [
        {"op": "compute", "time": 5000}, {"op": "send", "channel": "c", "bytes": 1},
        {"op": "compute", "time": 20000}, {"op": "send", "channel": "c", "bytes": 1}]}]})";
  auto run =
      ipcsim::test::run_text(R"({"machine": {"cores": 2, "costs": {"preset": "teaching", "idle_exit": 2000,
      "idle_states": [{"name": "descheduled", "target_residency": 10000, "exit_latency": 90000, "ipi": 25000}]}})" +
                             script);
  CHECK(run.charged("writer", "send", ipcsim::Primitive::ipi) == 1000 + 25000);
  CHECK(run.charged("reader", "dispatch", ipcsim::Primitive::idle_exit) == 2000 + 90000);
  auto plain =
      ipcsim::test::run_text(R"({"machine": {"cores": 2, "costs": {"preset": "teaching", "idle_exit": 2000,
      "idle_states": [{"name": "C6", "target_residency": 10000, "exit_latency": 90000}]}})" +
                             script);
  CHECK(plain.charged("writer", "send", ipcsim::Primitive::ipi) == 1000 + 1000);
  // At another clock with frequency_scaling "time", the state's ipi stretches like its latency.
  const ipcsim::CostModel scaled = load(with_machine(R"({"frequency": "2GHz", "frequency_scaling": "time",
      "costs": {"preset": "teaching", "idle_states": [{"name": "d", "target_residency": 10000,
      "exit_latency": 90000, "ipi": 25000}]}})"))
                                       ->model()
                                       .costs;
  CHECK(scaled.ipi_after(20000) == 50000);
  CHECK(scaled.ipi_after(19999) == 2000);
}

TEST_CASE(
    "costs: idle_exit_spread: each idle exit a log-normal draw around its state's latency, from the seed") {
  // 401 sleeps of 5000 cycles on one core (teaching: idle_exit 1000). Each interval is the sleep's
  // system call, the idle period and the exit: the same every time without a spread.
  TempDir dir;
  auto spread_file = [&](const std::string& name, const std::string& value) {
    return dir.write(
        name, teaching_preset_with("\"primitives\": {", "\"idle_exit_spread\": {\"value\": " + value +
                                                            ", \"source\": \"test\"},\n  \"primitives\": {"));
  };
  auto exits = [](const std::string& costs, int seed) {
    auto run = ipcsim::test::run_text(R"({"seed": )" + std::to_string(seed) + R"(, "machine": {"costs": )" +
                                      costs + R"(}, "processes": [{"name": "p", "working_set_pages": 0,
        "script": [{"op": "repeat", "count": 401, "body": [{"op": "begin", "name": "nap"},
          {"op": "sleep", "time": 5000}, {"op": "end", "name": "nap"}]}]}]})");
    std::vector<double> lengths;
    for (const auto& r : run.kernel->records()) lengths.push_back(static_cast<double>(r.end - r.start));
    return lengths;
  };
  const auto fixed = exits(R"("teaching")", 1);
  REQUIRE(fixed.size() == 401);
  for (double l : fixed) CHECK(l == fixed.front());
  // The rest of an interval, without its exit of 1000 cycles.
  const double rest = fixed.front() - 1000;
  const std::string half = "\"" + spread_file("half.json", "0.5") + "\"";
  auto drawn = exits(half, 1);
  REQUIRE(drawn.size() == 401);
  for (double& l : drawn) l -= rest;
  std::vector<double> sorted = drawn;
  std::sort(sorted.begin(), sorted.end());
  // A log-normal of median 1000 and sigma 0.5: p10 and p90 at 1000 x exp(-/+ 1.2816 x 0.5) = 527 and
  // 1898. Clamped at 4 sigma: every draw within 1000 x exp(-/+ 2) = 135 .. 7389.
  const double median = sorted[200], p10 = sorted[40], p90 = sorted[360];
  MESSAGE("idle exits drawn: median " << median << " (log-normal: 1000), p10 " << p10 << " (527), p90 " << p90
                                      << " (1898)");
  CHECK(median == doctest::Approx(1000).epsilon(0.08));
  CHECK(p10 == doctest::Approx(527).epsilon(0.15));
  CHECK(p90 == doctest::Approx(1898).epsilon(0.15));
  CHECK(sorted.front() >= 135);
  CHECK(sorted.back() <= 7390);
  // Same seed, same draws; another seed, others. machine.costs overrides the preset's spread.
  CHECK(exits(half, 1) == exits(half, 1));
  CHECK(exits(half, 1) != exits(half, 2));
  CHECK(exits(R"({"preset": "teaching", "idle_exit_spread": 0.5})", 1) != fixed);
  CHECK(exits(R"({"preset": )" + half + R"(, "idle_exit_spread": 0})", 1) == fixed);
  // Bad values, in a preset file and as an override.
  for (const char* bad : {"-0.1", "2.5", "\"wide\""}) {
    auto file = spread_file("bad.json", bad);
    CHECK(load_error(with_machine(R"({"costs": ")" + file + R"("})")) ==
          "test.json: at machine.costs.preset: preset file \"" + file +
              "\": idle_exit_spread must be a number from 0 to 2, got " + bad);
  }
  CHECK(load_error(with_machine(R"({"costs": {"preset": "teaching", "idle_exit_spread": 3}})")) ==
        "test.json: at machine.costs.idle_exit_spread: invalid value 3; expected a value <= 2");
}

TEST_CASE("costs: machine.frequency_scaling keeps cycles (the default) or times") {
  // teaching is written for 1 GHz. At 2 GHz, "cycles" keeps trap_enter at 100 cycles (50 ns);
  // "time" keeps its 100 ns: 200 cycles, and the L1 copy rate 8 B/cycle becomes 4.
  auto kept = load(with_machine(R"({"costs": "teaching", "frequency": "2GHz"})"))->model().costs;
  CHECK(kept.cycles(ipcsim::Primitive::trap_enter) == 100);
  auto timed =
      load(with_machine(R"({"costs": "teaching", "frequency": "2GHz", "frequency_scaling": "time"})"))
          ->model()
          .costs;
  CHECK(timed.cycles(ipcsim::Primitive::trap_enter) == 200);
  CHECK(timed.get(ipcsim::Primitive::copy_bytes_per_cycle) == 4);
  CHECK(timed.get(ipcsim::Primitive::cache_l1_bytes) == 65536);
  CHECK(load_error(with_machine(R"({"costs": {"preset": "teaching", "trap_enter": 4294967296},
      "frequency": "2GHz", "frequency_scaling": "time"})")) ==
        "test.json: at machine.frequency_scaling: trap_enter scaled to the machine's clock is 8589934592 "
        "cycles, "
        "above the largest accepted 4294967296 (2^32); lower machine.frequency or use frequency_scaling "
        "\"cycles\"");
  CHECK(load_error(with_machine(R"({"frequency_scaling": "both"})")).find("machine.frequency_scaling") !=
        std::string::npos);
}
