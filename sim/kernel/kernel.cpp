#include "kernel.hpp"

#include "invariants.hpp"
#include "ipc.hpp"
#include "sched.hpp"

#include <algorithm>
#include <cassert>
#include <chrono>
#include <cmath>
#include <utility>

namespace ipcsim {

// ---- Activities ------------------------------------------------------------------------------

namespace {
std::vector<std::string>& mutable_activities() {
  static std::vector<std::string> names{"dispatch", "tick", "timer", "exit", "irq"};
  return names;
}
} // namespace

const std::vector<std::string>& activity_names() { return mutable_activities(); }

std::uint16_t register_activity(const std::string& name) {
  auto& names = mutable_activities();
  for (std::size_t i = 0; i < names.size(); ++i)
    if (names[i] == name) return static_cast<std::uint16_t>(i);
  names.push_back(name);
  assert(names.size() <= (1u << Charge::kActivityBits)); // an activity must fit a Charge
  return static_cast<std::uint16_t>(names.size() - 1);
}

// ---- Script state and descriptors ------------------------------------------------------------

Value* ScriptLocals::find(Symbol name) {
  for (auto& [n, v] : vars)
    if (n == name) return &v;
  return nullptr;
}

void ScriptLocals::set(Symbol name, Value value) {
  if (Value* v = find(name))
    *v = std::move(value);
  else
    vars.emplace_back(name, std::move(value));
}

void Thread::push_frame(const Program& next, AddressSpace& in) {
  interrupted.push_back({program, space, pc, phase, compute_left, std::move(loops), op_progress, op_deadline,
                         op_nonblocking, result, error});
  program = &next;
  space = &in;
  pc = 0;
  phase = 0;
  compute_left = 0;
  loops.clear();
  op_progress = 0;
  op_deadline = kNever;
  op_nonblocking = false;
}

void Thread::pop_frame() {
  assert(!interrupted.empty());
  Frame& f = interrupted.back();
  program = f.program;
  space = f.space;
  pc = f.pc;
  phase = f.phase;
  compute_left = f.compute_left;
  loops = std::move(f.loops);
  op_progress = f.op_progress;
  op_deadline = f.op_deadline;
  op_nonblocking = f.op_nonblocking;
  result = f.result;
  error = f.error;
  interrupted.pop_back();
}

ScriptLocals& Thread::script_locals() {
  if (!locals) locals = std::make_unique<ScriptLocals>();
  return *locals;
}

Descriptor* Process::find_fd(Symbol name) {
  for (auto& d : fds)
    if (d.name == name) return &d;
  return nullptr;
}

std::size_t next_ipc_slot() {
  static std::size_t next = 0;
  return next++;
}

// ---- The run's record -----------------------------------------------------------------------

void RunRecord::on_print(const Thread& thread, const std::string& text, Cycles at) {
  console.push_back({at, thread.id, text});
}

void RunRecord::on_call_failed(const Thread& thread, std::uint16_t activity, int error, Cycles) {
  for (auto& f : failed)
    if (f.thread == thread.id && f.activity == activity && f.error == error) {
      ++f.count;
      return;
    }
  failed.push_back({thread.id, activity, error, 1});
}

void RunRecord::on_interval(const Thread& thread, std::uint32_t name, Cycles start, Cycles end,
                            std::uint64_t bytes, std::uint32_t begun_by) {
  records.push_back({name, thread.id, start, end, bytes, begun_by});
}

void RunRecord::finish() {
  std::stable_sort(console.begin(), console.end(),
                   [](const ConsoleLine& a, const ConsoleLine& b) { return a.at < b.at; });
  std::stable_sort(failed.begin(), failed.end(),
                   [](const FailureCount& a, const FailureCount& b) { return a.thread < b.thread; });
}

// ---- Names -----------------------------------------------------------------------------------

// A spawned process is NAME for its first spawn and NAME[k] for the k-th after it.
std::string Process::display_name() const {
  bool numbered = spec->count > 1 || (spec->spawned && copy > 0);
  return numbered ? spec->name + "[" + std::to_string(copy) + "]" : spec->name;
}

std::string Thread::display_name() const {
  // Appended piece by piece: GCC 12 at -O3 warns (-Wrestrict) about `name += "/" + spec->name`.
  std::string name = process->display_name();
  // A thread created at run time is NAME for the first of its spec in the process, NAME[k] after.
  bool later = id >= process->first_thread + process->thread_count;
  if (process->spec->threads.size() > 1 || spec->count > 1 || later) {
    name.append("/").append(spec->name);
    if (spec->count > 1 || (later && copy > 0)) name.append("[").append(std::to_string(copy)).append("]");
  }
  return name;
}

// ---- Construction ----------------------------------------------------------------------------

Kernel::Kernel(const MachineModel& model) : model_(model), jitter_state_(model.seed ^ 0x6A09E667F3BCC909ull) {
  subscribe(statistics_); // its charges come through Kernel::charge directly
  subscribe(record_);
  for (std::size_t i = 0; i < model.cores; ++i) {
    cores_.push_back(std::make_unique<Core>());
    Core& core = *cores_.back();
    core.index = i;
    // Each core its own stream, so that one core's arrivals do not depend on another's events.
    core.irq_state = model.seed ^ (0xD1B54A32D192ED03ull * (i + 1));
    core.idle_exit_state = model.seed ^ (0x8CB92BA72F3D8DD7ull * (i + 1));
    if (model.irq_every > 0) core.next_irq = next_irq_gap(core);
  }
  scheduler_ = find_scheduler(model.scheduler_policy)->make(model.cores, model.scheduler_params, model.hz);
  spawn_counts_.assign(model.processes.size(), 0);
  for (const auto& spec : model.processes) {
    if (spec->spawned) continue;
    for (std::uint32_t copy = 0; copy < spec->count; ++copy) {
      Process& process = processes_.emplace_back();
      process.id = static_cast<std::uint32_t>(processes_.size() - 1);
      process.pid = 100 + process.id;
      process.pgid = process.pid; // each one its own group, as a shell starts each job
      process.sid = kShellPid;
      process.copy = copy;
      process.spec = spec.get();
      process.space = &new_space(process);
      add_threads(process);
    }
  }
  statistics_.reserve(threads_.size());
  for (const auto& spec : model.channels)
    channels_.push_back(find_mechanism(spec.mechanism)->make(spec, *this));
}

void Kernel::add_threads(Process& process) {
  process.first_thread = static_cast<std::uint32_t>(threads_.size());
  for (const auto& thread_spec : process.spec->threads) {
    for (std::uint32_t thread_copy = 0; thread_copy < thread_spec.count; ++thread_copy) {
      new_thread(process, thread_spec, thread_copy);
      ++process.thread_count;
    }
  }
}

Thread& Kernel::new_thread(Process& process, const ThreadSpec& spec, std::uint32_t copy) {
  Thread& thread = threads_.emplace_back();
  thread.id = static_cast<std::uint32_t>(threads_.size() - 1);
  thread.copy = copy;
  thread.process = &process;
  thread.spec = &spec;
  thread.program = spec.program.get();
  thread.space = process.space;
  thread.priority = spec.priority;
  ++process.live_threads;
  ++live_threads_;
  return thread;
}

Kernel::~Kernel() = default;

AddressSpace& Kernel::new_space(const Process& process) {
  AddressSpace& space = spaces_.emplace_back();
  space.id = static_cast<std::uint32_t>(spaces_.size() - 1);
  space.owner = process.display_name();
  space.working_set_pages = process.spec->working_set_pages;
  if (space.working_set_pages > 0)
    space.mappings.push_back({"working set", 0, space.working_set_pages, false, ""});
  return space;
}

// ---- Processes at run time -------------------------------------------------------------------

// fork + exec: the kernel copies the page tables of the working set (map_page per page) and the
// descriptor table; the child's threads start ready.
Process& Kernel::spawn(OpContext& ctx, const ProcessSpec& spec, std::vector<Descriptor> fds) {
  std::size_t spec_index = 0;
  while (model_.processes[spec_index].get() != &spec) ++spec_index;
  Process& process = processes_.emplace_back();
  process.id = static_cast<std::uint32_t>(processes_.size() - 1);
  process.pid = 100 + process.id;
  process.copy = spawn_counts_[spec_index]++;
  process.parent_pid = ctx.thread.process->pid;
  process.pgid = ctx.thread.process->pgid; // fork: the parent's group and session
  process.sid = ctx.thread.process->sid;
  process.spec = &spec;
  process.space = &new_space(process);
  process.fds = std::move(fds);
  for (auto& d : process.fds) ++d.file->refs;
  add_threads(process);
  notify([&](Observer& o) { o.on_process_spawn(ctx, *ctx.thread.process, process); });
  ctx.sync();
  for (std::uint32_t i = 0; i < process.thread_count; ++i) {
    Thread& thread = threads_[process.first_thread + i];
    thread.state_since = clock(ctx.core);
    make_ready(ctx.core, thread, &ctx.thread, ctx.thread.program->ops[ctx.thread.pc]->activity,
               static_cast<int>(EnqueueReason::New));
  }
  return process;
}

Thread* Kernel::create_thread(OpContext& ctx, Process& process, const ThreadSpec& spec,
                              std::uint16_t activity, bool service) {
  if (threads_.size() + 1 > model_.limits.threads) return nullptr;
  ctx.charge(activity, Primitive::slab_alloc); // dup_task_struct
  ctx.charge(activity, Primitive::page_alloc); // its kernel stack
  ctx.charge(activity, Primitive::wakeup);     // wake_up_new_task
  std::uint32_t copy = 0;
  for (std::uint32_t id : process.later_threads) // numbered by name: two specs may share one
    if (threads_[id].spec->name == spec.name) ++copy;
  Thread& thread = new_thread(process, spec, copy);
  thread.service = service;
  process.later_threads.push_back(thread.id);
  if (service) ++process.service_threads;
  ctx.sync();
  thread.state_since = clock(ctx.core);
  make_ready(ctx.core, thread, &ctx.thread, activity, static_cast<int>(EnqueueReason::New));
  return &thread;
}

void Kernel::kill_process(OpContext& ctx, Process& process, int signal, std::uint16_t activity) {
  if (process.killed_by) return;
  process.killed_by = signal;
  ctx.sync();
  for (std::uint32_t i = 0; i < process.threads_total(); ++i) {
    Thread& thread = threads_[process.thread_id(i)];
    // Its call never completes (blocked, or woken but not yet run again): the mechanism holding it
    // undoes it now. The thread exits at its next op boundary.
    if (CallHolder* holder = std::exchange(thread.call, nullptr)) holder->cancel(ctx, thread, activity);
    if (thread.state == ThreadState::Blocked)
      wake(ctx.core, thread, &ctx.thread, activity, WaitResult::Woken);
  }
}

void Kernel::close_descriptor(OpContext& ctx, Process& process, std::size_t index, std::uint16_t activity) {
  std::shared_ptr<OpenFile> file = std::move(process.fds[index].file);
  process.fds.erase(process.fds.begin() + static_cast<std::ptrdiff_t>(index));
  file->on_close(ctx, process);
  if (--file->refs == 0) file->on_last_close(ctx, activity);
}

void Kernel::abort_run(const Thread& thread, const std::string& message) {
  abort_run(*cores_[static_cast<std::size_t>(std::max(thread.last_core, 0))],
            thread.display_name() + ": " + message);
}

void Kernel::abort_run(Core& core, const std::string& message) {
  if (runtime_error_.empty()) runtime_error_ = message;
  finish(core, false);
}

// SimGrid's clock cannot count single cycles past kClockLimitCycles: a run that would go further
// stops, before its clock rounds (a compute op of 2^53 + 1 cycles used to spin there forever). A
// run stops the same way at --max-time.
void Kernel::stop_at_clock_limit(Core& core) {
  if (max_time_cycles_ < kClockLimitCycles) {
    abort_run(core, "simulated time would pass " + std::to_string(max_time_cycles_) + " cycles (\"" +
                        format_duration(max_time_cycles_, model_.hz) + "\" at " + format_hz(model_.hz) +
                        "), the run's limit of simulated time; the run stops there" + limit_hint("max_time"));
    return;
  }
  abort_run(core, "simulated time would pass " + std::to_string(kClockLimitCycles) + " cycles (\"" +
                      format_duration(kClockLimitCycles, model_.hz) + "\" at " + format_hz(model_.hz) +
                      "), the most the simulator's clock counts exactly; the run stops there");
}

Cycles Kernel::time_limit() const { return std::min(kClockLimitCycles, max_time_cycles_); }

bool Kernel::add_output(const Thread& thread, std::uint64_t bytes) {
  output_bytes_ += bytes;
  if (output_bytes_ <= model_.limits.output_bytes) return true;
  abort_run(thread, "the run recorded more than " + limit_value_text(model_.limits, "output_bytes") +
                        " of output (printed lines, measured intervals)" + limit_hint("output_bytes"));
  return false;
}

bool Kernel::count_event(Core& core) {
  ++events_;
  if (events_ > model_.limits.events) {
    abort_run(core, "the run took more than " + std::to_string(model_.limits.events) +
                        " events (ops executed and dispatches), at cycle " + std::to_string(clock(core)) +
                        limit_hint("events"));
    return false;
  }
  if (wall_deadline_ > 0 && (events_ & 0xfff) == 0) {
    double now = std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
    if (now > wall_deadline_) {
      abort_run(core, "the run took more than " + limit_value_text(model_.limits, "timeout") +
                          " of wall-clock time, at cycle " + std::to_string(clock(core)) +
                          limit_hint("timeout"));
      return false;
    }
  }
  return true;
}

Cycles Kernel::switch_cycles(const MachineModel& model) {
  const CostModel& costs = model.costs;
  std::uint64_t pages = 0;
  for (const auto& spec : model.processes) pages = std::max<std::uint64_t>(pages, spec->working_set_pages);
  Cycles total = costs.cycles(Primitive::timer_interrupt) + costs.cycles(Primitive::context_save) +
                 costs.cycles(Primitive::sched_pick) + costs.cycles(Primitive::context_restore);
  if (model.processes.size() > 1 || (!model.processes.empty() && model.processes.front()->count > 1))
    total += costs.cycles(Primitive::address_space_switch) +
             (costs.tagged_tlb ? 0 : costs.cycles(Primitive::tlb_refill_per_page) * pages);
  return total;
}

void Kernel::stop_livelock(Core& core) {
  // The setting that bounds a slice: the policy's quantum, or eevdf's tick.
  const char* setting = model_.scheduler_params.contains("tick") ? "tick" : "quantum";
  std::string quantum = model_.scheduler_params.contains(setting)
                            ? " (" + model_.scheduler_params.at(setting).dump() + ")"
                            : "";
  abort_run(core, "no progress: the last " + std::to_string(dispatches_without_progress_) +
                      " dispatches each ended before their thread ran a single op, the time slice spent on "
                      "switching in (a switch costs up to " +
                      std::to_string(switch_cycles(model_)) +
                      " cycles here: timer_interrupt, context_save, sched_pick, context_restore, and between "
                      "processes address_space_switch and, with an untagged TLB, tlb_refill_per_page per "
                      "working-set page); raise machine.scheduler." +
                      std::string(setting) + quantum +
                      " well above that, or lower working_set_pages or the switch costs");
}

bool Kernel::may_spawn(const ProcessSpec& spec) const {
  std::uint64_t threads = 0;
  for (const auto& t : spec.threads) threads += t.count;
  return processes_.size() + 1 <= model_.limits.processes &&
         threads_.size() + threads <= model_.limits.threads;
}

bool Kernel::new_ipc_object(OpContext& ctx, const std::string& what) {
  if (++ipc_objects_ <= model_.limits.ipc_objects) return true;
  abort_run(ctx.thread, "creating " + what + ": the run created more than " +
                            std::to_string(model_.limits.ipc_objects) + " IPC objects" +
                            limit_hint("ipc_objects"));
  return false;
}

std::vector<IpcTable> Kernel::ipc_listing() const {
  std::vector<IpcTable> tables;
  for (const auto& state : ipc_)
    if (state) state->list(tables);
  return tables;
}

void Kernel::start() {
  // Threads that start at time zero are placed before the cores start; later arrivals are timers
  // on the first core they may use.
  for (auto& thread : threads_) {
    const ProcessSpec& spec = *thread.process->spec;
    if (spec.arrival == 0) {
      Core& core = choose_core(thread);
      set_state(thread, ThreadState::Ready, 0);
      scheduler_->enqueue(core.index, thread, EnqueueReason::New, 0);
    } else {
      std::size_t first = spec.affinity.empty() ? 0 : spec.affinity.front();
      arm_timer(*cores_[first], thread, spec.arrival, true);
    }
  }
  running_cores_ = cores_.size();
  invariants_ = std::make_unique<InvariantChecker>(*this, model_.debug_invariants);
  subscribe(*invariants_);
  if (model_.limits.max_time_seconds > 0) {
    double cycles = model_.limits.max_time_seconds * model_.hz;
    max_time_cycles_ =
        cycles >= static_cast<double>(kClockLimitCycles) ? kNever : static_cast<Cycles>(cycles);
  }
  if (model_.limits.timeout_seconds > 0)
    wall_deadline_ =
        std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count() +
        model_.limits.timeout_seconds;
  if (live_threads_ == 0) done_ = true;
  // Every core starts at time 0: all but the first are parked until handed the run.
  cores_start_parked_ = !done_;
  for (std::size_t i = 1; i < cores_.size() && cores_start_parked_; ++i) cores_[i]->parked = true;
}

EngineMachine Kernel::engine_machine() {
  return {model_.name, cores_.size(), [this](std::size_t index) { core_main(index); }};
}

void Kernel::run() {
  start();
  engine_run({engine_machine()});
  assert(done_);
  check_invariants();
}

void Kernel::check_invariants() {
  if (!invariants_) return;
  std::string broken = invariants_->check_end();
  if (broken.empty() || runtime_error_.find(broken) != std::string::npos) return; // stopped for it already
  std::string message = "internal error: the simulator broke an invariant (please report it): " + broken;
  runtime_error_ = runtime_error_.empty() ? message : runtime_error_ + "; and " + message;
}

// ---- Accounting ------------------------------------------------------------------------------

namespace {
// Pending cycles stop growing past the clock limit (the next sync stops the run anyway), so that
// sums of charges and clock values never wrap around.
constexpr Cycles kPendingCap = kClockLimitCycles + 1;
Cycles capped_sum(Cycles a, Cycles b) {
  return b >= kPendingCap - std::min(a, kPendingCap) ? kPendingCap : a + b;
}
} // namespace

void Kernel::charge(Core& core, Thread& thread, std::uint16_t activity, Primitive primitive, Cycles cycles) {
  if (cycles == 0) return;
  // Jitter only lengthens a cost: the lookahead (docs/architecture.md) counts on the least a
  // dispatch costs, so a cost is never made shorter than the preset says.
  if (model_.cost_jitter > 0 && primitive < Primitive::count && cycles < kMaxTimeCycles) {
    std::uint64_t z = (jitter_state_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    double fraction = static_cast<double>(z >> 11) * 0x1.0p-53 * model_.cost_jitter;
    cycles += static_cast<Cycles>(static_cast<double>(cycles) * fraction + 0.5);
  }
  core.pending = capped_sum(core.pending, cycles);
  if (invariants_) invariants_->on_core_charge(core, cycles);
  auto prim = static_cast<std::uint8_t>(primitive);
  statistics_.add_charge(thread.id, activity, prim, cycles);
  for (Observer* observer : charge_observers_) observer->on_charge(thread, activity, prim, cycles);
}

// Synchronisation by hand-off (conservative discrete-event simulation without timed actions).
// One core of a machine runs at a time; every other is parked with the time it next acts. The
// running core goes on while its time stays below the moment any parked core next touches shared
// state, since nothing it could observe happens meanwhile; at or past it, it parks at its own time
// and hands the run to the earliest parked core (Kernel::park). On one core it never has to. Cores
// due at the same time act in core order: core 0 first.
bool Kernel::sync(Core& core) {
  // Other cores may act here: a kernel-object lock must be released first (sim/kernel/lock.hpp).
  assert(core.locks_held == 0 && "a kernel-object lock held across a sync");
  if (core.pending == 0) return false;
  Cycles pending = core.pending;
  core.pending = 0;
  if (pending > time_limit() - std::min(clock(core), time_limit())) {
    stop_at_clock_limit(core);
    return true;
  }
  core.busy_cycles += pending;
  core.time += pending;
  if (clock(core) < horizon(core)) return false;
  let_others_pass(core);
  return true;
}

Cycles Kernel::horizon(const Core& core, bool strict) const {
  Cycles earliest = kNever;
  for (const auto& other : cores_)
    if (other.get() != &core) earliest = std::min(earliest, strict ? other->resume_at : other->shared_from);
  return earliest;
}

void Kernel::let_others_pass(Core& core) {
  core.resume_at = core.shared_from = clock(core);
  park(core);
}

bool Kernel::park(Core& core) {
  Core* next = nullptr; // the earliest parked core; cores_ is in index order, so ties go to the lowest
  for (const auto& other : cores_)
    if (other.get() != &core && other->parked && (!next || other->resume_at < next->resume_at))
      next = other.get();
  if (!next || next->resume_at == kNever || next->resume_at > core.resume_at ||
      (next->resume_at == core.resume_at && next->index > core.index))
    return false;
  core.parked = true;
  next->parked = false;
  next->doorbell.ring();
  core.doorbell.wait();
  return true;
}

// A ring says the time it was sent: never earlier than this core's time when it parked (the ringer
// could not act before it, see make_ready).
bool Kernel::wait_doorbell(Core& core, Cycles deadline) {
  // Never past the clock's exact range: reaching it unrung ends the run there.
  const Cycles limit = time_limit();
  const bool capped = deadline != kNever && deadline > limit;
  if (capped) deadline = limit;
  const Cycles from = clock(core);
  if (!core.rung) {
    core.resume_at = core.shared_from = deadline;
    if (!park(core) && deadline == kNever) { // nothing could ever wake this core: a simulator bug
      assert(false && "every core waits forever");
      finish(core, true);
      return false;
    }
  }
  const bool rung = std::exchange(core.rung, false);
  core.time = std::max(from, rung ? core.rung_at : deadline);
  if (capped && !rung && !done_) stop_at_clock_limit(core);
  return rung;
}

void Kernel::set_state(Thread& thread, ThreadState state, Cycles at) {
  notify([&](Observer& o) { o.on_thread_state(thread, thread.state, state, thread.waiting_on, at); });
  thread.state = state;
  thread.state_since = at;
}

// ---- Placement and wakeups -------------------------------------------------------------------

bool Kernel::allowed(const Thread& thread, std::size_t core) const {
  const auto& affinity = thread.process->spec->affinity;
  return affinity.empty() || std::find(affinity.begin(), affinity.end(), core) != affinity.end();
}

// A core is free when it runs nothing and has nothing queued: idle, or on its way there.
bool Kernel::is_free(const Core& core) const {
  return core.idle || (!core.current && scheduler_->queued(core.index) == 0);
}

// A woken thread goes to its last core if that is free, else to any free core it may use, else
// back to its last core (its cache is there); a thread that never ran goes to the least loaded.
Core& Kernel::choose_core(const Thread& thread) {
  if (thread.last_core >= 0 && is_free(*cores_[thread.last_core])) return *cores_[thread.last_core];
  for (auto& core : cores_)
    if (is_free(*core) && allowed(thread, core->index)) return *core;
  if (thread.last_core >= 0) return *cores_[thread.last_core];
  Core* best = nullptr;
  std::size_t best_load = 0;
  for (auto& core : cores_) {
    if (!allowed(thread, core->index)) continue;
    std::size_t load = scheduler_->queued(core->index) + (core->current ? 1 : 0);
    if (!best || load < best_load) best = core.get(), best_load = load;
  }
  return *best;
}

void Kernel::make_ready(Core& waker_core, Thread& thread, Thread* waker, std::uint16_t activity, int reason) {
  // Placement reads every core's state and the target's run queue: no core may act before this.
  if (clock(waker_core) >= horizon(waker_core, true)) let_others_pass(waker_core);
  Core& target = choose_core(thread);
  Cycles at = clock(waker_core);
  set_state(thread, ThreadState::Ready, at);
  scheduler_->enqueue(target.index, thread, static_cast<EnqueueReason>(reason), at);
  bool remote = &target != &waker_core;
  Thread& payer = waker ? *waker : thread;
  bool interrupt = false;
  bool from_idle = target.idle;
  Cycles ipi = model_.costs.cycles(Primitive::ipi);
  if (target.idle) {
    target.idle = false;
    ++running_cores_;
    interrupt = remote;
    const Cycles idle_for = at > target.idle_since ? at - target.idle_since : 0;
    target.idle_exit_due = idle_exit_draw(target, idle_for);
    ipi = model_.costs.ipi_after(idle_for); // a deeper state may cost the waker more (a descheduled vCPU)
  } else if (target.current && !target.need_resched &&
             scheduler_->preempts(target.index, thread, *target.current, at)) {
    target.need_resched = true;
    interrupt = remote;
  }
  if (interrupt) {
    charge(waker_core, payer, activity, Primitive::ipi, ipi);
    // Woken at `at`, the target fires its due timers and picks (its own state, which placement
    // above guards), then pays for the dispatch before the picked thread can touch anything.
    const CostModel& costs = model_.costs;
    Cycles lookahead = costs.cycles(Primitive::sched_pick) + costs.cycles(Primitive::context_restore) +
                       (from_idle ? target.idle_exit_due : 0);
    Cycles timer = next_timer(target);
    // A core parked in let_others_pass acts next at its own time, which may be later.
    target.rung = true;
    target.rung_at = at;
    target.resume_at = std::max(at, clock(target));
    target.shared_from = std::max(target.resume_at, timer <= at ? at : std::min(timer, at + lookahead));
  }
}

void Kernel::poke(Core& from, Core& target) {
  if (&from == &target) return;
  Cycles at = clock(from);
  target.rung = true;
  target.rung_at = at;
  target.resume_at = target.shared_from = std::max(at, clock(target));
}

void Kernel::block(Core& core, Thread& thread, WaitQueue* queue, Cycles timeout) {
  assert(core.current == &thread && core.pending == 0);
  thread.wait_result = WaitResult::None;
  if (queue) {
    thread.waiting_on = queue;
    thread.wait_prev = queue->tail;
    thread.wait_next = nullptr;
    (queue->tail ? queue->tail->wait_next : queue->head) = &thread;
    queue->tail = &thread;
    ++queue->size;
  }
  if (timeout != kNever) arm_timer(core, thread, clock(core) + timeout);
}

static void unlink(Thread& thread) {
  WaitQueue& queue = *thread.waiting_on;
  (thread.wait_prev ? thread.wait_prev->wait_next : queue.head) = thread.wait_next;
  (thread.wait_next ? thread.wait_next->wait_prev : queue.tail) = thread.wait_prev;
  --queue.size;
  thread.waiting_on = nullptr;
  thread.wait_next = thread.wait_prev = nullptr;
}

bool Kernel::move_waiter(Thread& thread, WaitQueue& to) {
  if (thread.state != ThreadState::Blocked || !thread.waiting_on) return false;
  unlink(thread);
  thread.waiting_on = &to;
  thread.wait_prev = to.tail;
  thread.wait_next = nullptr;
  (to.tail ? to.tail->wait_next : to.head) = &thread;
  to.tail = &thread;
  ++to.size;
  return true;
}

bool Kernel::interrupt(OpContext& ctx, Thread& thread, std::uint16_t activity) {
  ctx.sync();
  if (!thread.asleep()) return false; // awake, or its timer (or a waker) is waking it already
  if (CallHolder* holder = thread.call; holder && holder->interrupted(ctx, thread, activity))
    thread.call = nullptr;
  return wake(ctx.core, thread, &ctx.thread, activity, WaitResult::Interrupted);
}

bool Kernel::direct_switch(OpContext& ctx, Thread& next, ThreadState leaving) {
  Core& core = ctx.core;
  Thread& me = ctx.thread;
  assert(core.current == &me && &next != &me);
  assert(leaving == ThreadState::Ready || leaving == ThreadState::Blocked);
  if (!next.asleep()) return false;
  // Claimed before the sync lets other cores run, so that their wakes leave it alone (as in wake);
  // off its wait queue and its timer, as a wakeup does, but not onto a run queue.
  next.wait_result = WaitResult::Woken;
  if (next.waiting_on) unlink(next);
  if (next.timer_armed) {
    next.timer_armed = false;
    ++next.timer_generation;
    --live_timers_;
  }
  sync(core);
  next.call = nullptr;
  notify([&](Observer& o) { o.on_wakeup(next, &me, clock(core)); });
  me.leave_activity = me.program->ops[me.pc]->activity;
  switch_out(core, leaving);
  if (leaving == ThreadState::Ready) scheduler_->enqueue(core.index, me, EnqueueReason::Yielded, clock(core));
  if (!allowed(next, core.index)) { // its affinity forbids this core: an ordinary wakeup instead
    make_ready(core, next, &me, me.leave_activity, static_cast<int>(EnqueueReason::Woken));
    return true;
  }
  dispatch(core, next, false);
  return true;
}

bool Kernel::wake(Core& core, Thread& thread, Thread* waker, std::uint16_t activity, WaitResult result) {
  // Once: the sync below lets other cores run before the thread is ready, and one of them may try
  // to wake it too (its timer fired here while a signal came from there).
  if (!thread.asleep()) return false;
  if (thread.waiting_on) unlink(thread);
  if (thread.timer_armed) {
    thread.timer_armed = false;
    ++thread.timer_generation;
    --live_timers_;
  }
  thread.wait_result = result;
  charge(core, waker ? *waker : thread, activity, Primitive::wakeup, model_.costs.cycles(Primitive::wakeup));
  sync(core);
  notify([&](Observer& o) { o.on_wakeup(thread, waker, clock(core)); });
  make_ready(core, thread, waker, activity, static_cast<int>(EnqueueReason::Woken));
  return true;
}

Thread* Kernel::wake_one(Core& core, WaitQueue& queue, Thread* waker, std::uint16_t activity) {
  Thread* first = queue.head;
  if (first) wake(core, *first, waker, activity, WaitResult::Woken);
  return first;
}

// Wakes the threads waiting now, each once. A woken thread may run on another core while later
// ones are being woken (each wake lets time pass) and sleep on the queue again: it must not be
// woken a second time by this call, or a herd on three cores never ends.
std::size_t Kernel::wake_all(Core& core, WaitQueue& queue, Thread* waker, std::uint16_t activity) {
  if (!queue.head) return 0; // the common case on every pipe read and write: nobody waits
  // Each wake may let time pass (other cores change the queue): wake a snapshot, on the stack when
  // it is small (the usual one or two waiters).
  constexpr std::size_t kOnStack = 8;
  Thread* on_stack[kOnStack];
  std::vector<Thread*> on_heap;
  Thread** waiting = on_stack;
  if (queue.size > kOnStack) {
    on_heap.resize(queue.size);
    waiting = on_heap.data();
  }
  std::size_t count = 0;
  for (Thread* t = queue.head; t; t = t->wait_next) waiting[count++] = t;
  std::size_t woken = 0;
  for (std::size_t i = 0; i < count; ++i)
    if (waiting[i]->waiting_on == &queue)
      woken += wake(core, *waiting[i], waker, activity, WaitResult::Woken) ? 1 : 0;
  return woken;
}

// ---- Timers ----------------------------------------------------------------------------------

void Kernel::arm_timer(Core& core, Thread& thread, Cycles when, bool arrival) {
  assert(!thread.timer_armed);
  thread.timer_armed = true;
  ++live_timers_;
  core.timers.push_back({when, timer_seq_++, &thread, nullptr, thread.timer_generation, arrival});
  std::push_heap(core.timers.begin(), core.timers.end(), std::greater<>());
}

void Kernel::arm_call(Core& core, Thread& owner, Cycles when, TimerCall& call) {
  assert(!call.armed_);
  call.armed_ = true;
  ++live_timers_;
  core.timers.push_back({when, timer_seq_++, &owner, &call, call.generation_, false});
  std::push_heap(core.timers.begin(), core.timers.end(), std::greater<>());
}

void Kernel::cancel_call(TimerCall& call) {
  if (!call.armed_) return;
  call.armed_ = false;
  ++call.generation_;
  --live_timers_;
}

Cycles Kernel::next_timer(Core& core) {
  while (!core.timers.empty()) {
    const TimerEntry& top = core.timers.front();
    if (top.call ? top.call->armed_ && top.generation == top.call->generation_
                 : top.thread->timer_armed && top.generation == top.thread->timer_generation)
      return top.when;
    std::pop_heap(core.timers.begin(), core.timers.end(), std::greater<>());
    core.timers.pop_back();
  }
  return kNever;
}

void Kernel::fire_timers(Core& core) {
  while (next_timer(core) <= clock(core)) {
    TimerEntry entry = core.timers.front();
    std::pop_heap(core.timers.begin(), core.timers.end(), std::greater<>());
    core.timers.pop_back();
    Thread& thread = *entry.thread;
    if (TimerCall* call = entry.call) {
      call->armed_ = false;
      ++call->generation_;
      --live_timers_;
      charge(core, thread, kTimer, Primitive::timer_interrupt,
             model_.costs.cycles(Primitive::timer_interrupt));
      OpContext ctx{*this, core, thread};
      call->fire(ctx);
      continue;
    }
    thread.timer_armed = false;
    ++thread.timer_generation;
    --live_timers_;
    if (entry.arrival) {
      make_ready(core, thread, nullptr, kTimer, static_cast<int>(EnqueueReason::New));
      continue;
    }
    charge(core, thread, kTimer, Primitive::timer_interrupt, model_.costs.cycles(Primitive::timer_interrupt));
    wake(core, thread, nullptr, kTimer, WaitResult::TimedOut);
  }
}

Cycles Kernel::idle_exit_draw(Core& core, Cycles idle_for) {
  const Cycles latency = model_.costs.idle_exit_after(idle_for);
  const double spread = model_.costs.idle_exit_spread;
  if (spread <= 0 || latency == 0) return latency;
  // Log-normal around the state's latency: two uniforms from the core's own stream, Box-Muller.
  auto uniform = [&] {
    std::uint64_t z = (core.idle_exit_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return (static_cast<double>(z >> 11) + 1.0) * 0x1.0p-53; // (0, 1]
  };
  const double u1 = uniform(), u2 = uniform();
  // Within 4 standard deviations (all but 1 in 16,000 draws): no draw runs away with a run.
  const double normal =
      std::clamp(std::sqrt(-2 * std::log(u1)) * std::cos(6.283185307179586 * u2), -4.0, 4.0);
  const double drawn = static_cast<double>(latency) * std::exp(spread * normal);
  return std::clamp<Cycles>(static_cast<Cycles>(drawn + 0.5), 1, kMaxTimeCycles);
}

Cycles Kernel::next_irq_gap(Core& core) {
  std::uint64_t z = (core.irq_state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  double u = (static_cast<double>(z >> 11) + 1.0) * 0x1.0p-53; // (0, 1]
  double gap = -std::log(u) * static_cast<double>(model_.irq_every);
  return std::clamp<Cycles>(static_cast<Cycles>(gap + 0.5), 1, kMaxTimeCycles);
}

// A core between two threads leaves a due interrupt to the next one (an idle core skips them:
// go_idle).
void Kernel::take_interrupts(Core& core) {
  const Cycles at = clock(core);
  if (!core.current) return;
  while (core.next_irq <= at) {
    Thread& thread = *core.current;
    charge(core, thread, kIrq, Primitive::timer_interrupt, model_.costs.cycles(Primitive::timer_interrupt));
    charge(core, thread, kIrq, Primitive::irq_handler, model_.irq_handler);
    core.next_irq = capped_sum(core.next_irq, next_irq_gap(core));
  }
}

// ---- Switching -------------------------------------------------------------------------------

void Kernel::dispatch(Core& core, Thread& thread, bool picked) {
  Cycles at = clock(core);
  const CostModel& costs = model_.costs;
  if (picked)
    charge(core, thread, kDispatch, Primitive::sched_pick, costs.cycles(Primitive::sched_pick));
  else
    scheduler_->handed_over(core.index, thread, at);
  if (core.left_idle) {
    charge(core, thread, kDispatch, Primitive::idle_exit, core.idle_exit_due);
    core.idle_exit_cycles += core.idle_exit_due;
    core.left_idle = false;
    // Still idle while it leaves its idle state: interrupts meanwhile go unseen too (go_idle).
    const Cycles awake = now(core);
    if (core.next_irq <= awake) core.next_irq = capped_sum(awake, next_irq_gap(core));
  }
  charge(core, thread, kDispatch, Primitive::context_restore, costs.cycles(Primitive::context_restore));
  load_space(core, thread, kDispatch);
  ++core.context_switches; // every dispatch restores a context (and was preceded by a save)
  core.last_thread = &thread;
  core.current = &thread;
  thread.last_core = static_cast<std::int32_t>(core.index);
  set_state(thread, ThreadState::Running, at);
  core.dispatched_at = core.accounted_from = at;
  core.slice_end = scheduler_->slice_end(thread, at);
  notify([&](Observer& o) { o.on_dispatch(core, thread, at); });
}

void Kernel::load_space(Core& core, Thread& thread, std::uint16_t activity) {
  if (core.loaded_space == thread.space) return;
  const CostModel& costs = model_.costs;
  charge(core, thread, activity, Primitive::address_space_switch,
         costs.cycles(Primitive::address_space_switch));
  // An untagged TLB was flushed: the space's working set is refilled, a page walk per page. A
  // tagged one keeps each space's entries across switches, so only a space's first run on this
  // core refills it (no tag is ever recycled: see docs/machine.md).
  AddressSpace& space = *thread.space;
  if (!costs.tagged_tlb || !space.tlb_warm_on(core.index)) {
    charge(core, thread, activity, Primitive::tlb_refill_per_page,
           costs.cycles(Primitive::tlb_refill_per_page) * space.working_set_pages);
    if (costs.tagged_tlb) space.set_tlb_warm(core.index);
  }
  core.loaded_space = thread.space;
}

void Kernel::push_frame(OpContext& ctx, const Program& program, AddressSpace& space, std::uint16_t activity) {
  ctx.thread.push_frame(program, space);
  load_space(ctx.core, ctx.thread, activity);
}

// The running thread leaves the core: it pays context_save, the scheduler accounts its run. The
// bookkeeping happens before the save's cycles pass, with no yield to other cores in between, so a
// wakeup from another core can never fall between "decided to sleep" and "asleep".
void Kernel::switch_out(Core& core, ThreadState to) {
  Thread& thread = *core.current;
  Cycles at = clock(core);
  notify([&](Observer& o) { o.on_switch_out(core, thread, at); });
  if (std::exchange(thread.enqueue_due, false))
    charge(core, thread, thread.leave_activity, Primitive::waitqueue_op,
           model_.costs.cycles(Primitive::waitqueue_op));
  charge(core, thread, thread.leave_activity, Primitive::context_save,
         model_.costs.cycles(Primitive::context_save));
  scheduler_->account(thread, at - core.accounted_from);
  set_state(thread, to, at);
  core.current = nullptr;
  core.slice_end = kNever;
}

void Kernel::preempt(Core& core) {
  core.need_resched = false;
  Thread& thread = *core.current;
  thread.leave_activity = kTick;
  switch_out(core, ThreadState::Ready);
  scheduler_->enqueue(core.index, thread, EnqueueReason::Preempted, clock(core));
}

// The time slice of the running thread ended.
void Kernel::tick(Core& core) {
  Thread& thread = *core.current;
  charge(core, thread, kTick, Primitive::timer_interrupt, model_.costs.cycles(Primitive::timer_interrupt));
  sync(core);
  Cycles at = clock(core);
  scheduler_->account(thread, at - core.accounted_from);
  core.accounted_from = at;
  if (scheduler_->slice_expired(core.index, thread, at)) {
    thread.leave_activity = kTick;
    switch_out(core, ThreadState::Ready);
    scheduler_->enqueue(core.index, thread, EnqueueReason::SliceExpired, clock(core));
  } else {
    core.slice_end = scheduler_->slice_end(thread, at);
  }
}

void Kernel::exit_thread(Core& core, Thread& thread) {
  charge(core, thread, kExit, Primitive::trap_enter, model_.costs.cycles(Primitive::trap_enter));
  charge(core, thread, kExit, Primitive::syscall_dispatch, model_.costs.cycles(Primitive::syscall_dispatch));
  sync(core);
  Cycles at = clock(core);
  notify([&](Observer& o) { o.on_switch_out(core, thread, at); });
  scheduler_->account(thread, at - core.accounted_from);
  set_state(thread, ThreadState::Exited, at);
  thread.finished_at = at;
  core.current = nullptr;
  core.slice_end = kNever;
  --live_threads_;
  Process& process = *thread.process;
  if (thread.service) --process.service_threads;
  if (--process.live_threads > 0 && process.only_service_threads_left()) {
    // The program's own threads are done (its exit() ends every thread): wake the helpers that
    // sleep, so that they end too.
    for (std::uint32_t i = 0; i < process.threads_total(); ++i) {
      Thread& other = threads_[process.thread_id(i)];
      if (other.state == ThreadState::Blocked) wake(core, other, &thread, kExit, WaitResult::Woken);
    }
  }
  if (process.live_threads == 0) {
    // The process is gone: its descriptors close (a pipe's last writer leaving gives readers EOF).
    OpContext ctx{*this, core, thread};
    while (!process.fds.empty()) close_descriptor(ctx, process, process.fds.size() - 1, kExit);
    notify([&](Observer& o) { o.on_process_exit(ctx, process); });
    sync(core);
    if (process.exit_waiters) wake_all(core, *process.exit_waiters, &thread, kExit);
  }
  if (live_threads_ == 0) finish(core, false);
}

void Kernel::finish(Core& core, bool deadlocked) {
  if (done_) return; // once: a second call would take the idle exits off the busy time again
  done_ = true;
  end_time_ = clock(core);
  record_.finish();
  if (deadlocked) {
    DeadlockReport report;
    report.at = end_time_;
    for (auto& thread : threads_)
      if (thread.state == ThreadState::Blocked)
        report.waiters.push_back(
            {thread.display_name(), thread.waiting_on ? thread.waiting_on->label : "?", thread.state_since});
    deadlock_ = std::move(report);
  }
  for (auto& other : cores_) {
    // A core leaving its idle state executes nothing yet: those cycles are idle time, though the
    // breakdown shows them (dispatch / idle_exit) as the cost of the wakeup that caused them.
    other->busy_cycles -= std::min(other->busy_cycles, other->idle_exit_cycles);
    if (other.get() == &core) continue;
    other->rung = true;
    other->rung_at = end_time_;
    if (other->parked) { // every core leaves its loop now
      other->parked = false;
      other->doorbell.ring();
    }
  }
}

// ---- The core loop ---------------------------------------------------------------------------

namespace {
// Dispatches in a row, on all cores together, whose threads ran nothing: a livelock (every slice
// spent switching in). A real run has a few in a row at most (a thread preempted as it arrives).
constexpr std::uint64_t kMaxDispatchesWithoutProgress = 100'000;
} // namespace

void Kernel::go_idle(Core& core) {
  sync(core);
  if (done_) return;
  core.idle = true;
  core.idle_since = clock(core);
  --running_cores_;
  if (running_cores_ == 0 && live_timers_ == 0) {
    // Nothing runs and nothing can wake anyone: either everyone is done or the system is stuck.
    finish(core, live_threads_ > 0);
    return;
  }
  Cycles wake_at = next_timer(core);
  if (wake_at < horizon(core, true) && wake_at <= time_limit())
    core.time = std::max(core.time, wake_at); // nobody can ring before it
  else
    wait_doorbell(core, wake_at);
  if (core.idle) { // woken by its own timer, not by another core
    core.idle = false;
    ++running_cores_;
    Cycles now = clock(core);
    core.idle_exit_due = idle_exit_draw(core, now > core.idle_since ? now - core.idle_since : 0);
  }
  core.left_idle = true;
  // The device interrupts that came while the core was idle were handled unseen (nothing ran there
  // to pay for them); the stream goes on from now, as a Poisson stream may.
  if (core.next_irq <= clock(core)) core.next_irq = capped_sum(clock(core), next_irq_gap(core));
}

void Kernel::core_main(std::size_t index) {
  Core& core = *cores_[index];
  if (index > 0 && cores_start_parked_) core.doorbell.wait(); // parked since start()
  while (!done_) {
    sync(core);
    fire_timers(core);
    take_interrupts(core);
    sync(core);
    if (done_) break;
    if (core.current && core.need_resched) preempt(core);
    // A slice ends mid-compute, or at the first op boundary after it: a burst that ends exactly
    // on the quantum finishes, as in the textbook examples.
    if (core.current &&
        (clock(core) > core.slice_end || (clock(core) == core.slice_end && core.current->compute_left > 0)))
      tick(core);
    if (!core.current) {
      core.need_resched = false;
      Thread* next = scheduler_->pick(core.index, clock(core));
      if (!next) {
        go_idle(core);
        continue;
      }
      dispatch(core, *next, true);
      // Every slice over before its thread runs anything: time passes, nothing else does.
      if (++dispatches_without_progress_ > kMaxDispatchesWithoutProgress) {
        sync(core);
        stop_livelock(core);
        break;
      }
      if (!count_event(core)) break;
      if (invariants_ && !invariants_->violation().empty()) { // the debug mode's continuous checks
        abort_run(core, "internal error: the simulator broke an invariant (please report it): " +
                            invariants_->violation());
        break;
      }
    }
    run_current(core);
  }
}

// Interprets the current thread's script until it must leave the core or compute for a while.
void Kernel::run_current(Core& core) {
  Thread& thread = *core.current;
  OpContext ctx{*this, core, thread};
  // A script looping without simulated time passing would hang the simulator: stop it instead.
  constexpr std::uint32_t kMaxTimelessOps = 10'000'000;
  std::uint32_t timeless_ops = 0;
  Cycles last_now = now(core);
  for (;;) {
    // Interrupts are taken between ops: bring the clock forward when one may be due.
    if (core.need_resched || done_) return; // done_: an op stopped the run
    const Cycles at = now(core);
    if (at > core.slice_end || at >= next_timer(core) || at >= core.next_irq) return;
    if (thread.process->killed_by) { // a signal's default action: terminate
      exit_thread(core, thread);
      return;
    }
    // Back in user mode (not inside a call that is waking up to finish): signals first.
    if (thread.signal_pending && thread.phase == 0 && user_return_work_) {
      switch (user_return_work_->on_user_return(ctx)) {
      case Step::Block:
        switch_out(core, ThreadState::Blocked);
        return;
      case Step::Exit:
        exit_thread(core, thread);
        return;
      default:
        break;
      }
      if (done_ || thread.process->killed_by) continue;
    }
    if (at != last_now) {
      last_now = at;
      timeless_ops = 0;
    } else if (++timeless_ops > kMaxTimelessOps) {
      sync(core);
      abort_run(thread, "ran more than 10,000,000 ops without simulated time passing (an endless loop "
                        "without a blocking or time-consuming op?), at op " +
                            std::to_string(thread.pc) + " of its script");
      return;
    }
    if (thread.pc >= thread.program->ops.size()) {
      if (!thread.interrupted.empty()) { // a frame ends: back to the one it interrupted
        thread.pop_frame();
        // The interrupted frame may itself be at its end (a handler run just before the exit).
        const auto& ops = thread.program->ops;
        load_space(core, thread, thread.pc < ops.size() ? ops[thread.pc]->activity : std::uint16_t{kExit});
        continue;
      }
      exit_thread(core, thread);
      return;
    }
    const Op& op = *thread.program->ops[thread.pc];
    note_progress();
    if (!count_event(core)) return;
    switch (op.execute(ctx)) {
    case Step::Continue:
      continue;
    case Step::Compute:
      run_compute(core, thread, ctx.compute);
      return;
    case Step::Block:
      thread.leave_activity = op.activity;
      switch_out(core, ThreadState::Blocked);
      return;
    case Step::Switched: // the core is another thread's now (or free, when it could not run here)
      return;
    case Step::Yield:
      thread.leave_activity = op.activity;
      switch_out(core, ThreadState::Ready);
      scheduler_->enqueue(core.index, thread, EnqueueReason::Yielded, clock(core));
      return;
    case Step::Exit:
      exit_thread(core, thread);
      return;
    }
  }
}

// Burns user cycles (after any pending kernel cycles), until done or interrupted by a timer, the
// end of the slice or another core's doorbell. Progress is kept in thread.compute_left.
void Kernel::run_compute(Core& core, Thread& thread, Cycles cycles) {
  if (thread.compute_left == 0) thread.compute_left = cycles;
  Cycles start = clock(core);
  Cycles kernel_part = core.pending;
  Cycles finish_at = start + kernel_part + thread.compute_left;
  Cycles deadline = std::min({finish_at, core.slice_end, next_timer(core), core.next_irq});
  Cycles elapsed = 0;
  if (deadline > start && !core.need_resched) {
    if (deadline < horizon(core, true) && deadline <= time_limit()) { // nobody can interrupt
      core.time += deadline - start;
      elapsed = deadline - start;
    } else {
      wait_doorbell(core, deadline);
      elapsed = clock(core) - start;
    }
  }
  Cycles kernel_done = std::min(elapsed, kernel_part);
  core.pending -= kernel_done;
  Cycles user_done = elapsed - kernel_done;
  core.busy_cycles += elapsed;
  if (user_done > 0) {
    note_progress();
    notify([&](Observer& o) { o.on_user_run(core, thread, start + kernel_done, start + elapsed); });
    thread.compute_left -= user_done;
    // Already on the clock: attribute without adding to pending.
    charge(core, thread, thread.program->ops[thread.pc]->activity, Primitive::user, user_done);
    core.pending -= user_done;
  }
  if (thread.compute_left == 0 && core.pending == 0) ++thread.pc;
}

// ---- Lookups ---------------------------------------------------------------------------------

Process* Kernel::find_process(const std::string& spec_name, std::uint32_t copy) {
  for (auto& process : processes_)
    if (process.spec->name == spec_name && process.copy == copy) return &process;
  return nullptr;
}

WaitQueue& Kernel::exit_queue(Process& process) {
  if (!process.exit_waiters)
    process.exit_waiters = std::make_unique<WaitQueue>("exit of " + process.display_name());
  return *process.exit_waiters;
}

} // namespace ipcsim
