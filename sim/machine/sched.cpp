#include "sched.hpp"

#include "registry.hpp"

#include <algorithm>
#include <deque>
#include <map>

namespace ipcsim {

namespace {

struct ByRank {
  bool operator()(const SchedulerDecl& a, const SchedulerDecl& b) const { return a.rank < b.rank; }
};

Registry<SchedulerDecl, ByRank>& registry() {
  static Registry<SchedulerDecl, ByRank> policies;
  return policies;
}

ParamSpec quantum_param(json default_value, double min, const std::string& description) {
  ParamSpec spec{"quantum", ParamType::Time, std::move(default_value), "cycles or duration", description};
  spec.min = min;
  return spec;
}

using RunQueue = std::deque<Thread*>;

// First come, first served: a thread runs until it blocks, yields or exits.
class FifoScheduler : public Scheduler {
public:
  explicit FifoScheduler(std::size_t cores) : queues_(cores) {}
  void enqueue(std::size_t core, Thread& thread, EnqueueReason, Cycles) override {
    queues_[core].push_back(&thread);
  }
  Thread* pick(std::size_t core, Cycles) override {
    if (queues_[core].empty()) return nullptr;
    Thread* next = queues_[core].front();
    queues_[core].pop_front();
    return next;
  }
  std::size_t queued(std::size_t core) const override { return queues_[core].size(); }
  Cycles slice_end(const Thread&, Cycles) const override { return kNever; }
  bool preempts(std::size_t, const Thread&, const Thread&, Cycles) override { return false; }
  bool slice_expired(std::size_t, Thread&, Cycles) override { return false; }

protected:
  std::vector<RunQueue> queues_;
};

const SchedulerRegistrar register_fifo(
    {"fifo",
     "first come first served: a thread runs until it blocks, yields or exits",
     {"machine.scheduler (fifo)", "", {}},
     [](std::size_t cores, const json&, double) { return std::make_unique<FifoScheduler>(cores); },
     1});

// Round robin: FIFO order, and a thread that uses up its quantum goes to the back of the queue.
class RoundRobinScheduler : public FifoScheduler {
public:
  RoundRobinScheduler(std::size_t cores, Cycles quantum) : FifoScheduler(cores), quantum_(quantum) {}
  Cycles slice_end(const Thread&, Cycles now) const override { return now + quantum_; }
  // Alone on its core, a thread keeps the CPU: there is nobody to round-robin with.
  bool slice_expired(std::size_t core, Thread&, Cycles) override { return !queues_[core].empty(); }

private:
  Cycles quantum_;
};

const SchedulerRegistrar
    register_rr({"rr",
                 "round robin with a time quantum",
                 {"machine.scheduler (rr)",
                  "",
                  {quantum_param("10ms", 1, "time slice before the running thread goes to the back")}},
                 [](std::size_t cores, const json& params, double hz) {
                   return std::make_unique<RoundRobinScheduler>(cores,
                                                                read_time_cycles(params.at("quantum"), hz));
                 },
                 2});

// Static priority, preemptive: the highest priority (largest number) ready thread runs; a thread
// made ready with a higher priority than the running one takes its core at once. Equal priorities
// are FIFO, or round robin when a quantum is set.
class PriorityScheduler : public Scheduler {
public:
  PriorityScheduler(std::size_t cores, Cycles quantum) : queues_(cores), quantum_(quantum) {}
  void enqueue(std::size_t core, Thread& thread, EnqueueReason why, Cycles) override {
    auto& queue = queues_[core][thread.priority];
    // A preempted thread was running before the one that displaced it: it resumes first.
    if (why == EnqueueReason::Preempted)
      queue.push_front(&thread);
    else
      queue.push_back(&thread);
    ++sizes_[core];
  }
  Thread* pick(std::size_t core, Cycles) override {
    auto& levels = queues_[core];
    if (levels.empty()) return nullptr;
    auto highest = levels.begin();
    Thread* next = highest->second.front();
    highest->second.pop_front();
    if (highest->second.empty()) levels.erase(highest);
    --sizes_[core];
    return next;
  }
  std::size_t queued(std::size_t core) const override { return sizes_[core]; }
  // As Linux's SCHED_RR (task_tick_rt): a slice is refilled only when it runs out, so a thread
  // preempted by a higher priority, or blocked, resumes with what was left of it.
  Cycles slice_end(const Thread& thread, Cycles now) const override {
    return quantum_ ? now + (quantum_ - std::min(thread.level_used, quantum_)) : kNever;
  }
  bool preempts(std::size_t, const Thread& woken, const Thread& running, Cycles) override {
    return woken.priority > running.priority;
  }
  void account(Thread& thread, Cycles ran) override {
    if (quantum_) thread.level_used += ran;
  }
  bool slice_expired(std::size_t core, Thread& thread, Cycles) override {
    thread.level_used = 0; // a new slice, here or after the others of its priority
    const auto& levels = queues_[core];
    return !levels.empty() && levels.begin()->first >= thread.priority;
  }

private:
  std::vector<std::map<int, RunQueue, std::greater<int>>> queues_;
  std::vector<std::size_t> sizes_ = std::vector<std::size_t>(queues_.size(), 0);
  Cycles quantum_;
};

const SchedulerRegistrar register_priority(
    {"priority",
     "static priority with preemption: the largest priority runs; equal ones FIFO, or round "
     "robin when quantum > 0",
     {"machine.scheduler (priority)",
      "",
      {quantum_param(0, 0, "time slice among equal priorities; 0: none (FIFO)")}},
     [](std::size_t cores, const json& params, double hz) {
       return std::make_unique<PriorityScheduler>(cores, read_time_cycles(params.at("quantum"), hz));
     },
     3});

// Multi-level feedback queue (OSTEP ch. 8, with the anti-gaming accounting): new threads enter the
// top level; a thread that has used its level's allotment (across any number of blockings) moves
// one level down; every boost_period all threads return to the top. Higher levels run first,
// round robin within a level, and a thread made ready above the running one preempts it.
class MlfqScheduler : public Scheduler {
public:
  MlfqScheduler(std::size_t cores, std::vector<Cycles> quanta, Cycles boost_period)
      : queues_(cores, std::vector<RunQueue>(quanta.size())), boosted_epoch_(cores, 0),
        quanta_(std::move(quanta)), boost_period_(boost_period) {}

  void enqueue(std::size_t core, Thread& thread, EnqueueReason why, Cycles now) override {
    refresh(thread, now);
    if (why == EnqueueReason::New) thread.level = 0, thread.level_used = 0;
    queues_[core][thread.level].push_back(&thread);
  }
  Thread* pick(std::size_t core, Cycles now) override {
    boost_queue(core, now);
    for (auto& queue : queues_[core]) {
      if (queue.empty()) continue;
      Thread* next = queue.front();
      queue.pop_front();
      return next;
    }
    return nullptr;
  }
  std::size_t queued(std::size_t core) const override {
    std::size_t total = 0;
    for (const auto& queue : queues_[core]) total += queue.size();
    return total;
  }
  Cycles slice_end(const Thread& thread, Cycles now) const override {
    Cycles end = now + (quanta_[thread.level] - thread.level_used);
    // Stop at the next boost too, so that the running thread is boosted on time.
    if (boost_period_) end = std::min(end, (epoch(now) + 1) * boost_period_);
    return end;
  }
  bool preempts(std::size_t, const Thread& woken, const Thread& running, Cycles) override {
    return woken.level < running.level;
  }
  void account(Thread& thread, Cycles ran) override {
    thread.level_used += ran;
    if (thread.level_used >= quanta_[thread.level]) {
      if (thread.level + 1u < quanta_.size()) ++thread.level;
      thread.level_used = 0;
    }
  }
  bool slice_expired(std::size_t core, Thread& thread, Cycles now) override {
    refresh(thread, now);
    boost_queue(core, now);
    for (std::size_t level = 0; level <= thread.level; ++level)
      if (!queues_[core][level].empty()) return true;
    return false;
  }

private:
  std::uint64_t epoch(Cycles now) const { return boost_period_ ? now / boost_period_ : 0; }
  // Boosts are applied lazily, whenever the scheduler looks at a thread or a queue after a boundary.
  void refresh(Thread& thread, Cycles now) const {
    if (thread.boost_epoch < epoch(now))
      thread.boost_epoch = epoch(now), thread.level = 0, thread.level_used = 0;
  }
  void boost_queue(std::size_t core, Cycles now) {
    if (boosted_epoch_[core] >= epoch(now)) return;
    boosted_epoch_[core] = epoch(now);
    auto& levels = queues_[core];
    for (std::size_t level = 1; level < levels.size(); ++level) {
      for (Thread* thread : levels[level]) {
        refresh(*thread, now);
        levels[0].push_back(thread);
      }
      levels[level].clear();
    }
  }

  std::vector<std::vector<RunQueue>> queues_;
  std::vector<std::uint64_t> boosted_epoch_;
  std::vector<Cycles> quanta_;
  Cycles boost_period_;
};

ParamTable mlfq_params() {
  ParamTable table{"machine.scheduler (mlfq)", "", {}};
  table.params.push_back({"levels", ParamType::Integer, 3, "", "number of priority levels", 1.0, 64.0});
  ParamSpec quanta{
      "quantum", ParamType::TimeList, json::array({"10ms", "20ms", "40ms"}), "cycles or duration",
      "allotment per level, top level first: one time for all levels or a list of `levels` times"};
  quanta.min = 1;
  table.params.push_back(quanta);
  table.params.push_back({"boost_period", ParamType::Time, "1s", "cycles or duration",
                          "every thread returns to the top level this "
                          "often; 0: never",
                          0.0});
  return table;
}

const SchedulerRegistrar register_mlfq(
    {"mlfq", "multi-level feedback queue with per-level quantum and periodic priority boost", mlfq_params(),
     [](std::size_t cores, const json& params, double hz) {
       auto levels = params.at("levels").get<std::size_t>();
       auto quanta = read_time_list(params.at("quantum"), hz);
       if (quanta.size() == 1) quanta.resize(levels, quanta[0]);
       return std::make_unique<MlfqScheduler>(cores, quanta, read_time_cycles(params.at("boost_period"), hz));
     },
     4});

} // namespace

SchedulerRegistrar::SchedulerRegistrar(SchedulerDecl decl) { registry().add(std::move(decl)); }

const std::vector<SchedulerDecl>& scheduler_registry() { return registry().all(); }

const SchedulerDecl* find_scheduler(const std::string& name) { return registry().find(name); }

std::vector<std::string> scheduler_names() { return registry().names(); }

} // namespace ipcsim
