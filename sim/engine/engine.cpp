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

Cycles to_cycles(double clock) {
  double relative = clock - g_origin;
  assert(relative >= 0 && relative == std::floor(relative));
  return static_cast<Cycles>(relative);
}
} // namespace

struct Doorbell::Impl {
  sg4::MutexPtr mutex = sg4::Mutex::create();
  sg4::ConditionVariablePtr bell = sg4::ConditionVariable::create();
  bool rung = false; // latched: a ring while the core is busy is seen at its next wait
};

Doorbell::Doorbell() : impl_(std::make_unique<Impl>()) {}
Doorbell::~Doorbell() = default;

bool Doorbell::wait_until(Cycles deadline) {
  std::unique_lock lock(*impl_->mutex);
  if (!impl_->rung) {
    if (deadline == kNever)
      impl_->bell->wait(lock);
    else
      impl_->bell->wait_until(lock, g_origin + static_cast<double>(deadline));
  }
  bool rung = impl_->rung;
  impl_->rung = false;
  return rung;
}

void Doorbell::ring() {
  impl_->rung = true;
  impl_->bell->notify_all();
}

Cycles engine_now() { return to_cycles(sg4::Engine::get_clock()); }

Cycles engine_clock_limit() {
  auto origin = static_cast<Cycles>(g_origin);
  return origin < kClockLimitCycles ? kClockLimitCycles - origin : 0;
}

void engine_advance(Cycles cycles) {
  if (cycles > 0) sg4::this_actor::sleep_for(static_cast<double>(cycles));
}

void engine_run(size_t cores, const std::function<void(size_t)>& core_main) {
  int argc = 1;
  char name[] = "ipcsim";
  char* argv[] = {name, nullptr};
  sg4::Engine engine(&argc, argv);
  // SimGrid's own chatter would pollute byte-identical outputs; ipcsim reports for itself.
  xbt_log_control_set("root.thresh:critical");
  sg4::Engine::set_config("contexts/factory:raw");
  g_origin = sg4::Engine::get_clock();
  auto* zone = sg4::create_full_zone("machine");
  std::vector<sg4::Host*> hosts;
  for (size_t i = 0; i < cores; ++i) hosts.push_back(zone->create_host("cpu" + std::to_string(i), 1.0));
  zone->seal();
  for (size_t i = 0; i < cores; ++i)
    sg4::Actor::create("core" + std::to_string(i), hosts[i], [&core_main, i] { core_main(i); });
  engine.run();
}

const char* engine_version() { return SIMGRID_VERSION_STRING; }

} // namespace ipcsim
