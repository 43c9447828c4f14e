// Kernel-object locks as other cores see them (docs/architecture.md, "Kernel-object locks"). A
// mechanism's object (a pipe, a message queue, a socket, a mailbox) owns one ObjectLock per lock
// the Linux code takes around its state (pipe->mutex, the queue's spinlock, unix_state_lock). A
// call takes it where its critical section starts and releases it where the section ends, after
// the copy and the publication are charged: the lock records the holder's clock then (`free_at`)
// and the holder's core. A thread on another core that takes it before that time waits until
// then (charged as `lock_wait`, spinning on the owner), and taking a lock last held on another
// core moves its cache line here (`cache_line_transfer`). On one core nothing changes: one thread
// runs at a time there, so nobody ever finds the lock held.
//
// The hand-off scheduler runs a critical section at once, at the time the lock is taken: every
// change the holder makes to the object is in place when another core next runs. What a waiter
// reads after its wait is therefore the state at the release, as long as every reader of that
// state takes the lock first. A critical section must not let time pass for other cores (no sync,
// no wake, no wait_on between take and release; Kernel::sync asserts it): release first, as Linux
// unlocks before it sleeps and (pipe_write, msgsnd's wake_q) before it wakes.
#pragma once
#include "kernel.hpp"

namespace ipcsim {

class ObjectLock {
public:
  // `shared_lines`: the cache lines of the object's state that every critical section under the
  // lock reads and writes, the lock's own included (a pipe's mutex, its head and tail, the
  // pipe_buffer at the ring's end): taken after another core, each comes over from there.
  explicit ObjectLock(std::uint32_t shared_lines = 1) : shared_lines_(shared_lines) {}

  // The lock while this call holds it: release() ends the critical section at the core's current
  // time (charged cycles included); going out of scope releases it too.
  class Held {
  public:
    Held() = default;
    Held(const Held&) = delete;
    Held& operator=(const Held&) = delete;
    Held(Held&& other) noexcept : lock_(std::exchange(other.lock_, nullptr)), ctx_(other.ctx_) {}
    Held& operator=(Held&& other) noexcept {
      release();
      lock_ = std::exchange(other.lock_, nullptr);
      ctx_ = other.ctx_;
      return *this;
    }
    ~Held() { release(); }
    void release();
    bool held() const { return lock_ != nullptr; }

  private:
    friend class ObjectLock;
    Held(ObjectLock& lock, OpContext& ctx) : lock_(&lock), ctx_(&ctx) {}
    ObjectLock* lock_ = nullptr;
    OpContext* ctx_ = nullptr;
  };

  // Lets the core's charged cycles pass (ctx.sync: every core due earlier acts first), then takes
  // the lock at the core's time: when its last holder was another core, waits until that holder
  // released it (lock_wait, the cycles in between) and moves the shared lines (cache_line_transfer
  // each).
  // Charged to `activity`. The uncontended cost of taking it (lock_acquire) is the caller's, as
  // before.
  [[nodiscard]] Held take(OpContext& ctx, std::uint16_t activity);

  // When the last holder released it, and on which core (-1: never taken).
  Cycles free_at() const { return free_at_; }
  std::int32_t last_core() const { return last_core_; }

private:
  std::uint32_t shared_lines_;
  Cycles free_at_ = 0;
  std::int32_t last_core_ = -1;
  bool held_ = false;
};

} // namespace ipcsim
