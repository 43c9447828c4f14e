// Homework that writes itself: `ipcsim homework TOPIC -s SEED` draws a small, well-posed scenario
// for a topic from a seeded generator, runs it, and asks questions whose answers are read from that
// run (its events, its summary), never computed beside it. The same seed gives the same problem,
// byte for byte, on every platform: the generator draws from its own PRNG (SplitMix64) with its own
// range reduction, not from std:: distributions, whose algorithms differ between standard libraries.
#pragma once
#include "params.hpp"

#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

namespace ipcsim {

struct HomeworkQuestion {
  std::string text;
  std::string answer;
  std::vector<std::string> explanation; // lines drawn from the run: events, costs
};

struct HomeworkProblem {
  std::string topic;
  std::uint64_t seed = 0;
  std::string title;
  json scenario; // what `ipcsim run` accepts
  std::string statement;
  std::vector<HomeworkQuestion> questions;
  // What the run did, for the well-posedness checks (tests) and the answers' explanations.
  std::string result;          // "completed" or "deadlock"
  std::uint64_t simulated = 0; // cycles
  unsigned attempts = 1;       // draws until the run passed the topic's checks
};

struct HomeworkTopic {
  std::string name;
  std::string description;
};
const std::vector<HomeworkTopic>& homework_topics();

// Throws UserError naming the accepted topics for an unknown one.
HomeworkProblem make_homework(const std::string& topic, std::uint64_t seed);

// Plain text (a terminal) or Markdown (a problem set); answers only with `with_answers`.
void print_homework(std::ostream& out, const HomeworkProblem& problem, bool with_answers, bool markdown);

// The scenario as JSON text, short objects on one line (ops read as one line each).
std::string compact_json(const json& value);

} // namespace ipcsim
