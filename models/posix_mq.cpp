// POSIX message queues (mq_overview(7)): named "/name" queues in their own namespace (Linux's
// mqueue file system, mounted on /dev/mqueue), opened into descriptors, each message carrying a
// priority; a receive takes the oldest message of the highest priority. Also the "posix_mq"
// mechanism of the generic channel: a private queue per channel.
//
// What follows Linux (ipc/mqueue.c): the order of the checks in mq_open, mq_timedsend and
// mq_timedreceive; the limits (/proc/sys/fs/mqueue defaults for an unprivileged process, the hard
// ceilings for uid 0); the copy into the kernel before the sender waits; a send to a queue with a
// receiver waiting hands the message straight to that receiver (pipelined_send), so a woken
// receiver always has its message; a receive from a full queue with a sender waiting moves that
// sender's message into the freed slot and wakes it with its send done (pipelined_receive).
// Simplified: waiters queue in arrival order (Linux orders them by scheduling priority); no umask
// (the mode is used as given); no RLIMIT_MSGQUEUE. mq_notify: a signal, or SIGEV_THREAD as glibc
// builds it (a helper thread fed over a netlink socket, a new thread per notification). See
// docs/posix-mq.md.
#include "call_name.hpp"
#include "error.hpp"
#include "fs.hpp"
#include "ipc.hpp"
#include "lock.hpp"
#include "names.hpp"

#include <cstdio>
#include <deque>
#include <map>

namespace ipcsim {

namespace {

// /proc/sys/fs/mqueue defaults (mq_overview(7)): the ceilings for an unprivileged process, and
// the attributes of a queue created without any.
constexpr std::int64_t kMsgMax = 10;        // msg_max (and msg_default)
constexpr std::int64_t kMsgsizeMax = 8192;  // msgsize_max (and msgsize_default)
constexpr std::int64_t kHardMsgMax = 65536; // HARD_MSGMAX: the ceiling even for a privileged process
constexpr std::int64_t kHardMsgsizeMax = 16 * 1024 * 1024; // HARD_MSGSIZEMAX (16 MiB)

// Thread::op_progress bits of a send or receive in progress.
constexpr std::uint64_t kCopiedIn = 1;  // mq_send: the message has been copied into the kernel
constexpr std::uint64_t kQueuedFor = 2; // mq_send: a receiver queued this waiter's message for it
constexpr std::uint64_t kDelivered = 1; // mq_receive: a sender handed a message to this waiter
constexpr std::uint64_t kTooBig = 2;    // channel recv: a sender's message was longer than the buffer

// Messages a sender handed to a waiting receiver (pipelined_send) that the receiver has not taken
// yet, by the receiver's thread id: held by the queue they came from (conservation).
struct MqQueue;
// Records the core of a receive that freed a message of `queue` (MqQueue::consumed_on).
void set_consumed_on(MqQueue& queue, std::int32_t core);

class MqHandedState : public IpcState, public Observer {
public:
  explicit MqHandedState(Kernel& kernel) : kernel_(kernel) { kernel.subscribe(*this); }
  // A killed thread exits without running its call again: the message dies with it.
  void on_process_exit(OpContext& ctx, Process& process) override {
    for (auto it = by_thread.begin(); it != by_thread.end();) {
      if (kernel_.threads()[it->first].process != &process) {
        ++it;
        continue;
      }
      message_dropped(ctx, it->second.object, 1, it->second.bytes,
                      "the receiver's process was killed holding it (handed over by mq_send)");
      it = by_thread.erase(it);
    }
  }
  struct Handed {
    std::string object;
    std::uint64_t bytes;
    // The queue, which outlives the run (PosixMqState::all keeps every queue): the receive marks
    // it as the last to free a message there.
    MqQueue* queue = nullptr;
  };
  std::map<std::uint32_t, Handed> by_thread;
  void held(std::vector<Held>& out) const override {
    for (const auto& [thread, h] : by_thread) out.push_back({h.object, 1, h.bytes});
  }

private:
  Kernel& kernel_;
};

// The end of a receive that a sender completed while it waited (pipelined_send): copy the message
// out. It needs nothing of the queue, whose descriptor another thread may have closed since.
IoStatus finish_delivered(OpContext& ctx, std::uint16_t activity) {
  auto& handed = ctx.kernel.ipc<MqHandedState>().by_thread;
  auto it = handed.find(ctx.thread.id);
  const std::string object = it != handed.end() ? it->second.object : "posix mq";
  if (it != handed.end()) {
    if (it->second.queue) set_consumed_on(*it->second.queue, static_cast<std::int32_t>(ctx.core.index));
    handed.erase(it);
  }
  const std::uint64_t size = ctx.thread.script_locals().message.bytes;
  message_received(ctx, ctx.thread.script_locals().message, object, size);
  charge_copy(ctx, activity, size, 0, 0, ctx.thread.script_locals().message.written_on); // store_msg()
  charge_msg_free(ctx, activity, size);
  ctx.succeed(static_cast<std::int64_t>(size));
  return IoStatus::Done;
}

// ---- mq_notify's SIGEV_THREAD, as glibc builds it ---------------------------------------------
//
// The kernel cannot start threads in a process (sysdeps/unix/sysv/linux/mq_notify.c): the first
// SIGEV_THREAD mq_notify of a process (init_mq_netlink) opens a netlink socket and creates a helper
// thread with every signal blocked, which sleeps in recv() on the socket. The registration passes
// the socket and a 32-byte cookie (the function, its argument). When the notification fires, the
// kernel sends the cookie to the socket marked NOTIFY_WOKENUP (netlink_sendskb); when the
// registration goes (mq_notify(NULL), the owner's close), marked NOTIFY_REMOVED. The helper, woken,
// creates a thread per WOKENUP cookie (pthread_create) and waits on a barrier until that thread has
// copied its argument; the thread unblocks its signals and runs the function.
constexpr std::uint64_t kCookieBytes = 32; // NOTIFY_COOKIE_LEN

struct NotifyCookie {
  bool woken = true; // NOTIFY_WOKENUP; false: NOTIFY_REMOVED
  const ThreadSpec* function = nullptr;
  std::int64_t value = 0; // sigev_value, the function's argument: {sig.value}
};

struct NotifyHelper { // one per process: glibc's statics (netlink_socket, notify_barrier) and its thread
  Thread* thread = nullptr;         // nullptr: glibc could not create it (mq_notify then fails with ENOSYS)
  std::deque<NotifyCookie> cookies; // the socket's receive queue
  WaitQueue socket{"netlink socket: mq_notify's helper thread waiting for a notification"};
  WaitQueue barrier{"notify_barrier: the helper and a new notification thread waiting for each other"};
  Thread* at_barrier = nullptr; // the first of the two to reach the barrier, asleep there
};

class MqNotifyThreads : public IpcState {
public:
  explicit MqNotifyThreads(Kernel&) {}
  NotifyHelper* find(const Process& process) {
    auto it = helpers_.find(process.id);
    return it == helpers_.end() ? nullptr : it->second.get();
  }
  NotifyHelper& make(const Process& process) {
    auto& slot = helpers_[process.id];
    slot = std::make_unique<NotifyHelper>();
    return *slot;
  }
  // netlink_sendskb: the cookie joins the socket's queue (skb_queue_tail) and wakes the helper.
  void send(OpContext& ctx, Process& owner, const NotifyCookie& cookie, std::uint16_t activity) {
    NotifyHelper* helper = find(owner);
    if (!helper || !helper->thread || owner.killed_by || owner.live_threads == 0) return;
    ctx.charge(activity, Primitive::list_op);
    helper->cookies.push_back(cookie);
    ctx.sync();
    if (helper->thread->waiting_on == &helper->socket)
      ctx.kernel.wake(ctx.core, *helper->thread, &ctx.thread, activity, WaitResult::Woken);
  }

private:
  std::map<std::uint32_t, std::unique_ptr<NotifyHelper>> helpers_;
};

// A system call with nothing to do in the kernel but its own work: trap in, the dispatch, trap out
// around `work` (rt_sigprocmask, fcntl, the futex calls of a barrier).
void plain_call(OpContext& ctx, std::uint16_t activity, FunctionRef<void()> work) {
  ctx.enter_syscall(activity);
  work();
  ctx.leave_syscall(activity);
}

// pthread_barrier_wait for two: the first to come sleeps in FUTEX_WAIT, the second wakes it with
// FUTEX_WAKE. Step::Block when the caller sleeps (it leaves the call when it runs again).
Step barrier_wait(OpContext& ctx, NotifyHelper& helper, std::uint16_t activity) {
  if (Thread* other = std::exchange(helper.at_barrier, nullptr)) {
    plain_call(ctx, activity, [&] {
      ctx.sync();
      ctx.kernel.wake(ctx.core, *other, &ctx.thread, activity, WaitResult::Woken);
    });
    return Step::Continue;
  }
  ctx.enter_syscall(activity);
  ctx.sync();
  helper.at_barrier = &ctx.thread;
  ctx.thread.leave_activity = activity;
  ctx.kernel.block(ctx.core, ctx.thread, &helper.barrier);
  return Step::Block;
}

// The helper thread's whole program (helper_thread): recv a cookie; for NOTIFY_WOKENUP create the
// notification thread and meet it at the barrier; loop. It ends when only it is left of its process.
class NotifyHelperOp : public Op {
public:
  using Op::Op;
  enum Progress : std::uint64_t { kStart, kInRecv, kAtBarrier };
  Step execute(OpContext& ctx) const override {
    Thread& t = ctx.thread;
    if (t.process->only_service_threads_left()) return Step::Exit; // exit() ended every thread
    NotifyHelper& helper = *ctx.kernel.ipc<MqNotifyThreads>().find(*t.process);
    switch (t.op_progress) {
    case kAtBarrier: // the notification thread woke it: out of FUTEX_WAIT
      ctx.leave_syscall(activity);
      t.op_progress = kStart;
      return Step::Continue;
    case kStart: // recv(netlink_socket, ...): sockfd_lookup_light, the socket layer
      ctx.enter_syscall(activity);
      ctx.charge(activity, Primitive::fd_lookup);
      ctx.charge(activity, Primitive::socket_dispatch);
      t.op_progress = kInRecv;
      [[fallthrough]];
    default:
      ctx.sync();
      if (helper.cookies.empty()) {
        t.leave_activity = activity;
        ctx.kernel.block(ctx.core, t, &helper.socket);
        return Step::Block;
      }
    }
    NotifyCookie cookie = helper.cookies.front();
    helper.cookies.pop_front();
    charge_copy(ctx, activity, kCookieBytes); // skb_copy_datagram_msg
    ctx.leave_syscall(activity);
    t.op_progress = kStart;
    if (!cookie.woken) return Step::Continue; // NOTIFY_REMOVED: free(data.attr), in user space
    // pthread_create: clone. A failure is lost ("There is no way to report a problem").
    Thread* created = nullptr;
    plain_call(ctx, activity,
               [&] { created = ctx.kernel.create_thread(ctx, *t.process, *cookie.function, activity); });
    if (!created) return Step::Continue;
    created->script_locals().set("sig.value", cookie.value);
    if (barrier_wait(ctx, helper, activity) == Step::Continue) return Step::Continue;
    t.op_progress = kAtBarrier;
    return Step::Block;
  }
};

// The first op of a notification thread (notification_function): meet the helper at the barrier,
// then unblock every signal (rt_sigprocmask); the function's ops follow.
class NotifyThreadStartOp : public Op {
public:
  using Op::Op;
  Step execute(OpContext& ctx) const override {
    Thread& t = ctx.thread;
    NotifyHelper& helper = *ctx.kernel.ipc<MqNotifyThreads>().find(*t.process);
    if (t.op_progress == 0) {
      t.op_progress = 1;
      if (barrier_wait(ctx, helper, activity) == Step::Block) return Step::Block;
    } else {
      ctx.leave_syscall(activity); // out of FUTEX_WAIT
    }
    plain_call(ctx, activity, [] {}); // change_sigmask (SIG_UNBLOCK): its mask was never blocked here
    t.op_progress = 0;
    ++t.pc;
    return Step::Continue;
  }
};

// The helper's program and thread spec: one per run (they outlive every kernel using them).
const ThreadSpec& helper_spec() {
  static const ThreadSpec spec = [] {
    auto program = std::make_shared<Program>();
    program->ops.push_back(std::make_unique<NotifyHelperOp>(register_activity("mq_notify helper")));
    return ThreadSpec{"mq_notify helper", 1, 0, std::move(program)};
  }();
  return spec;
}

// One queue: Linux's mqueue_inode_info.
struct MqQueue {
  MqQueue(std::string name, std::uint32_t uid, std::uint32_t gid, std::uint32_t mode, std::uint64_t maxmsg,
          std::uint64_t msgsize)
      : name(name), object("posix mq " + name), uid(uid), gid(gid), mode(mode), maxmsg(maxmsg),
        msgsize(msgsize), receivers("posix mq " + name + ": waiting for a message"),
        senders("posix mq " + name + ": waiting for room (full at " + std::to_string(maxmsg) + " messages)") {
  }

  std::string name;
  std::string object; // what the timeline calls it
  std::uint32_t uid, gid, mode;
  std::uint64_t maxmsg, msgsize;
  // Messages by priority, highest first; FIFO within one priority (Linux: an rbtree of priority
  // nodes, each with a list).
  std::map<std::uint32_t, std::deque<Message>, std::greater<>> messages;
  std::uint64_t curmsgs = 0, bytes = 0;
  bool linked = true;           // still has its name
  std::uint32_t open_files = 0; // open file descriptions referring to it
  WaitQueue receivers, senders;
  // info->lock: mq_timedsend holds it from its check of the queue to the message queued or handed
  // over, mq_timedreceive from its check to the message taken out; both wake after unlocking
  // (wake_q), and copy the message outside it (load_msg before, store_msg after). Five lines shared
  // (struct mqueue_inode_info, ipc/mqueue.c): the lock's, before the inode; msg_tree with
  // msg_tree_rightmost and node_cache; attr (mq_curmsgs) with qsize; the priority's
  // posix_msg_tree_node, whose msg_list both change; the msg_msg header linked into it.
  ObjectLock lock{5};
  // The core of the last receive, whose frees the next msg_msg allocations reuse (-1: none yet).
  std::int32_t consumed_on = -1;
  std::map<std::uint32_t, Message> waiting_sends; // by thread id: the message of each waiting sender
  // By thread id: the buffer of each waiting channel recv (a waiter absent here takes any message:
  // mq_receive's buffer is at least msgsize).
  std::map<std::uint32_t, std::uint64_t> receiver_limits;
  // mq_notify's registration (Linux: notify_owner and its sigevent): one process at a time,
  // notified once, when a message arrives on the empty queue with no receiver waiting.
  struct Notify {
    Process* owner = nullptr;
    int signal = 0; // 0: SIGEV_NONE (or SIGEV_THREAD)
    std::int64_t value = 0;
    const ThreadSpec* function = nullptr; // SIGEV_THREAD: the notification thread's
  } notify;

  // __do_notify: the first message of an empty queue, with nobody waiting in mq_receive.
  void notify_arrival(OpContext& ctx, std::uint16_t activity) {
    if (!notify.owner || curmsgs != 1) return;
    Notify n = std::exchange(notify, {});
    if (n.function)
      ctx.kernel.ipc<MqNotifyThreads>().send(ctx, *n.owner, {true, n.function, n.value}, activity);
    else if (n.signal && !n.owner->killed_by && n.owner->live_threads > 0)
      kernel_signal(ctx, *n.owner, n.signal, n.value, kSI_MESGQ, activity);
  }
  // remove_notification: a SIGEV_THREAD registration tells the helper (NOTIFY_REMOVED).
  void remove_notification(OpContext& ctx, std::uint16_t activity) {
    Notify n = std::exchange(notify, {});
    if (n.function)
      ctx.kernel.ipc<MqNotifyThreads>().send(ctx, *n.owner, {false, n.function, n.value}, activity);
  }

  // mq_timedsend after the descriptor and size checks: copy in, then hand the message to a waiting
  // receiver, or queue it, or wait for room. The message is sent (given its id) when it first
  // reaches the queue: handed to a receiver, queued, or left with its waiting sender, where a
  // receive takes it (pipelined_receive).
  IoStatus send(OpContext& ctx, std::uint16_t activity, const Message& original) {
    Thread& thread = ctx.thread;
    if (thread.op_progress & kQueuedFor) return sent(ctx);
    if (ctx.first_run()) ctx.charge(activity, Primitive::fd_lookup); // fdget
    if (!(thread.op_progress & kCopiedIn)) {
      charge_msg_alloc(ctx, activity, original.bytes);
      charge_copy(ctx, activity, original.bytes, 0, bytes + original.bytes,
                  consumed_on); // load_msg(): before the lock, once
      thread.op_progress |= kCopiedIn;
    }
    if (ctx.resumed()) ctx.charge(activity, Primitive::lock_acquire); // spin_lock(&info->lock)
    ObjectLock::Held held = lock.take(ctx, activity);
    Message message = original;
    message.written_on = static_cast<std::int32_t>(ctx.core.index); // load_msg's copy, on this core
    if (auto it = waiting_sends.find(thread.id); it != waiting_sends.end()) {
      message.id = it->second.id; // back from a wait: the message is ours to place again
      waiting_sends.erase(it);
    }
    auto reaches_queue = [&] {
      if (message.id == 0) message_sent(ctx, message, object);
    };
    // Who this send wakes, in order, once info->lock is released (Linux's wake_q).
    std::vector<Thread*> to_wake;
    auto unlock_and_wake = [&] {
      held.release();
      for (Thread* t : to_wake)
        if (t->waiting_on == &receivers) ctx.kernel.wake(ctx.core, *t, &thread, activity, WaitResult::Woken);
    };
    for (Thread* receiver = receivers.head; receiver; receiver = receiver->wait_next) {
      // pipelined_send: the receiver waits only on an empty queue; it gets this message directly.
      // A channel recv whose buffer is too small is woken with E2BIG on the way (as a System V
      // receiver is) and the message goes to the next waiter, or into the queue.
      auto limit = receiver_limits.find(receiver->id);
      if (limit != receiver_limits.end() && limit->second < message.bytes) {
        receiver_limits.erase(limit);
        receiver->op_progress |= kTooBig;
        to_wake.push_back(receiver);
        continue;
      }
      receiver_limits.erase(receiver->id);
      reaches_queue();
      ctx.charge(activity, Primitive::list_op); // pipelined_send: the waiter off info->e_wait_q
      receiver->script_locals().message = message;
      ctx.kernel.ipc<MqHandedState>().by_thread[receiver->id] = {object, message.bytes, this};
      receiver->op_progress |= kDelivered;
      to_wake.push_back(receiver);
      unlock_and_wake();
      ctx.succeed(0);
      return IoStatus::Done;
    }
    if (curmsgs < maxmsg) {
      reaches_queue();
      // msg_insert: a new priority is a node of the rbtree; an existing one, a list append
      ctx.charge(activity, messages.count(message.priority) ? Primitive::list_op : Primitive::tree_op);
      messages[message.priority].push_back(message);
      ++curmsgs;
      bytes += message.bytes;
      filled(ctx);
      // The model delivers the notification after the unlock (Linux: __do_notify under info->lock):
      // a signal may wake a thread, which lets time pass.
      unlock_and_wake();
      notify_arrival(ctx, activity);
      ctx.succeed(0);
      return IoStatus::Done;
    }
    unlock_and_wake(); // wq_sleep unlocks before schedule()
    IoStatus status = wait_on(ctx, senders, activity);
    if (status == IoStatus::Blocked) {
      reaches_queue();
      waiting_sends[thread.id] = message;
    } else if (message.id != 0 && status == IoStatus::Retry) {
      waiting_sends[thread.id] = message; // still ours to place when the call runs again
    } else if (message.id != 0) {
      // It reached the queue while its sender waited; the send ends without placing it.
      message_dropped(ctx, object, 1, message.bytes,
                      "its sender stopped waiting for room (timeout, signal or kill) before it was queued");
    }
    return status;
  }

  void filled(OpContext& ctx) const { fill_changed(ctx, object, "messages", curmsgs); }

  static IoStatus sent(OpContext& ctx) {
    ctx.succeed(0);
    return IoStatus::Done;
  }

  // mq_timedreceive after the descriptor and buffer checks. `limit`: the channel's recv buffer; a
  // longer message fails the receive with E2BIG and stays queued (mq_receive: no limit, since its
  // buffer is at least msgsize).
  IoStatus receive(OpContext& ctx, std::uint16_t activity, std::uint64_t limit = UINT64_MAX) {
    Thread& thread = ctx.thread;
    if (thread.op_progress & kDelivered) return finish_delivered(ctx, activity);
    if (thread.op_progress & kTooBig) return fail_call(ctx, activity, E2BIG);
    if (ctx.first_run()) ctx.charge(activity, Primitive::fd_lookup);  // fdget
    if (ctx.resumed()) ctx.charge(activity, Primitive::lock_acquire); // spin_lock(&info->lock)
    ObjectLock::Held held = lock.take(ctx, activity);
    receiver_limits.erase(thread.id);
    if (curmsgs == 0) {
      if (limit != UINT64_MAX) receiver_limits[thread.id] = limit;
      held.release(); // wq_sleep unlocks before schedule()
      IoStatus status = wait_on(ctx, receivers, activity);
      if (status != IoStatus::Blocked) receiver_limits.erase(thread.id);
      return status;
    }
    auto first = messages.begin();
    if (first->second.front().bytes > limit) return fail_call(ctx, activity, E2BIG);
    Message message = std::move(first->second.front());
    first->second.pop_front();
    // msg_get: off its priority's list; the last of its priority takes the node out of the tree
    ctx.charge(activity, first->second.empty() ? Primitive::tree_op : Primitive::list_op);
    if (first->second.empty()) messages.erase(first);
    const std::uint64_t queued = bytes; // this message's included (charge_copy)
    --curmsgs;
    bytes -= message.bytes;
    const std::uint64_t size = message.bytes;
    const std::int32_t source = message.written_on;
    consumed_on = static_cast<std::int32_t>(ctx.core.index);
    message_received(ctx, message, object, size);
    thread.script_locals().message = std::move(message);
    if (Thread* sender = senders.head) {
      // pipelined_receive: the first waiting sender's message takes the freed slot.
      auto it = waiting_sends.find(sender->id);
      ++curmsgs;
      bytes += it->second.bytes;
      messages[it->second.priority].push_back(std::move(it->second));
      waiting_sends.erase(it);
      sender->op_progress |= kQueuedFor;
      held.release(); // spin_unlock, then wake_up_q
      ctx.kernel.wake(ctx.core, *sender, &thread, activity, WaitResult::Woken);
    }
    held.release();
    filled(ctx);
    charge_copy(ctx, activity, size, 0, queued, source); // store_msg(): after the unlock
    charge_msg_free(ctx, activity, size);
    ctx.succeed(static_cast<std::int64_t>(size));
    return IoStatus::Done;
  }
};

void set_consumed_on(MqQueue& queue, std::int32_t core) { queue.consumed_on = core; }

// An open queue description: what an mqd_t refers to.
class MqOpenFile : public OpenFile {
public:
  MqOpenFile(std::shared_ptr<MqQueue> queue, bool readable, bool writable)
      : queue(std::move(queue)), readable(readable), writable(writable) {
    ++this->queue->open_files;
  }
  std::string describe() const override { return "posix mq " + queue->name; }
  // mqueue_flush_file: a close by the registered process drops its registration.
  void on_close(OpContext& ctx, Process& process) override {
    if (queue->notify.owner != &process) return;
    // Only an explicit close charges anything (at exit the helper is gone with the process).
    const auto& ops = ctx.thread.program->ops;
    queue->remove_notification(ctx, ctx.thread.pc < ops.size() ? ops[ctx.thread.pc]->activity
                                                               : std::uint16_t{kExit});
  }
  void on_last_close(OpContext& ctx, std::uint16_t) override {
    if (--queue->open_files == 0 && !queue->linked) { // the queue is gone: drop its messages
      if (queue->curmsgs > 0) fill_changed(ctx, queue->object, "messages", 0);
      message_dropped(
          ctx, queue->object, queue->curmsgs, queue->bytes,
          "the queue was unlinked (mq_unlink) and its last descriptor closed with messages in it");
      queue->messages.clear();
      queue->curmsgs = 0;
      queue->bytes = 0;
    }
  }
  std::shared_ptr<MqQueue> queue;
  bool readable, writable;
};

// The mqueue namespace of the kernel.
class PosixMqState : public IpcState, public Observer {
public:
  explicit PosixMqState(Kernel& kernel) : kernel_(kernel) { kernel.subscribe(*this); }
  // A sender killed while it waited for room exits without running its call again: its message,
  // sent when it went to sleep, dies with it.
  void on_process_exit(OpContext& ctx, Process& process) override {
    for (const auto& q : all)
      for (auto it = q->waiting_sends.begin(); it != q->waiting_sends.end();) {
        if (kernel_.threads()[it->first].process != &process) {
          ++it;
          continue;
        }
        message_dropped(ctx, q->object, 1, it->second.bytes,
                        "its sender's process was killed while it waited for room");
        it = q->waiting_sends.erase(it);
      }
  }
  std::map<std::string, std::shared_ptr<MqQueue>> names;
  // Every queue ever made, in creation order: an unlinked queue lives while it is open, and a
  // queue's wait queues must outlive any thread still on them.
  std::vector<std::shared_ptr<MqQueue>> all;
  std::vector<std::shared_ptr<MqQueue>> channels;

  std::shared_ptr<MqQueue> make(std::string name, std::uint32_t uid, std::uint32_t gid, std::uint32_t mode,
                                std::uint64_t maxmsg, std::uint64_t msgsize) {
    all.push_back(std::make_shared<MqQueue>(std::move(name), uid, gid, mode, maxmsg, msgsize));
    return all.back();
  }

  void list(std::vector<IpcTable>& tables) const override {
    IpcTable table{"POSIX message queues (/dev/mqueue)",
                   {"name", "owner", "perms", "messages", "bytes", "maxmsg", "msgsize"},
                   {}};
    auto row = [&](const MqQueue& q, const std::string& name) {
      char perms[8];
      std::snprintf(perms, sizeof perms, "%o", q.mode);
      table.rows.push_back({name, std::to_string(q.uid), perms, std::to_string(q.curmsgs),
                            std::to_string(q.bytes), std::to_string(q.maxmsg), std::to_string(q.msgsize)});
    };
    for (const auto& [name, q] : names) row(*q, name);
    for (const auto& q : all)
      if (!q->linked && q->open_files > 0) row(*q, q->name + " (unlinked)");
    for (const auto& q : channels) row(*q, q->name);
    if (!table.rows.empty()) tables.push_back(table);
  }
  void held(std::vector<Held>& out) const override {
    for (const auto& q : all) {
      out.push_back({q->object, q->curmsgs, q->bytes});
      for (const auto& [thread, m] : q->waiting_sends)
        out.push_back({q->object, 1, m.bytes}); // sent, waiting
    }
  }

private:
  Kernel& kernel_;
};

// ---- Load-time checks ------------------------------------------------------------------------

// mq_overview(7): "/somename": a slash, then 1 to 255 characters none of which is a slash.
void check_queue_name(const std::string& name, const std::string& where, CompileContext& ctx) {
  bool ok = name.size() >= 2 && name.size() <= 256 && name[0] == '/' &&
            name.find('/', 1) == std::string::npos && name.find(' ') == std::string::npos;
  if (!ok)
    fail_at(ctx.read.file, where,
            "invalid queue name \"" + name +
                "\"; expected \"/\" followed by 1 to 255 characters, none of them \"/\" or a space, such "
                "as \"/myqueue\"");
  check_template(name, where, ctx); // its {NAME} placeholders must name variables
}

// The descriptor `fd` if it is a message queue, else nullptr after failing the call with EBADF.
MqOpenFile* mq_descriptor(OpContext& ctx, std::uint16_t activity, Symbol fd) {
  auto* file = dynamic_cast<MqOpenFile*>(lookup_descriptor(ctx, fd));
  if (!file) ctx.fail(activity, EBADF);
  return file;
}

// Owner, group, other bits against the caller's uid and gid; uid 0 may do anything
// (CAP_DAC_OVERRIDE). `want` is 4 (read), 2 (write) or 6.
bool permitted(const MqQueue& q, const ProcessSpec& who, std::uint32_t want) {
  if (who.uid == 0) return true;
  std::uint32_t bits = who.uid == q.uid ? q.mode >> 6 : who.gid == q.gid ? q.mode >> 3 : q.mode;
  return (bits & want) == want;
}

// ---- Ops -------------------------------------------------------------------------------------

struct OpenSpec {
  std::string name;
  Symbol fd;
  bool read = false, write = false;
  bool create = false, exclusive = false, nonblock = false;
  std::uint32_t mode = 0666;
  std::int64_t maxmsg = kMsgMax, msgsize = kMsgsizeMax;
};

class MqOpenOp : public SyscallOp {
public:
  MqOpenOp(std::uint16_t activity, OpenSpec spec) : SyscallOp(activity, {}), spec_(std::move(spec)) {}
  IoStatus call(OpContext& ctx) const override {
    const CallName filled = call_name(spec_.name, NameKind::MqName, ctx, "mq_open", "name");
    if (!filled.ok()) return filled.fail(ctx, activity);
    const std::string& queue_name = filled.name;
    PosixMqState& state = ctx.kernel.ipc<PosixMqState>();
    const ProcessSpec& who = *ctx.thread.process->spec;
    ctx.sync();
    std::shared_ptr<MqQueue> queue;
    if (auto it = state.names.find(queue_name); it != state.names.end()) {
      if (spec_.create && spec_.exclusive) return fail_call(ctx, activity, EEXIST);
      if (!permitted(*it->second, who, (spec_.read ? 4u : 0u) | (spec_.write ? 2u : 0u)))
        return fail_call(ctx, activity, EACCES);
      queue = it->second;
    } else {
      if (!spec_.create) return fail_call(ctx, activity, ENOENT);
      const bool privileged = who.uid == 0; // CAP_SYS_RESOURCE
      const std::int64_t max_msgs = privileged ? kHardMsgMax : kMsgMax;
      const std::int64_t max_size = privileged ? kHardMsgsizeMax : kMsgsizeMax;
      if (spec_.maxmsg <= 0 || spec_.msgsize <= 0 || spec_.maxmsg > max_msgs || spec_.msgsize > max_size)
        return fail_call(ctx, activity, EINVAL);
      if (!ctx.kernel.new_ipc_object(ctx, "a POSIX message queue"))
        return fail_call(ctx, activity, ENOSPC); // the run stops
      // The creator gets the access it asked for whatever the mode says, as with open(2).
      queue = state.make(queue_name, who.uid, who.gid, spec_.mode, static_cast<std::uint64_t>(spec_.maxmsg),
                         static_cast<std::uint64_t>(spec_.msgsize));
      state.names[queue_name] = queue;
    }
    auto file = std::make_shared<MqOpenFile>(queue, spec_.read, spec_.write);
    file->nonblocking = spec_.nonblock;
    install_descriptor(ctx, spec_.fd, std::move(file), activity);
    ctx.succeed(0);
    return IoStatus::Done;
  }

private:
  OpenSpec spec_;
};

class MqSendOp : public SyscallOp {
public:
  MqSendOp(std::uint16_t activity, CallTimeout timeout, std::string fd, MessageArgs message)
      : SyscallOp(activity, timeout), fd_(fd), message_(std::move(message)) {}
  IoStatus call(OpContext& ctx) const override {
    if (ctx.thread.op_progress & kQueuedFor) return MqQueue::sent(ctx); // done while it waited
    // mq_timedsend checks the priority before the descriptor: msg_prio >= MQ_PRIO_MAX is EINVAL
    // (a negative one too: the argument is unsigned).
    std::int64_t priority = 0;
    if (!message_.priority.read(ctx, priority) || priority < 0 || priority > kMaxPriority)
      return fail_call(ctx, activity, EINVAL);
    MqOpenFile* file = mq_descriptor(ctx, activity, fd_);
    if (!file) return IoStatus::Done;
    if (!file->writable) return fail_call(ctx, activity, EBADF);
    Message m = message_.make(ctx);
    if (m.bytes > file->queue->msgsize) return fail_call(ctx, activity, EMSGSIZE);
    if (file->nonblocking) ctx.thread.op_nonblocking = true;
    return file->queue->send(ctx, activity, m);
  }

protected:
  bool arguments_valid(OpContext& ctx) const override {
    std::int64_t v = 0;
    return message_.bytes.resolve_field(ctx, v, "mq_send", "bytes", 0, kMaxMessageBytes, true) &&
           message_.priority.resolve(ctx, v, "mq_send");
  }

private:
  Symbol fd_;
  MessageArgs message_;
};

class MqReceiveOp : public SyscallOp {
public:
  MqReceiveOp(std::uint16_t activity, CallTimeout timeout, std::string fd, IntRef bytes)
      : SyscallOp(activity, timeout), fd_(fd), bytes_(std::move(bytes)) {}
  IoStatus call(OpContext& ctx) const override {
    // The descriptor may have been closed meanwhile: the message is ours all the same.
    if (ctx.thread.op_progress & kDelivered) return finish_delivered(ctx, activity);
    MqOpenFile* file = mq_descriptor(ctx, activity, fd_);
    if (!file) return IoStatus::Done;
    if (!file->readable) return fail_call(ctx, activity, EBADF);
    std::int64_t bytes = 0;
    bytes_.read(ctx, bytes); // checked by arguments_valid
    if (static_cast<std::uint64_t>(bytes) < file->queue->msgsize) return fail_call(ctx, activity, EMSGSIZE);
    if (file->nonblocking) ctx.thread.op_nonblocking = true;
    return file->queue->receive(ctx, activity);
  }

protected:
  bool arguments_valid(OpContext& ctx) const override {
    std::int64_t v = 0;
    return bytes_.resolve_field(ctx, v, "mq_receive", "bytes", 0, kMaxMessageBytes, true);
  }

private:
  Symbol fd_;
  IntRef bytes_;
};

class MqGetattrOp : public SyscallOp {
public:
  MqGetattrOp(std::uint16_t activity, std::string fd, std::string into)
      : SyscallOp(activity, {}), fd_(fd), into_(std::move(into)) {}
  IoStatus call(OpContext& ctx) const override {
    MqOpenFile* file = mq_descriptor(ctx, activity, fd_);
    if (!file) return IoStatus::Done;
    ctx.sync();
    ScriptLocals& locals = ctx.thread.script_locals();
    locals.set(into_ + ".flags",
               file->nonblocking ? Value{std::string("O_NONBLOCK")} : Value{std::int64_t{0}});
    locals.set(into_ + ".maxmsg", static_cast<std::int64_t>(file->queue->maxmsg));
    locals.set(into_ + ".msgsize", static_cast<std::int64_t>(file->queue->msgsize));
    locals.set(into_ + ".curmsgs", static_cast<std::int64_t>(file->queue->curmsgs));
    ctx.succeed(0);
    return IoStatus::Done;
  }

private:
  Symbol fd_;
  std::string into_;
};

class MqSetattrOp : public SyscallOp {
public:
  MqSetattrOp(std::uint16_t activity, std::string fd, bool nonblock)
      : SyscallOp(activity, {}), fd_(fd), nonblock_(nonblock) {}
  IoStatus call(OpContext& ctx) const override {
    MqOpenFile* file = mq_descriptor(ctx, activity, fd_);
    if (!file) return IoStatus::Done;
    ctx.sync();
    file->nonblocking = nonblock_; // only O_NONBLOCK can change; the rest of mq_attr is ignored
    ctx.succeed(0);
    return IoStatus::Done;
  }

private:
  Symbol fd_;
  bool nonblock_;
};

class MqCloseOp : public SyscallOp {
public:
  MqCloseOp(std::uint16_t activity, std::string fd) : SyscallOp(activity, {}), fd_(fd) {}
  IoStatus call(OpContext& ctx) const override {
    Process& process = *ctx.thread.process;
    for (std::size_t i = 0; i < process.fds.size(); ++i)
      if (process.fds[i].name == fd_ && dynamic_cast<MqOpenFile*>(process.fds[i].file.get())) {
        ctx.sync();
        ctx.kernel.close_descriptor(ctx, process, i, activity);
        ctx.succeed(0);
        return IoStatus::Done;
      }
    return fail_call(ctx, activity, EBADF);
  }

private:
  Symbol fd_;
};

class MqUnlinkOp : public SyscallOp {
public:
  MqUnlinkOp(std::uint16_t activity, std::string name) : SyscallOp(activity, {}), name_(std::move(name)) {}
  IoStatus call(OpContext& ctx) const override {
    const CallName filled = call_name(name_, NameKind::MqName, ctx, "mq_unlink", "name");
    if (!filled.ok()) return filled.fail(ctx, activity);
    const std::string& queue_name = filled.name;
    PosixMqState& state = ctx.kernel.ipc<PosixMqState>();
    ctx.sync();
    auto it = state.names.find(queue_name);
    if (it == state.names.end()) return fail_call(ctx, activity, ENOENT);
    // /dev/mqueue is a sticky directory (mode 1777): only the queue's owner or root may remove it.
    // The kernel says EPERM (may_delete); glibc's mq_unlink turns that into EACCES, which is what
    // the program sees (measured on Linux 6.18: the raw system call EPERM, mq_unlink() EACCES).
    const ProcessSpec& who = *ctx.thread.process->spec;
    if (who.uid != 0 && who.uid != it->second->uid) return fail_call(ctx, activity, EACCES);
    MqQueue& queue = *it->second;
    queue.linked = false;
    if (queue.open_files == 0) { // nobody has it open: it is gone now, with its messages
      if (queue.curmsgs > 0) fill_changed(ctx, queue.object, "messages", 0);
      message_dropped(ctx, queue.object, queue.curmsgs, queue.bytes,
                      "the queue was unlinked (mq_unlink) with messages in it and no descriptor open");
      queue.messages.clear();
      queue.curmsgs = 0;
      queue.bytes = 0;
    }
    state.names.erase(it);
    ctx.succeed(0);
    return IoStatus::Done;
  }

private:
  std::string name_;
};

// mq_notify(mqdes, sevp): register (a signal, SIGEV_NONE or SIGEV_THREAD) or, with "remove",
// unregister.
class MqNotifyOp : public SyscallOp {
public:
  enum class How : std::uint8_t { Signal, None, Thread, Remove };
  MqNotifyOp(std::uint16_t activity, std::string fd, How how, int signal, std::int64_t value,
             std::shared_ptr<const Program> function)
      : SyscallOp(activity, {}), fd_(fd), how_(how), signal_(signal), value_(value),
        function_(std::move(function)), thread_spec_{"notification", 1, 0, function_} {}
  IoStatus call(OpContext& ctx) const override {
    Descriptor* d = ctx.thread.process->find_fd(fd_);
    auto* file = d ? dynamic_cast<MqOpenFile*>(d->file.get()) : nullptr;
    if (!file) return fail_call(ctx, activity, EBADF);
    if (how_ == How::Thread) { // do_mq_notify: alloc_skb, copy the cookie in, fdget the socket
      ctx.charge(activity, Primitive::slab_alloc);
      charge_copy(ctx, activity, kCookieBytes);
      ctx.charge(activity, Primitive::fd_lookup);
    }
    ctx.sync();
    MqQueue::Notify& notify = file->queue->notify;
    Process* me = ctx.thread.process;
    if (how_ == How::Remove) { // only the registered process's own registration goes
      if (notify.owner == me) file->queue->remove_notification(ctx, activity);
      ctx.succeed(0);
      return IoStatus::Done;
    }
    if (notify.owner) return fail_call(ctx, activity, EBUSY);
    notify = {me, how_ == How::Signal ? signal_ : 0, value_, how_ == How::Thread ? &thread_spec_ : nullptr};
    ctx.succeed(0);
    return IoStatus::Done;
  }

private:
  Symbol fd_;
  How how_;
  int signal_;
  std::int64_t value_;
  std::shared_ptr<const Program> function_;
  ThreadSpec thread_spec_;
};

// glibc's mq_notify for SIGEV_THREAD: init_mq_netlink once per process, then the system call.
class MqNotifyThreadOp : public Op {
public:
  MqNotifyThreadOp(std::uint16_t activity, std::unique_ptr<MqNotifyOp> call)
      : Op(activity), call_(std::move(call)) {}
  Step execute(OpContext& ctx) const override {
    if (ctx.thread.phase == 0) {
      NotifyHelper* helper = ctx.kernel.ipc<MqNotifyThreads>().find(*ctx.thread.process);
      if (!helper) helper = &init_netlink(ctx);
      if (!helper->thread) { // no helper: "we cannot provide SIGEV_THREAD support"
        ctx.fail(activity, ENOSYS);
        ++ctx.thread.pc;
        return Step::Continue;
      }
    }
    return call_->execute(ctx);
  }

private:
  // socket(AF_NETLINK): the socket and its sock; fcntl(FD_CLOEXEC); rt_sigprocmask blocking every
  // signal; clone of the helper; rt_sigprocmask restoring the mask. Past the run's thread limit
  // the helper is not created, and this mq_notify and every later one in the process fail with
  // ENOSYS (netlink_socket stays -1).
  NotifyHelper& init_netlink(OpContext& ctx) const {
    NotifyHelper& helper = ctx.kernel.ipc<MqNotifyThreads>().make(*ctx.thread.process);
    plain_call(ctx, activity, [&] {
      ctx.charge(activity, Primitive::slab_alloc);
      ctx.charge(activity, Primitive::slab_alloc);
    });
    plain_call(ctx, activity, [&] { ctx.charge(activity, Primitive::fd_lookup); });
    plain_call(ctx, activity, [] {});
    plain_call(ctx, activity, [&] {
      helper.thread = ctx.kernel.create_thread(ctx, *ctx.thread.process, helper_spec(), activity, true);
    });
    plain_call(ctx, activity, [] {});
    if (helper.thread) block_all_signals(ctx, *helper.thread);
    return helper;
  }
  std::unique_ptr<MqNotifyOp> call_;
};

ParamSpec fd_param(const std::string& what) { return {"fd", ParamType::String, nullptr, "", what}; }
ParamSpec name_param(const std::string& what) { return {"name", ParamType::String, nullptr, "", what}; }

const std::vector<std::string> kOpenFlags{"O_CREAT", "O_EXCL", "O_NONBLOCK"};

const OpRegistrar register_mq_open(
    {"mq_open",
     "open (or with O_CREAT create) a POSIX message queue \"/name\" into a descriptor",
     {"mq_open op",
      "",
      {name_param("the queue's name: \"/\" and 1 to 255 characters other than \"/\""),
       fd_param("the descriptor's name in the process (an existing one of that name is closed first)"),
       {"access",
        ParamType::Choice,
        nullptr,
        "",
        "the access asked for",
        std::nullopt,
        std::nullopt,
        {"O_RDONLY", "O_WRONLY", "O_RDWR"}},
       {"flags", ParamType::StringList, json::array(), "",
        "each one of O_CREAT (create when missing), O_EXCL (with O_CREAT: fail "
        "with EEXIST when it exists), O_NONBLOCK (sends and receives that would block fail with EAGAIN)"},
       {"mode", ParamType::String, "0666", "", "permission bits of a queue it creates, octal (no umask)"},
       {"maxmsg", ParamType::Integer, kMsgMax, "",
        "capacity in messages of a queue it creates (EINVAL when <= 0 or above 10; uid 0: above 65536)"},
       {"msgsize", ParamType::Integer, kMsgsizeMax, "bytes",
        "largest message of a queue it creates (EINVAL when <= 0 or above 8192; uid 0: above 16 MiB)"}}},
     [](const json& f, const std::string& path, CompileContext& ctx, Program& p, std::uint16_t a) {
       OpenSpec spec;
       spec.name = f.at("name").get<std::string>();
       check_queue_name(spec.name, join_path(path, "name"), ctx);
       spec.fd = Symbol(f.at("fd").get<std::string>());
       auto access = f.at("access").get<std::string>();
       spec.read = access != "O_WRONLY";
       spec.write = access != "O_RDONLY";
       const json& flags = f.at("flags");
       for (std::size_t i = 0; i < flags.size(); ++i) {
         const std::string where = join_path(join_path(path, "flags"), i);
         if (!flags[i].is_string())
           fail_at(ctx.read.file, where,
                   "invalid value " + flags[i].dump() + "; expected a flag: " + join_list(kOpenFlags));
         auto flag = flags[i].get<std::string>();
         if (flag == "O_CREAT")
           spec.create = true;
         else if (flag == "O_EXCL")
           spec.exclusive = true;
         else if (flag == "O_NONBLOCK")
           spec.nonblock = true;
         else
           fail_at(ctx.read.file, where,
                   "unknown flag \"" + flag + "\"" + did_you_mean(flag, kOpenFlags) +
                       "; accepted: " + join_list(kOpenFlags));
       }
       spec.mode = read_mode(f, path, ctx);
       spec.maxmsg = f.at("maxmsg").get<std::int64_t>();
       spec.msgsize = f.at("msgsize").get<std::int64_t>();
       p.ops.push_back(std::make_unique<MqOpenOp>(a, std::move(spec)));
     }});

const OpRegistrar register_mq_send(
    {"mq_send",
     "send a message with a priority on a POSIX queue (with a timeout: mq_timedsend); blocks while it is "
     "full",
     {"mq_send op",
      "",
      {fd_param("the queue's descriptor (opened O_WRONLY or O_RDWR)"),
       variable_field({"bytes", ParamType::Bytes, nullptr, "bytes",
                       "the message's size (EMSGSIZE above the queue's msgsize)"}),
       variable_field({"priority", ParamType::Integer, 0, "",
                       "0 to 32767; higher priorities are received first (a variable holding another number: "
                       "EINVAL, as mq_send gives for msg_prio >= MQ_PRIO_MAX)",
                       0.0, 32767.0}),
       {"text", ParamType::String, "", "",
        "text carried for print ({msg.text} at the receiver); {NAME} placeholders are filled in when sent"},
       timeout_param()}},
     [](const json& f, const std::string& path, CompileContext& ctx, Program& p, std::uint16_t a) {
       p.ops.push_back(std::make_unique<MqSendOp>(
           a, read_timeout(f, path, ctx), f.at("fd").get<std::string>(), MessageArgs::read(f, path, ctx)));
     }});

const OpRegistrar register_mq_receive(
    {"mq_receive",
     "receive the oldest message of the highest priority (with a timeout: mq_timedreceive); {result} is "
     "its size, {msg.priority} {msg.text} {msg.bytes} {msg.sender} describe it",
     {"mq_receive op",
      "",
      {fd_param("the queue's descriptor (opened O_RDONLY or O_RDWR)"),
       variable_field({"bytes", ParamType::Bytes, nullptr, "bytes",
                       "the buffer's size (EMSGSIZE below the queue's msgsize)"}),
       timeout_param()}},
     [](const json& f, const std::string& path, CompileContext& ctx, Program& p, std::uint16_t a) {
       p.ops.push_back(std::make_unique<MqReceiveOp>(a, read_timeout(f, path, ctx),
                                                     f.at("fd").get<std::string>(),
                                                     read_int_field(f, "bytes", path, ctx)));
     }});

const OpRegistrar register_mq_getattr(
    {"mq_getattr",
     "read a queue's attributes into INTO.flags (O_NONBLOCK or 0), INTO.maxmsg, INTO.msgsize, INTO.curmsgs",
     {"mq_getattr op",
      "",
      {fd_param("the queue's descriptor"),
       {"into", ParamType::String, nullptr, "",
        "prefix of the script variables set (letters, digits, _ and .)"}}},
     [](const json& f, const std::string& path, CompileContext& ctx, Program& p, std::uint16_t a) {
       auto into = f.at("into").get<std::string>();
       if (!valid_variable(into) || into.rfind("msg", 0) == 0)
         fail_at(ctx.read.file, join_path(path, "into"),
                 "invalid variable prefix \"" + into +
                     "\"; use letters, digits, _ and . (not starting with \"msg\"), such as \"attr\"");
       for (const char* field : {".flags", ".maxmsg", ".msgsize", ".curmsgs"})
         ctx.assigned.push_back(into + field);
       p.ops.push_back(std::make_unique<MqGetattrOp>(a, f.at("fd").get<std::string>(), into));
     }});

const OpRegistrar register_mq_setattr(
    {"mq_setattr",
     "set or clear O_NONBLOCK on a queue's descriptor (the only attribute mq_setattr changes)",
     {"mq_setattr op",
      "",
      {fd_param("the queue's descriptor"),
       {"nonblock", ParamType::Bool, nullptr, "",
        "true: sends and receives that would block fail with EAGAIN"}}},
     [](const json& f, const std::string&, CompileContext&, Program& p, std::uint16_t a) {
       p.ops.push_back(
           std::make_unique<MqSetattrOp>(a, f.at("fd").get<std::string>(), f.at("nonblock").get<bool>()));
     }});

const OpRegistrar
    register_mq_close({"mq_close",
                       "close a queue's descriptor (the queue and its messages stay until unlinked)",
                       {"mq_close op", "", {fd_param("the queue's descriptor")}},
                       [](const json& f, const std::string&, CompileContext&, Program& p, std::uint16_t a) {
                         p.ops.push_back(std::make_unique<MqCloseOp>(a, f.at("fd").get<std::string>()));
                       }});

const OpRegistrar register_mq_notify(
    {"mq_notify",
     "ask for a signal when a message arrives on the empty queue and nobody waits in mq_receive (once; "
     "one process at a time: EBUSY), or with \"notify\": \"remove\" drop this process's request",
     {"mq_notify op",
      "",
      {fd_param("the queue's descriptor"),
       {"notify",
        ParamType::Choice,
        "signal",
        "",
        "signal (SIGEV_SIGNAL), thread (SIGEV_THREAD: a new thread runs `function`), none (SIGEV_NONE: "
        "register without a notification) or remove (sevp NULL)",
        std::nullopt,
        std::nullopt,
        {"signal", "thread", "none", "remove"}},
       {"signal",
        ParamType::Scalar,
        nullptr,
        "",
        "the signal (SIGEV_SIGNAL's sigev_signo)",
        std::nullopt,
        std::nullopt,
        {},
        "SIGUSR1"},
       {"value",
        ParamType::Integer,
        nullptr,
        "",
        "si_value (sigev_value), which the handler or the function sees as {sig.value}",
        -9.2e18,
        9.2e18,
        {},
        "0"},
       {"function",
        ParamType::Script,
        nullptr,
        "",
        "SIGEV_THREAD's sigev_notify_function: the ops a new thread of the process runs per notification; "
        "they see {sig.value}",
        std::nullopt,
        std::nullopt,
        {},
        "none"}}},
     [](const json& f, const std::string& path, CompileContext& ctx, Program& p, std::uint16_t a) {
       auto notify = f.at("notify").get<std::string>();
       auto how = notify == "signal"   ? MqNotifyOp::How::Signal
                  : notify == "thread" ? MqNotifyOp::How::Thread
                  : notify == "none"   ? MqNotifyOp::How::None
                                       : MqNotifyOp::How::Remove;
       if (how != MqNotifyOp::How::Signal && f.contains("signal"))
         fail_at(ctx.read.file, join_path(path, "signal"),
                 "\"signal\" goes with \"notify\": \"signal\"; drop it");
       if (how != MqNotifyOp::How::Signal && how != MqNotifyOp::How::Thread && f.contains("value"))
         fail_at(ctx.read.file, join_path(path, "value"),
                 "\"value\" goes with \"notify\": \"signal\" or \"thread\"; drop it");
       if ((how == MqNotifyOp::How::Thread) != f.contains("function"))
         fail_at(ctx.read.file, how == MqNotifyOp::How::Thread ? path : join_path(path, "function"),
                 how == MqNotifyOp::How::Thread
                     ? "\"notify\": \"thread\" needs \"function\": the ops the notification thread runs"
                     : "\"function\" goes with \"notify\": \"thread\"; drop it");
       int sig = f.contains("signal") ? read_signal_field(f, "signal", path, ctx) : 10; // SIGUSR1
       std::shared_ptr<Program> function;
       if (how == MqNotifyOp::How::Thread) {
         function = std::make_shared<Program>();
         function->ops.push_back(
             std::make_unique<NotifyThreadStartOp>(register_activity("mq_notify thread")));
         ctx.assigned.push_back("sig.value");
         compile_ops(f.at("function"), join_path(path, "function"), ctx, *function);
       }
       auto call = std::make_unique<MqNotifyOp>(a, f.at("fd").get<std::string>(), how, sig,
                                                f.value("value", std::int64_t{0}), std::move(function));
       if (how == MqNotifyOp::How::Thread)
         p.ops.push_back(std::make_unique<MqNotifyThreadOp>(a, std::move(call)));
       else
         p.ops.push_back(std::move(call));
     }});

const OpRegistrar register_mq_unlink(
    {"mq_unlink",
     "remove a queue's name; the queue lives on until its last descriptor closes",
     {"mq_unlink op", "", {name_param("the queue's name")}},
     [](const json& f, const std::string& path, CompileContext& ctx, Program& p, std::uint16_t a) {
       auto name = f.at("name").get<std::string>();
       check_queue_name(name, join_path(path, "name"), ctx);
       p.ops.push_back(std::make_unique<MqUnlinkOp>(a, name));
     }});

// ---- The generic channel ---------------------------------------------------------------------

class PosixMqChannel : public Channel {
public:
  explicit PosixMqChannel(std::shared_ptr<MqQueue> queue) : queue_(std::move(queue)) {}
  IoStatus send(OpContext& ctx, std::uint16_t activity, const Message& message) override {
    if (ctx.thread.op_progress & kQueuedFor) return MqQueue::sent(ctx);
    if (message.bytes > queue_->msgsize) return fail_call(ctx, activity, EMSGSIZE);
    return queue_->send(ctx, activity, message);
  }
  // Unlike mq_receive (EMSGSIZE for a buffer below msgsize), recv behaves as the other message
  // channels: the channel receives into a buffer of msgsize of its own, as a program would after
  // mq_getattr, and hands over the next message when it fits in `bytes`; a longer one fails with
  // E2BIG (as the sysv_msg channel) and stays queued.
  IoStatus recv(OpContext& ctx, std::uint16_t activity, std::uint64_t bytes) override {
    return queue_->receive(ctx, activity, bytes);
  }

private:
  std::shared_ptr<MqQueue> queue_;
};

const MechanismRegistrar register_posix_mq(
    {"posix_mq",
     "POSIX message queue (mq_send / mq_receive): the highest priority first, FIFO within a priority",
     ParamTable{"posix_mq channel",
                "",
                {{"maxmsg", ParamType::Integer, kMsgMax, "", "capacity in messages (senders block when full)",
                  1.0, static_cast<double>(kHardMsgMax)},
                 {"msgsize", ParamType::Bytes, kMsgsizeMax, "bytes",
                  "largest message (a longer send fails with EMSGSIZE)", 1.0,
                  static_cast<double>(kHardMsgsizeMax)}}},
     nullptr, [](const ChannelSpec& spec, Kernel& kernel) -> std::unique_ptr<Channel> {
       PosixMqState& state = kernel.ipc<PosixMqState>();
       auto queue =
           state.make("(channel " + spec.name + ")", 0, 0, 0600,
                      spec.params.at("maxmsg").get<std::uint64_t>(), read_bytes(spec.params.at("msgsize")));
       state.channels.push_back(queue);
       return std::make_unique<PosixMqChannel>(queue);
     }});

} // namespace

} // namespace ipcsim
