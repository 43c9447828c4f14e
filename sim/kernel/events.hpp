// What happens on the machine, as events that anything may subscribe to: the run's record (console,
// intervals, failed calls), the timeline (sim/out/trace.cpp), and mechanisms that must act when a
// process exits. Every event carries the simulated time at which it happened, on the core where it
// happened; cores run ahead of each other between synchronisations (docs/architecture.md), so events
// of different cores may arrive out of time order, while those of one core or one thread never do.
#pragma once
#include "cycles.hpp"

#include <cstdint>
#include <string>

namespace ipcsim {

struct Thread;
struct Core;
struct Process;
struct WaitQueue;
struct Message;
struct OpContext;
enum class ThreadState : std::uint8_t;

// What happened to messages and bytes on an IPC object, for the conservation invariant (every
// message and byte sent is received, still held, or dropped with a reason: docs/limits.md).
enum class Flow : std::uint8_t { Sent, Received, Dropped };

class Observer {
public:
  virtual ~Observer() = default;
  // A thread changed state (NotStarted, Ready, Running, Blocked, Exited); `queue` is what a blocked
  // thread waits on (nullptr: a plain sleep, or not blocked).
  virtual void on_thread_state(const Thread&, ThreadState /*from*/, ThreadState /*to*/,
                               const WaitQueue* /*queue*/, Cycles /*at*/) {}
  // `cycles` of kernel or user work were charged to `thread`, attributed to `activity` (an op's, or
  // dispatch / tick / timer / exit) and a cost primitive (sim/machine/costs.hpp). Charges come
  // before the cycles pass on the core. Delivered only to observers given to subscribe_charges.
  virtual void on_charge(const Thread&, std::uint16_t /*activity*/, std::uint8_t /*primitive*/,
                         Cycles /*cycles*/) {}
  // A thread was given the core (its dispatch costs follow) / left it.
  virtual void on_dispatch(const Core&, const Thread&, Cycles /*at*/) {}
  virtual void on_switch_out(const Core&, const Thread&, Cycles /*at*/) {}
  // User code ran on the core from `start` to `end` (a compute op, or part of one).
  virtual void on_user_run(const Core&, const Thread&, Cycles /*start*/, Cycles /*end*/) {}
  // A system call trapped into the kernel / returned to user mode (where signals will be delivered).
  virtual void on_syscall_enter(const Core&, const Thread&, std::uint16_t /*activity*/, Cycles /*at*/) {}
  virtual void on_return_to_user(const Core&, const Thread&, std::uint16_t /*activity*/, Cycles /*at*/) {}
  // `waker` (nullptr: a timer) made `woken` ready.
  virtual void on_wakeup(const Thread& /*woken*/, const Thread* /*waker*/, Cycles /*at*/) {}
  // A message left its sender / reached its receiver; `message.id` pairs the two. `object` names
  // what carried it ("channel ping", "pipe", "msqid 0").
  virtual void on_message_sent(const Thread&, const Message&, const std::string& /*object*/, Cycles /*at*/) {}
  virtual void on_message_received(const Thread&, const Message&, const std::string& /*object*/,
                                   Cycles /*at*/) {}
  // `messages` and `bytes` went into `object` (Sent), came out to a receiver (Received: a message
  // counts when its first byte does), or were thrown away (Dropped, with `reason`).
  virtual void on_flow(const std::string& /*object*/, Flow, std::uint64_t /*messages*/,
                       std::uint64_t /*bytes*/, const char* /*reason*/, Cycles /*at*/) {}
  // How full an IPC object is now (bytes in a pipe, messages in a queue).
  virtual void on_fill(const std::string& /*object*/, const char* /*unit*/, std::uint64_t /*value*/,
                       Cycles /*at*/) {}
  // A script printed a line.
  virtual void on_print(const Thread&, const std::string& /*text*/, Cycles /*at*/) {}
  // A system call failed with `error`.
  virtual void on_call_failed(const Thread&, std::uint16_t /*activity*/, int /*error*/, Cycles /*at*/) {}
  // A measured interval closed, ended by `thread`, begun by thread `begun_by` (the same one unless
  // the interval is keyed: producer to consumer).
  virtual void on_interval(const Thread&, std::uint32_t /*name*/, Cycles /*start*/, Cycles /*end*/,
                           std::uint64_t /*bytes*/, std::uint32_t /*begun_by*/) {}
  // The last thread of a process exited, its descriptors closed; `ctx` is its last thread's, on the
  // core where it exited: a mechanism may clean up (wake, charge) there, before the process's
  // joiners are woken.
  virtual void on_process_exit(OpContext& /*ctx*/, Process&) {}
  // `parent` spawned `child` (its threads are ready, not yet run): a mechanism may give the child
  // what a fork passes on (shared memory mappings).
  virtual void on_process_spawn(OpContext& /*ctx*/, Process& /*parent*/, Process& /*child*/) {}
};

} // namespace ipcsim
