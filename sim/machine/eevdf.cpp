// Linux's fair scheduler as of 6.18: EEVDF, Earliest Eligible Virtual Deadline First (Stoica and
// Abdel-Wahab, 1995), as kernel/sched/fair.c implements it with its default features: PLACE_LAG,
// PLACE_DEADLINE_INITIAL, RUN_TO_PARITY, DELAY_DEQUEUE and DELAY_ZERO, wakeup preemption, and
// the tick that notices a used-up request. Every thread has nice 0's weight, so a thread's virtual
// runtime is its run time. docs/machine.md#eevdf describes the model and what it leaves out.
#include "sched.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

namespace ipcsim {

namespace {

using VTime = std::int64_t; // virtual time, in cycles
// Sums of virtual times times counts, exact as Linux's 128-bit eligibility test.
__extension__ typedef __int128 Wide;

struct Entity {
  VTime vruntime = 0;
  VTime deadline = 0; // vruntime + slice when the request was made
  VTime vlag = 0;     // V - vruntime when it left its queue: placed back that far from V
  VTime vprot = 0;    // run to parity: not preempted by a wakeup until vruntime reaches it
  // The kernel accounts a run when the thread leaves the core or at a tick; a wakeup on its core
  // brings it up to date first (update_curr), and the kernel's later accounting skips that part.
  Cycles accounted_from = 0;
  Cycles run_ahead = 0;
  std::uint64_t order = 0;   // when it was queued: equal deadlines go first come first served
  std::int32_t core = -1;    // the run queue it is on (Linux's on_rq), as running or waiting
  bool waiting = false;      // among the queue's waiting entities (not the running one)
  bool delayed = false;      // asleep, kept on the queue until picked or woken (DELAY_DEQUEUE)
  bool request_done = false; // the running entity used up its request: reschedule
  // Its node in the queue's tree of waiting entities (thread ids; -1: none), as Linux's: ordered by
  // deadline, each node holding the least vruntime below it, of all and of those awake.
  Thread* thread = nullptr;
  std::int32_t left = -1, right = -1;
  std::uint64_t priority = 0; // the treap's heap order
  VTime min_vruntime = 0, min_awake_vruntime = 0;
};

// One core's queue. As Linux's, it keeps the sum of its entities' virtual runtimes (the running
// one's included) so that V and eligibility cost O(1), and the waiting ones by deadline.
struct FairQueue {
  std::int32_t root = -1;   // the waiting entities, delayed ones included (a treap)
  Thread* curr = nullptr;   // the entity that runs or last ran, while it is on the queue
  Wide sum = 0;             // of the vruntimes of every entity on the queue
  std::size_t count = 0;    // entities on the queue, the running one and delayed ones included
  std::size_t runnable = 0; // waiting and not delayed
  VTime min_vruntime = 0;   // V's floor when the queue is empty; never goes back
};

class EevdfScheduler : public Scheduler {
public:
  EevdfScheduler(std::size_t cores, Cycles slice, Cycles tick) : queues_(cores), slice_(slice), tick_(tick) {}

  void enqueue(std::size_t core, Thread& thread, EnqueueReason why, Cycles now) override {
    FairQueue& rq = queues_[core];
    Entity& se = entity(thread);
    if (why == EnqueueReason::Preempted || why == EnqueueReason::SliceExpired ||
        why == EnqueueReason::Yielded) {
      // The running entity goes back among the waiting ones (put_prev_entity). An eligible thread
      // that yields forfeits the rest of its request (yield_task_fair).
      if (why == EnqueueReason::Yielded && rq.count > 1 && eligible(rq, se.vruntime)) {
        rq.sum += se.deadline - se.vruntime;
        se.vruntime = se.deadline;
        se.deadline = se.vruntime + static_cast<VTime>(slice_);
      }
      if (rq.curr == &thread) rq.curr = nullptr;
      wait_in(rq, thread);
      return;
    }
    settle(rq);
    if (why == EnqueueReason::New) {
      catch_up(rq, now);
      se = Entity{};
      place(rq, se, true);
      join(rq, thread, core);
      wait_in(rq, thread);
      return;
    }
    // Woken. It may have gone to sleep on a core that has not picked since: dequeue it there first.
    if (se.core >= 0) {
      FairQueue& old = queues_[se.core];
      if (old.curr == &thread) sleep(old, thread);
    }
    if (se.waiting && !se.delayed) return; // already runnable
    if (se.delayed && se.core == static_cast<std::int32_t>(core)) {
      // ttwu_runnable: requeue_delayed_entity runs before any update_curr, so its lag and its
      // placement see the running entity's virtual runtime as last accounted, not as of now.
      requeue_delayed(rq, thread);
      return;
    }
    catch_up(rq, now);                                        // enqueue_entity's update_curr
    if (se.delayed) finish_delayed(queues_[se.core], thread); // woken onto another core
    place(rq, se, false);
    join(rq, thread, core);
    wait_in(rq, thread);
  }

  Thread* pick(std::size_t core, Cycles now) override {
    FairQueue& rq = queues_[core];
    settle(rq);
    for (;;) {
      Thread* next = pick_eevdf(rq, false);
      if (!next) return nullptr;
      if (entity(*next).delayed) { // picked while asleep: it leaves the queue now
        finish_delayed(rq, *next);
        continue;
      }
      run(rq, *next, now);
      return next;
    }
  }

  void handed_over(std::size_t core, Thread& thread, Cycles now) override {
    // Dispatched without a pick (a direct switch): as if woken onto this core and picked at once.
    // A thread asleep but still on this queue (delayed) is woken there first, like any other.
    FairQueue& rq = queues_[core];
    settle(rq); // the caller, if it left asleep
    Entity& se = entity(thread);
    if (!se.waiting || se.delayed || se.core != static_cast<std::int32_t>(core))
      enqueue(core, thread, EnqueueReason::Woken, now);
    run(rq, thread, now);
  }

  std::size_t queued(std::size_t core) const override { return queues_[core].runnable; }

  // The periodic tick (1/HZ) is when the scheduler looks at the running thread again.
  Cycles slice_end(const Thread&, Cycles now) const override { return (now / tick_ + 1) * tick_; }

  bool preempts(std::size_t core, const Thread& woken, const Thread& running, Cycles now) override {
    FairQueue& rq = queues_[core];
    if (rq.curr != &running) return false;
    catch_up(rq, now);
    // check_preempt_wakeup_fair: the woken thread takes the core if it is now the one to run.
    if (pick_eevdf(rq, true) == &woken) return true;
    // update_curr reschedules when the request is used up or the protection over; the pick then
    // decides whether another thread runs.
    return needs_resched(rq, entity(running)) && pick_eevdf(rq, false, true) != &running;
  }

  void account(Thread& thread, Cycles ran) override {
    Entity& se = entity(thread);
    Cycles fresh = ran > se.run_ahead ? ran - se.run_ahead : 0;
    se.run_ahead -= ran - fresh;
    se.accounted_from += ran;
    if (se.core >= 0) advance(queues_[se.core], se, fresh);
  }

  bool slice_expired(std::size_t core, Thread& thread, Cycles) override {
    FairQueue& rq = queues_[core];
    if (rq.curr != &thread || !needs_resched(rq, entity(thread))) return false;
    // schedule(): a delayed entity picked leaves the queue and the pick is made again.
    for (;;) {
      Thread* next = pick_eevdf(rq, false);
      if (next && next != &thread && entity(*next).delayed) {
        finish_delayed(rq, *next);
        continue;
      }
      return next != &thread;
    }
  }

private:
  Entity& entity(const Thread& thread) {
    if (thread.id >= entities_.size()) entities_.resize(thread.id + 1);
    return entities_[thread.id];
  }

  // V, the mean of the queue's virtual runtimes (avg_vruntime, every weight equal), rounded down.
  static VTime avg_vruntime(const FairQueue& rq) {
    if (rq.count == 0) return rq.min_vruntime;
    Wide n = static_cast<Wide>(rq.count);
    Wide sum = rq.sum;
    if (sum < 0) sum -= n - 1;
    return static_cast<VTime>(sum / n);
  }

  // Lag >= 0, i.e. vruntime <= V, compared without the mean's rounding (vruntime_eligible).
  static bool eligible(const FairQueue& rq, VTime vruntime) {
    return rq.sum >= static_cast<Wide>(vruntime) * static_cast<Wide>(rq.count);
  }

  void update_min_vruntime(FairQueue& rq) {
    bool any = rq.curr != nullptr;
    VTime lowest = any ? entity(*rq.curr).vruntime : 0;
    if (rq.root >= 0) {
      const VTime waiting = entities_[static_cast<std::size_t>(rq.root)].min_vruntime;
      lowest = any ? std::min(lowest, waiting) : waiting;
      any = true;
    }
    if (any) rq.min_vruntime = std::max(rq.min_vruntime, lowest);
  }

  // The lag kept across a sleep is bounded by what the queue could repay: a request and a tick.
  VTime clamp_lag(VTime lag) const {
    const VTime limit = static_cast<VTime>(slice_ + tick_);
    return std::clamp(lag, -limit, limit);
  }

  // update_curr: run time advances the virtual runtime; a used-up request gets the next one.
  void advance(FairQueue& rq, Entity& se, Cycles ran) {
    if (ran == 0) return;
    se.vruntime += static_cast<VTime>(ran);
    rq.sum += static_cast<Wide>(ran);
    if (se.vruntime >= se.deadline) {
      se.deadline = se.vruntime + static_cast<VTime>(slice_);
      se.request_done = true;
    }
    update_min_vruntime(rq);
  }

  // Brings the running entity's virtual runtime up to `now` ahead of the kernel's accounting.
  void catch_up(FairQueue& rq, Cycles now) {
    if (!rq.curr || rq.curr->state != ThreadState::Running) return;
    Entity& se = entity(*rq.curr);
    Cycles seen = se.accounted_from + se.run_ahead;
    if (now <= seen) return;
    se.run_ahead += now - seen;
    advance(rq, se, now - seen);
  }

  bool needs_resched(const FairQueue& rq, Entity& running) {
    bool done = std::exchange(running.request_done, false);
    return rq.count > 1 && (done || running.vruntime >= running.vprot);
  }

  // place_entity: V less the lag it left with, inflated by the weight it adds back (PLACE_LAG); a
  // new thread's first request is half a slice (PLACE_DEADLINE_INITIAL).
  void place(const FairQueue& rq, Entity& se, bool initial) {
    VTime lag = 0;
    if (rq.count && se.vlag)
      lag = static_cast<VTime>(static_cast<Wide>(se.vlag) * static_cast<Wide>(rq.count + 1) /
                               static_cast<Wide>(rq.count));
    se.vruntime = avg_vruntime(rq) - lag;
    se.deadline = se.vruntime + static_cast<VTime>(initial ? slice_ / 2 : slice_);
  }

  // On the queue (on_rq): its virtual runtime counts in V.
  void join(FairQueue& rq, Thread& thread, std::size_t core) {
    Entity& se = entity(thread);
    se.core = static_cast<std::int32_t>(core);
    rq.sum += se.vruntime;
    ++rq.count;
  }

  void leave(FairQueue& rq, Thread& thread) {
    Entity& se = entity(thread);
    if (se.waiting) stop_waiting(rq, thread);
    if (rq.curr == &thread) rq.curr = nullptr;
    rq.sum -= se.vruntime;
    --rq.count;
    se.core = -1;
    se.delayed = false;
    update_min_vruntime(rq);
  }

  void wait_in(FairQueue& rq, Thread& thread) {
    Entity& se = entity(thread);
    se.waiting = true;
    se.order = next_order_++;
    se.thread = &thread;
    insert(rq, static_cast<std::int32_t>(thread.id));
    if (!se.delayed) ++rq.runnable;
  }

  void stop_waiting(FairQueue& rq, Thread& thread) {
    Entity& se = entity(thread);
    erase(rq, static_cast<std::int32_t>(thread.id));
    if (!se.delayed) --rq.runnable;
    se.waiting = false;
  }

  // set_next_entity: it runs, protected from wakeup preemption until its deadline (run to parity:
  // every request here has the same length, so the shortest one queued is its own).
  void run(FairQueue& rq, Thread& thread, Cycles now) {
    Entity& se = entity(thread);
    if (se.waiting) stop_waiting(rq, thread);
    rq.curr = &thread;
    se.vprot = se.deadline;
    se.accounted_from = now;
    se.run_ahead = 0;
    se.request_done = false;
  }

  // The running entity left the core without being queued again: it blocked or exited.
  void settle(FairQueue& rq) {
    if (rq.curr && (rq.curr->state == ThreadState::Blocked || rq.curr->state == ThreadState::Exited))
      sleep(rq, *rq.curr);
  }

  // dequeue_entity(DEQUEUE_SLEEP): one that has had more than its share (not eligible) stays on the
  // queue, asleep, so that its negative lag is not forgotten (DELAY_DEQUEUE).
  void sleep(FairQueue& rq, Thread& thread) {
    Entity& se = entity(thread);
    if (thread.state != ThreadState::Exited && !eligible(rq, se.vruntime)) {
      if (rq.curr == &thread) rq.curr = nullptr;
      se.delayed = true;
      wait_in(rq, thread);
      return;
    }
    se.vlag = clamp_lag(avg_vruntime(rq) - se.vruntime);
    leave(rq, thread);
  }

  // A delayed entity leaves the queue for good; a positive lag gained meanwhile is dropped
  // (DELAY_ZERO).
  void finish_delayed(FairQueue& rq, Thread& thread) {
    Entity& se = entity(thread);
    se.vlag = std::min<VTime>(clamp_lag(avg_vruntime(rq) - se.vruntime), 0);
    leave(rq, thread);
  }

  // Woken while delayed on this queue: it keeps its place, unless it has become eligible, when it
  // starts again at V with no lag (requeue_delayed_entity, DELAY_ZERO).
  void requeue_delayed(FairQueue& rq, Thread& thread) {
    Entity& se = entity(thread);
    VTime lag = clamp_lag(avg_vruntime(rq) - se.vruntime);
    stop_waiting(rq, thread);
    se.delayed = false;
    if (lag <= 0) {
      se.vlag = lag;
      wait_in(rq, thread);
      return;
    }
    std::size_t core = static_cast<std::size_t>(se.core);
    leave(rq, thread);
    se.vlag = 0;
    place(rq, se, false);
    join(rq, thread, core);
    wait_in(rq, thread);
  }

  // pick_eevdf: among the eligible entities, the earliest deadline; the running one keeps the core
  // while protected. `skip_delayed` leaves out the asleep ones (schedule() would drop them).
  Thread* pick_eevdf(FairQueue& rq, bool protect, bool skip_delayed = false) {
    if (rq.count == 0) return nullptr;
    if (rq.count == 1) {
      Thread* only = rq.curr ? rq.curr : entities_[static_cast<std::size_t>(rq.root)].thread;
      return skip_delayed && entity(*only).delayed ? nullptr : only;
    }
    Thread* curr = rq.curr;
    if (curr && !eligible(rq, entity(*curr).vruntime)) curr = nullptr;
    if (curr && protect && entity(*curr).vruntime < entity(*curr).vprot) return curr;
    const std::int32_t first = first_eligible(rq, skip_delayed);
    Thread* best = first >= 0 ? entities_[static_cast<std::size_t>(first)].thread : nullptr;
    if (!best || (curr && entity(*curr).deadline < entity(*best).deadline)) best = curr;
    return best;
  }

  // ---- The tree of waiting entities: a treap keyed by (deadline, order), O(log n) expected ----

  Entity& at(std::int32_t i) { return entities_[static_cast<std::size_t>(i)]; }

  void pull(std::int32_t i) {
    Entity& n = at(i);
    n.min_vruntime = n.vruntime;
    n.min_awake_vruntime = n.delayed ? kNoVruntime : n.vruntime;
    for (std::int32_t child : {n.left, n.right})
      if (child >= 0) {
        n.min_vruntime = std::min(n.min_vruntime, at(child).min_vruntime);
        n.min_awake_vruntime = std::min(n.min_awake_vruntime, at(child).min_awake_vruntime);
      }
  }

  // Splits `t` into the nodes before (deadline, order) and the others.
  void split(std::int32_t t, VTime deadline, std::uint64_t order, std::int32_t& before, std::int32_t& after) {
    if (t < 0) {
      before = after = -1;
      return;
    }
    Entity& n = at(t);
    if (n.deadline < deadline || (n.deadline == deadline && n.order < order)) {
      split(n.right, deadline, order, n.right, after);
      before = t;
    } else {
      split(n.left, deadline, order, before, n.left);
      after = t;
    }
    pull(t);
  }

  std::int32_t merge(std::int32_t a, std::int32_t b) {
    if (a < 0) return b;
    if (b < 0) return a;
    if (at(a).priority > at(b).priority) {
      at(a).right = merge(at(a).right, b);
      pull(a);
      return a;
    }
    at(b).left = merge(a, at(b).left);
    pull(b);
    return b;
  }

  void insert(FairQueue& rq, std::int32_t i) {
    Entity& n = at(i);
    n.left = n.right = -1;
    n.priority = mix(n.order); // deterministic: the same run builds the same tree
    pull(i);
    std::int32_t before = -1, after = -1;
    split(rq.root, n.deadline, n.order, before, after);
    rq.root = merge(merge(before, i), after);
  }

  void erase(FairQueue& rq, std::int32_t i) {
    const Entity& n = at(i);
    std::int32_t before = -1, rest = -1, self = -1, after = -1;
    split(rq.root, n.deadline, n.order, before, rest);
    split(rest, n.deadline, n.order + 1, self, after);
    rq.root = merge(before, after);
  }

  // The earliest deadline among the waiting entities whose vruntime is at most V (the eligible):
  // the left subtree first when it holds one, as pick_eevdf's heap search.
  std::int32_t first_eligible(const FairQueue& rq, bool awake_only) {
    if (rq.count == 0 || rq.root < 0) return -1;
    // vruntime x count <= sum (vruntime_eligible) is vruntime <= floor(sum / count): V as rounded.
    const VTime limit = avg_vruntime(rq);
    auto lowest = [&](std::int32_t t) { return awake_only ? at(t).min_awake_vruntime : at(t).min_vruntime; };
    for (std::int32_t t = rq.root; t >= 0;) {
      const Entity& e = at(t);
      if (e.left >= 0 && lowest(e.left) <= limit) {
        t = e.left;
        continue;
      }
      if (e.vruntime <= limit && !(awake_only && e.delayed)) return t;
      t = e.right >= 0 && lowest(e.right) <= limit ? e.right : -1;
    }
    return -1;
  }

  static std::uint64_t mix(std::uint64_t x) { // splitmix64's finaliser
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
  }

  static constexpr VTime kNoVruntime = std::numeric_limits<VTime>::max();

  std::vector<FairQueue> queues_;
  std::vector<Entity> entities_;
  std::uint64_t next_order_ = 0;
  Cycles slice_;
  Cycles tick_;
};

ParamTable eevdf_params() {
  ParamTable table{"machine.scheduler (eevdf)", "", {}};
  ParamSpec slice{"slice", ParamType::Time, nullptr, "cycles or duration",
                  "the request length, Linux's sysctl_sched_base_slice"};
  slice.min = 1;
  slice.default_note = "0.7 ms x (1 + log2 of min(cores, 8)), Linux's default";
  ParamSpec tick{"tick", ParamType::Time, nullptr, "cycles or duration",
                 "the scheduler tick, 1/HZ: when a running thread's used-up request is noticed"};
  tick.min = 1;
  tick.default_note = "the cost preset's time_slice when it has one, else 4 ms (HZ=250)";
  table.params.push_back(slice);
  table.params.push_back(tick);
  return table;
}

const SchedulerRegistrar register_eevdf(
    {"eevdf",
     "Linux's fair scheduler (EEVDF): the eligible thread with the earliest virtual deadline runs; "
     "lag kept across sleeps, wakeup preemption, a tick",
     eevdf_params(),
     [](std::size_t cores, const json& params, double hz) {
       Cycles slice = 0;
       if (params.contains("slice") && !params.at("slice").is_null()) {
         slice = read_time_cycles(params.at("slice"), hz);
       } else {
         double factor = 1 + std::floor(std::log2(static_cast<double>(std::min<std::size_t>(cores, 8))));
         slice = static_cast<Cycles>(std::llround(0.7e-3 * factor * hz));
       }
       Cycles tick = params.contains("tick") && !params.at("tick").is_null()
                         ? read_time_cycles(params.at("tick"), hz)
                         : static_cast<Cycles>(std::llround(4e-3 * hz));
       return std::make_unique<EevdfScheduler>(cores, std::max<Cycles>(slice, 1), std::max<Cycles>(tick, 1));
     },
     5});

} // namespace

} // namespace ipcsim
