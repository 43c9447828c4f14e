// Homework (sim/out/homework.*): every topic's generator over many seeds gives a problem that runs,
// finishes and has distinct answers where the question implies it; the same seed gives the same
// text; the answers agree with an independent run of the printed scenario and, where the model is
// exact, with the count worked out by hand from the scenario.
#include "cli.hpp"
#include "error.hpp"
#include "harness.hpp"
#include "homework.hpp"
#include "simulation.hpp"

#include "cli_harness.hpp"

#include <doctest/doctest.h>
#include <set>
#include <sstream>

using namespace ipcsim;

using ipcsim::test::cli;
using ipcsim::test::contains;
using ipcsim::test::slurp;
using ipcsim::test::TempDir;

namespace {

constexpr std::uint64_t kSeeds = 200;

std::string text_of(const HomeworkProblem& p, bool answers, bool markdown = false) {
  std::ostringstream out;
  print_homework(out, p, answers, markdown);
  return out.str();
}

std::string with_commas(std::uint64_t v) {
  std::string digits = std::to_string(v), out;
  for (std::size_t i = 0; i < digits.size(); ++i) {
    if (i && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

// The printed scenario, run again on its own (what a student does with it).
test::Run rerun(const HomeworkProblem& p) {
  auto run = test::run_text(compact_json(p.scenario));
  REQUIRE(run.kernel->deadlock() == nullptr);
  return run;
}

std::uint64_t switches(const test::Run& run) {
  std::uint64_t n = 0;
  for (const auto& core : run.kernel->cores()) n += core->context_switches;
  return n;
}

} // namespace

TEST_CASE("homework: every topic over 200 seeds runs, finishes, answers every question") {
  for (const auto& topic : homework_topics()) {
    std::set<std::string> scenarios;
    for (std::uint64_t seed = 0; seed < kSeeds; ++seed) {
      CAPTURE(topic.name);
      CAPTURE(seed);
      HomeworkProblem p = make_homework(topic.name, seed);
      CHECK(p.result == "completed");
      CHECK(p.simulated > 0);
      REQUIRE(p.questions.size() >= 3);
      for (const auto& q : p.questions) {
        CHECK(!q.text.empty());
        CHECK(!q.answer.empty());
        CHECK(!q.explanation.empty());
      }
      // The scenario is what `ipcsim run` accepts, and runs to its end on its own.
      auto run = rerun(p);
      CHECK(run.kernel->makespan() == p.simulated);
      scenarios.insert(p.scenario.dump());
    }
    // Random, not a handful of problems repeated.
    CHECK(scenarios.size() > kSeeds * 3 / 4);
  }
}

TEST_CASE("homework: the same seed gives the same problem, byte for byte") {
  for (const auto& topic : homework_topics())
    for (std::uint64_t seed : {0ULL, 1ULL, 42ULL, 9999999999999999999ULL}) {
      CAPTURE(topic.name);
      CAPTURE(seed);
      std::string a = text_of(make_homework(topic.name, seed), true);
      std::string b = text_of(make_homework(topic.name, seed), true);
      CHECK(a == b);
    }
  CHECK(text_of(make_homework("pipes", 1), false) != text_of(make_homework("pipes", 2), false));
}

// Copies are exact in the model: every message is copied into the pipe and out of it, each copy
// copy_setup (50) + ceil(bytes / 8) cycles on the teaching preset.
TEST_CASE("homework: pipes, the copy answer is the sum worked out from the message sizes") {
  for (std::uint64_t seed = 0; seed < kSeeds; ++seed) {
    CAPTURE(seed);
    HomeworkProblem p = make_homework("pipes", seed);
    std::uint64_t expected = 0;
    for (const auto& op : p.scenario["processes"][0]["script"])
      if (op["op"] == "send") expected += 2 * (50 + (op["bytes"].get<std::uint64_t>() + 7) / 8);
    const HomeworkQuestion* copy = nullptr;
    for (const auto& q : p.questions)
      if (q.text.find("copying") != std::string::npos) copy = &q;
    REQUIRE(copy != nullptr);
    CHECK(copy->answer == with_commas(expected) + " cycles");
  }
}

TEST_CASE("homework: the context-switch answer agrees with an independent run") {
  for (const auto& topic : homework_topics())
    for (std::uint64_t seed = 0; seed < 20; ++seed) {
      CAPTURE(topic.name);
      CAPTURE(seed);
      HomeworkProblem p = make_homework(topic.name, seed);
      for (const auto& q : p.questions)
        if (q.text.rfind("How many context switches", 0) == 0)
          CHECK(q.answer == std::to_string(switches(rerun(p))));
    }
}

TEST_CASE("homework: mailboxes, every message goes to one receiver and every receiver gets one") {
  for (std::uint64_t seed = 0; seed < kSeeds; ++seed) {
    CAPTURE(seed);
    HomeworkProblem p = make_homework("mailboxes", seed);
    std::size_t messages = 0, receivers = p.scenario["processes"].size() - 1;
    for (const auto& op : p.scenario["processes"][0]["script"]) messages += op["op"] == "send";
    // "r1: 3, r2: 2": the counts add up to the messages sent, none is zero.
    const std::string& counts = p.questions[1].answer;
    std::size_t total = 0, named = 0;
    std::istringstream parts(counts);
    std::string part;
    while (std::getline(parts, part, ',')) {
      auto colon = part.find(": ");
      REQUIRE(colon != std::string::npos);
      std::size_t n = std::stoul(part.substr(colon + 2));
      CHECK(n > 0);
      total += n, ++named;
    }
    CHECK(total == messages);
    CHECK(named == receivers);
    CHECK(p.questions[0].answer.rfind("r", 0) == 0);
  }
}

TEST_CASE("homework: scheduling, the three processes finish at different times, in the order given") {
  for (std::uint64_t seed = 0; seed < kSeeds; ++seed) {
    CAPTURE(seed);
    HomeworkProblem p = make_homework("scheduling", seed);
    auto run = rerun(p);
    std::vector<std::pair<Cycles, std::string>> ends;
    for (const auto& t : run.kernel->threads()) ends.push_back({t.finished_at, t.display_name()});
    std::sort(ends.begin(), ends.end());
    CHECK(ends[0].first < ends[1].first);
    CHECK(ends[1].first < ends[2].first);
    CHECK(p.questions[0].answer == ends[0].second + ", " + ends[1].second + ", " + ends[2].second);
  }
}

TEST_CASE("homework: message queues, the order of receipt is a permutation of the messages") {
  for (std::uint64_t seed = 0; seed < kSeeds; ++seed) {
    CAPTURE(seed);
    HomeworkProblem p = make_homework("message-queues", seed);
    std::size_t n = 0;
    for (const auto& op : p.scenario["processes"][0]["script"]) n += op["op"] == "send";
    std::set<std::string> seen;
    std::istringstream parts(p.questions[0].answer);
    std::string part;
    while (std::getline(parts, part, ',')) seen.insert(part.substr(part.find_first_not_of(' ')));
    CHECK(seen.size() == n);
  }
}

TEST_CASE("homework: the printed problem") {
  HomeworkProblem p = make_homework("semaphores", 3);
  std::string plain = text_of(p, false);
  CHECK(plain.find("Questions\n---------") != std::string::npos);
  CHECK(plain.find("Answers") == std::string::npos);
  std::string answered = text_of(p, true);
  CHECK(answered.rfind(plain, 0) == 0); // the answers follow the same problem
  CHECK(answered.find("Answers (from the simulated run)") != std::string::npos);
  std::string markdown = text_of(p, true, true);
  CHECK(markdown.find("## Homework: ") == 0);
  CHECK(markdown.find("```json\n{") != std::string::npos);
  // The scenario block is the JSON the problem carries.
  CHECK(json::parse(compact_json(p.scenario)) == p.scenario);
}

TEST_CASE("homework: command line") {
  auto r = cli({"homework", "pipes", "-s", "7"});
  CHECK(r.status == kExitOk);
  CHECK(r.err.empty());
  CHECK(r.out == text_of(make_homework("pipes", 7), false));
  auto c = cli({"homework", "pipes", "-s", "7", "-c"});
  CHECK(c.out == text_of(make_homework("pipes", 7), true));
  auto only = cli({"homework", "pipes", "--seed", "7", "--scenario-only"});
  CHECK(only.out == compact_json(make_homework("pipes", 7).scenario) + "\n");
  auto set = cli({"homework", "mailboxes", "-s", "10", "--count", "3", "--markdown", "-c"});
  CHECK(set.status == kExitOk);
  CHECK(set.out == text_of(make_homework("mailboxes", 10), true, true) +
                       text_of(make_homework("mailboxes", 11), true, true) +
                       text_of(make_homework("mailboxes", 12), true, true));
}

TEST_CASE("homework: command-line errors") {
  auto topic = cli({"homework", "pipe", "-s", "1"});
  CHECK(topic.status == kExitBadInput);
  CHECK(topic.err == "error: unknown homework topic \"pipe\" (did you mean \"pipes\"?); topics: pipes, "
                     "message-queues, mailboxes, shared-memory, semaphores, scheduling\n");
  auto seed = cli({"homework", "pipes", "-s", "x1"});
  CHECK(seed.status == kExitBadInput);
  CHECK(seed.err == "error: -s x1: expected a whole number from 0 to 9999999999999999999\n");
  auto negative = cli({"homework", "pipes", "-s", "-1"});
  CHECK(negative.status == kExitBadInput);
  auto missing = cli({"homework", "pipes"});
  CHECK(missing.status == kExitBadInput);
  CHECK(missing.err.find("--seed is required") != std::string::npos);
  for (const std::vector<std::string>& extra :
       {std::vector<std::string>{"-c"}, {"--markdown"}, {"--count", "2"}}) {
    std::vector<std::string> args{"homework", "pipes", "-s", "1", "--scenario-only"};
    args.insert(args.end(), extra.begin(), extra.end());
    auto only = cli(args);
    CHECK(only.status == kExitBadInput);
    CHECK(only.err ==
          "error: --scenario-only prints one problem's scenario, as JSON: it takes no -c, --markdown "
          "or --count\n");
  }
  auto count = cli({"homework", "pipes", "-s", "1", "--count", "0"});
  CHECK(count.status == kExitBadInput);
  CHECK(count.err.find("--count") != std::string::npos);
}
