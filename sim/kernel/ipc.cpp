#include "ipc.hpp"

#include "call_name.hpp"
#include "error.hpp"
#include "names.hpp"
#include "registry.hpp"

#include <algorithm>
#include <string_view>

namespace ipcsim {

// ---- Error numbers ----------------------------------------------------------------------------

namespace {
// A variable's value as an error message quotes it: -1, or text "abc".
std::string describe_value(const Value& v) {
  if (const auto* number = std::get_if<std::int64_t>(&v)) return std::to_string(*number);
  return "text \"" + std::get<std::string>(v) + "\"";
}

struct ErrnoEntry {
  int number;
  const char* name;
};
constexpr ErrnoEntry kErrnos[] = {
    {EPERM, "EPERM"},
    {ENOENT, "ENOENT"},
    {ESRCH, "ESRCH"},
    {EINTR, "EINTR"},
    {ENXIO, "ENXIO"},
    {E2BIG, "E2BIG"},
    {EBADF, "EBADF"},
    {ECHILD, "ECHILD"},
    {EAGAIN, "EAGAIN"},
    {ENOMEM, "ENOMEM"},
    {EACCES, "EACCES"},
    {EFAULT, "EFAULT"},
    {EBUSY, "EBUSY"},
    {EEXIST, "EEXIST"},
    {ENODEV, "ENODEV"},
    {ENOTDIR, "ENOTDIR"},
    {EISDIR, "EISDIR"},
    {EFBIG, "EFBIG"},
    {EINVAL, "EINVAL"},
    {ENFILE, "ENFILE"},
    {EFBIG, "EFBIG"},
    {ENOSPC, "ENOSPC"},
    {ESPIPE, "ESPIPE"},
    {EPIPE, "EPIPE"},
    {ERANGE, "ERANGE"},
    {EDEADLK, "EDEADLK"},
    {ENAMETOOLONG, "ENAMETOOLONG"},
    {ENOSYS, "ENOSYS"},
    {ENOMSG, "ENOMSG"},
    {EIDRM, "EIDRM"},
    {EOVERFLOW, "EOVERFLOW"},
    {ENOTSOCK, "ENOTSOCK"},
    {EPROTOTYPE, "EPROTOTYPE"},
    {EDESTADDRREQ, "EDESTADDRREQ"},
    {EMSGSIZE, "EMSGSIZE"},
    {EOPNOTSUPP, "EOPNOTSUPP"},
    {EADDRINUSE, "EADDRINUSE"},
    {ECONNRESET, "ECONNRESET"},
    {EISCONN, "EISCONN"},
    {ENOTCONN, "ENOTCONN"},
    {ETIMEDOUT, "ETIMEDOUT"},
    {ECONNREFUSED, "ECONNREFUSED"},
};
} // namespace

const char* errno_name(int error) {
  if (error == 0) return "";
  for (const auto& e : kErrnos)
    if (e.number == error) return e.name;
  return "E?";
}

int errno_from_name(const std::string& name) {
  for (const auto& e : kErrnos)
    if (name == e.name) return e.number;
  return -1;
}

const std::vector<std::string>& errno_names() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> out;
    for (const auto& e : kErrnos) out.push_back(e.name);
    return out;
  }();
  return names;
}

// ---- Calls ------------------------------------------------------------------------------------

void OpContext::fail(std::uint16_t activity, int error) {
  thread.result = -1;
  thread.error = error;
  Cycles at = now();
  kernel.notify([&](Observer& o) { o.on_call_failed(thread, activity, error, at); });
}

void begin_call(OpContext& ctx, CallTimeout timeout) {
  Thread& thread = ctx.thread;
  thread.op_progress = 0;
  thread.op_nonblocking = timeout.cycles == 0;
  thread.op_deadline = timeout.cycles == kNever ? kNever : ctx.now() + timeout.cycles;
  thread.wait_result = WaitResult::None;
  thread.result = 0;
  thread.error = 0;
}

IoStatus wait_on(OpContext& ctx, WaitQueue& queue, std::uint16_t activity, int timeout_error) {
  Thread& thread = ctx.thread;
  if (thread.op_nonblocking) return fail_call(ctx, activity, EAGAIN);
  if (thread.signal_pending) { // a signal to handle: the delivery restarts the call or fails it (EINTR)
    thread.result = -1;
    thread.error = kERESTARTSYS;
    return IoStatus::Done;
  }
  if (thread.wait_result == WaitResult::Interrupted) // Kernel::interrupt: its holder cancelled it
    return fail_call(ctx, activity, EINTR);
  // Another core may have changed the object while the charged cycles passed: look again.
  if (ctx.core.pending > 0 && ctx.sync()) return IoStatus::Retry;
  Cycles now = ctx.now();
  if (thread.wait_result == WaitResult::TimedOut || now >= thread.op_deadline)
    return fail_call(ctx, activity, timeout_error);
  ctx.kernel.block(ctx.core, thread, &queue,
                   thread.op_deadline == kNever ? kNever : thread.op_deadline - now);
  // The enqueue under the queue's lock (prepare_to_wait_event; msg.c's list of sleeping receivers;
  // futex_queue on its hash bucket), charged as the thread leaves, with its context_save. Its
  // removal is part of the waker's `wakeup`.
  thread.enqueue_due = true;
  return IoStatus::Blocked;
}

void charge_copy(OpContext& ctx, std::uint16_t activity, std::uint64_t bytes, std::uint64_t transfer,
                 std::uint64_t queued, std::int32_t written_on, std::uint64_t held_bytes) {
  if (bytes == 0) return;
  const CostModel& costs = ctx.kernel.model().costs;
  ctx.charge(activity, Primitive::copy_setup);
  const double whole = static_cast<double>(std::max(bytes, transfer));
  const double footprint = std::max(2 * whole, whole + static_cast<double>(queued));
  // Each level's share under its own rate's name (CostModel::copy_split).
  Cycles local = 0;
  for (const auto& [primitive, cycles] : costs.copy_split_at(bytes, footprint)) {
    if (cycles > 0) ctx.charge(activity, primitive, cycles);
    local += cycles;
  }
  if (written_on < 0 || written_on == static_cast<std::int32_t>(ctx.core.index) || held_bytes == 0) return;
  if (held_bytes < bytes) { // only some of the bytes' lines are there: their share of the local cycles
    local = 0;
    for (const auto& part : costs.copy_split_at(held_bytes, footprint)) local += part.second;
  }
  charge_from_other_core(ctx, activity, static_cast<double>(std::min(held_bytes, bytes)),
                         static_cast<double>(local), footprint);
}

void charge_from_other_core(OpContext& ctx, std::uint16_t activity, double bytes, double local,
                            double footprint) {
  const CostModel& costs = ctx.kernel.model().costs;
  ctx.charge(activity, Primitive::cache_line_transfer);
  const double at_remote_rate = std::ceil(bytes / costs.get(Primitive::copy_bytes_per_cycle_remote));
  const double at_footprint = std::ceil(bytes * costs.remote_cycles_per_byte_at(footprint));
  const auto extra = static_cast<Cycles>(std::max(0.0, at_footprint - local));
  const auto extra_remote = std::min(extra, static_cast<Cycles>(std::max(0.0, at_remote_rate - local)));
  if (extra_remote > 0) ctx.charge(activity, Primitive::copy_bytes_per_cycle_remote, extra_remote);
  if (extra > extra_remote)
    ctx.charge(activity, Primitive::copy_bytes_per_cycle_uncached, extra - extra_remote);
}

// ipc/msgutil.c alloc_msg: a msg_msg holding the first DATALEN_MSG bytes (a page less its
// header), then one msg_msgseg per further DATALEN_SEG bytes; each is a kmalloc.
std::uint64_t msg_segments(std::uint64_t bytes) {
  constexpr std::uint64_t kDatalenMsg = 4096 - 48, kDatalenSeg = 4096 - 8;
  return 1 + (bytes > kDatalenMsg ? (bytes - kDatalenMsg + kDatalenSeg - 1) / kDatalenSeg : 0);
}

void charge_msg_alloc(OpContext& ctx, std::uint16_t activity, std::uint64_t bytes) {
  ctx.charge(activity, Primitive::slab_alloc,
             ctx.kernel.model().costs.cycles(Primitive::slab_alloc) * msg_segments(bytes));
  ctx.charge(activity, Primitive::security_hook); // security_msg_msg_alloc
}

// free_msg: security_msg_msg_free, then a kfree per msg_msg / msg_msgseg.
void charge_msg_free(OpContext& ctx, std::uint16_t activity, std::uint64_t bytes) {
  ctx.charge(activity, Primitive::security_hook);
  ctx.charge(activity, Primitive::slab_free,
             ctx.kernel.model().costs.cycles(Primitive::slab_free) * msg_segments(bytes));
}

namespace {
void flow(OpContext& ctx, const std::string& object, Flow kind, std::uint64_t messages, std::uint64_t bytes,
          const char* reason = "") {
  Cycles at = ctx.now();
  ctx.kernel.notify([&](Observer& o) { o.on_flow(object, kind, messages, bytes, reason, at); });
}
} // namespace

void message_sent(OpContext& ctx, Message& message, const std::string& object) {
  message_sent(ctx, message, object, message.bytes);
}

void message_sent(OpContext& ctx, Message& message, const std::string& object, std::uint64_t bytes) {
  message.id = ctx.kernel.next_message_id();
  Cycles at = ctx.now();
  ctx.kernel.notify([&](Observer& o) { o.on_message_sent(ctx.thread, message, object, at); });
  flow(ctx, object, Flow::Sent, 1, bytes);
}

void bytes_sent(OpContext& ctx, const std::string& object, std::uint64_t bytes) {
  if (bytes > 0) flow(ctx, object, Flow::Sent, 0, bytes);
}

void message_received(OpContext& ctx, const Message& message, const std::string& object,
                      std::uint64_t bytes) {
  Cycles at = ctx.now();
  ctx.kernel.notify([&](Observer& o) { o.on_message_received(ctx.thread, message, object, at); });
  flow(ctx, object, Flow::Received, 1, bytes);
}

void bytes_received(OpContext& ctx, const std::string& object, std::uint64_t bytes) {
  if (bytes > 0) flow(ctx, object, Flow::Received, 0, bytes);
}

void message_dropped(OpContext& ctx, const std::string& object, std::uint64_t messages, std::uint64_t bytes,
                     const char* reason) {
  if (messages > 0 || bytes > 0) flow(ctx, object, Flow::Dropped, messages, bytes, reason);
}

// Stamped with the core's clock, not the caller's time (which counts cycles charged but not passed
// yet): a call may touch an object again before its charges pass (a copy loop), while another core
// touches it at a time in between; at the clock, the changes of every core are in the order they
// happened.
void fill_changed(OpContext& ctx, const std::string& object, const char* unit, std::uint64_t value) {
  Cycles at = ctx.kernel.clock(ctx.core);
  ctx.kernel.notify([&](Observer& o) { o.on_fill(object, unit, value, at); });
}

Step SyscallOp::execute(OpContext& ctx) const {
  Thread& thread = ctx.thread;
  if (thread.phase == 0) {
    if (!arguments_valid(ctx)) return Step::Exit;
    CallTimeout timeout;
    if (!timeout_.resolve(ctx, activity, timeout)) return Step::Exit;
    ctx.enter_syscall(activity);
    begin_call(ctx, timeout);
    thread.phase = 1;
  }
  IoStatus status = call(ctx);
  thread.phase = 2; // OpContext::first_run, resumed: this run's entry work is done
  // A retry finds the object as it is now; a call that charges cycles each time it decides to wait
  // would never settle, and that is a bug in its mechanism.
  for (int retries = 0; status == IoStatus::Retry; ++retries) {
    if (retries == 1000) {
      ctx.kernel.abort_run(thread, "internal error: a system call kept retrying without settling");
      return Step::Exit;
    }
    status = call(ctx);
  }
  if (status == IoStatus::Blocked) {
    thread.phase = 3; // OpContext::resumed: the next run follows a wait
    return Step::Block;
  }
  thread.phase = 0;
  thread.op_progress = 0;
  thread.call = nullptr;                            // the call is over: nothing left for a holder to cancel
  if (thread.process->killed_by) return Step::Exit; // e.g. SIGPIPE: the call never returns
  ctx.leave_syscall(activity);
  ++thread.pc;
  return Step::Continue;
}

ParamSpec timeout_param() {
  return {"timeout",
          ParamType::Time,
          nullptr,
          "cycles or duration",
          "how long the call may wait: absent blocks for as long as it takes, 0 never blocks "
          "(EAGAIN), a time gives up with ETIMEDOUT",
          0.0,
          std::nullopt,
          {},
          "block",
          true};
}

CallTimeout read_timeout(const json& fields, const std::string& path, CompileContext& ctx) {
  if (!fields.contains("timeout") || fields.at("timeout").is_null()) return {};
  TimeRef time = read_time_field(fields, "timeout", path, ctx);
  return {time.cycles, time.var};
}

bool CallTimeout::resolve(OpContext& ctx, std::uint16_t activity, CallTimeout& out) const {
  out = {cycles, {}};
  return var.empty() ||
         TimeRef{0, var}.resolve(ctx, out.cycles, activity_names()[activity].c_str(), "timeout");
}

bool TimeRef::resolve(OpContext& ctx, Cycles& out, const char* op, const char* field, bool stop) const {
  if (var.empty()) {
    out = cycles;
    return true;
  }
  Value v = var.read(ctx.kernel, ctx.thread);
  std::optional<Cycles> time;
  if (const auto* number = std::get_if<std::int64_t>(&v)) {
    if (*number >= 0 && static_cast<Cycles>(*number) <= kMaxTimeCycles) time = static_cast<Cycles>(*number);
  } else {
    time = parse_time_cycles(std::get<std::string>(v), ctx.kernel.model().hz);
  }
  if (time) {
    out = *time;
    return true;
  }
  if (stop)
    ctx.kernel.abort_run(ctx.thread, std::string(op) + " " + field + " \"{" + var.name() +
                                         "}\": the variable holds " + describe_value(v) +
                                         "; expected whole cycles from 0 to " +
                                         std::to_string(kMaxTimeCycles) + " or a duration such as \"10us\"");
  return false;
}

TimeRef read_time_field(const json& f, const std::string& field, const std::string& path,
                        CompileContext& ctx) {
  const json& value = f.at(field);
  if (auto name = variable_placeholder(value)) {
    ctx.used.push_back({*name, join_path(path, field)});
    return {0, VarRef(*name)};
  }
  return {read_time_cycles(value, ctx.read.hz), {}};
}

// ---- Open files -------------------------------------------------------------------------------

IoStatus OpenFile::read(OpContext& ctx, std::uint16_t activity, std::uint64_t) {
  return fail_call(ctx, activity, EBADF);
}

IoStatus OpenFile::write(OpContext& ctx, std::uint16_t activity, const Message&) {
  return fail_call(ctx, activity, EBADF);
}

void install_descriptor(OpContext& ctx, Symbol name, std::shared_ptr<OpenFile> file, std::uint16_t activity) {
  Process& process = *ctx.thread.process;
  for (std::size_t i = 0; i < process.fds.size(); ++i)
    if (process.fds[i].name == name) {
      ctx.kernel.close_descriptor(ctx, process, i, activity);
      break;
    }
  ++file->refs;
  process.fds.push_back({name, std::move(file)});
}

OpenFile* lookup_descriptor(OpContext& ctx, Symbol name) {
  Descriptor* d = ctx.thread.process->find_fd(name);
  return d ? d->file.get() : nullptr;
}

// ---- Message boundaries over a byte stream -----------------------------------------------------

// The sender's message is what it sent: a turn that ends short (a timeout, EPIPE, its death) leaves
// a shorter message.
void StreamFraming::end_send_turn(std::uint64_t sent) {
  unread_.back() -= std::min(unread_.back(), sender_bytes_ - std::min(sender_bytes_, sent));
  sender_ = nullptr;
  // Messages nobody will add to and nobody has left to read.
  while (!unread_.empty() && unread_.front() == 0 && (unread_.size() > 1 || !sender_)) unread_.pop_front();
}

void StreamFraming::end_recv_turn(std::uint64_t got) {
  while (got > 0 && !unread_.empty()) {
    std::uint64_t take = std::min(got, unread_.front());
    unread_.front() -= take;
    got -= take;
    if (unread_.front() == 0 && (unread_.size() > 1 || !sender_)) unread_.pop_front();
  }
  receiver_ = nullptr;
  while (!unread_.empty() && unread_.front() == 0 && (unread_.size() > 1 || !sender_)) unread_.pop_front();
}

// The caller was killed in its turn: its call never returns, and op_progress says how many bytes it
// had moved. The next in line takes the turn.
void StreamFraming::cancel(OpContext& ctx, Thread& caller, std::uint16_t activity) {
  if (sender_ == &caller) {
    end_send_turn(caller.op_progress);
    ctx.kernel.wake_one(ctx.core, senders_, &ctx.thread, activity);
  } else if (receiver_ == &caller) {
    end_recv_turn(caller.op_progress);
    ctx.kernel.wake_one(ctx.core, receivers_, &ctx.thread, activity);
  }
}

IoStatus StreamFraming::send(OpContext& ctx, std::uint16_t activity, std::uint64_t bytes,
                             FunctionRef<IoStatus()> write) {
  Thread& me = ctx.thread;
  if (sender_ != &me) {
    ctx.sync();
    if (sender_) return wait_on(ctx, senders_, activity);
    sender_ = &me; // our turn: the header goes into the stream ahead of the bytes
    sender_bytes_ = bytes;
    unread_.push_back(bytes);
    ctx.kernel.hold_call(me, *this);
  }
  IoStatus status = write();
  if (status != IoStatus::Done) return status;
  // Sent in part (a timeout, EPIPE after some bytes) or not at all: the message is what was sent.
  end_send_turn(me.result > 0 ? static_cast<std::uint64_t>(me.result) : 0);
  ctx.kernel.wake_one(ctx.core, senders_, &me, activity);
  return status;
}

IoStatus StreamFraming::recv(OpContext& ctx, std::uint16_t activity, std::uint64_t bytes,
                             FunctionRef<IoStatus(std::uint64_t target)> read) {
  Thread& me = ctx.thread;
  if (receiver_ != &me) {
    ctx.sync();
    if (receiver_) return wait_on(ctx, receivers_, activity);
    receiver_ = &me;
    ctx.kernel.hold_call(me, *this);
  }
  // Up to the front message's end; before anything is sent there is no boundary yet, and the read
  // waits for bytes as the stream would (a header always goes in ahead of its bytes). Never below
  // what this call has already read.
  std::uint64_t target = unread_.empty() ? bytes : std::min(bytes, unread_.front());
  target = std::max(target, me.op_progress);
  IoStatus status = read(target);
  if (status != IoStatus::Done) return status;
  end_recv_turn(me.result > 0 ? static_cast<std::uint64_t>(me.result) : 0);
  ctx.kernel.wake_one(ctx.core, receivers_, &me, activity);
  return status;
}

// ---- Mechanisms -------------------------------------------------------------------------------

namespace {
Registry<MechanismDecl>& mechanisms() {
  static Registry<MechanismDecl> registry;
  return registry;
}
} // namespace

MechanismRegistrar::MechanismRegistrar(MechanismDecl decl) { mechanisms().add(std::move(decl)); }

const std::vector<MechanismDecl>& mechanism_registry() { return mechanisms().all(); }

const MechanismDecl* find_mechanism(const std::string& name) { return mechanisms().find(name); }

std::vector<std::string> mechanism_names() { return mechanisms().names(); }

// ---- Generic ops: the channel, descriptors, processes -----------------------------------------

namespace {

std::size_t channel_index(const json& f, const std::string& path, CompileContext& ctx) {
  auto name = f.at("channel").get<std::string>();
  for (std::size_t i = 0; i < ctx.channel_names.size(); ++i)
    if (ctx.channel_names[i] == name) return i;
  fail_at(ctx.read.file, join_path(path, "channel"),
          "unknown channel \"" + name + "\"" + did_you_mean(name, ctx.channel_names) +
              (ctx.channel_names.empty() ? std::string("; the scenario declares no \"channels\"")
                                         : "; channels: " + join_list(ctx.channel_names)) +
              elsewhere_note(ctx, name));
}

class SendOp : public SyscallOp {
public:
  SendOp(std::uint16_t activity, CallTimeout timeout, std::size_t channel, MessageArgs message)
      : SyscallOp(activity, timeout), channel_(channel), message_(std::move(message)) {}
  bool arguments_valid(OpContext& ctx) const override { return message_.valid(ctx, "send"); }
  IoStatus call(OpContext& ctx) const override {
    Message m = message_.make(ctx);
    IoStatus status = ctx.kernel.channel(channel_).send(ctx, activity, m);
    // The same result over every mechanism: the bytes sent (msgsnd and mq_send themselves return 0).
    if (status == IoStatus::Done && ctx.thread.error == 0 && ctx.thread.result == 0)
      ctx.thread.result = static_cast<std::int64_t>(m.bytes);
    return status;
  }
  std::size_t channel() const { return channel_; }

private:
  std::size_t channel_;
  MessageArgs message_;
};

class RecvOp : public SyscallOp {
public:
  RecvOp(std::uint16_t activity, CallTimeout timeout, std::size_t channel, IntRef bytes)
      : SyscallOp(activity, timeout), channel_(channel), bytes_(bytes) {}
  bool arguments_valid(OpContext& ctx) const override {
    std::int64_t v = 0;
    return bytes_.resolve_field(ctx, v, "recv", "bytes", 0, kMaxMessageBytes, true);
  }
  IoStatus call(OpContext& ctx) const override {
    std::int64_t bytes = 0;
    if (!bytes_.resolve_field(ctx, bytes, "recv", "bytes", 0, kMaxMessageBytes, false))
      return fail_call(ctx, activity, EINVAL); // changed by a signal handler since the call started
    IoStatus status = ctx.kernel.channel(channel_).recv(ctx, activity, static_cast<std::uint64_t>(bytes));
    // The same over every mechanism: after a failed recv, {msg.*} describe no message.
    if (status == IoStatus::Done && ctx.thread.error != 0) ctx.thread.script_locals().message = Message{};
    return status;
  }
  std::size_t channel() const { return channel_; }

private:
  std::size_t channel_;
  IntRef bytes_;
};

} // namespace

const std::string* op_channel_mechanism(const Kernel& kernel, const Op& op) {
  std::size_t channel = 0;
  if (const auto* send = dynamic_cast<const SendOp*>(&op))
    channel = send->channel();
  else if (const auto* recv = dynamic_cast<const RecvOp*>(&op))
    channel = recv->channel();
  else
    return nullptr;
  return &kernel.model().channels.at(channel).mechanism;
}

namespace {

ParamSpec bytes_param(const std::string& what) {
  return variable_field({"bytes", ParamType::Bytes, nullptr, "bytes", what});
}

const OpRegistrar register_send_op(
    {"send",
     "send a message on a channel (whatever mechanism carries it)",
     {"send op",
      "",
      {{"channel", ParamType::String, nullptr, "", "the channel's name (scenario \"channels\")"},
       bytes_param("the message's size: what is copied"),
       variable_field({"type", ParamType::Integer, 1, "", "message type (System V queues select on it; > 0)",
                       1.0, 9.2e18}),
       variable_field({"priority", ParamType::Integer, 0, "",
                       "message priority (POSIX queues deliver the highest first)", 0.0, 32767.0}),
       {"text", ParamType::String, "", "",
        "text carried for print ({msg.text} at the receiver); {NAME} placeholders are filled in when sent"},
       timeout_param()}},
     [](const json& f, const std::string& path, CompileContext& ctx, Program& p, std::uint16_t a) {
       p.ops.push_back(std::make_unique<SendOp>(a, read_timeout(f, path, ctx), channel_index(f, path, ctx),
                                                MessageArgs::read(f, path, ctx)));
     }});

const OpRegistrar register_recv_op(
    {"recv",
     "receive one message from a channel; {result} is its size, {msg.*} describe it",
     {"recv op",
      "",
      {{"channel", ParamType::String, nullptr, "", "the channel's name"},
       bytes_param("the receive buffer's size (over a byte stream: read up to the next message's end)"),
       timeout_param()}},
     [](const json& f, const std::string& path, CompileContext& ctx, Program& p, std::uint16_t a) {
       p.ops.push_back(std::make_unique<RecvOp>(a, read_timeout(f, path, ctx), channel_index(f, path, ctx),
                                                read_int_field(f, "bytes", path, ctx)));
     }});

// The open file behind descriptor `fd`, or nullptr after failing the call with EBADF.
OpenFile* file_or_ebadf(OpContext& ctx, Symbol fd, std::uint16_t activity) {
  OpenFile* file = lookup_descriptor(ctx, fd);
  if (!file) ctx.fail(activity, EBADF);
  return file;
}

class ReadOp : public SyscallOp {
public:
  ReadOp(std::uint16_t activity, std::string fd, IntRef bytes)
      : SyscallOp(activity, {}), fd_(fd), bytes_(bytes) {}
  bool arguments_valid(OpContext& ctx) const override {
    std::int64_t v = 0;
    return bytes_.resolve_field(ctx, v, "read", "bytes", 0, kMaxMessageBytes, true);
  }
  IoStatus call(OpContext& ctx) const override {
    OpenFile* file = file_or_ebadf(ctx, fd_, activity);
    if (!file) return IoStatus::Done;
    std::int64_t bytes = 0;
    if (!bytes_.resolve_field(ctx, bytes, "read", "bytes", 0, kMaxMessageBytes, false))
      return fail_call(ctx, activity, EINVAL); // changed by a signal handler since the call started
    ctx.thread.op_nonblocking = file->nonblocking;
    return file->read(ctx, activity, static_cast<std::uint64_t>(bytes));
  }

private:
  Symbol fd_;
  IntRef bytes_;
};

class WriteOp : public SyscallOp {
public:
  WriteOp(std::uint16_t activity, std::string fd, MessageArgs message)
      : SyscallOp(activity, {}), fd_(fd), message_(std::move(message)) {}
  bool arguments_valid(OpContext& ctx) const override { return message_.valid(ctx, "write"); }
  IoStatus call(OpContext& ctx) const override {
    OpenFile* file = file_or_ebadf(ctx, fd_, activity);
    if (!file) return IoStatus::Done;
    ctx.thread.op_nonblocking = file->nonblocking;
    return file->write(ctx, activity, message_.make(ctx));
  }

private:
  Symbol fd_;
  MessageArgs message_;
};

class CloseOp : public SyscallOp {
public:
  CloseOp(std::uint16_t activity, std::string fd) : SyscallOp(activity, {}), fd_(fd) {}
  IoStatus call(OpContext& ctx) const override {
    Process& process = *ctx.thread.process;
    for (std::size_t i = 0; i < process.fds.size(); ++i)
      if (process.fds[i].name == fd_) {
        ctx.kernel.close_descriptor(ctx, process, i, activity);
        ctx.succeed();
        return IoStatus::Done;
      }
    return fail_call(ctx, activity, EBADF);
  }

private:
  Symbol fd_;
};

class FcntlOp : public SyscallOp {
public:
  FcntlOp(std::uint16_t activity, std::string fd, bool nonblock)
      : SyscallOp(activity, {}), fd_(fd), nonblock_(nonblock) {}
  IoStatus call(OpContext& ctx) const override {
    OpenFile* file = file_or_ebadf(ctx, fd_, activity);
    if (!file) return IoStatus::Done;
    file->nonblocking = nonblock_; // a flag of the open file description, shared across fork
    ctx.succeed();
    return IoStatus::Done;
  }

private:
  Symbol fd_;
  bool nonblock_;
};

class SpawnOp : public SyscallOp {
public:
  SpawnOp(std::uint16_t activity, std::string process,
          std::optional<std::vector<std::pair<Symbol, Symbol>>> fds)
      : SyscallOp(activity, {}), process_(std::move(process)), fds_(std::move(fds)) {}
  IoStatus call(OpContext& ctx) const override {
    const ProcessSpec* spec = nullptr;
    for (const auto& p : ctx.kernel.model().processes)
      if (p->name == process_) spec = p.get();
    // fork at RLIMIT_NPROC: EAGAIN. Here the run's process and thread limits (a child that spawns
    // itself twice grew without bound).
    if (!ctx.kernel.may_spawn(*spec)) return fail_call(ctx, activity, EAGAIN);
    Process& parent = *ctx.thread.process;
    std::vector<Descriptor> fds;
    if (!fds_) {
      for (const auto& d : parent.fds)
        if (d.file->inherited) fds.push_back(d);
    } else {
      for (const auto& [child_name, parent_name] : *fds_) {
        Descriptor* d = parent.find_fd(parent_name);
        if (!d) return fail_call(ctx, activity, EBADF);
        fds.push_back({child_name, d->file});
      }
    }
    // fork copies the page tables of the working set.
    const CostModel& costs = ctx.kernel.model().costs;
    // At most 2^32 x 10^6 cycles, bounded at load (costs.hpp).
    ctx.charge(activity, Primitive::map_page, costs.cycles(Primitive::map_page) * spec->working_set_pages);
    Process& child = ctx.kernel.spawn(ctx, *spec, std::move(fds));
    ctx.succeed(child.pid);
    return IoStatus::Done;
  }

private:
  std::string process_;
  std::optional<std::vector<std::pair<Symbol, Symbol>>> fds_;
};

ParamSpec fd_param(const std::string& what) { return {"fd", ParamType::String, nullptr, "", what}; }

const OpRegistrar register_read_op(
    {"read",
     "read up to `bytes` from a descriptor (a pipe, FIFO or stream socket); {result} is the count, 0 at end "
     "of file",
     {"read op", "", {fd_param("the descriptor's name"), bytes_param("the buffer's size")}},
     [](const json& f, const std::string& path, CompileContext& ctx, Program& p, std::uint16_t a) {
       p.ops.push_back(
           std::make_unique<ReadOp>(a, f.at("fd").get<std::string>(), read_int_field(f, "bytes", path, ctx)));
     }});

const OpRegistrar register_write_op(
    {"write",
     "write `bytes` to a descriptor; {result} is the count written",
     {"write op",
      "",
      {fd_param("the descriptor's name"),
       bytes_param("how many bytes"),
       {"text", ParamType::String, "", "",
        "text carried for print at the reader; {NAME} placeholders are filled in when written"}}},
     [](const json& f, const std::string& path, CompileContext& ctx, Program& p, std::uint16_t a) {
       p.ops.push_back(
           std::make_unique<WriteOp>(a, f.at("fd").get<std::string>(), MessageArgs::read(f, path, ctx)));
     }});

const OpRegistrar register_close_op(
    {"close",
     "close a descriptor (the last close of a pipe's write end gives its readers end of file)",
     {"close op", "", {fd_param("the descriptor's name")}},
     [](const json& f, const std::string&, CompileContext&, Program& p, std::uint16_t a) {
       p.ops.push_back(std::make_unique<CloseOp>(a, f.at("fd").get<std::string>()));
     }});

const OpRegistrar register_fcntl_op(
    {"fcntl",
     "set or clear O_NONBLOCK on a descriptor's open file (shared with every copy of it)",
     {"fcntl op",
      "",
      {fd_param("the descriptor's name"),
       {"nonblock", ParamType::Bool, nullptr, "", "true: every call that would block fails with EAGAIN"}}},
     [](const json& f, const std::string&, CompileContext&, Program& p, std::uint16_t a) {
       p.ops.push_back(
           std::make_unique<FcntlOp>(a, f.at("fd").get<std::string>(), f.at("nonblock").get<bool>()));
     }});

const OpRegistrar register_spawn_op(
    {"spawn",
     "start a process declared with \"spawned\": true (fork + exec); it inherits descriptors; {result} is "
     "its pid",
     {"spawn op",
      "",
      {{"process", ParamType::String, nullptr, "", "the process to start"},
       {"fds",
        ParamType::Object,
        nullptr,
        "",
        "the child's descriptors as {CHILD_NAME: PARENT_NAME}, as a shell's dup2 before exec; absent: all of "
        "the parent's, under the same names (fork)",
        std::nullopt,
        std::nullopt,
        {},
        "all of the parent's"}}},
     [](const json& f, const std::string& path, CompileContext& ctx, Program& p, std::uint16_t a) {
       auto name = f.at("process").get<std::string>();
       if (std::find(ctx.spawned_names.begin(), ctx.spawned_names.end(), name) == ctx.spawned_names.end()) {
         bool known =
             std::find(ctx.process_names.begin(), ctx.process_names.end(), name) != ctx.process_names.end();
         fail_at(ctx.read.file, join_path(path, "process"),
                 known ? "process \"" + name +
                             "\" is not declared with \"spawned\": true, so it starts on its own"
                       : "unknown process \"" + name + "\"" + did_you_mean(name, ctx.process_names) +
                             "; processes: " + join_list(ctx.process_names) + elsewhere_note(ctx, name));
       }
       std::optional<std::vector<std::pair<Symbol, Symbol>>> fds;
       if (f.contains("fds")) {
         fds.emplace();
         for (const auto& [child, parent] : f.at("fds").items()) {
           if (!parent.is_string() || parent.get<std::string>().empty())
             fail_at(ctx.read.file, join_path(join_path(path, "fds"), child),
                     "invalid value " + parent.dump() +
                         "; expected the name of one of the parent's descriptors");
           fds->push_back({Symbol(child), Symbol(parent.get<std::string>())});
         }
       }
       p.ops.push_back(std::make_unique<SpawnOp>(a, name, std::move(fds)));
     }});

} // namespace

// ---- Templates --------------------------------------------------------------------------------

namespace {

std::string value_text(const Value& value) {
  if (const auto* i = std::get_if<std::int64_t>(&value)) return std::to_string(*i);
  return std::get<std::string>(value);
}

} // namespace

VarRef::VarRef(const std::string& name) {
  const auto& names = builtin_variables(); // in the order of Builtin, after None
  for (std::size_t i = 0; i < names.size(); ++i)
    if (names[i] == name) {
      builtin_ = static_cast<Builtin>(i + 1);
      return;
    }
  local_ = Symbol(name);
}

const std::string& VarRef::name() const {
  if (builtin_ == Builtin::None) return local_.name();
  return builtin_variables()[static_cast<std::size_t>(builtin_) - 1];
}

Value VarRef::read(const Kernel& kernel, const Thread& thread) const {
  static const Message no_message;
  const Message& m = thread.locals ? thread.locals->message : no_message;
  switch (builtin_) {
  case Builtin::None:
    if (thread.locals)
      if (const Value* v = thread.locals->find(local_)) return *v;
    return std::int64_t{0};
  case Builtin::Result:
    return thread.result;
  case Builtin::Errno:
    return std::string(errno_name(thread.error));
  case Builtin::Pid:
    return static_cast<std::int64_t>(thread.process->pid);
  case Builtin::Index:
    return static_cast<std::int64_t>(thread.process->copy); // NAME[index]
  case Builtin::MsgType:
    return m.type;
  case Builtin::MsgText:
    return m.text;
  case Builtin::MsgBytes:
    return static_cast<std::int64_t>(m.bytes);
  case Builtin::MsgSender:
    return m.sender >= 0 ? kernel.threads()[static_cast<std::size_t>(m.sender)].display_name()
                         : std::string();
  case Builtin::MsgPriority:
    return static_cast<std::int64_t>(m.priority);
  case Builtin::Receiver:
    return thread.locals ? thread.locals->receiver : std::string();
  }
  return std::int64_t{0};
}

Value read_variable(const std::string& name, const Kernel& kernel, const Thread& thread) {
  return VarRef(name).read(kernel, thread);
}

Template::Template(const std::string& text) : text_(text) {
  std::string literal;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '{') {
      std::size_t j = i + 1;
      while (j < text.size() && variable_char(text[j])) ++j;
      if (j < text.size() && text[j] == '}' && j > i + 1) {
        literals_.push_back(std::move(literal));
        literal.clear();
        vars_.emplace_back(text.substr(i + 1, j - i - 1));
        i = j;
        continue;
      }
    }
    literal += text[i];
  }
  literals_.push_back(std::move(literal));
}

std::string Template::format(const Kernel& kernel, const Thread& thread) const {
  if (vars_.empty()) return text_;
  std::string out = literals_[0];
  for (std::size_t i = 0; i < vars_.size(); ++i) {
    out += value_text(vars_[i].read(kernel, thread));
    out += literals_[i + 1];
  }
  return out;
}

std::string format_template(const std::string& text, const Kernel& kernel, const Thread& thread) {
  if (text.find('{') == std::string::npos) return text;
  return Template(text).format(kernel, thread);
}

std::string expand_name(const std::string& text, const OpContext& ctx) {
  if (text.find('{') == std::string::npos) return text;
  return format_template(text, ctx.kernel, ctx.thread);
}

namespace {

constexpr std::size_t kPathMax = 4096; // PATH_MAX, the NUL included (getname)
constexpr std::size_t kNameMax = 255;  // NAME_MAX: one component of a path
constexpr std::size_t kSunPath = 108;  // sizeof(sockaddr_un::sun_path), the NUL included
// glibc's struct shmdir_name: sizeof "/dev/shm/" + sizeof "sem." + NAME_MAX.
constexpr std::size_t kShmdirName = 10 + 5 + kNameMax;

// A path as the kernel's walk reads it: ENAMETOOLONG past PATH_MAX or for a component past NAME_MAX.
// "//" and "." are dropped and ".." is taken lexically: no directory is modelled, so every one
// exists and none is a symbolic link. `directory`: the path names a directory.
int walk_path(const std::string& path, std::string& out, bool& directory) {
  if (path.empty()) return ENOENT;
  if (path.size() + 1 > kPathMax) return ENAMETOOLONG;
  std::vector<std::string_view> parts;
  std::string_view last;
  for (std::size_t i = 0; i <= path.size();) {
    std::size_t j = std::min(path.find('/', i), path.size());
    std::string_view part(path.data() + i, j - i);
    if (part.size() > kNameMax) return ENAMETOOLONG;
    last = part;
    if (part == "..") {
      if (!parts.empty()) parts.pop_back();
    } else if (!part.empty() && part != ".") {
      parts.push_back(part);
    }
    i = j + 1;
  }
  directory = parts.empty() || last.empty() || last == "." || last == "..";
  out.clear();
  for (auto part : parts) (out += '/') += part;
  return 0;
}

} // namespace

IoStatus CallName::fail(OpContext& ctx, std::uint16_t activity) const {
  if (!stopped) ctx.fail(activity, error);
  return IoStatus::Done;
}

CallName call_name(const std::string& text, NameKind kind, OpContext& ctx, const char* op,
                   const char* field) {
  CallName result;
  std::string filled = expand_name(text, ctx);
  // A C string ends at its first NUL: that is all the call sees of a variable's text.
  if (auto nul = filled.find('\0'); nul != std::string::npos) filled.resize(nul);
  switch (kind) {
  case NameKind::SocketPath:
    // unix_validate_addr: the path and its NUL must fit sun_path.
    if (filled.size() + 1 > kSunPath) {
      result.error = EINVAL;
      break;
    }
    [[fallthrough]];
  case NameKind::Path: {
    bool directory = false;
    result.error = walk_path(filled, result.name, directory);
    if (result.error == 0 && directory) {
      result.stopped = true;
      ctx.kernel.abort_run(ctx.thread, std::string(op) + " " + field + " \"" + text + "\" is \"" + filled +
                                           "\" once filled in: it names a directory, and the simulated "
                                           "file system has none (it holds FIFOs, sockets and regular "
                                           "files); give the path of a file, such as \"/tmp/f{pid}\"");
    }
    break;
  }
  case NameKind::MqName: {
    // glibc's mq_open and mq_unlink want the leading slash and give the kernel what follows it;
    // getname, then lookup_one_len (EACCES for a slash, "." or ".."), then simple_lookup (NAME_MAX).
    result.name = filled;
    if (filled.empty() || filled[0] != '/') {
      result.error = EINVAL;
      break;
    }
    const std::string_view rest = std::string_view(filled).substr(1);
    if (rest.size() + 1 > kPathMax)
      result.error = ENAMETOOLONG;
    else if (rest.empty())
      result.error = ENOENT;
    else if (rest.find('/') != std::string_view::npos || rest == "." || rest == "..")
      result.error = EACCES;
    else if (rest.size() > kNameMax)
      result.error = ENAMETOOLONG;
    break;
  }
  case NameKind::ShmOpen:
  case NameKind::ShmUnlink:
  case NameKind::SemOpen:
  case NameKind::SemUnlink: {
    // glibc 2.34+'s __shm_get_name: leading slashes skipped; the rest must be non-empty, without a
    // slash, and fit "/dev/shm/" ["sem."] name in shmdir_name; then the file is opened (unlinked) in
    // /dev/shm, where a component past NAME_MAX is ENAMETOOLONG and "." or ".." a directory.
    const bool sem = kind == NameKind::SemOpen || kind == NameKind::SemUnlink;
    const bool unlink = kind == NameKind::ShmUnlink || kind == NameKind::SemUnlink;
    const std::size_t prefix = sem ? 4 : 0; // "sem."
    const std::size_t first = filled.find_first_not_of('/');
    const std::string rest = first == std::string::npos ? std::string() : filled.substr(first);
    result.name = "/" + rest;
    if (rest.empty() || rest.find('/') != std::string::npos || 9 + prefix + rest.size() + 1 > kShmdirName)
      result.error = unlink ? ENOENT : EINVAL;
    else if (!sem && (rest == "." || rest == ".."))
      result.error = EISDIR;
    else if (prefix + rest.size() > kNameMax)
      result.error = ENAMETOOLONG;
    break;
  }
  }
  return result;
}

void check_template(const std::string& text, const std::string& path, CompileContext& ctx) {
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '{') continue;
    std::size_t j = i + 1;
    while (j < text.size() && variable_char(text[j])) ++j;
    if (j < text.size() && text[j] == '}' && j > i + 1)
      ctx.used.push_back({text.substr(i + 1, j - i - 1), path});
  }
}

const std::vector<std::string>& builtin_variables() {
  static const std::vector<std::string> names{"result",       "errno",    "pid",       "index",
                                              "msg.type",     "msg.text", "msg.bytes", "msg.sender",
                                              "msg.priority", "receiver"};
  return names;
}

bool is_builtin_variable(const std::string& name) {
  return std::find(builtin_variables().begin(), builtin_variables().end(), name) != builtin_variables().end();
}

// ---- System V op fields ------------------------------------------------------------------------

bool IntRef::read(const OpContext& ctx, std::int64_t& out) const {
  if (var.empty()) {
    out = value;
    return true;
  }
  Value v = var.read(ctx.kernel, ctx.thread);
  if (const auto* i = std::get_if<std::int64_t>(&v)) {
    out = *i;
    return true;
  }
  return false;
}

bool IntRef::resolve(OpContext& ctx, std::int64_t& out, const char* op) const {
  if (read(ctx, out)) return true;
  ctx.kernel.abort_run(ctx.thread,
                       std::string(op) + ": variable " + var.name() + " holds text, not a number");
  return false;
}

bool IntRef::resolve_field(OpContext& ctx, std::int64_t& out, const char* op, const char* field,
                           std::int64_t min, std::int64_t max, bool stop) const {
  if (var.empty()) {
    out = value;
    return true;
  }
  Value v = var.read(ctx.kernel, ctx.thread);
  const auto* number = std::get_if<std::int64_t>(&v);
  if (number && *number >= min && *number <= max) {
    out = *number;
    return true;
  }
  if (stop)
    ctx.kernel.abort_run(ctx.thread, std::string(op) + " " + field + " \"{" + var.name() +
                                         "}\": the variable holds " + describe_value(v) +
                                         "; expected a whole number from " + std::to_string(min) + " to " +
                                         std::to_string(max));
  return false;
}

IntRef read_int_field(const json& f, const std::string& field, const std::string& path, CompileContext& ctx) {
  const json& value = f.at(field);
  if (auto name = variable_placeholder(value)) {
    ctx.used.push_back({*name, join_path(path, field)});
    return {0, VarRef(*name)};
  }
  if (value.is_string()) return {static_cast<std::int64_t>(read_bytes(value)), {}}; // "4KiB"
  return {value.get<std::int64_t>(), {}};
}

MessageArgs MessageArgs::read(const json& f, const std::string& path, CompileContext& ctx) {
  MessageArgs args;
  if (f.contains("bytes")) args.bytes = read_int_field(f, "bytes", path, ctx);
  if (f.contains("type")) args.type = read_int_field(f, "type", path, ctx);
  if (f.contains("priority")) args.priority = read_int_field(f, "priority", path, ctx);
  if (f.contains("text")) {
    auto text = f.at("text").get<std::string>();
    check_template(text, join_path(path, "text"), ctx);
    args.text = Template(text);
  }
  return args;
}

bool MessageArgs::valid(OpContext& ctx, const char* op) const {
  std::int64_t v = 0;
  return bytes.resolve_field(ctx, v, op, "bytes", 0, kMaxMessageBytes, true) &&
         type.resolve_field(ctx, v, op, "type", 1, std::numeric_limits<std::int64_t>::max(), true) &&
         priority.resolve_field(ctx, v, op, "priority", 0, kMaxPriority, true);
}

Message MessageArgs::make(OpContext& ctx) const {
  Message m;
  std::int64_t v = 0;
  // Checked by valid() when the call started; a signal handler may have changed a variable since.
  m.bytes =
      bytes.resolve_field(ctx, v, "", "", 0, kMaxMessageBytes, false) ? static_cast<std::uint64_t>(v) : 0;
  m.type = type.resolve_field(ctx, v, "", "", 1, std::numeric_limits<std::int64_t>::max(), false) ? v : 0;
  m.priority =
      priority.resolve_field(ctx, v, "", "", 0, kMaxPriority, false) ? static_cast<std::uint32_t>(v) : 0;
  m.text = text.has_placeholders() && ctx.thread.op_progress == 0 ? text.format(ctx.kernel, ctx.thread)
                                                                  : text.text();
  m.sender = static_cast<std::int32_t>(ctx.thread.id);
  return m;
}

std::optional<std::int64_t> parse_hex(const std::string& text) {
  if (text.size() < 3 || text.size() > 10 || text[0] != '0' || (text[1] != 'x' && text[1] != 'X'))
    return std::nullopt;
  std::int64_t v = 0;
  for (std::size_t i = 2; i < text.size(); ++i) {
    char c = text[i];
    int d = c >= '0' && c <= '9'   ? c - '0'
            : c >= 'a' && c <= 'f' ? c - 'a' + 10
            : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                   : -1;
    if (d < 0) return std::nullopt;
    v = v * 16 + d;
  }
  return v;
}

std::string read_into_variable(const json& f, const std::string& field, const std::string& path,
                               CompileContext& ctx, const std::vector<std::string>& suffixes) {
  auto name = f.at(field).get<std::string>();
  if (!valid_variable_not_number(name))
    fail_at(ctx.read.file, join_path(path, field),
            "invalid variable name \"" + name +
                "\"; use letters, digits, _ and . (not starting with a digit)");
  if (is_builtin_variable(name))
    fail_at(ctx.read.file, join_path(path, field),
            "\"" + name + "\" is set by the system calls themselves; choose another name");
  if (suffixes.empty()) ctx.assigned.push_back(name);
  for (const auto& s : suffixes) ctx.assigned.push_back(s.empty() ? name : name + "." + s);
  return name;
}

IntRef read_int_or_variable(const json& f, const std::string& field, const std::string& path,
                            CompileContext& ctx, const std::string& expected) {
  const json& value = f.at(field);
  if (value.is_number_integer()) return {value.get<std::int64_t>(), {}};
  if (variable_placeholder(value)) return read_int_field(f, field, path, ctx); // "{q}" as well as "q"
  if (!value.is_string() || !valid_variable_not_number(value.get_ref<const std::string&>()))
    fail_at(ctx.read.file, join_path(path, field),
            "invalid value " + value.dump() + "; expected " + expected);
  auto name = value.get<std::string>();
  ctx.used.push_back({name, join_path(path, field)});
  return {0, VarRef(name)};
}

IntRef read_sysv_ref(const json& f, const std::string& field, const std::string& path, CompileContext& ctx,
                     const std::string& expected, bool ipc_private) {
  const json& value = f.at(field);
  if (value.is_string()) {
    const auto& text = value.get_ref<const std::string&>();
    if (ipc_private && text == "IPC_PRIVATE") return {0, {}};
    if (auto hex = parse_hex(text)) return {*hex, {}};
  }
  return read_int_or_variable(f, field, path, ctx, expected);
}

} // namespace ipcsim
