// The only door to SimGrid. Each machine is a SimGrid actor that runs the machine's cores as fibers
// (a stack each), and the kernel orders them in simulated time itself (Kernel::park: one core of a
// machine runs at a time, handing the run to the earliest parked core through the doorbells), so a
// machine's run creates no timed SimGrid action and SimGrid's clock stays where the run started.
// Everything else speaks in whole cycles.
#pragma once
#include "cycles.hpp"

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace ipcsim {

// A core's doorbell: the core parks on it until another core hands it the run.
class Doorbell {
public:
  Doorbell();
  ~Doorbell();
  Doorbell(const Doorbell&) = delete;
  Doorbell& operator=(const Doorbell&) = delete;
  // Suspends the calling actor until ring(); a ring that came first is taken at once.
  void wait();
  void ring();

private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// A simulated machine as the engine sees it: a name and its cores, each a fiber that runs
// core_main(index).
struct EngineMachine {
  std::string name;
  size_t cores = 1;
  std::function<void(size_t)> core_main;
};
// Builds a zone per machine with a host and an actor that runs its cores, and runs every machine
// side by side on one clock until the last core ends. An exception escaping a core is thrown again
// from here. The zones are joined under one root
// zone, where the network of remote RPC will go.
void engine_run(const std::vector<EngineMachine>& machines);
const char* engine_version();

} // namespace ipcsim
