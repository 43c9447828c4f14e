#include "script.hpp"

#include "error.hpp"
#include "ipc.hpp"
#include "names.hpp"
#include "registry.hpp"
#include "sched.hpp"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <deque>
#include <limits>
#include <map>
#include <optional>
#include <unordered_set>

namespace ipcsim {

std::string elsewhere_note(const CompileContext& ctx, const std::string& name) {
  if (!ctx.placed || ctx.machine.empty()) return "";
  for (const auto& [placed, machine] : *ctx.placed)
    if (placed == name && machine != ctx.machine)
      return " (\"" + name + "\" is on machine " + machine + "; this script runs on machine " + ctx.machine +
             ", and machines share no kernel objects)";
  return "";
}

namespace {
// A repeat's count is held per thread in 32 bits (Thread::loops).
constexpr std::int64_t kMaxRepeatCount = 4294967295;

// The op compile_ops is compiling, as written: repeat, if and while read their nested lists from it
// rather than from a copy (a copy of each level's subtree made validation quadratic in nesting
// depth: 5,000 nested repeats took 4 GB).
thread_local const json* t_op_in_place = nullptr;
const json& nested_ops(const json& fields, const char* key) {
  if (t_op_in_place && t_op_in_place->contains(key)) return t_op_in_place->at(key);
  return fields.at(key); // a default ("else": [])
}

Registry<OpDecl>& registry() {
  static Registry<OpDecl> ops;
  return ops;
}

// ---- Built-in ops ----------------------------------------------------------------------------

class ComputeOp : public Op {
public:
  ComputeOp(std::uint16_t activity, TimeRef cycles) : Op(activity), cycles_(std::move(cycles)) {}
  Step execute(OpContext& ctx) const override {
    Cycles cycles = 0;
    // A compute interrupted part-way keeps its cycles left (Thread::compute_left): the variable is
    // read once, when the burst starts.
    if (ctx.thread.compute_left == 0 && !cycles_.resolve(ctx, cycles, "compute", "time")) return Step::Exit;
    if (ctx.thread.compute_left == 0 && cycles == 0) {
      ++ctx.thread.pc;
      return Step::Continue;
    }
    ctx.compute = cycles;
    return Step::Compute;
  }

private:
  TimeRef cycles_;
};

// nanosleep (kernel/time/hrtimer.c do_nanosleep): asleep until its timer expires, or until a signal
// to handle wakes it (Kernel::interrupt). Then, as do_nanosleep's loop: an expired timer returns 0,
// even with a signal pending (the handler runs after); a pending signal returns ERESTARTSYS, which
// the delivery turns into EINTR (nanosleep is never restarted after a handler, signal(7)). An
// interruption with no signal left to handle fails with EINTR, as Kernel::interrupt promises (and
// as wait_on does). The kernel's own wake (its process is being killed) returns 0 at once.
class SleepOp : public Op {
public:
  SleepOp(std::uint16_t activity, TimeRef cycles) : Op(activity), cycles_(std::move(cycles)) {}
  Step execute(OpContext& ctx) const override {
    Thread& thread = ctx.thread;
    if (thread.phase == 0) {
      Cycles cycles = 0;
      if (!cycles_.resolve(ctx, cycles, "sleep", "time")) return Step::Exit;
      ctx.enter_syscall(activity);
      ctx.sync();
      thread.phase = 1;
      const Cycles now = ctx.now();
      thread.op_deadline = cycles >= kNever - now ? kNever : now + cycles;
      if (!thread.signal_pending) { // one that came while entering: do not sleep (schedule() would not)
        ctx.kernel.block(ctx.core, thread, nullptr, cycles);
        return Step::Block;
      }
    } else if (thread.wait_result == WaitResult::Interrupted) {
      ctx.sync(); // by now the timer may have expired anyway (hrtimer_cancel finds it fired)
    }
    thread.phase = 0;
    if (thread.wait_result == WaitResult::TimedOut || ctx.now() >= thread.op_deadline) {
      ctx.succeed();
    } else if (thread.signal_pending) { // a signal to handle before the end: the delivery makes it EINTR
      thread.result = -1;
      thread.error = kERESTARTSYS;
    } else if (thread.wait_result == WaitResult::Interrupted) {
      ctx.fail(activity, EINTR);
    } else {
      ctx.succeed();
    }
    ctx.leave_syscall(activity);
    ++thread.pc;
    return Step::Continue;
  }

private:
  TimeRef cycles_;
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
      // Waiting for its own process would wait for itself to exit: fail at once, as pthread_join
      // of the calling thread does (EDEADLK), instead of returning as if the wait were over.
      if (thread.process->spec->name == process_) {
        ctx.fail(activity, EDEADLK);
        ctx.leave_syscall(activity);
        ++thread.pc;
        return Step::Continue;
      }
      thread.phase = 1;
    }
    ctx.sync();
    bool interrupted = false;
    for (std::uint32_t copy = 0;; ++copy) {
      Process* target = ctx.kernel.find_process(process_, copy);
      if (!target) break;
      if (target->live_threads == 0) continue;
      if (thread.signal_pending) { // a handler to run first: the delivery restarts the wait (waitpid)
        thread.result = -1;
        thread.error = kERESTARTSYS;
        interrupted = true;
        break;
      }
      ctx.kernel.block(ctx.core, thread, &ctx.kernel.exit_queue(*target));
      return Step::Block;
    }
    thread.phase = 0;
    if (!interrupted) ctx.succeed();
    ctx.leave_syscall(activity);
    ++thread.pc;
    return Step::Continue;
  }

private:
  std::string process_;
};

class RepeatBeginOp : public Op {
public:
  RepeatBeginOp(std::uint16_t activity, IntRef count) : Op(activity), count_(std::move(count)) {}
  std::uint32_t end_pc = 0; // the op after the matching RepeatEndOp
  Step execute(OpContext& ctx) const override {
    std::int64_t count = 0;
    if (!count_.resolve_field(ctx, count, "repeat", "count", 0, kMaxRepeatCount, true)) return Step::Exit;
    if (count == 0) {
      ctx.thread.pc = end_pc;
    } else {
      ctx.thread.loops.push_back(static_cast<std::uint32_t>(count));
      ++ctx.thread.pc;
    }
    return Step::Continue;
  }

private:
  IntRef count_;
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
      ctx.kernel.record_interval(ctx.thread, name_, it->start, ctx.now(), bytes_, ctx.thread.id);
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

// Keyed intervals, open across threads: a begin with a key ("{n}", the text a message carries)
// and an end with the same name and key, in any thread of the machine (producer to consumer).
// Several begins with one key are ended first in, first out.
struct KeyedIntervals : IpcState {
  explicit KeyedIntervals(Kernel&) {}
  struct Open {
    Cycles start;
    std::uint32_t thread;
  };
  std::map<std::pair<std::uint32_t, std::string>, std::deque<Open>> open;
};

class KeyedBeginOp : public Op {
public:
  KeyedBeginOp(std::uint16_t activity, std::uint32_t name, const std::string& key)
      : Op(activity), name_(name), key_(key) {}
  Step execute(OpContext& ctx) const override {
    auto key = key_.format(ctx.kernel, ctx.thread);
    ctx.kernel.ipc<KeyedIntervals>().open[{name_, key}].push_back({ctx.now(), ctx.thread.id});
    ++ctx.thread.pc;
    return Step::Continue;
  }

private:
  std::uint32_t name_;
  Template key_;
};

class KeyedEndOp : public Op {
public:
  KeyedEndOp(std::uint16_t activity, std::uint32_t name, const std::string& key, std::uint64_t bytes)
      : Op(activity), name_(name), key_(key), bytes_(bytes) {}
  Step execute(OpContext& ctx) const override {
    auto key = key_.format(ctx.kernel, ctx.thread);
    auto& open = ctx.kernel.ipc<KeyedIntervals>().open;
    auto found = open.find({name_, key});
    if (found == open.end()) {
      ctx.kernel.abort_run(ctx.thread, "end of interval \"" + ctx.kernel.model().interval_names[name_] +
                                           "\" with key \"" + key +
                                           "\": no begin with that name and key is open (a keyed interval "
                                           "is begun once for each end, in any thread)");
      return Step::Exit;
    }
    auto begun = found->second.front();
    found->second.pop_front();
    if (found->second.empty()) open.erase(found);
    ctx.kernel.record_interval(ctx.thread, name_, begun.start, ctx.now(), bytes_, begun.thread);
    ++ctx.thread.pc;
    return Step::Continue;
  }

private:
  std::uint32_t name_;
  Template key_;
  std::uint64_t bytes_;
};

std::uint32_t intern(CompileContext& ctx, const std::string& name) {
  auto [it, added] =
      ctx.interval_index.try_emplace(name, static_cast<std::uint32_t>(ctx.interval_names->size()));
  if (added) ctx.interval_names->push_back(name);
  return it->second;
}

ParamSpec time_param(const std::string& description) {
  return variable_field({"time", ParamType::Time, nullptr, "cycles or duration", description});
}

const OpRegistrar register_compute_op(
    {"compute",
     "burn CPU time in user mode (interruptible by preemption)",
     {"compute op", "", {time_param("how long: whole cycles, or a duration at the machine clock")}},
     [](const json& f, const std::string& path, CompileContext& ctx, Program& p, std::uint16_t a) {
       p.ops.push_back(std::make_unique<ComputeOp>(a, read_time_field(f, "time", path, ctx)));
     }});

const OpRegistrar register_sleep_op(
    {"sleep",
     "block for a time (nanosleep: a timer interrupt wakes the thread; a handled signal ends it early, "
     "EINTR)",
     {"sleep op", "", {time_param("how long to sleep")}},
     [](const json& f, const std::string& path, CompileContext& ctx, Program& p, std::uint16_t a) {
       p.ops.push_back(std::make_unique<SleepOp>(a, read_time_field(f, "time", path, ctx)));
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
     "block until every copy of a process has exited (waitpid); its own process: EDEADLK",
     {"join op", "", {{"process", ParamType::String, nullptr, "", "name of the process to wait for"}}},
     [](const json& f, const std::string& path, CompileContext& ctx, Program& p, std::uint16_t a) {
       auto name = f.at("process").get<std::string>();
       bool known = false;
       for (const auto& n : ctx.process_names) known = known || n == name;
       if (!known)
         fail_at(ctx.read.file, join_path(path, "process"),
                 "unknown process \"" + name + "\"" + did_you_mean(name, ctx.process_names) +
                     "; processes: " + join_list(ctx.process_names) + elsewhere_note(ctx, name));
       p.ops.push_back(std::make_unique<JoinOp>(a, name));
     }});

const OpRegistrar register_repeat_op(
    {"repeat",
     "run `body` `count` times",
     {"repeat op",
      "",
      {variable_field({"count", ParamType::Integer, nullptr, "", "number of iterations", 0.0,
                       static_cast<double>(kMaxRepeatCount)}),
       {"body", ParamType::Script, nullptr, "", "the ops to repeat"}}},
     [](const json& f, const std::string& path, CompileContext& ctx, Program& p, std::uint16_t a) {
       auto count = read_int_field(f, "count", path, ctx);
       auto begin_index = p.ops.size();
       auto begin = std::make_unique<RepeatBeginOp>(a, count);
       auto* begin_raw = begin.get();
       p.ops.push_back(std::move(begin));
       compile_ops(nested_ops(f, "body"), join_path(path, "body"), ctx, p);
       p.ops.push_back(std::make_unique<RepeatEndOp>(a, static_cast<std::uint32_t>(begin_index + 1)));
       begin_raw->end_pc = static_cast<std::uint32_t>(p.ops.size());
     }});

ParamSpec key_param() {
  return {
      "key", ParamType::String, "", "",
      "pairs a begin and an end in different threads: the same name and key ({NAME} placeholders filled "
      "in, such as \"{n}\" or \"{msg.text}\"); empty: this thread's innermost open interval of that name"};
}

// Keyed intervals are paired across the scripts of a machine: every keyed end's name needs a keyed
// begin somewhere, and the other way round (checked once every script is compiled).
CompileContext::KeyedNames& keyed_names(CompileContext& ctx) {
  if (!ctx.keyed) {
    ctx.keyed = std::make_shared<CompileContext::KeyedNames>();
    ctx.after_scripts.push_back([keyed = ctx.keyed, file = ctx.read.file] {
      for (const auto& [name, path] : keyed->ended)
        if (!keyed->begun.count(name))
          fail_at(file, path,
                  "keyed \"end\" of interval \"" + name + "\" with no keyed \"begin\" of it in any script");
      for (const auto& [name, path] : keyed->begun)
        if (!keyed->ended.count(name))
          fail_at(file, path, "keyed interval \"" + name + "\" is begun but no script ends it with a key");
    });
  }
  return *ctx.keyed;
}

const OpRegistrar register_begin_op(
    {"begin",
     "open a measured interval (free: measuring costs nothing); with a key, one that another thread may end",
     {"begin op", "", {{"name", ParamType::String, nullptr, "", "the interval's name"}, key_param()}},
     [](const json& f, const std::string& path, CompileContext& ctx, Program& p, std::uint16_t a) {
       auto key = f.at("key").get<std::string>();
       auto name = f.at("name").get<std::string>();
       if (key.empty()) {
         p.ops.push_back(std::make_unique<BeginOp>(a, intern(ctx, name)));
         return;
       }
       check_template(key, join_path(path, "key"), ctx);
       keyed_names(ctx).begun.try_emplace(name, path);
       p.ops.push_back(std::make_unique<KeyedBeginOp>(a, intern(ctx, name), key));
     }});

const OpRegistrar register_end_op(
    {"end",
     "close the innermost open interval of that name (or, with a key, the one begun with that key) and "
     "record it",
     {"end op",
      "",
      {{"name", ParamType::String, nullptr, "", "the interval's name"},
       {"bytes", ParamType::Bytes, 0, "bytes", "work done in the interval, for throughput"},
       key_param()}},
     [](const json& f, const std::string& path, CompileContext& ctx, Program& p, std::uint16_t a) {
       auto key = f.at("key").get<std::string>();
       auto name = f.at("name").get<std::string>();
       if (key.empty()) {
         p.ops.push_back(std::make_unique<EndOp>(a, intern(ctx, name), read_bytes(f.at("bytes"))));
         return;
       }
       check_template(key, join_path(path, "key"), ctx);
       keyed_names(ctx).ended.try_emplace(name, path);
       p.ops.push_back(std::make_unique<KeyedEndOp>(a, intern(ctx, name), key, read_bytes(f.at("bytes"))));
     }});

// ---- Script variables, printing and branching ------------------------------------------------

// A condition on the last call or a variable: "ok", "error", or NAME OP VALUE with OP one of
// == != < <= > >= and VALUE a whole number or a word ("errno == EAGAIN", "msg.type == 2").
struct Condition {
  enum class Kind : std::uint8_t { Ok, Error, Compare } kind = Kind::Ok;
  enum class Cmp : std::uint8_t { Eq, Ne, Lt, Le, Gt, Ge } cmp = Cmp::Eq;
  std::string var;
  VarRef ref; // var, resolved
  Value literal;

  bool holds(const Kernel& kernel, const Thread& thread) const {
    if (kind == Kind::Ok) return thread.error == 0;
    if (kind == Kind::Error) return thread.error != 0;
    Value value = ref.read(kernel, thread);
    int order;
    const auto* a = std::get_if<std::int64_t>(&value);
    const auto* b = std::get_if<std::int64_t>(&literal);
    if (a && b) {
      order = *a < *b ? -1 : (*a > *b ? 1 : 0);
    } else {
      std::string x = a ? std::to_string(*a) : std::get<std::string>(value);
      std::string y = b ? std::to_string(*b) : std::get<std::string>(literal);
      order = x.compare(y) < 0 ? -1 : (x.compare(y) > 0 ? 1 : 0);
    }
    switch (cmp) {
    case Cmp::Eq:
      return order == 0;
    case Cmp::Ne:
      return order != 0;
    case Cmp::Lt:
      return order < 0;
    case Cmp::Le:
      return order <= 0;
    case Cmp::Gt:
      return order > 0;
    case Cmp::Ge:
      return order >= 0;
    }
    return false;
  }
};

Condition parse_condition(const std::string& text, const std::string& path, CompileContext& ctx) {
  auto bad = [&](const std::string& why) {
    fail_at(ctx.read.file, path,
            "invalid condition \"" + text + "\": " + why +
                "; expected \"ok\", \"error\", or NAME OP VALUE such as \"errno == EAGAIN\", "
                "\"msg.type == 2\", \"count < 10\" (OP one of == != < <= > >=)");
  };
  std::vector<std::string> words;
  std::size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && text[i] == ' ') ++i;
    std::size_t j = i;
    while (j < text.size() && text[j] != ' ') ++j;
    if (j > i) words.push_back(text.substr(i, j - i));
    i = j;
  }
  Condition c;
  if (words.size() == 1 && words[0] == "ok") return c;
  if (words.size() == 1 && words[0] == "error") {
    c.kind = Condition::Kind::Error;
    return c;
  }
  if (words.size() != 3) bad("not three words");
  c.kind = Condition::Kind::Compare;
  c.var = words[0];
  c.ref = VarRef(c.var);
  static const std::vector<std::pair<std::string, Condition::Cmp>> ops{
      {"==", Condition::Cmp::Eq}, {"!=", Condition::Cmp::Ne}, {"<", Condition::Cmp::Lt},
      {"<=", Condition::Cmp::Le}, {">", Condition::Cmp::Gt},  {">=", Condition::Cmp::Ge}};
  bool found = false;
  for (const auto& [name, cmp] : ops)
    if (words[1] == name) c.cmp = cmp, found = true;
  if (!found) bad("unknown comparison \"" + words[1] + "\"");
  const std::string& lit = words[2];
  std::int64_t number = 0;
  auto [end, ec] = std::from_chars(lit.data(), lit.data() + lit.size(), number);
  if (ec == std::errc() && end == lit.data() + lit.size())
    c.literal = number;
  else
    c.literal = lit;
  if (c.var == "errno" && lit != "0" && errno_from_name(lit) < 0)
    fail_at(ctx.read.file, path,
            "unknown error \"" + lit + "\"" + did_you_mean(lit, errno_names()) +
                "; known: " + join_list(errno_names()));
  if (c.var == "errno" && lit == "0") c.literal = std::string();
  ctx.used.push_back({c.var, path});
  return c;
}

// Script arithmetic is on 64-bit whole numbers; a result beyond them stops the run, as a division
// by zero does, rather than wrapping around. `operation` is what overflowed, such as "x + 1".
std::string overflow_message(const std::string& operation) {
  return "integer overflow in " + operation +
         " (whole numbers run from -9223372036854775808 to 9223372036854775807)";
}

std::string show_operation(std::int64_t a, char op, std::int64_t b) {
  return std::to_string(a) + " " + op + " " + std::to_string(b);
}

class SetOp : public Op {
public:
  SetOp(std::uint16_t activity, const std::string& var, Value value, bool add)
      : Op(activity), var_(var), value_(std::move(value)), add_(add) {}
  Step execute(OpContext& ctx) const override {
    ScriptLocals& locals = ctx.thread.script_locals();
    if (add_) {
      Value* current = locals.find(var_);
      std::int64_t base =
          current && std::holds_alternative<std::int64_t>(*current) ? std::get<std::int64_t>(*current) : 0;
      std::int64_t sum = 0;
      if (__builtin_add_overflow(base, std::get<std::int64_t>(value_), &sum)) {
        ctx.kernel.abort_run(ctx.thread,
                             "add to " + var_.name() + ": " +
                                 overflow_message(show_operation(base, '+', std::get<std::int64_t>(value_))));
        return Step::Exit;
      }
      locals.set(var_, sum);
    } else {
      locals.set(var_, value_);
    }
    ++ctx.thread.pc;
    return Step::Continue;
  }

private:
  Symbol var_;
  Value value_;
  bool add_;
};

// Whole-number arithmetic over variables: + - * / % and parentheses, compiled to postfix at load
// time. Integer division truncates, as in C.
struct Expr {
  struct Token {
    enum class Kind : std::uint8_t { Number, Var, Op, Neg } kind;
    std::int64_t number = 0;
    VarRef var;
    char op = 0;
  };
  std::vector<Token> postfix;
  std::size_t depth = 0; // the most values on the evaluation stack at once
};

Expr parse_expr(const std::string& text, const std::string& path, CompileContext& ctx) {
  auto bad = [&](const std::string& why) {
    fail_at(ctx.read.file, path,
            "invalid expression \"" + text + "\": " + why +
                "; expected whole numbers and variables with + - * / % and parentheses, such as "
                "\"16384 / 512 - st.qnum\"");
  };
  Expr expr;
  std::vector<char> ops; // operator stack; '(' and 'n' (unary minus) included
  auto prec = [](char op) { return op == 'n' ? 3 : (op == '*' || op == '/' || op == '%') ? 2 : 1; };
  auto pop = [&] {
    char op = ops.back();
    ops.pop_back();
    expr.postfix.push_back(
        {op == 'n' ? Expr::Token::Kind::Neg : Expr::Token::Kind::Op, 0, {}, op == 'n' ? '-' : op});
  };
  bool expect_operand = true;
  std::size_t operands = 0;
  for (std::size_t i = 0; i < text.size();) {
    char c = text[i];
    if (c == ' ') {
      ++i;
      continue;
    }
    if (expect_operand) {
      if (c == '(') {
        ops.push_back('(');
        ++i;
      } else if (c == '-') {
        ops.push_back('n');
        ++i;
      } else if (c >= '0' && c <= '9') {
        std::size_t j = i;
        while (j < text.size() && text[j] >= '0' && text[j] <= '9') ++j;
        std::int64_t number = 0;
        auto [end, ec] = std::from_chars(text.data() + i, text.data() + j, number);
        if (ec != std::errc()) bad("number out of range");
        expr.postfix.push_back({Expr::Token::Kind::Number, number, {}, 0});
        i = j;
        expect_operand = false;
        ++operands;
      } else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_') {
        std::size_t j = i;
        while (j < text.size() && variable_char(text[j])) ++j;
        std::string name = text.substr(i, j - i);
        ctx.used.push_back({name, path});
        expr.postfix.push_back({Expr::Token::Kind::Var, 0, VarRef(name), 0});
        i = j;
        expect_operand = false;
        ++operands;
      } else {
        bad(std::string("unexpected '") + c + "'");
      }
    } else {
      if (c == ')') {
        while (!ops.empty() && ops.back() != '(') pop();
        if (ops.empty()) bad("unbalanced ')'");
        ops.pop_back();
        ++i;
      } else if (c == '+' || c == '-' || c == '*' || c == '/' || c == '%') {
        while (!ops.empty() && ops.back() != '(' && prec(ops.back()) >= prec(c)) pop();
        ops.push_back(c);
        expect_operand = true;
        ++i;
      } else {
        bad(std::string("unexpected '") + c + "'");
      }
    }
  }
  if (operands == 0 || expect_operand) bad("it ends where a number or variable is expected");
  while (!ops.empty()) {
    if (ops.back() == '(') bad("unbalanced '('");
    pop();
  }
  std::size_t on_stack = 0;
  for (const auto& t : expr.postfix) {
    if (t.kind == Expr::Token::Kind::Number || t.kind == Expr::Token::Kind::Var) ++on_stack;
    if (t.kind == Expr::Token::Kind::Op) --on_stack;
    expr.depth = std::max(expr.depth, on_stack);
  }
  return expr;
}

class CalcOp : public Op {
public:
  CalcOp(std::uint16_t activity, const std::string& var, Expr expr, std::string text)
      : Op(activity), var_(var), expr_(std::move(expr)), text_(std::move(text)) {}
  Step execute(OpContext& ctx) const override {
    // The evaluation stack, on the C++ stack for every expression but the deepest (its depth is
    // known from the compiled expression).
    constexpr std::size_t kOnStack = 32;
    std::int64_t on_stack[kOnStack];
    std::vector<std::int64_t> on_heap;
    std::int64_t* base = on_stack;
    if (expr_.depth > kOnStack) {
      on_heap.resize(expr_.depth);
      base = on_heap.data();
    }
    struct {
      std::int64_t* base;
      std::size_t size = 0;
      void push_back(std::int64_t v) { base[size++] = v; }
      void pop_back() { --size; }
      std::int64_t& back() { return base[size - 1]; }
    } stack{base};
    for (const auto& t : expr_.postfix) {
      switch (t.kind) {
      case Expr::Token::Kind::Number:
        stack.push_back(t.number);
        break;
      case Expr::Token::Kind::Var: {
        Value v = t.var.read(ctx.kernel, ctx.thread);
        if (!std::holds_alternative<std::int64_t>(v)) {
          ctx.kernel.abort_run(ctx.thread, "calc \"" + text_ + "\": variable " + t.var.name() +
                                               " holds text, not a number");
          return Step::Exit;
        }
        stack.push_back(std::get<std::int64_t>(v));
        break;
      }
      case Expr::Token::Kind::Neg: {
        std::int64_t v = stack.back();
        if (__builtin_sub_overflow(std::int64_t{0}, v, &stack.back())) {
          ctx.kernel.abort_run(ctx.thread,
                               "calc \"" + text_ + "\": " + overflow_message("-(" + std::to_string(v) + ")"));
          return Step::Exit;
        }
        break;
      }
      case Expr::Token::Kind::Op: {
        std::int64_t b = stack.back();
        stack.pop_back();
        std::int64_t& a = stack.back();
        if ((t.op == '/' || t.op == '%') && b == 0) {
          ctx.kernel.abort_run(ctx.thread, "calc \"" + text_ + "\": division by zero");
          return Step::Exit;
        }
        std::int64_t r = 0;
        bool overflow = false;
        switch (t.op) {
        case '+':
          overflow = __builtin_add_overflow(a, b, &r);
          break;
        case '-':
          overflow = __builtin_sub_overflow(a, b, &r);
          break;
        case '*':
          overflow = __builtin_mul_overflow(a, b, &r);
          break;
        case '/': // only INT64_MIN / -1 leaves the range (and traps on x86)
          overflow = a == std::numeric_limits<std::int64_t>::min() && b == -1;
          r = overflow ? 0 : a / b;
          break;
        default: // '%': INT64_MIN % -1 is 0, but C++ leaves it undefined (it traps on x86)
          r = b == -1 ? 0 : a % b;
          break;
        }
        if (overflow) {
          ctx.kernel.abort_run(ctx.thread,
                               "calc \"" + text_ + "\": " + overflow_message(show_operation(a, t.op, b)));
          return Step::Exit;
        }
        a = r;
        break;
      }
      }
    }
    ctx.thread.script_locals().set(var_, stack.back());
    ++ctx.thread.pc;
    return Step::Continue;
  }

private:
  Symbol var_;
  Expr expr_;
  std::string text_;
};

class PrintOp : public Op {
public:
  PrintOp(std::uint16_t activity, const std::string& text) : Op(activity), text_(text) {}
  Step execute(OpContext& ctx) const override {
    ctx.kernel.print(ctx.now(), ctx.thread, text_.format(ctx.kernel, ctx.thread));
    ++ctx.thread.pc;
    return Step::Continue;
  }

private:
  Template text_;
};

// Jumps to `target` when the condition does not hold (if, while), or always (the end of a while
// body, the end of a then-branch).
class BranchOp : public Op {
public:
  BranchOp(std::uint16_t activity, std::optional<Condition> condition)
      : Op(activity), condition_(std::move(condition)) {}
  std::uint32_t target = 0;
  Step execute(OpContext& ctx) const override {
    if (condition_ && condition_->holds(ctx.kernel, ctx.thread))
      ++ctx.thread.pc;
    else
      ctx.thread.pc = target;
    return Step::Continue;
  }

private:
  std::optional<Condition> condition_;
};

std::string checked_variable(const json& f, const std::string& path, CompileContext& ctx) {
  auto name = f.at("var").get<std::string>();
  if (!valid_variable(name))
    fail_at(ctx.read.file, join_path(path, "var"),
            "invalid variable name \"" + name + "\"; use letters, digits, _ and .");
  if (is_builtin_variable(name))
    fail_at(ctx.read.file, join_path(path, "var"),
            "\"" + name + "\" is set by the system calls themselves; choose another name");
  ctx.assigned.push_back(name);
  return name;
}

Value read_scalar(const json& value) {
  if (value.is_string()) return value.get<std::string>();
  return value.get<std::int64_t>();
}

const OpRegistrar register_set_op(
    {"set",
     "set a script variable (a whole number or a string), for print and conditions",
     {"set op",
      "",
      {{"var", ParamType::String, nullptr, "", "the variable's name (letters, digits, _ and .)"},
       {"value", ParamType::Scalar, nullptr, "", "its new value"}}},
     [](const json& f, const std::string& path, CompileContext& ctx, Program& p, std::uint16_t a) {
       auto name = checked_variable(f, path, ctx);
       p.ops.push_back(std::make_unique<SetOp>(a, name, read_scalar(f.at("value")), false));
     }});

const OpRegistrar register_calc_op(
    {"calc",
     "set a variable to a whole-number expression over variables: + - * / % and parentheses",
     {"calc op",
      "",
      {{"var", ParamType::String, nullptr, "", "the variable to set"},
       {"expr", ParamType::String, nullptr, "", "the expression, such as \"16384 / 512 - st.qnum\""}}},
     [](const json& f, const std::string& path, CompileContext& ctx, Program& p, std::uint16_t a) {
       auto text = f.at("expr").get<std::string>();
       Expr expr = parse_expr(text, join_path(path, "expr"), ctx);
       auto name = checked_variable(f, path, ctx);
       p.ops.push_back(std::make_unique<CalcOp>(a, name, std::move(expr), text));
     }});

const OpRegistrar register_add_op(
    {"add",
     "add to a whole-number script variable (counting; an unset variable counts from 0)",
     {"add op",
      "",
      {{"var", ParamType::String, nullptr, "", "the variable's name"},
       {"value", ParamType::Integer, 1, "",
        "what to add (negative subtracts): a whole number from -9223372036854775808 to "
        "9223372036854775807"}}},
     [](const json& f, const std::string& path, CompileContext& ctx, Program& p, std::uint16_t a) {
       // The exact 64-bit range, checked here: as a double bound it printed as -9.2e+18, which values
       // just outside seemed to satisfy, and refused values inside.
       const json& value = f.at("value");
       if (value.is_number_unsigned() && value.get<std::uint64_t>() > std::uint64_t{INT64_MAX})
         fail_at(ctx.read.file, join_path(path, "value"),
                 "invalid value " + value.dump() +
                     "; expected a whole number from -9223372036854775808 to 9223372036854775807");
       auto name = checked_variable(f, path, ctx);
       p.ops.push_back(std::make_unique<SetOp>(a, name, Value{f.at("value").get<std::int64_t>()}, true));
     }});

const OpRegistrar register_print_op(
    {"print",
     "print a line on the run's console, stamped with the simulated time (free: costs no cycles)",
     {"print op",
      "",
      {{"text", ParamType::String, nullptr, "",
        "the line; {NAME} is replaced by a variable: result, errno, pid, msg.type, msg.text, msg.bytes, "
        "msg.priority, msg.sender, receiver, or one the script set"}}},
     [](const json& f, const std::string& path, CompileContext& ctx, Program& p, std::uint16_t a) {
       auto text = f.at("text").get<std::string>();
       check_template(text, join_path(path, "text"), ctx);
       p.ops.push_back(std::make_unique<PrintOp>(a, text));
     }});

ParamSpec cond_param() {
  return {"cond", ParamType::String, nullptr, "",
          "\"ok\" or \"error\" (the last call's outcome), or NAME OP VALUE, e.g. \"errno == ETIMEDOUT\""};
}

const OpRegistrar register_if_op(
    {"if",
     "run `then` when the condition holds, else `else`",
     {"if op",
      "",
      {cond_param(),
       {"then", ParamType::Script, nullptr, "", "ops run when it holds"},
       {"else", ParamType::Script, json::array(), "", "ops run when it does not"}}},
     [](const json& f, const std::string& path, CompileContext& ctx, Program& p, std::uint16_t a) {
       const json& then_ops = nested_ops(f, "then");
       const json& else_ops = nested_ops(f, "else");
       auto branch =
           std::make_unique<BranchOp>(a, parse_condition(f.at("cond"), join_path(path, "cond"), ctx));
       auto* branch_raw = branch.get();
       p.ops.push_back(std::move(branch));
       compile_ops(then_ops, join_path(path, "then"), ctx, p);
       auto jump = std::make_unique<BranchOp>(a, std::nullopt);
       auto* jump_raw = jump.get();
       p.ops.push_back(std::move(jump));
       branch_raw->target = static_cast<std::uint32_t>(p.ops.size());
       compile_ops(else_ops, join_path(path, "else"), ctx, p);
       jump_raw->target = static_cast<std::uint32_t>(p.ops.size());
     }});

const OpRegistrar register_while_op(
    {"while",
     "run `body` again and again while the condition holds (tested before each run)",
     {"while op", "", {cond_param(), {"body", ParamType::Script, nullptr, "", "the ops to repeat"}}},
     [](const json& f, const std::string& path, CompileContext& ctx, Program& p, std::uint16_t a) {
       auto test_pc = static_cast<std::uint32_t>(p.ops.size());
       auto test = std::make_unique<BranchOp>(a, parse_condition(f.at("cond"), join_path(path, "cond"), ctx));
       auto* test_raw = test.get();
       p.ops.push_back(std::move(test));
       compile_ops(nested_ops(f, "body"), join_path(path, "body"), ctx, p);
       auto back = std::make_unique<BranchOp>(a, std::nullopt);
       back->target = test_pc;
       p.ops.push_back(std::move(back));
       test_raw->target = static_cast<std::uint32_t>(p.ops.size());
     }});

} // namespace

OpRegistrar::OpRegistrar(OpDecl decl) { registry().add(std::move(decl)); }

const std::vector<OpDecl>& op_registry() { return registry().all(); }

const OpDecl* find_op(const std::string& name) { return registry().find(name); }

std::vector<std::string> op_names() { return registry().names(); }

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
    if (++ctx.ops > ctx.read.limits.script_ops)
      fail_at(ctx.read.file, op_path,
              "the scripts have more than " + std::to_string(ctx.read.limits.script_ops) + " ops in all" +
                  limit_hint("script_ops"));
    auto name = op.at("op").get<std::string>();
    const OpDecl* decl = find_op(name);
    if (!decl)
      fail_at(ctx.read.file, join_path(op_path, "op"),
              "unknown op \"" + name + "\"" + did_you_mean(name, op_names()) +
                  "; accepted ops: " + join_list(op_names()));
    // repeat, if and while: their lists are checked and compiled where they are, not copied (see
    // nested_ops); a value that is not a list goes through as written, to be refused as usual.
    const bool in_place = name == "repeat" || name == "if" || name == "while";
    json shallow;
    if (in_place) {
      shallow = json::object();
      for (const auto& [key, value] : op.items())
        shallow[key] =
            (key == "body" || key == "then" || key == "else") && value.is_array() ? json::array() : value;
    }
    json fields = resolve_object(in_place ? shallow : op, op_path, decl->params, ctx.read, {"op"});
    fields.erase("op");
    if ((name == "begin" || name == "end") && fields.at("key").get<std::string>().empty()) {
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
    struct InPlace { // restored however compile ends
      const json* outer = t_op_in_place;
      ~InPlace() { t_op_in_place = outer; }
    } restore;
    t_op_in_place = in_place ? &op : nullptr;
    decl->compile(fields, op_path, ctx, program, register_activity(name));
  }
  if (!open.empty())
    fail_at(ctx.read.file, open.begin()->second,
            "interval \"" + open.begin()->first + "\" is begun but never ended in the same list of ops");
}

std::shared_ptr<const Program> compile_script(const json& ops, const std::string& path, CompileContext& ctx) {
  auto program = std::make_shared<Program>();
  ctx.assigned.clear();
  ctx.used.clear();
  compile_ops(ops, path, ctx, *program);
  // A variable read but never set in this script is a typo, not a zero. A set, not a search per use:
  // a script of 10^5 adds and prints would otherwise take 10^10 steps to check.
  const std::unordered_set<std::string> assigned(ctx.assigned.begin(), ctx.assigned.end());
  for (const auto& [name, use_path] : ctx.used) {
    bool known = assigned.count(name) > 0 || is_builtin_variable(name);
    if (!known) {
      std::vector<std::string> choices = builtin_variables();
      std::unordered_set<std::string> listed(choices.begin(), choices.end());
      for (const auto& a : ctx.assigned)
        if (listed.insert(a).second) choices.push_back(a);
      fail_at(ctx.read.file, use_path,
              "variable \"" + name + "\" is never set in this script" + did_you_mean(name, choices) +
                  "; known here: " + join_list(choices));
    }
  }
  return program;
}

} // namespace ipcsim
