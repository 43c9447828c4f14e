// The simulated world: one or more machines, each a kernel on its own cores, run side by side on
// one SimGrid engine and one clock. Machines do not share memory or kernel objects: each has its
// own processes, IPC namespaces and scheduler. The network between them comes with remote RPC
// (docs/architecture.md); until then a scenario's machines only run at the same time.
#pragma once
#include "kernel.hpp"

#include <memory>
#include <string>
#include <vector>

namespace ipcsim {

class Simulation {
public:
  explicit Simulation(const std::vector<MachineModel>& machines);
  Simulation(const Simulation&) = delete;
  Simulation& operator=(const Simulation&) = delete;

  // Runs every machine to its end (each ends when its threads exit, deadlock or fail).
  void run();

  const std::vector<std::unique_ptr<Kernel>>& machines() const { return kernels_; }
  Kernel& machine(std::size_t index) { return *kernels_[index]; }
  // The first runtime error, "machine NAME: ..." when there are several machines; "" when none.
  std::string runtime_error() const;
  bool deadlocked() const;

private:
  std::vector<std::unique_ptr<Kernel>> kernels_;
};

} // namespace ipcsim
