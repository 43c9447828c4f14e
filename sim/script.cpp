#include "script.hpp"

#include "error.hpp"
#include "sched.hpp"

#include <map>

namespace ipcsim {

namespace {

std::vector<OpDecl>& registry() {
  static std::vector<OpDecl> ops;
  return ops;
}

// ---- Built-in ops ----------------------------------------------------------------------------

class ComputeOp : public Op {
public:
  ComputeOp(std::uint16_t activity, Cycles cycles) : Op(activity), cycles_(cycles) {}
  Step execute(OpContext& ctx) const override {
    if (cycles_ == 0) {
      ++ctx.thread.pc;
      return Step::Continue;
    }
    ctx.compute = cycles_;
    return Step::Compute;
  }

private:
  Cycles cycles_;
};

class SleepOp : public Op {
public:
  SleepOp(std::uint16_t activity, Cycles cycles) : Op(activity), cycles_(cycles) {}
  Step execute(OpContext& ctx) const override {
    Thread& thread = ctx.thread;
    if (thread.phase == 0) {
      ctx.enter_syscall(activity);
      ctx.sync();
      thread.phase = 1;
      ctx.kernel.block(ctx.core, thread, nullptr, cycles_);
      return Step::Block;
    }
    thread.phase = 0;
    ctx.leave_syscall(activity);
    ++thread.pc;
    return Step::Continue;
  }

private:
  Cycles cycles_;
};

class YieldOp : public Op {
public:
  using Op::Op;
  Step execute(OpContext& ctx) const override {
    Thread& thread = ctx.thread;
    if (thread.phase == 0) {
      ctx.enter_syscall(activity);
      ctx.sync();
      // With nobody else runnable here, sched_yield returns at once: no context switch.
      if (ctx.kernel.scheduler().queued(ctx.core.index) == 0) {
        ctx.charge(activity, Primitive::sched_pick);
        ctx.leave_syscall(activity);
        ++thread.pc;
        return Step::Continue;
      }
      thread.phase = 1;
      return Step::Yield;
    }
    thread.phase = 0;
    ctx.leave_syscall(activity);
    ++thread.pc;
    return Step::Continue;
  }
};

class ExitOp : public Op {
public:
  using Op::Op;
  Step execute(OpContext&) const override { return Step::Exit; }
};

// Waits until every copy of a process has exited (waitpid on each in turn).
class JoinOp : public Op {
public:
  JoinOp(std::uint16_t activity, std::string process) : Op(activity), process_(std::move(process)) {}
  Step execute(OpContext& ctx) const override {
    Thread& thread = ctx.thread;
    if (thread.phase == 0) {
      ctx.enter_syscall(activity);
      thread.phase = 1;
    }
    ctx.sync();
    for (std::uint32_t copy = 0;; ++copy) {
      Process* target = ctx.kernel.find_process(process_, copy);
      if (!target) break;
      if (target->live_threads == 0) continue;
      if (target == ctx.thread.process && target->live_threads == 1)
        break; // joining itself: nothing to wait for
      ctx.kernel.block(ctx.core, thread, &ctx.kernel.exit_queue(*target));
      return Step::Block;
    }
    thread.phase = 0;
    ctx.leave_syscall(activity);
    ++thread.pc;
    return Step::Continue;
  }

private:
  std::string process_;
};

class RepeatBeginOp : public Op {
public:
  RepeatBeginOp(std::uint16_t activity, std::uint32_t count) : Op(activity), count_(count) {}
  std::uint32_t end_pc = 0; // the op after the matching RepeatEndOp
  Step execute(OpContext& ctx) const override {
    if (count_ == 0) {
      ctx.thread.pc = end_pc;
    } else {
      ctx.thread.loops.push_back(count_);
      ++ctx.thread.pc;
    }
    return Step::Continue;
  }

private:
  std::uint32_t count_;
};

class RepeatEndOp : public Op {
public:
  RepeatEndOp(std::uint16_t activity, std::uint32_t body_pc) : Op(activity), body_pc_(body_pc) {}
  Step execute(OpContext& ctx) const override {
    auto& loops = ctx.thread.loops;
    if (--loops.back() > 0) {
      ctx.thread.pc = body_pc_;
    } else {
      loops.pop_back();
      ++ctx.thread.pc;
    }
    return Step::Continue;
  }

private:
  std::uint32_t body_pc_;
};

class BeginOp : public Op {
public:
  BeginOp(std::uint16_t activity, std::uint32_t name) : Op(activity), name_(name) {}
  Step execute(OpContext& ctx) const override {
    ctx.thread.open_intervals.push_back({name_, ctx.now()});
    ++ctx.thread.pc;
    return Step::Continue;
  }

private:
  std::uint32_t name_;
};

class EndOp : public Op {
public:
  EndOp(std::uint16_t activity, std::uint32_t name, std::uint64_t bytes)
      : Op(activity), name_(name), bytes_(bytes) {}
  Step execute(OpContext& ctx) const override {
    auto& open = ctx.thread.open_intervals;
    for (auto it = open.rbegin(); it != open.rend(); ++it) {
      if (it->name != name_) continue;
      ctx.kernel.record_interval({name_, ctx.thread.id, it->start, ctx.now(), bytes_});
      open.erase(std::next(it).base());
      break;
    }
    ++ctx.thread.pc;
    return Step::Continue;
  }

private:
  std::uint32_t name_;
  std::uint64_t bytes_;
};

std::uint32_t intern(std::vector<std::string>& names, const std::string& name) {
  for (std::size_t i = 0; i < names.size(); ++i)
    if (names[i] == name) return static_cast<std::uint32_t>(i);
  names.push_back(name);
  return static_cast<std::uint32_t>(names.size() - 1);
}

ParamSpec time_param(const std::string& description) {
  return {"time", ParamType::Time, nullptr, "cycles or duration", description};
}

const OpRegistrar register_compute_op(
    {"compute",
     "burn CPU time in user mode (interruptible by preemption)",
     {"compute op", "", {time_param("how long: whole cycles, or a duration at the machine clock")}},
     [](const json& f, const std::string&, CompileContext& ctx, Program& p, std::uint16_t a) {
       p.ops.push_back(std::make_unique<ComputeOp>(a, read_time_cycles(f.at("time"), ctx.read.hz)));
     }});

const OpRegistrar register_sleep_op(
    {"sleep",
     "block for a time (a system call; a timer interrupt wakes the thread)",
     {"sleep op", "", {time_param("how long to sleep")}},
     [](const json& f, const std::string&, CompileContext& ctx, Program& p, std::uint16_t a) {
       p.ops.push_back(std::make_unique<SleepOp>(a, read_time_cycles(f.at("time"), ctx.read.hz)));
     }});

const OpRegistrar register_yield_op({"yield",
                                     "give up the CPU to the next ready thread on this core (sched_yield)",
                                     {"yield op", "", {}},
                                     [](const json&, const std::string&, CompileContext&, Program& p,
                                        std::uint16_t a) { p.ops.push_back(std::make_unique<YieldOp>(a)); }});

const OpRegistrar register_exit_op({"exit",
                                    "end the thread now (the end of a script exits too)",
                                    {"exit op", "", {}},
                                    [](const json&, const std::string&, CompileContext&, Program& p,
                                       std::uint16_t) { p.ops.push_back(std::make_unique<ExitOp>(kExit)); }});

const OpRegistrar register_join_op(
    {"join",
     "block until every copy of a process has exited (waitpid)",
     {"join op", "", {{"process", ParamType::String, nullptr, "", "name of the process to wait for"}}},
     [](const json& f, const std::string& path, CompileContext& ctx, Program& p, std::uint16_t a) {
       auto name = f.at("process").get<std::string>();
       bool known = false;
       for (const auto& n : ctx.process_names) known = known || n == name;
       if (!known)
         fail_at(ctx.read.file, join_path(path, "process"),
                 "unknown process \"" + name + "\"" + did_you_mean(name, ctx.process_names) +
                     "; processes: " + join_list(ctx.process_names));
       p.ops.push_back(std::make_unique<JoinOp>(a, name));
     }});

const OpRegistrar register_repeat_op(
    {"repeat",
     "run `body` `count` times",
     {"repeat op",
      "",
      {{"count", ParamType::Integer, nullptr, "", "number of iterations", 0.0, 4294967295.0},
       {"body", ParamType::Script, nullptr, "", "the ops to repeat"}}},
     [](const json& f, const std::string& path, CompileContext& ctx, Program& p, std::uint16_t a) {
       auto count = f.at("count").get<std::uint32_t>();
       auto begin_index = p.ops.size();
       auto begin = std::make_unique<RepeatBeginOp>(a, count);
       auto* begin_raw = begin.get();
       p.ops.push_back(std::move(begin));
       compile_ops(f.at("body"), join_path(path, "body"), ctx, p);
       p.ops.push_back(std::make_unique<RepeatEndOp>(a, static_cast<std::uint32_t>(begin_index + 1)));
       begin_raw->end_pc = static_cast<std::uint32_t>(p.ops.size());
     }});

const OpRegistrar register_begin_op(
    {"begin",
     "open a measured interval (free: measuring costs nothing)",
     {"begin op", "", {{"name", ParamType::String, nullptr, "", "the interval's name"}}},
     [](const json& f, const std::string&, CompileContext& ctx, Program& p, std::uint16_t a) {
       p.ops.push_back(std::make_unique<BeginOp>(a, intern(*ctx.interval_names, f.at("name"))));
     }});

const OpRegistrar
    register_end_op({"end",
                     "close the innermost open interval of that name and record it",
                     {"end op",
                      "",
                      {{"name", ParamType::String, nullptr, "", "the interval's name"},
                       {"bytes", ParamType::Bytes, 0, "bytes", "work done in the interval, for throughput"}}},
                     [](const json& f, const std::string&, CompileContext& ctx, Program& p, std::uint16_t a) {
                       p.ops.push_back(std::make_unique<EndOp>(a, intern(*ctx.interval_names, f.at("name")),
                                                               read_bytes(f.at("bytes"))));
                     }});

} // namespace

OpRegistrar::OpRegistrar(OpDecl decl) { registry().push_back(std::move(decl)); }

const std::vector<OpDecl>& op_registry() { return registry(); }

const OpDecl* find_op(const std::string& name) {
  for (const auto& decl : registry())
    if (decl.name == name) return &decl;
  return nullptr;
}

std::vector<std::string> op_names() {
  std::vector<std::string> names;
  for (const auto& decl : registry()) names.push_back(decl.name);
  return names;
}

void compile_ops(const json& ops, const std::string& path, CompileContext& ctx, Program& program) {
  if (!ops.is_array()) fail_at(ctx.read.file, path, "expected a list of ops, got " + ops.dump());
  // Intervals must open and close within one list, so that every run of the list closes what it
  // opened; an `end` with nothing open, or a `begin` never closed, is a mistake worth naming.
  std::map<std::string, std::string> open; // name -> path of its begin
  for (std::size_t i = 0; i < ops.size(); ++i) {
    const json& op = ops[i];
    std::string op_path = join_path(path, i);
    if (!op.is_object())
      fail_at(ctx.read.file, op_path, "expected an op object such as {\"op\": \"compute\", \"time\": 1000}");
    if (!op.contains("op"))
      fail_at(ctx.read.file, op_path, "missing \"op\"; accepted ops: " + join_list(op_names()));
    if (!op.at("op").is_string())
      fail_at(ctx.read.file, join_path(op_path, "op"),
              "invalid value " + op.at("op").dump() + "; expected an op name: " + join_list(op_names()));
    auto name = op.at("op").get<std::string>();
    const OpDecl* decl = find_op(name);
    if (!decl)
      fail_at(ctx.read.file, join_path(op_path, "op"),
              "unknown op \"" + name + "\"" + did_you_mean(name, op_names()) +
                  "; accepted ops: " + join_list(op_names()));
    json fields = resolve_object(op, op_path, decl->params, ctx.read, {"op"});
    fields.erase("op");
    if (name == "begin" || name == "end") {
      auto interval = fields.at("name").get<std::string>();
      if (name == "begin") {
        if (open.count(interval))
          fail_at(ctx.read.file, op_path,
                  "interval \"" + interval + "\" is already open (begun at " + open[interval] + ")");
        open[interval] = op_path;
      } else if (!open.erase(interval)) {
        fail_at(ctx.read.file, op_path,
                "\"end\" of interval \"" + interval +
                    "\" with no \"begin\" before it in the same list of ops");
      }
    }
    decl->compile(fields, op_path, ctx, program, register_activity(name));
  }
  if (!open.empty())
    fail_at(ctx.read.file, open.begin()->second,
            "interval \"" + open.begin()->first + "\" is begun but never ended in the same list of ops");
}

std::shared_ptr<const Program> compile_script(const json& ops, const std::string& path, CompileContext& ctx) {
  auto program = std::make_shared<Program>();
  compile_ops(ops, path, ctx, *program);
  return program;
}

} // namespace ipcsim
