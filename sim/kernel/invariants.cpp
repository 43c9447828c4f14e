#include "invariants.hpp"

#include "kernel.hpp"

#include <algorithm>
#include <unordered_set>

namespace ipcsim {

void InvariantChecker::fail(const std::string& what) {
  if (violation_.empty()) violation_ = what;
}

// The clock never goes back: on one core, events come in time order.
void InvariantChecker::core_time(const Core& core, Cycles at, const char* event, bool step) {
  if (core_clock_.size() <= core.index) core_clock_.resize(core.index + 1, 0);
  if (at < core_clock_[core.index])
    fail("the clock went back on core " + std::to_string(core.index) + ": " + event + " at cycle " +
         std::to_string(at) + " after an event at cycle " + std::to_string(core_clock_[core.index]));
  core_clock_[core.index] = at;
  if (step) check_now(core);
}

// The debug mode checks everything it can at a step of a core (a dispatch, a switch-out): no mechanism is
// half-way through a call there (a call changes its object and reports the flow without a sync between).
void InvariantChecker::check_now(const Core& core) {
  if (!continuous_ || !violation_.empty()) return;
  if (std::string broken = check_queues(); !broken.empty()) return fail(broken);
  if (std::string broken = check_core(core, false); !broken.empty()) return fail(broken);
  fail(check_conservation());
}

std::string InvariantChecker::check_core(const Core& core, bool at_end) const {
  // Pending cycles stop growing at the clock's limit (Kernel::charge), where the run stops.
  if (core.pending >= kClockLimitCycles) return "";
  const Cycles charged = core.index < core_charged_.size() ? core_charged_[core.index] : 0;
  const Cycles passed = at_end ? core.busy_cycles + core.idle_exit_cycles : core.busy_cycles + core.pending;
  if (charged == passed) return "";
  return "core " + std::to_string(core.index) + ": the cycles charged to threads on it (" +
         std::to_string(charged) + ") differ from the cycles it passed (" +
         (at_end ? std::to_string(core.busy_cycles) + " busy and " + std::to_string(core.idle_exit_cycles) +
                       " leaving idle)"
                 : std::to_string(core.busy_cycles) + ", and " + std::to_string(core.pending) + " pending)");
}

void InvariantChecker::on_thread_state(const Thread& thread, ThreadState, ThreadState, const WaitQueue*,
                                       Cycles at) {
  // The kernel stamps each change after telling its observers: state_since is the previous one (no
  // copy per thread here: a million threads would cost 40 MB of map).
  if (at < thread.state_since)
    fail("the clock went back for thread " + thread.display_name() + ": a state change at cycle " +
         std::to_string(at) + " after one at cycle " + std::to_string(thread.state_since));
}

void InvariantChecker::on_dispatch(const Core& core, const Thread&, Cycles at) {
  core_time(core, at, "a dispatch", true);
}

void InvariantChecker::on_switch_out(const Core& core, const Thread&, Cycles at) {
  core_time(core, at, "a switch-out", true);
}

void InvariantChecker::on_user_run(const Core& core, const Thread& thread, Cycles start, Cycles end) {
  if (end < start)
    fail("user time of " + thread.display_name() + " ends (cycle " + std::to_string(end) +
         ") before it starts (" + std::to_string(start) + ")");
  // Told before the user cycles are charged (Kernel::run_compute): the clock only.
  core_time(core, start, "user time", false);
  core_time(core, end, "the end of user time", false);
}

// A wakeup comes in the middle of a call (its object may be half-changed): the queues only.
void InvariantChecker::on_wakeup(const Thread&, const Thread*, Cycles) {
  if (continuous_ && violation_.empty()) fail(check_queues());
}

void InvariantChecker::on_message_sent(const Thread& thread, const Message& message,
                                       const std::string& object, Cycles at) {
  if (message.id == 0) return;
  // Ids are given in sending order: one not above the last was sent before.
  if (message.id <= last_sent_ || !sent_.try_emplace(message.id, at).second)
    fail("message " + std::to_string(message.id) + " was sent twice (by " + thread.display_name() + " on " +
         object + ")");
  last_sent_ = std::max(last_sent_, message.id);
}

// A receive takes only what was sent, never before it was sent.
void InvariantChecker::on_message_received(const Thread& thread, const Message& message,
                                           const std::string& object, Cycles at) {
  if (message.id == 0) return;
  ++received_;
  auto it = sent_.find(message.id);
  if (it == sent_.end()) {
    // Not in flight: a later piece of a message received in parts (its first receive was
    // checked), or never sent at all.
    if (message.id > last_sent_)
      fail("message " + std::to_string(message.id) + " was received by " + thread.display_name() + " on " +
           object + " but never sent");
    return;
  }
  if (at < it->second)
    fail("message " + std::to_string(message.id) + " was received by " + thread.display_name() +
         " at cycle " + std::to_string(at) + ", before it was sent (cycle " + std::to_string(it->second) +
         ")");
  sent_.erase(it); // only messages in flight are kept: memory stays bounded over a long run
}

namespace {
std::string flows(std::uint64_t messages, std::uint64_t bytes) {
  return std::to_string(messages) + (messages == 1 ? " message (" : " messages (") + std::to_string(bytes) +
         (bytes == 1 ? " byte)" : " bytes)");
}
} // namespace

// Whatever was received or dropped was sent first: checked at every flow (cheap); the full balance
// needs every mechanism's holdings: at the end of the run, and in the debug mode at every step of a
// core (check_now).
void InvariantChecker::on_flow(const std::string& object, Flow kind, std::uint64_t messages,
                               std::uint64_t bytes, const char* reason, Cycles) {
  Ledger& l = ledger_[object];
  switch (kind) {
  case Flow::Sent:
    l.sent_messages += messages;
    l.sent_bytes += bytes;
    return;
  case Flow::Received:
    l.received_messages += messages;
    l.received_bytes += bytes;
    break;
  case Flow::Dropped: {
    l.dropped_messages += messages;
    l.dropped_bytes += bytes;
    auto& drop = l.drops[reason];
    drop.first += messages;
    drop.second += bytes;
    break;
  }
  }
  if (l.received_messages + l.dropped_messages > l.sent_messages ||
      l.received_bytes + l.dropped_bytes > l.sent_bytes)
    fail("conservation on " + object + ": " + flows(l.received_messages, l.received_bytes) +
         " received and " + flows(l.dropped_messages, l.dropped_bytes) + " dropped, but only " +
         flows(l.sent_messages, l.sent_bytes) + " sent");
}

std::string InvariantChecker::check_conservation() const {
  std::map<std::string, std::pair<std::uint64_t, std::uint64_t>> held;
  std::vector<Held> reported;
  for (const auto& state : kernel_.ipc_states())
    if (state) state->held(reported);
  for (const auto& h : reported) {
    auto& total = held[h.object];
    total.first += h.messages;
    total.second += h.bytes;
  }
  auto balance = [&](const std::string& object, const Ledger& l,
                     std::pair<std::uint64_t, std::uint64_t> h) -> std::string {
    if (l.sent_messages == l.received_messages + h.first + l.dropped_messages &&
        l.sent_bytes == l.received_bytes + h.second + l.dropped_bytes)
      return "";
    std::string drops;
    for (const auto& [reason, counts] : l.drops)
      drops += "; " + flows(counts.first, counts.second) + " dropped: " + reason;
    return "conservation on " + object + ": " + flows(l.sent_messages, l.sent_bytes) + " sent, but " +
           flows(l.received_messages, l.received_bytes) + " received, " + flows(h.first, h.second) +
           " still held and " + flows(l.dropped_messages, l.dropped_bytes) + " dropped" + drops;
  };
  static const Ledger kNothing;
  for (const auto& [object, l] : ledger_) {
    auto it = held.find(object);
    std::string broken =
        balance(object, l, it == held.end() ? std::pair<std::uint64_t, std::uint64_t>{} : it->second);
    if (!broken.empty()) return broken;
  }
  for (const auto& [object, h] : held) // held where nothing was ever sent
    if (!ledger_.count(object))
      if (std::string broken = balance(object, kNothing, h); !broken.empty()) return broken;
  return "";
}

std::string InvariantChecker::check_queues() const {
  std::unordered_set<const WaitQueue*> queues;
  std::size_t waiting = 0;
  for (const auto& thread : kernel_.threads()) {
    if (!thread.waiting_on) continue;
    ++waiting;
    // Blocked, or still running on its way to sleep (block() queues it before the switch-out).
    if (thread.state != ThreadState::Blocked && thread.state != ThreadState::Running)
      return "thread " + thread.display_name() + " is on the wait queue \"" + thread.waiting_on->label +
             "\" but neither blocked nor going to sleep";
    queues.insert(thread.waiting_on);
  }
  std::size_t linked = 0;
  for (const WaitQueue* queue : queues) {
    std::size_t length = 0;
    const Thread* previous = nullptr;
    for (const Thread* t = queue->head; t; t = t->wait_next) {
      if (t->waiting_on != queue)
        return "thread " + t->display_name() + " is linked into the wait queue \"" + queue->label +
               "\" while it waits on another";
      if (t->wait_prev != previous) return "the wait queue \"" + queue->label + "\" has broken back links";
      previous = t;
      if (++length > kernel_.threads().size()) return "the wait queue \"" + queue->label + "\" loops";
    }
    if (length != queue->size)
      return "the wait queue \"" + queue->label + "\" holds " + std::to_string(length) +
             " threads but counts " + std::to_string(queue->size);
    linked += length;
  }
  if (linked != waiting)
    return std::to_string(waiting) + " threads wait on queues that link " + std::to_string(linked) +
           ": a thread is in two queues";
  return "";
}

std::string InvariantChecker::check_end() {
  if (!violation_.empty()) return violation_;
  if (std::string queues = check_queues(); !queues.empty()) return queues;
  if (std::string conservation = check_conservation(); !conservation.empty()) return conservation;
  if (!kernel_.runtime_error().empty()) return "";
  // Every cycle a core passed is attributed to a thread: the breakdown adds up to the busy time and
  // the idle exits, and no core is busy longer than the run.
  Cycles charged = 0, busy = 0;
  for (const auto& thread : kernel_.threads())
    for (const auto& charge : kernel_.account(thread).charges) charged += charge.cycles;
  for (const auto& core : kernel_.cores()) {
    if (core->busy_cycles > kernel_.makespan())
      return "core " + std::to_string(core->index) + " was busy " + std::to_string(core->busy_cycles) +
             " cycles in a run of " + std::to_string(kernel_.makespan());
    if (std::string broken = check_core(*core, true); !broken.empty()) return broken;
    busy += core->busy_cycles + core->idle_exit_cycles;
  }
  if (charged != busy)
    return "the cycles attributed to threads (" + std::to_string(charged) +
           ") differ from the cycles the cores passed (" + std::to_string(busy) + ", idle exits included)";
  return "";
}

} // namespace ipcsim
