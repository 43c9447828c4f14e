#include "statistics.hpp"

#include "kernel.hpp"

#include <algorithm>

namespace ipcsim {

static_assert(kAttributedPrimitiveCount <= 64, "Charge::primitive holds 6 bits");

ThreadAccount& Statistics::account_of(const Thread& thread) {
  if (thread.id >= accounts_.size()) accounts_.resize(thread.id + 1);
  return accounts_[thread.id];
}

const ThreadAccount& Statistics::account(const Thread& thread) const {
  return thread.id < accounts_.size() ? accounts_[thread.id] : empty_;
}

// The kernel notifies before it updates the thread: state_since is still when `from` began.
void Statistics::on_thread_state(const Thread& thread, ThreadState from, ThreadState, const WaitQueue*,
                                 Cycles at) {
  if (from != ThreadState::Ready && from != ThreadState::Running && from != ThreadState::Blocked) return;
  ThreadAccount& account = account_of(thread);
  Cycles spent = at - thread.state_since;
  (from == ThreadState::Ready     ? account.ready_cycles
   : from == ThreadState::Running ? account.run_cycles
                                  : account.blocked_cycles) += spent;
}

std::uint32_t Statistics::thread_id(const Thread& thread) { return thread.id; }

ThreadAccount& Statistics::grow(std::uint32_t thread) {
  accounts_.resize(thread + std::size_t{1});
  return accounts_[thread];
}

void Statistics::add_charge_slow(ThreadAccount& account, Slot& slot, std::uint32_t thread,
                                 std::uint16_t activity, std::uint8_t primitive, Cycles cycles) {
  // A thread's charges come in the same order op after op (trap_enter, syscall_dispatch, copies,
  // trap_exit...): the entry after the last one charged is nearly always the next one, so the
  // search starts there instead of at the front.
  auto& charges = account.charges;
  const std::size_t n = charges.size();
  std::size_t i = account.next_charge < n ? account.next_charge : 0;
  for (std::size_t k = 0; k < n; ++k) {
    Charge& entry = charges[i];
    // `cycles` may exceed what an entry holds (a compute of 2^50): then kMaxCycles - cycles would
    // wrap around and the 48-bit entry overflow, losing cycles (found by the end-of-run invariant).
    if (entry.activity == activity && entry.primitive == primitive && cycles <= Charge::kMaxCycles &&
        entry.cycles <= Charge::kMaxCycles - cycles) {
      entry.cycles += cycles;
      account.next_charge = static_cast<std::uint16_t>(i + 1);
      slot = {thread, activity, primitive, 0, static_cast<std::uint32_t>(i)};
      return;
    }
    i = i + 1 == n ? 0 : i + 1;
  }
  account.next_charge = 0;
  while (cycles > 0) {
    Cycles part = std::min(cycles, Charge::kMaxCycles);
    // Grown by half rather than doubled: a thread ends with a dozen entries or so, and a million
    // threads' spare capacity would be tens of MiB (13 entries: 112 bytes on the heap, not 144).
    if (charges.size() == charges.capacity())
      charges.reserve(charges.size() < 4 ? 4 : charges.size() * 3 / 2);
    charges.push_back({activity, primitive, part});
    cycles -= part;
  }
  slot = {thread, activity, primitive, 0, static_cast<std::uint32_t>(charges.size() - 1)};
}

} // namespace ipcsim
