// The only door to SimGrid. Everything else in ipcsim speaks in whole cycles; here one SimGrid
// time unit is one machine cycle, so doubles hold exact integers (up to 2^53 cycles, about 35 days
// at 3 GHz) and a single cycle always advances the clock.
#pragma once
#include "cycles.hpp"

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace ipcsim {

// A core's doorbell: the core actor sleeps on it, other cores ring it (an interrupt).
class Doorbell {
public:
  Doorbell();
  ~Doorbell();
  Doorbell(const Doorbell&) = delete;
  Doorbell& operator=(const Doorbell&) = delete;
  // Sleeps until simulated time `deadline` (kNever: until rung). True when rung before the deadline.
  bool wait_until(Cycles deadline);
  void ring();

private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Cycles since the current run started.
Cycles engine_now();
// The latest engine_now() whose clock value is still exact: kClockLimitCycles (units.hpp) less
// where this run started on SimGrid's clock. That start is 0 for the command line; unit tests run
// many scenarios in one process, and SimGrid's clock keeps running from one to the next.
Cycles engine_clock_limit();
// Uninterruptible passage of time on the calling core (kernel code runs with interrupts off).
void engine_advance(Cycles cycles);
// A simulated machine as the engine sees it: a name and its cores, each played by an actor that
// runs core_main(index).
struct EngineMachine {
  std::string name;
  size_t cores = 1;
  std::function<void(size_t)> core_main;
};
// Builds a zone per machine with a host per core, starts one actor per core, and runs every
// machine side by side on one clock until the last actor ends. The zones are joined under one root
// zone, where the network of remote RPC will go.
void engine_run(const std::vector<EngineMachine>& machines);
const char* engine_version();

} // namespace ipcsim
