// The futex (futex(2): FUTEX_WAIT if the word still holds a value, FUTEX_WAKE of up to N waiters,
// with timeouts) and the process-shared mutex and condition variable built on it as glibc builds
// them: the lock word of lowlevellock.h (0 free, 1 locked, 2 locked with waiters) whose
// uncontended lock and unlock stay in user space, and a sequence-counter condition variable. Words
// live in shared memory (models/shm.cpp); a futex is named by its segment and offset, as Linux keys
// a shared futex by its page and offset. docs/futex.md describes the model and every charge.
#include "shm.hpp"

#include "error.hpp"

#include <climits>
#include <functional>
#include <map>
#include <set>

namespace ipcsim {

namespace {

constexpr std::uint64_t kCharged = 1, kSlept = 2, kInCall = 4;

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
  std::map<std::uint32_t, std::int64_t> cond_seq; // by thread id: the sequence a cond_wait saw
  std::map<std::uint32_t, bool> cond_timed_out;   // by thread id: its wait timed out (reported at the end)
  std::set<std::uint32_t> relocking;              // by thread id: a cond_wait taking its mutex again

private:
  std::map<std::pair<std::uint64_t, std::uint64_t>, std::unique_ptr<WaitQueue>> queues_;
};

// FUTEX_WAIT, inside the kernel: EFAULT for an address not mapped, EINVAL when not 4-byte aligned,
// EAGAIN when the word no longer holds `expected`, else sleep until a FUTEX_WAKE (0), the timeout
// (ETIMEDOUT; a zero timeout expires at once) or an interruption (EINTR). The word is read once,
// through the cache like any access, before the call decides.
IoStatus futex_wait_call(OpContext& ctx, std::uint16_t activity, const std::string& map, std::int64_t offset,
                         std::int64_t expected) {
  Thread& thread = ctx.thread;
  if ((thread.op_progress & kSlept) && thread.wait_result == WaitResult::Woken && !thread.signal_pending) {
    ctx.succeed(0); // a FUTEX_WAKE
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
  if (thread.op_progress & kSlept) return wait_on(ctx, queue, activity);
  if (!(thread.op_progress & kCharged)) { // get_user(): once, however often the call looks again
    charge_touch(ctx, *access, 8, false, activity);
    thread.op_progress |= kCharged;
    ctx.sync();
  }
  if (peek_word(*access->attachment->segment, access->offset) != expected)
    return fail_call(ctx, activity, EAGAIN);
  if (thread.op_nonblocking) return fail_call(ctx, activity, ETIMEDOUT);
  IoStatus status = wait_on(ctx, queue, activity);
  if (status == IoStatus::Blocked) thread.op_progress |= kSlept;
  return status;
}

// FUTEX_WAKE: wakes up to `count` waiters in the order they came (at least one, as Linux's loop
// does for a count of 0); the result is how many. The word itself is not read.
IoStatus futex_wake_call(OpContext& ctx, std::uint16_t activity, const std::string& map, std::int64_t offset,
                         std::int64_t count) {
  ctx.sync();
  int fault = 0;
  auto access = user_access(ctx, map, offset, 8, false, activity, &fault);
  if (!access) return fail_call(ctx, activity, EFAULT);
  if (offset % 4) return fail_call(ctx, activity, EINVAL);
  std::int64_t woken = 0;
  if (WaitQueue* queue = ctx.kernel.ipc<FutexState>().find(*access->attachment->segment, access->offset)) {
    // Each wake lets other cores run: wake from a snapshot, only who still waits here.
    std::vector<Thread*> waiting;
    for (Thread* t = queue->head; t; t = t->wait_next) waiting.push_back(t);
    for (Thread* t : waiting) {
      if (woken >= std::max<std::int64_t>(count, 1)) break;
      if (t->waiting_on == queue && ctx.kernel.wake(ctx.core, *t, &ctx.thread, activity, WaitResult::Woken))
        ++woken;
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
// kernel returns task_count. Unlike FUTEX_WAKE, nr_wake 0 wakes nobody.
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
  if (cmpval) { // futex_get_value_locked(uaddr1): a read like any access
    charge_touch(ctx, *from, 8, false, activity);
    ctx.sync();
    if (peek_word(*from->attachment->segment, from->offset) != *cmpval)
      return fail_call(ctx, activity, EAGAIN);
  }
  FutexState& state = ctx.kernel.ipc<FutexState>();
  WaitQueue* source = state.find(*from->attachment->segment, from->offset);
  std::vector<Thread*> wake;
  std::int64_t moved = 0;
  if (source) {
    // The moves happen at once (Linux holds both hash buckets' locks); the wakes then let time pass.
    std::vector<Thread*> waiting;
    for (Thread* t = source->head; t; t = t->wait_next) waiting.push_back(t);
    WaitQueue& target = state.queue(*to->attachment->segment, to->offset);
    for (Thread* t : waiting) {
      if (static_cast<std::int64_t>(wake.size()) < nr_wake)
        wake.push_back(t);
      else if (moved < nr_requeue && &target != source)
        moved += ctx.kernel.move_waiter(*t, target);
      else if (moved < nr_requeue) // requeued onto its own queue: it stays, counted (as Linux does)
        ++moved;
      else
        break;
    }
  }
  std::int64_t woken = 0;
  for (Thread* t : wake)
    if (t->waiting_on == source && ctx.kernel.wake(ctx.core, *t, &ctx.thread, activity, WaitResult::Woken))
      ++woken;
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

// Phases of a library op (Thread::phase). A library op runs user code (atomics on the words) and,
// when it must, futex system calls; it keeps its place across the calls' sleeps.
enum Phase : std::uint8_t {
  kStart = 0,
  kLockWait = 1, // __lll_lock_wait: a relaxed load, then xchg(2) until it returns 0
  kLockFutex = 2,
  kLockXchg = 3,
  kCondFutex = 10,
  kCondRelock = 11,
};

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
bool wait_syscall(OpContext& ctx, std::uint16_t activity, const std::string& map, std::int64_t offset,
                  std::int64_t expected) {
  Thread& thread = ctx.thread;
  if (!(thread.op_progress & kInCall)) {
    ctx.enter_syscall(activity);
    begin_call(ctx, {});
    thread.op_progress = kInCall;
  }
  IoStatus status = settle([&] { return futex_wait_call(ctx, activity, map, offset, expected); });
  if (status == IoStatus::Blocked) return false;
  thread.op_progress = 0;
  ctx.leave_syscall(activity);
  return true;
}

Step finish(OpContext& ctx) {
  ctx.thread.phase = kStart;
  ctx.thread.op_progress = 0;
  ctx.succeed(0);
  ++ctx.thread.pc;
  return Step::Continue;
}

// A FUTEX_WAIT inside a library op ended for a signal: the op goes back to an op boundary (phase
// 0, pc unchanged) so that the handler runs now, as it would on the system call's return, and the
// op then carries on where glibc's loop would: mutex_lock tries its CAS again; a cond_wait that was
// taking its mutex again (FutexState::relocking) goes on doing so.
Step handle_signal(OpContext& ctx) {
  Thread& thread = ctx.thread;
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
      if (thread.signal_pending) return handle_signal(ctx);
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

class MutexLockOp : public Op {
public:
  MutexLockOp(std::uint16_t activity, std::string map, IntRef offset)
      : Op(activity), map_(std::move(map)), offset_(std::move(offset)) {}
  Step execute(OpContext& ctx) const override {
    std::int64_t offset = 0;
    if (!offset_.resolve(ctx, offset, "mutex_lock")) return Step::Exit;
    Thread& thread = ctx.thread;
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
    if (!offset_.resolve(ctx, offset, "mutex_unlock")) return Step::Exit;
    if (!unlock(ctx, activity, map_, offset)) return Step::Exit;
    return finish(ctx);
  }

private:
  std::string map_;
  IntRef offset_;
};

// pthread_cond_wait over two words at `offset`: the sequence (bumped by every signal and broadcast)
// and the count of waiters (so that a signal with nobody waiting makes no system call).
class CondWaitOp : public Op {
public:
  CondWaitOp(std::uint16_t activity, CallTimeout timeout, std::string map, IntRef offset, IntRef mutex)
      : Op(activity), timeout_(timeout), map_(std::move(map)), offset_(std::move(offset)),
        mutex_(std::move(mutex)) {}
  Step execute(OpContext& ctx) const override {
    std::int64_t offset = 0, mutex = 0;
    if (!offset_.resolve(ctx, offset, "cond_wait") || !mutex_.resolve(ctx, mutex, "cond_wait"))
      return Step::Exit;
    Thread& thread = ctx.thread;
    FutexState& state = ctx.kernel.ipc<FutexState>();
    if (thread.phase == kStart && state.relocking.count(thread.id))
      thread.phase = kLockWait; // after a handler
    if (thread.phase == kStart) {
      auto waiters = touch(ctx, activity, map_, offset + 8, true, true); // waiters += 1
      if (!waiters) return Step::Exit;
      Segment& segment = *waiters->attachment->segment;
      poke_word(ctx, segment, waiters->offset, peek_word(segment, waiters->offset) + 1);
      auto seq = touch(ctx, activity, map_, offset, false, false);
      if (!seq) return Step::Exit;
      state.cond_seq[thread.id] = peek_word(segment, seq->offset);
      if (!unlock(ctx, activity, map_, mutex)) return Step::Exit;
      thread.phase = kCondFutex;
    }
    if (thread.phase == kCondFutex) {
      if (!(thread.op_progress & kInCall)) {
        CallTimeout timeout;
        if (!timeout_.resolve(ctx, activity, timeout)) return Step::Exit;
        ctx.enter_syscall(activity);
        begin_call(ctx, timeout);
        thread.op_progress = kInCall;
      }
      IoStatus status =
          settle([&] { return futex_wait_call(ctx, activity, map_, offset, state.cond_seq[thread.id]); });
      if (status == IoStatus::Blocked) return Step::Block;
      thread.op_progress = 0;
      ctx.leave_syscall(activity);
      if (thread.process->killed_by) return Step::Exit;
      // pthread_cond_timedwait reports a timeout after taking the mutex again.
      state.cond_timed_out[thread.id] = thread.error == ETIMEDOUT;
      state.cond_seq.erase(thread.id);
      auto waiters = touch(ctx, activity, map_, offset + 8, true, true); // waiters -= 1
      if (!waiters) return Step::Exit;
      Segment& segment = *waiters->attachment->segment;
      poke_word(ctx, segment, waiters->offset, peek_word(segment, waiters->offset) - 1);
      // Retaking the mutex after a wait assumes contention (glibc's lll_cond_lock): CAS 0 -> 2.
      auto lock = touch(ctx, activity, map_, mutex, true, true);
      if (!lock) return Step::Exit;
      if (peek_word(segment, lock->offset) == 0) {
        poke_word(ctx, segment, lock->offset, 2);
        return done(ctx);
      }
      thread.phase = kLockWait;
      state.relocking.insert(thread.id);
    }
    const std::uint32_t pc = thread.pc;
    Step step = lock_slow_path(ctx, activity, map_, mutex);
    if (step == Step::Continue && thread.pc != pc) { // finish() ran: report a timeout, as timedwait does
      --thread.pc;
      return done(ctx);
    }
    return step;
  }

private:
  Step done(OpContext& ctx) const {
    ctx.kernel.ipc<FutexState>().relocking.erase(ctx.thread.id);
    auto& timed = ctx.kernel.ipc<FutexState>().cond_timed_out;
    bool timed_out = timed[ctx.thread.id];
    timed.erase(ctx.thread.id);
    finish(ctx);
    if (timed_out) {
      ctx.thread.result = ETIMEDOUT;
      ctx.thread.error = ETIMEDOUT;
    }
    return Step::Continue;
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
    std::int64_t offset = 0;
    if (!offset_.resolve(ctx, offset, broadcast_ ? "cond_broadcast" : "cond_signal")) return Step::Exit;
    auto seq = touch(ctx, activity, map_, offset, true, true); // seq += 1
    if (!seq) return Step::Exit;
    Segment& segment = *seq->attachment->segment;
    poke_word(ctx, segment, seq->offset, peek_word(segment, seq->offset) + 1);
    auto waiters = touch(ctx, activity, map_, offset + 8, false, false);
    if (!waiters) return Step::Exit;
    if (peek_word(segment, waiters->offset) > 0)
      wake_syscall(ctx, activity, map_, offset, broadcast_ ? INT_MAX : 1);
    return finish(ctx);
  }

private:
  std::string map_;
  IntRef offset_;
  bool broadcast_;
};

ParamSpec offset_param(const std::string& what) { return int_ref_param("offset", what); }

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
                                                     read_int_ref(f, "offset", path, ctx)));
     }});

const OpRegistrar register_mutex_unlock(
    {"mutex_unlock",
     "pthread_mutex_unlock: xchg 0 in user space; FUTEX_WAKE one waiter only when the word said there may be "
     "some",
     {"mutex_unlock op", "", {map_param(), offset_param("byte offset of the mutex word")}},
     [](const json& f, const std::string& path, CompileContext& ctx, Program& p, std::uint16_t a) {
       p.ops.push_back(std::make_unique<MutexUnlockOp>(a, f.at("map").get<std::string>(),
                                                       read_int_ref(f, "offset", path, ctx)));
     }});

const OpRegistrar register_cond_wait(
    {"cond_wait",
     "pthread_cond_wait (timedwait with a timeout): release the mutex, sleep until a signal or broadcast, "
     "take the "
     "mutex again; the condition is two words at `offset` (sequence, waiters)",
     {"cond_wait op",
      "",
      {map_param(), offset_param("byte offset of the condition variable (16 bytes)"),
       int_ref_param("mutex", "byte offset of the mutex word, held by the caller"), timeout_param()}},
     [](const json& f, const std::string& path, CompileContext& ctx, Program& p, std::uint16_t a) {
       p.ops.push_back(std::make_unique<CondWaitOp>(
           a, read_timeout(f, path, ctx), f.at("map").get<std::string>(),
           read_int_ref(f, "offset", path, ctx), read_int_ref(f, "mutex", path, ctx)));
     }});

const OpRegistrar register_cond_signal(
    {"cond_signal",
     "pthread_cond_signal: bump the sequence; FUTEX_WAKE one waiter only if there are waiters",
     {"cond_signal op", "", {map_param(), offset_param("byte offset of the condition variable (16 bytes)")}},
     [](const json& f, const std::string& path, CompileContext& ctx, Program& p, std::uint16_t a) {
       p.ops.push_back(std::make_unique<CondSignalOp>(a, f.at("map").get<std::string>(),
                                                      read_int_ref(f, "offset", path, ctx), false));
     }});

const OpRegistrar register_cond_broadcast(
    {"cond_broadcast",
     "pthread_cond_broadcast: bump the sequence; FUTEX_WAKE every waiter if there are waiters",
     {"cond_broadcast op",
      "",
      {map_param(), offset_param("byte offset of the condition variable (16 bytes)")}},
     [](const json& f, const std::string& path, CompileContext& ctx, Program& p, std::uint16_t a) {
       p.ops.push_back(std::make_unique<CondSignalOp>(a, f.at("map").get<std::string>(),
                                                      read_int_ref(f, "offset", path, ctx), true));
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
