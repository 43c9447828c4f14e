// The simulated machine's kernel. Threads are data (a resumable interpreter state); one SimGrid
// actor per core plays the CPU and runs Kernel::core_main. Kernel code runs on whichever core
// triggers it, as in a real OS. Contract for everything that touches shared state (run queues,
// wait queues, other threads): call OpContext::sync() first, so that the core's clock has reached
// the moment of the action.
#pragma once
#include "costs.hpp"
#include "engine.hpp"
#include "events.hpp"
#include "limits.hpp"
#include "statistics.hpp"
#include "symbol.hpp"

#include <algorithm>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace ipcsim {

struct Thread;
struct Core;
class Kernel;
class Scheduler;
struct OpContext;
class InvariantChecker;

// ---- Scripts ---------------------------------------------------------------------------------

// What the interpreter does after an op.
enum class Step : std::uint8_t {
  Continue, // op finished (or jumped): run the next one
  Compute,  // burn ctx.compute cycles of user time, interruptibly; pc moves on when they are done
  Block,    // the thread sleeps on a wait queue; the same op runs again when it is woken
  Switched, // the op handed the core to another thread (Kernel::direct_switch)
  Yield,    // back to the run queue; the same op runs again when the thread is next dispatched
  Exit,     // the thread ends
};

// A compiled script op. `activity` is what breakdowns attribute its charges to.
class Op {
public:
  explicit Op(std::uint16_t activity) : activity(activity) {}
  virtual ~Op() = default;
  virtual Step execute(OpContext& ctx) const = 0;
  const std::uint16_t activity;
};

struct Program {
  std::vector<std::unique_ptr<Op>> ops;
};

// Activities are the "op" column of a breakdown: the script ops (registered by name) and the
// kernel's own work done on a thread's behalf.
enum KernelActivity : std::uint16_t { kDispatch = 0, kTick = 1, kTimer = 2, kExit = 3, kIrq = 4 };
const std::vector<std::string>& activity_names();
std::uint16_t register_activity(const std::string& name);

// ---- Processes and threads -------------------------------------------------------------------

struct ThreadSpec {
  std::string name;
  std::uint32_t count = 1;
  int priority = 0;
  std::shared_ptr<const Program> program;
};

struct ProcessSpec {
  std::string name;
  std::uint32_t count = 1;
  std::vector<std::uint32_t> affinity; // empty: every core
  Cycles arrival = 0;
  std::uint32_t working_set_pages = 0;
  int priority = 0;
  bool spawned = false; // created only by a spawn op, not at arrival
  std::uint32_t uid = 1000, gid = 1000;
  bool sigpipe_terminates = true; // SIGPIPE's default action; false: ignored, the write gets EPIPE
  std::vector<ThreadSpec> threads;
};

// A kernel wait queue (xv6's sleep channel): intrusive, so a thread can leave it in O(1) when its
// timeout fires. `label` says what the waiters wait for, for the deadlock report.
struct WaitQueue {
  explicit WaitQueue(std::string label) : label(std::move(label)) {}
  std::string label;
  Thread* head = nullptr;
  Thread* tail = nullptr;
  std::size_t size = 0;
};

// An open file description (a pipe end, a FIFO end, a socket): shared by every descriptor that
// refers to it, in any process. Mechanisms in models/ derive from it; see ipc.hpp.
class OpenFile;

// ---- Address spaces --------------------------------------------------------------------------

// A region of an address space: private to it, or a shared segment mapped into several spaces
// (shared memory, docs/architecture.md). `segment` names what is mapped ("" for private memory).
struct Mapping {
  std::string name;
  std::uint64_t first_page = 0, pages = 0;
  bool shared = false;
  std::string segment;
};

// An address space is an object of its own: a process has one, and a thread runs in a space that
// need not be its process's (the server half of an LRPC or a ChCore migrating call runs in the
// server's). A core tracks which space its page tables hold (Core::loaded_space).
struct AddressSpace {
  std::uint32_t id = 0;
  std::string owner;                   // the process it was made for
  std::uint32_t working_set_pages = 0; // TLB entries refilled after an untagged flush
  std::vector<Mapping> mappings;
  // The cores whose tagged TLB holds this space's entries (a bit per core): its working set is
  // refilled the first time it runs on a core, and never again there.
  std::vector<std::uint64_t> tlb_warm;
  bool tlb_warm_on(std::size_t core) const {
    return core / 64 < tlb_warm.size() && (tlb_warm[core / 64] >> (core % 64) & 1);
  }
  void set_tlb_warm(std::size_t core) {
    if (tlb_warm.size() <= core / 64) tlb_warm.resize(core / 64 + 1);
    tlb_warm[core / 64] |= std::uint64_t{1} << (core % 64);
  }
};

// A process's descriptor: scripts name descriptors ("r", "w", "sock") rather than numbering them.
struct Descriptor {
  Symbol name;
  std::shared_ptr<OpenFile> file;
};

// The shell that started the machine's processes, each job leading a group of its own in the
// shell's session (setsid(2) makes others). No simulated process has this pid.
inline constexpr std::uint32_t kShellPid = 99;

struct Process {
  std::uint32_t id = 0;
  std::uint32_t pid = 0;  // what getpid() would say: 100 + id
  std::uint32_t copy = 0; // which of spec->count copies (or spawns)
  const ProcessSpec* spec = nullptr;
  std::uint32_t first_thread = 0,
                thread_count = 0;           // the threads it starts with, contiguous in Kernel::threads()
  std::vector<std::uint32_t> later_threads; // created at run time (Kernel::create_thread), in order
  std::uint32_t live_threads = 0;
  std::uint32_t service_threads = 0; // live C-library helper threads: they do not keep it alive
  // Every thread it has had: i-th of threads_total(), the starting ones first (ids in Kernel::threads()).
  std::uint32_t threads_total() const {
    return thread_count + static_cast<std::uint32_t>(later_threads.size());
  }
  std::uint32_t thread_id(std::uint32_t i) const {
    return i < thread_count ? first_thread + i : later_threads[i - thread_count];
  }
  std::uint32_t parent_pid = 0; // who spawned it (0: started by the machine)
  std::uint32_t pgid =
      0; // its process group: its own pid when the machine starts it, the parent's when spawned
  std::uint32_t sid = 0; // its session: kShellPid's when the machine starts it, the parent's when spawned
  int killed_by = 0;     // the signal that terminated it (0: none)
  std::unique_ptr<WaitQueue> exit_waiters; // created on first join
  std::vector<Descriptor> fds;
  AddressSpace* space = nullptr; // its own address space (owned by the kernel)
  Descriptor* find_fd(Symbol name);
  std::string display_name() const;
  bool only_service_threads_left() const { return live_threads > 0 && live_threads == service_threads; }
};

enum class ThreadState : std::uint8_t { NotStarted, Ready, Running, Blocked, Exited };
enum class WaitResult : std::uint8_t { None, Woken, TimedOut, Interrupted };

// Cycles charged to one (activity, primitive) of a thread, packed in 8 bytes (a thread holds a
// dozen of these; a million threads, a dozen million). A total past 2^48 cycles (26 hours at
// 3 GHz) continues in a second entry with the same key: readers sum entries by key.

struct OpenInterval {
  std::uint32_t name;
  Cycles start;
};

// A message as the generic channel and the message-carrying mechanisms see it: its size is what is
// copied and charged; type, priority and text are what scripts select on and print.
struct Message {
  std::uint64_t bytes = 0;
  std::int64_t type = 0;
  std::uint32_t priority = 0;
  std::string text;
  std::int32_t sender = -1; // the sending thread's id
  std::uint64_t id = 0;     // given when it is sent (Kernel::next_message_id); 0: none
  // The core whose cache holds the payload the kernel keeps (its writer's, at the copy in); -1:
  // none. A reader on another core copies it from there (charge_copy).
  std::int32_t written_on = -1;
};

using Value = std::variant<std::int64_t, std::string>;

// Script-visible state beyond the last call's result, created on first use.
struct ScriptLocals {
  std::vector<std::pair<Symbol, Value>> vars; // set, add, and ops that store results
  Message message;                            // the last message received
  std::string receiver;                       // who got the last message sent (mailboxes)
  Value* find(Symbol name);
  void set(Symbol name, Value value);
  // For the ops that store a family of results ("st.qnum", "st.perms"): interns the name.
  void set(const std::string& name, Value value) { set(Symbol(name), std::move(value)); }
};

// A blocking system call in flight, as the mechanism that holds it sees it. The kernel calls
// cancel() when the caller dies (its process is killed) or its wait is interrupted, so that the
// mechanism undoes what the call left half done (a rendezvous offer, a turn, a handed message), in
// one place instead of each mechanism looking for dead callers itself.
class CallHolder {
public:
  virtual ~CallHolder() = default;
  virtual void cancel(OpContext& ctx, Thread& caller, std::uint16_t activity) = 0;
  // The caller's wait was interrupted (a signal): cancel and let go, as by default, or keep holding
  // the call (false) when it will return through the holder (a framed write returns its count).
  virtual bool interrupted(OpContext& ctx, Thread& caller, std::uint16_t activity) {
    cancel(ctx, caller, activity);
    return true;
  }
};

// The remaining iterations of a thread's open `repeat`s, innermost last. Up to kInline counters are
// kept in place (a million threads nest one or two loops each: no allocation per thread); deeper
// nesting moves them to the heap.
class LoopCounters {
public:
  LoopCounters() = default;
  LoopCounters(const LoopCounters& other) { *this = other; }
  LoopCounters(LoopCounters&& other) noexcept { *this = std::move(other); }
  LoopCounters& operator=(const LoopCounters& other) {
    if (this != &other) {
      clear();
      for (std::uint32_t i = 0; i < other.size_; ++i) push_back(other.data()[i]);
    }
    return *this;
  }
  LoopCounters& operator=(LoopCounters&& other) noexcept {
    if (this == &other) return *this;
    release();
    size_ = other.size_;
    capacity_ = other.capacity_;
    if (other.on_heap())
      heap_ = other.heap_;
    else
      std::copy(other.inline_, other.inline_ + other.size_, inline_);
    other.size_ = 0;
    other.capacity_ = kInline;
    return *this;
  }
  ~LoopCounters() { release(); }
  void push_back(std::uint32_t count) {
    if (size_ == capacity_) grow();
    data()[size_++] = count;
  }
  std::uint32_t& back() { return data()[size_ - 1]; }
  void pop_back() { --size_; }
  void clear() { size_ = 0; }
  bool empty() const { return size_ == 0; }
  std::size_t size() const { return size_; }

private:
  static constexpr std::uint32_t kInline = 4;
  bool on_heap() const { return capacity_ > kInline; }
  std::uint32_t* data() { return on_heap() ? heap_ : inline_; }
  const std::uint32_t* data() const { return on_heap() ? heap_ : inline_; }
  void grow() {
    auto* bigger = new std::uint32_t[capacity_ * 2];
    std::copy(data(), data() + size_, bigger);
    release();
    heap_ = bigger;
    capacity_ *= 2;
  }
  void release() {
    if (on_heap()) delete[] heap_;
    capacity_ = kInline;
  }
  union {
    std::uint32_t inline_[kInline];
    std::uint32_t* heap_;
  };
  std::uint32_t size_ = 0;
  std::uint32_t capacity_ = kInline;
};

// One activation of a script on a thread: where it is in its program and in which address space it
// runs. The running frame's state lives in the Thread itself (the hot path reads it there); the
// frames it interrupted (a signal handler over a blocked call, the server half of a migrating call
// over the client's) are saved below it and resume exactly where they were.
struct Frame {
  const Program* program = nullptr;
  AddressSpace* space = nullptr;
  std::uint32_t pc = 0;
  std::uint8_t phase = 0;
  Cycles compute_left = 0;
  LoopCounters loops;
  std::uint64_t op_progress = 0;
  Cycles op_deadline = kNever;
  bool op_nonblocking = false;
  std::int64_t result = 0;
  int error = 0;
};

struct Thread {
  // Fields are grouped by size so that a million threads waste no padding.
  std::uint32_t id = 0;
  std::uint32_t copy = 0; // which of spec->count copies within the process
  Process* process = nullptr;
  const ThreadSpec* spec = nullptr;
  // The running frame: its program, the address space it runs in, and its interpreter state.
  const Program* program = nullptr;
  AddressSpace* space = nullptr;
  Cycles compute_left = 0;
  LoopCounters loops;             // remaining iterations of each open repeat
  std::vector<Frame> interrupted; // the activation stack below the running frame
  // Starts `program` on top of the running frame, in `space`; it returns (pops) when it ends.
  void push_frame(const Program& program, AddressSpace& space);
  void pop_frame();
  std::vector<OpenInterval> open_intervals;
  // Scheduling.
  Cycles level_used = 0; // MLFQ: allotment used at this level; priority: time slice used
  std::uint64_t boost_epoch = 0;
  // Waiting.
  WaitQueue* waiting_on = nullptr;
  Thread* wait_next = nullptr;
  Thread* wait_prev = nullptr;
  // The system call in progress: how far it got, and until when it may wait.
  std::uint64_t op_progress = 0;
  Cycles op_deadline = kNever;
  CallHolder* call = nullptr; // the mechanism holding its blocking call, while it has one
  // What the last system call returned, as the script sees it: result >= 0, or -1 and error.
  std::int64_t result = 0;
  std::unique_ptr<ScriptLocals> locals;
  ScriptLocals& script_locals();
  // Accounting.
  Cycles state_since = 0; // the times spent in each state and the charges: Kernel::account
  Cycles finished_at = kNever;
  // The small fields.
  std::uint32_t pc = 0;
  int priority = 0;
  std::int32_t last_core = -1;
  std::uint32_t timer_generation = 0; // bumps cancel armed timers lazily
  int error = 0;
  std::uint16_t leave_activity = kDispatch; // what the next context_save is attributed to
  ThreadState state = ThreadState::NotStarted;
  std::uint8_t phase = 0;   // progress inside a multi-step op (0: not started)
  bool enqueue_due = false; // wait_on put it on a wait queue: switch_out charges waitqueue_op
  std::uint8_t level = 0;   // MLFQ level (0 = top)
  bool timer_armed = false;
  WaitResult wait_result = WaitResult::None;
  bool op_nonblocking = false;
  bool service = false; // a C library's helper thread (Kernel::create_thread)
  // A signal waits that will run a handler or stop the thread (set by models/signal.cpp, as
  // Linux's TIF_SIGPENDING): the thread takes it at its next op boundary (Kernel::UserReturnWork),
  // and a blocking call ends at once (wait_on) with kERESTARTSYS for the delivery to sort out.
  bool signal_pending = false;

  // Blocked, with no wake of it under way. A wake decides the wait's result (wait_result) before it
  // lets time pass for other cores, and makes the thread ready after: in between, a second waker
  // (a signal from another core racing the thread's own timer) must leave it alone.
  bool asleep() const { return state == ThreadState::Blocked && wait_result == WaitResult::None; }

  std::string display_name() const;
};

// A call ended by a signal, before the delivery decides whether it restarts (SA_RESTART, and the
// call allows it) or fails with EINTR: Linux's ERESTARTSYS, which never reaches user space.
inline constexpr int kERESTARTSYS = 512;

// ---- Cores -----------------------------------------------------------------------------------

// A timer that runs kernel code when it expires (an alarm's signal; later a network arrival)
// instead of waking a thread. Armed with Kernel::arm_call, cancelled with Kernel::cancel_call; at
// most one expiry is pending per object.
class TimerCall {
public:
  virtual ~TimerCall() = default;
  // Runs on the core it was armed on, in interrupt context: ctx.thread is the owner given to
  // arm_call (what the interrupt is charged to), not necessarily the thread running there.
  virtual void fire(OpContext& ctx) = 0;
  bool armed() const { return armed_; }

private:
  friend class Kernel;
  bool armed_ = false;
  std::uint32_t generation_ = 0; // bumped by a cancel: a stale heap entry is skipped
};

struct TimerEntry {
  Cycles when;
  std::uint64_t seq; // ties fire in arming order
  Thread* thread;    // the thread woken, or a TimerCall's owner
  TimerCall* call;   // nullptr: a wake-up timer
  std::uint32_t generation;
  bool arrival;
  bool operator>(const TimerEntry& other) const {
    return when != other.when ? when > other.when : seq > other.seq;
  }
};

struct Core {
  std::size_t index = 0;
  Doorbell doorbell;
  Thread* current = nullptr;
  Thread* last_thread = nullptr;
  const AddressSpace* loaded_space = nullptr; // the address space whose page tables are loaded
  bool idle = false;
  bool left_idle = false;   // next dispatch pays idle_exit_due
  Cycles idle_since = 0;    // when the core last went idle
  Cycles idle_exit_due = 0; // what leaving its idle state costs (CostModel::idle_exit_after)
  bool need_resched = false;
  Cycles pending = 0;           // charged kernel cycles not yet passed
  std::uint32_t locks_held = 0; // ObjectLocks its running call holds (never across a sync)
  Cycles time = 0;              // what has passed on this core: its simulated time
  // One core of a machine runs at a time; the others are parked on their doorbells (Kernel::park).
  // While parked: the time at which it next acts unless rung (reads its run queue, fires its
  // timers), and the time before which it touches nothing else shared (a core woken from idle first
  // pays for its dispatch: the lookahead that lets its waker run on). Equal times go in core order.
  bool parked = false;
  Cycles resume_at = 0;
  Cycles shared_from = 0;
  bool rung = false;  // an interrupt from another core, taken at this core's next wait
  Cycles rung_at = 0; // when it was sent (the ringer's time)
  Cycles dispatched_at = 0, accounted_from = 0, slice_end = kNever;
  std::vector<TimerEntry> timers; // min-heap
  // Statistics.
  Cycles busy_cycles = 0;             // at the end of a run: executing, idle_exit excluded
  Cycles idle_exit_cycles = 0;        // leaving the idle state
  Cycles next_irq = kNever;           // the next device interrupt's arrival (MachineModel::irq_every)
  std::uint64_t irq_state = 0;        // splitmix64 state of this core's arrivals, from the seed
  std::uint64_t idle_exit_state = 0;  // splitmix64 state of its idle exits' spread, from the seed
  std::uint64_t context_switches = 0; // dispatches: each restores a context
};

// ---- Results ---------------------------------------------------------------------------------

struct IntervalRecord {
  std::uint32_t name;
  std::uint32_t thread; // the thread that ended it
  Cycles start, end;
  std::uint64_t bytes;
  std::uint32_t begun_by; // the thread that began it: another one for a keyed interval
};

// A line a script printed, stamped with the simulated time.
struct ConsoleLine {
  Cycles at;
  std::uint32_t thread;
  std::string text;
};

// Failed calls of one thread, per op and error.
struct FailureCount {
  std::uint32_t thread;
  std::uint16_t activity;
  int error;
  std::uint64_t count;
};

// The run's record for the summary: what the scripts printed, the closed intervals, the failed
// calls. A subscriber like any other (the kernel's first).
class RunRecord : public Observer {
public:
  void on_print(const Thread& thread, const std::string& text, Cycles at) override;
  void on_call_failed(const Thread& thread, std::uint16_t activity, int error, Cycles at) override;
  void on_interval(const Thread& thread, std::uint32_t name, Cycles start, Cycles end, std::uint64_t bytes,
                   std::uint32_t begun_by) override;
  // Cores run ahead of each other between synchronisations: put the console in time order.
  void finish();
  std::vector<ConsoleLine> console;
  std::vector<IntervalRecord> records;
  std::vector<FailureCount> failed; // in thread order, then first failure
};

// Kernel-wide state of one mechanism (its IPC namespace: System V queues, FIFOs by path,
// mailboxes): owned by the kernel, so it outlives the processes that created it.
struct IpcTable {
  std::string title; // "Message Queues"
  std::vector<std::string> columns;
  std::vector<std::vector<std::string>> rows;
};
// What a mechanism still holds on one object: messages none of whose bytes was received, and the
// bytes not received (of those messages and of messages read in part). Counted where the messages
// are: in queues and buffers, and in the hands of a woken receiver that has not taken them yet.
struct Held {
  std::string object; // as the flow events name it ("pipe 1", "msg queue 0")
  std::uint64_t messages = 0, bytes = 0;
};
class IpcState {
public:
  virtual ~IpcState() = default;
  // Live objects at the end of a run, as `ipcs` would list them.
  virtual void list(std::vector<IpcTable>&) const {}
  // The conservation invariant's one hook (sim/kernel/invariants.cpp): what this mechanism still
  // holds, per object (objects holding nothing may be left out). What it dropped, and why, it
  // reports as it drops (message_dropped, sim/kernel/ipc.hpp).
  virtual void held(std::vector<Held>&) const {}
};
std::size_t next_ipc_slot();

class Channel;

struct DeadlockReport {
  struct Waiter {
    std::string thread;
    std::string waits_on;
    Cycles since;
  };
  Cycles at = 0;
  std::vector<Waiter> waiters;
};

// A channel declared by the scenario: a name, the mechanism that carries it, its resolved
// parameters (checked against the mechanism's table at load time).
struct ChannelSpec {
  std::string name;
  std::string mechanism;
  json params;
};

// A machine as a scenario describes it, with the processes and channels it runs: everything one
// kernel needs. A scenario compiles into one or more (Scenario::machines).
struct MachineModel {
  std::string name = "machine"; // unique in the scenario
  std::size_t cores = 1;
  double hz = 1e9;
  CostModel costs;
  std::string scheduler_policy;
  json scheduler_params; // resolved policy parameters
  std::vector<std::unique_ptr<ProcessSpec>> processes;
  std::vector<std::string> interval_names;
  std::uint64_t seed = 0;
  // Each kernel cost charged is lengthened by a fraction drawn uniformly from [0, cost_jitter), from
  // the seed: real machines vary (caches, interrupts), and percentiles then mean something. 0: off.
  double cost_jitter = 0;
  // Device interrupts (a network card, a disk, housekeeping): each core takes one after a time drawn
  // from an exponential distribution of mean irq_every (a Poisson stream, from the seed; 0: none).
  // The thread running then pays timer_interrupt (entry and exit) and irq_handler cycles.
  Cycles irq_every = 0;
  Cycles irq_handler = 0;
  std::vector<ChannelSpec> channels;
  Limits limits{};               // what the run may create and spend (sim/common/limits.hpp)
  bool debug_invariants = false; // check the invariants at every dispatch, switch and wakeup (slow)
};

// ---- The kernel ------------------------------------------------------------------------------

class Kernel {
public:
  explicit Kernel(const MachineModel& model);
  ~Kernel();
  Kernel(const Kernel&) = delete;
  Kernel& operator=(const Kernel&) = delete;

  // A run on SimGrid: start() places the threads that start at time zero; then the engine runs
  // the cores (engine_machine(), beside other machines' in a Simulation) until every core ends.
  // run() does both for a kernel alone.
  void start();
  // After the run: checks its invariants (sim/kernel/invariants.hpp); a violation becomes the run's
  // error, "internal error: ...". Kernel::run and Simulation::run call it.
  void check_invariants();
  EngineMachine engine_machine();
  void run();
  bool done() const { return done_; }

  // Results.
  const MachineModel& model() const { return model_; }
  Cycles makespan() const { return end_time_; }
  const std::deque<Thread>& threads() const { return threads_; }
  const std::deque<Process>& processes() const { return processes_; }
  const std::vector<std::unique_ptr<Core>>& cores() const { return cores_; }
  const std::vector<IntervalRecord>& records() const { return record_.records; }
  const DeadlockReport* deadlock() const { return deadlock_ ? &*deadlock_ : nullptr; }
  const std::vector<ConsoleLine>& console() const { return record_.console; }
  const std::vector<FailureCount>& failed_calls() const { return record_.failed; }

  // Events: `observer` hears everything that happens from now on (it must outlive the run).
  void subscribe(Observer& observer) { observers_.push_back(&observer); }
  // Charges are the most frequent event: only these observers get on_charge (the statistics get
  // them from Kernel::charge directly).
  void subscribe_charges(Observer& observer) { charge_observers_.push_back(&observer); }
  const ThreadAccount& account(const Thread& thread) const { return statistics_.account(thread); }
  template <class Event> void notify(const Event& event) const {
    for (Observer* observer : observers_) event(*observer);
  }
  // A new message's id (1, 2, ...): what pairs its send and its receive for subscribers.
  std::uint64_t next_message_id() { return ++message_ids_; }
  // A script error found while running (an endless loop without simulated time): the run stops.
  const std::string& runtime_error() const { return runtime_error_; }
  // Every mechanism's state created so far (nullptr slots for mechanisms not used).
  const std::vector<std::unique_ptr<IpcState>>& ipc_states() const { return ipc_; }
  // The run's invariant checker (nullptr before the run starts).
  const InvariantChecker* invariants() const { return invariants_.get(); }
  std::vector<IpcTable> ipc_listing() const;

  // ---- The facade ops and mechanisms use (through OpContext). ----
  void charge(Core& core, Thread& thread, std::uint16_t activity, Primitive primitive, Cycles cycles);
  // Lets the cycles charged so far pass: the core's clock reaches the moment of the next action.
  // Only when another core may act before that moment does SimGrid's clock have to follow (a
  // sleep that lets it run first); otherwise the core just runs ahead. True when it slept, so
  // other cores may have changed shared state meanwhile.
  bool sync(Core& core);
  // The core's time: what has passed on it, and with the pending cycles.
  Cycles clock(const Core& core) const { return core.time; }
  Cycles now(const Core& core) const { return clock(core) + core.pending; }
  // Puts the running thread on `queue` (or none: a plain sleep); with a timeout, a timer wakes it
  // with WaitResult::TimedOut. The op then returns Step::Block; it runs again once woken.
  void block(Core& core, Thread& thread, WaitQueue* queue, Cycles timeout = kNever);
  // Makes a blocked thread ready (charging `wakeup` to `waker`'s activity, or to the woken thread
  // when an interrupt does it). Returns false when it was not blocked.
  bool wake(Core& core, Thread& thread, Thread* waker, std::uint16_t activity, WaitResult result);
  Thread* wake_one(Core& core, WaitQueue& queue, Thread* waker, std::uint16_t activity);
  // Moves a thread blocked on a wait queue to the tail of `to`, still asleep, its timeout kept
  // (FUTEX_REQUEUE). False when it was not blocked on a queue.
  bool move_waiter(Thread& thread, WaitQueue& to);
  std::size_t wake_all(Core& core, WaitQueue& queue, Thread* waker, std::uint16_t activity);
  void arm_timer(Core& core, Thread& thread, Cycles when, bool arrival = false);
  // Runs call.fire at time `when` on `core`, charging timer_interrupt to `owner`. The owner must
  // outlive the timer: cancel it when the owner's process exits.
  void arm_call(Core& core, Thread& owner, Cycles when, TimerCall& call);
  void cancel_call(TimerCall& call);
  // Direct switch (L4's fast path, ChCore's ipc_call): the running thread gives this core to
  // `next`, a blocked thread, without the scheduler's pick: `next` runs here at once. The switch
  // charges context_save and context_restore (and an address-space switch when the spaces
  // differ), leaves the run queues untouched and counts a context switch. The running thread
  // leaves as `leaving`: Blocked (it must already be on a wait queue, or timed) or Ready (to the
  // back of this core's run queue). The op then returns Step::Switched. False, and nothing done,
  // when `next` is no longer asleep (another core's wake got to it first): the op goes on as if it
  // had found no sleeper.
  bool direct_switch(OpContext& ctx, Thread& next, ThreadState leaving);
  // Runs `program` on the running thread on top of its current frame, in `space` (a handler in its
  // own space; the server half of a migrating call in the server's): the core loads the space if
  // it is not loaded (address_space_switch, and TLB refills when untagged), charged to `activity`.
  // When the program ends, the thread returns to the interrupted frame and its space, intact.
  void push_frame(OpContext& ctx, const Program& program, AddressSpace& space, std::uint16_t activity);
  // Makes `target` look at the world again at `from`'s time, without an interrupt's cost: a store
  // seen by a thread spinning there through the cache (its compute ends, its op runs again).
  void poke(Core& from, Core& target);
  // Work done when a thread with Thread::signal_pending returns to user mode, at its next op
  // boundary (Linux's exit_to_user_mode_loop; signal delivery in models/signal.cpp). It returns
  // what the thread does next: Continue (its next op, or a pushed frame's first), Block (it was put
  // to sleep with block()), or Exit.
  class UserReturnWork {
  public:
    virtual ~UserReturnWork() = default;
    virtual Step on_user_return(OpContext& ctx) = 0;
  };
  void set_user_return_work(UserReturnWork& work) { user_return_work_ = &work; }
  // The running thread's blocking call is held by `holder` until the call ends.
  void hold_call(Thread& thread, CallHolder& holder) { thread.call = &holder; }
  // Ends a blocked thread's wait at once: its holder cancels the call, and the call fails with
  // EINTR (wait_on reports it). False when the thread was not asleep (already being woken too).
  bool interrupt(OpContext& ctx, Thread& thread, std::uint16_t activity);
  // `begun_by`: the thread that began the interval (a keyed interval ends in another thread).
  void record_interval(const Thread& thread, std::uint32_t name, Cycles start, Cycles end,
                       std::uint64_t bytes, std::uint32_t begun_by) {
    if (!add_output(thread, kIntervalOutputBytes)) return;
    notify([&](Observer& o) { o.on_interval(thread, name, start, end, bytes, begun_by); });
  }
  static constexpr std::uint64_t kIntervalOutputBytes = 64; // what an interval counts against output_bytes
  Process* find_process(const std::string& spec_name, std::uint32_t copy);
  WaitQueue& exit_queue(Process& process);
  Scheduler& scheduler() { return *scheduler_; }
  void print(Cycles at, const Thread& thread, const std::string& text) {
    if (!add_output(thread, text.size() + 1)) return;
    notify([&](Observer& o) { o.on_print(thread, text, at); });
  }
  // Creates a process from a `spawned` spec at run time with the given descriptors (fork + exec).
  Process& spawn(OpContext& ctx, const ProcessSpec& spec, std::vector<Descriptor> fds);
  // Creates a thread of `process` at run time (clone with CLONE_THREAD, as pthread_create does),
  // running `spec`'s program in the process's address space, ready at once. Charged to `activity`
  // (the clone's kernel work; the caller charges its trap): copy_process's slab_alloc (the
  // task_struct) and page_alloc (the kernel stack), wake_up_new_task's wakeup. nullptr, charging
  // nothing, past the run's thread limit (clone's EAGAIN). `spec` must outlive the run. A `service` thread (a
  // C library's helper, such as glibc's mq_notify thread) does not keep its process alive: when only service
  // threads are left, they are woken and must end (as exit() ends every thread), which they see as
  // Process::only_service_threads_left().
  Thread* create_thread(OpContext& ctx, Process& process, const ThreadSpec& spec, std::uint16_t activity,
                        bool service = false);
  // Whether one more copy of `spec` stays within the run's process and thread limits (fork gives
  // EAGAIN past them). Exited processes count: their records stay for the report.
  bool may_spawn(const ProcessSpec& spec) const;
  // A mechanism is about to create an IPC object (a pipe, a queue, a socket, a mailbox...): false,
  // with the run stopped, past the run's limit. The op then returns Step::Exit.
  bool new_ipc_object(OpContext& ctx, const std::string& what);
  // The time at which the run stops: the clock's exact range, or --max-time when sooner.
  Cycles time_limit() const;
  // Cycles of a dispatch and the switch before it, with the largest working set (messages).
  static Cycles switch_cycles(const MachineModel& model);
  // Terminates every thread of `process` by `signal`; the caller, if it is one of them, must
  // return Step::Exit. Others exit at their next op boundary.
  void kill_process(OpContext& ctx, Process& process, int signal, std::uint16_t activity);
  // Drops a descriptor; the last close of an open file runs its on_last_close.
  void close_descriptor(OpContext& ctx, Process& process, std::size_t index, std::uint16_t activity);
  // Stops the run with an error (runtime_error()): "THREAD: MESSAGE", or MESSAGE for the machine's own.
  void abort_run(const Thread& thread, const std::string& message);
  // The per-kernel state of mechanism T (an IpcState), created on first use.
  template <class T> T& ipc() {
    static const std::size_t slot = next_ipc_slot();
    if (ipc_.size() <= slot) ipc_.resize(slot + 1);
    if (!ipc_[slot]) ipc_[slot] = std::make_unique<T>(*this);
    return static_cast<T&>(*ipc_[slot]);
  }
  Channel& channel(std::size_t index) { return *channels_[index]; }

  void core_main(std::size_t index);

private:
  void fire_timers(Core& core);
  // The device interrupts due on `core` (MachineModel::irq_every).
  void take_interrupts(Core& core);
  Cycles next_irq_gap(Core& core);
  // What leaving idle after `idle_for` cycles costs this time: the idle state's latency, spread by
  // the preset's idle_exit_spread (a log-normal draw from the core's own stream, from the seed).
  Cycles idle_exit_draw(Core& core, Cycles idle_for);
  void dispatch(Core& core, Thread& thread, bool picked);
  void switch_out(Core& core, ThreadState to);
  void preempt(Core& core);
  void tick(Core& core);
  void run_current(Core& core);
  void run_compute(Core& core, Thread& thread, Cycles cycles);
  void go_idle(Core& core);
  void exit_thread(Core& core, Thread& thread);
  // A thread of `process` running `spec`'s script: its fields and the live counts, as the
  // scenario's first threads and the ones a script creates share them.
  Thread& new_thread(Process& process, const ThreadSpec& spec, std::uint32_t copy);
  void add_threads(Process& process);
  void make_ready(Core& waker_core, Thread& thread, Thread* waker, std::uint16_t activity, int reason);
  Core& choose_core(const Thread& thread);
  bool allowed(const Thread& thread, std::size_t core) const;
  bool is_free(const Core& core) const;
  void set_state(Thread& thread, ThreadState state, Cycles at);
  void finish(Core& core, bool deadlocked);
  Cycles next_timer(Core& core);
  // The earliest time at which another core may touch shared state; `strict`: act at all.
  Cycles horizon(const Core& core, bool strict = false) const;
  // Lets every core due at or before this core's time act first (before it reads or changes what
  // they could): parks it at its time.
  void let_others_pass(Core& core);
  // Hands the run to the earliest parked core when that one is due no later than this core's
  // resume_at, and returns when handed it back; false when this core was the earliest.
  bool park(Core& core);
  // Waits until `deadline` or a ring: true when rung.
  bool wait_doorbell(Core& core, Cycles deadline);
  // Stops the run: its clock would pass what reports count exactly (kClockLimitCycles).
  void stop_at_clock_limit(Core& core);
  void abort_run(Core& core, const std::string& message);
  // Counts `bytes` of recorded output against the limit; false, with the run stopped, past it.
  bool add_output(const Thread& thread, std::uint64_t bytes);
  // Counts an event (an op executed, a dispatch) against the event limit and, now and then, the
  // wall clock against the timeout; false, with the run stopped, past either.
  bool count_event(Core& core);
  // A dispatch that ends before its thread runs anything (the slice is over before the switch in
  // is paid for): many in a row with no progress anywhere is a livelock.
  void note_progress() { dispatches_without_progress_ = 0; }
  void stop_livelock(Core& core);

  const MachineModel& model_;
  std::vector<std::unique_ptr<Core>> cores_;
  std::unique_ptr<Scheduler> scheduler_;
  std::deque<Process> processes_;
  std::deque<Thread> threads_;
  RunRecord record_;
  Statistics statistics_;
  std::vector<Observer*> observers_;
  std::vector<Observer*> charge_observers_;
  UserReturnWork* user_return_work_ = nullptr;
  std::uint64_t message_ids_ = 0;
  std::uint64_t jitter_state_ = 0; // splitmix64 state for cost_jitter, from the seed
  std::optional<DeadlockReport> deadlock_;
  std::string runtime_error_;
  std::vector<std::unique_ptr<IpcState>> ipc_;
  std::deque<AddressSpace> spaces_;
  AddressSpace& new_space(const Process& process);
  void load_space(Core& core, Thread& thread, std::uint16_t activity);
  std::vector<std::unique_ptr<Channel>> channels_;
  std::vector<std::uint32_t> spawn_counts_; // per process spec
  std::size_t running_cores_ = 0;           // cores not idle
  bool cores_start_parked_ = false;         // every core but the first waits for the run at start
  std::size_t live_timers_ = 0;
  std::size_t live_threads_ = 0;
  std::uint64_t timer_seq_ = 0;
  bool done_ = false;
  std::unique_ptr<InvariantChecker> invariants_;
  Cycles end_time_ = 0;
  // Limits (model_.limits) and progress.
  std::uint64_t output_bytes_ = 0;
  std::uint64_t events_ = 0;
  std::uint64_t ipc_objects_ = 0;
  std::uint64_t dispatches_without_progress_ = 0;
  Cycles max_time_cycles_ = kNever;
  double wall_deadline_ = 0; // steady-clock seconds; 0: none
};

// What an op sees of the machine while it runs: a narrow facade over the kernel.
struct OpContext {
  Kernel& kernel;
  Core& core;
  Thread& thread;
  Cycles compute = 0; // set by ops returning Step::Compute

  void charge(std::uint16_t activity, Primitive p) { charge(activity, p, kernel.model().costs.cycles(p)); }
  void charge(std::uint16_t activity, Primitive p, Cycles cycles) {
    kernel.charge(core, thread, activity, p, cycles);
  }
  // Entering and leaving a system call: trap_enter + syscall_dispatch, and trap_exit.
  void enter_syscall(std::uint16_t activity) {
    Cycles at = now();
    kernel.notify([&](Observer& o) { o.on_syscall_enter(core, thread, activity, at); });
    charge(activity, Primitive::trap_enter);
    charge(activity, Primitive::syscall_dispatch);
  }
  void leave_syscall(std::uint16_t activity) {
    charge(activity, Primitive::trap_exit);
    Cycles at = now();
    kernel.notify([&](Observer& o) { o.on_return_to_user(core, thread, activity, at); });
  }
  // The first run of a system call's body (SyscallOp): not a retry, not a run after a wait. The
  // kernel's entry work (fdget, ipc_obtain_object_check, ipcperms ...) is charged then only, as
  // Linux loops inside the call without redoing it.
  bool first_run() const { return thread.phase == 1; }
  // The first run, or the first after a wait: Linux takes the object's lock (and, System V, checks
  // permissions) again after every sleep.
  bool resumed() const { return thread.phase == 1 || thread.phase == 3; }
  // The first run after a wait: the call slept and was woken (or timed out) since it last ran.
  bool after_wait() const { return thread.phase == 3; }
  bool sync() { return kernel.sync(core); }
  Cycles now() const { return kernel.now(core); }
  // The outcome of a system call, as the script sees it.
  void succeed(std::int64_t value = 0) {
    thread.result = value;
    thread.error = 0;
  }
  void fail(std::uint16_t activity, int error);
};

} // namespace ipcsim
