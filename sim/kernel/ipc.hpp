// What every IPC mechanism in models/ builds on: error numbers scripts can test, open files
// (descriptors), the generic channel, the mechanism registry, and the blocking-call helpers.
//
// A mechanism's system call is an Op whose execute() runs again each time the thread is woken.
// The pattern (see SyscallOp below, and models/pipe.cpp for a full example):
//   phase 0: enter the kernel (trap + dispatch), start the call (deadline, non-blocking flag);
//   each run: try; if it must wait, `return wait_on(ctx, queue)` (Blocked, or Done with EAGAIN /
//   ETIMEDOUT already set); when Done, the wrapper leaves the kernel and moves to the next op.
#pragma once
#include "function_ref.hpp"
#include "kernel.hpp"
#include "params.hpp"
#include "script.hpp"

#include <cerrno>
#include <deque>
#include <functional>
#include <limits>

namespace ipcsim {

// ---- Error numbers (Linux's values, so a student can compare with errno(3)) -------------------

// The host's <cerrno> values: ipcsim runs on Linux, and these are Linux's numbers.

const char* errno_name(int error);             // "EAGAIN"; "" for 0
int errno_from_name(const std::string& name);  // -1 when unknown
const std::vector<std::string>& errno_names(); // every name above, for messages

// ---- Signals (models/signal.cpp; docs/signals.md) ----------------------------------------------

inline constexpr int kSIGPIPE = 13;
// "SIGPIPE", "SIGRTMIN+2" (Linux's numbers, signal(7)).
std::string signal_name(int signal);
// A write found no reader (a pipe, a stream socket): SIGPIPE to the writing thread, as its
// process's disposition says (terminate by default, ignore, or a handler once the write returns).
void send_sigpipe(OpContext& ctx, std::uint16_t activity);
// The kernel signals a process on an event (mq_notify's SIGEV_SIGNAL): `value` is si_value and
// `code` si_code (SI_MESGQ, ...), as a handler or sigwait sees them.
void kernel_signal(OpContext& ctx, Process& process, int signal, std::int64_t value, int code,
                   std::uint16_t activity);
inline constexpr int kSI_MESGQ = -3;
// Blocks every signal that can be blocked in `thread` (a C library's helper thread, created with
// all signals blocked so that none is delivered to it).
void block_all_signals(OpContext& ctx, Thread& thread);
// Reads a signal named by f[field] ("SIGUSR1", "USR1", "SIGRTMIN+2", a number); a load error
// naming the place otherwise.
int read_signal_field(const json& f, const std::string& field, const std::string& path,
                      const CompileContext& ctx);
// The mechanism carrying a generic send / recv op's channel ("pipe", "sysv_msg"), or nullptr for
// any other op: whether SA_RESTART restarts it depends on the call underneath (signal(7)).
const std::string* op_channel_mechanism(const Kernel& kernel, const Op& op);

// ---- Blocking calls ---------------------------------------------------------------------------

enum class IoStatus : std::uint8_t {
  Done,    // the call finished: ctx.succeed(...) or ctx.fail(...) was called
  Blocked, // the thread was put to sleep with Kernel::block; the op runs again when woken
  Retry,   // wait_on had to let the core's pending cycles pass first: check the condition again
};

// Fails the call with `error` (the script sees it in {errno}) and finishes it:
// `if (!file) return fail_call(ctx, activity, EBADF);`.
inline IoStatus fail_call(OpContext& ctx, std::uint16_t activity, int error) {
  ctx.fail(activity, error);
  return IoStatus::Done;
}

// A variable a script reads, resolved once when the script is compiled: one of
// builtin_variables(), or a script variable by its interned name.
class VarRef {
public:
  VarRef() = default;
  explicit VarRef(const std::string& name);
  const std::string& name() const;
  bool empty() const { return builtin_ == Builtin::None && local_.empty(); }
  Value read(const Kernel& kernel, const Thread& thread) const;

private:
  enum class Builtin : std::uint8_t {
    None, // a script variable
    Result,
    Errno,
    Pid,
    Index,
    MsgType,
    MsgText,
    MsgBytes,
    MsgSender,
    MsgPriority,
    Receiver
  };
  Builtin builtin_ = Builtin::None;
  Symbol local_;
};

// A time given directly (cycles), or "{NAME}": a script variable read when the op runs, holding
// whole cycles or a duration such as "10us" (at the machine's clock).
struct TimeRef {
  Cycles cycles = 0;
  VarRef var; // empty: `cycles`
  // The time now; false when the variable holds neither (with `stop`, the run stops with a message
  // naming the op, the field, the variable and its value).
  bool resolve(OpContext& ctx, Cycles& out, const char* op, const char* field, bool stop = true) const;
  bool constant() const { return var.empty(); }
};
// f[field], declared Time with takes_variable: its cycles, or "{NAME}" (recorded as used).
TimeRef read_time_field(const json& f, const std::string& field, const std::string& path,
                        CompileContext& ctx);

// How long a call may wait: the scenario's "timeout" field. kNever (absent): block; 0: do not
// block (O_NONBLOCK / IPC_NOWAIT: EAGAIN); otherwise wait at most that long (ETIMEDOUT). A
// "{NAME}" timeout is read when the call starts.
struct CallTimeout {
  Cycles cycles = kNever;
  VarRef var;
  // The timeout with its variable read; false (the run stopped, naming the op) when it holds no time.
  bool resolve(OpContext& ctx, std::uint16_t activity, CallTimeout& out) const;
};

// Starts a call: records its deadline and clears what an earlier call left behind.
void begin_call(OpContext& ctx, CallTimeout timeout);
// Sleeps on `queue` until woken or the deadline; a non-blocking call fails with EAGAIN, an expired
// one with `timeout_error` (ETIMEDOUT unless the mechanism's manual page says otherwise).
// The condition the caller checked must still hold when the thread goes to sleep: if cycles the
// call charged have not passed yet, wait_on lets them pass and returns Retry, and the call runs
// again (another core may have changed the object meanwhile; sleeping now could lose its wakeup).
IoStatus wait_on(OpContext& ctx, WaitQueue& queue, std::uint16_t activity, int timeout_error = ETIMEDOUT);

// Copying a payload between user and kernel (or two address spaces): copy_setup + bytes at the
// copy rate of the transfer's footprint (CostModel::copy_cycles). `transfer` is the size of the
// whole transfer the copy is a piece of (a pipe write in chunks): its footprint decides the rate;
// 0 means the copy is the whole transfer. `queued`: the bytes the kernel object holds at the copy,
// this copy's included (a pipe's buffered data, a queue's messages). Written and not yet read, they
// share the cache with the copy: the footprint is the queued data and the user's side of the
// transfer when that is more than the transfer's own (source and destination), as in a stream on one
// core, where the reader reads what the writer wrote a pipe's capacity earlier. `written_on`: the
// core whose cache holds the source (Message::written_on); another core's sends its lines over: one
// cache_line_transfer (the prefetcher overlaps the rest), and the bytes at the remote rate
// (CostModel::remote_cycles_per_byte_at) where that is slower than this core's, the difference
// booked under copy_bytes_per_cycle_remote (and _uncached beyond it), as shared memory's.
// `held_bytes`: how many of the bytes that core holds (all by default; a pipe write fills fresh pages
// beside the one its reader's core emptied).
void charge_copy(OpContext& ctx, std::uint16_t activity, std::uint64_t bytes, std::uint64_t transfer = 0,
                 std::uint64_t queued = 0, std::int32_t written_on = -1,
                 std::uint64_t held_bytes = std::numeric_limits<std::uint64_t>::max());
// What `bytes` from another core's cache add to the `local` cycles their footprint's rate gave them
// (charged already): one cache_line_transfer (the prefetcher overlaps the rest), then the bytes at
// the remote rate (CostModel::remote_cycles_per_byte_at) where that is slower, the difference booked
// under copy_bytes_per_cycle_remote and, past the remote rate, _uncached. Kernel buffers
// (charge_copy) and shared memory (shm.cpp) both.
void charge_from_other_core(OpContext& ctx, std::uint16_t activity, double bytes, double local,
                            double footprint);

// A message of `bytes` entering the kernel (load_msg's alloc_msg: slab_alloc per msg_msg /
// msg_msgseg, and security_msg_msg_alloc) and leaving it (free_msg's security_msg_msg_free and a
// slab_free per msg_msg / msg_msgseg): System V and POSIX message queues share ipc/msgutil.c.
void charge_msg_alloc(OpContext& ctx, std::uint16_t activity, std::uint64_t bytes);
void charge_msg_free(OpContext& ctx, std::uint16_t activity, std::uint64_t bytes);

// ---- Events for subscribers (the timeline, sim/out/trace.cpp) ---------------------------------

// `object` names the IPC object, as the listing at the end of a run does ("pipe 1", "channel ping",
// "msqid 0", "posix mq /q", "mailbox courier", "unix socket 2").
//
// Conservation (docs/limits.md): every message and byte that enters an object leaves it to a
// receiver, is still held there at the end (IpcState::held), or is dropped with a reason. Each
// mechanism reports the three flows through these calls, and the checker balances them per object.
//
// A message entered a mechanism (a queue, a pipe's buffer, a waiting receiver's hands): gives it
// its id and tells subscribers. Called once per message, when its first byte goes in; `bytes`
// (default: message.bytes) is what went in with it, and bytes_sent the rest of it (a pipe's later
// chunks).
void message_sent(OpContext& ctx, Message& message, const std::string& object);
void message_sent(OpContext& ctx, Message& message, const std::string& object, std::uint64_t bytes);
void bytes_sent(OpContext& ctx, const std::string& object, std::uint64_t bytes);
// A receive took `message` (over a byte stream: the first read that takes part of it), and `bytes`
// of it; bytes_received: more bytes (of it, or of messages already counted).
void message_received(OpContext& ctx, const Message& message, const std::string& object, std::uint64_t bytes);
void bytes_received(OpContext& ctx, const std::string& object, std::uint64_t bytes);
// `messages` (none of whose bytes was received) and `bytes` left `object` for nobody: the queue was
// removed, the last descriptor closed with data unread, a receiver died holding it... `reason`
// says which, as the checker's message will.
void message_dropped(OpContext& ctx, const std::string& object, std::uint64_t messages, std::uint64_t bytes,
                     const char* reason);
// How full `object` is now: bytes in a pipe or stream socket, messages in a queue.
void fill_changed(OpContext& ctx, const std::string& object, const char* unit, std::uint64_t value);

// A script op that is one system call: enter, call() until Done, leave. Mechanisms derive from it
// and implement call(); `timeout` comes from the op's optional "timeout" field.
class SyscallOp : public Op {
public:
  SyscallOp(std::uint16_t activity, CallTimeout timeout) : Op(activity), timeout_(timeout) {}
  Step execute(OpContext& ctx) const final;

protected:
  virtual IoStatus call(OpContext& ctx) const = 0;
  // The arguments, evaluated in user mode before the call is entered (fields that name script
  // variables): false stops the run (the op said why with Kernel::abort_run).
  virtual bool arguments_valid(OpContext&) const { return true; }
  CallTimeout timeout_;
};

// The "timeout" field every blocking op declares, and its reader.
ParamSpec timeout_param();
CallTimeout read_timeout(const json& fields, const std::string& path, CompileContext& ctx);

// ---- Open files -------------------------------------------------------------------------------

// An open file is counted twice, on purpose, and the two counts answer different questions.
//  - Ownership: each Descriptor holds it through a std::shared_ptr, and so does whoever needs it
//    for a moment outside any descriptor table: Kernel::close_descriptor, which has already erased
//    the descriptor, keeps it alive while on_last_close runs; a spawn's list of the descriptors to
//    pass holds them until the child's table does; install_descriptor holds the new file while it
//    closes an old descriptor of the same name. The object is freed when the last holder lets go.
//  - Last close: `refs` counts descriptors only, in every process. on_last_close runs when it
//    drops to 0 (a pipe's readers see end of file when its last write descriptor is closed),
//    whoever else still holds the object; shared_ptr::use_count() would count those holders too,
//    so "last close" would then depend on every temporary copy anyone makes.
// Adding a descriptor increments `refs` (install_descriptor, Kernel::spawn, the mailbox's exit
// watch installed in another process); Kernel::close_descriptor decrements it. A call in progress
// holds neither: each run of it that needs the file looks its descriptor up again, by name.
class OpenFile {
public:
  virtual ~OpenFile() = default;
  std::uint32_t refs = 0;   // descriptors referring to it, in every process (see above)
  bool nonblocking = false; // O_NONBLOCK: every block becomes EAGAIN
  bool inherited = true;    // false: spawn never passes it to a child (a mechanism's private handle)
  virtual std::string describe() const = 0;
  // read/write move `bytes` (write: msg.bytes); Blocked or Done as for any call. The defaults fail
  // with EBADF (reading a write end, say).
  virtual IoStatus read(OpContext& ctx, std::uint16_t activity, std::uint64_t bytes);
  virtual IoStatus write(OpContext& ctx, std::uint16_t activity, const Message& message);
  // A descriptor referring to it was closed by `process` (each close, explicit or at exit: Linux's
  // f_op->flush), before on_last_close if it was the last.
  virtual void on_close(OpContext&, Process& /*process*/) {}
  // The last descriptor referring to it was closed (explicitly or at process exit).
  virtual void on_last_close(OpContext&, std::uint16_t) {}
};

// Adds a descriptor named `name` to the calling thread's process; an existing descriptor of that
// name is closed first, as dup2 would.
void install_descriptor(OpContext& ctx, Symbol name, std::shared_ptr<OpenFile> file, std::uint16_t activity);
// The descriptor `name` of the calling process, or nullptr (the op then fails with EBADF).
OpenFile* lookup_descriptor(OpContext& ctx, Symbol name);

// ---- The generic channel ----------------------------------------------------------------------

// One workload runs over any mechanism by changing the channel's "mechanism" field: the send and
// recv ops call these. A channel is created per run, from its ChannelSpec. The ops make the
// outcome uniform (docs/scripts.md): a successful send's result is the bytes sent (a queue's own
// 0 becomes the message's size), and a failed recv leaves no message.
class Channel {
public:
  virtual ~Channel() = default;
  virtual IoStatus send(OpContext& ctx, std::uint16_t activity, const Message& message) = 0;
  // Receives one message into a buffer of `bytes` (over a byte stream: up to the next message
  // boundary, see StreamFraming).
  // On success: ctx.succeed(bytes received), the message in thread.script_locals().message.
  virtual IoStatus recv(OpContext& ctx, std::uint16_t activity, std::uint64_t bytes) = 0;
};

// Message boundaries for a channel carried by a byte stream (a pipe, a stream socket), so that the
// same workload runs over a stream and a message queue alike. The channel keeps each message's
// length, as a length header would (free), and carries whole messages: senders take turns, each
// writing its whole message before the next starts, and so do receivers, each reading up to the
// next boundary (at most its buffer; a longer message is read in pieces by successive recvs), as a
// program using a framed protocol over a stream serialises its writers and its readers with a lock.
// Waiting for one's turn is a sleep on the channel (a wakeup when the turn comes). The turn's holder
// holds its call (CallHolder): a sender or receiver killed mid-message gives up its turn at once,
// and what it sent is a (shorter) message; an interrupted one keeps it until its call returns.
class StreamFraming : public CallHolder {
public:
  explicit StreamFraming(const std::string& channel)
      : senders_("channel " + channel + ": waiting for another sender's message to finish"),
        receivers_("channel " + channel + ": waiting for another receiver to finish") {}
  // Wraps the stream's write of the whole message for one send call (run again until it is done).
  IoStatus send(OpContext& ctx, std::uint16_t activity, std::uint64_t bytes, FunctionRef<IoStatus()> write);
  // Wraps the stream's exact read of `target` bytes for one recv call with a buffer of `bytes`.
  IoStatus recv(OpContext& ctx, std::uint16_t activity, std::uint64_t bytes,
                FunctionRef<IoStatus(std::uint64_t target)> read);
  void cancel(OpContext& ctx, Thread& caller, std::uint16_t activity) override;
  bool interrupted(OpContext&, Thread&, std::uint16_t) override { return false; }

private:
  void end_send_turn(std::uint64_t sent);
  void end_recv_turn(std::uint64_t got);
  std::deque<std::uint64_t> unread_; // per message in the stream, in order: bytes not yet received
  Thread* sender_ = nullptr;         // whose message is being written (its length is unread_.back())
  std::uint64_t sender_bytes_ = 0;   // that message's full length
  Thread* receiver_ = nullptr;       // who is reading the front message
  WaitQueue senders_, receivers_;
};

struct MechanismDecl {
  std::string name;
  std::string description;
  ParamTable params; // the channel's parameters (beside "name" and "mechanism")
  // Extra checks across fields, at load time (fail_at on a mistake); may be empty.
  std::function<void(const json& params, const std::string& path, const ReadContext& ctx)> check;
  std::function<std::unique_ptr<Channel>(const ChannelSpec& spec, Kernel& kernel)> make;
};

// Every mechanism in name order (registration order follows link order).
const std::vector<MechanismDecl>& mechanism_registry();
const MechanismDecl* find_mechanism(const std::string& name);
std::vector<std::string> mechanism_names();
// Registers a mechanism at static-initialisation time, as OpRegistrar does an op.
struct MechanismRegistrar {
  explicit MechanismRegistrar(MechanismDecl decl);
};

// A script variable's value (the built-ins of builtin_variables(), or one set by the script; an
// unset one reads as 0). Ops that run often hold a VarRef instead.
Value read_variable(const std::string& name, const Kernel& kernel, const Thread& thread);

// A text with "{name}" placeholders (result, errno, the last message's msg.type, msg.text,
// msg.bytes, msg.priority, msg.sender, pid, index; any other name is a script variable), split into
// literal pieces and variables when the script is compiled.
class Template {
public:
  Template() = default;
  explicit Template(const std::string& text);
  bool has_placeholders() const { return !vars_.empty(); }
  const std::string& text() const { return text_; }
  std::string format(const Kernel& kernel, const Thread& thread) const;

private:
  std::string text_;
  std::vector<std::string> literals_; // one more than vars_: literal, var, literal, ...
  std::vector<VarRef> vars_;
};
// Formats the placeholders of a text not compiled into a Template (rare ops).
std::string format_template(const std::string& text, const Kernel& kernel, const Thread& thread);
// A path or an object name with its {NAME} placeholders filled in as the call runs, as in print
// texts ({pid}, {index}, a script variable): `count: 3` clients binding "/tmp/cli{pid}" get one
// socket file each. Checked at load by check_path / check_template.
std::string expand_name(const std::string& text, const OpContext& ctx);
// Each call reads the filled name as Linux does: call_name (call_name.hpp).

// ---- Whole-number op fields that may name a script variable --------------------------------------

// A whole number given directly, or a script variable that holds one, read when the call runs (a
// key from ftok, an id from msgget, an offset, a message's size).
struct IntRef {
  std::int64_t value = 0;
  VarRef var; // empty: `value`
  // The value now; false when the variable holds text.
  bool read(const OpContext& ctx, std::int64_t& out) const;
  // The same, but a variable holding text stops the run (the script is wrong), naming `op`.
  bool resolve(OpContext& ctx, std::int64_t& out, const char* op) const;
  // A field declared takes_variable: the value now if it lies in [min, max]; otherwise false, and
  // with `stop` the run stops with a message naming the op, the field, the variable and its value.
  bool resolve_field(OpContext& ctx, std::int64_t& out, const char* op, const char* field, std::int64_t min,
                     std::int64_t max, bool stop) const;
  bool constant() const { return var.empty(); }
};
// f[field], declared Integer or Bytes with takes_variable: its value, or "{NAME}" (recorded as used).
IntRef read_int_field(const json& f, const std::string& field, const std::string& path, CompileContext& ctx);

constexpr std::int64_t kMaxMessageBytes = std::int64_t{1} << 40; // ParamType::Bytes's bound: 1 TiB
constexpr std::int64_t kMaxPriority = 32767;                     // MQ_PRIO_MAX - 1

// A message as an op gives it: its size, type and priority are numbers or script variables
// ("{n}"), and its text may hold placeholders; all are read when the call starts.
struct MessageArgs {
  IntRef bytes;
  IntRef type; // 0 for ops without one (write); send declares 1 as its default
  IntRef priority{0, {}};
  Template text;
  // Reads the fields of `f` that exist among "bytes", "type", "priority" and "text".
  static MessageArgs read(const json& f, const std::string& path, CompileContext& ctx);
  // False, stopping the run with a message naming `op`, when a variable is out of its field's range.
  bool valid(OpContext& ctx, const char* op) const;
  // The message (its text formatted on the call's first run only: a resumed call keeps its message).
  Message make(OpContext& ctx) const;
};
// "0x1234" (up to 8 hex digits), as ipcs prints keys.
std::optional<std::int64_t> parse_hex(const std::string& text);
// f[field]: the name of the script variable an op stores a value in ("into"), recorded as assigned
// with each of `suffixes` (INTO.qnum, INTO.perms; "" for INTO itself); a load error when it is not
// a variable's name or is one the system calls set.
std::string read_into_variable(const json& f, const std::string& field, const std::string& path,
                               CompileContext& ctx, const std::vector<std::string>& suffixes = {});
// f[field]: a whole number, or a script variable as "{NAME}" or a bare name (recorded as used); a
// load error naming `expected` otherwise.
IntRef read_int_or_variable(const json& f, const std::string& field, const std::string& path,
                            CompileContext& ctx, const std::string& expected);
// The same, also taking "0x..." hex and, when `ipc_private`, "IPC_PRIVATE".
IntRef read_sysv_ref(const json& f, const std::string& field, const std::string& path, CompileContext& ctx,
                     const std::string& expected, bool ipc_private);

} // namespace ipcsim
