#include "lock.hpp"

#include <cassert>

namespace ipcsim {

ObjectLock::Held ObjectLock::take(OpContext& ctx, std::uint16_t activity) {
  ctx.sync();
  // Critical sections never overlap in simulated order: a holder releases before it lets time pass.
  assert(!held_ && "an ObjectLock taken twice");
  const auto core = static_cast<std::int32_t>(ctx.core.index);
  if (last_core_ >= 0 && last_core_ != core) {
    // The holder on another core runs (it never sleeps holding it): Linux's waiter spins, on a
    // spinlock, or on a mutex by optimistic spinning (mutex_optimistic_spin while the owner is on
    // its CPU). Then the lines the sections share, written last there, come over.
    const Cycles now = ctx.now();
    if (free_at_ > now) ctx.charge(activity, Primitive::lock_wait, free_at_ - now);
    ctx.charge(activity, Primitive::cache_line_transfer,
               ctx.kernel.model().costs.cycles(Primitive::cache_line_transfer) * shared_lines_);
  }
  held_ = true;
  last_core_ = core;
  ++ctx.core.locks_held;
  return Held(*this, ctx);
}

void ObjectLock::Held::release() {
  if (!lock_) return;
  ObjectLock& lock = *std::exchange(lock_, nullptr);
  lock.held_ = false;
  lock.free_at_ = ctx_->now();
  --ctx_->core.locks_held;
}

} // namespace ipcsim
