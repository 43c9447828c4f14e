// POSIX semaphores (sem_overview(7)): named ones (sem_open / sem_close / sem_unlink; Linux keeps
// them as files /dev/shm/sem.NAME mapped into each process that opens them) and unnamed ones
// (sem_init / sem_destroy) shared by the threads of one process. glibc's implementation (nptl
// sem_waitcommon.c, sem_post.c, since 2.21): the value and a count of waiters live in one word of
// user memory; sem_wait takes a unit with an atomic compare-and-swap and enters the kernel only when
// the value is 0 (futex wait on the word); sem_post adds a unit atomically and enters the kernel
// only when someone waits (futex wake of one). So an uncontended wait or post costs one atomic_rmw
// and no system call; a woken waiter competes again for the unit (another thread may take it
// first, and it waits again). sem_init with pshared = 1 places the sem_t in shared memory (a mapping
// and an offset, models/shm.cpp): every process that maps the segment reaches the same semaphore
// there, and its atomics touch that memory like any access (page faults, cache-line transfers).
// docs/semaphores.md.
#include "call_name.hpp"
#include "error.hpp"
#include "fs.hpp"
#include "ipc.hpp"
#include "names.hpp"
#include "shm.hpp"

#include <algorithm>
#include <climits>
#include <cstdio>
#include <map>

namespace ipcsim {

namespace {

constexpr std::int64_t kSemValueMax = INT_MAX; // SEM_VALUE_MAX
constexpr std::uint64_t kSemBytes = 32;        // sizeof(sem_t) on x86-64: where it may be placed
constexpr std::uint64_t kSemWord = 8;          // its data word (value and waiters): what atomics touch

struct PSem {
  PSem(std::string name, std::int64_t value)
      : name(name), value(value), waiters("posix sem " + name + ": waiting (futex wait in sem_wait)") {}
  std::string name; // "/name", or "(unnamed NAME in PROCESS)"
  std::int64_t value;
  std::uint32_t nwaiters = 0; // threads between registering as waiters and taking a unit
  std::uint32_t uid = 0, gid = 0, mode = 0;
  bool named = false;             // made by sem_open (else sem_init)
  const Process* owner = nullptr; // an unnamed one lives in this process's memory
  bool linked = false;            // a named one still has its name
  std::uint32_t opens = 0;
  WaitQueue waiters;
};

class PSemState : public IpcState {
public:
  explicit PSemState(Kernel&) {}
  std::map<std::string, std::shared_ptr<PSem>> names; // /dev/shm
  // By (process id, handle): what a script's sem_t refers to in that process.
  std::map<std::pair<std::uint32_t, std::string>, std::shared_ptr<PSem>> handles;
  std::vector<std::shared_ptr<PSem>> unnamed; // alive, for the listing
  // pshared 1: by (segment serial, offset), the sem_t's place in shared memory.
  std::map<std::pair<std::uint64_t, std::uint64_t>, std::shared_ptr<PSem>> shared;
  // Destroyed while threads may still sleep on them (undefined in POSIX): kept so that no wait
  // queue is freed under a sleeper.
  std::vector<std::shared_ptr<PSem>> retired;

  PSem* find_shared(const Segment& segment, std::uint64_t offset) {
    auto it = shared.find({segment.serial, offset});
    return it == shared.end() ? nullptr : it->second.get();
  }

  PSem* find(const Thread& t, const std::string& handle) {
    auto it = handles.find({t.process->id, handle});
    return it == handles.end() ? nullptr : it->second.get();
  }

  void list(std::vector<IpcTable>& tables) const override {
    IpcTable table{"POSIX semaphores", {"name", "owner", "perms", "value", "waiters"}, {}};
    auto row = [&](const PSem& s, bool named) {
      char perms[8];
      std::snprintf(perms, sizeof perms, "%o", s.mode);
      table.rows.push_back({s.name, named ? std::to_string(s.uid) : "-", named ? perms : "-",
                            std::to_string(s.value), std::to_string(s.waiters.size)});
    };
    for (const auto& [name, s] : names) row(*s, true);
    for (const auto& s : unnamed)
      if (s->owner->live_threads > 0) row(*s, false); // else gone with its process's memory
    for (const auto& [place, s] : shared) row(*s, false);
    tables.push_back(table);
  }
};

PSemState& psems(OpContext& ctx) { return ctx.kernel.ipc<PSemState>(); }

// How an op names its semaphore: a handle of this process (sem_open, sem_init), or the sem_t's
// place in a shared mapping (a pointer into shared memory, as another process holds it).
struct SemRef {
  std::string handle;
  std::string map; // "": by handle
  IntRef offset;
};

// The semaphore an op names, and the access to its word when it lives in shared memory. False: the
// op must stop (a user-space access outside the mapping killed the process with SIGSEGV, or the
// run stopped). `fault` (inside the futex call): no signal, the semaphore is just not found.
bool find_sem(OpContext& ctx, std::uint16_t activity, const SemRef& ref, const char* op, bool write,
              PSem*& sem, std::optional<Access>& access, bool in_kernel = false) {
  sem = nullptr;
  access.reset();
  if (ref.map.empty()) {
    sem = psems(ctx).find(ctx.thread, ref.handle);
    return true;
  }
  std::int64_t offset = 0;
  if (!ref.offset.resolve(ctx, offset, op)) return false;
  int fault = 0;
  access = user_access(ctx, ref.map, offset, kSemBytes, write, activity, in_kernel ? &fault : nullptr);
  if (!access) return in_kernel;
  sem = psems(ctx).find_shared(*access->attachment->segment, access->offset);
  return true;
}

// One atomic instruction on the semaphore's word: the locked instruction, and for a semaphore in
// shared memory the access itself (a page fault on the first touch, a line another core wrote).
void atomic_on(OpContext& ctx, std::uint16_t activity, const std::optional<Access>& access) {
  if (access) charge_touch(ctx, *access, kSemWord, true, activity);
  ctx.charge(activity, Primitive::atomic_rmw);
}

// glibc's futex calls for a semaphore are FUTEX_SHARED for a named one (its page of /dev/shm) and
// a pshared 1 one (in shared memory), FUTEX_PRIVATE for a pshared 0 one: the threads of one process
// find it by their mm and its address, with no page lookup (docs/futex.md).
bool shared_futex(const PSem& sem, const std::optional<Access>& access) { return sem.named || access; }

// FUTEX_WAIT up to the read of the word (futex_wait_setup): the key and the hash, then
// futex_hb_waiters_inc before the bucket's lock.
void futex_wait_setup(OpContext& ctx, std::uint16_t activity, const PSem& sem,
                      const std::optional<Access>& access) {
  charge_futex_key(ctx, activity, shared_futex(sem, access));
  ctx.charge(activity, Primitive::atomic_rmw);
}

// ---- Named semaphores ---------------------------------------------------------------------------

// sem_open: open("/dev/shm/sem.NAME") (creating it with O_CREAT), mmap of its page, close: one
// system call's entry and exit here, and the page mapped.
class SemOpenOp : public SyscallOp {
public:
  SemOpenOp(std::uint16_t activity, std::string name, bool create, bool exclusive, std::uint32_t mode,
            std::int64_t value, std::string handle)
      : SyscallOp(activity, {}), name_(std::move(name)), create_(create), exclusive_(exclusive), mode_(mode),
        value_(value), handle_(std::move(handle)) {}
  IoStatus call(OpContext& ctx) const override {
    ctx.sync();
    PSemState& state = psems(ctx);
    const Process& process = *ctx.thread.process;
    const CallName filled = call_name(name_, NameKind::SemOpen, ctx, "sem_open", "name");
    if (!filled.ok()) return filled.fail(ctx, activity);
    const std::string& name = filled.name;
    std::shared_ptr<PSem> sem;
    if (auto it = state.names.find(name); it != state.names.end()) {
      if (create_ && exclusive_) return fail_call(ctx, activity, EEXIST);
      sem = it->second;
      std::uint32_t uid = process.spec->uid, gid = process.spec->gid;
      std::uint32_t granted = uid == sem->uid ? sem->mode >> 6 : gid == sem->gid ? sem->mode >> 3 : sem->mode;
      if (uid != 0 && (granted & 06) != 06) return fail_call(ctx, activity, EACCES); // read and write
    } else {
      if (!create_) return fail_call(ctx, activity, ENOENT);
      if (value_ < 0 || value_ > kSemValueMax) return fail_call(ctx, activity, EINVAL);
      if (!ctx.kernel.new_ipc_object(ctx, "a POSIX semaphore"))
        return fail_call(ctx, activity, ENOSPC); // the run stops
      sem = std::make_shared<PSem>(name, value_);
      sem->uid = process.spec->uid;
      sem->gid = process.spec->gid;
      sem->mode = mode_;
      sem->named = sem->linked = true;
      state.names[name] = sem;
    }
    ctx.charge(activity, Primitive::map_page); // the semaphore's page, mapped into the process
    auto& slot = state.handles[{process.id, handle_}];
    if (slot != sem) {
      if (slot) --slot->opens;
      ++sem->opens;
      slot = sem;
    }
    ctx.succeed();
    return IoStatus::Done;
  }

private:
  std::string name_;
  bool create_, exclusive_;
  std::uint32_t mode_;
  std::int64_t value_;
  std::string handle_;
};

class SemCloseOp : public SyscallOp { // munmap of the page
public:
  SemCloseOp(std::uint16_t activity, std::string handle)
      : SyscallOp(activity, {}), handle_(std::move(handle)) {}
  IoStatus call(OpContext& ctx) const override {
    ctx.sync();
    PSemState& state = psems(ctx);
    auto it = state.handles.find({ctx.thread.process->id, handle_});
    // glibc's sem_close unmaps what sem_open mapped: a handle it did not make (sem_init) is EINVAL.
    if (it == state.handles.end() || !it->second->named) return fail_call(ctx, activity, EINVAL);
    --it->second->opens;
    state.handles.erase(it);
    ctx.succeed();
    return IoStatus::Done;
  }

private:
  std::string handle_;
};

class SemUnlinkOp : public SyscallOp { // unlink("/dev/shm/sem.NAME")
public:
  SemUnlinkOp(std::uint16_t activity, std::string name) : SyscallOp(activity, {}), name_(std::move(name)) {}
  IoStatus call(OpContext& ctx) const override {
    ctx.sync();
    PSemState& state = psems(ctx);
    const CallName filled = call_name(name_, NameKind::SemUnlink, ctx, "sem_unlink", "name");
    if (!filled.ok()) return filled.fail(ctx, activity);
    const std::string& name = filled.name;
    auto it = state.names.find(name);
    if (it == state.names.end()) return fail_call(ctx, activity, ENOENT);
    std::uint32_t uid = ctx.thread.process->spec->uid;
    if (uid != 0 && uid != it->second->uid) return fail_call(ctx, activity, EACCES); // /dev/shm is sticky
    it->second->linked = false;
    state.names.erase(it); // processes that opened it keep using it
    ctx.succeed();
    return IoStatus::Done;
  }

private:
  std::string name_;
};

// ---- Unnamed semaphores ---------------------------------------------------------------------------

// sem_init / sem_destroy: stores into the process's memory, no system call. A pshared 0 semaphore
// costs nothing (ipcsim does not model the process's private memory); a pshared 1 one is a store
// into the shared mapping, charged as one (a page fault on the first touch, a cache-line transfer).
class SemInitOp : public Op {
public:
  SemInitOp(std::uint16_t activity, std::string handle, std::int64_t value, std::string map, IntRef offset)
      : Op(activity), handle_(std::move(handle)), value_(value), map_(std::move(map)),
        offset_(std::move(offset)) {}
  Step execute(OpContext& ctx) const override {
    PSemState& state = psems(ctx);
    Thread& t = ctx.thread;
    if (!map_.empty()) return init_shared(ctx);
    if (value_ < 0 || value_ > kSemValueMax) {
      ctx.fail(activity, EINVAL);
    } else {
      auto sem =
          std::make_shared<PSem>("(unnamed " + handle_ + " in " + t.process->display_name() + ")", value_);
      sem->owner = t.process;
      auto& slot = state.handles[{t.process->id, handle_}];
      if (slot) forget(state, slot);
      slot = sem;
      state.unnamed.push_back(sem);
      ctx.succeed();
    }
    ++t.pc;
    return Step::Continue;
  }

  // A handle given another semaphore lets go of its old one (kept alive if threads may sleep on it).
  static void forget(PSemState& state, const std::shared_ptr<PSem>& old) {
    std::erase(state.unnamed, old);
    state.retired.push_back(old);
  }

private:
  // glibc's sem_init(sem, 1, value): stores the value into the sem_t in shared memory. Every process
  // mapping the segment reaches it at the same offset; an existing one there is initialised again
  // (undefined in POSIX: the value is set, sleepers stay).
  Step init_shared(OpContext& ctx) const {
    Thread& t = ctx.thread;
    PSemState& state = psems(ctx);
    std::int64_t offset = 0;
    if (!offset_.resolve(ctx, offset, "sem_init")) return Step::Exit;
    auto access = user_access(ctx, map_, offset, kSemBytes, true, activity);
    if (!access) return Step::Exit; // SIGSEGV
    if (value_ < 0 || value_ > kSemValueMax || offset % 4 != 0) {
      ctx.fail(activity, EINVAL); // misaligned: its futex calls could never work (EINVAL there)
    } else {
      charge_touch(ctx, *access, kSemWord, true, activity);
      ctx.sync();
      const Segment& segment = *access->attachment->segment;
      auto& sem = state.shared[{segment.serial, access->offset}];
      if (!sem)
        sem = std::make_shared<PSem>(
            "(unnamed at " + segment.name + " offset " + std::to_string(access->offset) + ")", value_);
      sem->value = value_;
      ctx.succeed();
    }
    ++t.pc;
    return Step::Continue;
  }

  std::string handle_;
  std::int64_t value_;
  std::string map_;
  IntRef offset_;
};

class SemDestroyOp : public Op {
public:
  SemDestroyOp(std::uint16_t activity, SemRef ref) : Op(activity), ref_(std::move(ref)) {}
  Step execute(OpContext& ctx) const override {
    PSemState& state = psems(ctx);
    PSem* sem = nullptr;
    std::optional<Access> access;
    if (!find_sem(ctx, activity, ref_, "sem_destroy", true, sem, access)) return Step::Exit;
    if (!sem || sem->named) {
      ctx.fail(activity, EINVAL);
    } else {
      // Every handle to it goes (in a shared one's case, those of every process).
      std::shared_ptr<PSem> keep;
      for (auto it = state.handles.begin(); it != state.handles.end();)
        if (it->second.get() == sem) {
          keep = it->second;
          it = state.handles.erase(it);
        } else {
          ++it;
        }
      for (auto it = state.shared.begin(); it != state.shared.end(); ++it)
        if (it->second.get() == sem) {
          keep = it->second;
          state.shared.erase(it);
          break;
        }
      std::erase(state.unnamed, keep);
      state.retired.push_back(keep);
      ctx.succeed();
    }
    ++ctx.thread.pc;
    return Step::Continue;
  }

private:
  SemRef ref_;
};

// ---- Waiting and posting --------------------------------------------------------------------------

enum class WaitKind : std::uint8_t { Wait, TryWait, TimedWait };

// Phases of a sem_wait: 0 start (the atomic attempt, user space); 1 in the futex wait system call.
class SemWaitOp : public Op {
public:
  SemWaitOp(std::uint16_t activity, SemRef ref, WaitKind kind, TimeRef timeout)
      : Op(activity), ref_(std::move(ref)), kind_(kind), timeout_(std::move(timeout)) {}
  Step execute(OpContext& ctx) const override {
    Thread& t = ctx.thread;
    PSem* sem = nullptr;
    std::optional<Access> access;
    // In the futex call (phase 1) an address gone since is no signal: the semaphore is just gone.
    if (!find_sem(ctx, activity, ref_, kNames[static_cast<int>(kind_)], true, sem, access, t.phase != 0))
      return Step::Exit;
    if (t.phase == 0) {
      t.result = 0;
      t.error = 0;
      if (!sem) return finish(ctx, EINVAL, false);
      Cycles timeout = 0;
      if (kind_ == WaitKind::TimedWait && !timeout_.resolve(ctx, timeout, "sem_timedwait", "timeout"))
        return Step::Exit;
      t.op_deadline = kind_ == WaitKind::TimedWait ? ctx.now() + timeout : kNever;
      atomic_on(ctx, activity, access); // compare-and-swap: take a unit if there is one
      ctx.sync();
      if (sem->value > 0) {
        --sem->value;
        return finish(ctx, 0, false);
      }
      if (kind_ == WaitKind::TryWait) return finish(ctx, EAGAIN, false);
      atomic_on(ctx, activity, access); // register as a waiter (nwaiters + 1)
      ++sem->nwaiters;
      t.phase = 1;
      ctx.enter_syscall(activity); // futex(FUTEX_WAIT) while the value is 0
      futex_wait_setup(ctx, activity, *sem, access);
      t.op_nonblocking = false;
      t.wait_result = WaitResult::None;
    }
    // In the kernel: the value may have changed before the futex looked (then no sleep).
    ctx.sync();
    if (!sem) return finish(ctx, EINVAL, true); // its process destroyed it meanwhile: undefined in POSIX
    if (t.wait_result == WaitResult::Woken && !t.signal_pending && sem->value == 0) {
      // Another took the unit: back in user space, the CAS, and FUTEX_WAIT again.
      ctx.leave_syscall(activity);
      atomic_on(ctx, activity, access);
      ctx.enter_syscall(activity);
      futex_wait_setup(ctx, activity, *sem, access);
      t.wait_result = WaitResult::None;
      ctx.sync();
    }
    if (sem->value > 0 || t.signal_pending || t.wait_result == WaitResult::Interrupted ||
        t.wait_result == WaitResult::TimedOut || ctx.now() >= t.op_deadline) {
      if (t.wait_result == WaitResult::None && sem->value > 0) { // the word changed: futex_q_unlock
        ctx.charge(activity, Primitive::lock_acquire);
        ctx.charge(activity, Primitive::atomic_rmw);
      } else if (t.wait_result == WaitResult::None) { // queued, and out at once (futex_wait_queue)
        ctx.charge(activity, Primitive::waitqueue_op);
        charge_futex_unqueue(ctx, activity);
      } else if (t.wait_result != WaitResult::Woken || t.signal_pending) { // a timer or signal woke it
        charge_futex_unqueue(ctx, activity);
      }
    }
    if (sem->value > 0) {
      ctx.leave_syscall(activity);
      atomic_on(ctx, activity, access); // back in user space: the CAS again
      --sem->value;
      --sem->nwaiters;
      t.phase = 0;
      return finish(ctx, 0, false);
    }
    if (t.signal_pending) { // the futex returns to run the handler; SA_RESTART restarts sem_wait
      --sem->nwaiters;
      // sem_timedwait's FUTEX_WAIT_BITSET has a deadline: the kernel returns -ERESTART_RESTARTBLOCK,
      // which becomes EINTR whenever a handler runs, SA_RESTART or not (measured on Linux 6.18;
      // signal(7) still lists sem_timedwait among the restarted calls).
      return finish(ctx, kind_ == WaitKind::TimedWait ? EINTR : kERESTARTSYS, true);
    }
    if (t.wait_result == WaitResult::Interrupted) {
      --sem->nwaiters;
      return finish(ctx, EINTR, true);
    }
    Cycles now = ctx.now();
    if (t.wait_result == WaitResult::TimedOut || now >= t.op_deadline) {
      --sem->nwaiters;
      return finish(ctx, ETIMEDOUT, true);
    }
    ctx.kernel.block(ctx.core, t, &sem->waiters, t.op_deadline == kNever ? kNever : t.op_deadline - now);
    t.enqueue_due = true; // futex_queue: waitqueue_op as the thread leaves its core
    return Step::Block;
  }

private:
  // Ends the call; `in_kernel`: the futex system call returns first.
  Step finish(OpContext& ctx, int error, bool in_kernel) const {
    Thread& t = ctx.thread;
    t.phase = 0;
    t.op_deadline = kNever;
    if (in_kernel) ctx.leave_syscall(activity);
    if (error == kERESTARTSYS) {
      t.result = -1;
      t.error = kERESTARTSYS; // the delivery decides: EINTR or the wait again
    } else if (error) {
      ctx.fail(activity, error);
    } else {
      ctx.succeed();
    }
    ++t.pc;
    return Step::Continue;
  }

  static constexpr const char* kNames[] = {"sem_wait", "sem_trywait", "sem_timedwait"};
  SemRef ref_;
  WaitKind kind_;
  TimeRef timeout_;
};

class SemPostOp : public Op {
public:
  SemPostOp(std::uint16_t activity, SemRef ref) : Op(activity), ref_(std::move(ref)) {}
  Step execute(OpContext& ctx) const override {
    Thread& t = ctx.thread;
    PSem* sem = nullptr;
    std::optional<Access> access;
    if (!find_sem(ctx, activity, ref_, "sem_post", true, sem, access)) return Step::Exit;
    if (!sem) {
      ctx.fail(activity, EINVAL);
    } else {
      atomic_on(ctx, activity, access); // fetch-and-add of one unit
      ctx.sync();
      if (sem->value == kSemValueMax) {
        ctx.fail(activity, EOVERFLOW);
      } else {
        ++sem->value;
        if (sem->nwaiters > 0) { // futex(FUTEX_WAKE, 1): docs/futex.md's steps
          ctx.enter_syscall(activity);
          charge_futex_key(ctx, activity, shared_futex(*sem, access));
          ctx.charge(activity, Primitive::atomic_rmw); // futex_hb_waiters_pending
          ctx.sync();
          if (sem->waiters.head) { // the bucket's lock, the waiter unlinked
            ctx.charge(activity, Primitive::lock_acquire);
            ctx.charge(activity, Primitive::list_op);
            ctx.charge(activity, Primitive::atomic_rmw);
            ctx.kernel.wake_one(ctx.core, sem->waiters, &t, activity);
          }
          ctx.leave_syscall(activity);
        }
        ctx.succeed();
      }
    }
    ++t.pc;
    return Step::Continue;
  }

private:
  SemRef ref_;
};

class SemGetvalueOp : public Op { // a load in user space
public:
  SemGetvalueOp(std::uint16_t activity, SemRef ref) : Op(activity), ref_(std::move(ref)) {}
  Step execute(OpContext& ctx) const override {
    PSem* sem = nullptr;
    std::optional<Access> access;
    if (!find_sem(ctx, activity, ref_, "sem_getvalue", false, sem, access)) return Step::Exit;
    if (sem && access) charge_touch(ctx, *access, kSemWord, false, activity);
    ctx.sync();
    if (!sem)
      ctx.fail(activity, EINVAL);
    else
      ctx.succeed(sem->value);
    ++ctx.thread.pc;
    return Step::Continue;
  }

private:
  SemRef ref_;
};

// ---- Registration ---------------------------------------------------------------------------------

ParamSpec sem_param() {
  return {"sem", ParamType::String, nullptr, "",
          "the semaphore's handle in this process (the sem_t variable)"};
}
// An op on a semaphore takes a handle, or the sem_t's place in shared memory.
std::vector<ParamSpec> sem_ref_params() {
  return {
      {"sem", ParamType::String, "", "", "the semaphore's handle in this process (sem_open, sem_init)"},
      {"map", ParamType::String, "", "",
       "or: the shared mapping holding the sem_t of a pshared semaphore (by the name shmat or mmap gave it)"},
      int_ref_param("offset", "with map: the sem_t's byte offset in the mapping", 0)};
}

std::string read_handle(const json& f, const std::string& path, const CompileContext& ctx) {
  auto name = f.at("sem").get<std::string>();
  if (!valid_name(name))
    fail_at(ctx.read.file, join_path(path, "sem"),
            "invalid handle \"" + name +
                "\"; use letters, digits, _ and - (it names a sem_t of the process)");
  return name;
}

SemRef read_sem_ref(const json& f, const std::string& path, CompileContext& ctx) {
  SemRef ref;
  ref.map = f.at("map").get<std::string>();
  const bool by_handle = !f.at("sem").get<std::string>().empty();
  if (by_handle == !ref.map.empty())
    fail_at(ctx.read.file, path,
            by_handle ? "give the semaphore as \"sem\" (a handle) or as \"map\" and \"offset\" (a sem_t in "
                        "shared memory), not both"
                      : "which semaphore? give \"sem\" (a handle from sem_open or sem_init) or \"map\" and "
                        "\"offset\" (a sem_t that sem_init placed in shared memory)");
  if (by_handle) {
    if (f.at("offset") != json(0)) // the default
      fail_at(ctx.read.file, join_path(path, "offset"),
              "\"offset\" goes with \"map\" (a sem_t in shared memory); a handle needs none: drop it");
    ref.handle = read_handle(f, path, ctx);
  } else {
    ref.offset = read_int_ref(f, "offset", path, ctx);
  }
  return ref;
}

std::string read_sem_name(const json& f, const std::string& path, CompileContext& ctx) {
  auto name = f.at("name").get<std::string>();
  bool ok = name.size() >= 2 && name[0] == '/' && name.find('/', 1) == std::string::npos;
  if (!ok)
    fail_at(ctx.read.file, join_path(path, "name"),
            "invalid semaphore name \"" + name +
                "\"; expected \"/name\": a slash, then at least one character, no "
                "other slash (sem_overview(7))");
  check_template(name, join_path(path, "name"), ctx); // {pid}, {index}, variables: filled at the call
  return name;
}

const OpRegistrar register_sem_open_op(
    {"sem_open",
     "open (or create) a named POSIX semaphore into a handle of this process",
     {"sem_open op",
      "",
      {{"name", ParamType::String, nullptr, "", "\"/name\""},
       sem_param(),
       {"flags", ParamType::StringList, json::array(), "flag names", "O_CREAT, O_EXCL"},
       {"mode", ParamType::String, "0600", "", "permission bits of a new semaphore, octal"},
       {"value", ParamType::Integer, 0, "", "the initial value of a new semaphore (at most SEM_VALUE_MAX)",
        -9.2e18, 9.2e18}}},
     [](const json& f, const std::string& path, CompileContext& ctx, Program& p, std::uint16_t a) {
       auto name = read_sem_name(f, path, ctx);
       bool create = false, exclusive = false;
       const json& flags = f.at("flags");
       for (std::size_t i = 0; i < flags.size(); ++i) {
         std::string flag = flags[i].is_string() ? flags[i].get<std::string>() : flags[i].dump();
         if (flag == "O_CREAT")
           create = true;
         else if (flag == "O_EXCL")
           exclusive = true;
         else
           fail_at(ctx.read.file, join_path(join_path(path, "flags"), i),
                   "unknown flag \"" + flag + "\"; accepted: O_CREAT, O_EXCL");
       }
       p.ops.push_back(std::make_unique<SemOpenOp>(a, name, create, exclusive, read_mode(f, path, ctx),
                                                   f.at("value").get<std::int64_t>(),
                                                   read_handle(f, path, ctx)));
     }});

const OpRegistrar register_sem_close_op(
    {"sem_close",
     "close a named POSIX semaphore's handle (the semaphore lives on)",
     {"sem_close op", "", {sem_param()}},
     [](const json& f, const std::string& path, CompileContext& ctx, Program& p, std::uint16_t a) {
       p.ops.push_back(std::make_unique<SemCloseOp>(a, read_handle(f, path, ctx)));
     }});

const OpRegistrar register_sem_unlink_op(
    {"sem_unlink",
     "remove a named POSIX semaphore's name (those who opened it keep it)",
     {"sem_unlink op", "", {{"name", ParamType::String, nullptr, "", "\"/name\""}}},
     [](const json& f, const std::string& path, CompileContext& ctx, Program& p, std::uint16_t a) {
       p.ops.push_back(std::make_unique<SemUnlinkOp>(a, read_sem_name(f, path, ctx)));
     }});

const OpRegistrar register_sem_init_op(
    {"sem_init",
     "initialise an unnamed POSIX semaphore: shared by the threads of this process (pshared 0), or placed in "
     "shared memory at `map` and `offset` and shared by every process mapping it (pshared 1)",
     {"sem_init op",
      "",
      {{"sem", ParamType::String, "", "",
        "pshared 0: the semaphore's handle in this process (a pshared 1 one is named by map and offset)"},
       {"pshared", ParamType::Integer, 0, "",
        "0: threads of this process; 1: processes, the sem_t placed in shared memory (map, offset)", 0.0,
        1.0},
       {"value", ParamType::Integer, 0, "", "the initial value (at most SEM_VALUE_MAX)", -9.2e18, 9.2e18},
       {"map", ParamType::String, "", "",
        "pshared 1: the shared mapping the sem_t is placed in (by the name shmat or mmap gave it)"},
       int_ref_param("offset", "pshared 1: the sem_t's byte offset in the mapping (4-byte aligned)", 0)}},
     [](const json& f, const std::string& path, CompileContext& ctx, Program& p, std::uint16_t a) {
       const bool pshared = f.at("pshared") != 0;
       auto map = f.at("map").get<std::string>();
       if (pshared && map.empty())
         fail_at(
             ctx.read.file, join_path(path, "pshared"),
             "pshared 1 shares the semaphore between processes, so it lives in shared memory: give \"map\" "
             "(a mapping of a shared segment, from shmat or mmap) and \"offset\" (where its sem_t is), as a "
             "program places a sem_t");
       if (!pshared && !map.empty())
         fail_at(ctx.read.file, join_path(path, "map"),
                 "a semaphore placed in shared memory is there to be shared between processes: set pshared 1 "
                 "(a pshared 0 semaphore is the process's own: drop map and offset)");
       std::string handle;
       if (!f.at("sem").get<std::string>().empty()) handle = read_handle(f, path, ctx);
       if (pshared && !handle.empty())
         fail_at(
             ctx.read.file, join_path(path, "sem"),
             "a semaphore in shared memory is named by its place, as every process reaches it: drop \"sem\" "
             "and give the other sem ops \"map\" and \"offset\"");
       if (!pshared && handle.empty())
         fail_at(ctx.read.file, path,
                 "give the semaphore's handle, \"sem\" (the sem_t variable of this process)");
       if (!pshared && f.at("offset") != json(0))
         fail_at(ctx.read.file, join_path(path, "offset"),
                 "\"offset\" goes with pshared 1 and \"map\"; drop it");
       p.ops.push_back(
           std::make_unique<SemInitOp>(a, handle, f.at("value").get<std::int64_t>(), map,
                                       pshared ? read_int_ref(f, "offset", path, ctx) : IntRef{}));
     }});

const OpRegistrar register_sem_destroy_op(
    {"sem_destroy",
     "destroy an unnamed POSIX semaphore",
     {"sem_destroy op", "", sem_ref_params()},
     [](const json& f, const std::string& path, CompileContext& ctx, Program& p, std::uint16_t a) {
       p.ops.push_back(std::make_unique<SemDestroyOp>(a, read_sem_ref(f, path, ctx)));
     }});

const OpRegistrar register_sem_wait_op(
    {"sem_wait",
     "take a unit of a POSIX semaphore, waiting while it is 0 (in user space when there is one)",
     {"sem_wait op", "", sem_ref_params()},
     [](const json& f, const std::string& path, CompileContext& ctx, Program& p, std::uint16_t a) {
       p.ops.push_back(std::make_unique<SemWaitOp>(a, read_sem_ref(f, path, ctx), WaitKind::Wait, TimeRef{}));
     }});

const OpRegistrar register_sem_trywait_op(
    {"sem_trywait",
     "take a unit of a POSIX semaphore if there is one, else fail with EAGAIN",
     {"sem_trywait op", "", sem_ref_params()},
     [](const json& f, const std::string& path, CompileContext& ctx, Program& p, std::uint16_t a) {
       p.ops.push_back(
           std::make_unique<SemWaitOp>(a, read_sem_ref(f, path, ctx), WaitKind::TryWait, TimeRef{}));
     }});

const OpRegistrar register_sem_timedwait_op(
    {"sem_timedwait",
     "sem_wait for at most `timeout` (ETIMEDOUT)",
     {"sem_timedwait op", "",
      [] {
        auto params = sem_ref_params();
        ParamSpec timeout{"timeout", ParamType::Time, nullptr, "cycles or duration", "how long it may wait"};
        timeout.takes_variable = true;
        params.push_back(timeout);
        return params;
      }()},
     [](const json& f, const std::string& path, CompileContext& ctx, Program& p, std::uint16_t a) {
       p.ops.push_back(std::make_unique<SemWaitOp>(a, read_sem_ref(f, path, ctx), WaitKind::TimedWait,
                                                   read_time_field(f, "timeout", path, ctx)));
     }});

const OpRegistrar register_sem_post_op(
    {"sem_post",
     "add a unit to a POSIX semaphore (a system call only to wake a waiter); EOVERFLOW at SEM_VALUE_MAX",
     {"sem_post op", "", sem_ref_params()},
     [](const json& f, const std::string& path, CompileContext& ctx, Program& p, std::uint16_t a) {
       p.ops.push_back(std::make_unique<SemPostOp>(a, read_sem_ref(f, path, ctx)));
     }});

const OpRegistrar register_sem_getvalue_op(
    {"sem_getvalue",
     "read a POSIX semaphore's value into {result}",
     {"sem_getvalue op", "", sem_ref_params()},
     [](const json& f, const std::string& path, CompileContext& ctx, Program& p, std::uint16_t a) {
       p.ops.push_back(std::make_unique<SemGetvalueOp>(a, read_sem_ref(f, path, ctx)));
     }});

} // namespace

} // namespace ipcsim
