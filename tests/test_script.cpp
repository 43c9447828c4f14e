// The script language around IPC calls: variables, print, conditions, branching on a call's
// error, spawn with inherited descriptors, the endless-loop guard, and their load-time errors.
#include "error.hpp"
#include "harness.hpp"
#include "names.hpp"
#include "report.hpp"
#include "script.hpp"

#include <algorithm>
#include <doctest/doctest.h>
#include <set>

using namespace ipcsim;
using ipcsim::test::run_text;

namespace {

// Console lines as "thread@cycle: text".
std::vector<std::string> console(const ipcsim::test::Run& run) {
  std::vector<std::string> lines;
  for (const auto& line : run.kernel->console())
    lines.push_back(run.kernel->threads()[line.thread].display_name() + "@" + std::to_string(line.at) + ": " +
                    line.text);
  return lines;
}

std::string one_process(const std::string& ops, const std::string& costs = "ideal") {
  return R"({"machine": {"costs": ")" + costs + R"("}, "processes": [{"name": "p", "script": [)" + ops +
         "]}]}";
}

using ipcsim::test::console_texts;
using ipcsim::test::load_error;

} // namespace

TEST_CASE("script: set, add, while and print count to three") {
  auto run = run_text(one_process(R"(
    {"op": "set", "var": "n", "value": 0},
    {"op": "while", "cond": "n < 3", "body": [
      {"op": "add", "var": "n"},
      {"op": "print", "text": "n={n}"}]},
    {"op": "set", "var": "who", "value": "done"},
    {"op": "print", "text": "{who} at pid {pid}, {{n}} is not a variable"})"));
  CHECK(console(run) == std::vector<std::string>{"p@0: n=1", "p@0: n=2", "p@0: n=3",
                                                 "p@0: done at pid 100, {3} is not a variable"});
}

TEST_CASE("script: repeats nested deeper than a thread keeps in place count every iteration") {
  // Thread::loops keeps four counters in the thread and moves to the heap at the fifth: 2^6 adds,
  // and the inner counters restart each time round the outer ones.
  auto run = run_text(one_process(R"(
    {"op": "repeat", "count": 2, "body": [{"op": "repeat", "count": 2, "body": [
      {"op": "repeat", "count": 2, "body": [{"op": "repeat", "count": 2, "body": [
        {"op": "repeat", "count": 2, "body": [{"op": "repeat", "count": 2, "body": [
          {"op": "add", "var": "n"}]}]}]}]}]},
      {"op": "add", "var": "outer"}]},
    {"op": "print", "text": "{n} {outer}"})"));
  CHECK(console_texts(run) == std::vector<std::string>{"64 2"});
}

TEST_CASE("script: add subtracts with a negative value and counts from zero when unset") {
  auto run = run_text(one_process(R"(
    {"op": "add", "var": "c", "value": -5},
    {"op": "add", "var": "c", "value": 2},
    {"op": "print", "text": "{c}"})"));
  CHECK(console(run) == std::vector<std::string>{"p@0: -3"});
}

TEST_CASE("script: a failed call sets result and errno, if branches on it, the report counts it") {
  auto run = run_text(one_process(R"(
    {"op": "read", "fd": "nothing", "bytes": 8},
    {"op": "if", "cond": "errno == EBADF", "then": [{"op": "print", "text": "then {result} {errno}"}],
     "else": [{"op": "print", "text": "else"}]},
    {"op": "if", "cond": "ok", "then": [{"op": "print", "text": "ok?"}]},
    {"op": "if", "cond": "error", "then": [{"op": "print", "text": "error"}]},
    {"op": "close", "fd": "nothing"},
    {"op": "unlink", "path": "/tmp/none"},
    {"op": "creat", "path": "/tmp/f"},
    {"op": "if", "cond": "errno == 0", "then": [{"op": "print", "text": "created: result {result}, errno '{errno}'"}]})"));
  CHECK(console(run) ==
        std::vector<std::string>{"p@0: then -1 EBADF", "p@0: error", "p@0: created: result 0, errno ''"});
  auto failed = failed_calls(*run.kernel);
  REQUIRE(failed.size() == 3);
  CHECK(failed[0].op == "read");
  CHECK(failed[0].error == "EBADF");
  CHECK(failed[1].op == "close");
  CHECK(failed[2].op == "unlink");
  CHECK(failed[2].error == "ENOENT");
}

TEST_CASE("script: string comparisons and every comparison operator") {
  auto run = run_text(one_process(R"(
    {"op": "set", "var": "s", "value": "Nami"},
    {"op": "set", "var": "x", "value": 5},
    {"op": "if", "cond": "s == Nami", "then": [{"op": "print", "text": "eq"}]},
    {"op": "if", "cond": "s != Zoro", "then": [{"op": "print", "text": "ne"}]},
    {"op": "if", "cond": "x <= 5", "then": [{"op": "print", "text": "le"}]},
    {"op": "if", "cond": "x >= 6", "then": [{"op": "print", "text": "ge?"}]},
    {"op": "if", "cond": "x > -1", "then": [{"op": "print", "text": "gt"}]},
    {"op": "if", "cond": "x < 5", "then": [{"op": "print", "text": "lt?"}], "else": [{"op": "print", "text": "not lt"}]})"));
  CHECK(console(run) == std::vector<std::string>{"p@0: eq", "p@0: ne", "p@0: le", "p@0: gt", "p@0: not lt"});
}

TEST_CASE("script: print costs nothing and is stamped with the simulated time") {
  // teaching: dispatch = sched_pick 100 + context_restore 200 + address_space_switch 500 + 16 pages
  // x tlb_refill 20 = 1120; then compute 1000.
  auto run = run_text(one_process(R"({"op": "print", "text": "a"}, {"op": "compute", "time": 1000},
                                     {"op": "print", "text": "b"})",
                                  "teaching"));
  CHECK(console(run) == std::vector<std::string>{"p@1120: a", "p@2120: b"});
}

TEST_CASE("script: spawn starts a spawned process, returns its pid, and join waits for it") {
  auto run = run_text(R"({"machine": {"costs": "ideal"}, "processes": [
    {"name": "shell", "script": [
      {"op": "spawn", "process": "child"}, {"op": "print", "text": "child pid {result}"},
      {"op": "spawn", "process": "child"}, {"op": "print", "text": "child pid {result}"},
      {"op": "join", "process": "child"}, {"op": "print", "text": "joined"}]},
    {"name": "child", "spawned": true, "script": [{"op": "compute", "time": 50}, {"op": "print", "text": "I am {pid}"}]}]})");
  CHECK(console(run) == std::vector<std::string>{"shell@0: child pid 101", "shell@0: child pid 102",
                                                 "child@50: I am 101", "child[1]@100: I am 102",
                                                 "shell@100: joined"});
  CHECK(run.kernel->processes().size() == 3);
}

TEST_CASE("script: spawn charges map_page per working-set page (fork copies the page tables)") {
  auto run = run_text(R"({"machine": {"costs": "teaching"}, "processes": [
    {"name": "shell", "script": [{"op": "spawn", "process": "child"}]},
    {"name": "child", "spawned": true, "working_set_pages": 3, "script": []}]})");
  CHECK(run.charged("shell", "spawn", Primitive::map_page) == 600);
  CHECK(run.charged("shell", "spawn", Primitive::trap_enter) == 100);
}

TEST_CASE("script: spawn with fds naming a missing parent descriptor fails with EBADF") {
  auto run = run_text(R"({"machine": {"costs": "ideal"}, "processes": [
    {"name": "shell", "script": [{"op": "spawn", "process": "child", "fds": {"stdin": "nope"}},
                                 {"op": "print", "text": "{errno}"}]},
    {"name": "child", "spawned": true, "script": []}]})");
  CHECK(console(run) == std::vector<std::string>{"shell@0: EBADF"});
  CHECK(run.kernel->processes().size() == 1);
}

TEST_CASE("script: an endless loop without simulated time stops the run with a message") {
  auto run =
      run_text(one_process(R"({"op": "compute", "time": 7}, {"op": "while", "cond": "ok", "body": []})"));
  CHECK(
      run.kernel->runtime_error() ==
      "p: ran more than 10,000,000 ops without simulated time passing (an endless loop without a blocking or "
      "time-consuming op?), at op 1 of its script");
}

TEST_CASE("script: load-time errors in conditions, variables and spawn") {
  CHECK(load_error(one_process(R"({"op": "if", "cond": "errno = EAGAIN", "then": []})")) ==
        "test.json: at processes.0.script.0.cond: invalid condition \"errno = EAGAIN\": unknown comparison "
        "\"=\"; "
        "expected \"ok\", \"error\", or NAME OP VALUE such as \"errno == EAGAIN\", \"msg.type == 2\", "
        "\"count < "
        "10\" (OP one of == != < <= > >=)");
  CHECK(
      load_error(one_process(R"({"op": "while", "cond": "n<3", "body": []})")) ==
      "test.json: at processes.0.script.0.cond: invalid condition \"n<3\": not three words; expected \"ok\", "
      "\"error\", or NAME OP VALUE such as \"errno == EAGAIN\", \"msg.type == 2\", \"count < 10\" (OP one of "
      "== "
      "!= < <= > >=)");
  std::string unknown_errno =
      load_error(one_process(R"({"op": "if", "cond": "errno == EAGIAN", "then": []})"));
  CHECK(unknown_errno.rfind("test.json: at processes.0.script.0.cond: unknown error \"EAGIAN\" (did you mean "
                            "\"EAGAIN\"?); known: EPERM, ENOENT,",
                            0) == 0);
  CHECK(load_error(one_process(R"({"op": "set", "var": "n", "value": 1}, {"op": "print", "text": "{m}"})")) ==
        "test.json: at processes.0.script.1.text: variable \"m\" is never set in this script (did you mean "
        "\"n\"?); "
        "known here: result, errno, pid, index, msg.type, msg.text, msg.bytes, msg.sender, msg.priority, "
        "receiver, n");
  CHECK(
      load_error(one_process(R"({"op": "if", "cond": "count > 0", "then": []})")) ==
      "test.json: at processes.0.script.0.cond: variable \"count\" is never set in this script; known here: "
      "result, errno, pid, index, msg.type, msg.text, msg.bytes, msg.sender, msg.priority, receiver");
  CHECK(load_error(one_process(R"({"op": "set", "var": "errno", "value": 1})")) ==
        "test.json: at processes.0.script.0.var: \"errno\" is set by the system calls themselves; choose "
        "another "
        "name");
  CHECK(
      load_error(one_process(R"({"op": "set", "var": "a b", "value": 1})")) ==
      "test.json: at processes.0.script.0.var: invalid variable name \"a b\"; use letters, digits, _ and .");
  CHECK(load_error(one_process(R"({"op": "set", "var": "a", "value": 1.5})")) ==
        "test.json: at processes.0.script.0.value: invalid value 1.5; expected a whole number or a string");
  CHECK(load_error(R"({"processes": [{"name": "p", "script": [{"op": "spawn", "process": "q"}]},
                                    {"name": "q", "script": []}]})") ==
        "test.json: at processes.0.script.0.process: process \"q\" is not declared with \"spawned\": true, "
        "so it "
        "starts on its own");
  CHECK(load_error(R"({"processes": [{"name": "p", "script": [{"op": "spawn", "process": "qq"}]},
                                    {"name": "q", "spawned": true, "script": []}]})") ==
        "test.json: at processes.0.script.0.process: unknown process \"qq\" (did you mean \"q\"?); "
        "processes: p, q");
  CHECK(load_error(R"({"processes": [{"name": "q", "spawned": true, "script": []}]})") ==
        "test.json: at processes: every process is \"spawned\", so none starts; at least one must start by "
        "itself");
  CHECK(
      load_error(
          R"({"processes": [{"name": "p", "script": []}, {"name": "q", "spawned": true, "count": 2, "script": []}]})") ==
      "test.json: at processes.1.count: a spawned process starts one copy per spawn op; drop \"count\"");
  CHECK(
      load_error(
          R"({"processes": [{"name": "p", "script": [{"op": "spawn", "process": "q", "fds": {"in": 3}}]},
                                    {"name": "q", "spawned": true, "script": []}]})") ==
      "test.json: at processes.0.script.0.fds.in: invalid value 3; expected the name of one of the parent's "
      "descriptors");
  CHECK(load_error(one_process(R"({"op": "creat", "path": "tmp/x"})")) ==
        "test.json: at processes.0.script.0.path: invalid path \"tmp/x\"; expected an absolute path without "
        "spaces, "
        "at most 107 characters, such as \"/tmp/myfifo\"");
  CHECK(load_error(one_process(R"({"op": "creat", "path": "/tmp/x", "mode": "0999"})")) ==
        "test.json: at processes.0.script.0.mode: invalid value \"0999\"; expected permission bits in octal "
        "as a "
        "string, such as \"0666\"");
  CHECK(load_error(one_process(R"({"op": "send", "channel": "c", "bytes": 8})")) ==
        "test.json: at processes.0.script.0.channel: unknown channel \"c\"; the scenario declares no "
        "\"channels\"");
}

TEST_CASE("script: durations in minutes and hours, as the courier's 15-minute wait") {
  auto run = run_text(one_process(R"({"op": "sleep", "time": "15min"}, {"op": "print", "text": "a"},
                                     {"op": "sleep", "time": "0.5h"}, {"op": "print", "text": "b"})"));
  CHECK(console(run) == std::vector<std::string>{"p@900000000000: a", "p@2700000000000: b"});
}

TEST_CASE("script: calc evaluates whole-number expressions with precedence, parentheses and negation") {
  auto run = run_text(one_process(R"(
    {"op": "set", "var": "st.qnum", "value": 3},
    {"op": "calc", "var": "slots", "expr": "16384 / 512 - st.qnum"},
    {"op": "calc", "var": "x", "expr": "-(2 + 3) * 4 % 7"},
    {"op": "calc", "var": "y", "expr": "7 / -2"},
    {"op": "print", "text": "{slots} {x} {y}"})"));
  CHECK(console(run) == std::vector<std::string>{"p@0: 29 -6 -3"}); // C semantics: -20 % 7 = -6
}

TEST_CASE("script: calc evaluates expressions deeper than its on-stack buffer") {
  // 1 + (2 + (3 + ... (40))): 40 values on the evaluation stack at once.
  std::string expr = "40";
  for (int i = 39; i >= 1; --i) expr = std::to_string(i) + " + (" + expr + ")";
  auto run = run_text(one_process(R"({"op": "calc", "var": "sum", "expr": ")" + expr +
                                  R"("}, {"op": "print", "text": "{sum}"})"));
  CHECK(console(run) == std::vector<std::string>{"p@0: 820"});
}

TEST_CASE("script: calc errors, at load time and at run time") {
  auto expr_error = [](const std::string& expr) {
    return load_error(one_process(
        R"({"op": "set", "var": "a", "value": 1}, {"op": "calc", "var": "b", "expr": ")" + expr + R"("})"));
  };
  const std::string tail = "; expected whole numbers and variables with + - * / % and parentheses, such as "
                           "\"16384 / 512 - st.qnum\"";
  CHECK(expr_error("a +") ==
        "test.json: at processes.0.script.1.expr: invalid expression \"a +\": it ends where a "
        "number or variable is expected" +
            tail);
  CHECK(expr_error("(a + 1") ==
        "test.json: at processes.0.script.1.expr: invalid expression \"(a + 1\": unbalanced '('" + tail);
  CHECK(expr_error("a ^ 2") ==
        "test.json: at processes.0.script.1.expr: invalid expression \"a ^ 2\": unexpected '^'" + tail);
  CHECK(
      expr_error("count * 2") ==
      "test.json: at processes.0.script.1.expr: variable \"count\" is never set in this script; known here: "
      "result, "
      "errno, pid, index, msg.type, msg.text, msg.bytes, msg.sender, msg.priority, receiver, a, b");
  auto zero = run_text(
      one_process(R"({"op": "set", "var": "z", "value": 0}, {"op": "calc", "var": "q", "expr": "1 / z"})"));
  CHECK(zero.kernel->runtime_error() == "p: calc \"1 / z\": division by zero");
  auto text = run_text(
      one_process(R"({"op": "set", "var": "s", "value": "x"}, {"op": "calc", "var": "q", "expr": "s + 1"})"));
  CHECK(text.kernel->runtime_error() == "p: calc \"s + 1\": variable s holds text, not a number");
}

TEST_CASE("fixed: calc and add overflow wraps silently, and INT64_MIN / -1 kills the simulator") {
  // Was a bug: calc computed with plain int64 arithmetic, so "9223372036854775807 + 1" gave
  // -9223372036854775808, and INT64_MIN / -1 (or % -1) raised SIGFPE. Fix in sim/lang/script.cpp CalcOp
  // and SetOp (__builtin_*_overflow): an overflow stops the run, as a division by zero does.
  auto calc_error = [](const std::string& expr) {
    auto run = run_text(one_process(R"({"op": "set", "var": "max", "value": 9223372036854775807},
      {"op": "calc", "var": "min", "expr": "-max - 1"},
      {"op": "calc", "var": "q", "expr": ")" +
                                    expr + R"("}, {"op": "print", "text": "{q}"})"));
    CHECK(console_texts(run).empty());
    return run.kernel->runtime_error();
  };
  const std::string range = " (whole numbers run from -9223372036854775808 to 9223372036854775807)";
  CHECK(calc_error("9223372036854775807 + 1") ==
        "p: calc \"9223372036854775807 + 1\": integer overflow in 9223372036854775807 + 1" + range);
  CHECK(calc_error("min - 1") == "p: calc \"min - 1\": integer overflow in -9223372036854775808 - 1" + range);
  CHECK(calc_error("max * 2") == "p: calc \"max * 2\": integer overflow in 9223372036854775807 * 2" + range);
  CHECK(calc_error("min * -1") ==
        "p: calc \"min * -1\": integer overflow in -9223372036854775808 * -1" + range);
  CHECK(calc_error("min / -1") ==
        "p: calc \"min / -1\": integer overflow in -9223372036854775808 / -1" + range);
  CHECK(calc_error("-min") == "p: calc \"-min\": integer overflow in -(-9223372036854775808)" + range);
  CHECK(calc_error("-(min)") == "p: calc \"-(min)\": integer overflow in -(-9223372036854775808)" + range);

  // The edges themselves are fine, and INT64_MIN % -1 is 0 (the division's remainder is exact).
  auto edges = run_text(one_process(R"js({"op": "set", "var": "max", "value": 9223372036854775807},
    {"op": "calc", "var": "min", "expr": "-max - 1"}, {"op": "calc", "var": "r", "expr": "min % -1"},
    {"op": "calc", "var": "s", "expr": "min / 1 + max"}, {"op": "calc", "var": "t", "expr": "-(min + 1)"},
    {"op": "print", "text": "{min} {r} {s} {t}"})js"));
  CHECK(edges.kernel->runtime_error().empty());
  CHECK(console_texts(edges) == std::vector<std::string>{"-9223372036854775808 0 -1 9223372036854775807"});

  auto add = run_text(one_process(R"({"op": "set", "var": "n", "value": 9223372036854775000},
    {"op": "add", "var": "n", "value": 807}, {"op": "print", "text": "{n}"},
    {"op": "add", "var": "n"}, {"op": "print", "text": "{n}"})"));
  CHECK(console_texts(add) == std::vector<std::string>{"9223372036854775807"});
  CHECK(add.kernel->runtime_error() == "p: add to n: integer overflow in 9223372036854775807 + 1" + range);
  auto subtract = run_text(one_process(R"({"op": "set", "var": "n", "value": -9223372036854775000},
    {"op": "add", "var": "n", "value": -809})"));
  CHECK(subtract.kernel->runtime_error() ==
        "p: add to n: integer overflow in -9223372036854775000 + -809" + range);
}

TEST_CASE("fixed: a set value beyond 64 bits wraps around to a negative number") {
  // Was a bug: {"op": "set", "value": 18446744073709551615} set -1 (the JSON number is unsigned and
  // was read as int64). Fix in sim/common/params.cpp check_value (ParamType::Scalar).
  CHECK(load_error(one_process(R"({"op": "set", "var": "n", "value": 18446744073709551615})")) ==
        "test.json: at processes.0.script.0.value: invalid value 18446744073709551615; expected a whole "
        "number from -9223372036854775808 to 9223372036854775807, or a string");
  CHECK(load_error(one_process(R"({"op": "set", "var": "n", "value": 9223372036854775808})")) ==
        "test.json: at processes.0.script.0.value: invalid value 9223372036854775808; expected a whole "
        "number from -9223372036854775808 to 9223372036854775807, or a string");
}

TEST_CASE("script: the text of write and send fills in {NAME} placeholders when sent") {
  auto run = run_text(R"({"machine": {"costs": "ideal"}, "channels": [{"name": "c", "mechanism": "pipe"}],
    "processes": [{"name": "p", "script": [
      {"op": "set", "var": "n", "value": 5},
      {"op": "pipe", "fds": ["r", "w"]},
      {"op": "write", "fd": "w", "bytes": 8, "text": "n={n} pid={pid}"},
      {"op": "read", "fd": "r", "bytes": 8}, {"op": "print", "text": "{msg.text}"},
      {"op": "send", "channel": "c", "bytes": 8, "text": "{n}{n}"},
      {"op": "recv", "channel": "c", "bytes": 8}, {"op": "print", "text": "{msg.text}"}]}]})");
  std::vector<std::string> lines;
  for (const auto& line : run.kernel->console()) lines.push_back(line.text);
  CHECK(lines == std::vector<std::string>{"n=5 pid=100", "55"});
  CHECK(load_error(one_process(R"({"op": "write", "fd": "w", "bytes": 8, "text": "{nope}"})")) ==
        "test.json: at processes.0.script.0.text: variable \"nope\" is never set in this script; known here: "
        "result, errno, pid, index, msg.type, msg.text, msg.bytes, msg.sender, msg.priority, receiver");
}

TEST_CASE("script: sizes stop at 1 TiB unless a field says otherwise") {
  CHECK(load_error(one_process(R"({"op": "write", "fd": "w", "bytes": 18446744073709551615})")) ==
        "test.json: at processes.0.script.0.bytes: invalid value 18446744073709551615; expected a value <= "
        "1099511627776");
  CHECK(
      load_error(one_process(R"({"op": "write", "fd": "w", "bytes": "2TiB"})")) ==
      "test.json: at processes.0.script.0.bytes: invalid value \"2TiB\"; expected a value <= 1099511627776");
  CHECK(load_error(one_process(R"({"op": "write", "fd": "w", "bytes": "1TiB"})")) == "<no error>");
}

TEST_CASE("script: the name rules, each in one place (names.hpp)") {
  CHECK(valid_name("worker-1_b"));
  CHECK(!valid_name(""));
  CHECK(!valid_name("a.b"));
  CHECK(!valid_name("caf\xc3\xa9"));
  CHECK(valid_variable("msg.type"));
  CHECK(valid_variable("1st"));
  CHECK(!valid_variable(""));
  CHECK(!valid_variable("a-b"));
  CHECK(valid_variable_not_number("st.qnum"));
  CHECK(valid_variable_not_number("_x"));
  CHECK(!valid_variable_not_number("1st"));
  CHECK(!valid_variable_not_number(""));
  CHECK(is_builtin_variable("msg.text"));
  CHECK(!is_builtin_variable("msg.textual"));
}

// ---- Measured intervals: keyed across threads, and their statistics --------------------------------

TEST_CASE("script: a keyed interval begins in one thread and ends in another, first in first out") {
  // Two cores, no kernel costs: the producer begins key 1 at 0 and key 2 at 1000 (and key 2 again at
  // 2000); the consumer, after a 3000-cycle sleep, ends 1 at 3000, then 2 at 3500 and 2 at 4000, each
  // end taking the oldest begin of its key.
  auto run = run_text(R"({"machine": {"cores": 2, "costs": "ideal"}, "processes": [
    {"name": "producer", "script": [
      {"op": "set", "var": "n", "value": 0},
      {"op": "repeat", "count": 2, "body": [{"op": "add", "var": "n"}, {"op": "begin", "name": "lat", "key": "{n}"},
                                            {"op": "compute", "time": 1000}]},
      {"op": "begin", "name": "lat", "key": "2"}]},
    {"name": "consumer", "script": [
      {"op": "sleep", "time": 3000},
      {"op": "set", "var": "k", "value": 1},
      {"op": "end", "name": "lat", "key": "{k}", "bytes": 10},
      {"op": "compute", "time": 500}, {"op": "end", "name": "lat", "key": "2"},
      {"op": "compute", "time": 500}, {"op": "end", "name": "lat", "key": "2"}]}]})");
  const auto& records = run.kernel->records();
  REQUIRE(records.size() == 3);
  CHECK(records[0].start == 0);
  CHECK(records[0].end == 3000);
  CHECK(records[1].start == 1000); // the first begin of key 2
  CHECK(records[1].end == 3500);
  CHECK(records[2].start == 2000);
  CHECK(records[2].end == 4000);
  for (const auto& r : records) {
    CHECK(run.kernel->threads()[r.thread].display_name() == "consumer");
    CHECK(run.kernel->threads()[r.begun_by].display_name() == "producer");
  }
  // Durations 3000, 2500, 2000: mean 2500, population standard deviation sqrt((500^2 + 0 + 500^2) / 3).
  auto stats = interval_stats(*run.kernel);
  REQUIRE(stats.size() == 1);
  CHECK(stats[0].count == 3);
  CHECK(stats[0].min == 2000);
  CHECK(stats[0].mean_cycles == 2500.0);
  CHECK(stats[0].p50 == 2500); // nearest rank: ceil(0.5 * 3) = the 2nd
  CHECK(stats[0].p99 == 3000);
  CHECK(stats[0].max == 3000);
  CHECK(stats[0].stddev_cycles == doctest::Approx(408.248290463863).epsilon(1e-12));
  // 3 intervals and 10 bytes over [0, 4000] cycles = 4 us: 750000 per second, 2500000 bytes per second.
  CHECK(interval_csv_row(stats[0], 1e9) == "lat,3,2000,2500.000,2500,3000,3000,408.248,2000.000,2500.000,"
                                           "2500.000,3000.000,3000.000,408.248,750000.000,"
                                           "10,2500000.000");
}

TEST_CASE("script: times in the interval table take the unit that fits") {
  CHECK(format_time_fit(999, 1e9) == "999.000 ns");
  CHECK(format_time_fit(1000, 1e9) == "1.000 \xC2\xB5s");
  CHECK(format_time_fit(4136 * 3, 3e9) == "4.136 \xC2\xB5s");
  CHECK(format_time_fit(2.5e6, 1e9) == "2.500 ms");
  CHECK(format_time_fit(15 * 60e9, 1e9) == "900.000 s");
  CHECK(csv_field("a,b") == "\"a,b\"");
  CHECK(csv_field("say \"hi\"") == "\"say \"\"hi\"\"\"");
  CHECK(csv_field("plain") == "plain");
}

TEST_CASE("script: keyed interval errors, at load time and at run time") {
  auto two = [](const std::string& a, const std::string& b) {
    return R"({"machine": {"costs": "ideal"}, "processes": [{"name": "a", "script": [)" + a +
           R"(]}, {"name": "b", "script": [)" + b + "]}]}";
  };
  CHECK(load_error(two(R"({"op": "end", "name": "lat", "key": "1"})", R"({"op": "yield"})")) ==
        "test.json: at processes.0.script.0: keyed \"end\" of interval \"lat\" with no keyed \"begin\" of it "
        "in "
        "any script");
  CHECK(
      load_error(two(R"({"op": "begin", "name": "lat", "key": "1"})", R"({"op": "yield"})")) ==
      "test.json: at processes.0.script.0: keyed interval \"lat\" is begun but no script ends it with a key");
  CHECK(load_error(two(R"({"op": "begin", "name": "lat", "key": "{nope}"})",
                       R"({"op": "end", "name": "lat", "key": "1"})")) ==
        "test.json: at processes.0.script.0.key: variable \"nope\" is never set in this script; known here: "
        "result, errno, pid, index, msg.type, msg.text, msg.bytes, msg.sender, msg.priority, receiver");
  // Unkeyed intervals still pair within one list of ops.
  CHECK(load_error(two(R"({"op": "begin", "name": "lat"})", R"({"op": "end", "name": "lat", "key": "1"})")) ==
        "test.json: at processes.0.script.0: interval \"lat\" is begun but never ended in the same list of "
        "ops");
  // An end whose key nobody began stops the run.
  auto run = run_text(two(R"({"op": "begin", "name": "lat", "key": "1"})",
                          R"({"op": "sleep", "time": 10}, {"op": "end", "name": "lat", "key": "2"})"));
  CHECK(run.kernel->runtime_error() ==
        "b: end of interval \"lat\" with key \"2\": no begin with that name and key "
        "is open (a keyed interval is begun once for each end, in any thread)");
}

TEST_CASE("script: jitter lengthens kernel costs by a seeded fraction, off by default") {
  // The teaching ping-pong of tests/test_compare.cpp: a 64-byte round trip is 4072 cycles, all of it
  // kernel costs. With jitter 0.25 each cost is 1 to 1.25 times the preset's.
  auto text = [](const std::string& jitter) {
    return R"({"machine": {"costs": "teaching")" + jitter + R"(},
      "channels": [{"name": "ping", "mechanism": "pipe"}, {"name": "pong", "mechanism": "pipe"}],
      "processes": [
        {"name": "client", "script": [{"op": "repeat", "count": 50, "body": [{"op": "begin", "name": "rtt"},
          {"op": "send", "channel": "ping", "bytes": 64}, {"op": "recv", "channel": "pong", "bytes": 64},
          {"op": "end", "name": "rtt"}]}]},
        {"name": "server", "script": [{"op": "repeat", "count": 50, "body": [
          {"op": "recv", "channel": "ping", "bytes": 64}, {"op": "send", "channel": "pong", "bytes": 64}]}]}]})";
  };
  auto durations = [](const ipcsim::test::Run& run) {
    std::vector<Cycles> d;
    for (const auto& r : run.kernel->records()) d.push_back(r.end - r.start);
    return d;
  };
  auto exact = run_text(text(""));
  auto plain = durations(exact);
  CHECK(interval_stats(*exact.kernel)[0].p50 ==
        4392); // deterministic: the round trip worked out in test_compare
  LoadOptions seed7, seed8;
  seed7.seed = 7;
  seed8.seed = 8;
  auto a = durations(run_text(text(R"(, "jitter": 0.25)"), seed7));
  auto b = durations(run_text(text(R"(, "jitter": 0.25)"), seed7));
  auto c = durations(run_text(text(R"(, "jitter": 0.25)"), seed8));
  CHECK(a == b); // the same seed, the same run
  CHECK(a != c); // another seed, another draw
  REQUIRE(a.size() == plain.size());
  std::set<Cycles> distinct(a.begin(), a.end());
  CHECK(distinct.size() > 10);
  for (std::size_t i = 0; i < a.size(); ++i) {
    CHECK(a[i] >= plain[i]);
    // Each cost rounds to the nearest cycle: at most half a cycle more per charge (30 charges a round trip).
    CHECK(static_cast<double>(a[i]) <= static_cast<double>(plain[i]) * 1.25 + 15);
  }
  CHECK(load_error(text(R"(, "jitter": 1.5)")) ==
        "test.json: at machine.jitter: invalid value 1.5; expected a value <= 1");
}

TEST_CASE("script: sizes, types and priorities may be script variables, read when the op runs") {
  // A loop doubles the message size: each round trip sends and receives {size} bytes.
  auto run = run_text(R"({"machine": {"costs": "ideal"}, "channels": [{"name": "q", "mechanism": "posix_mq"}],
    "processes": [{"name": "p", "script": [
      {"op": "set", "var": "size", "value": 8},
      {"op": "set", "var": "prio", "value": 3},
      {"op": "set", "var": "low", "value": 1},
      {"op": "send", "channel": "q", "bytes": "{size}", "priority": "{low}", "text": "low"},
      {"op": "send", "channel": "q", "bytes": "{size}", "priority": "{prio}", "text": "high"},
      {"op": "recv", "channel": "q", "bytes": "{size}"},
      {"op": "print", "text": "{msg.text} {msg.bytes} {msg.priority}"},
      {"op": "calc", "var": "size", "expr": "size * 4"},
      {"op": "pipe", "fds": ["r", "w"]},
      {"op": "write", "fd": "w", "bytes": "{size}"},
      {"op": "read", "fd": "r", "bytes": "{size}"},
      {"op": "print", "text": "{result}"}]}]})");
  CHECK(run.kernel->runtime_error().empty());
  CHECK(console_texts(run) == std::vector<std::string>{"high 8 3", "32"});

  // The same run with the values written in: the same cycles (teaching preset, one core).
  auto timed = [](const std::string& bytes) {
    auto r = run_text(R"({"machine": {"costs": "teaching"}, "channels": [{"name": "c", "mechanism": "pipe"}],
      "processes": [{"name": "p", "script": [{"op": "set", "var": "n", "value": 4096},
        {"op": "send", "channel": "c", "bytes": )" +
                      bytes + R"(}, {"op": "recv", "channel": "c", "bytes": )" + bytes + R"(}]}]})");
    return r.kernel->makespan();
  };
  CHECK(timed("\"{n}\"") == timed("4096"));
  CHECK(timed("4096") > timed("8")); // the size is what is copied

  // Out of range when the op runs: the run stops, naming the op, the field, the variable and its value.
  auto bad = [](const std::string& value, const std::string& field) {
    auto r = run_text(R"({"machine": {"costs": "ideal"}, "channels": [{"name": "c", "mechanism": "sysv_msg"}],
      "processes": [{"name": "p", "script": [{"op": "set", "var": "v", "value": )" +
                      value + R"(}, {"op": "send", "channel": "c", )" +
                      (field == "bytes" ? std::string() : std::string(R"("bytes": 8, )")) + "\"" + field +
                      R"(": "{v}"}]}]})");
    return r.kernel->runtime_error();
  };
  CHECK(bad("-1", "bytes") ==
        "p: send bytes \"{v}\": the variable holds -1; expected a whole number from 0 to 1099511627776");
  CHECK(bad("0", "type") ==
        "p: send type \"{v}\": the variable holds 0; expected a whole number from 1 to 9223372036854775807");
  CHECK(bad("40000", "priority") ==
        "p: send priority \"{v}\": the variable holds 40000; expected a whole number from 0 to 32767");
  CHECK(bad("\"big\"", "bytes") == "p: send bytes \"{v}\": the variable holds text \"big\"; expected a whole "
                                   "number from 0 to 1099511627776");

  // At load: a variable never set, and a value that is neither a size nor "{NAME}".
  CHECK(
      load_error(one_process(R"({"op": "write", "fd": "w", "bytes": "{nope}"})")) ==
      "test.json: at processes.0.script.0.bytes: variable \"nope\" is never set in this script; known here: "
      "result, errno, pid, index, msg.type, msg.text, msg.bytes, msg.sender, msg.priority, receiver");
  CHECK(
      load_error(one_process(R"({"op": "write", "fd": "w", "bytes": "size"})")) ==
      "test.json: at processes.0.script.0.bytes: invalid value \"size\"; expected a whole number of bytes or "
      "a size such as \"4KiB\", \"1MiB\", \"512B\", or a script variable as \"{NAME}\"");
}

TEST_CASE("script: the mechanisms' own calls take sizes, types and priorities from variables") {
  // Each call with "{VAR}" fields behaves as with the values written in.
  auto run = run_text(one_process(R"(
    {"op": "set", "var": "type", "value": 2}, {"op": "set", "var": "size", "value": 100},
    {"op": "set", "var": "prio", "value": 7}, {"op": "set", "var": "n", "value": 3},
    {"op": "msgget", "key": 42, "flags": ["IPC_CREAT"], "into": "q"},
    {"op": "msgsnd", "msqid": "{q}", "type": "{type}", "bytes": "{size}", "text": "m{n}"},
    {"op": "msgrcv", "msqid": "q", "type": "{type}", "bytes": "{size}"},
    {"op": "print", "text": "msgrcv {result} type {msg.type} {msg.text}"},
    {"op": "mq_open", "name": "/q", "fd": "m", "access": "O_RDWR", "flags": ["O_CREAT"]},
    {"op": "mq_send", "fd": "m", "bytes": "{size}", "priority": "{prio}", "text": "p{prio}"},
    {"op": "set", "var": "buf", "value": 8192},
    {"op": "mq_receive", "fd": "m", "bytes": "{buf}"},
    {"op": "print", "text": "mq_receive {result} prio {msg.priority} {msg.text}"},
    {"op": "socketpair", "fds": ["a", "b"], "type": "dgram"},
    {"op": "sendto", "fd": "a", "bytes": "{size}"}, {"op": "recvfrom", "fd": "b", "bytes": "{n}"},
    {"op": "print", "text": "recvfrom {result}"},
    {"op": "mb_create", "mailbox": "box"}, {"op": "mb_send", "mailbox": "box", "bytes": "{size}"},
    {"op": "mb_recv", "mailbox": "box", "bytes": "{buf}"}, {"op": "print", "text": "mb_recv {result}"})"));
  CHECK(run.kernel->runtime_error().empty());
  CHECK(console_texts(run) == std::vector<std::string>{"msgrcv 100 type 2 m3", "mq_receive 100 prio 7 p7",
                                                       "recvfrom 3", "mb_recv 100"});

  // A value the call refuses is the call's own error, as on Linux; not a stopped run.
  auto call_error = [](const std::string& value, const std::string& call) {
    auto r = run_text(one_process(R"({"op": "set", "var": "v", "value": )" + value + R"(},
      {"op": "msgget", "key": 42, "flags": ["IPC_CREAT"], "into": "q"},
      {"op": "mq_open", "name": "/q", "fd": "m", "access": "O_RDWR", "flags": ["O_CREAT"]},
      )" + call + R"(, {"op": "print", "text": "{result} {errno}"})"));
    CHECK(r.kernel->runtime_error().empty());
    return console_texts(r);
  };
  using Lines = std::vector<std::string>;
  CHECK(call_error("0", R"({"op": "msgsnd", "msqid": "q", "type": "{v}", "bytes": 8})") ==
        Lines{"-1 EINVAL"});
  CHECK(call_error("-1", R"({"op": "msgsnd", "msqid": "q", "type": 1, "bytes": "{v}"})") ==
        Lines{"-1 EINVAL"});
  CHECK(call_error("-1", R"({"op": "msgrcv", "msqid": "q", "bytes": "{v}", "flags": ["IPC_NOWAIT"]})") ==
        Lines{"-1 EINVAL"});
  // mq_send's msg_prio is unsigned: at MQ_PRIO_MAX or below 0, EINVAL before the descriptor is looked at.
  CHECK(call_error("32768", R"({"op": "mq_send", "fd": "m", "bytes": 8, "priority": "{v}"})") ==
        Lines{"-1 EINVAL"});
  CHECK(call_error("-1", R"({"op": "mq_send", "fd": "nofd", "bytes": 8, "priority": "{v}"})") ==
        Lines{"-1 EINVAL"});
  CHECK(call_error("8193", R"({"op": "mq_send", "fd": "m", "bytes": "{v}", "priority": 1})") ==
        Lines{"-1 EMSGSIZE"});
  CHECK(call_error("100", R"({"op": "mq_receive", "fd": "m", "bytes": "{v}"})") == Lines{"-1 EMSGSIZE"});

  // Text, or a size the simulator cannot hold: the run stops, naming the op, the field and the value.
  auto stopped = [](const std::string& value, const std::string& call) {
    auto r = run_text(one_process(R"({"op": "set", "var": "v", "value": )" + value + R"(},
      {"op": "msgget", "key": 42, "flags": ["IPC_CREAT"], "into": "q"},
      {"op": "mq_open", "name": "/q", "fd": "m", "access": "O_RDWR", "flags": ["O_CREAT"]},
      {"op": "socketpair", "fds": ["a", "b"], "type": "dgram"}, )" +
                                  call));
    return r.kernel->runtime_error();
  };
  CHECK(stopped("\"x\"", R"({"op": "msgsnd", "msqid": "q", "type": "{v}", "bytes": 8})") ==
        "p: msgsnd: variable v holds text, not a number");
  CHECK(stopped("\"x\"", R"({"op": "msgrcv", "msqid": "q", "bytes": "{v}"})") ==
        "p: msgrcv: variable v holds text, not a number");
  CHECK(stopped("\"x\"", R"({"op": "mq_send", "fd": "m", "bytes": 8, "priority": "{v}"})") ==
        "p: mq_send: variable v holds text, not a number");
  CHECK(stopped("-1", R"({"op": "mq_send", "fd": "m", "bytes": "{v}"})") ==
        "p: mq_send bytes \"{v}\": the variable holds -1; expected a whole number from 0 to 1099511627776");
  CHECK(
      stopped("-1", R"({"op": "mq_receive", "fd": "m", "bytes": "{v}"})") ==
      "p: mq_receive bytes \"{v}\": the variable holds -1; expected a whole number from 0 to 1099511627776");
  CHECK(stopped("-1", R"({"op": "sendto", "fd": "a", "bytes": "{v}"})") ==
        "p: sendto bytes \"{v}\": the variable holds -1; expected a whole number from 0 to 1099511627776");
  CHECK(stopped("\"x\"", R"({"op": "recvfrom", "fd": "b", "bytes": "{v}"})") ==
        "p: recvfrom bytes \"{v}\": the variable holds text \"x\"; expected a whole number from 0 to "
        "1099511627776");
  CHECK(stopped("2147483648", R"({"op": "mb_send", "to": "p", "bytes": "{v}"})") ==
        "p: mb_send bytes \"{v}\": the variable holds 2147483648; expected a whole number from 0 to "
        "1073741824");
  CHECK(stopped("-1", R"({"op": "mb_recv", "from": "p", "bytes": "{v}"})") ==
        "p: mb_recv bytes \"{v}\": the variable holds -1; expected a whole number from 0 to 1073741824");
}

TEST_CASE("script: times and repeat counts may be script variables") {
  // compute, sleep and a call's timeout read whole cycles or a duration; the run takes the same
  // cycles as with the values written in.
  auto timed = [](const std::string& compute, const std::string& sleep, const std::string& timeout) {
    auto r = run_text(one_process(R"({"op": "set", "var": "c", "value": 5000},
      {"op": "set", "var": "d", "value": "2us"}, {"op": "set", "var": "t", "value": "3us"},
      {"op": "compute", "time": )" + compute +
                                      R"(}, {"op": "sleep", "time": )" + sleep + R"(},
      {"op": "mq_open", "name": "/q", "fd": "m", "access": "O_RDWR", "flags": ["O_CREAT"]},
      {"op": "mq_receive", "fd": "m", "bytes": 8192, "timeout": )" +
                                      timeout + R"(},
      {"op": "print", "text": "{errno}"})",
                                  "teaching"));
    CHECK(console_texts(r) == std::vector<std::string>{"ETIMEDOUT"});
    return r.kernel->makespan();
  };
  CHECK(timed("\"{c}\"", "\"{d}\"", "\"{t}\"") == timed("5000", "\"2us\"", "\"3us\""));
  CHECK(timed("\"{c}\"", "\"{d}\"", "\"{t}\"") > timed("4000", "\"2us\"", "\"3us\""));

  auto run = run_text(one_process(R"({"op": "set", "var": "n", "value": 3},
    {"op": "repeat", "count": "{n}", "body": [{"op": "print", "text": "pass {n}"}, {"op": "add", "var": "n", "value": -1}]},
    {"op": "sigaction", "signal": "SIGALRM", "handler": [{"op": "print", "text": "alarm"}]},
    {"op": "set", "var": "a", "value": 1000}, {"op": "alarm", "time": "{a}"},
    {"op": "sem_init", "sem": "s", "value": 0}, {"op": "set", "var": "w", "value": "5us"},
    {"op": "sem_timedwait", "sem": "s", "timeout": "{w}"}, {"op": "print", "text": "{errno}"})"));
  // The count is read when the repeat starts: changing the variable inside does not change it.
  CHECK(console_texts(run) == std::vector<std::string>{"pass 3", "pass 2", "pass 1", "alarm", "EINTR"});
  // sem_timedwait interrupted by the alarm's handler at 1,000 cycles (ideal preset: calls are free).
  CHECK(run.kernel->makespan() == 1000);

  auto stopped = [](const std::string& value, const std::string& op) {
    auto r = run_text(one_process(R"({"op": "set", "var": "v", "value": )" + value + R"(},
      {"op": "sem_init", "sem": "s", "value": 0}, )" +
                                  op));
    return r.kernel->runtime_error();
  };
  CHECK(
      stopped("-5", R"({"op": "compute", "time": "{v}"})") ==
      "p: compute time \"{v}\": the variable holds -5; expected whole cycles from 0 to 1125899906842624 or a "
      "duration such as \"10us\"");
  CHECK(stopped("\"soon\"", R"({"op": "sleep", "time": "{v}"})") ==
        "p: sleep time \"{v}\": the variable holds text \"soon\"; expected whole cycles from 0 to "
        "1125899906842624 or a duration such as \"10us\"");
  CHECK(stopped("\"1 year\"", R"({"op": "alarm", "time": "{v}"})") ==
        "p: alarm time \"{v}\": the variable holds text \"1 year\"; expected whole cycles from 0 to "
        "1125899906842624 or a duration such as \"10us\"");
  CHECK(stopped("-1", R"({"op": "sem_timedwait", "sem": "s", "timeout": "{v}"})") ==
        "p: sem_timedwait timeout \"{v}\": the variable holds -1; expected whole cycles from 0 to "
        "1125899906842624 or a duration such as \"10us\"");
  CHECK(stopped("\"x\"",
                R"({"op": "mq_open", "name": "/q", "fd": "m", "access": "O_RDWR", "flags": ["O_CREAT"]},
      {"op": "mq_receive", "fd": "m", "bytes": 8192, "timeout": "{v}"})") ==
        "p: mq_receive timeout \"{v}\": the variable holds text \"x\"; expected whole cycles from 0 to "
        "1125899906842624 or a duration such as \"10us\"");
  CHECK(stopped("-1", R"({"op": "repeat", "count": "{v}", "body": []})") ==
        "p: repeat count \"{v}\": the variable holds -1; expected a whole number from 0 to 4294967295");
  CHECK(
      load_error(one_process(R"({"op": "compute", "time": "{never}"})")) ==
      "test.json: at processes.0.script.0.time: variable \"never\" is never set in this script; known here: "
      "result, errno, pid, index, msg.type, msg.text, msg.bytes, msg.sender, msg.priority, receiver");
}
