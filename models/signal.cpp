// Signals (signal(7)): kill, raise, sigqueue; sigaction with a handler (a script), SIG_IGN or
// SIG_DFL (terminate, core, ignore, stop, continue); SA_RESTART; sigprocmask and the pending sets,
// sigsuspend, pause, sigwait; SIGCHLD and waitpid; SIGPIPE for pipes and stream sockets.
//
// What follows Linux (kernel/signal.c, arch/x86/kernel/signal.c): a process-directed signal is
// pending on the process and taken by a thread that does not block it; a thread-directed one
// (raise, SIGPIPE) on that thread; standard signals are pending at most once, real-time ones queue
// with their value. An unblocked signal whose default action is fatal ends the whole process when
// it is sent (complete_signal), or after SIGCONT if it is stopped; an ignored one is discarded when
// sent. A handler runs when the thread next returns to user mode: the kernel builds a signal frame
// (signal_frame), the handler runs as a frame pushed on the thread's activation stack (every signal
// deliverable then gets one, the last dequeued on top), and its end is sigreturn (a system call:
// signal_frame's restore, the mask back). A blocking call the signal interrupts returns
// ERESTARTSYS inside the kernel; the delivery turns it into EINTR, or rewinds the call when the
// handler has SA_RESTART and signal(7) lists the call as restartable. docs/signals.md.
#include "error.hpp"
#include "ipc.hpp"
#include "names.hpp"

#include <algorithm>
#include <array>
#include <climits>
#include <deque>
#include <map>
#include <set>

namespace ipcsim {

namespace {

constexpr int kNSig = 64;
constexpr int kSIGKILL = 9, kSIGALRM = 14, kSIGCHLD = 17, kSIGCONT = 18, kSIGSTOP = 19, kSIGRTMIN = 34;
// si_code values (include/uapi/asm-generic/siginfo.h).
constexpr int kSI_USER = 0, kSI_QUEUE = -1, kSI_TKILL = -6, kSI_KERNEL = 0x80, kCLD_EXITED = 1,
              kCLD_KILLED = 2, kCLD_DUMPED = 3;

using SigSet = std::uint64_t;
constexpr SigSet bit(int sig) { return SigSet{1} << (sig - 1); }
constexpr SigSet kUnblockable = bit(kSIGKILL) | bit(kSIGSTOP);

struct SignalInfo {
  const char* name;
  int number;
};
constexpr SignalInfo kSignals[] = {
    {"SIGHUP", 1},   {"SIGINT", 2},     {"SIGQUIT", 3},  {"SIGILL", 4},     {"SIGTRAP", 5},  {"SIGABRT", 6},
    {"SIGBUS", 7},   {"SIGFPE", 8},     {"SIGKILL", 9},  {"SIGUSR1", 10},   {"SIGSEGV", 11}, {"SIGUSR2", 12},
    {"SIGPIPE", 13}, {"SIGALRM", 14},   {"SIGTERM", 15}, {"SIGSTKFLT", 16}, {"SIGCHLD", 17}, {"SIGCONT", 18},
    {"SIGSTOP", 19}, {"SIGTSTP", 20},   {"SIGTTIN", 21}, {"SIGTTOU", 22},   {"SIGURG", 23},  {"SIGXCPU", 24},
    {"SIGXFSZ", 25}, {"SIGVTALRM", 26}, {"SIGPROF", 27}, {"SIGWINCH", 28},  {"SIGIO", 29},   {"SIGPWR", 30},
    {"SIGSYS", 31},
};

// The default actions (signal(7)'s table).
enum class Default : std::uint8_t { Term, Core, Ign, Stop, Cont };
Default default_action(int sig) {
  switch (sig) {
  case 3:
  case 4:
  case 5:
  case 6:
  case 7:
  case 8:
  case 11:
  case 24:
  case 25:
  case 31:
    return Default::Core;
  case kSIGCHLD:
  case 23:
  case 28:
    return Default::Ign;
  case kSIGSTOP:
  case 20:
  case 21:
  case 22:
    return Default::Stop;
  case kSIGCONT:
    return Default::Cont;
  default:
    return Default::Term;
  }
}
bool fatal_by_default(int sig) {
  Default d = default_action(sig);
  return d == Default::Term || d == Default::Core;
}

std::vector<std::string> signal_names_list() {
  std::vector<std::string> names;
  for (const auto& s : kSignals) names.push_back(s.name);
  names.push_back("SIGRTMIN");
  names.push_back("SIGRTMIN+N");
  names.push_back("SIGRTMAX");
  return names;
}

// "SIGUSR1", "USR1", "SIGRTMIN+2", "SIGRTMAX-1" or a number 1..64; 0 when `allow_zero` (kill's
// existence check). -1 when not a signal.
int parse_signal(const json& value, bool allow_zero) {
  if (value.is_number_integer()) {
    auto n = value.get<std::int64_t>();
    if ((n == 0 && allow_zero) || (n >= 1 && n <= kNSig && n != 32 && n != 33)) return static_cast<int>(n);
    return -1;
  }
  if (!value.is_string()) return -1;
  std::string name = value.get<std::string>();
  if (name.rfind("SIG", 0) != 0) name = "SIG" + name;
  for (const auto& s : kSignals)
    if (name == s.name) return s.number;
  auto offset = [](const std::string& text) -> int {
    if (text.empty() || text.size() > 2) return -1;
    int v = 0;
    for (char c : text) {
      if (c < '0' || c > '9') return -1;
      v = v * 10 + (c - '0');
    }
    return v;
  };
  if (name == "SIGRTMIN") return kSIGRTMIN;
  if (name == "SIGRTMAX") return kNSig;
  if (name.rfind("SIGRTMIN+", 0) == 0) {
    int n = offset(name.substr(9));
    return n >= 0 && kSIGRTMIN + n <= kNSig ? kSIGRTMIN + n : -1;
  }
  if (name.rfind("SIGRTMAX-", 0) == 0) {
    int n = offset(name.substr(9));
    return n >= 0 && kNSig - n >= kSIGRTMIN ? kNSig - n : -1;
  }
  return -1;
}

int checked_signal(const json& f, const std::string& field, const std::string& path,
                   const CompileContext& ctx, bool allow_zero) {
  int sig = parse_signal(f.at(field), allow_zero);
  if (sig < 0)
    fail_at(ctx.read.file, join_path(path, field),
            "invalid signal " + f.at(field).dump() + "; expected a name (" + join_list(signal_names_list()) +
                ") or a number from 1 to 64" +
                (allow_zero ? " (or 0: only check that the process exists)" : ""));
  return sig;
}

SigSet checked_set(const json& f, const std::string& field, const std::string& path,
                   const CompileContext& ctx) {
  SigSet set = 0;
  const json& list = f.at(field);
  for (std::size_t i = 0; i < list.size(); ++i) {
    int sig = parse_signal(list[i], false);
    if (sig < 0)
      fail_at(ctx.read.file, join_path(join_path(path, field), i),
              "invalid signal " + list[i].dump() + "; expected a name (" + join_list(signal_names_list()) +
                  ") or a number from 1 to 64");
    set |= bit(sig);
  }
  return set;
}

// ---- Kernel state ---------------------------------------------------------------------------------

enum class Action : std::uint8_t { Default, Ignore, Handler };

struct Disposition { // struct k_sigaction
  Action action = Action::Default;
  const Program* handler = nullptr;
  bool restart = false; // SA_RESTART
  SigSet mask = 0;      // sa_mask: blocked while the handler runs, beside the signal itself
};

struct Queued { // struct sigqueue: what siginfo_t carries
  int sig = 0;
  std::int64_t value = 0;
  std::uint32_t pid = 0; // si_pid: the sender (0: the kernel)
  int code = kSI_USER;
};

struct Pending { // struct sigpending
  SigSet set = 0;
  std::deque<Queued> queue;
  // Standard signals are pending at most once; real-time ones queue every instance.
  void add(const Queued& q) {
    if (q.sig < kSIGRTMIN && (set & bit(q.sig))) return;
    set |= bit(q.sig);
    queue.push_back(q);
  }
  // The lowest pending signal in `want` (synchronous ones first would matter only for faults).
  std::optional<Queued> take(SigSet want) {
    SigSet ready = set & want;
    if (!ready) return std::nullopt;
    int sig = __builtin_ctzll(ready) + 1;
    auto it = std::find_if(queue.begin(), queue.end(), [&](const Queued& q) { return q.sig == sig; });
    Queued q = *it;
    queue.erase(it);
    if (std::none_of(queue.begin(), queue.end(), [&](const Queued& x) { return x.sig == sig; }))
      set &= ~bit(sig);
    return q;
  }
  void drop(int sig) {
    set &= ~bit(sig);
    std::erase_if(queue, [&](const Queued& q) { return q.sig == sig; });
  }
};

struct Zombie {
  std::uint32_t pid;
  int code;   // CLD_EXITED, CLD_KILLED, CLD_DUMPED
  int status; // the exit code, or the signal
};

struct ProcSignals {
  std::array<Disposition, kNSig + 1> act{};
  Pending shared;
  bool stopped = false;
  bool dumped = false; // terminated with a core dump
  std::unique_ptr<WaitQueue> stop_queue;
  std::unique_ptr<WaitQueue> child_wait;
};

struct ThreadSignals {
  SigSet blocked = 0;
  Pending pending;
  std::optional<SigSet> saved_mask; // sigsuspend's: restored by the sigreturn of the handler it let run
  struct Frame {
    SigSet mask; // what its sigreturn restores
    Queued info; // its siginfo: what the handler sees, also after a handler stacked on it returns
  };
  std::vector<Frame> frames;       // per running handler
  SigSet waiting_for = 0;          // in sigwait: the set it takes
  std::unique_ptr<WaitQueue> wait; // sigsuspend, pause, sigwait
};

// What the breakdown calls the kernel's work of delivering a signal (registered with the first
// sigaction compiled, so that scenarios without signals keep their activity numbering).
std::uint16_t delivery_activity() {
  static const std::uint16_t activity = register_activity("signal");
  return activity;
}

// signal(7) "Interruption of system calls and library functions by signal handlers": calls
// restarted after a handler with SA_RESTART. Never restarted, whatever the flags: the System V IPC
// calls, the sleeps, the calls that wait for signals, and socket calls with a timeout.
bool restartable(const Kernel& kernel, const Op& op, bool had_timeout) {
  const std::string& name = activity_names()[op.activity];
  if (const std::string* mechanism = op_channel_mechanism(kernel, op)) return *mechanism != "sysv_msg";
  static const std::vector<std::string> never{"msgsnd",     "msgrcv", "semop",  "sleep",
                                              "sigsuspend", "pause",  "sigwait"};
  if (std::find(never.begin(), never.end(), name) != never.end()) return false;
  static const std::vector<std::string> socket_calls{"accept", "connect", "sendto", "recvfrom"};
  if (had_timeout && std::find(socket_calls.begin(), socket_calls.end(), name) != socket_calls.end())
    return false;
  return true;
}

class SignalState : public IpcState, public Observer, public Kernel::UserReturnWork {
public:
  explicit SignalState(Kernel& kernel) : kernel_(kernel) {
    kernel.subscribe(*this);
    kernel.set_user_return_work(*this);
  }

  ProcSignals& proc(const Process& process) {
    auto& slot = procs_[process.id];
    if (!slot) {
      slot = std::make_unique<ProcSignals>();
      // The scenario's "sigpipe": "ignore" is SIG_IGN set before exec (it survives exec).
      if (!process.spec->sigpipe_terminates) slot->act[kSIGPIPE].action = Action::Ignore;
    }
    return *slot;
  }
  ThreadSignals& thread(const Thread& thread) {
    auto& slot = threads_[thread.id];
    if (!slot) slot = std::make_unique<ThreadSignals>();
    return *slot;
  }
  Thread& thread_at(const Process& process, std::uint32_t i) {
    return const_cast<Thread&>(kernel_.threads()[process.thread_id(i)]);
  }

  bool ignored(ProcSignals& ps, int sig) const {
    const Disposition& d = ps.act[sig];
    return d.action == Action::Ignore || (d.action == Action::Default && default_action(sig) == Default::Ign);
  }

  // recalc_sigpending: a thread must come back through the kernel when a signal it does not block
  // waits for it, when its process stops, or when a call of its was ended by a signal.
  void recalc(Thread& t) {
    if (t.state == ThreadState::Exited) return;
    ThreadSignals& ts = thread(t);
    ProcSignals& ps = proc(*t.process);
    t.signal_pending =
        ((ts.pending.set | ps.shared.set) & ~ts.blocked) != 0 || ps.stopped || t.error == kERESTARTSYS;
  }
  void recalc_all(const Process& process) {
    for (std::uint32_t i = 0; i < process.threads_total(); ++i) recalc(thread_at(process, i));
  }

  // Sends `q` to `process` (or to one of its threads): send_signal / complete_signal.
  void send(OpContext& ctx, Process& process, Thread* target, const Queued& q, std::uint16_t activity) {
    const int sig = q.sig;
    if (process.killed_by || process.live_threads == 0) return;
    ProcSignals& ps = proc(process);
    if (sig == kSIGKILL) { // never caught, blocked nor ignored
      kernel_.kill_process(ctx, process, sig, activity);
      return;
    }
    // prepare_signal: a stop signal discards pending SIGCONTs; SIGCONT discards pending stops and
    // continues the process, whatever its disposition says.
    if (default_action(sig) == Default::Stop) {
      ps.shared.drop(kSIGCONT);
      for (std::uint32_t i = 0; i < process.threads_total(); ++i)
        thread(thread_at(process, i)).pending.drop(kSIGCONT);
    }
    if (sig == kSIGCONT) {
      for (int s : {kSIGSTOP, 20, 21, 22}) {
        ps.shared.drop(s);
        for (std::uint32_t i = 0; i < process.threads_total(); ++i)
          thread(thread_at(process, i)).pending.drop(s);
      }
      if (ps.stopped) {
        ps.stopped = false;
        recalc_all(process);
        ctx.sync();
        kernel_.wake_all(ctx.core, *ps.stop_queue, &ctx.thread, activity);
        // A fatal signal left pending while stopped (below) ends the process now, as Linux's stopped
        // threads, woken here, take it in get_signal.
        SigSet fatal = 0;
        for (int s = 1; s <= kNSig; ++s)
          if (ps.act[s].action == Action::Default && fatal_by_default(s)) fatal |= bit(s);
        for (std::uint32_t i = 0; i < process.threads_total(); ++i) {
          Thread& t = thread_at(process, i);
          SigSet ready = (thread(t).pending.set | ps.shared.set) & ~thread(t).blocked & fatal;
          if (t.state == ThreadState::Exited || !ready) continue;
          const int s = __builtin_ctzll(ready) + 1;
          if (default_action(s) == Default::Core) ps.dumped = true;
          kernel_.kill_process(ctx, process, s, activity);
          return;
        }
      }
    }
    if (sig == kSIGSTOP) { // never caught, blocked nor ignored
      stop(process);
      return;
    }
    // A thread waiting for it in sigwait takes it, blocked or not.
    for (std::uint32_t i = 0; i < process.threads_total(); ++i) {
      Thread& t = thread_at(process, i);
      if (target && &t != target) continue;
      ThreadSignals& ts = thread(t);
      if (t.state == ThreadState::Exited || !(ts.waiting_for & bit(sig))) continue;
      (target ? ts.pending : ps.shared).add(q);
      ctx.sync();
      if (t.waiting_on == ts.wait.get()) kernel_.wake(ctx.core, t, &ctx.thread, activity, WaitResult::Woken);
      return;
    }
    // The thread that will take it: the target, or the first that does not block it.
    Thread* chosen = target;
    if (!chosen)
      for (std::uint32_t i = 0; i < process.threads_total() && !chosen; ++i) {
        Thread& t = thread_at(process, i);
        if (t.state != ThreadState::Exited && !(thread(t).blocked & bit(sig))) chosen = &t;
      }
    bool blocked = !chosen || (thread(*chosen).blocked & bit(sig));
    if (!blocked && ignored(ps, sig)) return; // sig_ignored: discarded at once
    // complete_signal: wants_signal() is false for a stopped task, so a fatal signal to a stopped
    // process stays pending, wakes no one, and ends it after SIGCONT (SIGKILL alone ends it now).
    const bool left_pending = ps.stopped && ps.act[sig].action == Action::Default && fatal_by_default(sig);
    if (!blocked && ps.act[sig].action == Action::Default && !left_pending) {
      if (fatal_by_default(sig)) { // complete_signal: the whole process dies now
        if (default_action(sig) == Default::Core) ps.dumped = true;
        kernel_.kill_process(ctx, process, sig, activity);
        return;
      }
      if (default_action(sig) == Default::Stop) {
        stop(process);
        return;
      }
      return; // SIGCONT's default: continue (done above)
    }
    (target ? thread(*target).pending : ps.shared).add(q);
    recalc_all(process);
    // signal_wake_up: a chosen thread asleep in a call leaves it (the call ends with ERESTARTSYS). A
    // plain sleep waits on no queue: it must not look like the stop queue before there is one.
    bool stopped_here = ps.stop_queue && chosen->waiting_on == ps.stop_queue.get();
    if (!blocked && chosen->state == ThreadState::Blocked && !stopped_here && !left_pending) {
      ctx.sync();
      kernel_.interrupt(ctx, *chosen, activity);
    }
  }

  void stop(Process& process) {
    ProcSignals& ps = proc(process);
    if (!ps.stop_queue) ps.stop_queue = std::make_unique<WaitQueue>("SIGCONT (stopped)");
    ps.stopped = true;
    recalc_all(process);
  }

  // Linux's get_signal + handle_signal, at the thread's return to user mode.
  Step on_user_return(OpContext& ctx) override {
    Thread& t = ctx.thread;
    ThreadSignals& ts = thread(t);
    ProcSignals& ps = proc(*t.process);
    const std::uint16_t activity = delivery_activity();
    for (;;) {
      if (ps.stopped) { // do_signal_stop: asleep until SIGCONT
        ctx.sync();
        t.leave_activity = activity;
        kernel_.block(ctx.core, t, ps.stop_queue.get());
        return Step::Block;
      }
      SigSet want = ~ts.blocked;
      std::optional<Queued> q = ts.pending.take(want);
      if (!q) q = ps.shared.take(want);
      if (!q) break;
      const int sig = q->sig;
      const Disposition d = ps.act[sig];
      if (d.action == Action::Ignore) continue;
      if (d.action == Action::Default) {
        switch (default_action(sig)) {
        case Default::Term:
        case Default::Core:
          if (default_action(sig) == Default::Core) ps.dumped = true;
          kernel_.kill_process(ctx, *t.process, sig, activity);
          return Step::Exit;
        case Default::Stop:
          stop(*t.process);
          continue;
        default:
          continue;
        }
      }
      // exit_to_user_mode_loop calls arch_do_signal_or_restart again while a signal the new mask
      // does not block is pending: each frame goes on top of the last, so the handler of the signal
      // dequeued last runs first.
      deliver(ctx, ts, d, *q);
    }
    if (t.error == kERESTARTSYS) rewind(t); // no handler ran: the call restarts (ERESTARTNOHAND)
    recalc(t);
    return Step::Continue;
  }

  static void set_siginfo(Thread& t, const Queued& q) {
    ScriptLocals& locals = t.script_locals();
    locals.set("sig.signo", std::int64_t{q.sig});
    locals.set("sig.value", q.value);
    locals.set("sig.pid", std::int64_t{q.pid});
    locals.set("sig.code", std::int64_t{q.code});
  }

  // The call before pc runs again from its start, as Linux rewinds the instruction pointer.
  static void rewind(Thread& t) {
    --t.pc;
    t.phase = 0;
    t.result = 0;
    t.error = 0;
  }

  void deliver(OpContext& ctx, ThreadSignals& ts, const Disposition& d, const Queued& q) {
    Thread& t = ctx.thread;
    const std::uint16_t activity = delivery_activity();
    if (t.error == kERESTARTSYS) {
      const Op& call = *t.program->ops[t.pc - 1];
      if (d.restart && restartable(kernel_, call, t.op_deadline != kNever)) {
        rewind(t);
      } else {
        t.error = 0;
        ctx.fail(call.activity, EINTR);
      }
    }
    ctx.charge(activity, Primitive::signal_frame); // setup_rt_frame: context and siginfo on the stack
    ts.frames.push_back({ts.saved_mask ? *ts.saved_mask : ts.blocked, q});
    ts.saved_mask.reset();
    ts.blocked = (ts.blocked | d.mask | bit(q.sig)) & ~kUnblockable;
    set_siginfo(t, q);
    kernel_.push_frame(ctx, *d.handler, *t.process->space, activity);
  }

  void sigreturn(OpContext& ctx) {
    ThreadSignals& ts = thread(ctx.thread);
    assert(!ts.frames.empty());
    ts.blocked = ts.frames.back().mask;
    ts.frames.pop_back();
    // The handler below, stacked under this one or interrupted by it, sees its own signal again.
    if (!ts.frames.empty()) set_siginfo(ctx.thread, ts.frames.back().info);
    recalc(ctx.thread);
  }

  // spawn is fork + exec: the child's threads start with the spawning thread's signal mask (fork
  // copies it, execve keeps it: sigprocmask(2)), and what the parent ignores stays ignored while
  // handlers go back to the default (execve(2), signal(7)). Pending signals are not inherited.
  // A parent that blocks a signal before spawning is how a program keeps a child from dying of a
  // signal sent before the child could block it.
  void on_process_spawn(OpContext& ctx, Process& parent, Process& child) override {
    const SigSet mask = thread(ctx.thread).blocked;
    ProcSignals& from = proc(parent);
    ProcSignals& to = proc(child);
    for (int sig = 1; sig <= kNSig; ++sig)
      if (from.act[sig].action == Action::Ignore) to.act[sig].action = Action::Ignore;
    for (std::uint32_t i = 0; i < child.threads_total(); ++i) thread(thread_at(child, i)).blocked = mask;
  }

  // A child's exit: SIGCHLD to its parent (do_notify_parent), and its waitpid wakes.
  void on_process_exit(OpContext& ctx, Process& child) override {
    cancel_alarm(child);
    Process* parent = find_pid(child.parent_pid);
    if (!child.parent_pid || !parent || parent->live_threads == 0 || parent->killed_by) return;
    Zombie z = status(child);
    // do_notify_parent: with SIGCHLD at SIG_IGN the child is reaped now (autoreap); it stays so when
    // the disposition changes back before a waitpid.
    if (proc(*parent).act[kSIGCHLD].action == Action::Ignore) reap(child);
    send(ctx, *parent, nullptr, {kSIGCHLD, z.status, child.pid, z.code}, kExit);
    if (ProcSignals& ps = proc(*parent); ps.child_wait) {
      ctx.sync();
      kernel_.wake_all(ctx.core, *ps.child_wait, &ctx.thread, kExit);
    }
  }

  Zombie status(const Process& child) {
    if (!child.killed_by) return {child.pid, kCLD_EXITED, 0};
    auto it = procs_.find(child.id);
    bool dumped = it != procs_.end() && it->second->dumped;
    return {child.pid, dumped ? kCLD_DUMPED : kCLD_KILLED, child.killed_by};
  }
  // A child that exited and was not waited for: a zombie, unless its parent ignored SIGCHLD when it
  // exited (reaped then). One that was a zombie before SIG_IGN was set stays one (wait_task_zombie).
  bool zombie(const Process& child) {
    if (child.live_threads > 0 || reaped_.count(child.pid)) return false;
    Process* parent = find_pid(child.parent_pid);
    return parent && parent->live_threads > 0;
  }
  void reap(const Process& child) { reaped_.insert(child.pid); }

  // Whether `p` has a pid now (find_task_by_vpid finds it): it has arrived, and it runs or is a
  // zombie. A process whose threads are being terminated counts as gone, as it always did here.
  bool exists(const Process& p) {
    if (p.thread_count == 0 || kernel_.threads()[p.first_thread].state == ThreadState::NotStarted)
      return false;
    return (p.live_threads > 0 && !p.killed_by) || zombie(p);
  }
  // The members of process group `pgid`, most recently joined first, as Linux's hlist of a pid's
  // PIDTYPE_PGID tasks runs (attach_pid adds at the head).
  std::vector<Process*> group(std::int64_t pgid) {
    std::vector<Process*> members;
    for (const auto& p : kernel_.processes())
      if (p.pgid == pgid && exists(p)) members.push_back(const_cast<Process*>(&p));
    std::stable_sort(members.begin(), members.end(),
                     [&](const Process* a, const Process* b) { return joined(*a) > joined(*b); });
    return members;
  }
  // When `p` joined its group: at its creation (in creation order), or at its last setpgid.
  std::uint64_t joined(const Process& p) const {
    auto it = joined_.find(p.id);
    return it == joined_.end() ? p.id : it->second;
  }
  void set_group(Process& p, std::uint32_t pgid) {
    if (p.pgid == pgid) return; // change_pid only when the group changes
    p.pgid = pgid;
    joined_[p.id] = (std::uint64_t{1} << 32) + ++joins_;
  }

  // group_send_sig_info: the permission check (kill_ok_by_cred: the same uid, or uid 0; SIGCONT
  // within the caller's session), then the signal (none for 0; a zombie takes it to no effect). 0
  // or the error.
  int signal_process(OpContext& ctx, Process& process, const Queued& q, std::uint16_t activity) {
    const Process& self = *ctx.thread.process;
    std::uint32_t uid = self.spec->uid;
    if (&process != &self && uid != 0 && uid != process.spec->uid &&
        (q.sig != kSIGCONT || process.sid != self.sid))
      return EPERM;
    if (q.sig != 0 && process.live_threads > 0) send(ctx, process, nullptr, q, activity);
    return 0;
  }

  WaitQueue& thread_wait(const Thread& t) {
    ThreadSignals& ts = thread(t);
    if (!ts.wait) ts.wait = std::make_unique<WaitQueue>("a signal");
    return *ts.wait;
  }
  WaitQueue& child_wait(const Process& p) {
    ProcSignals& ps = proc(p);
    if (!ps.child_wait) ps.child_wait = std::make_unique<WaitQueue>("a child's exit (waitpid)");
    return *ps.child_wait;
  }

  Process* find_pid(std::int64_t pid) {
    for (const auto& p : kernel_.processes())
      if (p.pid == pid) return const_cast<Process*>(&p);
    return nullptr;
  }

  Kernel& kernel() { return kernel_; }

  // A process's real-time alarm (alarm(2), setitimer's ITIMER_REAL one-shot): SIGALRM from the
  // kernel when it expires, on a timer of the core that armed it.
  class Alarm : public TimerCall {
  public:
    Alarm(SignalState& state, Process& process) : state_(state), process_(process) {}
    void fire(OpContext& ctx) override {
      if (process_.killed_by || process_.live_threads == 0) return;
      state_.send(ctx, process_, nullptr, {kSIGALRM, 0, 0, kSI_KERNEL}, kTimer);
    }
    Cycles when = 0;

  private:
    SignalState& state_;
    Process& process_;
  };

  // Arms (or with `after` 0, cancels) the calling process's alarm; returns what was left of the
  // previous one, in cycles (0: none was pending).
  Cycles set_alarm(OpContext& ctx, Cycles after) {
    auto& slot = alarms_[ctx.thread.process->id];
    if (!slot) slot = std::make_unique<Alarm>(*this, *ctx.thread.process);
    Alarm& alarm = *slot;
    const Cycles now = ctx.now();
    Cycles left = alarm.armed() && alarm.when > now ? alarm.when - now : 0;
    kernel_.cancel_call(alarm);
    if (after > 0) {
      alarm.when = now + after;
      kernel_.arm_call(ctx.core, ctx.thread, alarm.when, alarm);
    }
    return left;
  }

  // An exiting process's alarm goes with it.
  void cancel_alarm(const Process& process) {
    if (auto it = alarms_.find(process.id); it != alarms_.end()) kernel_.cancel_call(*it->second);
  }

private:
  Kernel& kernel_;
  std::map<std::uint32_t, std::unique_ptr<Alarm>> alarms_;
  std::map<std::uint32_t, std::unique_ptr<ProcSignals>> procs_;
  std::map<std::uint32_t, std::unique_ptr<ThreadSignals>> threads_;
  std::set<std::uint32_t> reaped_;                // children a waitpid took, or reaped at their exit
  std::map<std::uint32_t, std::uint64_t> joined_; // per process id: when it last changed group
  std::uint64_t joins_ = 0;
};

SignalState& signals(OpContext& ctx) { return ctx.kernel.ipc<SignalState>(); }

// ---- Ops ------------------------------------------------------------------------------------------

// sigreturn: the last op of every handler. The kernel restores the context saved in the signal
// frame and the mask; the interrupted frame then resumes.
class SigreturnOp : public Op {
public:
  using Op::Op;
  Step execute(OpContext& ctx) const override {
    ctx.enter_syscall(activity);
    ctx.charge(activity, Primitive::sigreturn);
    ctx.sync();
    signals(ctx).sigreturn(ctx);
    ctx.leave_syscall(activity);
    ++ctx.thread.pc;
    return Step::Continue;
  }
};

class SigactionOp : public SyscallOp {
public:
  SigactionOp(std::uint16_t activity, int sig, Disposition d, std::shared_ptr<const Program> handler)
      : SyscallOp(activity, {}), sig_(sig), d_(d), handler_(std::move(handler)) {
    d_.handler = handler_.get();
  }
  IoStatus call(OpContext& ctx) const override {
    if (sig_ == kSIGKILL || sig_ == kSIGSTOP) return fail_call(ctx, activity, EINVAL);
    ctx.sync();
    SignalState& state = signals(ctx);
    Process& process = *ctx.thread.process;
    ProcSignals& ps = state.proc(process);
    ps.act[sig_] = d_;
    // Setting SIG_IGN (or SIG_DFL of an ignored-by-default signal) discards it where pending.
    if (state.ignored(ps, sig_)) {
      ps.shared.drop(sig_);
      for (std::uint32_t i = 0; i < process.threads_total(); ++i)
        state.thread(state.thread_at(process, i)).pending.drop(sig_);
    }
    state.recalc_all(process);
    ctx.succeed();
    return IoStatus::Done;
  }

private:
  int sig_;
  Disposition d_;
  std::shared_ptr<const Program> handler_;
};

// The process a kill / sigqueue op names: by process name (and copy), or by pid.
struct TargetRef {
  std::string process;
  std::uint32_t copy = 0;
  std::int64_t pid = 0;
  std::string pid_var;
};

class KillOp : public SyscallOp {
public:
  KillOp(std::uint16_t activity, TargetRef target, int sig, bool queue, std::int64_t value)
      : SyscallOp(activity, {}), target_(std::move(target)), sig_(sig), queue_(queue), value_(value) {}
  IoStatus call(OpContext& ctx) const override {
    if (queue_) charge_copy(ctx, activity, 128); // copy_siginfo_from_user: a siginfo_t
    ctx.sync();
    SignalState& state = signals(ctx);
    Process& self = *ctx.thread.process;
    const Queued q{sig_, value_, self.pid, queue_ ? kSI_QUEUE : kSI_USER};
    std::int64_t pid = 0;
    if (!target_.process.empty()) {
      Process* named = ctx.kernel.find_process(target_.process, target_.copy);
      pid = named ? named->pid : 0; // always found: the name was checked at load
    } else {
      pid = target_.pid;
      if (!target_.pid_var.empty()) {
        Value v = read_variable(target_.pid_var, ctx.kernel, ctx.thread);
        const auto* n = std::get_if<std::int64_t>(&v);
        if (!n) return fail_call(ctx, activity, EINVAL);
        pid = *n;
      }
    }
    int error = 0;
    if (pid > 0) { // kill_pid_info
      Process* process = state.find_pid(pid);
      error = process && state.exists(*process) ? state.signal_process(ctx, *process, q, activity) : ESRCH;
    } else if (queue_) { // rt_sigqueueinfo looks the pid up alone: no process has pid 0 or below
      error = ESRCH;
    } else if (pid == -1) { // kill_something_info: every process but init and the caller
      int last = 0;
      std::size_t count = 0;
      std::vector<Process*> all;
      for (const auto& p : ctx.kernel.processes()) all.push_back(const_cast<Process*>(&p));
      for (Process* p : all) { // for_each_process: in creation order
        if (p == &self || p->pid <= 1 || !state.exists(*p)) continue;
        int err = state.signal_process(ctx, *p, q, activity);
        ++count;
        if (err != EPERM) last = err; // EPERM from some is no failure
      }
      error = count ? last : ESRCH;
    } else if (pid <= INT32_MIN) { // kill_something_info: -INT_MIN is undefined (nor is a pid below it)
      error = ESRCH;
    } else { // __kill_pgrp_info: the caller's group (0) or group -pid
      error = ESRCH;
      bool success = false;
      for (Process* p : state.group(pid == 0 ? std::int64_t{self.pgid} : -pid)) {
        if (!state.exists(*p)) continue; // gone while an earlier one was signalled
        int err = state.signal_process(ctx, *p, q, activity);
        success |= err == 0;
        error = err;
      }
      if (success) error = 0;
    }
    if (error) return fail_call(ctx, activity, error);
    ctx.succeed();
    return IoStatus::Done;
  }

private:
  TargetRef target_;
  int sig_;
  bool queue_;
  std::int64_t value_;
};

// raise(3): tgkill(getpid(), gettid(), sig), to the calling thread.
class RaiseOp : public SyscallOp {
public:
  RaiseOp(std::uint16_t activity, int sig) : SyscallOp(activity, {}), sig_(sig) {}
  IoStatus call(OpContext& ctx) const override {
    ctx.sync();
    signals(ctx).send(ctx, *ctx.thread.process, &ctx.thread, {sig_, 0, ctx.thread.process->pid, kSI_TKILL},
                      activity);
    ctx.succeed();
    return IoStatus::Done;
  }

private:
  int sig_;
};

enum class How : std::uint8_t { Block, Unblock, SetMask };

class SigprocmaskOp : public SyscallOp {
public:
  SigprocmaskOp(std::uint16_t activity, How how, SigSet set)
      : SyscallOp(activity, {}), how_(how), set_(set) {}
  IoStatus call(OpContext& ctx) const override {
    ctx.sync();
    SignalState& state = signals(ctx);
    ThreadSignals& ts = state.thread(ctx.thread);
    SigSet old = ts.blocked;
    switch (how_) {
    case How::Block:
      ts.blocked |= set_;
      break;
    case How::Unblock:
      ts.blocked &= ~set_;
      break;
    case How::SetMask:
      ts.blocked = set_;
      break;
    }
    ts.blocked &= ~kUnblockable; // silently: SIGKILL and SIGSTOP cannot be blocked
    ctx.thread.script_locals().set("sig.oldmask", static_cast<std::int64_t>(old));
    state.recalc(ctx.thread);
    ctx.succeed();
    return IoStatus::Done;
  }

private:
  How how_;
  SigSet set_;
};

// sigsuspend(2) (and pause(2): the mask unchanged): waits until a signal runs a handler or ends
// the process; always fails with EINTR, after the handler, whose sigreturn restores the old mask.
class SigsuspendOp : public SyscallOp {
public:
  SigsuspendOp(std::uint16_t activity, std::optional<SigSet> mask) : SyscallOp(activity, {}), mask_(mask) {}
  IoStatus call(OpContext& ctx) const override {
    Thread& t = ctx.thread;
    SignalState& state = signals(ctx);
    ThreadSignals& ts = state.thread(t);
    if (t.op_progress == 0) {
      ctx.sync();
      if (mask_) {
        ts.saved_mask = ts.blocked;
        ts.blocked = *mask_ & ~kUnblockable;
      }
      t.op_progress = 1;
      state.recalc(t);
    }
    if (t.signal_pending && !state.proc(*t.process).stopped) {
      ctx.fail(activity, EINTR);
      return IoStatus::Done;
    }
    ctx.sync();
    ctx.kernel.block(ctx.core, t, &state.thread_wait(t));
    return IoStatus::Blocked;
  }

private:
  std::optional<SigSet> mask_;
};

// sigwait / sigtimedwait: takes a pending signal of the set (normally blocked) without a handler.
class SigwaitOp : public SyscallOp {
public:
  SigwaitOp(std::uint16_t activity, CallTimeout timeout, SigSet set)
      : SyscallOp(activity, timeout), set_(set) {}
  IoStatus call(OpContext& ctx) const override {
    Thread& t = ctx.thread;
    ctx.sync();
    SignalState& state = signals(ctx);
    ThreadSignals& ts = state.thread(t);
    ProcSignals& ps = state.proc(*t.process);
    std::optional<Queued> q = ts.pending.take(set_);
    if (!q) q = ps.shared.take(set_);
    if (q) {
      ts.waiting_for = 0;
      state.set_siginfo(t, *q);
      state.recalc_all(*t.process);
      ctx.succeed(q->sig);
      return IoStatus::Done;
    }
    ts.waiting_for = set_;
    // sigtimedwait's timeout: EAGAIN.
    IoStatus status = wait_on(ctx, state.thread_wait(t), activity, EAGAIN);
    if (status == IoStatus::Done) {
      ts.waiting_for = 0;
      if (t.error == kERESTARTSYS) { // a handler of another signal ran: sigtimedwait gives EINTR
        t.error = 0;
        ctx.fail(activity, EINTR);
      }
    }
    return status;
  }

private:
  SigSet set_;
};

// waitpid(2): a child's exit status; the status variables describe it (WIFEXITED, WEXITSTATUS,
// WIFSIGNALED, WTERMSIG, WCOREDUMP).
class WaitpidOp : public SyscallOp {
public:
  WaitpidOp(std::uint16_t activity, std::int64_t pid, std::string pid_var, bool nohang)
      : SyscallOp(activity, {}), pid_(pid), pid_var_(std::move(pid_var)), nohang_(nohang) {}
  IoStatus call(OpContext& ctx) const override {
    Thread& t = ctx.thread;
    std::int64_t pid = pid_;
    if (!pid_var_.empty()) {
      Value v = read_variable(pid_var_, ctx.kernel, t);
      const auto* n = std::get_if<std::int64_t>(&v);
      if (!n) return fail_call(ctx, activity, EINVAL);
      pid = *n;
    }
    if (pid <= INT32_MIN) return fail_call(ctx, activity, ESRCH); // kernel_wait4: -INT_MIN is undefined
    ctx.sync();
    SignalState& state = signals(ctx);
    Process& self = *t.process;
    // eligible_pid: -1 any child, > 0 that one, 0 a child in the caller's group, < -1 in group -pid
    // (the child's group now).
    auto eligible = [&](const Process& p) {
      if (pid == -1) return true;
      if (pid > 0) return p.pid == pid;
      return p.pgid == (pid == 0 ? std::int64_t{self.pgid} : -pid);
    };
    bool child = false; // a live child it may wait for
    // do_wait: the children in the order they were spawned; the first zombie that matches.
    for (const auto& p : ctx.kernel.processes()) {
      if (p.parent_pid != self.pid || !eligible(p)) continue;
      if (p.live_threads > 0) {
        child = true;
        continue;
      }
      if (!state.zombie(p)) continue;
      state.reap(p);
      Zombie z = state.status(p);
      ScriptLocals& locals = t.script_locals();
      locals.set("status.exited", std::int64_t{z.code == kCLD_EXITED});
      locals.set("status.code", std::int64_t{0}); // scripts exit with status 0
      locals.set("status.signal", std::int64_t{z.code == kCLD_EXITED ? 0 : z.status});
      locals.set("status.core", std::int64_t{z.code == kCLD_DUMPED});
      ctx.succeed(z.pid);
      return IoStatus::Done;
    }
    if (!child) return fail_call(ctx, activity, ECHILD);
    if (nohang_) {
      ctx.succeed(0);
      return IoStatus::Done;
    }
    return wait_on(ctx, state.child_wait(self), activity);
  }

private:
  std::int64_t pid_;
  std::string pid_var_;
  bool nohang_;
};

// setpgid(2) (and setpgrp(): setpgid(0, 0)), as ksys_setpgid checks it. The machine's processes
// start in the session of the shell that started them (kShellPid), which none of them leads; setsid
// makes new ones. A spawned child has already exec'd (spawn is fork + exec), so its parent may not
// move it: EACCES (EPERM first when it is in another session).
class SetpgidOp : public SyscallOp {
public:
  SetpgidOp(std::uint16_t activity, IntRef pid, IntRef pgid)
      : SyscallOp(activity, {}), pid_(std::move(pid)), pgid_(std::move(pgid)) {}
  IoStatus call(OpContext& ctx) const override {
    std::int64_t pid = 0, pgid = 0;
    if (!pid_.read(ctx, pid) || !pgid_.read(ctx, pgid)) return fail_call(ctx, activity, EINVAL);
    ctx.sync();
    SignalState& state = signals(ctx);
    Process& self = *ctx.thread.process;
    if (pid == 0) pid = self.pid;
    if (pgid == 0) pgid = pid;
    if (pgid < 0) return fail_call(ctx, activity, EINVAL);
    Process* p = state.find_pid(pid);
    if (!p || !state.exists(*p)) return fail_call(ctx, activity, ESRCH);
    if (p->parent_pid == self.pid) // a child: in another session, or after its exec
      return fail_call(ctx, activity, p->sid != self.sid ? EPERM : EACCES);
    if (p != &self) return fail_call(ctx, activity, ESRCH);       // neither the caller nor its child
    if (p->sid == p->pid) return fail_call(ctx, activity, EPERM); // a session leader stays in its group
    if (pgid != pid) {                                            // an existing group of the caller's session
      std::vector<Process*> members = state.group(pgid);
      if (members.empty() || members.front()->sid != self.sid) return fail_call(ctx, activity, EPERM);
    }
    state.set_group(*p, static_cast<std::uint32_t>(pgid));
    ctx.succeed();
    return IoStatus::Done;
  }

private:
  IntRef pid_, pgid_;
};

// setsid(2), as ksys_setsid: the caller leads a new session and a new group, both its pid, which
// {result} is; EPERM when it leads a session already, or when a process group with its pid exists
// (it leads its group, or left members behind in it): the machine's processes lead their groups,
// so a process that calls setsid is typically a spawned child, as after fork.
class SetsidOp : public SyscallOp {
public:
  explicit SetsidOp(std::uint16_t activity) : SyscallOp(activity, {}) {}
  IoStatus call(OpContext& ctx) const override {
    ctx.sync();
    SignalState& state = signals(ctx);
    Process& self = *ctx.thread.process;
    if (self.sid == self.pid || !state.group(self.pid).empty()) return fail_call(ctx, activity, EPERM);
    self.sid = self.pid;
    state.set_group(self, self.pid);
    ctx.succeed(self.pid);
    return IoStatus::Done;
  }
};

// getpgid(2) (and getpgrp(): getpgid(0)) and getsid(2): {result} is a process's group or session
// (pid 0: the caller); ESRCH for no such process.
class GetProcessIdOp : public SyscallOp {
public:
  GetProcessIdOp(std::uint16_t activity, IntRef pid, std::uint32_t Process::*field)
      : SyscallOp(activity, {}), pid_(std::move(pid)), field_(field) {}
  IoStatus call(OpContext& ctx) const override {
    std::int64_t pid = 0;
    if (!pid_.read(ctx, pid)) return fail_call(ctx, activity, EINVAL);
    ctx.sync();
    SignalState& state = signals(ctx);
    Process* p = pid == 0 ? ctx.thread.process : state.find_pid(pid);
    if (!p || !state.exists(*p)) return fail_call(ctx, activity, ESRCH);
    ctx.succeed(p->*field_);
    return IoStatus::Done;
  }

private:
  IntRef pid_;
  std::uint32_t Process::*field_;
};

// ---- Registration ---------------------------------------------------------------------------------

ParamSpec signal_param(const std::string& what) {
  return {"signal", ParamType::Scalar, nullptr, "", what + ": a name such as \"SIGUSR1\" or a number"};
}
ParamSpec set_param(const std::string& name, const std::string& what, json default_value = nullptr) {
  return {name, ParamType::StringList, std::move(default_value), "signal names", what};
}

void assign_siginfo(CompileContext& ctx) {
  for (const char* v : {"sig.signo", "sig.value", "sig.pid", "sig.code"}) ctx.assigned.push_back(v);
}

TargetRef read_target(const json& f, const std::string& path, CompileContext& ctx) {
  TargetRef target;
  bool by_name = f.contains("process"), by_pid = f.contains("pid");
  if (by_name == by_pid)
    fail_at(ctx.read.file, path,
            "give exactly one of \"process\" (a process's name) and \"pid\" (a number, or a variable holding "
            "one, such as spawn's result)");
  if (by_name) {
    target.process = f.at("process").get<std::string>();
    if (std::find(ctx.process_names.begin(), ctx.process_names.end(), target.process) ==
        ctx.process_names.end())
      fail_at(ctx.read.file, join_path(path, "process"),
              "unknown process \"" + target.process + "\"" + did_you_mean(target.process, ctx.process_names) +
                  "; processes: " + join_list(ctx.process_names));
    target.copy = f.at("copy").get<std::uint32_t>();
  } else {
    if (f.contains("copy") && f.at("copy") != 0)
      fail_at(ctx.read.file, join_path(path, "copy"), "\"copy\" goes with \"process\"; drop it");
    const json& pid = f.at("pid");
    if (pid.is_number_integer()) {
      target.pid = pid.get<std::int64_t>();
    } else {
      auto name = pid.get<std::string>();
      if (!valid_variable_not_number(name))
        fail_at(ctx.read.file, join_path(path, "pid"),
                "invalid value \"" + name +
                    "\"; expected a pid: a whole number or a script variable holding one");
      ctx.used.push_back({name, join_path(path, "pid")});
      target.pid_var = name;
    }
  }
  return target;
}

std::vector<ParamSpec> target_params() {
  return {{"process",
           ParamType::String,
           nullptr,
           "",
           "the target process's name",
           std::nullopt,
           std::nullopt,
           {},
           "none: give pid"},
          {"copy", ParamType::Integer, 0, "", "which copy (or spawn) of that process", 0.0, 4294967295.0},
          {"pid",
           ParamType::Scalar,
           nullptr,
           "",
           "the target's pid: a number or a variable (spawn's result); kill: 0 the caller's group, -1 "
           "every process, -N group N",
           std::nullopt,
           std::nullopt,
           {},
           "none: give process"}};
}

const OpRegistrar register_sigaction_op(
    {"sigaction",
     "set a signal's disposition: a handler (a script run on delivery), ignore, or the default action",
     {"sigaction op",
      "",
      {signal_param("the signal (not SIGKILL nor SIGSTOP: EINVAL)"),
       {"action",
        ParamType::Choice,
        "handler",
        "",
        "what delivery does",
        std::nullopt,
        std::nullopt,
        {"handler", "ignore", "default"}},
       {"handler",
        ParamType::Script,
        nullptr,
        "",
        "the handler's ops; they see {sig.signo}, {sig.value}, {sig.pid}, {sig.code}",
        std::nullopt,
        std::nullopt,
        {},
        "none"},
       {"restart", ParamType::Bool, false, "",
        "SA_RESTART: restart the calls signal(7) lists as restartable"},
       set_param("mask", "sa_mask: signals blocked while the handler runs (besides the signal itself)",
                 json::array())}},
     [](const json& f, const std::string& path, CompileContext& ctx, Program& p, std::uint16_t a) {
       int sig = checked_signal(f, "signal", path, ctx, false);
       Disposition d;
       auto action = f.at("action").get<std::string>();
       std::shared_ptr<Program> handler;
       delivery_activity();
       if (action == "handler") {
         if (!f.contains("handler"))
           fail_at(ctx.read.file, path,
                   "\"action\": \"handler\" needs \"handler\": the ops to run when the signal is delivered");
         d.action = Action::Handler;
         handler = std::make_shared<Program>();
         assign_siginfo(ctx);
         compile_ops(f.at("handler"), join_path(path, "handler"), ctx, *handler);
         handler->ops.push_back(std::make_unique<SigreturnOp>(register_activity("sigreturn")));
       } else {
         if (f.contains("handler"))
           fail_at(ctx.read.file, join_path(path, "handler"),
                   "a handler goes with \"action\": \"handler\" only; drop it");
         if (f.at("restart") == true)
           fail_at(ctx.read.file, join_path(path, "restart"), "SA_RESTART goes with a handler only; drop it");
         d.action = action == "ignore" ? Action::Ignore : Action::Default;
       }
       d.restart = f.at("restart").get<bool>();
       d.mask = checked_set(f, "mask", path, ctx);
       p.ops.push_back(std::make_unique<SigactionOp>(a, sig, d, std::move(handler)));
     }});

const OpRegistrar register_kill_op(
    {"kill",
     "send a signal to a process (kill(2)), or with pid 0 to the caller's process group, -1 to every "
     "process it may signal but itself, -N to group N; signal 0 only checks",
     {"kill op", "",
      [] {
        auto params = target_params();
        params.push_back(
            {"signal", ParamType::Scalar, "SIGTERM", "", "the signal: a name or a number (0: none)"});
        return params;
      }()},
     [](const json& f, const std::string& path, CompileContext& ctx, Program& p, std::uint16_t a) {
       auto target = read_target(f, path, ctx);
       int sig = checked_signal(f, "signal", path, ctx, true);
       p.ops.push_back(std::make_unique<KillOp>(a, std::move(target), sig, false, 0));
     }});

const OpRegistrar register_sigqueue_op(
    {"sigqueue",
     "send a signal with a value to a process (sigqueue(3)); real-time signals queue every instance",
     {"sigqueue op", "",
      [] {
        auto params = target_params();
        params.push_back(signal_param("the signal"));
        params.push_back({"value", ParamType::Integer, 0, "",
                          "si_value: what the receiver sees in {sig.value}", -9.2e18, 9.2e18});
        return params;
      }()},
     [](const json& f, const std::string& path, CompileContext& ctx, Program& p, std::uint16_t a) {
       auto target = read_target(f, path, ctx);
       int sig = checked_signal(f, "signal", path, ctx, true);
       p.ops.push_back(
           std::make_unique<KillOp>(a, std::move(target), sig, true, f.at("value").get<std::int64_t>()));
     }});

IntRef read_pid_field(const json& f, const std::string& field, const std::string& path, CompileContext& ctx) {
  return read_int_or_variable(f, field, path, ctx, "a whole number or a script variable holding one");
}

const OpRegistrar register_setpgid_op(
    {"setpgid",
     "move a process into a process group (setpgid(2)): the caller itself (pid 0) into a group of its "
     "session or a new one (pgid 0: its own pid); EINVAL, ESRCH, EACCES (a spawned child, already exec'd), "
     "EPERM (no such group)",
     {"setpgid op",
      "",
      {{"pid", ParamType::Scalar, 0, "", "the process: 0 (the caller), a pid, or a variable holding one"},
       {"pgid", ParamType::Scalar, 0, "", "the group: 0 (the process's own pid), a pgid, or a variable"}}},
     [](const json& f, const std::string& path, CompileContext& ctx, Program& p, std::uint16_t a) {
       p.ops.push_back(std::make_unique<SetpgidOp>(a, read_pid_field(f, "pid", path, ctx),
                                                   read_pid_field(f, "pgid", path, ctx)));
     }});

const OpRegistrar
    register_setpgrp_op({"setpgrp",
                         "make the caller the leader of a new process group (setpgrp(): setpgid(0, 0))",
                         {"setpgrp op", "", {}},
                         [](const json&, const std::string&, CompileContext&, Program& p, std::uint16_t a) {
                           p.ops.push_back(std::make_unique<SetpgidOp>(a, IntRef{}, IntRef{}));
                         }});

const OpRegistrar register_getpgid_op(
    {"getpgid",
     "a process's group (getpgid(2)): {result}; ESRCH when there is no such process",
     {"getpgid op",
      "",
      {{"pid", ParamType::Scalar, 0, "", "the process: 0 (the caller), a pid, or a variable holding one"}}},
     [](const json& f, const std::string& path, CompileContext& ctx, Program& p, std::uint16_t a) {
       p.ops.push_back(
           std::make_unique<GetProcessIdOp>(a, read_pid_field(f, "pid", path, ctx), &Process::pgid));
     }});

const OpRegistrar
    register_getpgrp_op({"getpgrp",
                         "the caller's process group (getpgrp()): {result}",
                         {"getpgrp op", "", {}},
                         [](const json&, const std::string&, CompileContext&, Program& p, std::uint16_t a) {
                           p.ops.push_back(std::make_unique<GetProcessIdOp>(a, IntRef{}, &Process::pgid));
                         }});

const OpRegistrar register_setsid_op(
    {"setsid",
     "make the caller the leader of a new session and process group (setsid(2)): {result} is its pid; EPERM "
     "when it already leads a process group (as every process the machine starts does) or a session",
     {"setsid op", "", {}},
     [](const json&, const std::string&, CompileContext&, Program& p, std::uint16_t a) {
       p.ops.push_back(std::make_unique<SetsidOp>(a));
     }});

const OpRegistrar register_getsid_op(
    {"getsid",
     "a process's session (getsid(2)): {result}; ESRCH when there is no such process",
     {"getsid op",
      "",
      {{"pid", ParamType::Scalar, 0, "", "the process: 0 (the caller), a pid, or a variable holding one"}}},
     [](const json& f, const std::string& path, CompileContext& ctx, Program& p, std::uint16_t a) {
       p.ops.push_back(
           std::make_unique<GetProcessIdOp>(a, read_pid_field(f, "pid", path, ctx), &Process::sid));
     }});

const OpRegistrar register_raise_op(
    {"raise",
     "send a signal to the calling thread (raise(3)); a handler runs before the next op",
     {"raise op", "", {signal_param("the signal")}},
     [](const json& f, const std::string& path, CompileContext& ctx, Program& p, std::uint16_t a) {
       p.ops.push_back(std::make_unique<RaiseOp>(a, checked_signal(f, "signal", path, ctx, false)));
     }});

class AlarmOp : public SyscallOp {
public:
  AlarmOp(std::uint16_t activity, TimeRef after) : SyscallOp(activity, {}), after_(std::move(after)) {}
  IoStatus call(OpContext& ctx) const override {
    Cycles after = 0;
    after_.resolve(ctx, after, "alarm", "time", false); // checked by arguments_valid
    ctx.sync();
    ctx.succeed(static_cast<std::int64_t>(signals(ctx).set_alarm(ctx, after)));
    return IoStatus::Done;
  }

protected:
  bool arguments_valid(OpContext& ctx) const override {
    Cycles after = 0;
    return after_.resolve(ctx, after, "alarm", "time");
  }

private:
  TimeRef after_;
};

const OpRegistrar register_alarm_op(
    {"alarm",
     "SIGALRM to this process after `time` (alarm(2), to the cycle rather than in whole seconds); 0 cancels; "
     "a new alarm replaces the pending one; {result} is the previous alarm's time left, in cycles (0: none)",
     {"alarm op",
      "",
      {variable_field({"time", ParamType::Time, nullptr, "cycles or duration",
                       "when SIGALRM comes, from now (0: cancel)"})}},
     [](const json& f, const std::string& path, CompileContext& ctx, Program& p, std::uint16_t a) {
       p.ops.push_back(std::make_unique<AlarmOp>(a, read_time_field(f, "time", path, ctx)));
     }});

const OpRegistrar register_sigprocmask_op(
    {"sigprocmask",
     "block or unblock signals for the calling thread (SIGKILL and SIGSTOP stay unblocked); {sig.oldmask} is "
     "the mask before, bit N-1 for signal N",
     {"sigprocmask op",
      "",
      {{"how",
        ParamType::Choice,
        nullptr,
        "",
        "SIG_BLOCK adds, SIG_UNBLOCK removes, SIG_SETMASK replaces",
        std::nullopt,
        std::nullopt,
        {"SIG_BLOCK", "SIG_UNBLOCK", "SIG_SETMASK"}},
       set_param("signals", "the set")}},
     [](const json& f, const std::string& path, CompileContext& ctx, Program& p, std::uint16_t a) {
       auto how = f.at("how").get<std::string>();
       SigSet set = checked_set(f, "signals", path, ctx);
       ctx.assigned.push_back("sig.oldmask");
       p.ops.push_back(std::make_unique<SigprocmaskOp>(a,
                                                       how == "SIG_BLOCK"     ? How::Block
                                                       : how == "SIG_UNBLOCK" ? How::Unblock
                                                                              : How::SetMask,
                                                       set));
     }});

const OpRegistrar register_sigsuspend_op(
    {"sigsuspend",
     "replace the signal mask and wait until a signal runs a handler (always EINTR, after the handler; the "
     "old "
     "mask is back then)",
     {"sigsuspend op", "", {set_param("signals", "the mask while waiting", json::array())}},
     [](const json& f, const std::string& path, CompileContext& ctx, Program& p, std::uint16_t a) {
       p.ops.push_back(std::make_unique<SigsuspendOp>(a, checked_set(f, "signals", path, ctx)));
     }});

const OpRegistrar
    register_pause_op({"pause",
                       "wait until a signal runs a handler (always EINTR, after the handler)",
                       {"pause op", "", {}},
                       [](const json&, const std::string&, CompileContext&, Program& p, std::uint16_t a) {
                         p.ops.push_back(std::make_unique<SigsuspendOp>(a, std::nullopt));
                       }});

const OpRegistrar register_sigwait_op(
    {"sigwait",
     "take a pending signal of the set (block them first), waiting for one; {result} and {sig.signo} are the "
     "signal, {sig.value} its value; with a timeout (sigtimedwait) EAGAIN",
     {"sigwait op", "", {set_param("signals", "the signals to wait for"), timeout_param()}},
     [](const json& f, const std::string& path, CompileContext& ctx, Program& p, std::uint16_t a) {
       SigSet set = checked_set(f, "signals", path, ctx);
       if (!set)
         fail_at(ctx.read.file, join_path(path, "signals"), "an empty set would wait forever; name a signal");
       assign_siginfo(ctx);
       p.ops.push_back(std::make_unique<SigwaitOp>(a, read_timeout(f, path, ctx), set));
     }});

const OpRegistrar register_waitpid_op(
    {"waitpid",
     "wait for a spawned child to exit and collect its status: {result} is its pid, {status.exited}, "
     "{status.code}, {status.signal}, {status.core} describe how it ended; ECHILD when there is none",
     {"waitpid op",
      "",
      {{"pid", ParamType::Scalar, -1, "",
        "the child's pid (a number or a variable: spawn's result), or -1: any"},
       {"nohang", ParamType::Bool, false, "", "WNOHANG: {result} 0 at once when no child has exited yet"}}},
     [](const json& f, const std::string& path, CompileContext& ctx, Program& p, std::uint16_t a) {
       const json& pid = f.at("pid");
       std::int64_t number = 0;
       std::string var;
       if (pid.is_number_integer()) {
         number = pid.get<std::int64_t>();
       } else {
         var = pid.get<std::string>();
         if (!valid_variable_not_number(var))
           fail_at(ctx.read.file, join_path(path, "pid"),
                   "invalid value \"" + var + "\"; expected a pid: -1, a whole number or a script variable");
         ctx.used.push_back({var, join_path(path, "pid")});
       }
       for (const char* v : {"status.exited", "status.code", "status.signal", "status.core"})
         ctx.assigned.push_back(v);
       p.ops.push_back(std::make_unique<WaitpidOp>(a, number, var, f.at("nohang").get<bool>()));
     }});

} // namespace

// ---- What the other mechanisms use --------------------------------------------------------------

std::string signal_name(int signal) {
  for (const auto& s : kSignals)
    if (s.number == signal) return s.name;
  if (signal == kSIGRTMIN) return "SIGRTMIN";
  if (signal == kNSig) return "SIGRTMAX";
  if (signal > kSIGRTMIN && signal < kNSig) return "SIGRTMIN+" + std::to_string(signal - kSIGRTMIN);
  return "signal " + std::to_string(signal);
}

void send_sigpipe(OpContext& ctx, std::uint16_t activity) {
  ctx.kernel.ipc<SignalState>().send(ctx, *ctx.thread.process, &ctx.thread,
                                     {kSIGPIPE, 0, ctx.thread.process->pid, kSI_KERNEL}, activity);
}

int read_signal_field(const json& f, const std::string& field, const std::string& path,
                      const CompileContext& ctx) {
  return checked_signal(f, field, path, ctx, false);
}

void kernel_signal(OpContext& ctx, Process& process, int signal, std::int64_t value, int code,
                   std::uint16_t activity) {
  ctx.kernel.ipc<SignalState>().send(ctx, process, nullptr, {signal, value, ctx.thread.process->pid, code},
                                     activity);
}

void block_all_signals(OpContext& ctx, Thread& thread) {
  SignalState& state = ctx.kernel.ipc<SignalState>();
  state.thread(thread).blocked = ~kUnblockable;
  state.recalc(thread);
}

} // namespace ipcsim
