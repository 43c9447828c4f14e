// The only door to SimGrid. Everything else in ipcsim speaks in whole cycles; here one SimGrid
// time unit is one machine cycle, so doubles hold exact integers (up to 2^53 cycles, about 35 days
// at 3 GHz) and a single cycle always advances the clock.
#pragma once
#include "cycles.hpp"

#include <cstddef>
#include <functional>
#include <memory>

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
// Builds one host per core, starts one actor per core running core_main(index), runs to the end.
void engine_run(size_t cores, const std::function<void(size_t)>& core_main);
const char* engine_version();

} // namespace ipcsim
