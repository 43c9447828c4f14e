#include "simulation.hpp"

#include <cassert>

namespace ipcsim {

Simulation::Simulation(const std::vector<MachineModel>& machines) {
  assert(!machines.empty());
  for (const auto& model : machines) kernels_.push_back(std::make_unique<Kernel>(model));
}

void Simulation::run() {
  std::vector<EngineMachine> engine_machines;
  for (auto& kernel : kernels_) {
    kernel->start();
    engine_machines.push_back(kernel->engine_machine());
  }
  engine_run(engine_machines);
  for (auto& kernel : kernels_) {
    assert(kernel->done());
    kernel->check_invariants();
  }
}

std::string Simulation::runtime_error() const {
  for (const auto& kernel : kernels_)
    if (!kernel->runtime_error().empty())
      return kernels_.size() == 1 ? kernel->runtime_error()
                                  : "machine " + kernel->model().name + ": " + kernel->runtime_error();
  return "";
}

bool Simulation::deadlocked() const {
  for (const auto& kernel : kernels_)
    if (kernel->deadlock()) return true;
  return false;
}

} // namespace ipcsim
