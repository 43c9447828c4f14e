// The kernel's second-edition mechanisms, driven by ops that exist only in this test binary (the
// mechanisms to come, signals and migrating calls, will drive them from scenarios): the activation
// stack, direct switch, interrupting a blocked call, address spaces as objects, and events.
#include "harness.hpp"
#include "ipc.hpp"

#include <doctest/doctest.h>
#include <iostream>

using namespace ipcsim;
using namespace ipcsim::test;

namespace {

Thread& thread_named(Kernel& kernel, const std::string& name) {
  for (const auto& t : kernel.threads())
    if (t.display_name() == name) return const_cast<Thread&>(t);
  throw std::runtime_error("no thread " + name);
}

ParamSpec name_param(const char* field) { return {field, ParamType::String, nullptr, "", "a thread"}; }

// {"op": "test_switch", "to": THREAD}: a system call that hands the core to THREAD (blocked) by a
// direct switch; the caller goes back to the run queue.
class SwitchOp : public Op {
public:
  SwitchOp(std::uint16_t activity, std::string to) : Op(activity), to_(std::move(to)) {}
  Step execute(OpContext& ctx) const override {
    if (ctx.thread.phase == 0) {
      ctx.enter_syscall(activity);
      ctx.thread.phase = 1;
      Thread& next = thread_named(ctx.kernel, to_);
      if (ctx.kernel.direct_switch(ctx, next, ThreadState::Ready)) return Step::Switched;
    }
    ctx.thread.phase = 0;
    ctx.leave_syscall(activity);
    ++ctx.thread.pc;
    return Step::Continue;
  }

private:
  std::string to_;
};

// {"op": "test_interrupt", "thread": THREAD}: interrupts THREAD's blocked call (as a signal will).
class InterruptOp : public Op {
public:
  InterruptOp(std::uint16_t activity, std::string target) : Op(activity), target_(std::move(target)) {}
  Step execute(OpContext& ctx) const override {
    ctx.enter_syscall(activity);
    bool interrupted = ctx.kernel.interrupt(ctx, thread_named(ctx.kernel, target_), activity);
    ctx.succeed(interrupted ? 1 : 0);
    ctx.leave_syscall(activity);
    ++ctx.thread.pc;
    return Step::Continue;
  }

private:
  std::string target_;
};

// {"op": "test_upcall", "body": [...], "space_of": PROCESS}: runs body as a frame on top of this
// op, in PROCESS's address space (default: its own), then carries on after the op.
class UpcallOp : public Op {
public:
  UpcallOp(std::uint16_t activity, std::shared_ptr<const Program> body, std::string space_of)
      : Op(activity), body_(std::move(body)), space_of_(std::move(space_of)) {}
  Step execute(OpContext& ctx) const override {
    if (ctx.thread.phase == 0) {
      ctx.thread.phase = 1;
      AddressSpace* space = ctx.thread.process->space;
      if (!space_of_.empty()) space = ctx.kernel.find_process(space_of_, 0)->space;
      ctx.kernel.push_frame(ctx, *body_, *space, activity);
      return Step::Continue;
    }
    ctx.thread.phase = 0;
    ++ctx.thread.pc;
    return Step::Continue;
  }

private:
  std::shared_ptr<const Program> body_;
  std::string space_of_;
};

const OpRegistrar
    register_switch({"test_switch",
                     "(test binary only) direct switch to a blocked thread",
                     {"test_switch op", "", {name_param("to")}},
                     [](const json& f, const std::string&, CompileContext&, Program& p, std::uint16_t a) {
                       p.ops.push_back(std::make_unique<SwitchOp>(a, f.at("to").get<std::string>()));
                     }});

const OpRegistrar register_interrupt(
    {"test_interrupt",
     "(test binary only) interrupt a thread's blocked call",
     {"test_interrupt op", "", {name_param("thread")}},
     [](const json& f, const std::string&, CompileContext&, Program& p, std::uint16_t a) {
       p.ops.push_back(std::make_unique<InterruptOp>(a, f.at("thread").get<std::string>()));
     }});

const OpRegistrar register_upcall(
    {"test_upcall",
     "(test binary only) run a body as a frame on top of this op",
     {"test_upcall op",
      "",
      {{"body", ParamType::Script, nullptr, "", "ops"},
       {"space_of", ParamType::String, "", "", "the process whose address space the body runs in"}}},
     [](const json& f, const std::string& path, CompileContext& ctx, Program& p, std::uint16_t a) {
       auto body = compile_script(f.at("body"), path + ".body", ctx);
       p.ops.push_back(std::make_unique<UpcallOp>(a, body, f.at("space_of").get<std::string>()));
     }});

Cycles charged_total(const Run& run, const std::string& thread, Primitive primitive) {
  Cycles total = 0;
  for (const auto& c : run.account(thread).charges)
    if (c.primitive == static_cast<std::uint8_t>(primitive)) total += c.cycles;
  return total;
}

} // namespace

TEST_CASE("kernel: a direct switch runs the blocked thread at once, without the scheduler's pick") {
  // b sleeps on a pipe read; a writes (b is woken onto the run queue behind c), then... instead a
  // blocked b is handed the core directly by a's test_switch: b runs before c, which was ready first.
  auto run = run_text(R"({"machine": {"costs": "teaching"},
    "processes": [{"name": "p", "working_set_pages": 0, "threads": [
      {"name": "a", "script": [{"op": "pipe", "fds": ["r", "w"]}, {"op": "sleep", "time": 5000},
                              {"op": "test_switch", "to": "p/b"}, {"op": "print", "text": "a back"}]},
      {"name": "b", "script": [{"op": "sleep", "time": 100000}, {"op": "print", "text": "b woke {errno}"}]},
      {"name": "c", "script": [{"op": "sleep", "time": 5000}, {"op": "print", "text": "c ran"}]}]}]})");
  // At 5000+ a and c are ready; a runs first and switches to b: b prints before c and a.
  auto lines = console_texts(run);
  REQUIRE(lines.size() == 3);
  CHECK(lines[0] == "b woke ");
  CHECK(lines[1] == "c ran");
  CHECK(lines[2] == "a back");
  // b's timer was disarmed: it did not sleep 100000 cycles.
  CHECK(run.finished("p/b") < 100000);
  // The switch to b charged no sched_pick (dispatches: a, b, c at start, then a, b(direct), c, a).
  Cycles picks = 0;
  for (const char* t : {"p/a", "p/b", "p/c"}) picks += charged_total(run, t, Primitive::sched_pick);
  std::uint64_t switches = run.kernel->cores()[0]->context_switches;
  std::cout << "direct switch: " << switches << " dispatches, " << picks / 100 << " picks\n";
  CHECK(picks / 100 == switches - 1);
}

TEST_CASE("kernel: eevdf: a direct switch to a thread asleep but still on its core's queue runs it") {
  // Was a bug: D, having run 20 cycles ahead of the mean, goes to sleep delayed (kept on the queue,
  // DELAY_DEQUEUE); T's direct switch to it dispatched it still marked asleep, and the next pick
  // dropped it from the queue once a tick had preempted it: D never ran again.
  auto run =
      run_text(R"({"machine": {"cores": 1, "costs": "ideal", "scheduler": {"policy": "eevdf", "slice": 30,
    "tick": 10}}, "processes": [{"name": "p", "threads": [
      {"name": "D", "script": [{"op": "compute", "time": 20}, {"op": "sleep", "time": 100000},
                              {"op": "compute", "time": 100}]},
      {"name": "T", "script": [{"op": "compute", "time": 5}, {"op": "test_switch", "to": "p/D"},
                              {"op": "compute", "time": 5}]},
      {"name": "A", "script": [{"op": "compute", "time": 200}]}]}]})");
  CHECK(run.kernel->runtime_error().empty());
  CHECK(run.finished("p/D") < 100000); // handed the core, its sleep cut short
  CHECK(run.finished("p/T") != kNever);
  CHECK(run.finished("p/A") != kNever);
}

TEST_CASE("kernel: a direct switch to a thread that is not asleep does nothing; the caller goes on") {
  // b has finished sleeping and waits on the run queue behind a: no switch, a prints first, and b
  // keeps its ordinary wakeup (its sleep ended with no error).
  auto run = run_text(R"({"machine": {"costs": "teaching"},
    "processes": [{"name": "p", "working_set_pages": 0, "threads": [
      {"name": "a", "script": [{"op": "compute", "time": 20000}, {"op": "test_switch", "to": "p/b"},
                              {"op": "print", "text": "a went on"}]},
      {"name": "b", "script": [{"op": "sleep", "time": 1000}, {"op": "print", "text": "b woke {errno}"}]}]}]})");
  CHECK(console_texts(run) == std::vector<std::string>{"a went on", "b woke "});
}

TEST_CASE("kernel: interrupting a blocked call ends it with EINTR; a killed caller's call is cancelled") {
  auto run = run_text(R"({"machine": {"costs": "ideal"},
    "processes": [{"name": "p", "threads": [
      {"name": "reader", "script": [{"op": "pipe", "fds": ["r", "w"]}, {"op": "read", "fd": "r", "bytes": 8},
                                   {"op": "print", "text": "read {result} {errno}"},
                                   {"op": "sleep", "time": 1000}, {"op": "print", "text": "slept {errno}"}]},
      {"name": "other", "script": [{"op": "sleep", "time": 10}, {"op": "test_interrupt", "thread": "p/reader"},
                                  {"op": "print", "text": "interrupted {result}"},
                                  {"op": "sleep", "time": 10}, {"op": "test_interrupt", "thread": "p/reader"},
                                  {"op": "sleep", "time": 2000}, {"op": "test_interrupt", "thread": "p/reader"},
                                  {"op": "print", "text": "again {result}"}]}]}]})");
  CHECK(console_texts(run) ==
        std::vector<std::string>{"interrupted 1", "read -1 EINTR", "slept EINTR", "again 0"});
}

TEST_CASE("kernel: a frame runs on top of an op and returns to it, in its own or another address space") {
  // The body runs in the server's space: the core switches spaces into it and back out.
  auto run = run_text(R"({"machine": {"costs": "teaching"},
    "processes": [
      {"name": "client", "working_set_pages": 2, "script": [
        {"op": "set", "var": "x", "value": 1},
        {"op": "read", "fd": "nope", "bytes": 1},
        {"op": "test_upcall", "space_of": "server", "body": [
          {"op": "print", "text": "in the frame: errno {errno}"},
          {"op": "close", "fd": "nope2"},
          {"op": "set", "var": "x", "value": 2},
          {"op": "print", "text": "in the frame: errno {errno}"}]},
        {"op": "print", "text": "back: errno {errno} x {x}"}]},
      {"name": "server", "arrival": "1ms", "working_set_pages": 3, "script": []}]})");
  // The interrupted frame's result and errno come back intact; variables are the thread's.
  CHECK(console_texts(run) == std::vector<std::string>{"in the frame: errno EBADF",
                                                       "in the frame: errno EBADF", "back: errno EBADF x 2"});
  // Dispatch loads the client's space (500 + 2*20); the frame loads the server's (500 + 3*20) and
  // returning reloads the client's (500 + 2*20): all charged to the client.
  CHECK(run.charged("client", "dispatch", Primitive::address_space_switch) == 500);
  CHECK(run.charged("client", "test_upcall", Primitive::address_space_switch) == 1000);
  CHECK(run.charged("client", "test_upcall", Primitive::tlb_refill_per_page) == 3 * 20 + 2 * 20);
}

TEST_CASE("kernel: every process has an address space object; threads run in their process's") {
  auto run = run_text(R"({"processes": [{"name": "p", "count": 2, "working_set_pages": 5, "threads": [
      {"name": "t", "count": 2, "script": []}]}]})");
  const auto& threads = run.kernel->threads();
  REQUIRE(threads.size() == 4);
  CHECK(threads[0].space == threads[1].space);
  CHECK(threads[0].space != threads[2].space);
  CHECK(threads[0].space == threads[0].process->space);
  CHECK(threads[2].space->owner == "p[1]");
  CHECK(threads[2].space->working_set_pages == 5);
}

namespace {
struct Counter : Observer {
  int dispatches = 0, prints = 0, exits = 0, user = 0;
  void on_dispatch(const Core&, const Thread&, Cycles) override { ++dispatches; }
  void on_print(const Thread&, const std::string&, Cycles) override { ++prints; }
  void on_process_exit(OpContext&, Process&) override { ++exits; }
  void on_user_run(const Core&, const Thread&, Cycles start, Cycles end) override {
    user += static_cast<int>(end - start);
  }
};
} // namespace

TEST_CASE("kernel: observers hear dispatches, prints, user time and process exits") {
  auto scenario = load_scenario_text(R"({"machine": {"costs": "ideal"}, "processes": [
      {"name": "p", "count": 3, "script": [{"op": "compute", "time": 70}, {"op": "print", "text": "hi"}]}]})",
                                     "test.json", {});
  Kernel kernel(scenario->model());
  Counter counter;
  kernel.subscribe(counter);
  kernel.run();
  CHECK(counter.dispatches == static_cast<int>(kernel.cores()[0]->context_switches));
  CHECK(counter.prints == 3);
  CHECK(counter.exits == 3);
  CHECK(counter.user == 210);
}
