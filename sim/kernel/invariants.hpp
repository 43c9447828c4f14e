// Invariants of a run, checked after every run and, in the debug mode (--check-invariants), at every
// dispatch, switch and wakeup: a violation stops the run naming the invariant, never a silent wrong
// number. docs/limits.md lists what is checked and what is not.
#pragma once
#include "events.hpp"
#include "kernel.hpp"

#include <cstddef>
#include <map>
#include <string>
#include <unordered_map>
#include <vector>

namespace ipcsim {

class Kernel;

class InvariantChecker : public Observer {
public:
  // One object's flows (conservation: sent = received + held + dropped, in messages and in bytes).
  struct Ledger {
    std::uint64_t sent_messages = 0, sent_bytes = 0;
    std::uint64_t received_messages = 0, received_bytes = 0;
    std::uint64_t dropped_messages = 0, dropped_bytes = 0;
    std::map<std::string, std::pair<std::uint64_t, std::uint64_t>> drops; // reason -> messages, bytes
  };

  InvariantChecker(const Kernel& kernel, bool continuous) : kernel_(kernel), continuous_(continuous) {}

  // The first violation seen while the run went on ("" when none).
  const std::string& violation() const { return violation_; }
  // Checks the finished run (a run stopped by an error skips the accounting checks: its pending
  // cycles never passed). Returns the first violation, "" when none.
  std::string check_end();
  // Sent = received + held (each mechanism's IpcState::held) + dropped, per object; "" when it holds.
  std::string check_conservation() const;
  // Every object's flows so far, by name.
  const std::map<std::string, Ledger>& ledger() const { return ledger_; }

  void on_thread_state(const Thread&, ThreadState, ThreadState, const WaitQueue*, Cycles at) override;
  void on_dispatch(const Core& core, const Thread&, Cycles at) override;
  void on_switch_out(const Core& core, const Thread&, Cycles at) override;
  void on_user_run(const Core& core, const Thread&, Cycles start, Cycles end) override;
  void on_wakeup(const Thread&, const Thread*, Cycles at) override;
  void on_message_sent(const Thread&, const Message& message, const std::string& object, Cycles at) override;
  void on_message_received(const Thread&, const Message& message, const std::string& object,
                           Cycles at) override;
  void on_flow(const std::string& object, Flow kind, std::uint64_t messages, std::uint64_t bytes,
               const char* reason, Cycles at) override;
  // Kernel::charge: `cycles` charged to a thread on `core` (each core's attribution).
  void on_core_charge(const Core& core, Cycles cycles) {
    if (core_charged_.size() <= core.index) core_charged_.resize(core.index + 1, 0);
    core_charged_[core.index] += cycles;
  }

private:
  void fail(const std::string& what);
  // The clock never goes back on `core`; at a `step` (dispatch, switch-out) the debug mode's checks.
  void core_time(const Core& core, Cycles at, const char* event, bool step);
  // No thread is on two wait queues; every queue's links and size agree; a thread on a queue is
  // blocked. O(threads): after the run, or at every event in the debug mode.
  std::string check_queues() const;
  // The cycles charged to threads on `core` are the cycles it passed plus those still pending (at
  // the end: its busy time and idle exits). O(1).
  std::string check_core(const Core& core, bool at_end) const;
  // The debug mode's checks at an event on `core`: queues, the core's cycles, conservation.
  void check_now(const Core& core);

  const Kernel& kernel_;
  bool continuous_;
  std::string violation_;
  std::vector<Cycles> core_clock_;                 // the last event time seen on each core
  std::vector<Cycles> core_charged_;               // the cycles charged on each core
  std::unordered_map<std::uint64_t, Cycles> sent_; // in flight: message id -> when sent
  std::uint64_t last_sent_ = 0;                    // the highest id sent
  std::size_t received_ = 0;
  std::map<std::string, Ledger> ledger_;
};

} // namespace ipcsim
