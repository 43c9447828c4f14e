// The futex (futex(2): FUTEX_WAIT if the word still holds a value, FUTEX_WAKE of up to N waiters,
// with timeouts) and the process-shared mutex and condition variable built on it as glibc builds
// them: the lock word of lowlevellock.h (0 free, 1 locked, 2 locked with waiters) whose
// uncontended lock and unlock stay in user space, and glibc 2.42's condition variable (Torvald
// Riegel's two groups of waiters, nptl/pthread_cond_*.c), field by field. Words live in shared
// memory (models/shm.cpp); a futex is named by its segment and offset, as Linux keys a shared futex
// by its page and offset. docs/futex.md describes the model and every charge.
#include "shm.hpp"

#include "error.hpp"

#include <climits>
#include <functional>
#include <map>

namespace ipcsim {

// get_futex_key and futex_hash (kernel/futex/core.c). A shared key: get_user_pages_fast finds and
// pins the page behind the address, its folio's mapping gives the key (the inode's sequence number
// and page offset for shared memory, which is shmem), folio_put drops the pin. A private key is
// current->mm and the address, returned at once. Then futex_hash's jhash2 picks the bucket.
void charge_futex_key(OpContext& ctx, std::uint16_t activity, bool shared) {
  if (shared) ctx.charge(activity, Primitive::user_page_lookup);
  ctx.charge(activity, Primitive::hash_lookup);
}

void charge_futex_unqueue(OpContext& ctx, std::uint16_t activity) {
  ctx.charge(activity, Primitive::lock_acquire);
  ctx.charge(activity, Primitive::list_op);
  ctx.charge(activity, Primitive::atomic_rmw);
}

namespace {

// Every futex the futex ops make is process-shared: the calls have no FUTEX_PRIVATE_FLAG (glibc's
// process-shared mutex and condition variable, and tools/hostbench's ring, call them so).
constexpr bool kSharedFutex = true;

constexpr std::uint64_t kCharged = 1, kSlept = 2, kInCall = 4, kUnqueued = 8;

// Phases of a library op (Thread::phase). A library op runs user code (atomics on the words) and,
// when it must, futex system calls; it keeps its place across the calls' sleeps.
enum Phase : std::uint8_t {
  kStart = 0,
  kLockWait = 1, // __lll_lock_wait: a relaxed load, then xchg(2) until it returns 0
  kLockFutex = 2,
  kLockXchg = 3,
  kCondLoop = 10,    // the waiter looks for a signal in its group, or sleeps
  kCondFutex = 11,   // asleep in FUTEX_WAIT on its group's __g_signals
  kCondCancel = 12,  // timed out: __condvar_cancel_waiting, under the condvar's internal lock
  kCondReplace = 13, // ... then the signal (or broadcast) the cancellation owes
  kCondConfirm = 14, // __condvar_confirm_wakeup, then the mutex again
  kSignal = 20,      // cond_signal, cond_broadcast
};

// The condition variable's fields (glibc's struct __pthread_cond_s, in its order), one 8-byte
// script word each: glibc's 32-bit fields hold their 32-bit value in a word of their own, so a
// script can read each with mem_load and FUTEX_WAIT compares the word a 32-bit futex would.
enum CondField : std::int64_t {
  kWseq = 0,        // waiter sequence << 1 | the index of G2 (64-bit)
  kG1Start = 8,     // the position where G1 starts (64-bit)
  kGSize = 16,      // __g_size[2]: 16, 24
  kG1OrigSize = 32, // G1's size when it became G1 << 2 | the internal lock (0, 1, 2)
  kWrefs = 40,      // waiters << 3 | wake request | clock | process-shared
  kGSignals = 48,   // __g_signals[2]: 48, 56 (the futex words)
};
constexpr std::int64_t kCondBytes = 64;
constexpr std::uint32_t kMaxGroupSize = std::uint32_t{1} << 29; // __PTHREAD_COND_MAX_GROUP_SIZE

// The internal lock's progress (__condvar_acquire_lock), kept across its FUTEX_WAIT.
struct CondLock {
  enum Stage : std::uint8_t { Fresh, Contended, Sleeping, Reload } stage = Fresh;
  std::uint64_t expected = 0; // the word FUTEX_WAIT expects: (s & ~3) | 2
};

// pthread_cond_signal / broadcast's progress: looked at __wrefs, then the lock.
struct SignalRun {
  bool broadcast = false;
  bool locking = false; // __wrefs said there are waiters: taking the lock
  CondLock lock;
};

// What a library op keeps across its sleeps and signal handlers (FutexState::calls).
struct LibraryCall {
  std::uint8_t resume = kStart; // after a handler: the phase the op goes on from
  std::uint64_t wseq = 0;       // cond_wait: the position its fetch_add returned (seq << 1 | group)
  Cycles deadline = kNever;     // a timed wait's absolute time (glibc's abstime)
  std::uint64_t signals = 0;    // the __g_signals word its FUTEX_WAIT expects
  int result = 0;               // ETIMEDOUT once it timed out
  CondLock lock;                // the cancellation's lock
  SignalRun signal;             // cond_signal's, or the cancellation's owed signal
};

// A library op's key: its thread and frame depth (a handler's op is another call than the one it
// interrupted).
std::uint64_t call_key(const Thread& thread) {
  return std::uint64_t{thread.id} << 32 | static_cast<std::uint32_t>(thread.interrupted.size());
}

class FutexState : public IpcState {
public:
  explicit FutexState(Kernel&) {}
  WaitQueue& queue(const Segment& segment, std::uint64_t offset) {
    auto& q = queues_[{segment.serial, offset}];
    if (!q) q = std::make_unique<WaitQueue>("futex " + segment.name + " offset " + std::to_string(offset));
    return *q;
  }
  WaitQueue* find(const Segment& segment, std::uint64_t offset) {
    auto it = queues_.find({segment.serial, offset});
    return it == queues_.end() ? nullptr : it->second.get();
  }
  // Library ops under way (a cond_wait asleep, a mutex_lock a handler interrupted), by call_key.
  std::map<std::uint64_t, LibraryCall> calls;

private:
  std::map<std::pair<std::uint64_t, std::uint64_t>, std::unique_ptr<WaitQueue>> queues_;
};

// FUTEX_WAIT, inside the kernel: EFAULT for an address not mapped, EINVAL when not 4-byte aligned,
// EAGAIN when the word no longer holds `expected`, else sleep until a FUTEX_WAKE (0), the timeout
// (ETIMEDOUT; a zero timeout expires at once) or an interruption (EINTR). The word is read once,
// through the cache like any access, before the call decides. Its steps (futex_wait_setup,
// kernel/futex/waitwake.c): the key and the hash, futex_q_lock (futex_hb_waiters_inc, a locked
// instruction and full barrier, then the bucket's lock), the read; EAGAIN: futex_q_unlock (the
// lock released unused, futex_hb_waiters_dec); a sleep: futex_queue, the plist_add under the
// bucket's lock, charged as every enqueue is (waitqueue_op, as the thread leaves its core).
IoStatus futex_wait_call(OpContext& ctx, std::uint16_t activity, const std::string& map, std::int64_t offset,
                         std::int64_t expected) {
  Thread& thread = ctx.thread;
  // A FUTEX_WAKE took it off the bucket (futex_wake_mark): futex_unqueue finds nothing to do.
  if ((thread.op_progress & kSlept) && thread.wait_result == WaitResult::Woken && !thread.signal_pending) {
    ctx.succeed(0);
    return IoStatus::Done;
  }
  ctx.sync();
  int fault = 0;
  auto access = user_access(ctx, map, offset, 8, false, activity, &fault);
  if (!access) return fail_call(ctx, activity, EFAULT);
  if (offset % 4) return fail_call(ctx, activity, EINVAL);
  WaitQueue& queue = ctx.kernel.ipc<FutexState>().queue(*access->attachment->segment, access->offset);
  // Woken by a signal, interrupted or timed out: wait_on says which (a signal to handle gives
  // ERESTARTSYS, and the delivery restarts the call under SA_RESTART, as signal(7) lists FUTEX_WAIT).
  if (thread.op_progress & kSlept) {
    // A timer or a signal woke it (not futex_wake_mark): its futex_q is still on the bucket's list.
    const bool still_queued = thread.wait_result != WaitResult::Woken || thread.signal_pending;
    if (still_queued && !(thread.op_progress & kUnqueued)) {
      charge_futex_unqueue(ctx, activity);
      thread.op_progress |= kUnqueued;
    }
    return wait_on(ctx, queue, activity);
  }
  if (!(thread.op_progress & kCharged)) { // once, however often the call looks again
    charge_futex_key(ctx, activity, kSharedFutex);
    ctx.charge(activity, Primitive::atomic_rmw);    // futex_hb_waiters_inc
    charge_touch(ctx, *access, 8, false, activity); // futex_get_value_locked
    thread.op_progress |= kCharged;
    ctx.sync();
  }
  if (peek_word(*access->attachment->segment, access->offset) != expected) {
    ctx.charge(activity, Primitive::lock_acquire); // futex_q_unlock: the lock, taken for the read
    ctx.charge(activity, Primitive::atomic_rmw);   // futex_hb_waiters_dec
    return fail_call(ctx, activity, EAGAIN);
  }
  if (thread.op_nonblocking) { // queued, the expired timer seen, unqueued: no sleep
    ctx.charge(activity, Primitive::waitqueue_op);
    charge_futex_unqueue(ctx, activity);
    return fail_call(ctx, activity, ETIMEDOUT);
  }
  IoStatus status = wait_on(ctx, queue, activity);
  if (status == IoStatus::Blocked) thread.op_progress |= kSlept;
  return status;
}

// FUTEX_WAKE (futex_wake, kernel/futex/waitwake.c): wakes up to `count` waiters in the order they
// came (at least one, as Linux's loop does for a count of 0); the result is how many. The word
// itself is not read. The key and the hash, then futex_hb_waiters_pending (a full barrier, a locked
// instruction on x86): with nobody waiting on the bucket the call returns there, without the lock.
// Otherwise the bucket's lock is taken for the walk, and each waiter woken is unlinked
// (__futex_unqueue: plist_del, futex_hb_waiters_dec) before wake_up_q wakes it (`wakeup`).
IoStatus futex_wake_call(OpContext& ctx, std::uint16_t activity, const std::string& map, std::int64_t offset,
                         std::int64_t count) {
  ctx.sync();
  int fault = 0;
  auto access = user_access(ctx, map, offset, 8, false, activity, &fault);
  if (!access) return fail_call(ctx, activity, EFAULT);
  if (offset % 4) return fail_call(ctx, activity, EINVAL);
  charge_futex_key(ctx, activity, kSharedFutex);
  ctx.charge(activity, Primitive::atomic_rmw); // futex_hb_waiters_pending's smp_mb
  std::int64_t woken = 0;
  WaitQueue* queue = ctx.kernel.ipc<FutexState>().find(*access->attachment->segment, access->offset);
  if (queue && queue->head) {
    ctx.charge(activity, Primitive::lock_acquire); // spin_lock(&hb->lock)
    // Each wake lets other cores run: wake from a snapshot, only who still waits here.
    std::vector<Thread*> waiting;
    for (Thread* t = queue->head; t; t = t->wait_next) waiting.push_back(t);
    for (Thread* t : waiting) {
      if (woken >= std::max<std::int64_t>(count, 1)) break;
      if (t->waiting_on != queue) continue;
      ctx.charge(activity, Primitive::list_op);    // plist_del
      ctx.charge(activity, Primitive::atomic_rmw); // futex_hb_waiters_dec
      if (ctx.kernel.wake(ctx.core, *t, &ctx.thread, activity, WaitResult::Woken)) ++woken;
    }
  }
  ctx.succeed(woken);
  return IoStatus::Done;
}

// FUTEX_REQUEUE / FUTEX_CMP_REQUEUE (kernel/futex/requeue.c, futex_requeue without PI): of the
// threads waiting on the first word, in the order they came, wakes the first `nr_wake` and moves up
// to `nr_requeue` more to the second word's queue, where they sleep on (a FUTEX_WAKE of the second
// word wakes them; their timeouts stand). With `cmpval` (CMP_REQUEUE) the first word is read first
// and must still hold it, else EAGAIN and nobody moves. Result: woken + requeued, for both, as the
// kernel returns task_count. Unlike FUTEX_WAKE, nr_wake 0 wakes nobody. Its steps: both keys and
// hashes, futex_hb_waiters_inc of the second bucket, double_lock_hb (one lock when both words are
// the same), the read; per waiter woken, its unlinking as FUTEX_WAKE's; per waiter moved to another
// word's bucket, requeue_futex (plist_del, plist_add, the two buckets' waiter counts); at the end,
// the second bucket's futex_hb_waiters_dec, whatever happened.
IoStatus futex_requeue_call(OpContext& ctx, std::uint16_t activity, const std::string& map,
                            std::int64_t offset, const std::string& map2, std::int64_t offset2,
                            std::int64_t nr_wake, std::int64_t nr_requeue,
                            const std::optional<std::int64_t>& cmpval) {
  if (nr_wake < 0 || nr_requeue < 0 || nr_wake > INT_MAX || nr_requeue > INT_MAX)
    return fail_call(ctx, activity, EINVAL);
  ctx.sync();
  int fault = 0;
  auto from = user_access(ctx, map, offset, 8, false, activity, &fault); // get_futex_key(uaddr1)
  if (!from) return fail_call(ctx, activity, EFAULT);
  if (offset % 4) return fail_call(ctx, activity, EINVAL);
  auto to = user_access(ctx, map2, offset2, 8, false, activity, &fault); // get_futex_key(uaddr2)
  if (!to) return fail_call(ctx, activity, EFAULT);
  if (offset2 % 4) return fail_call(ctx, activity, EINVAL);
  const bool one_bucket =
      from->attachment->segment->serial == to->attachment->segment->serial && from->offset == to->offset;
  charge_futex_key(ctx, activity, kSharedFutex);
  charge_futex_key(ctx, activity, kSharedFutex);
  ctx.charge(activity, Primitive::atomic_rmw); // futex_hb_waiters_inc(hb2)
  const Cycles lock = ctx.kernel.model().costs.cycles(Primitive::lock_acquire);
  ctx.charge(activity, Primitive::lock_acquire, one_bucket ? lock : 2 * lock); // double_lock_hb
  ctx.sync();
  if (cmpval) { // futex_get_value_locked(uaddr1): a read like any access
    charge_touch(ctx, *from, 8, false, activity);
    ctx.sync();
    if (peek_word(*from->attachment->segment, from->offset) != *cmpval) {
      ctx.charge(activity, Primitive::atomic_rmw); // futex_hb_waiters_dec(hb2)
      return fail_call(ctx, activity, EAGAIN);
    }
  }
  FutexState& state = ctx.kernel.ipc<FutexState>();
  WaitQueue& target = state.queue(*to->attachment->segment, to->offset);
  WaitQueue* source = state.find(*from->attachment->segment, from->offset);
  std::vector<Thread*> wake;
  std::int64_t moved = 0;
  if (source) {
    // The moves happen at once (Linux holds both hash buckets' locks); the wakes then let time pass.
    std::vector<Thread*> waiting;
    for (Thread* t = source->head; t; t = t->wait_next) waiting.push_back(t);
    for (Thread* t : waiting) {
      if (static_cast<std::int64_t>(wake.size()) < nr_wake)
        wake.push_back(t);
      else if (moved < nr_requeue && !one_bucket)
        moved += ctx.kernel.move_waiter(*t, target);
      else if (moved < nr_requeue) // requeued onto its own queue: it stays, counted (as Linux does)
        ++moved;
      else
        break;
    }
    if (!one_bucket && moved > 0) { // requeue_futex: plist_del + plist_add, both buckets' counts
      const CostModel& costs = ctx.kernel.model().costs;
      ctx.charge(activity, Primitive::list_op, costs.cycles(Primitive::list_op) * 2 * moved);
      ctx.charge(activity, Primitive::atomic_rmw, costs.cycles(Primitive::atomic_rmw) * 2 * moved);
    }
  }
  std::int64_t woken = 0;
  for (Thread* t : wake) {
    if (t->waiting_on != source) continue;
    ctx.charge(activity, Primitive::list_op);    // futex_wake_mark: plist_del
    ctx.charge(activity, Primitive::atomic_rmw); // futex_hb_waiters_dec
    if (ctx.kernel.wake(ctx.core, *t, &ctx.thread, activity, WaitResult::Woken)) ++woken;
  }
  ctx.charge(activity, Primitive::atomic_rmw); // futex_hb_waiters_dec(hb2)
  ctx.succeed(woken + moved);
  return IoStatus::Done;
}

IoStatus settle(const std::function<IoStatus()>& call) {
  IoStatus status = call();
  for (int retries = 0; status == IoStatus::Retry && retries < 1000; ++retries) status = call();
  return status;
}

class FutexWaitOp : public SyscallOp {
public:
  FutexWaitOp(std::uint16_t activity, CallTimeout timeout, std::string map, IntRef offset, IntRef value)
      : SyscallOp(activity, timeout), map_(std::move(map)), offset_(std::move(offset)),
        value_(std::move(value)) {}
  IoStatus call(OpContext& ctx) const override {
    std::int64_t offset = 0, value = 0;
    if (!offset_.resolve(ctx, offset, "futex_wait") || !value_.resolve(ctx, value, "futex_wait"))
      return fail_call(ctx, activity, EINVAL);
    return futex_wait_call(ctx, activity, map_, offset, value);
  }

private:
  std::string map_;
  IntRef offset_, value_;
};

class FutexWakeOp : public SyscallOp {
public:
  FutexWakeOp(std::uint16_t activity, std::string map, IntRef offset, IntRef count)
      : SyscallOp(activity, {}), map_(std::move(map)), offset_(std::move(offset)), count_(std::move(count)) {}
  IoStatus call(OpContext& ctx) const override {
    std::int64_t offset = 0, count = 0;
    if (!offset_.resolve(ctx, offset, "futex_wake") || !count_.resolve(ctx, count, "futex_wake"))
      return fail_call(ctx, activity, EINVAL);
    return futex_wake_call(ctx, activity, map_, offset, count);
  }

private:
  std::string map_;
  IntRef offset_, count_;
};

class FutexRequeueOp : public SyscallOp {
public:
  FutexRequeueOp(std::uint16_t activity, std::string map, IntRef offset, std::string map2, IntRef offset2,
                 IntRef count, IntRef requeue, std::optional<IntRef> value)
      : SyscallOp(activity, {}), map_(std::move(map)), map2_(std::move(map2)), offset_(std::move(offset)),
        offset2_(std::move(offset2)), count_(std::move(count)), requeue_(std::move(requeue)),
        value_(std::move(value)) {}
  IoStatus call(OpContext& ctx) const override {
    const char* op = value_ ? "futex_cmp_requeue" : "futex_requeue";
    std::int64_t offset = 0, offset2 = 0, count = 0, requeue = 0, value = 0;
    if (!offset_.resolve(ctx, offset, op) || !offset2_.resolve(ctx, offset2, op) ||
        !count_.resolve(ctx, count, op) || !requeue_.resolve(ctx, requeue, op) ||
        (value_ && !value_->resolve(ctx, value, op)))
      return fail_call(ctx, activity, EINVAL);
    return futex_requeue_call(ctx, activity, map_, offset, map2_.empty() ? map_ : map2_, offset2, count,
                              requeue, value_ ? std::optional<std::int64_t>(value) : std::nullopt);
  }

private:
  std::string map_, map2_;
  IntRef offset_, offset2_, count_, requeue_;
  std::optional<IntRef> value_;
};

// ---- The library: pthread mutex and condition variable over futexes ---------------------------

LibraryCall* find_call(OpContext& ctx) {
  auto& calls = ctx.kernel.ipc<FutexState>().calls;
  auto it = calls.find(call_key(ctx.thread));
  return it == calls.end() ? nullptr : &it->second;
}
LibraryCall& the_call(OpContext& ctx) { return ctx.kernel.ipc<FutexState>().calls[call_key(ctx.thread)]; }

// At an op's start: an op a handler interrupted goes on from where it was.
void resume_after_handler(OpContext& ctx) {
  if (ctx.thread.phase != kStart) return;
  if (LibraryCall* call = find_call(ctx); call && call->resume != kStart) {
    ctx.thread.phase = call->resume;
    call->resume = kStart;
  }
}

// One user-space access to the word at `offset`: SIGSEGV outside the mapping (nullopt: the op
// returns Step::Exit). `rmw` adds the locked instruction's cost.
std::optional<Access> touch(OpContext& ctx, std::uint16_t activity, const std::string& map,
                            std::int64_t offset, bool write, bool rmw) {
  ctx.sync();
  auto access = user_access(ctx, map, offset, 8, write, activity);
  if (!access) return std::nullopt;
  charge_touch(ctx, *access, 8, write, activity);
  if (rmw) ctx.charge(activity, Primitive::atomic_rmw);
  ctx.sync(); // the access takes effect once its cycles have passed
  return access;
}

// A futex system call that never blocks (FUTEX_WAKE), made in the middle of a library op.
void wake_syscall(OpContext& ctx, std::uint16_t activity, const std::string& map, std::int64_t offset,
                  std::int64_t count) {
  ctx.enter_syscall(activity);
  begin_call(ctx, {});
  settle([&] { return futex_wake_call(ctx, activity, map, offset, count); });
  ctx.thread.op_progress = 0;
  ctx.leave_syscall(activity);
}

// A FUTEX_WAIT made in the middle of a library op: true once it returned (whatever it returned),
// false while the thread sleeps in it (the op returns Step::Block and runs again when woken).
// `deadline`: an absolute time (glibc passes abstime), the same for every call of a wait's loop.
bool wait_syscall(OpContext& ctx, std::uint16_t activity, const std::string& map, std::int64_t offset,
                  std::int64_t expected, Cycles deadline = kNever) {
  Thread& thread = ctx.thread;
  if (!(thread.op_progress & kInCall)) {
    ctx.enter_syscall(activity);
    CallTimeout timeout;
    if (deadline != kNever) timeout.cycles = deadline > ctx.now() ? deadline - ctx.now() : 0;
    begin_call(ctx, timeout);
    thread.op_progress = kInCall;
  }
  IoStatus status = settle([&] { return futex_wait_call(ctx, activity, map, offset, expected); });
  if (status == IoStatus::Blocked) return false;
  thread.op_progress = 0;
  ctx.leave_syscall(activity);
  return true;
}

Step finish(OpContext& ctx) {
  ctx.kernel.ipc<FutexState>().calls.erase(call_key(ctx.thread));
  ctx.thread.phase = kStart;
  ctx.thread.op_progress = 0;
  ctx.succeed(0);
  ++ctx.thread.pc;
  return Step::Continue;
}

// A FUTEX_WAIT inside a library op ended for a signal: the op goes back to an op boundary (phase
// 0, pc unchanged) so that the handler runs now, as it would on the system call's return, and the
// op then goes on from `resume`, where glibc's loop goes on after the call returned EINTR.
Step handle_signal(OpContext& ctx, std::uint8_t resume) {
  Thread& thread = ctx.thread;
  the_call(ctx).resume = resume;
  thread.phase = kStart;
  thread.op_progress = 0;
  thread.result = 0;
  thread.error = 0;
  return Step::Continue;
}

// lll_lock's slow path, from phase kLockWait on: the word becomes 2 (locked, maybe waiters) and the
// thread sleeps in FUTEX_WAIT(2) until its xchg finds the lock free.
Step lock_slow_path(OpContext& ctx, std::uint16_t activity, const std::string& map, std::int64_t offset) {
  Thread& thread = ctx.thread;
  for (;;) {
    switch (thread.phase) {
    case kLockWait: {
      auto access = touch(ctx, activity, map, offset, false, false);
      if (!access) return Step::Exit;
      thread.phase = peek_word(*access->attachment->segment, access->offset) == 2 ? kLockFutex : kLockXchg;
      break;
    }
    case kLockXchg: {
      auto access = touch(ctx, activity, map, offset, true, true);
      if (!access) return Step::Exit;
      Segment& segment = *access->attachment->segment;
      std::int64_t old = peek_word(segment, access->offset);
      poke_word(ctx, segment, access->offset, 2);
      if (old == 0) return finish(ctx);
      thread.phase = kLockFutex;
      break;
    }
    case kLockFutex:
      if (!wait_syscall(ctx, activity, map, offset, 2)) return Step::Block;
      if (thread.process->killed_by) return Step::Exit;
      // After the handler __lll_lock_wait's loop goes on with its xchg(2), as after any return.
      if (thread.signal_pending) return handle_signal(ctx, kLockXchg);
      thread.phase = kLockXchg;
      break;
    default:
      return Step::Exit; // cannot happen: callers enter at kLockWait
    }
  }
}

// lll_unlock: xchg(0); a word that was 2 may have sleepers: FUTEX_WAKE one. False on a fault.
bool unlock(OpContext& ctx, std::uint16_t activity, const std::string& map, std::int64_t offset) {
  auto access = touch(ctx, activity, map, offset, true, true);
  if (!access) return false;
  Segment& segment = *access->attachment->segment;
  std::int64_t old = peek_word(segment, access->offset);
  poke_word(ctx, segment, access->offset, 0);
  if (old > 1) wake_syscall(ctx, activity, map, offset, 1);
  return true;
}

// A mutex word at a variable's offset: a misaligned one stops the run naming the op (as
// read_mutex_offset refuses a number at load time).
// What an offset places, and the alignment it needs. A misaligned number is a load error
// (read_aligned_offset); a variable's value is checked when the op runs (aligned_at_run).
struct Placement {
  const char* thing;
  std::int64_t bytes;
  const char* why;
};
constexpr Placement kMutexWord{"mutex word", 4, "the futex of pthread_mutex_t"};
constexpr Placement kCondVar{"condition variable", 8, "pthread_cond_t"};

bool aligned_at_run(OpContext& ctx, const Placement& place, const std::string& map, std::int64_t offset,
                    const char* op) {
  if (offset % place.bytes == 0) return true;
  const std::string bytes = std::to_string(place.bytes);
  ctx.kernel.abort_run(ctx.thread, std::string(op) + ": the " + place.thing + " at offset " +
                                       std::to_string(offset) + " of \"" + map + "\" is not " + bytes +
                                       "-byte aligned; give a multiple of " + bytes);
  return false;
}
bool mutex_aligned(OpContext& ctx, const std::string& map, std::int64_t offset, const char* op) {
  return aligned_at_run(ctx, kMutexWord, map, offset, op);
}

class MutexLockOp : public Op {
public:
  MutexLockOp(std::uint16_t activity, std::string map, IntRef offset)
      : Op(activity), map_(std::move(map)), offset_(std::move(offset)) {}
  Step execute(OpContext& ctx) const override {
    std::int64_t offset = 0;
    if (!offset_.resolve(ctx, offset, "mutex_lock") || !mutex_aligned(ctx, map_, offset, "mutex_lock"))
      return Step::Exit;
    Thread& thread = ctx.thread;
    resume_after_handler(ctx);
    if (thread.phase == kStart) { // the fast path: CAS 0 -> 1, no system call
      auto access = touch(ctx, activity, map_, offset, true, true);
      if (!access) return Step::Exit;
      Segment& segment = *access->attachment->segment;
      if (peek_word(segment, access->offset) == 0) {
        poke_word(ctx, segment, access->offset, 1);
        return finish(ctx);
      }
      thread.phase = kLockWait;
    }
    return lock_slow_path(ctx, activity, map_, offset);
  }

private:
  std::string map_;
  IntRef offset_;
};

class MutexUnlockOp : public Op {
public:
  MutexUnlockOp(std::uint16_t activity, std::string map, IntRef offset)
      : Op(activity), map_(std::move(map)), offset_(std::move(offset)) {}
  Step execute(OpContext& ctx) const override {
    std::int64_t offset = 0;
    if (!offset_.resolve(ctx, offset, "mutex_unlock") || !mutex_aligned(ctx, map_, offset, "mutex_unlock"))
      return Step::Exit;
    if (!unlock(ctx, activity, map_, offset)) return Step::Exit;
    return finish(ctx);
  }

private:
  std::string map_;
  IntRef offset_;
};

// ---- The condition variable: glibc 2.42's (nptl/pthread_cond_*.c), field by field -------------

// The condition variable at `base`: each access to a field is one user-space access (a plain
// load or store: the word's cycles; a locked read-modify-write adds atomic_rmw). Every function
// returns false when the access faulted (SIGSEGV: the process is terminated).
class Cond {
public:
  Cond(OpContext& ctx, std::uint16_t activity, const std::string& map, std::int64_t base)
      : ctx_(ctx), activity_(activity), map_(map), base_(base) {}

  bool load(std::int64_t field, std::uint64_t& out) {
    auto a = touch(ctx_, activity_, map_, base_ + field, false, false);
    if (!a) return false;
    out = static_cast<std::uint64_t>(peek_word(*a->attachment->segment, a->offset));
    return true;
  }
  bool store(std::int64_t field, std::uint64_t value) {
    auto a = touch(ctx_, activity_, map_, base_ + field, true, false);
    if (!a) return false;
    poke_word(ctx_, *a->attachment->segment, a->offset, fit(field, value));
    return true;
  }
  // A read-modify-write: `locked` for an atomic (lock xadd, xchg, lock cmpxchg), else a plain
  // instruction on a word only the internal lock's holder writes (g_size[g] -= 1). `old`: before.
  template <class F> bool modify(std::int64_t field, F f, std::uint64_t& old, bool locked = true) {
    auto a = touch(ctx_, activity_, map_, base_ + field, true, locked);
    if (!a) return false;
    Segment& segment = *a->attachment->segment;
    old = static_cast<std::uint64_t>(peek_word(segment, a->offset));
    poke_word(ctx_, segment, a->offset, fit(field, f(old)));
    return true;
  }
  // compare-and-exchange: `done` when the word held `expected`; else `expected` is what it held.
  bool cas(std::int64_t field, std::uint64_t& expected, std::uint64_t desired, bool& done) {
    auto a = touch(ctx_, activity_, map_, base_ + field, true, true);
    if (!a) return false;
    Segment& segment = *a->attachment->segment;
    auto word = static_cast<std::uint64_t>(peek_word(segment, a->offset));
    done = word == expected;
    if (done)
      poke_word(ctx_, segment, a->offset, fit(field, desired));
    else
      expected = word;
    return true;
  }
  void futex_wake(std::int64_t field, std::int64_t count) {
    wake_syscall(ctx_, activity_, map_, base_ + field, count);
  }
  // FUTEX_WAIT on a field: false while asleep.
  bool futex_wait(std::int64_t field, std::uint64_t expected, Cycles deadline = kNever) {
    return wait_syscall(ctx_, activity_, map_, base_ + field, static_cast<std::int64_t>(expected), deadline);
  }
  OpContext& ctx() { return ctx_; }

private:
  // glibc's 32-bit fields keep 32 bits (their unsigned arithmetic wraps there).
  static std::int64_t fit(std::int64_t field, std::uint64_t value) {
    if (field != kWseq && field != kG1Start) value &= 0xffff'ffffu;
    return static_cast<std::int64_t>(value);
  }
  OpContext& ctx_;
  std::uint16_t activity_;
  const std::string& map_;
  std::int64_t base_;
};

// What a library op's sub-step did.
enum class Sub : std::uint8_t { Done, Block, Exit, Signal };

// __condvar_acquire_lock: the lock in __g1_orig_size's two low bits, 0 free, 1 taken, 2 taken
// with waiters; CAS to 1 while it looks free, else CAS to 2 and FUTEX_WAIT until a CAS from 0 wins.
Sub acquire_cond_lock(Cond& cv, CondLock& lock) {
  std::uint64_t s = 0;
  bool done = false;
  if (lock.stage == CondLock::Fresh) {
    if (!cv.load(kG1OrigSize, s)) return Sub::Exit;
    while ((s & 3) == 0) {
      if (!cv.cas(kG1OrigSize, s, s | 1, done)) return Sub::Exit;
      if (done) return Sub::Done;
    }
    lock.stage = CondLock::Contended;
  }
  for (;;) {
    if (lock.stage == CondLock::Sleeping) {
      if (!cv.futex_wait(kG1OrigSize, lock.expected)) return Sub::Block;
      if (cv.ctx().thread.process->killed_by) return Sub::Exit;
      lock.stage = CondLock::Reload; // futex_wait_simple's result is ignored: load again
      if (cv.ctx().thread.signal_pending) return Sub::Signal;
    }
    if (lock.stage == CondLock::Reload && !cv.load(kG1OrigSize, s)) return Sub::Exit;
    while ((s & 3) != 2) {
      if (!cv.cas(kG1OrigSize, s, (s & ~std::uint64_t{3}) | 2, done)) return Sub::Exit;
      if (done) {
        if ((s & 3) == 0) {
          lock = {};
          return Sub::Done;
        }
        break;
      }
    }
    lock.expected = (s & ~std::uint64_t{3}) | 2;
    lock.stage = CondLock::Sleeping;
  }
}

// __condvar_release_lock: fetch_and(~3); FUTEX_WAKE one if it said there were waiters.
bool release_cond_lock(Cond& cv) {
  std::uint64_t old = 0;
  if (!cv.modify(
          kG1OrigSize, [](std::uint64_t v) { return v & ~std::uint64_t{3}; }, old))
    return false;
  if ((old & 3) == 2) cv.futex_wake(kG1OrigSize, 1);
  return true;
}

// __condvar_switch_g1, under the lock: closes G1 (__g1_start moves past it) and makes G2, if it has
// waiters, the new G1 (flipping __wseq's low bit: new waiters go to the other slot). `switched`:
// false when G2 had nobody, or only waiters that cancelled.
bool switch_g1(Cond& cv, std::uint64_t wseq, unsigned& g1, bool& switched) {
  switched = false;
  std::uint64_t orig = 0, old_g1_start = 0, g2_size = 0;
  if (!cv.load(kG1OrigSize, orig) || !cv.load(kG1Start, old_g1_start) ||
      !cv.load(kGSize + 8 * (g1 ^ 1), g2_size))
    return false;
  const auto old_orig_size = static_cast<std::uint32_t>(orig) >> 2;
  const std::uint64_t new_g1_start = old_g1_start + old_orig_size;
  if (static_cast<std::uint32_t>(static_cast<std::uint32_t>(wseq - new_g1_start) +
                                 static_cast<std::uint32_t>(g2_size)) == 0)
    return true;
  std::uint64_t start = 0, old_wseq = 0, now = 0, previous = 0, size = 0; // relaxed add: load, store
  if (!cv.load(kG1Start, start) || !cv.store(kG1Start, start + old_orig_size) ||
      !cv.modify(
          kWseq, [](std::uint64_t v) { return v ^ 1; }, old_wseq))
    return false;
  wseq = old_wseq >> 1;
  g1 ^= 1;
  if (!cv.store(kGSignals + 8 * g1, static_cast<std::uint32_t>(new_g1_start))) return false;
  const auto orig_size = static_cast<std::uint32_t>(wseq - new_g1_start);
  // __condvar_set_orig_size: keep the lock bits (a waiter for the lock may turn 1 into 2 meanwhile).
  if (!cv.load(kG1OrigSize, now)) return false;
  const std::uint32_t s = (static_cast<std::uint32_t>(now) & 3) | (orig_size << 2);
  if (!cv.modify(
          kG1OrigSize, [s](std::uint64_t) { return s; }, previous))
    return false;
  if ((previous & 3) != (s & 3) && !cv.store(kG1OrigSize, (orig_size << 2) | 2)) return false;
  if (!cv.modify(
          kGSize + 8 * g1, [orig_size](std::uint64_t v) { return v + orig_size; }, previous, false) ||
      !cv.load(kGSize + 8 * g1, size))
    return false;
  switched = static_cast<std::uint32_t>(size) != 0;
  return true;
}

// pthread_cond_signal's critical section: a signal for G1 if it has an unsignalled waiter, else G2
// becomes G1 first. `wake`: FUTEX_WAKE(1) the group `g1` after the lock is released.
bool signal_locked(Cond& cv, bool& wake, unsigned& g1) {
  std::uint64_t wseq = 0, size = 0, old = 0;
  if (!cv.load(kWseq, wseq) || !cv.load(kGSize + 8 * ((wseq & 1) ^ 1), size)) return false;
  g1 = static_cast<unsigned>(wseq & 1) ^ 1;
  bool signal = static_cast<std::uint32_t>(size) != 0;
  if (!signal && !switch_g1(cv, wseq >> 1, g1, signal)) return false;
  if (signal) {
    if (!cv.modify(
            kGSignals + 8 * g1, [](std::uint64_t v) { return v + 1; }, old) ||
        !cv.modify(
            kGSize + 8 * g1, [](std::uint64_t v) { return v - 1; }, old, false))
      return false;
    wake = true;
  }
  return true;
}

// pthread_cond_broadcast's: signals for every waiter left in G1 (and FUTEX_WAKE all of them at
// once, before G1 is switched), then G2 becomes G1 and gets a signal for each of its waiters.
bool broadcast_locked(Cond& cv, bool& wake, unsigned& g1) {
  std::uint64_t wseq = 0, size = 0, old = 0;
  if (!cv.load(kWseq, wseq)) return false;
  g1 = static_cast<unsigned>(wseq & 1) ^ 1;
  if (!cv.load(kGSize + 8 * g1, size)) return false;
  auto add_size = [&](unsigned g) { // g_signals[g] += g_size[g]; g_size[g] = 0
    return cv.load(kGSize + 8 * g, size) &&
           cv.modify(
               kGSignals + 8 * g, [&](std::uint64_t v) { return v + static_cast<std::uint32_t>(size); },
               old) &&
           cv.store(kGSize + 8 * g, 0);
  };
  if (static_cast<std::uint32_t>(size) != 0) {
    if (!add_size(g1)) return false;
    cv.futex_wake(kGSignals + 8 * g1, INT_MAX);
  }
  bool switched = false;
  if (!switch_g1(cv, wseq >> 1, g1, switched)) return false;
  if (switched) {
    if (!add_size(g1)) return false;
    wake = true;
  }
  return true;
}

// pthread_cond_signal / broadcast from the top: no waiter (__wrefs >> 3 == 0): done, no system
// call; else the lock, the critical section, the release, and FUTEX_WAKE of the group.
Sub run_signal(Cond& cv, SignalRun& run) {
  if (!run.locking) {
    std::uint64_t wrefs = 0;
    if (!cv.load(kWrefs, wrefs)) return Sub::Exit;
    if ((static_cast<std::uint32_t>(wrefs) >> 3) == 0) return Sub::Done;
    run.locking = true;
  }
  if (Sub s = acquire_cond_lock(cv, run.lock); s != Sub::Done) return s;
  bool wake = false;
  unsigned g1 = 0;
  if (!(run.broadcast ? broadcast_locked(cv, wake, g1) : signal_locked(cv, wake, g1)) ||
      !release_cond_lock(cv))
    return Sub::Exit;
  if (wake) cv.futex_wake(kGSignals + 8 * g1, run.broadcast ? INT_MAX : 1);
  return Sub::Done;
}

// The condition variable's 64 bytes must lie in the mapping (else SIGSEGV, as the first access past
// its end would be) and be 8-byte aligned (pthread_cond_t is; its futex words must be 4-byte
// aligned): a misaligned one stops the run naming the op.
bool cond_usable(OpContext& ctx, std::uint16_t activity, const std::string& map, std::int64_t offset,
                 const char* op) {
  if (!aligned_at_run(ctx, kCondVar, map, offset, op)) return false;
  return user_access(ctx, map, offset, kCondBytes, false, activity).has_value();
}

// pthread_cond_wait / timedwait (glibc 2.42's __pthread_cond_wait_common): take a position in
// __wseq, count in __wrefs, release the mutex; then take a signal from the group's __g_signals or
// sleep in FUTEX_WAIT on it; on a timeout cancel (__condvar_cancel_waiting); confirm (__wrefs -= 8)
// and take the mutex again (lll_cond_lock). docs/futex.md walks through every step and its cost.
class CondWaitOp : public Op {
public:
  CondWaitOp(std::uint16_t activity, CallTimeout timeout, std::string map, IntRef offset, IntRef mutex)
      : Op(activity), timeout_(timeout), map_(std::move(map)), offset_(std::move(offset)),
        mutex_(std::move(mutex)) {}
  Step execute(OpContext& ctx) const override {
    std::int64_t offset = 0, mutex = 0;
    if (!offset_.resolve(ctx, offset, "cond_wait") || !mutex_.resolve(ctx, mutex, "cond_wait") ||
        !mutex_aligned(ctx, map_, mutex, "cond_wait"))
      return Step::Exit;
    Thread& thread = ctx.thread;
    Cond cv(ctx, activity, map_, offset);
    resume_after_handler(ctx);
    if (thread.phase == kStart) {
      CallTimeout timeout;
      if (!timeout_.resolve(ctx, activity, timeout) || !cond_usable(ctx, activity, map_, offset, "cond_wait"))
        return Step::Exit;
      LibraryCall& call = the_call(ctx);
      call = {};
      call.deadline = timeout.cycles == kNever ? kNever : ctx.now() + timeout.cycles;
      std::uint64_t flags = 0;
      if (!cv.modify(
              kWseq, [](std::uint64_t v) { return v + 2; }, call.wseq) ||
          !cv.modify(
              kWrefs, [](std::uint64_t v) { return v + 8; }, flags) ||
          !unlock(ctx, activity, map_, mutex))
        return Step::Exit;
      thread.phase = kCondLoop;
    }
    for (;;) {
      if (thread.phase == kLockWait || thread.phase == kLockFutex || thread.phase == kLockXchg) {
        const int result = the_call(ctx).result;
        const std::uint32_t pc = thread.pc;
        Step step = lock_slow_path(ctx, activity, map_, mutex);
        if (step == Step::Continue && thread.pc != pc) report(ctx, result); // finish() ran
        return step;
      }
      LibraryCall& call = the_call(ctx);
      const auto g = static_cast<unsigned>(call.wseq & 1);
      const std::uint64_t seq = call.wseq >> 1;
      switch (thread.phase) {
      case kCondLoop: {
        std::uint64_t signals = 0, g1_start = 0;
        if (!cv.load(kGSignals + 8 * g, signals) || !cv.load(kG1Start, g1_start)) return Step::Exit;
        if (seq < g1_start) { // the group is closed: it had a signal for us
          thread.phase = kCondConfirm;
          break;
        }
        if (static_cast<std::int32_t>(static_cast<std::uint32_t>(signals) -
                                      static_cast<std::uint32_t>(g1_start)) > 0) {
          bool took = false;
          std::uint64_t expected = signals;
          if (!cv.cas(kGSignals + 8 * g, expected, static_cast<std::uint32_t>(signals) - 1, took))
            return Step::Exit;
          if (took) thread.phase = kCondConfirm;
          break; // else look again
        }
        call.signals = signals;
        thread.phase = kCondFutex;
        break;
      }
      case kCondFutex: {
        if (!cv.futex_wait(kGSignals + 8 * g, call.signals, call.deadline)) return Step::Block;
        if (thread.process->killed_by) return Step::Exit;
        if (thread.error == ETIMEDOUT) {
          call.result = ETIMEDOUT;
          call.lock = {};
          thread.phase = kCondCancel;
          break;
        }
        if (thread.signal_pending) return handle_signal(ctx, kCondLoop);
        thread.phase = kCondLoop; // woken, EAGAIN or spurious: look again
        break;
      }
      case kCondCancel: {
        Sub s = acquire_cond_lock(cv, call.lock);
        if (s == Sub::Block) return Step::Block;
        if (s == Sub::Exit) return Step::Exit;
        if (s == Sub::Signal) return handle_signal(ctx, kCondCancel);
        std::uint64_t g1_start = 0, orig = 0, size = 0, old = 0;
        if (!cv.load(kG1Start, g1_start)) return Step::Exit;
        bool consumed = g1_start > seq; // our group is closed: a signal was ours
        if (!consumed) {
          if (!cv.load(kG1OrigSize, orig) || !cv.load(kGSize + 8 * g, size)) return Step::Exit;
          const bool in_g2 = g1_start + (static_cast<std::uint32_t>(orig) >> 2) <= seq;
          if (in_g2 && static_cast<std::uint32_t>(static_cast<std::uint32_t>(size) + kMaxGroupSize) == 0) {
            // Cancellations would overflow G2's size: wake everyone instead (a clean state).
            if (!release_cond_lock(cv)) return Step::Exit;
            call.signal = {};
            call.signal.broadcast = true;
            thread.phase = kCondReplace;
            break;
          }
          if (!in_g2 && static_cast<std::uint32_t>(size) == 0)
            consumed = true; // G1 got a signal that only we could take
          else if (!cv.modify(
                       kGSize + 8 * g, [](std::uint64_t v) { return v - 1; }, old, false))
            return Step::Exit;
        }
        if (!release_cond_lock(cv)) return Step::Exit;
        call.signal = {};
        thread.phase = consumed ? kCondReplace : kCondConfirm;
        break;
      }
      case kCondReplace: { // the signal we took goes to another waiter
        Sub s = run_signal(cv, call.signal);
        if (s == Sub::Block) return Step::Block;
        if (s == Sub::Exit) return Step::Exit;
        if (s == Sub::Signal) return handle_signal(ctx, kCondReplace);
        thread.phase = kCondConfirm;
        break;
      }
      case kCondConfirm: {
        std::uint64_t old = 0;
        if (!cv.modify(
                kWrefs, [](std::uint64_t v) { return v - 8; }, old))
          return Step::Exit;
        // The last waiter wakes a pthread_cond_destroy waiting for it (wake-request bit 2).
        if ((static_cast<std::uint32_t>(old) >> 2) == 3) cv.futex_wake(kWrefs, INT_MAX);
        // Retaking the mutex after a wait assumes contention (glibc's lll_cond_lock): CAS 0 -> 2.
        auto lock = touch(ctx, activity, map_, mutex, true, true);
        if (!lock) return Step::Exit;
        Segment& segment = *lock->attachment->segment;
        if (peek_word(segment, lock->offset) == 0) {
          poke_word(ctx, segment, lock->offset, 2);
          const int result = call.result;
          finish(ctx);
          report(ctx, result);
          return Step::Continue;
        }
        thread.phase = kLockWait;
        break;
      }
      default:
        return Step::Exit; // cannot happen
      }
    }
  }

private:
  // pthread_cond_timedwait returns ETIMEDOUT holding the mutex again.
  static void report(OpContext& ctx, int result) {
    if (result == 0) return;
    ctx.thread.result = result;
    ctx.thread.error = result;
  }
  CallTimeout timeout_;
  std::string map_;
  IntRef offset_, mutex_;
};

class CondSignalOp : public Op {
public:
  CondSignalOp(std::uint16_t activity, std::string map, IntRef offset, bool broadcast)
      : Op(activity), map_(std::move(map)), offset_(std::move(offset)), broadcast_(broadcast) {}
  Step execute(OpContext& ctx) const override {
    const char* op = broadcast_ ? "cond_broadcast" : "cond_signal";
    std::int64_t offset = 0;
    if (!offset_.resolve(ctx, offset, op)) return Step::Exit;
    Thread& thread = ctx.thread;
    resume_after_handler(ctx);
    if (thread.phase == kStart) {
      if (!cond_usable(ctx, activity, map_, offset, op)) return Step::Exit;
      LibraryCall& call = the_call(ctx);
      call = {};
      call.signal.broadcast = broadcast_;
      thread.phase = kSignal;
    }
    Cond cv(ctx, activity, map_, offset);
    switch (run_signal(cv, the_call(ctx).signal)) {
    case Sub::Block:
      return Step::Block;
    case Sub::Exit:
      return Step::Exit;
    case Sub::Signal: // the internal lock's FUTEX_WAIT: the handler, then the lock again
      return handle_signal(ctx, kSignal);
    case Sub::Done:
      break;
    }
    return finish(ctx);
  }

private:
  std::string map_;
  IntRef offset_;
  bool broadcast_;
};

ParamSpec offset_param(const std::string& what) { return int_ref_param("offset", what); }

// An offset field that places `place`: a number must be a multiple of its alignment.
IntRef read_aligned_offset(const json& f, const char* field, const std::string& path, CompileContext& ctx,
                           const Placement& place) {
  IntRef offset = read_int_ref(f, field, path, ctx);
  if (offset.constant() && offset.value % place.bytes != 0) {
    const std::string bytes = std::to_string(place.bytes);
    fail_at(ctx.read.file, join_path(path, field),
            std::string("a ") + place.thing + " is " + bytes + "-byte aligned (" + place.why + "); got " +
                std::to_string(offset.value) + ", give a multiple of " + bytes);
  }
  return offset;
}
IntRef read_cond_offset(const json& f, const std::string& path, CompileContext& ctx) {
  return read_aligned_offset(f, "offset", path, ctx, kCondVar);
}
// The kernel refuses a misaligned futex with EINVAL, and glibc's lock loop would retry it forever.
IntRef read_mutex_offset(const json& f, const char* field, const std::string& path, CompileContext& ctx) {
  return read_aligned_offset(f, field, path, ctx, kMutexWord);
}

const OpRegistrar register_futex_wait(
    {"futex_wait",
     "FUTEX_WAIT: sleep if the word at an offset of a mapping still holds `value` (else EAGAIN) until a "
     "futex_wake "
     "(result 0), the timeout (ETIMEDOUT) or an interruption (EINTR)",
     {"futex_wait op",
      "",
      {map_param(), offset_param("byte offset of the word (4-byte aligned)"),
       int_ref_param("value", "the value the word must still hold"), timeout_param()}},
     [](const json& f, const std::string& path, CompileContext& ctx, Program& p, std::uint16_t a) {
       p.ops.push_back(std::make_unique<FutexWaitOp>(
           a, read_timeout(f, path, ctx), f.at("map").get<std::string>(),
           read_int_ref(f, "offset", path, ctx), read_int_ref(f, "value", path, ctx)));
     }});

const OpRegistrar register_futex_wake(
    {"futex_wake",
     "FUTEX_WAKE: wake up to `count` threads waiting on the word, in the order they came; {result} is how "
     "many",
     {"futex_wake op",
      "",
      {map_param(), offset_param("byte offset of the word (4-byte aligned)"),
       int_ref_param("count", "how many to wake at most (2147483647, INT_MAX: all; 0 wakes one, as in Linux)",
                     1)}},
     [](const json& f, const std::string& path, CompileContext& ctx, Program& p, std::uint16_t a) {
       p.ops.push_back(std::make_unique<FutexWakeOp>(a, f.at("map").get<std::string>(),
                                                     read_int_ref(f, "offset", path, ctx),
                                                     read_int_ref(f, "count", path, ctx)));
     }});

const OpRegistrar register_mutex_lock(
    {"mutex_lock",
     "pthread_mutex_lock of a process-shared mutex (the word at an offset of a shared mapping, 0 when free): "
     "CAS in "
     "user space; FUTEX_WAIT only when it is taken",
     {"mutex_lock op", "", {map_param(), offset_param("byte offset of the mutex word")}},
     [](const json& f, const std::string& path, CompileContext& ctx, Program& p, std::uint16_t a) {
       p.ops.push_back(std::make_unique<MutexLockOp>(a, f.at("map").get<std::string>(),
                                                     read_mutex_offset(f, "offset", path, ctx)));
     }});

const OpRegistrar register_mutex_unlock(
    {"mutex_unlock",
     "pthread_mutex_unlock: xchg 0 in user space; FUTEX_WAKE one waiter only when the word said there may be "
     "some",
     {"mutex_unlock op", "", {map_param(), offset_param("byte offset of the mutex word")}},
     [](const json& f, const std::string& path, CompileContext& ctx, Program& p, std::uint16_t a) {
       p.ops.push_back(std::make_unique<MutexUnlockOp>(a, f.at("map").get<std::string>(),
                                                       read_mutex_offset(f, "offset", path, ctx)));
     }});

const OpRegistrar register_cond_wait(
    {"cond_wait",
     "pthread_cond_wait (timedwait with a timeout) as glibc 2.42 does it: take a position among the waiters, "
     "release the mutex, take a signal of the group or sleep in FUTEX_WAIT, take the mutex again; the "
     "condition variable is 64 bytes at `offset` (docs/futex.md)",
     {"cond_wait op",
      "",
      {map_param(), offset_param("byte offset of the condition variable (64 bytes, 8-byte aligned)"),
       int_ref_param("mutex", "byte offset of the mutex word, held by the caller"), timeout_param()}},
     [](const json& f, const std::string& path, CompileContext& ctx, Program& p, std::uint16_t a) {
       p.ops.push_back(std::make_unique<CondWaitOp>(
           a, read_timeout(f, path, ctx), f.at("map").get<std::string>(), read_cond_offset(f, path, ctx),
           read_mutex_offset(f, "mutex", path, ctx)));
     }});

const OpRegistrar register_cond_signal(
    {"cond_signal",
     "pthread_cond_signal: no waiter, no system call; else, under the condition variable's internal lock, a "
     "signal for the oldest group with a waiter not yet signalled, then FUTEX_WAKE one",
     {"cond_signal op",
      "",
      {map_param(), offset_param("byte offset of the condition variable (64 bytes, 8-byte aligned)")}},
     [](const json& f, const std::string& path, CompileContext& ctx, Program& p, std::uint16_t a) {
       p.ops.push_back(std::make_unique<CondSignalOp>(a, f.at("map").get<std::string>(),
                                                      read_cond_offset(f, path, ctx), false));
     }});

const OpRegistrar register_cond_broadcast(
    {"cond_broadcast",
     "pthread_cond_broadcast: no waiter, no system call; else a signal for every waiter of both groups and "
     "FUTEX_WAKE all of them",
     {"cond_broadcast op",
      "",
      {map_param(), offset_param("byte offset of the condition variable (64 bytes, 8-byte aligned)")}},
     [](const json& f, const std::string& path, CompileContext& ctx, Program& p, std::uint16_t a) {
       p.ops.push_back(std::make_unique<CondSignalOp>(a, f.at("map").get<std::string>(),
                                                      read_cond_offset(f, path, ctx), true));
     }});

std::vector<ParamSpec> requeue_params(bool cmp) {
  std::vector<ParamSpec> params{
      map_param(),
      offset_param("byte offset of the word whose waiters are woken or moved (4-byte aligned)"),
      {"map2", ParamType::String, "", "", "the mapping of the word they move to (default: map)"},
      int_ref_param("offset2", "byte offset of the word they move to (4-byte aligned)"),
      int_ref_param("count", "how many to wake at most (val; 0 wakes none)", 1),
      int_ref_param("requeue", "how many more to move at most (val2; 2147483647, INT_MAX: all)", 2147483647)};
  if (cmp)
    params.push_back(int_ref_param("value", "the value the first word must still hold (val3), else EAGAIN"));
  return params;
}

void compile_requeue(const json& f, const std::string& path, CompileContext& ctx, Program& p, std::uint16_t a,
                     bool cmp) {
  p.ops.push_back(std::make_unique<FutexRequeueOp>(
      a, f.at("map").get<std::string>(), read_int_ref(f, "offset", path, ctx),
      f.at("map2").get<std::string>(), read_int_ref(f, "offset2", path, ctx),
      read_int_ref(f, "count", path, ctx), read_int_ref(f, "requeue", path, ctx),
      cmp ? std::optional<IntRef>(read_int_ref(f, "value", path, ctx)) : std::nullopt));
}

const OpRegistrar register_futex_requeue(
    {"futex_requeue",
     "FUTEX_REQUEUE: wake up to `count` threads waiting on the word and move up to `requeue` more to the "
     "word at offset2, asleep; {result} is how many were woken or moved",
     {"futex_requeue op", "", requeue_params(false)},
     [](const json& f, const std::string& path, CompileContext& ctx, Program& p, std::uint16_t a) {
       compile_requeue(f, path, ctx, p, a, false);
     }});

const OpRegistrar register_futex_cmp_requeue(
    {"futex_cmp_requeue",
     "FUTEX_CMP_REQUEUE: futex_requeue if the word still holds `value`, else EAGAIN and nobody moves",
     {"futex_cmp_requeue op", "", requeue_params(true)},
     [](const json& f, const std::string& path, CompileContext& ctx, Program& p, std::uint16_t a) {
       compile_requeue(f, path, ctx, p, a, true);
     }});

} // namespace

} // namespace ipcsim
