#include "engine.hpp"

#include <cassert>
#include <cmath>
#include <simgrid/s4u.hpp>
#include <simgrid/version.h>
#include <string>
#include <xbt/log.h>

namespace sg4 = simgrid::s4u;

namespace ipcsim {

namespace {
// SimGrid's clock keeps running across engines created in one process (unit tests run many
// scenarios), so every run measures from its own origin.
double g_origin = 0;
// The time as of this actor's last SimGrid call: time moves for an actor only across its own calls,
// so every call below refreshes it (reading SimGrid's clock on each engine_now costs 4% of a run).
Cycles g_now = 0;

Cycles to_cycles(double clock) {
  double relative = clock - g_origin;
  assert(relative >= 0 && relative == std::floor(relative));
  return static_cast<Cycles>(relative);
}

void refresh_now() { g_now = to_cycles(sg4::Engine::get_clock()); }
} // namespace

// A semaphore rather than a mutex and condition variable: a ring and a wake each cost one simcall.
// A token is released only while the core waits, so none is left over for a later wait.
struct Doorbell::Impl {
  sg4::SemaphorePtr bell = sg4::Semaphore::create(0);
  bool rung = false;     // latched: a ring while the core is busy is seen at its next wait
  bool waiting = false;  // the core sleeps in wait_until
  bool released = false; // a token was released for this wait
};

Doorbell::Doorbell() : impl_(std::make_unique<Impl>()) {}
Doorbell::~Doorbell() = default;

bool Doorbell::wait_until(Cycles deadline) {
  Impl& d = *impl_;
  if (!d.rung) {
    d.waiting = true;
    bool timed_out = false;
    if (deadline == kNever)
      d.bell->acquire();
    else
      timed_out = d.bell->acquire_timeout(deadline > g_now ? static_cast<double>(deadline - g_now) : 0.0);
    refresh_now();
    d.waiting = false;
    if (d.released) {
      if (timed_out) d.bell->acquire(); // rung at the very moment of the timeout: take the token back
      d.released = false;
    }
  }
  bool rung = d.rung;
  d.rung = false;
  return rung;
}

void Doorbell::ring() {
  Impl& d = *impl_;
  d.rung = true;
  if (d.waiting && !d.released) {
    d.released = true;
    d.bell->release();
    refresh_now();
  }
}

Cycles engine_now() { return g_now; }

Cycles engine_clock_limit() {
  auto origin = static_cast<Cycles>(g_origin);
  return origin < kClockLimitCycles ? kClockLimitCycles - origin : 0;
}

void engine_advance(Cycles cycles) {
  if (cycles == 0) return;
  sg4::this_actor::sleep_for(static_cast<double>(cycles));
  refresh_now();
}

void engine_run(const std::vector<EngineMachine>& machines) {
  int argc = 1;
  char name[] = "ipcsim";
  char* argv[] = {name, nullptr};
  sg4::Engine engine(&argc, argv);
  // SimGrid's own chatter would pollute byte-identical outputs; ipcsim reports for itself.
  xbt_log_control_set("root.thresh:critical");
  sg4::Engine::set_config("contexts/factory:raw");
  g_origin = sg4::Engine::get_clock();
  g_now = 0;
  auto* root = sg4::create_full_zone("simulation");
  std::vector<std::vector<sg4::Host*>> hosts;
  for (const auto& machine : machines) {
    auto* zone = sg4::create_full_zone(machine.name);
    zone->set_parent(root);
    auto& cores = hosts.emplace_back();
    for (size_t i = 0; i < machine.cores; ++i)
      cores.push_back(zone->create_host(machine.name + ".cpu" + std::to_string(i), 1.0));
    zone->seal();
  }
  root->seal();
  for (size_t m = 0; m < machines.size(); ++m)
    for (size_t i = 0; i < machines[m].cores; ++i)
      sg4::Actor::create(machines[m].name + ".core" + std::to_string(i), hosts[m][i],
                         [&core_main = machines[m].core_main, i] {
                           refresh_now();
                           core_main(i);
                         });
  engine.run();
}

const char* engine_version() { return SIMGRID_VERSION_STRING; }

} // namespace ipcsim
