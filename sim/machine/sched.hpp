// Scheduler policies, each registered by name beside its class (sched.cpp) with its parameters
// declared once. Run queues are per core; placement (which core a thread goes to) is the kernel's,
// ordering within a core is the policy's.
#pragma once
#include "kernel.hpp"
#include "params.hpp"

#include <functional>

namespace ipcsim {

enum class EnqueueReason { New, Woken, Yielded, Preempted, SliceExpired };

class Scheduler {
public:
  virtual ~Scheduler() = default;
  virtual void enqueue(std::size_t core, Thread& thread, EnqueueReason why, Cycles now) = 0;
  virtual Thread* pick(std::size_t core, Cycles now) = 0;
  virtual std::size_t queued(std::size_t core) const = 0;
  // When the scheduler must look at a thread dispatched at `now` again (kNever: not until it leaves).
  virtual Cycles slice_end(const Thread& thread, Cycles now) const = 0;
  // Should `woken`, just made ready on `core` at `now`, take the core from `running`?
  virtual bool preempts(std::size_t core, const Thread& woken, const Thread& running, Cycles now) = 0;
  // `thread` ran `ran` cycles since it was last accounted (on leaving the core, or at a tick).
  virtual void account(Thread& thread, Cycles ran) { (void)thread, (void)ran; }
  // `thread` was dispatched on `core` without a pick (a direct switch to it).
  virtual void handed_over(std::size_t core, Thread& thread, Cycles now) {
    (void)core, (void)thread, (void)now;
  }
  // The slice ended with `thread` running: true to preempt it, false to let it run a new slice.
  virtual bool slice_expired(std::size_t core, Thread& thread, Cycles now) = 0;
};

struct SchedulerDecl {
  std::string name;
  std::string description;
  ParamTable params; // beside "policy"
  std::function<std::unique_ptr<Scheduler>(std::size_t cores, const json& params, double hz)> make;
  int rank = 0; // place in `ipcsim list schedulers`, smallest first
};

// Every policy, by rank (the textbook order: fifo, rr, priority, mlfq).
const std::vector<SchedulerDecl>& scheduler_registry();
const SchedulerDecl* find_scheduler(const std::string& name);
std::vector<std::string> scheduler_names(); // by rank

// Registers a policy at static-initialisation time, beside its class, as OpRegistrar does an op.
struct SchedulerRegistrar {
  explicit SchedulerRegistrar(SchedulerDecl decl);
};

} // namespace ipcsim
