// The run's accounts, kept by a subscriber to the kernel's events like every other output: per
// thread, the cycles it spent running, ready and blocked (from its state changes), and every cycle
// charged to it, by activity and cost primitive (from the charges).
#pragma once
#include "events.hpp"

#include <cstdint>
#include <vector>

namespace ipcsim {

// Cycles charged to a thread for one (activity, primitive) pair; a total past kMaxCycles spans
// several entries. 8 bytes, so that a million threads' accounts stay small.
struct Charge {
  static constexpr unsigned kActivityBits = 10;
  static constexpr Cycles kMaxCycles = (Cycles{1} << 48) - 1;
  std::uint64_t activity : kActivityBits;
  std::uint64_t primitive : 6;
  std::uint64_t cycles : 48;
};
static_assert(sizeof(Charge) == 8);

struct ThreadAccount {
  std::vector<Charge> charges;
  Cycles run_cycles = 0, ready_cycles = 0,
         blocked_cycles = 0;     // closed states (thread.state_since: the open one)
  std::uint16_t next_charge = 0; // where on_charge looks first
};

class Statistics : public Observer {
public:
  void on_thread_state(const Thread& thread, ThreadState from, ThreadState to, const WaitQueue* queue,
                       Cycles at) override;
  void on_charge(const Thread& thread, std::uint16_t activity, std::uint8_t primitive,
                 Cycles cycles) override;
  // Threads that never changed state or were charged have an empty account.
  const ThreadAccount& account(const Thread& thread) const;

private:
  ThreadAccount& account_of(const Thread& thread);
  std::vector<ThreadAccount> accounts_; // by thread id
  ThreadAccount empty_;
};

} // namespace ipcsim
