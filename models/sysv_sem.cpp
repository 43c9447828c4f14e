// System V semaphores (semget(2), semop(2) / semtimedop, semctl(2), ipcs -s), following Linux's
// ipc/sem.c: arrays of semaphores found by key or id (id = seq * 32768 + index, as every System V
// IPC object); a semop applies all of its operations or none (perform_atomic_semop); a call that
// cannot proceed sleeps on the array's pending queue, and whoever changes the array afterwards
// completes the sleepers' operations on their behalf, oldest first, before waking them
// (update_queue); SEM_UNDO records an adjustment that the kernel applies when the process exits
// (exit_sem). The limits are Linux's defaults (SEMMSL 32000, SEMOPM 500, SEMVMX 32767, SEMMNI
// 32000). Costs: the system call, the copy of the sembuf array (6 bytes per operation), a wakeup
// per completed sleeper, GETALL / SETALL's copy of the values. docs/semaphores.md.
#include "error.hpp"
#include "ipc.hpp"
#include "names.hpp"
#include "sysv_ids.hpp"

#include <algorithm>
#include <cstdio>
#include <map>
#include <optional>

namespace ipcsim {

namespace {

constexpr std::int64_t kSemMsl = 32000;      // SEMMSL: semaphores per array
constexpr std::int64_t kSemOpm = 500;        // SEMOPM: operations per semop
constexpr std::int64_t kSemVmx = 32767;      // SEMVMX: the largest value
constexpr std::size_t kSemMni = 32000;       // SEMMNI: arrays system wide
constexpr std::uint64_t kSembufBytes = 6;    // sizeof(struct sembuf)
constexpr std::uint64_t kSemidDsBytes = 104; // sizeof(struct semid64_ds) on x86-64
constexpr std::uint32_t kReadBits = 0444;    // S_IRUGO
constexpr std::uint32_t kWriteBits = 0222;   // S_IWUGO

enum Flag : std::uint32_t { kIpcCreat = 1, kIpcExcl = 2, kIpcNowait = 4, kSemUndo = 8 };

struct SemOp { // struct sembuf
  std::int64_t num = 0, op = 0;
  std::uint32_t flags = 0;
};

struct Sem {
  std::int64_t value = 0;
  std::int64_t pid = 0; // sempid: the last process to change it
};

struct Pending { // struct sem_queue
  Thread* thread;
  std::vector<SemOp> ops;
  std::uint32_t pid;
  std::size_t blocking = 0; // q->blocking: the operation that made it wait, at the last attempt
  bool done = false;
  int error = 0;
};

struct SemArray {
  SemArray(std::int64_t id, std::size_t nsems)
      : id(id), sems(nsems), waiters("semaphore array " + std::to_string(id) + ": waiting (semop)") {}
  std::uint32_t key = 0;
  std::int64_t id;
  std::size_t index = 0;
  std::uint32_t uid = 0, gid = 0, cuid = 0, cgid = 0, mode = 0;
  std::vector<Sem> sems;
  Cycles otime = 0, ctime = 0;
  std::vector<Pending> pending; // in arrival order
  WaitQueue waiters;
};

// perform_atomic_semop: 0 when every operation can proceed (and then applies them, with their
// undo adjustments), 1 when the caller must wait (`blocking`: which operation, q->blocking), or an
// error: ERANGE for a value past SEMVMX or an undo adjustment outside -32768..32767 (SEMAEM),
// EAGAIN under IPC_NOWAIT.
int try_ops(SemArray& a, const std::vector<SemOp>& ops, std::uint32_t pid,
            std::map<std::pair<std::int64_t, std::size_t>, std::int64_t>* undo,
            std::size_t* blocking = nullptr) {
  std::vector<std::int64_t> values;
  values.reserve(a.sems.size());
  for (const auto& s : a.sems) values.push_back(s.value);
  std::map<std::size_t, std::int64_t> adjustments; // semadj as this call's operations leave it
  for (std::size_t i = 0; i < ops.size(); ++i) {
    const SemOp& op = ops[i];
    const auto num = static_cast<std::size_t>(op.num);
    std::int64_t& v = values[num];
    if ((op.op == 0 && v != 0) || v + op.op < 0) {
      if (blocking) *blocking = i;
      return op.flags & kIpcNowait ? EAGAIN : 1;
    }
    if (v + op.op > kSemVmx) return ERANGE;
    if ((op.flags & kSemUndo) && undo) {
      auto [adj, fresh] = adjustments.try_emplace(num, 0);
      if (fresh)
        if (auto it = undo->find({a.id, num}); it != undo->end()) adj->second = it->second;
      adj->second -= op.op;
      if (adj->second < -kSemVmx - 1 || adj->second > kSemVmx) return ERANGE;
    }
    v += op.op;
  }
  for (const auto& op : ops) {
    Sem& s = a.sems[static_cast<std::size_t>(op.num)];
    s.value += op.op;
    s.pid = pid;
    if ((op.flags & kSemUndo) && undo) (*undo)[{a.id, static_cast<std::size_t>(op.num)}] -= op.op;
  }
  return 0;
}

class SemState : public IpcState, public Observer, public CallHolder {
public:
  explicit SemState(Kernel& kernel) : kernel_(kernel) { kernel.subscribe(*this); }

  SemArray* find_key(std::uint32_t key) { return ids_.find_key(key); }
  SemArray* find_id(std::int64_t id) { return ids_.find_id(id); }
  // newary() / ipc_addid() (sim/kernel/sysv_ids.hpp): nullptr at SEMMNI (ENOSPC).
  SemArray* create(std::uint32_t key, std::size_t nsems, const Process& process, std::uint32_t mode,
                   Cycles now) {
    if (ids_.size() >= kSemMni) return nullptr;
    SemArray* a = ids_.add([&](std::int64_t id, std::size_t index) {
      auto array = std::make_unique<SemArray>(id, nsems);
      array->index = index;
      return array;
    });
    if (!a) return nullptr;
    a->key = key;
    a->uid = a->cuid = process.spec->uid;
    a->gid = a->cgid = process.spec->gid;
    a->mode = mode & 0777;
    a->ctime = now;
    return a;
  }

  // update_queue: after the array changed, complete the sleepers whose operations can proceed
  // now, oldest first, starting over after each that changed a value; then wake them.
  void update(OpContext& ctx, SemArray& a, std::uint16_t activity) {
    std::vector<Thread*> completed;
    for (bool again = true; again;) {
      again = false;
      for (auto it = a.pending.begin(); it != a.pending.end(); ++it) {
        int r = try_ops(a, it->ops, it->pid, &undo_[it->pid], &it->blocking);
        if (r == 1) continue;
        it->done = true;
        it->error = r;
        bool altered =
            r == 0 && std::any_of(it->ops.begin(), it->ops.end(), [](const SemOp& o) { return o.op != 0; });
        done_[it->thread->id] = r;
        completed.push_back(it->thread);
        a.pending.erase(it);
        if (altered) a.otime = ctx.now();
        again = altered;
        break;
      }
    }
    for (Thread* t : completed)
      if (t->waiting_on == &a.waiters)
        ctx.kernel.wake(ctx.core, *t, &ctx.thread, activity, WaitResult::Woken);
  }

  // The call of a killed or interrupted sleeper: it leaves the pending queue.
  void cancel(OpContext&, Thread& caller, std::uint16_t) override {
    for (auto& [index, a] : ids_.objects())
      std::erase_if(a->pending, [&](const Pending& p) { return p.thread == &caller; });
  }

  // exit_sem: a process's SEM_UNDO adjustments are applied when it exits, clamped to 0..SEMVMX.
  void on_process_exit(OpContext& ctx, Process& process) override {
    auto it = undo_.find(process.pid);
    if (it == undo_.end()) return;
    auto adjustments = std::move(it->second);
    undo_.erase(it);
    std::vector<SemArray*> changed;
    for (const auto& [where, adj] : adjustments) {
      SemArray* a = find_id(where.first);
      if (!a || adj == 0) continue;
      Sem& s = a->sems[where.second];
      s.value = std::clamp<std::int64_t>(s.value + adj, 0, kSemVmx);
      s.pid = process.pid;
      if (std::find(changed.begin(), changed.end(), a) == changed.end()) changed.push_back(a);
    }
    ctx.sync();
    for (SemArray* a : changed) update(ctx, *a, kExit);
  }

  // freeary(): sleepers get EIDRM. The id goes first (ipc_rmid), so that no other core finds or
  // removes the array while the wakes let it run; the array lives until they are done.
  void remove(OpContext& ctx, SemArray& array, std::uint16_t activity) {
    std::unique_ptr<SemArray> removed = ids_.take(array.index);
    SemArray& a = *removed;
    std::vector<Thread*> sleepers;
    for (auto& p : a.pending) {
      done_[p.thread->id] = EIDRM;
      sleepers.push_back(p.thread);
    }
    a.pending.clear();
    for (auto& [pid, adjustments] : undo_)
      std::erase_if(adjustments, [&](const auto& entry) { return entry.first.first == a.id; });
    for (Thread* t : sleepers)
      if (t->waiting_on == &a.waiters)
        ctx.kernel.wake(ctx.core, *t, &ctx.thread, activity, WaitResult::Woken);
  }

  // SETVAL / SETALL clear the undo adjustments of the semaphores they set.
  void clear_undo(std::int64_t id, std::optional<std::size_t> num) {
    for (auto& [pid, adjustments] : undo_)
      std::erase_if(adjustments, [&](const auto& entry) {
        return entry.first.first == id && (!num || entry.first.second == *num);
      });
  }

  std::map<std::pair<std::int64_t, std::size_t>, std::int64_t>& undo(std::uint32_t pid) { return undo_[pid]; }
  // A sleeper's outcome, set by whoever completed (or removed) its operations.
  std::optional<int> take_done(const Thread& t) {
    auto it = done_.find(t.id);
    if (it == done_.end()) return std::nullopt;
    int r = it->second;
    done_.erase(it);
    return r;
  }

  std::vector<std::string> ipcs_lines() const {
    std::vector<std::string> lines{"------ Semaphore Arrays --------"};
    char buf[160];
    std::snprintf(buf, sizeof buf, "%-10s %-10s %-10s %-10s %-10s", "key", "semid", "owner", "perms",
                  "nsems");
    lines.push_back(trim(buf));
    for (const auto& [index, a] : ids_.objects()) {
      std::snprintf(buf, sizeof buf, "%s %-10lld %-10s %-10o %-10zu", hex_key(a->key).c_str(),
                    static_cast<long long>(a->id), owner_name(a->uid).c_str(), a->mode, a->sems.size());
      lines.push_back(trim(buf));
    }
    return lines;
  }
  void list(std::vector<IpcTable>& tables) const override {
    IpcTable table{"Semaphore Arrays", {"key", "semid", "owner", "perms", "nsems", "values"}, {}};
    for (const auto& [index, a] : ids_.objects()) {
      char perms[8];
      std::snprintf(perms, sizeof perms, "%o", a->mode);
      std::string values;
      for (const auto& s : a->sems) {
        if (!values.empty()) values += ','; // appended in steps: GCC 12 -O3 warns (-Wrestrict) on ("," + x)
        values += std::to_string(s.value);
      }
      table.rows.push_back({hex_key(a->key), std::to_string(a->id), owner_name(a->uid), perms,
                            std::to_string(a->sems.size()), values});
    }
    tables.push_back(table);
  }
  std::int64_t ns(Cycles cycles) const {
    return static_cast<std::int64_t>(static_cast<double>(cycles) * 1e9 / kernel_.model().hz + 0.5);
  }

private:
  static std::string trim(std::string s) {
    while (!s.empty() && s.back() == ' ') s.pop_back();
    return s;
  }
  Kernel& kernel_;
  SysvIds<SemArray> ids_;
  std::map<std::uint32_t, int> done_; // by thread id
  // By pid: (semid, semaphore) -> adjustment (struct sem_undo's semadj).
  std::map<std::uint32_t, std::map<std::pair<std::int64_t, std::size_t>, std::int64_t>> undo_;
};

// ---- Op fields ----------------------------------------------------------------------------------

std::uint32_t read_flags(const json& list, const std::string& where, const CompileContext& ctx,
                         const std::vector<std::string>& accepted) {
  static const std::vector<std::pair<std::string, Flag>> names{
      {"IPC_CREAT", kIpcCreat}, {"IPC_EXCL", kIpcExcl}, {"IPC_NOWAIT", kIpcNowait}, {"SEM_UNDO", kSemUndo}};
  if (!list.is_array())
    fail_at(ctx.read.file, where,
            "invalid value " + list.dump() + "; expected a list of flags: " + join_list(accepted));
  std::uint32_t flags = 0;
  for (std::size_t i = 0; i < list.size(); ++i) {
    std::string at = join_path(where, i);
    std::string name = list[i].is_string() ? list[i].get<std::string>() : list[i].dump();
    if (!list[i].is_string() || std::find(accepted.begin(), accepted.end(), name) == accepted.end())
      fail_at(ctx.read.file, at,
              "unknown flag " + (list[i].is_string() ? "\"" + name + "\"" : name) +
                  did_you_mean(name, accepted) + "; accepted: " + join_list(accepted));
    for (const auto& [n, fl] : names)
      if (n == name) flags |= fl;
  }
  return flags;
}

std::string read_into(const json& f, const std::string& path, CompileContext& ctx,
                      const std::vector<std::string>& suffixes) {
  return read_into_variable(f, "into", path, ctx, suffixes);
}

const std::string kIdExpected =
    "a semid: a whole number, or the name of a script variable that holds one (semget's "
    "\"into\")";

// ---- Ops ----------------------------------------------------------------------------------------

SemState& sems(OpContext& ctx) { return ctx.kernel.ipc<SemState>(); }

class SemgetOp : public SyscallOp {
public:
  SemgetOp(std::uint16_t activity, IntRef key, std::int64_t nsems, std::uint32_t flags, std::uint32_t mode,
           std::string into)
      : SyscallOp(activity, {}), key_(std::move(key)), nsems_(nsems), flags_(flags), mode_(mode),
        into_(std::move(into)) {}
  IoStatus call(OpContext& ctx) const override {
    std::int64_t raw = 0;
    if (!key_.read(ctx, raw)) return fail_call(ctx, activity, EINVAL);
    auto key = static_cast<std::uint32_t>(raw);
    if (nsems_ < 0 || nsems_ > kSemMsl) return fail_call(ctx, activity, EINVAL);
    ctx.sync();
    SemState& state = sems(ctx);
    const Process& process = *ctx.thread.process;
    SemArray* a = key == 0 ? nullptr : state.find_key(key);
    if (a) {
      if ((flags_ & kIpcCreat) && (flags_ & kIpcExcl)) return fail_call(ctx, activity, EEXIST);
      // ipcget_public: sem_more_checks (EINVAL), then ipc_check_perms (EACCES).
      if (nsems_ > static_cast<std::int64_t>(a->sems.size())) return fail_call(ctx, activity, EINVAL);
      if (!ipcperms(*a, process, mode_)) return fail_call(ctx, activity, EACCES);
    } else {
      if (key != 0 && !(flags_ & kIpcCreat)) return fail_call(ctx, activity, ENOENT);
      if (nsems_ == 0) return fail_call(ctx, activity, EINVAL); // newary
      if (!ctx.kernel.new_ipc_object(ctx, "a System V semaphore set"))
        return fail_call(ctx, activity, ENOSPC); // the run stops
      a = state.create(key, static_cast<std::size_t>(nsems_), process, mode_, ctx.now());
      if (!a) return fail_call(ctx, activity, ENOSPC);
    }
    ctx.thread.script_locals().set(into_, a->id);
    ctx.succeed(a->id);
    return IoStatus::Done;
  }

private:
  IntRef key_;
  std::int64_t nsems_;
  std::uint32_t flags_, mode_;
  std::string into_;
};

// Thread::op_progress of a semop: it has slept (a vanished array is then EIDRM, not EINVAL).
constexpr std::uint64_t kSlept = 1;

class SemopOp : public SyscallOp {
public:
  SemopOp(std::uint16_t activity, CallTimeout timeout, IntRef semid, std::vector<SemOp> ops)
      : SyscallOp(activity, timeout), semid_(std::move(semid)), ops_(std::move(ops)) {}
  IoStatus call(OpContext& ctx) const override {
    Thread& t = ctx.thread;
    SemState& state = sems(ctx);
    if (t.op_progress & kSlept) { // woken: whoever woke it did its operations, or removed the array
      if (std::optional<int> r = state.take_done(t)) {
        if (*r) return fail_call(ctx, activity, *r);
        ctx.succeed();
        return IoStatus::Done;
      }
    } else {
      if (ops_.size() > static_cast<std::size_t>(kSemOpm)) return fail_call(ctx, activity, E2BIG);
      charge_copy(ctx, activity, ops_.size() * kSembufBytes); // copy_from_user of the sembuf array
    }
    std::int64_t id = 0;
    if (!semid_.read(ctx, id)) return fail_call(ctx, activity, EINVAL);
    ctx.sync();
    SemArray* a = state.find_id(id);
    if (!a) return fail_call(ctx, activity, t.op_progress & kSlept ? EIDRM : EINVAL);
    bool alter = false;
    for (const auto& op : ops_) {
      if (op.num < 0 || op.num >= static_cast<std::int64_t>(a->sems.size()))
        return fail_call(ctx, activity, EFBIG);
      alter = alter || op.op != 0;
    }
    if (!ipcperms(*a, *t.process, alter ? kWriteBits : kReadBits)) return fail_call(ctx, activity, EACCES);
    std::uint32_t pid = t.process->pid;
    std::size_t blocking = 0;
    int r = try_ops(*a, ops_, pid, &state.undo(pid), &blocking);
    if (r == 0) {
      if (alter) {
        a->otime = ctx.now();
        state.update(ctx, *a, activity); // do_smart_update
      }
      ctx.succeed();
      return IoStatus::Done;
    }
    if (r != 1) return fail_call(ctx, activity, r);
    if (t.op_nonblocking) return fail_call(ctx, activity, EAGAIN);
    // Sleep on the pending queue: the caller's operations wait there for whoever can complete them.
    auto queued =
        std::find_if(a->pending.begin(), a->pending.end(), [&](const Pending& p) { return p.thread == &t; });
    if (queued == a->pending.end())
      a->pending.push_back({&t, ops_, pid, blocking});
    else
      queued->blocking = blocking;
    t.op_progress |= kSlept;
    IoStatus status = wait_on(ctx, a->waiters, activity, EAGAIN); // semtimedop's timeout: EAGAIN
    if (status == IoStatus::Blocked)
      ctx.kernel.hold_call(t, state);
    else if (status == IoStatus::Done)
      std::erase_if(a->pending, [&](const Pending& p) { return p.thread == &t; });
    return status;
  }

private:
  IntRef semid_;
  std::vector<SemOp> ops_;
};

enum class Cmd : std::uint8_t { GetVal, SetVal, GetAll, SetAll, GetPid, GetNcnt, GetZcnt, Stat, Set, Rmid };

class SemctlOp : public SyscallOp {
public:
  SemctlOp(std::uint16_t activity, IntRef semid, Cmd cmd, std::int64_t num, std::vector<std::int64_t> values,
           std::string into, IpcSetOwner owner)
      : SyscallOp(activity, {}), semid_(std::move(semid)), cmd_(cmd), num_(num), values_(std::move(values)),
        into_(std::move(into)), owner_(owner) {}
  IoStatus call(OpContext& ctx) const override {
    const Process& process = *ctx.thread.process;
    SemState& state = sems(ctx);
    if (cmd_ == Cmd::Set) charge_copy(ctx, activity, kSemidDsBytes); // copy_semid_from_user, first
    std::int64_t id = 0;
    ctx.sync();
    // semctl_setval checks the value before it looks the array up.
    if (cmd_ == Cmd::SetVal && (values_[0] < 0 || values_[0] > kSemVmx))
      return fail_call(ctx, activity, ERANGE);
    SemArray* a = semid_.read(ctx, id) ? state.find_id(id) : nullptr;
    if (!a) return fail_call(ctx, activity, EINVAL);
    const auto nsems = static_cast<std::int64_t>(a->sems.size());
    auto& locals = ctx.thread.script_locals();
    switch (cmd_) {
    case Cmd::GetVal:
    case Cmd::GetPid:
    case Cmd::GetNcnt:
    case Cmd::GetZcnt: {
      // semctl_main: the permission, then the semaphore's number.
      if (!ipcperms(*a, process, kReadBits)) return fail_call(ctx, activity, EACCES);
      if (num_ < 0 || num_ >= nsems) return fail_call(ctx, activity, EINVAL);
      const Sem& s = a->sems[static_cast<std::size_t>(num_)];
      std::int64_t count = 0;
      for (const auto& p : a->pending) { // count_semcnt / check_qop: the operation it waits on
        const SemOp& op = p.ops[p.blocking];
        if (op.num == num_ && ((cmd_ == Cmd::GetNcnt && op.op < 0) || (cmd_ == Cmd::GetZcnt && op.op == 0)))
          ++count;
      }
      ctx.succeed(cmd_ == Cmd::GetVal ? s.value : cmd_ == Cmd::GetPid ? s.pid : count);
      return IoStatus::Done;
    }
    case Cmd::GetAll:
      if (!ipcperms(*a, process, kReadBits)) return fail_call(ctx, activity, EACCES);
      for (std::int64_t i = 0; i < nsems; ++i)
        locals.set(into_ + "." + std::to_string(i), a->sems[static_cast<std::size_t>(i)].value);
      charge_copy(ctx, activity, static_cast<std::uint64_t>(nsems) * 2); // unsigned short each
      break;
    case Cmd::SetVal: {
      if (num_ < 0 || num_ >= nsems) return fail_call(ctx, activity, EINVAL);
      if (!ipcperms(*a, process, kWriteBits)) return fail_call(ctx, activity, EACCES);
      Sem& s = a->sems[static_cast<std::size_t>(num_)];
      s.value = values_[0];
      s.pid = process.pid;
      state.clear_undo(a->id, static_cast<std::size_t>(num_));
      a->ctime = ctx.now();
      state.update(ctx, *a, activity);
      break;
    }
    case Cmd::SetAll:
      if (static_cast<std::int64_t>(values_.size()) != nsems) return fail_call(ctx, activity, EINVAL);
      // semctl_main: the permission first, then the copy and each value's range.
      if (!ipcperms(*a, process, kWriteBits)) return fail_call(ctx, activity, EACCES);
      charge_copy(ctx, activity, static_cast<std::uint64_t>(nsems) * 2);
      for (auto v : values_)
        if (v < 0 || v > kSemVmx) return fail_call(ctx, activity, ERANGE);
      for (std::size_t i = 0; i < a->sems.size(); ++i) {
        a->sems[i].value = values_[i];
        a->sems[i].pid = process.pid;
      }
      state.clear_undo(a->id, std::nullopt);
      a->ctime = ctx.now();
      state.update(ctx, *a, activity);
      break;
    case Cmd::Stat:
      if (!ipcperms(*a, process, kReadBits)) return fail_call(ctx, activity, EACCES);
      locals.set(into_ + ".nsems", nsems);
      locals.set(into_ + ".otime", a->otime ? state.ns(a->otime) : 0);
      locals.set(into_ + ".ctime", state.ns(a->ctime));
      locals.set(into_ + ".uid", std::int64_t{a->uid});
      locals.set(into_ + ".gid", std::int64_t{a->gid});
      locals.set(into_ + ".mode", std::int64_t{a->mode});
      charge_copy(ctx, activity, kSemidDsBytes);
      break;
    case Cmd::Set: // semctl_down(): ipc_update_perm and a new ctime
      if (!ipc_owner_or_root(*a, process)) return fail_call(ctx, activity, EPERM);
      owner_.apply(*a);
      a->ctime = ctx.now();
      break;
    case Cmd::Rmid:
      if (!ipc_owner_or_root(*a, process)) return fail_call(ctx, activity, EPERM);
      state.remove(ctx, *a, activity);
      break;
    }
    ctx.succeed(0);
    return IoStatus::Done;
  }

private:
  IntRef semid_;
  Cmd cmd_;
  std::int64_t num_;
  std::vector<std::int64_t> values_;
  std::string into_;
  IpcSetOwner owner_;
};

class IpcsSemOp : public SyscallOp {
public:
  explicit IpcsSemOp(std::uint16_t activity) : SyscallOp(activity, {}) {}
  IoStatus call(OpContext& ctx) const override {
    ctx.sync();
    for (auto& line : sems(ctx).ipcs_lines()) ctx.kernel.print(ctx.now(), ctx.thread, line);
    ctx.succeed(0);
    return IoStatus::Done;
  }
};

// ---- Registration -------------------------------------------------------------------------------

std::uint32_t read_mode_field(const json& f, const std::string& path, const CompileContext& ctx) {
  auto text = f.at("mode").get<std::string>();
  std::uint32_t mode = 0;
  bool ok = !text.empty() && text.size() <= 4;
  for (char c : text) {
    ok = ok && c >= '0' && c <= '7';
    mode = mode * 8 + static_cast<std::uint32_t>(c - '0');
  }
  if (!ok || mode > 0777)
    fail_at(ctx.read.file, join_path(path, "mode"),
            "invalid mode \"" + text + "\"; expected octal permission bits such as \"0600\" or \"0666\"");
  return mode;
}

const OpRegistrar register_semget_op(
    {"semget",
     "get (or create) a System V semaphore array by key; {result} and INTO are its semid; new semaphores are "
     "0",
     {"semget op",
      "",
      {{"key", ParamType::Scalar, nullptr, "",
        "a whole number, \"0x1234\", \"IPC_PRIVATE\" (always a new array), or a script variable (ftok's "
        "into)"},
       {"nsems", ParamType::Integer, nullptr, "", "semaphores in the array (0: any, for an existing one)",
        -9.2e18, 9.2e18},
       {"flags", ParamType::StringList, json::array(), "flag names", "IPC_CREAT, IPC_EXCL"},
       {"mode", ParamType::String, "0666", "",
        "permission bits of a new array, octal; also the access asked for"},
       {"into", ParamType::String, nullptr, "", "variable for the semid"}}},
     [](const json& f, const std::string& path, CompileContext& ctx, Program& p, std::uint16_t a) {
       auto key = read_sysv_ref(
           f, "key", path, ctx,
           "a key: a whole number, a hexadecimal string such as \"0x1234\", \"IPC_PRIVATE\", or the "
           "name of a script variable that holds one",
           true);
       auto flags = read_flags(f.at("flags"), join_path(path, "flags"), ctx, {"IPC_CREAT", "IPC_EXCL"});
       auto mode = read_mode_field(f, path, ctx);
       auto into = read_into(f, path, ctx, {});
       p.ops.push_back(
           std::make_unique<SemgetOp>(a, key, f.at("nsems").get<std::int64_t>(), flags, mode, into));
     }});

const OpRegistrar register_semop_op(
    {"semop",
     "apply operations to a System V semaphore array, all at once or none: sem_op < 0 waits until the value "
     "allows it (P), > 0 adds (V), 0 waits for zero; with a timeout it is semtimedop (EAGAIN)",
     {"semop op",
      "",
      {{"semid", ParamType::Scalar, nullptr, "", "the array: its id, or a script variable holding it"},
       {"ops", ParamType::ObjectList, nullptr, "",
        "the operations, each {\"sem_num\": N, \"sem_op\": V, \"sem_flg\": [\"IPC_NOWAIT\", \"SEM_UNDO\"]}"},
       timeout_param()}},
     [](const json& f, const std::string& path, CompileContext& ctx, Program& p, std::uint16_t a) {
       auto semid = read_sysv_ref(f, "semid", path, ctx, kIdExpected, false);
       std::vector<SemOp> ops;
       const json& list = f.at("ops");
       if (list.empty())
         fail_at(ctx.read.file, join_path(path, "ops"),
                 "semop needs at least one operation (nsops 0 is EINVAL)");
       ParamTable table{
           "semop operation",
           "",
           {{"sem_num", ParamType::Integer, nullptr, "", "which semaphore (from 0)", -9.2e18, 9.2e18},
            {"sem_op", ParamType::Integer, nullptr, "", "what to add; 0 waits for zero", -32768.0, 32767.0},
            {"sem_flg", ParamType::StringList, json::array(), "flag names", "IPC_NOWAIT, SEM_UNDO"}}};
       for (std::size_t i = 0; i < list.size(); ++i) {
         std::string where = join_path(join_path(path, "ops"), i);
         json op = resolve_object(list[i], where, table, ctx.read);
         ops.push_back(
             {op.at("sem_num").get<std::int64_t>(), op.at("sem_op").get<std::int64_t>(),
              read_flags(op.at("sem_flg"), join_path(where, "sem_flg"), ctx, {"IPC_NOWAIT", "SEM_UNDO"})});
       }
       p.ops.push_back(std::make_unique<SemopOp>(a, read_timeout(f, path, ctx), semid, std::move(ops)));
     }});

const OpRegistrar register_semctl_op(
    {"semctl",
     "control a System V semaphore array: GETVAL/GETPID/GETNCNT/GETZCNT into {result}, SETVAL, GETALL into "
     "INTO.0.., SETALL, IPC_STAT into INTO.nsems/.otime/.ctime/.uid/.gid/.mode, IPC_SET its uid/gid/mode, "
     "IPC_RMID",
     {"semctl op", "",
      with_ipc_set_owner({{"semid", ParamType::Scalar, nullptr, "",
                           "the array: its id, or a script variable holding it"},
                          ipc_cmd_param({"GETVAL", "SETVAL", "GETALL", "SETALL", "GETPID", "GETNCNT",
                                         "GETZCNT", "IPC_STAT", "IPC_SET", "IPC_RMID"}),
                          {"semnum", ParamType::Integer, 0, "",
                           "the semaphore, for GETVAL, SETVAL, GETPID, GETNCNT, GETZCNT", -9.2e18, 9.2e18},
                          {"value",
                           ParamType::Integer,
                           nullptr,
                           "",
                           "SETVAL: the new value (0..32767)",
                           -9.2e18,
                           9.2e18,
                           {},
                           "none"},
                          {"values",
                           ParamType::IntegerList,
                           nullptr,
                           "",
                           "SETALL: every semaphore's new value (0..32767), one per semaphore, in order",
                           std::nullopt,
                           std::nullopt,
                           {},
                           "none"},
                          {"into",
                           ParamType::String,
                           nullptr,
                           "",
                           "GETALL, IPC_STAT: the variable whose fields receive the values",
                           std::nullopt,
                           std::nullopt,
                           {},
                           "none"}})},
     [](const json& f, const std::string& path, CompileContext& ctx, Program& p, std::uint16_t a) {
       static const std::vector<std::pair<std::string, Cmd>> cmds{
           {"GETVAL", Cmd::GetVal},   {"SETVAL", Cmd::SetVal}, {"GETALL", Cmd::GetAll},
           {"SETALL", Cmd::SetAll},   {"GETPID", Cmd::GetPid}, {"GETNCNT", Cmd::GetNcnt},
           {"GETZCNT", Cmd::GetZcnt}, {"IPC_STAT", Cmd::Stat}, {"IPC_SET", Cmd::Set},
           {"IPC_RMID", Cmd::Rmid}};
       auto name = f.at("cmd").get<std::string>();
       Cmd cmd = Cmd::GetVal;
       for (const auto& [n, c] : cmds)
         if (n == name) cmd = c;
       auto semid = read_sysv_ref(f, "semid", path, ctx, kIdExpected, false);
       auto need = [&](const char* field, bool wanted, const std::string& why) {
         if (wanted && !f.contains(field))
           fail_at(ctx.read.file, join_path(path, field), name + " needs \"" + field + "\": " + why);
         if (!wanted && f.contains(field))
           fail_at(ctx.read.file, join_path(path, field),
                   std::string("\"") + field + "\" does not go with " + name + "; drop it");
       };
       need("value", cmd == Cmd::SetVal, "the semaphore's new value");
       need("values", cmd == Cmd::SetAll, "a list with every semaphore's new value");
       need("into", cmd == Cmd::GetAll || cmd == Cmd::Stat, "the variable whose fields receive the result");
       std::vector<std::int64_t> values;
       if (cmd == Cmd::SetVal) values.push_back(f.at("value").get<std::int64_t>());
       if (cmd == Cmd::SetAll)
         for (std::size_t i = 0; i < f.at("values").size(); ++i) {
           const json& v = f.at("values")[i];
           if (!v.is_number_integer())
             fail_at(ctx.read.file, join_path(join_path(path, "values"), i),
                     "invalid value " + v.dump() + "; expected a whole number (a semaphore's value)");
           values.push_back(v.get<std::int64_t>());
         }
       std::string into;
       if (cmd == Cmd::Stat)
         into = read_into(f, path, ctx, {"nsems", "otime", "ctime", "uid", "gid", "mode"});
       if (cmd == Cmd::GetAll) {
         into = read_into(f, path, ctx, {});
         ctx.assigned.pop_back();
         // GETALL's fields are numbered by semaphore: any INTO.N may be read.
         for (int i = 0; i < 256; ++i) ctx.assigned.push_back(into + "." + std::to_string(i));
       }
       IpcSetOwner owner = read_ipc_set_owner(f, path, ctx, cmd == Cmd::Set);
       if (cmd == Cmd::Set && owner.empty())
         fail_at(ctx.read.file, path, "IPC_SET changes nothing; give at least one of uid, gid, mode");
       p.ops.push_back(std::make_unique<SemctlOp>(a, semid, cmd, f.at("semnum").get<std::int64_t>(),
                                                  std::move(values), into, owner));
     }});

const OpRegistrar
    register_ipcs_sem_op({"ipcs_sem",
                          "print the System V semaphore arrays as `ipcs -s` does (key, semid, owner, "
                          "perms, nsems)",
                          {"ipcs_sem op", "", {}},
                          [](const json&, const std::string&, CompileContext&, Program& p, std::uint16_t a) {
                            p.ops.push_back(std::make_unique<IpcsSemOp>(a));
                          }});

} // namespace

} // namespace ipcsim
