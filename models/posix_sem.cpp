// POSIX semaphores (sem_overview(7)): named ones (sem_open / sem_close / sem_unlink; Linux keeps
// them as files /dev/shm/sem.NAME mapped into each process that opens them) and unnamed ones
// (sem_init / sem_destroy) shared by the threads of one process. glibc's implementation (nptl
// sem_waitcommon.c, sem_post.c, since 2.21): the value and a count of waiters live in one word of
// user memory; sem_wait takes a unit with an atomic compare-and-swap and enters the kernel only when
// the value is 0 (futex wait on the word); sem_post adds a unit atomically and enters the kernel
// only when someone waits (futex wake of one). So an uncontended wait or post costs one atomic_rmw
// and no system call; a woken waiter competes again for the unit (another thread may take it
// first, and it waits again). sem_init with pshared = 1 needs the semaphore in memory shared
// between processes, which ipcsim does not model yet: it is refused when the scenario loads.
// docs/semaphores.md.
#include "error.hpp"
#include "fs.hpp"
#include "ipc.hpp"
#include "names.hpp"

#include <algorithm>
#include <climits>
#include <cstdio>
#include <map>

namespace ipcsim {

namespace {

constexpr std::int64_t kSemValueMax = INT_MAX; // SEM_VALUE_MAX
constexpr std::size_t kNameMax = 251;          // NAME_MAX minus "sem."

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
    tables.push_back(table);
  }
};

PSemState& psems(OpContext& ctx) { return ctx.kernel.ipc<PSemState>(); }

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
    if (name_.size() > kNameMax) return fail_call(ctx, activity, ENAMETOOLONG);
    std::shared_ptr<PSem> sem;
    if (auto it = state.names.find(name_); it != state.names.end()) {
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
      sem = std::make_shared<PSem>(name_, value_);
      sem->uid = process.spec->uid;
      sem->gid = process.spec->gid;
      sem->mode = mode_;
      sem->named = sem->linked = true;
      state.names[name_] = sem;
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
    if (it == state.handles.end() || !!it->second->named) return fail_call(ctx, activity, EINVAL);
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
    auto it = state.names.find(name_);
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

// sem_init / sem_destroy: stores into the process's memory, no system call and nothing to charge.
class SemInitOp : public Op {
public:
  SemInitOp(std::uint16_t activity, std::string handle, std::int64_t value)
      : Op(activity), handle_(std::move(handle)), value_(value) {}
  Step execute(OpContext& ctx) const override {
    PSemState& state = psems(ctx);
    Thread& t = ctx.thread;
    if (value_ < 0 || value_ > kSemValueMax) {
      ctx.fail(activity, EINVAL);
    } else {
      auto sem =
          std::make_shared<PSem>("(unnamed " + handle_ + " in " + t.process->display_name() + ")", value_);
      sem->owner = t.process;
      auto& slot = state.handles[{t.process->id, handle_}];
      if (slot) std::erase(state.unnamed, slot);
      slot = sem;
      state.unnamed.push_back(sem);
      ctx.succeed();
    }
    ++t.pc;
    return Step::Continue;
  }

private:
  std::string handle_;
  std::int64_t value_;
};

class SemDestroyOp : public Op {
public:
  SemDestroyOp(std::uint16_t activity, std::string handle) : Op(activity), handle_(std::move(handle)) {}
  Step execute(OpContext& ctx) const override {
    PSemState& state = psems(ctx);
    auto it = state.handles.find({ctx.thread.process->id, handle_});
    if (it == state.handles.end() || it->second->named) {
      ctx.fail(activity, EINVAL);
    } else {
      std::erase(state.unnamed, it->second);
      state.handles.erase(it);
      ctx.succeed();
    }
    ++ctx.thread.pc;
    return Step::Continue;
  }

private:
  std::string handle_;
};

// ---- Waiting and posting --------------------------------------------------------------------------

enum class WaitKind : std::uint8_t { Wait, TryWait, TimedWait };

// Phases of a sem_wait: 0 start (the atomic attempt, user space); 1 in the futex wait system call.
class SemWaitOp : public Op {
public:
  SemWaitOp(std::uint16_t activity, std::string handle, WaitKind kind, Cycles timeout)
      : Op(activity), handle_(std::move(handle)), kind_(kind), timeout_(timeout) {}
  Step execute(OpContext& ctx) const override {
    Thread& t = ctx.thread;
    PSemState& state = psems(ctx);
    PSem* sem = state.find(t, handle_);
    if (t.phase == 0) {
      t.result = 0;
      t.error = 0;
      if (!sem) return finish(ctx, EINVAL, false);
      t.op_deadline = kind_ == WaitKind::TimedWait ? ctx.now() + timeout_ : kNever;
      ctx.charge(activity, Primitive::atomic_rmw); // compare-and-swap: take a unit if there is one
      ctx.sync();
      if (sem->value > 0) {
        --sem->value;
        return finish(ctx, 0, false);
      }
      if (kind_ == WaitKind::TryWait) return finish(ctx, EAGAIN, false);
      ctx.charge(activity, Primitive::atomic_rmw); // register as a waiter (nwaiters + 1)
      ++sem->nwaiters;
      t.phase = 1;
      ctx.enter_syscall(activity); // futex(FUTEX_WAIT) while the value is 0
      t.op_nonblocking = false;
      t.wait_result = WaitResult::None;
    }
    // In the kernel: the value may have changed before the futex looked (then no sleep).
    ctx.sync();
    if (!sem) return finish(ctx, EINVAL, true); // its process destroyed it meanwhile: undefined in POSIX
    if (t.wait_result == WaitResult::Woken && sem->value == 0) { // another took the unit: user, CAS, wait
      ctx.leave_syscall(activity);
      ctx.charge(activity, Primitive::atomic_rmw);
      ctx.enter_syscall(activity);
      t.wait_result = WaitResult::None;
      ctx.sync();
    }
    if (sem->value > 0) {
      ctx.leave_syscall(activity);
      ctx.charge(activity, Primitive::atomic_rmw); // back in user space: the CAS again
      --sem->value;
      --sem->nwaiters;
      t.phase = 0;
      return finish(ctx, 0, false);
    }
    if (t.signal_pending) { // the futex returns to run the handler; SA_RESTART restarts sem_wait
      --sem->nwaiters;
      return finish(ctx, kERESTARTSYS, true);
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

  std::string handle_;
  WaitKind kind_;
  Cycles timeout_;
};

class SemPostOp : public Op {
public:
  SemPostOp(std::uint16_t activity, std::string handle) : Op(activity), handle_(std::move(handle)) {}
  Step execute(OpContext& ctx) const override {
    Thread& t = ctx.thread;
    PSemState& state = psems(ctx);
    PSem* sem = state.find(t, handle_);
    if (!sem) {
      ctx.fail(activity, EINVAL);
    } else {
      ctx.charge(activity, Primitive::atomic_rmw); // fetch-and-add of one unit
      ctx.sync();
      if (sem->value == kSemValueMax) {
        ctx.fail(activity, EOVERFLOW);
      } else {
        ++sem->value;
        if (sem->nwaiters > 0) { // futex(FUTEX_WAKE, 1)
          ctx.enter_syscall(activity);
          ctx.sync();
          ctx.kernel.wake_one(ctx.core, sem->waiters, &t, activity);
          ctx.leave_syscall(activity);
        }
        ctx.succeed();
      }
    }
    ++t.pc;
    return Step::Continue;
  }

private:
  std::string handle_;
};

class SemGetvalueOp : public Op { // a load in user space
public:
  SemGetvalueOp(std::uint16_t activity, std::string handle) : Op(activity), handle_(std::move(handle)) {}
  Step execute(OpContext& ctx) const override {
    PSem* sem = psems(ctx).find(ctx.thread, handle_);
    ctx.sync();
    if (!sem)
      ctx.fail(activity, EINVAL);
    else
      ctx.succeed(sem->value);
    ++ctx.thread.pc;
    return Step::Continue;
  }

private:
  std::string handle_;
};

// ---- Registration ---------------------------------------------------------------------------------

ParamSpec sem_param() {
  return {"sem", ParamType::String, nullptr, "",
          "the semaphore's handle in this process (the sem_t variable)"};
}

std::string read_handle(const json& f, const std::string& path, const CompileContext& ctx) {
  auto name = f.at("sem").get<std::string>();
  if (!valid_name(name))
    fail_at(ctx.read.file, join_path(path, "sem"),
            "invalid handle \"" + name +
                "\"; use letters, digits, _ and - (it names a sem_t of the process)");
  return name;
}

std::string read_sem_name(const json& f, const std::string& path, const CompileContext& ctx) {
  auto name = f.at("name").get<std::string>();
  bool ok = name.size() >= 2 && name[0] == '/' && name.find('/', 1) == std::string::npos;
  if (!ok)
    fail_at(ctx.read.file, join_path(path, "name"),
            "invalid semaphore name \"" + name +
                "\"; expected \"/name\": a slash, then at least one character, no "
                "other slash (sem_overview(7))");
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
     "initialise an unnamed POSIX semaphore shared by the threads of this process (pshared 0)",
     {"sem_init op",
      "",
      {sem_param(),
       {"pshared", ParamType::Integer, 0, "",
        "0: threads of this process; 1 (between processes) needs shared memory", 0.0, 1.0},
       {"value", ParamType::Integer, 0, "", "the initial value (at most SEM_VALUE_MAX)", -9.2e18, 9.2e18}}},
     [](const json& f, const std::string& path, CompileContext& ctx, Program& p, std::uint16_t a) {
       if (f.at("pshared") != 0)
         fail_at(ctx.read.file, join_path(path, "pshared"),
                 "pshared 1 puts the semaphore in a shared-memory segment, and ipcsim does not place "
                 "semaphores in its shared memory yet; share a named semaphore (sem_open) between processes, "
                 "or use pshared 0 between the threads of one process");
       p.ops.push_back(
           std::make_unique<SemInitOp>(a, read_handle(f, path, ctx), f.at("value").get<std::int64_t>()));
     }});

const OpRegistrar register_sem_destroy_op(
    {"sem_destroy",
     "destroy an unnamed POSIX semaphore",
     {"sem_destroy op", "", {sem_param()}},
     [](const json& f, const std::string& path, CompileContext& ctx, Program& p, std::uint16_t a) {
       p.ops.push_back(std::make_unique<SemDestroyOp>(a, read_handle(f, path, ctx)));
     }});

const OpRegistrar register_sem_wait_op(
    {"sem_wait",
     "take a unit of a POSIX semaphore, waiting while it is 0 (in user space when there is one)",
     {"sem_wait op", "", {sem_param()}},
     [](const json& f, const std::string& path, CompileContext& ctx, Program& p, std::uint16_t a) {
       p.ops.push_back(std::make_unique<SemWaitOp>(a, read_handle(f, path, ctx), WaitKind::Wait, kNever));
     }});

const OpRegistrar register_sem_trywait_op(
    {"sem_trywait",
     "take a unit of a POSIX semaphore if there is one, else fail with EAGAIN",
     {"sem_trywait op", "", {sem_param()}},
     [](const json& f, const std::string& path, CompileContext& ctx, Program& p, std::uint16_t a) {
       p.ops.push_back(std::make_unique<SemWaitOp>(a, read_handle(f, path, ctx), WaitKind::TryWait, kNever));
     }});

const OpRegistrar register_sem_timedwait_op(
    {"sem_timedwait",
     "sem_wait for at most `timeout` (ETIMEDOUT)",
     {"sem_timedwait op",
      "",
      {sem_param(), {"timeout", ParamType::Time, nullptr, "cycles or duration", "how long it may wait"}}},
     [](const json& f, const std::string& path, CompileContext& ctx, Program& p, std::uint16_t a) {
       p.ops.push_back(std::make_unique<SemWaitOp>(a, read_handle(f, path, ctx), WaitKind::TimedWait,
                                                   read_time_cycles(f.at("timeout"), ctx.read.hz)));
     }});

const OpRegistrar register_sem_post_op(
    {"sem_post",
     "add a unit to a POSIX semaphore (a system call only to wake a waiter); EOVERFLOW at SEM_VALUE_MAX",
     {"sem_post op", "", {sem_param()}},
     [](const json& f, const std::string& path, CompileContext& ctx, Program& p, std::uint16_t a) {
       p.ops.push_back(std::make_unique<SemPostOp>(a, read_handle(f, path, ctx)));
     }});

const OpRegistrar register_sem_getvalue_op(
    {"sem_getvalue",
     "read a POSIX semaphore's value into {result}",
     {"sem_getvalue op", "", {sem_param()}},
     [](const json& f, const std::string& path, CompileContext& ctx, Program& p, std::uint16_t a) {
       p.ops.push_back(std::make_unique<SemGetvalueOp>(a, read_handle(f, path, ctx)));
     }});

} // namespace

} // namespace ipcsim
