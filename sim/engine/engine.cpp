#include "engine.hpp"

#include <simgrid/s4u.hpp>
#include <simgrid/version.h>
#include <string>
#include <xbt/log.h>

namespace sg4 = simgrid::s4u;

namespace ipcsim {

// A semaphore: a ring and a wait cost one simcall each, and a ring that comes first leaves its token.
struct Doorbell::Impl {
  sg4::SemaphorePtr bell = sg4::Semaphore::create(0);
};

Doorbell::Doorbell() : impl_(std::make_unique<Impl>()) {}
Doorbell::~Doorbell() = default;

void Doorbell::wait() { impl_->bell->acquire(); }

void Doorbell::ring() { impl_->bell->release(); }

void engine_run(const std::vector<EngineMachine>& machines) {
  int argc = 1;
  char name[] = "ipcsim";
  char* argv[] = {name, nullptr};
  sg4::Engine engine(&argc, argv);
  // SimGrid's own chatter would pollute byte-identical outputs; ipcsim reports for itself.
  xbt_log_control_set("root.thresh:critical");
  sg4::Engine::set_config("contexts/factory:raw");
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
                         [&core_main = machines[m].core_main, i] { core_main(i); });
  engine.run();
}

const char* engine_version() { return SIMGRID_VERSION_STRING; }

} // namespace ipcsim
