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

class Statistics final : public Observer {
public:
  void on_thread_state(const Thread& thread, ThreadState from, ThreadState to, const WaitQueue* queue,
                       Cycles at) override;
  void on_charge(const Thread& thread, std::uint16_t activity, std::uint8_t primitive,
                 Cycles cycles) override {
    add_charge(thread_id(thread), activity, primitive, cycles);
  }
  // What on_charge does, called by the kernel directly (the most frequent event: dozens per round trip).
  void add_charge(std::uint32_t thread, std::uint16_t activity, std::uint8_t primitive, Cycles cycles) {
    ThreadAccount& account = thread < accounts_.size() ? accounts_[thread] : grow(thread);
    // A (thread, activity, primitive) charged before is nearly always in the cache: its entry's index.
    Slot& slot = cache_[slot_of(thread, activity, primitive)];
    if (slot.thread == thread && slot.activity == activity && slot.primitive == primitive) {
      Charge& entry = account.charges[slot.index];
      if (cycles <= Charge::kMaxCycles && entry.cycles <= Charge::kMaxCycles - cycles) {
        entry.cycles += cycles;
        return;
      }
    }
    add_charge_slow(account, slot, thread, activity, primitive, cycles);
  }
  // Makes room for `threads` accounts at once (the kernel's threads at start): growing one by one
  // would hold the old and the new array together at its peak (a million threads: 80 MiB more).
  void reserve(std::size_t threads) { accounts_.reserve(threads); }
  // Threads that never changed state or were charged have an empty account.
  const ThreadAccount& account(const Thread& thread) const;

private:
  // Where a (thread, activity, primitive) was last found in its thread's charges: a direct-mapped
  // cache, so that a charge does not search the thread's dozen entries. Entries never move or change
  // key, so a slot whose key matches is right.
  struct Slot {
    std::uint32_t thread = ~std::uint32_t{0};
    std::uint16_t activity = 0;
    std::uint8_t primitive = 0;
    std::uint8_t unused = 0;
    std::uint32_t index = 0;
  };
  static constexpr std::size_t kSlotBits = 12;
  static std::size_t slot_of(std::uint32_t thread, std::uint16_t activity, std::uint8_t primitive) {
    std::uint32_t key =
        thread * 0x9E3779B1u ^ (static_cast<std::uint32_t>(activity) << 6 | primitive) * 0x85EBCA6Bu;
    return key >> (32 - kSlotBits);
  }
  static std::uint32_t thread_id(const Thread& thread);
  ThreadAccount& grow(std::uint32_t thread);
  void add_charge_slow(ThreadAccount& account, Slot& slot, std::uint32_t thread, std::uint16_t activity,
                       std::uint8_t primitive, Cycles cycles);
  ThreadAccount& account_of(const Thread& thread);
  std::vector<ThreadAccount> accounts_; // by thread id
  std::vector<Slot> cache_ = std::vector<Slot>(std::size_t{1} << kSlotBits);
  ThreadAccount empty_;
};

} // namespace ipcsim
