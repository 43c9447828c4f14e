// System V message queues (msgget(2), msgsnd(2), msgrcv(2), msgctl(2), ftok(3), ipcs -q) and the
// "sysv_msg" channel. The kernel objects follow Linux's ipc/msg.c and ipc/util.c: an IPC namespace
// of queues found by key or by identifier (id = seq * 32768 + index), kern_ipc_perm permissions,
// the MSGMAX / MSGMNB / MSGMNI limits, pipelined send (a sent message goes straight to the first
// waiting receiver whose type filter matches) and ss_wakeup (a receive wakes the senders whose
// message now fits). docs/sysv-msg.md describes the model, every op and every charge.
#include "call_name.hpp"
#include "error.hpp"
#include "fs.hpp"
#include "ipc.hpp"
#include "lock.hpp"
#include "names.hpp"
#include "sysv_ids.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <list>
#include <map>
#include <optional>

namespace ipcsim {

namespace {

// ---- Limits (ipcs -l; include/uapi/linux/msg.h, ipc/util.h) ------------------------------------

constexpr std::int64_t kMsgMax = 8192;       // MSGMAX: largest message
constexpr std::int64_t kMsgMnb = 16384;      // MSGMNB: default qbytes of a new queue
constexpr std::size_t kMsgMni = 32000;       // MSGMNI: queues system wide
constexpr std::uint64_t kMsqidDsBytes = 120; // sizeof(struct msqid_ds) on x86-64: IPC_STAT / IPC_SET copy it
constexpr std::uint32_t kReadBits = 0444;    // S_IRUGO
constexpr std::uint32_t kWriteBits = 0222;   // S_IWUGO
constexpr std::int64_t kMaxBytesParam = 2147483647; // the sysctls are ints

enum Flag : std::uint32_t {
  kIpcCreat = 1,
  kIpcExcl = 2,
  kIpcNowait = 4,
  kMsgNoerror = 8,
  kMsgExcept = 16,
};
struct FlagName {
  const char* name;
  Flag flag;
};
constexpr FlagName kFlagNames[] = {{"IPC_CREAT", kIpcCreat},
                                   {"IPC_EXCL", kIpcExcl},
                                   {"IPC_NOWAIT", kIpcNowait},
                                   {"MSG_NOERROR", kMsgNoerror},
                                   {"MSG_EXCEPT", kMsgExcept}};

// How msgrcv selects (ipc/msg.c convert_mode / testmsg).
enum class Search : std::uint8_t { Any, Equal, NotEqual, LessEqual };

bool test_message(std::int64_t mtype, std::int64_t type, Search mode) {
  switch (mode) {
  case Search::Any:
    return true;
  case Search::Equal:
    return mtype == type;
  case Search::NotEqual:
    return mtype != type;
  case Search::LessEqual:
    return mtype <= type;
  }
  return false;
}

// ---- Kernel objects ---------------------------------------------------------------------------

struct MsgQueue {
  MsgQueue(std::int64_t id, const std::string& label)
      : id(id), object(object_name(id)), senders(label + ": waiting for room"),
        receivers(label + ": waiting for a message") {}
  // What the timeline calls it, as the listing's msqid column does.
  static std::string object_name(std::int64_t id) { return "msqid " + std::to_string(id); }
  std::uint32_t key = 0; // 0 is IPC_PRIVATE
  std::int64_t id;
  std::string object;
  std::size_t index = 0;
  // kern_ipc_perm
  std::uint32_t uid = 0, gid = 0, cuid = 0, cgid = 0, mode = 0;
  // msg_queue
  std::uint64_t qbytes = kMsgMnb;
  std::uint64_t msgmax = kMsgMax; // the msgmax sysctl this queue's senders see (a channel may raise it)
  std::uint64_t cbytes = 0;
  std::list<Message> messages;
  std::int64_t lspid = 0, lrpid = 0;
  Cycles stime = 0, rtime = 0, ctime = 0;
  WaitQueue senders, receivers;
  // q_perm.lock (ipc_lock_object): msgsnd holds it from its checks to the message queued or handed
  // over, msgrcv from its search to the message unlinked; both wake after unlocking (wake_q).
  // Four lines shared (struct msg_queue, ipc/msg.c): q_perm's, whose lock it is (kern_ipc_perm is
  // cache-line aligned); q_stime to q_lrpid (the times, q_cbytes, q_qnum, the pids), which both
  // update; q_messages with q_receivers and q_senders; the msg_msg header at the list's end, which a
  // send links after and a receive unlinks.
  ObjectLock lock{4};
  // The core of the last receive, whose frees the next msg_msg allocations reuse (-1: none yet).
  std::int32_t consumed_on = -1;

  bool fits(std::uint64_t bytes) const {
    return cbytes + bytes <= qbytes && messages.size() + 1 <= qbytes; // msg_fits
  }
  void filled(OpContext& ctx) const { fill_changed(ctx, object, "messages", messages.size()); }
};

// A receiver asleep in msgrcv (struct msg_receiver): what it accepts, and what a sender handed it.
struct Receiver {
  std::int64_t type = 0;
  Search mode = Search::Any;
  std::uint64_t maxsize = 0;
  std::optional<Message> delivered;
  std::string from; // the queue it was delivered from (its object name)
  int error = 0;
};

class MsgState : public IpcState, public Observer {
public:
  explicit MsgState(Kernel& kernel) : kernel_(kernel) { kernel.subscribe(*this); }

  // A killed thread exits without running its call again: what a sender handed it dies with it.
  void on_process_exit(OpContext& ctx, Process& process) override {
    for (auto it = receivers.begin(); it != receivers.end();) {
      if (kernel_.threads()[it->first].process != &process) {
        ++it;
        continue;
      }
      if (it->second.delivered)
        message_dropped(ctx, it->second.from, 1, it->second.delivered->bytes,
                        "the receiver's process was killed holding it (handed over by msgsnd)");
      it = receivers.erase(it);
    }
    for (auto it = senders.begin(); it != senders.end();)
      it = kernel_.threads()[it->first].process == &process ? senders.erase(it) : std::next(it);
  }

  MsgQueue* find_key(std::uint32_t key) { return ids_.find_key(key); }
  MsgQueue* find_id(std::int64_t id) { return ids_.find_id(id); }
  // newque() / ipc_addid() (sim/kernel/sysv_ids.hpp): nullptr at MSGMNI (ENOSPC).
  MsgQueue* create(std::uint32_t key, std::uint32_t uid, std::uint32_t gid, std::uint32_t mode, Cycles now) {
    if (ids_.size() >= kMsgMni) return nullptr;
    MsgQueue* q = ids_.add([](std::int64_t id, std::size_t index) {
      auto queue = std::make_unique<MsgQueue>(id, "msg queue " + std::to_string(id));
      queue->index = index;
      return queue;
    });
    if (!q) return nullptr; // cannot happen: fewer than max_idx queues exist
    q->key = key;
    q->uid = q->cuid = uid;
    q->gid = q->cgid = gid;
    q->mode = mode & 0777;
    q->ctime = now;
    return q;
  }
  // freeque(): the index is free again. A later queue reaches it only after the allocation has
  // wrapped, with another seq, so the old id stays refused (EINVAL / EIDRM).
  std::unique_ptr<MsgQueue> take(MsgQueue& q) { return ids_.take(q.index); }

  std::map<std::uint32_t, Receiver> receivers;    // by thread id, while in msgrcv
  std::map<std::uint32_t, std::uint64_t> senders; // by thread id: the size a sleeping sender needs

  // `ipcs -q`'s lines (util-linux's column widths).
  std::vector<std::string> ipcs_lines() const {
    std::vector<std::string> lines{"----- Message Queues -----"};
    char buf[160];
    std::snprintf(buf, sizeof buf, "%-10s %-10s %-10s %-10s %-12s %-12s", "key", "msqid", "owner", "perms",
                  "used-bytes", "messages");
    lines.push_back(trim(buf));
    for (const auto& [index, q] : ids_.objects()) {
      std::snprintf(buf, sizeof buf, "%s %-10lld %-10s %-10o %-12llu %-12zu", hex_key(q->key, true).c_str(),
                    static_cast<long long>(q->id), owner_name(q->uid).c_str(), q->mode,
                    static_cast<unsigned long long>(q->cbytes), q->messages.size());
      lines.push_back(trim(buf));
    }
    return lines;
  }

  void list(std::vector<IpcTable>& tables) const override {
    IpcTable table{"Message Queues", {"key", "msqid", "owner", "perms", "used-bytes", "messages"}, {}};
    for (const auto& [index, q] : ids_.objects()) {
      char perms[8];
      std::snprintf(perms, sizeof perms, "%o", q->mode);
      table.rows.push_back({hex_key(q->key, true), std::to_string(q->id), owner_name(q->uid), perms,
                            std::to_string(q->cbytes), std::to_string(q->messages.size())});
    }
    tables.push_back(table);
  }
  void held(std::vector<Held>& out) const override {
    for (const auto& [index, q] : ids_.objects()) out.push_back({q->object, q->messages.size(), q->cbytes});
    for (const auto& [thread, r] : receivers) // handed over by msgsnd, not yet taken
      if (r.delivered) out.push_back({r.from, 1, r.delivered->bytes});
  }

  std::int64_t ns(Cycles cycles) const {
    return static_cast<std::int64_t>(std::llround(static_cast<double>(cycles) * 1e9 / kernel_.model().hz));
  }

private:
  static std::string trim(std::string s) {
    while (!s.empty() && s.back() == ' ') s.pop_back();
    return s;
  }

  Kernel& kernel_;
  SysvIds<MsgQueue> ids_;
};

// ---- Costs ------------------------------------------------------------------------------------

// A copy between user and kernel: copy_setup, then the bytes at the preset's rate. `queued`: the
// queue's bytes with this message's (charge_copy).
void copy_user(OpContext& ctx, std::uint16_t activity, std::uint64_t bytes, std::uint64_t queued = 0,
               std::int32_t written_on = -1) {
  charge_copy(ctx, activity, bytes, 0, queued, written_on);
}

// The entry of msgsnd / msgrcv: the queue found by id once (ipc_obtain_object_check); on the first
// run and again after every sleep, the queue's lock (ipc_lock_object) and ipcperms, which ends in
// security_ipc_permission.
void charge_entry(OpContext& ctx, std::uint16_t activity) {
  if (ctx.first_run()) ctx.charge(activity, Primitive::ipc_id_lookup);
  if (!ctx.resumed()) return;
  ctx.charge(activity, Primitive::lock_acquire);
  ctx.charge(activity, Primitive::permission_check);
  ctx.charge(activity, Primitive::security_hook);
}

// ---- The calls --------------------------------------------------------------------------------

// op_progress of msgsnd / msgrcv: set once the call has slept, so a queue gone since is EIDRM.
constexpr std::uint64_t kCopied = 1, kSlept = 2;

// ss_wakeup(msq, false): picks the senders whose message now fits as Linux does under the queue's
// lock (into a wake_q), then wakes them. Each wake lets other cores run, which may change the
// queue or remove it: the wakes read only the snapshot, and skip a thread no longer waiting here.
void wake_senders(OpContext& ctx, MsgQueue& q, std::uint16_t activity) {
  if (!q.senders.head) return;
  MsgState& state = ctx.kernel.ipc<MsgState>();
  std::vector<Thread*> to_wake;
  for (Thread* t = q.senders.head; t; t = t->wait_next) {
    auto it = state.senders.find(t->id);
    if (it == state.senders.end() || q.fits(it->second)) to_wake.push_back(t);
  }
  const WaitQueue* senders = &q.senders;
  for (Thread* t : to_wake)
    if (t->waiting_on == senders) ctx.kernel.wake(ctx.core, *t, &ctx.thread, activity, WaitResult::Woken);
}

// pipelined_send: hands the message to the first sleeping receiver that accepts it; a matching
// receiver whose buffer is too small gets E2BIG on the way. Both are woken later, in this order,
// once the queue's lock is released (`to_wake`, Linux's wake_q).
bool pipelined_send(OpContext& ctx, MsgQueue& q, const Message& m, std::vector<Thread*>& to_wake) {
  MsgState& state = ctx.kernel.ipc<MsgState>();
  for (Thread* t = q.receivers.head; t; t = t->wait_next) {
    auto it = state.receivers.find(t->id);
    if (it != state.receivers.end() && test_message(m.type, it->second.type, it->second.mode)) {
      to_wake.push_back(t);
      if (it->second.maxsize < m.bytes) {
        it->second.error = E2BIG;
      } else {
        it->second.delivered = m;
        it->second.from = q.object;
        q.lrpid = t->process->pid;
        q.rtime = ctx.now();
        return true;
      }
    }
  }
  return false;
}

// wake_up_q after ipc_unlock_object: each still asleep on `queue` (the queue itself may be gone
// once time has passed for the first wake: only its address is compared).
void wake_queued(OpContext& ctx, const std::vector<Thread*>& to_wake, const WaitQueue* queue,
                 std::uint16_t activity) {
  for (Thread* t : to_wake)
    if (t->waiting_on == queue) ctx.kernel.wake(ctx.core, *t, &ctx.thread, activity, WaitResult::Woken);
}

// A thread whose process was killed while its call retried: the call is interrupted (EINTR) and
// leaves no record behind; nothing is taken.
bool interrupted(OpContext& ctx, MsgState& state, std::uint16_t activity) {
  if (!ctx.thread.process->killed_by) return false;
  state.senders.erase(ctx.thread.id);
  if (auto it = state.receivers.find(ctx.thread.id); it != state.receivers.end()) {
    if (it->second.delivered)
      message_dropped(ctx, it->second.from, 1, it->second.delivered->bytes,
                      "the receiver's process was killed holding it (handed over by msgsnd)");
    state.receivers.erase(it);
  }
  ctx.fail(activity, EINTR);
  return true;
}

IoStatus do_msgsnd(OpContext& ctx, std::uint16_t activity, std::int64_t id, std::int64_t size, Message m) {
  Thread& thread = ctx.thread;
  MsgState& state = ctx.kernel.ipc<MsgState>();
  if (interrupted(ctx, state, activity)) return IoStatus::Done;
  const bool resumed = ctx.resumed();
  charge_entry(ctx, activity);
  if (resumed) ctx.charge(activity, Primitive::security_hook); // security_msg_queue_msgsnd
  ctx.sync();
  state.senders.erase(thread.id);
  MsgQueue* q = state.find_id(id);
  if (!q) return fail_call(ctx, activity, thread.op_progress & kSlept ? EIDRM : EINVAL);
  if (size < 0 || static_cast<std::uint64_t>(size) > q->msgmax || m.type < 1)
    return fail_call(ctx, activity, EINVAL);
  if (!ipcperms(*q, *thread.process, kWriteBits)) return fail_call(ctx, activity, EACCES);
  m.bytes = static_cast<std::uint64_t>(size);
  if (!(thread.op_progress & kCopied)) { // load_msg: the message enters the kernel once
    charge_msg_alloc(ctx, activity, m.bytes);
    copy_user(ctx, activity, m.bytes, q->cbytes + m.bytes, q->consumed_on);
    thread.op_progress |= kCopied;
    // Before the queue's lock, as do_msgsnd copies in before it takes it; the queue may go meanwhile.
    ctx.sync();
    q = state.find_id(id);
    if (!q) return fail_call(ctx, activity, thread.op_progress & kSlept ? EIDRM : EINVAL);
  }
  ObjectLock::Held held = q->lock.take(ctx, activity); // ipc_lock_object (charged in charge_entry)
  if (!q->fits(m.bytes)) {
    state.senders[thread.id] = m.bytes;
    thread.op_progress |= kSlept;
    held.release(); // ipc_unlock_object before schedule()
    IoStatus status = wait_on(ctx, q->senders, activity);
    if (status == IoStatus::Done) state.senders.erase(thread.id);
    return status;
  }
  m.sender = static_cast<std::int32_t>(thread.id);
  m.written_on = static_cast<std::int32_t>(ctx.core.index); // load_msg's copy, on this core
  q->lspid = thread.process->pid;
  q->stime = ctx.now();
  message_sent(ctx, m, q->object);
  std::vector<Thread*> to_wake;
  if (!pipelined_send(ctx, *q, m, to_wake)) {
    q->cbytes += m.bytes;
    q->messages.push_back(std::move(m));
    q->filled(ctx);
  }
  // out_unlock0: ipc_unlock_object, then wake_up_q. (The model charges the list_op below after the
  // wakeups, so the lock's hold ends a list_op early.)
  held.release();
  wake_queued(ctx, to_wake, &q->receivers, activity);
  // list_add_tail on q_messages, or list_del of the sleeping receiver it went to
  ctx.charge(activity, Primitive::list_op);
  ctx.succeed(0);
  return IoStatus::Done;
}

// `queued`: the queue's bytes before the message left it (a handed-over message: its own).
void deliver(OpContext& ctx, std::uint16_t activity, Message m, std::uint64_t bufsz,
             const std::string& object, std::uint64_t queued) {
  std::uint64_t n = std::min(m.bytes, bufsz);
  message_received(ctx, m, object, n);
  const std::uint64_t allocated = m.bytes; // what free_msg frees, whatever MSG_NOERROR cuts
  if (n < m.bytes) { // MSG_NOERROR: the rest is lost, and with it the text beyond n bytes
    message_dropped(ctx, object, 0, m.bytes - n, "cut off by msgrcv's MSG_NOERROR (a buffer too small)");
    m.bytes = n;
    if (m.text.size() > n) m.text.resize(n);
  }
  copy_user(ctx, activity, n, queued, m.written_on); // store_msg
  charge_msg_free(ctx, activity, allocated);
  ctx.thread.script_locals().message = std::move(m);
  ctx.succeed(static_cast<std::int64_t>(n));
}

// `nowait_error`: what a receive that may not wait gives on no match (msgrcv: ENOMSG).
IoStatus do_msgrcv(OpContext& ctx, std::uint16_t activity, std::int64_t id, std::int64_t bufsz,
                   std::int64_t type, std::uint32_t flags, int nowait_error = ENOMSG) {
  Thread& thread = ctx.thread;
  MsgState& state = ctx.kernel.ipc<MsgState>();
  if (interrupted(ctx, state, activity)) return IoStatus::Done;
  ctx.sync();
  // Woken by a sender: the message it handed over, or the error it left.
  if (auto it = state.receivers.find(thread.id); it != state.receivers.end()) {
    Receiver r = std::move(it->second);
    state.receivers.erase(it);
    if (thread.op_progress & kSlept) {
      if (r.delivered) {
        // Handed over by pipelined_send: this receive frees the msg_msg, on this core.
        if (MsgQueue* q = state.find_id(id)) q->consumed_on = static_cast<std::int32_t>(ctx.core.index);
        const std::uint64_t own = r.delivered->bytes;
        deliver(ctx, activity, std::move(*r.delivered), static_cast<std::uint64_t>(bufsz),
                MsgQueue::object_name(id), own);
        return IoStatus::Done;
      }
      if (r.error) return fail_call(ctx, activity, r.error);
    }
  }
  // Not handed a message while asleep: the queue's lock and permissions (the lockless receive of
  // a handed message takes neither).
  charge_entry(ctx, activity);
  ctx.sync();
  MsgQueue* q = state.find_id(id);
  if (!q || bufsz < 0) return fail_call(ctx, activity, q || !(thread.op_progress & kSlept) ? EINVAL : EIDRM);
  ObjectLock::Held held = q->lock.take(ctx, activity); // ipc_lock_object (charged in charge_entry)
  if (!ipcperms(*q, *thread.process, kReadBits)) return fail_call(ctx, activity, EACCES);
  Search mode = Search::Equal;
  if (type == 0) {
    mode = Search::Any;
  } else if (type < 0) {
    mode = Search::LessEqual;
    type = type == INT64_MIN ? INT64_MAX : -type;
  } else if (flags & kMsgExcept) {
    mode = Search::NotEqual;
  }
  // find_msg: the first match; for LessEqual the first of the lowest type.
  auto found = q->messages.end();
  std::int64_t bound = type;
  for (auto it = q->messages.begin(); it != q->messages.end(); ++it) {
    if (!test_message(it->type, bound, mode)) continue;
    found = it;
    if (mode != Search::LessEqual || it->type == 1) break;
    bound = it->type - 1;
  }
  if (found != q->messages.end()) {
    if (found->bytes > static_cast<std::uint64_t>(bufsz) && !(flags & kMsgNoerror))
      return fail_call(ctx, activity, E2BIG);       // the message stays in the queue
    ctx.charge(activity, Primitive::security_hook); // find_msg: security_msg_queue_msgrcv
    ctx.charge(activity, Primitive::list_op);       // list_del
    Message m = std::move(*found);
    const std::uint64_t queued = q->cbytes;
    q->messages.erase(found);
    q->cbytes -= m.bytes;
    q->filled(ctx);
    q->lrpid = thread.process->pid;
    q->rtime = ctx.now();
    q->consumed_on = static_cast<std::int32_t>(ctx.core.index);
    held.release(); // ipc_unlock_object, then wake_up_q, then store_msg's copy out
    // Waking lets other cores run: the queue may be removed meanwhile, so nothing reads it after.
    std::string object = q->object;
    wake_senders(ctx, *q, activity);
    deliver(ctx, activity, std::move(m), static_cast<std::uint64_t>(bufsz), object, queued);
    return IoStatus::Done;
  }
  if ((flags & kIpcNowait) || thread.op_nonblocking) return fail_call(ctx, activity, nowait_error);
  Receiver& r = state.receivers[thread.id];
  r.type = type;
  r.mode = mode;
  r.maxsize = flags & kMsgNoerror ? UINT64_MAX : static_cast<std::uint64_t>(bufsz);
  thread.op_progress |= kSlept;
  held.release(); // ipc_unlock_object before schedule()
  IoStatus status = wait_on(ctx, q->receivers, activity);
  if (status == IoStatus::Done) state.receivers.erase(thread.id);
  return status;
}

// ---- Op fields --------------------------------------------------------------------------------

std::uint32_t read_flags(const json& f, const std::string& path, const CompileContext& ctx,
                         const std::vector<std::string>& accepted) {
  std::uint32_t flags = 0;
  const json& list = f.at("flags");
  for (std::size_t i = 0; i < list.size(); ++i) {
    std::string where = join_path(join_path(path, "flags"), i);
    if (!list[i].is_string())
      fail_at(ctx.read.file, where,
              "invalid value " + list[i].dump() + "; expected a flag name: " + join_list(accepted));
    auto name = list[i].get<std::string>();
    bool ok = false;
    for (const auto& a : accepted) ok = ok || a == name;
    if (!ok)
      fail_at(ctx.read.file, where,
              "unknown flag \"" + name + "\"" + did_you_mean(name, accepted) +
                  "; accepted: " + join_list(accepted));
    for (const auto& fl : kFlagNames)
      if (name == fl.name) flags |= fl.flag;
  }
  return flags;
}

ParamSpec flags_param(const std::vector<std::string>& accepted) {
  return {"flags", ParamType::StringList, json::array(), "flag names",
          "a list of flags: " + join_list(accepted)};
}

// The variable an op stores its result in; `suffixes` are the fields it also sets (INTO.qnum).
std::string read_into(const json& f, const std::string& path, CompileContext& ctx,
                      const std::vector<std::string>& suffixes) {
  return read_into_variable(f, "into", path, ctx, suffixes);
}

ParamSpec into_param(const std::string& what) { return {"into", ParamType::String, nullptr, "", what}; }

const std::string kIdExpected =
    "a msqid: a whole number, or the name of a script variable that holds one (msgget's \"into\")";

// A size: whole bytes (negative ones reach the call, which refuses them with EINVAL) or "4KiB".
// msgsz: a whole number (negative ones are the call's EINVAL), "512B", or "{NAME}".
IntRef read_size(const json& f, const std::string& path, CompileContext& ctx) {
  const json& value = f.at("bytes");
  if (variable_placeholder(value)) return read_int_field(f, "bytes", path, ctx);
  if (value.is_number_integer()) return {value.get<std::int64_t>(), {}};
  ParamSpec spec{"bytes", ParamType::Bytes, nullptr, "bytes", ""};
  check_value(value, join_path(path, "bytes"), spec, ctx.read);
  return {static_cast<std::int64_t>(read_bytes(value)), {}};
}

// ---- Ops --------------------------------------------------------------------------------------

class FtokOp : public SyscallOp {
public:
  FtokOp(std::uint16_t activity, std::string path, std::int64_t id, std::string into)
      : SyscallOp(activity, {}), path_(std::move(path)), id_(id), into_(std::move(into)) {}
  IoStatus call(OpContext& ctx) const override {
    const CallName filled = call_name(path_, NameKind::Path, ctx, "ftok", "path");
    if (!filled.ok()) return filled.fail(ctx, activity);
    ctx.sync();
    const FsEntry* entry = ctx.kernel.ipc<FileSystem>().find(filled.name);
    if (!entry) return fail_call(ctx, activity, ENOENT);
    std::uint32_t key = (static_cast<std::uint32_t>(id_ & 0xff) << 24) |
                        ((FileSystem::kDevice & 0xff) << 16) | (entry->inode & 0xffff);
    auto& locals = ctx.thread.script_locals();
    locals.set(into_, static_cast<std::int64_t>(key));
    locals.set(into_ + ".hex", hex_key(key, false));
    ctx.succeed(key);
    return IoStatus::Done;
  }

private:
  std::string path_;
  std::int64_t id_;
  std::string into_;
};

class MsggetOp : public SyscallOp {
public:
  MsggetOp(std::uint16_t activity, IntRef key, std::uint32_t flags, std::uint32_t mode, std::string into)
      : SyscallOp(activity, {}), key_(std::move(key)), flags_(flags), mode_(mode), into_(std::move(into)) {}
  IoStatus call(OpContext& ctx) const override {
    std::int64_t raw = 0;
    if (!key_.read(ctx, raw)) return fail_call(ctx, activity, EINVAL);
    auto key = static_cast<std::uint32_t>(raw); // key_t: 32 bits
    ctx.sync();
    MsgState& state = ctx.kernel.ipc<MsgState>();
    const Process& process = *ctx.thread.process;
    MsgQueue* q = key == 0 ? nullptr : state.find_key(key);
    if (q) {
      if ((flags_ & kIpcCreat) && (flags_ & kIpcExcl)) return fail_call(ctx, activity, EEXIST);
      if (!ipcperms(*q, process, mode_)) return fail_call(ctx, activity, EACCES);
    } else {
      if (key != 0 && !(flags_ & kIpcCreat)) return fail_call(ctx, activity, ENOENT);
      if (!ctx.kernel.new_ipc_object(ctx, "a System V message queue"))
        return fail_call(ctx, activity, ENOSPC); // the run stops
      q = state.create(key, process.spec->uid, process.spec->gid, mode_, ctx.now());
      if (!q) return fail_call(ctx, activity, ENOSPC);
    }
    ctx.thread.script_locals().set(into_, q->id);
    ctx.succeed(q->id);
    return IoStatus::Done;
  }

private:
  IntRef key_;
  std::uint32_t flags_, mode_;
  std::string into_;
};

class MsgsndOp : public SyscallOp {
public:
  MsgsndOp(std::uint16_t activity, CallTimeout timeout, IntRef msqid, MessageArgs message,
           std::uint32_t flags)
      : SyscallOp(activity, timeout), msqid_(std::move(msqid)), message_(std::move(message)), flags_(flags) {}
  IoStatus call(OpContext& ctx) const override {
    if (flags_ & kIpcNowait) ctx.thread.op_nonblocking = true;
    std::int64_t id = 0, type = 0, bytes = 0;
    if (!msqid_.read(ctx, id)) return fail_call(ctx, activity, EINVAL);
    message_.type.read(ctx, type); // numbers: checked by arguments_valid
    message_.bytes.read(ctx, bytes);
    Message m;
    m.type = type;
    m.text = message_.text.has_placeholders() && ctx.thread.op_progress == 0
                 ? message_.text.format(ctx.kernel, ctx.thread)
                 : message_.text.text();
    return do_msgsnd(ctx, activity, id, bytes, m);
  }

protected:
  // A type or size out of range is the call's EINVAL, as msgsnd(2) says; text is a script error.
  bool arguments_valid(OpContext& ctx) const override {
    std::int64_t v = 0;
    return message_.type.resolve(ctx, v, "msgsnd") && message_.bytes.resolve(ctx, v, "msgsnd");
  }

private:
  IntRef msqid_;
  MessageArgs message_;
  std::uint32_t flags_;
};

class MsgrcvOp : public SyscallOp {
public:
  MsgrcvOp(std::uint16_t activity, CallTimeout timeout, IntRef msqid, IntRef type, IntRef bytes,
           std::uint32_t flags)
      : SyscallOp(activity, timeout), msqid_(std::move(msqid)), type_(std::move(type)),
        bytes_(std::move(bytes)), flags_(flags) {}
  IoStatus call(OpContext& ctx) const override {
    std::int64_t id = 0, type = 0, bytes = 0;
    if (!msqid_.read(ctx, id)) return fail_call(ctx, activity, EINVAL);
    type_.read(ctx, type); // numbers: checked by arguments_valid
    bytes_.read(ctx, bytes);
    return do_msgrcv(ctx, activity, id, bytes, type, flags_);
  }

protected:
  bool arguments_valid(OpContext& ctx) const override {
    std::int64_t v = 0;
    return type_.resolve(ctx, v, "msgrcv") && bytes_.resolve(ctx, v, "msgrcv");
  }

private:
  IntRef msqid_, type_, bytes_;
  std::uint32_t flags_;
};

enum class Cmd : std::uint8_t { Stat, Set, Rmid };

struct SetFields {
  std::optional<std::int64_t> qbytes;
  IpcSetOwner owner;
};

const std::vector<std::string> kStatFields{"qnum",  "qbytes", "cbytes", "lspid", "lrpid", "stime",
                                           "rtime", "ctime",  "uid",    "gid",   "mode",  "perms"};

class MsgctlOp : public SyscallOp {
public:
  MsgctlOp(std::uint16_t activity, IntRef msqid, Cmd cmd, std::string into, SetFields set)
      : SyscallOp(activity, {}), msqid_(std::move(msqid)), cmd_(cmd), into_(std::move(into)), set_(set) {}
  IoStatus call(OpContext& ctx) const override {
    const Process& process = *ctx.thread.process;
    if (cmd_ == Cmd::Set) copy_user(ctx, activity, kMsqidDsBytes); // copy_msqid_from_user, first
    std::int64_t id = 0;
    ctx.sync();
    MsgState& state = ctx.kernel.ipc<MsgState>();
    MsgQueue* q = msqid_.read(ctx, id) ? state.find_id(id) : nullptr;
    if (!q) return fail_call(ctx, activity, EINVAL);
    switch (cmd_) {
    case Cmd::Stat: {
      if (!ipcperms(*q, process, kReadBits)) return fail_call(ctx, activity, EACCES);
      auto& locals = ctx.thread.script_locals();
      auto set = [&](const char* field, std::int64_t v) { locals.set(into_ + "." + field, v); };
      set("qnum", static_cast<std::int64_t>(q->messages.size()));
      set("qbytes", static_cast<std::int64_t>(q->qbytes));
      set("cbytes", static_cast<std::int64_t>(q->cbytes));
      set("lspid", q->lspid);
      set("lrpid", q->lrpid);
      set("stime", q->stime ? state.ns(q->stime) : 0);
      set("rtime", q->rtime ? state.ns(q->rtime) : 0);
      set("ctime", state.ns(q->ctime));
      set("uid", q->uid);
      set("gid", q->gid);
      set("mode", q->mode);
      char perms[8];
      std::snprintf(perms, sizeof perms, "%o", q->mode);
      locals.set(into_ + ".perms", std::string(perms));
      copy_user(ctx, activity, kMsqidDsBytes);
      break;
    }
    case Cmd::Set:
      if (!ipc_owner_or_root(*q, process) ||
          (set_.qbytes && *set_.qbytes > kMsgMnb && process.spec->uid != 0))
        return fail_call(ctx, activity, EPERM);
      if (set_.qbytes) q->qbytes = static_cast<std::uint64_t>(*set_.qbytes);
      set_.owner.apply(*q);
      q->ctime = ctx.now();
      wake_senders(ctx, *q, activity); // a larger qbytes may let them in
      break;
    case Cmd::Rmid: {
      if (!ipc_owner_or_root(*q, process)) return fail_call(ctx, activity, EPERM);
      // freeque(): the id goes first (ipc_rmid), so that no other core finds or removes the queue
      // while the wakes below let it run; then expunge_all(-EIDRM) and ss_wakeup(kill): every
      // sleeper wakes to find the queue gone.
      // Its messages are gone with it, before any other core can look (the wakes let them run).
      std::unique_ptr<MsgQueue> removed = state.take(*q);
      if (!removed->messages.empty()) fill_changed(ctx, removed->object, "messages", 0); // discarded
      message_dropped(ctx, removed->object, removed->messages.size(), removed->cbytes,
                      "the queue was removed (IPC_RMID) with messages in it");
      ctx.kernel.wake_all(ctx.core, removed->receivers, &ctx.thread, activity);
      ctx.kernel.wake_all(ctx.core, removed->senders, &ctx.thread, activity);
      break;
    }
    }
    ctx.succeed(0);
    return IoStatus::Done;
  }

private:
  IntRef msqid_;
  Cmd cmd_;
  std::string into_;
  SetFields set_;
};

class IpcsOp : public SyscallOp {
public:
  explicit IpcsOp(std::uint16_t activity) : SyscallOp(activity, {}) {}
  IoStatus call(OpContext& ctx) const override {
    ctx.sync();
    for (auto& line : ctx.kernel.ipc<MsgState>().ipcs_lines()) ctx.kernel.print(ctx.now(), ctx.thread, line);
    ctx.succeed(0);
    return IoStatus::Done;
  }
};

// ---- Registration -----------------------------------------------------------------------------

ParamSpec msqid_param() {
  return {"msqid", ParamType::Scalar, nullptr, "", "the queue: its id, or a script variable holding it"};
}

const OpRegistrar register_ftok_op(
    {"ftok",
     "make a System V IPC key from an existing file and a project id: (id & 0xff) << 24 | device << 16 | "
     "inode",
     {"ftok op",
      "",
      {path_param("an existing file (creat it first)"),
       {"id", ParamType::Scalar, nullptr, "",
        "the project id (its low 8 bits count): a whole number or \"0x27\""},
       into_param("variable for the key; INTO.hex gets it as text, \"0x27011c6c\"")}},
     [](const json& f, const std::string& path, CompileContext& ctx, Program& p, std::uint16_t a) {
       auto file = f.at("path").get<std::string>();
       check_path(file, join_path(path, "path"), ctx);
       const json& idv = f.at("id");
       std::int64_t id = 0;
       if (idv.is_string()) {
         auto hex = parse_hex(idv.get<std::string>());
         if (!hex)
           fail_at(ctx.read.file, join_path(path, "id"),
                   "invalid value " + idv.dump() +
                       "; expected a whole number or a hexadecimal string such as \"0x27\"");
         id = *hex;
       } else {
         id = idv.get<std::int64_t>();
       }
       auto into = read_into(f, path, ctx, {"", "hex"});
       p.ops.push_back(std::make_unique<FtokOp>(a, file, id, into));
     }});

const OpRegistrar register_msgget_op(
    {"msgget",
     "get (or create) a System V message queue by key; {result} and INTO are its msqid",
     {"msgget op",
      "",
      {{"key", ParamType::Scalar, nullptr, "",
        "a whole number, \"0x27011c6c\", \"IPC_PRIVATE\" (always a new queue), or a script variable (ftok's "
        "into)"},
       flags_param({"IPC_CREAT", "IPC_EXCL"}),
       {"mode", ParamType::String, "0666", "",
        "permission bits of a new queue, octal; also what access is asked for"},
       into_param("variable for the msqid")}},
     [](const json& f, const std::string& path, CompileContext& ctx, Program& p, std::uint16_t a) {
       auto key = read_sysv_ref(
           f, "key", path, ctx,
           "a key: a whole number, a hexadecimal string such as \"0x27011c6c\", \"IPC_PRIVATE\", "
           "or the name of a script variable that holds one (ftok's \"into\")",
           true);
       auto flags = read_flags(f, path, ctx, {"IPC_CREAT", "IPC_EXCL"});
       auto mode = read_mode(f, path, ctx);
       auto into = read_into(f, path, ctx, {});
       p.ops.push_back(std::make_unique<MsggetOp>(a, key, flags, mode, into));
     }});

const OpRegistrar register_msgsnd_op(
    {"msgsnd",
     "send a typed message to a System V queue; blocks while it would not fit (qbytes)",
     {"msgsnd op",
      "",
      {msqid_param(),
       variable_field({"type", ParamType::Integer, nullptr, "", "the message type (mtype): must be > 0",
                       -9.2e18, 9.2e18}),
       variable_field({"bytes", ParamType::Scalar, nullptr, "bytes",
                       "the message size (mtext): whole bytes or \"512B\"; at most MSGMAX"}),
       {"text", ParamType::String, "", "",
        "text carried for print ({msg.text} at the receiver); {NAME} placeholders are filled in when sent"},
       flags_param({"IPC_NOWAIT"}),
       timeout_param()}},
     [](const json& f, const std::string& path, CompileContext& ctx, Program& p, std::uint16_t a) {
       auto msqid = read_sysv_ref(f, "msqid", path, ctx, kIdExpected, false);
       MessageArgs message;
       message.type = read_int_field(f, "type", path, ctx);
       message.bytes = read_size(f, path, ctx);
       auto text = f.at("text").get<std::string>();
       check_template(text, join_path(path, "text"), ctx);
       message.text = Template(text);
       auto flags = read_flags(f, path, ctx, {"IPC_NOWAIT"});
       p.ops.push_back(
           std::make_unique<MsgsndOp>(a, read_timeout(f, path, ctx), msqid, std::move(message), flags));
     }});

const OpRegistrar register_msgrcv_op(
    {"msgrcv",
     "receive a message from a System V queue by type; {result} is its size, {msg.*} describe it",
     {"msgrcv op",
      "",
      {msqid_param(),
       variable_field({"bytes", ParamType::Scalar, nullptr, "bytes",
                       "the buffer's size (msgsz): whole bytes or \"512B\""}),
       variable_field({"type", ParamType::Integer, 0, "",
                       "0: the first message; > 0: the first of that type (MSG_EXCEPT: not of it); < 0: the "
                       "lowest type up to |type|",
                       -9.2e18, 9.2e18}),
       flags_param({"IPC_NOWAIT", "MSG_NOERROR", "MSG_EXCEPT"}), timeout_param()}},
     [](const json& f, const std::string& path, CompileContext& ctx, Program& p, std::uint16_t a) {
       auto msqid = read_sysv_ref(f, "msqid", path, ctx, kIdExpected, false);
       auto bytes = read_size(f, path, ctx);
       auto flags = read_flags(f, path, ctx, {"IPC_NOWAIT", "MSG_NOERROR", "MSG_EXCEPT"});
       p.ops.push_back(std::make_unique<MsgrcvOp>(a, read_timeout(f, path, ctx), msqid,
                                                  read_int_field(f, "type", path, ctx), bytes, flags));
     }});

const OpRegistrar register_msgctl_op(
    {"msgctl",
     "IPC_STAT a queue into variables, IPC_SET its qbytes/uid/gid/mode, or IPC_RMID it",
     {"msgctl op", "",
      with_ipc_set_owner({msqid_param(),
                          ipc_cmd_param({"IPC_STAT", "IPC_SET", "IPC_RMID"}),
                          {"into",
                           ParamType::String,
                           nullptr,
                           "",
                           "IPC_STAT only: sets INTO.qnum, .qbytes, .cbytes, .lspid, .lrpid, .stime, .rtime, "
                           ".ctime (ns), .uid, "
                           ".gid, .mode (a number), .perms (octal text)",
                           std::nullopt,
                           std::nullopt,
                           {},
                           "none"},
                          {"qbytes",
                           ParamType::Integer,
                           nullptr,
                           "bytes",
                           "IPC_SET: the queue's capacity (above MSGMNB: uid 0 only)",
                           0.0,
                           static_cast<double>(kMaxBytesParam),
                           {},
                           "unchanged"}})},
     [](const json& f, const std::string& path, CompileContext& ctx, Program& p, std::uint16_t a) {
       auto msqid = read_sysv_ref(f, "msqid", path, ctx, kIdExpected, false);
       auto cmd_name = f.at("cmd").get<std::string>();
       Cmd cmd = cmd_name == "IPC_STAT" ? Cmd::Stat : cmd_name == "IPC_SET" ? Cmd::Set : Cmd::Rmid;
       std::string into;
       if (cmd == Cmd::Stat) {
         if (!f.contains("into"))
           fail_at(ctx.read.file, join_path(path, "into"),
                   "IPC_STAT needs \"into\": the variable whose fields (INTO.qnum, ...) receive the queue's "
                   "state");
         into = read_into(f, path, ctx, kStatFields);
       } else if (f.contains("into")) {
         fail_at(ctx.read.file, join_path(path, "into"), "\"into\" goes with IPC_STAT only; drop it");
       }
       SetFields set;
       if (f.contains("qbytes") && cmd != Cmd::Set)
         fail_at(ctx.read.file, join_path(path, "qbytes"), "\"qbytes\" goes with IPC_SET only; drop it");
       set.owner = read_ipc_set_owner(f, path, ctx, cmd == Cmd::Set);
       if (cmd == Cmd::Set) {
         if (f.contains("qbytes")) set.qbytes = f.at("qbytes").get<std::int64_t>();
         if (!set.qbytes && set.owner.empty())
           fail_at(ctx.read.file, path,
                   "IPC_SET changes nothing; give at least one of qbytes, uid, gid, mode");
       }
       p.ops.push_back(std::make_unique<MsgctlOp>(a, msqid, cmd, into, set));
     }});

const OpRegistrar register_ipcs_op({"ipcs",
                                    "print the System V message queues as `ipcs -q` does (key, msqid, owner, "
                                    "perms, used-bytes, messages)",
                                    {"ipcs op", "", {}},
                                    [](const json&, const std::string&, CompileContext&, Program& p,
                                       std::uint16_t a) { p.ops.push_back(std::make_unique<IpcsOp>(a)); }});

// ---- The channel ------------------------------------------------------------------------------

// A private queue (IPC_PRIVATE, owner root, mode 0666) per channel: send is msgsnd with the
// message's type, recv is msgrcv of type 0 into a buffer of the given size (a longer message stays
// queued and the recv fails with E2BIG).
class SysvChannel : public Channel {
public:
  explicit SysvChannel(std::int64_t id) : id_(id) {}
  IoStatus send(OpContext& ctx, std::uint16_t activity, const Message& message) override {
    return do_msgsnd(ctx, activity, id_, static_cast<std::int64_t>(message.bytes), message);
  }
  IoStatus recv(OpContext& ctx, std::uint16_t activity, std::uint64_t bytes) override {
    // As every channel: a recv that may not wait (timeout 0) on an empty queue gives EAGAIN, where
    // msgrcv with IPC_NOWAIT gives ENOMSG.
    return do_msgrcv(ctx, activity, id_, static_cast<std::int64_t>(bytes), 0, 0, EAGAIN);
  }

private:
  std::int64_t id_;
};

const MechanismRegistrar register_sysv_msg(
    {"sysv_msg",
     "System V message queue: typed messages up to msgmax bytes, a queue of qbytes (msgsnd / msgrcv type 0)",
     ParamTable{
         "sysv_msg channel",
         "",
         {{"qbytes", ParamType::Bytes, kMsgMnb, "bytes", "the queue's capacity (msg_qbytes; sysctl msgmnb)",
           1.0, static_cast<double>(kMaxBytesParam)},
          {"msgmax", ParamType::Bytes, kMsgMax, "bytes", "the largest message (sysctl msgmax)", 1.0,
           static_cast<double>(kMaxBytesParam)}}},
     [](const json& params, const std::string& path, const ReadContext& ctx) {
       auto qbytes = read_bytes(params.at("qbytes"));
       auto msgmax = read_bytes(params.at("msgmax"));
       if (msgmax > qbytes)
         fail_at(ctx.file, join_path(path, "msgmax"),
                 "msgmax " + std::to_string(msgmax) + " is larger than qbytes " + std::to_string(qbytes) +
                     ": a message of msgmax bytes could never fit; raise \"qbytes\" to at least " +
                     std::to_string(msgmax) + " or lower \"msgmax\"");
     },
     [](const ChannelSpec& spec, Kernel& kernel) -> std::unique_ptr<Channel> {
       MsgQueue* q = kernel.ipc<MsgState>().create(0, 0, 0, 0666, 0);
       q->qbytes = read_bytes(spec.params.at("qbytes"));
       q->msgmax = read_bytes(spec.params.at("msgmax"));
       return std::make_unique<SysvChannel>(q->id);
     }});

} // namespace

} // namespace ipcsim
