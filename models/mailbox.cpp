// Textbook message passing (the IPADS and SYSU lectures in ../shared/reference/002 and 003): direct
// communication between named processes over links set up on first use, indirect communication
// through mailboxes and ports, the three buffering capacities (zero: rendezvous, bounded, unbounded),
// blocking, non-blocking and timed send and receive, and the material's policies for several
// receivers on one mailbox. See docs/mailbox.md.
#include "error.hpp"
#include "ipc.hpp"
#include "lock.hpp"

#include <algorithm>
#include <deque>
#include <limits>
#include <map>
#include <random>
#include <unordered_set>

namespace ipcsim {

namespace {

constexpr std::uint64_t kUnbounded = std::numeric_limits<std::uint64_t>::max();
constexpr std::size_t kNone = std::numeric_limits<std::size_t>::max();

enum class Policy : std::uint8_t { Shared, Pair, OneReceiver, RoundRobin, Random };

const std::vector<std::string>& policy_names() {
  static const std::vector<std::string> names{"shared", "pair", "one-receiver", "round-robin", "random"};
  return names;
}

Policy policy_from(const std::string& name) {
  const auto& names = policy_names();
  return static_cast<Policy>(std::find(names.begin(), names.end(), name) - names.begin());
}

enum class BoxKind : std::uint8_t { Mailbox, Port, Link };

// A copy of a message between user and kernel: copy_setup + ceil(bytes / rate).
void copy_message(OpContext& ctx, std::uint16_t activity, std::uint64_t bytes) {
  charge_copy(ctx, activity, bytes);
}

std::string capacity_text(std::uint64_t capacity) {
  return capacity == kUnbounded ? "unbounded" : std::to_string(capacity);
}

// A process named in a scenario: "name" (copy 0) or "name[k]".
struct ProcRef {
  std::string name;
  std::uint32_t copy = 0;
  std::string key() const { return name + "#" + std::to_string(copy); }
};

std::string process_key(const Process& p) { return p.spec->name + "#" + std::to_string(p.copy); }

std::optional<ProcRef> parse_proc(const std::string& text) {
  ProcRef ref;
  auto open = text.find('[');
  if (open == std::string::npos) {
    ref.name = text;
    return ref;
  }
  if (open == 0 || text.back() != ']' || open + 2 >= text.size()) return std::nullopt;
  ref.name = text.substr(0, open);
  std::uint64_t copy = 0;
  for (std::size_t i = open + 1; i + 1 < text.size(); ++i) {
    if (text[i] < '0' || text[i] > '9' || copy > 100'000'000) return std::nullopt;
    copy = copy * 10 + static_cast<std::uint64_t>(text[i] - '0');
  }
  ref.copy = static_cast<std::uint32_t>(copy);
  return ref;
}

// A message waiting in a mailbox or link. `rendezvous_sender`: the blocked sender of a capacity-0
// mailbox, to be released when a receiver takes it.
struct Pending {
  Message message;
  std::uint64_t seq = 0;
  Thread* rendezvous_sender = nullptr;
};

// A mailbox, a port, or one direction of a direct link.
struct Box {
  Box(std::string name, BoxKind kind, std::uint64_t capacity, Policy policy)
      : name(std::move(name)), kind(kind), capacity(capacity), policy(policy),
        object((kind == BoxKind::Mailbox ? "mailbox "
                : kind == BoxKind::Port  ? "port "
                                         : "link ") +
               this->name),
        senders(this->name + ": " +
                (capacity == 0 ? std::string("a receiver to take the message (rendezvous)")
                               : "room for a message (" + capacity_text(capacity) + " queued)")),
        receivers(this->name + ": a message") {}
  std::string name;
  BoxKind kind;
  std::uint64_t capacity;
  Policy policy;
  std::string object;             // what the timeline calls it: "mailbox courier", "link a->b"
  const Process* owner = nullptr; // nullptr: the system (declared by the scenario, or a link)
  bool alive = true;
  std::deque<Pending> queue;
  void filled(OpContext& ctx) const { fill_changed(ctx, object, "messages", queue.size()); }
  WaitQueue senders;   // waiting for room, or for a receiver to take their message
  WaitQueue receivers; // waiting for a message (mailboxes and ports; a link's receivers wait in an inbox)
  // The mailbox's lock (a kernel spinlock, as info->lock of a POSIX queue): a send holds it from
  // its look at the mailbox to the message queued or handed over, a receive to the message taken
  // off the queue; wakeups and the copy out come after it.
  ObjectLock lock;
  std::vector<const Process*> users;   // "pair": the two processes allowed
  const Thread* receiving = nullptr;   // "one-receiver": the thread executing a receive
  std::vector<std::uint32_t> rotation; // "round-robin": receiving threads in order of first wait
  std::size_t rotation_last = kNone;   // index in rotation of the last receiver served
  Process* from = nullptr;             // a link direction: sender and receiver process
  Process* to = nullptr;
  std::string channel; // a link direction declared by a channel: its name (listed even once unused)
};

// The one link between a pair of processes: p[0] has the lower id; dir[0] carries p[0] -> p[1].
struct Link {
  Process* p[2] = {nullptr, nullptr};
  std::shared_ptr<Box> dir[2];
};

// A send or receive in progress, kept across the thread's blocks.
struct Call {
  Thread* thread = nullptr;  // the caller
  std::shared_ptr<Box> box;  // the mailbox, or the link direction used
  Process* peer = nullptr;   // direct communication: the other process
  bool any = false;          // receive from any process
  std::uint64_t bytes = 0;   // receive: the buffer's size
  std::uint64_t offered = 0; // rendezvous send: the seq of the message offered
  bool taken = false;        // rendezvous send: a receiver took it
  std::string taker;
  bool handed = false; // receive: a sender handed a message straight to this thread
  bool handed_in_kernel = true;
  Box* handed_from = nullptr; // ... from this mailbox or link direction
  Message message;
};

struct Endpoint {
  enum class Kind : std::uint8_t { Mailbox, Process, Any, Link } kind = Kind::Mailbox;
  std::string mailbox;
  ProcRef process;
  ProcRef link[2]; // a link channel's two processes
};

class MailboxState;

// Mailboxes outlive nothing of their owner: the state hears every process exit (an event
// subscriber), and the exit of an owner or a link's end acts as below.
class MailboxState : public IpcState, public Observer, public CallHolder {
public:
  explicit MailboxState(Kernel& kernel) : rng_(kernel.model().seed ^ 0x6d61696c626f7821ULL) {
    kernel.subscribe(*this);
  }
  void on_process_exit(OpContext& ctx, Process& process) override { process_gone(ctx, process, kExit); }

  std::shared_ptr<Box> create(const std::string& name, BoxKind kind, std::uint64_t capacity, Policy policy,
                              const Process* owner) {
    auto box = std::make_shared<Box>(name, kind, capacity, policy);
    box->owner = owner;
    names_[name] = box;
    boxes_.push_back(box);
    return box;
  }
  std::shared_ptr<Box> find(const std::string& name) const {
    auto it = names_.find(name);
    return it == names_.end() ? nullptr : it->second;
  }
  void declare_link(const ProcRef& a, const ProcRef& b, std::uint64_t capacity, const std::string& channel) {
    declared_links_[link_key(a.key(), b.key())] = {capacity, channel};
  }

  IoStatus send(OpContext& ctx, std::uint16_t activity, const Endpoint& to, const Message& message) {
    IoStatus status = send_step(ctx, activity, to, message);
    if (status == IoStatus::Done) end_call(ctx);
    return status;
  }
  IoStatus recv(OpContext& ctx, std::uint16_t activity, const Endpoint& from, std::uint64_t bytes) {
    IoStatus status = recv_step(ctx, activity, from, bytes);
    if (status == IoStatus::Done) end_call(ctx);
    return status;
  }

  IoStatus create_op(OpContext& ctx, std::uint16_t activity, const std::string& name, std::uint64_t capacity,
                     Policy policy, bool port) {
    ctx.sync();
    if (names_.count(name)) return fail_call(ctx, activity, EEXIST);
    if (!ctx.kernel.new_ipc_object(ctx, "a mailbox"))
      return fail_call(ctx, activity, ENOSPC); // the run stops
    create(name, port ? BoxKind::Port : BoxKind::Mailbox, capacity, policy, ctx.thread.process);
    ctx.succeed();
    return IoStatus::Done;
  }

  IoStatus destroy_op(OpContext& ctx, std::uint16_t activity, const std::string& name) {
    ctx.sync();
    auto box = find(name);
    if (!box) return fail_call(ctx, activity, ENOENT);
    if (box->owner != ctx.thread.process) return fail_call(ctx, activity, EPERM);
    destroy(ctx, *box, activity);
    ctx.succeed();
    return IoStatus::Done;
  }

  // The process exited: its mailboxes and ports go; whoever waits on a link with it learns (ESRCH).
  void process_gone(OpContext& ctx, Process& process, std::uint16_t activity) {
    auto boxes = boxes_;
    for (auto& box : boxes)
      if (box->alive && box->owner == &process) destroy(ctx, *box, activity);
    // Each wake lets time pass, and other cores run meanwhile: they may add links, and a woken
    // thread may sleep again. Iterate over a snapshot, and wake only who still waits for this.
    auto links = links_;
    for (auto& link : links) {
      int side = link->p[0] == &process ? 0 : link->p[1] == &process ? 1 : -1;
      if (side < 0) continue;
      Process& other = *link->p[1 - side];
      ctx.kernel.wake_all(ctx.core, link->dir[1 - side]->senders, &ctx.thread, activity);
      WaitQueue& queue = inbox(other);
      auto waits_for_exited = [&](const Thread* t) {
        auto call = calls_.find(t->id);
        return t->waiting_on == &queue && call != calls_.end() && call->second.peer == &process;
      };
      std::vector<Thread*> waiting;
      for (Thread* t = queue.head; t; t = t->wait_next)
        if (waits_for_exited(t)) waiting.push_back(t);
      for (Thread* t : waiting)
        if (waits_for_exited(t)) ctx.kernel.wake(ctx.core, *t, &ctx.thread, activity, WaitResult::Woken);
    }
  }

  void list(std::vector<IpcTable>& tables) const override {
    IpcTable table{
        "Mailboxes and links",
        {"name", "kind", "owner", "capacity", "policy", "queued", "senders waiting", "receivers waiting"},
        {}};
    for (const auto& box : boxes_) {
      if (!box->alive) continue;
      // A link outlives its processes only when a channel declared it.
      if (box->kind == BoxKind::Link && box->channel.empty() && box->from->live_threads == 0 &&
          box->to->live_threads == 0)
        continue;
      std::size_t queued = 0; // not counting a rendezvous offer whose sender was killed
      for (const auto& pending : box->queue)
        if (!pending.rendezvous_sender || !pending.rendezvous_sender->process->killed_by) ++queued;
      std::size_t receivers = box->receivers.size;
      if (box->kind == BoxKind::Link) {
        receivers = 0;
        auto it = inboxes_.find(box->to->id);
        if (it != inboxes_.end())
          for (Thread* t = it->second->head; t; t = t->wait_next) {
            auto call = calls_.find(t->id);
            if (call != calls_.end() && (call->second.any || call->second.peer == box->from)) ++receivers;
          }
      }
      static const char* kinds[] = {"mailbox", "port", "link"};
      table.rows.push_back(
          {box->name, kinds[static_cast<int>(box->kind)],
           box->kind == BoxKind::Link ? (box->channel.empty() ? "-" : "channel " + box->channel)
           : box->owner               ? box->owner->display_name()
                                      : "system",
           capacity_text(box->capacity),
           box->kind == BoxKind::Link ? "direct" : policy_names()[static_cast<int>(box->policy)],
           std::to_string(queued), std::to_string(box->senders.size), std::to_string(receivers)});
    }
    if (!table.rows.empty()) tables.push_back(table);
  }

  void held(std::vector<Held>& out) const override {
    for (const auto& box : boxes_) {
      std::uint64_t bytes = 0;
      for (const auto& pending : box->queue) bytes += pending.message.bytes;
      if (!box->queue.empty()) out.push_back({box->object, box->queue.size(), bytes});
    }
    for (const auto& [thread, call] : calls_) // handed to a woken receiver that has not taken it yet
      if (call.handed && call.handed_from) out.push_back({call.handed_from->object, 1, call.message.bytes});
  }

private:
  static std::string link_key(const std::string& a, const std::string& b) {
    return a < b ? a + "|" + b : b + "|" + a;
  }

  WaitQueue& inbox(const Process& process) {
    auto& queue = inboxes_[process.id];
    if (!queue) queue = std::make_unique<WaitQueue>(process.display_name() + ": a direct message");
    return *queue;
  }

  void destroy(OpContext& ctx, Box& box, std::uint16_t activity) {
    box.alive = false;
    names_.erase(box.name);
    if (!box.queue.empty()) fill_changed(ctx, box.object, "messages", 0);
    std::uint64_t bytes = 0;
    for (const auto& pending : box.queue) bytes += pending.message.bytes;
    message_dropped(ctx, box.object, box.queue.size(), bytes,
                    "the mailbox was destroyed (by its owner, or at its owner's exit) with messages in it");
    box.queue.clear();
    ctx.kernel.wake_all(ctx.core, box.senders, &ctx.thread, activity);
    ctx.kernel.wake_all(ctx.core, box.receivers, &ctx.thread, activity);
  }

  // "pair": the first two processes that use the mailbox are its link; a third gets EPERM.
  static bool admit(Box& box, const Process& process) {
    if (box.policy != Policy::Pair) return true;
    if (std::find(box.users.begin(), box.users.end(), &process) != box.users.end()) return true;
    if (box.users.size() >= 2) return false;
    box.users.push_back(&process);
    return true;
  }

  Process* resolve(OpContext& ctx, const ProcRef& ref) { return ctx.kernel.find_process(ref.name, ref.copy); }

  Link& link_between(Process& a, Process& b) {
    for (auto& link : links_)
      if ((link->p[0] == &a && link->p[1] == &b) || (link->p[0] == &b && link->p[1] == &a)) return *link;
    auto link = std::make_shared<Link>();
    link->p[0] = a.id < b.id ? &a : &b;
    link->p[1] = a.id < b.id ? &b : &a;
    auto declared = declared_links_.find(link_key(process_key(a), process_key(b)));
    std::uint64_t capacity = declared == declared_links_.end() ? kUnbounded : declared->second.first;
    for (int d = 0; d < 2; ++d) {
      Process* from = link->p[d];
      Process* to = link->p[1 - d];
      auto box = std::make_shared<Box>(from->display_name() + "->" + to->display_name(), BoxKind::Link,
                                       capacity, Policy::Shared);
      box->from = from;
      box->to = to;
      if (declared != declared_links_.end()) box->channel = declared->second.second;
      boxes_.push_back(box);
      link->dir[d] = box;
    }
    links_.push_back(link);
    return *links_.back();
  }

  std::shared_ptr<Box> direction(Link& link, const Process& from) {
    return link.dir[link.p[0] == &from ? 0 : 1];
  }

  // Resolves a direct endpoint to the peer process: nullptr with the error set on failure.
  Process* peer_of(OpContext& ctx, std::uint16_t activity, const Endpoint& end) {
    Process& self = *ctx.thread.process;
    Process* peer = nullptr;
    if (end.kind == Endpoint::Kind::Link) {
      Process* a = resolve(ctx, end.link[0]);
      Process* b = resolve(ctx, end.link[1]);
      if (a != &self && b != &self) {
        ctx.fail(activity, EPERM); // not one of the link's two processes
        return nullptr;
      }
      peer = a == &self ? b : a;
    } else {
      peer = resolve(ctx, end.process);
    }
    if (!peer) {
      ctx.fail(activity, ESRCH);
      return nullptr;
    }
    if (peer == &self) {
      ctx.fail(activity, EINVAL);
      return nullptr;
    }
    return peer;
  }

  // Chooses the waiting receiver a new message goes to (nullptr: nobody waits for it).
  Thread* pick_receiver(Box& box, const Message& message) {
    std::vector<Thread*> candidates;
    if (box.kind == BoxKind::Link) {
      for (Thread* t = inbox(*box.to).head; t; t = t->wait_next) {
        const Call& call = calls_[t->id];
        if ((call.any || call.peer == box.from) && call.bytes >= message.bytes && !t->process->killed_by)
          candidates.push_back(t);
      }
    } else {
      for (Thread* t = box.receivers.head; t; t = t->wait_next)
        if (calls_[t->id].bytes >= message.bytes && !t->process->killed_by) candidates.push_back(t);
    }
    if (candidates.empty()) return nullptr;
    if (box.policy == Policy::Random) {
      // rng_() is the same on every platform; the modulo bias is below 2^-50 for any sane count.
      return candidates[static_cast<std::size_t>(rng_() % candidates.size())];
    }
    if (box.policy == Policy::RoundRobin) {
      for (Thread* t : candidates)
        if (std::find(box.rotation.begin(), box.rotation.end(), t->id) == box.rotation.end())
          box.rotation.push_back(t->id);
      for (std::size_t k = 0; k < box.rotation.size(); ++k) {
        std::size_t start = box.rotation_last == kNone ? 0 : box.rotation_last + 1;
        std::size_t index = (start + k) % box.rotation.size();
        for (Thread* t : candidates)
          if (t->id == box.rotation[index]) {
            box.rotation_last = index;
            return t;
          }
      }
    }
    return candidates.front();
  }

  IoStatus send_step(OpContext& ctx, std::uint16_t activity, const Endpoint& to, const Message& message) {
    Thread& thread = ctx.thread;
    if (thread.op_progress == 0) {
      ctx.sync();
      Call call;
      call.thread = &thread;
      if (to.kind == Endpoint::Kind::Mailbox) {
        call.box = find(to.mailbox);
        if (!call.box) return fail_call(ctx, activity, ENOENT);
        if (!admit(*call.box, *thread.process)) return fail_call(ctx, activity, EPERM);
      } else {
        Process* peer = peer_of(ctx, activity, to);
        if (!peer) return IoStatus::Done;
        if (peer->live_threads == 0) return fail_call(ctx, activity, ESRCH);
        call.peer = peer;
        call.box = direction(link_between(*thread.process, *peer), *thread.process);
      }
      calls_[thread.id] = call;
      ctx.kernel.hold_call(thread, *this);
      thread.op_progress = 1;
      copy_message(ctx, activity, message.bytes); // into the kernel, or straight into a waiting receiver
      ctx.sync();
    }
    if (thread.process->killed_by) return fail_call(ctx, activity, EINTR); // it never returns anyway
    if (ctx.resumed()) { // the mailbox's lock, again after a wait
      ctx.charge(activity, Primitive::lock_acquire);
      ctx.sync();
    }
    Call& call = calls_[thread.id];
    Box& box = *call.box;
    ObjectLock::Held held = box.lock.take(ctx, activity);
    if (call.taken) {
      thread.script_locals().receiver = call.taker;
      ctx.succeed();
      return IoStatus::Done;
    }
    if (!box.alive) return fail_call(ctx, activity, EIDRM);
    if (call.peer && call.peer->live_threads == 0) return fail_call(ctx, activity, ESRCH);
    if (call.offered) {
      held.release();
      return wait_on(ctx, box.senders, activity);
    }
    Message sent = message;
    if (Thread* receiver = pick_receiver(box, message)) {
      Call& rc = calls_[receiver->id];
      rc.handed = true;
      message_sent(ctx, sent, box.object);
      rc.message = std::move(sent);
      rc.handed_in_kernel = box.capacity != 0; // capacity 0: copied straight into its buffer
      rc.handed_from = &box;
      thread.script_locals().receiver = receiver->display_name();
      held.release(); // unlock, then wake the receiver
      ctx.kernel.wake(ctx.core, *receiver, &thread, activity, WaitResult::Woken);
      ctx.succeed();
      return IoStatus::Done;
    }
    thread.script_locals().receiver.clear();
    if (box.capacity != 0 && (box.capacity == kUnbounded || box.queue.size() < box.capacity)) {
      message_sent(ctx, sent, box.object);
      box.queue.push_back({std::move(sent), next_seq_++, nullptr});
      box.filled(ctx);
      ctx.charge(activity, Primitive::slab_alloc); // the kernel's buffer for the message
      ctx.charge(activity, Primitive::list_op);    // appended to the mailbox's queue
      ctx.succeed();
      return IoStatus::Done;
    }
    if (box.capacity == 0 && !thread.op_nonblocking) { // offered: a receiver takes it from the queue
      call.offered = next_seq_++;
      message_sent(ctx, sent, box.object);
      box.queue.push_back({std::move(sent), call.offered, &thread});
      box.filled(ctx);
    }
    held.release(); // unlocked before sleeping
    return wait_on(ctx, box.senders, activity);
  }

  IoStatus recv_step(OpContext& ctx, std::uint16_t activity, const Endpoint& from, std::uint64_t bytes) {
    Thread& thread = ctx.thread;
    Process& self = *thread.process;
    if (thread.op_progress == 0) {
      ctx.sync();
      Call call;
      call.thread = &thread;
      call.bytes = bytes;
      if (from.kind == Endpoint::Kind::Mailbox) {
        call.box = find(from.mailbox);
        if (!call.box) return fail_call(ctx, activity, ENOENT);
        Box& box = *call.box;
        if (box.kind == BoxKind::Port && box.owner != &self) return fail_call(ctx, activity, EPERM);
        if (!admit(box, self)) return fail_call(ctx, activity, EPERM);
        if (box.policy == Policy::OneReceiver) {
          if (box.receiving && box.receiving != &thread) return fail_call(ctx, activity, EBUSY);
          box.receiving = &thread;
        }
      } else if (from.kind == Endpoint::Kind::Any) {
        call.any = true;
      } else {
        Process* peer = peer_of(ctx, activity, from);
        if (!peer) return IoStatus::Done;
        Link* link = nullptr;
        for (auto& l : links_)
          if ((l->p[0] == peer && l->p[1] == &self) || (l->p[1] == peer && l->p[0] == &self)) link = l.get();
        if (!link && peer->live_threads == 0) return fail_call(ctx, activity, ESRCH);
        if (!link) link = &link_between(self, *peer);
        call.peer = peer;
        call.box = direction(*link, *peer);
      }
      calls_[thread.id] = call;
      ctx.kernel.hold_call(thread, *this);
      thread.op_progress = 1;
    }
    if (self.killed_by) return fail_call(ctx, activity, EINTR); // it never returns anyway
    Call& call = calls_[thread.id];
    if (ctx.resumed() && !call.handed) { // the mailbox's lock
      ctx.charge(activity, Primitive::lock_acquire);
      ctx.sync();
    }
    // A handed message is the receiver's alone: its receive takes no lock.
    ObjectLock::Held held;
    if (!call.handed && call.box) held = call.box->lock.take(ctx, activity);
    if (call.handed) {
      message_received(ctx, call.message, call.handed_from->object, call.message.bytes);
      if (call.handed_in_kernel) copy_message(ctx, activity, call.message.bytes);
      thread.script_locals().message = call.message;
      ctx.succeed(static_cast<std::int64_t>(call.message.bytes));
      return IoStatus::Done;
    }
    if (call.box && !call.box->alive) return fail_call(ctx, activity, EIDRM);
    // The oldest message waiting for this receive.
    Box* source = nullptr;
    if (call.any) {
      ctx.sync(); // nothing is pending here: the search and the lock below see the same state
      for (auto& link : links_)
        for (int d = 0; d < 2; ++d) {
          Box& box = *link->dir[d];
          if (box.to == &self && !box.queue.empty() &&
              (!source || box.queue.front().seq < source->queue.front().seq))
            source = &box;
        }
    } else if (!call.box->queue.empty()) {
      source = call.box.get();
    }
    // A receive from any link: the lock of the link it takes from (no cycles are pending here: the
    // take lets no other core act between the search and the lock).
    if (source && !held.held()) held = source->lock.take(ctx, activity);
    if (source) {
      if (source->queue.front().message.bytes > bytes) return fail_call(ctx, activity, E2BIG);
      Pending pending = std::move(source->queue.front());
      source->queue.pop_front();
      ctx.charge(activity, Primitive::list_op); // taken off the mailbox's queue
      if (!pending.rendezvous_sender) ctx.charge(activity, Primitive::slab_free); // its kernel buffer
      message_received(ctx, pending.message, source->object, pending.message.bytes);
      source->filled(ctx);
      held.release(); // unlock, then the wakeup and the copy out
      if (pending.rendezvous_sender) {
        Call& sc = calls_[pending.rendezvous_sender->id];
        sc.taken = true;
        sc.taker = thread.display_name();
        sc.offered = 0;
        ctx.kernel.wake(ctx.core, *pending.rendezvous_sender, &thread, activity, WaitResult::Woken);
      } else if (source->capacity != 0 && source->capacity != kUnbounded) {
        ctx.kernel.wake_one(ctx.core, source->senders, &thread, activity); // room for one more
      }
      copy_message(ctx, activity, pending.message.bytes);
      thread.script_locals().message = pending.message;
      ctx.succeed(static_cast<std::int64_t>(pending.message.bytes));
      return IoStatus::Done;
    }
    if (call.peer && call.peer->live_threads == 0) return fail_call(ctx, activity, ESRCH);
    WaitQueue& queue = call.box && call.box->kind != BoxKind::Link ? call.box->receivers : inbox(self);
    held.release(); // unlocked before sleeping
    return wait_on(ctx, queue, activity);
  }

  // A call finished: withdraw a rendezvous message nobody took, let the next receiver in.
  void end_call(OpContext& ctx) {
    auto it = calls_.find(ctx.thread.id);
    if (it == calls_.end()) return;
    release(ctx, it->second);
    calls_.erase(it);
  }

  void release(OpContext& ctx, const Call& call) {
    if (!call.box) return;
    if (call.offered && !call.taken) {
      auto& queue = call.box->queue;
      for (auto q = queue.begin(); q != queue.end(); ++q)
        if (q->seq == call.offered) {
          message_dropped(ctx, call.box->object, 1, q->message.bytes,
                          "a rendezvous send ended (timeout, signal or kill) before a receiver took it");
          queue.erase(q);
          call.box->filled(ctx);
          break;
        }
    }
    if (call.box->receiving == call.thread) call.box->receiving = nullptr;
  }

public:
  // A call that never finishes (its caller was killed; the kernel cancels it at once): a
  // rendezvous message nobody took is withdrawn (the send never completed), a "one-receiver"
  // mailbox is free again, and a message handed to a receiver that then died goes to the next
  // waiting receiver, or back to the head of the queue for the next receive.
  void cancel(OpContext& ctx, Thread& caller, std::uint16_t activity) override {
    auto it = calls_.find(caller.id);
    if (it == calls_.end()) return;
    Call call = std::move(it->second);
    calls_.erase(it);
    release(ctx, call);
    if (call.handed && call.handed_from && call.handed_from->alive)
      pass_on(ctx, *call.handed_from, call.message, activity);
    else if (call.handed && call.handed_from)
      message_dropped(ctx, call.handed_from->object, 1, call.message.bytes,
                      "the receiver's process was killed holding it, and its mailbox is gone");
  }

private:
  // A message taken back from a receiver that died: the next receiver gets it.
  void pass_on(OpContext& ctx, Box& box, const Message& message, std::uint16_t activity) {
    if (Thread* receiver = pick_receiver(box, message)) {
      Call& rc = calls_[receiver->id];
      rc.handed = true;
      rc.message = message;
      rc.handed_in_kernel = true; // it is in the kernel now: the receiver copies it out
      rc.handed_from = &box;
      ctx.kernel.wake(ctx.core, *receiver, &ctx.thread, activity, WaitResult::Woken);
      return;
    }
    box.queue.push_front({message, 0, nullptr}); // older than anything queued
    box.filled(ctx);
  }

  std::map<std::string, std::shared_ptr<Box>> names_;
  std::vector<std::shared_ptr<Box>> boxes_; // creation order, for the listing
  std::vector<std::shared_ptr<Link>> links_;
  std::map<std::string, std::pair<std::uint64_t, std::string>> declared_links_; // capacity, channel
  std::map<std::uint32_t, std::unique_ptr<WaitQueue>> inboxes_;
  std::map<std::uint32_t, Call> calls_;
  std::uint64_t next_seq_ = 1;
  std::mt19937_64 rng_;
};

// ---- Load-time reading -------------------------------------------------------------------------

// A capacity: a whole number of messages (0: rendezvous) or "unbounded".
std::uint64_t read_capacity(const json& value, const std::string& file, const std::string& path) {
  if (value.is_string() && value.get<std::string>() == "unbounded") return kUnbounded;
  if ((value.is_number_unsigned() || value.is_number_integer()) && value.get<std::int64_t>() >= 0 &&
      value.get<std::int64_t>() <= 1'000'000'000)
    return value.get<std::uint64_t>();
  fail_at(file, path,
          "invalid value " + value.dump() +
              "; expected a whole number of messages from 0 (a rendezvous) to 1000000000, or \"unbounded\"");
}

ProcRef read_process(const std::string& text, const std::string& path, const CompileContext& ctx,
                     bool any_allowed) {
  auto ref = parse_proc(text);
  if (!ref ||
      std::find(ctx.process_names.begin(), ctx.process_names.end(), ref->name) == ctx.process_names.end())
    fail_at(ctx.read.file, path,
            "unknown process \"" + text + "\"" + did_you_mean(text, ctx.process_names) +
                "; accepted: " + (any_allowed ? std::string("\"any\" or ") : std::string()) +
                "a process (NAME, or NAME[K] for one copy): " + join_list(ctx.process_names) +
                elsewhere_note(ctx, ref ? ref->name : text));
  return *ref;
}

// Mailbox names used by ops must be declared (channels) or created by an mb_create somewhere in
// the scenario: checked once every script is compiled.
struct NameCheck {
  struct Data {
    std::string file;
    std::vector<std::string> channels;
    std::vector<std::string> created;
    std::vector<std::pair<std::string, std::string>> uses; // name, path
  };
  std::shared_ptr<Data> data;
  void operator()() const {
    std::vector<std::string> known = data->channels;
    std::unordered_set<std::string> names(known.begin(), known.end()); // linear in the script's size
    for (const auto& name : data->created)
      if (names.insert(name).second) known.push_back(name);
    for (const auto& [name, path] : data->uses) {
      if (names.count(name)) continue;
      fail_at(data->file, path,
              "unknown mailbox \"" + name + "\"" + did_you_mean(name, known) +
                  (known.empty()
                       ? std::string("; the scenario declares no channels and no mb_create creates one")
                       : "; mailboxes (channels, or created by mb_create): " + join_list(known)));
    }
  }
};

// Mailbox names are matched at load (every use against the mb_creates and channels), so a name
// cannot be filled in as the call runs, as paths and queue names are: braces are refused rather
// than taken literally.
void reject_placeholder(const std::string& name, const std::string& where, const CompileContext& ctx) {
  if (name.find_first_of("{}") != std::string::npos)
    fail_at(ctx.read.file, where,
            "mailbox name \"" + name +
                "\" has braces: mailbox names are fixed when the scenario loads (each use is checked against "
                "mb_create and the channels), so {NAME} placeholders are not filled in here; give the name "
                "itself");
}

NameCheck::Data& name_check(CompileContext& ctx) {
  for (auto& check : ctx.after_scripts)
    if (auto* found = check.target<NameCheck>()) return *found->data;
  NameCheck check{std::make_shared<NameCheck::Data>()};
  check.data->file = ctx.read.file;
  check.data->channels = ctx.channel_names;
  ctx.after_scripts.push_back(check);
  return *ctx.after_scripts.back().target<NameCheck>()->data;
}

ParamSpec optional_string(const std::string& name, const std::string& description, const std::string& note) {
  return {name, ParamType::String, nullptr, "", description, std::nullopt, std::nullopt, {}, note};
}

ParamSpec capacity_param() {
  return {"capacity", ParamType::Scalar, "unbounded", "messages",
          "how many messages it buffers: 0 (a rendezvous: a send completes when a receiver takes the "
          "message), N (a sender waits while N are queued) or \"unbounded\" (a sender never waits)"};
}

ParamSpec policy_param() {
  return {"policy",
          ParamType::Choice,
          "shared",
          "",
          "several receivers: shared (the first waiting receiver gets each message), pair (at most two "
          "processes use it: a third gets EPERM), one-receiver (one receive at a time: another gets EBUSY), "
          "round-robin or random (the system picks a waiting receiver in turn, or at random; the sender "
          "learns who in {receiver})",
          std::nullopt,
          std::nullopt,
          policy_names()};
}

// The textbook mailbox sets no size limit of its own; 1 GiB keeps a run's memory sane.
constexpr std::int64_t kMaxMailboxMessage = std::int64_t{1} << 30;

ParamSpec message_bytes_param(const json& default_value, const std::string& what) {
  return variable_field({"bytes", ParamType::Bytes, default_value, "bytes", what, 0.0,
                         static_cast<double>(kMaxMailboxMessage)});
}

// ---- Ops ---------------------------------------------------------------------------------------

class CreateOp : public SyscallOp {
public:
  CreateOp(std::uint16_t activity, std::string name, std::uint64_t capacity, Policy policy, bool port)
      : SyscallOp(activity, {}), name_(std::move(name)), capacity_(capacity), policy_(policy), port_(port) {}
  IoStatus call(OpContext& ctx) const override {
    return ctx.kernel.ipc<MailboxState>().create_op(ctx, activity, name_, capacity_, policy_, port_);
  }

private:
  std::string name_;
  std::uint64_t capacity_;
  Policy policy_;
  bool port_;
};

class DestroyOp : public SyscallOp {
public:
  DestroyOp(std::uint16_t activity, std::string name) : SyscallOp(activity, {}), name_(std::move(name)) {}
  IoStatus call(OpContext& ctx) const override {
    return ctx.kernel.ipc<MailboxState>().destroy_op(ctx, activity, name_);
  }

private:
  std::string name_;
};

class MbSendOp : public SyscallOp {
public:
  MbSendOp(std::uint16_t activity, CallTimeout timeout, Endpoint to, IntRef bytes, Message message)
      : SyscallOp(activity, timeout), to_(std::move(to)), bytes_(std::move(bytes)),
        message_(std::move(message)) {}
  IoStatus call(OpContext& ctx) const override {
    std::int64_t bytes = 0;
    bytes_.read(ctx, bytes); // checked by arguments_valid
    Message m = message_;
    m.bytes = static_cast<std::uint64_t>(bytes);
    m.sender = static_cast<std::int32_t>(ctx.thread.id);
    return ctx.kernel.ipc<MailboxState>().send(ctx, activity, to_, m);
  }

protected:
  bool arguments_valid(OpContext& ctx) const override {
    std::int64_t v = 0;
    return bytes_.resolve_field(ctx, v, "mb_send", "bytes", 0, kMaxMailboxMessage, true);
  }

private:
  Endpoint to_;
  IntRef bytes_;
  Message message_;
};

class MbRecvOp : public SyscallOp {
public:
  MbRecvOp(std::uint16_t activity, CallTimeout timeout, Endpoint from, IntRef bytes)
      : SyscallOp(activity, timeout), from_(std::move(from)), bytes_(std::move(bytes)) {}
  IoStatus call(OpContext& ctx) const override {
    std::int64_t bytes = 0;
    bytes_.read(ctx, bytes); // checked by arguments_valid
    return ctx.kernel.ipc<MailboxState>().recv(ctx, activity, from_, static_cast<std::uint64_t>(bytes));
  }

protected:
  bool arguments_valid(OpContext& ctx) const override {
    std::int64_t v = 0;
    return bytes_.resolve_field(ctx, v, "mb_recv", "bytes", 0, kMaxMailboxMessage, true);
  }

private:
  Endpoint from_;
  IntRef bytes_;
};

std::string mailbox_field(const json& f, const std::string& path, CompileContext& ctx) {
  auto name = f.at("mailbox").get<std::string>();
  reject_placeholder(name, join_path(path, "mailbox"), ctx);
  name_check(ctx).uses.push_back({name, join_path(path, "mailbox")});
  return name;
}

// Either a process (`process_key`: "to" or "from") or "mailbox", exactly one.
Endpoint read_endpoint(const json& f, const std::string& path, CompileContext& ctx,
                       const std::string& process_key) {
  bool has_process = f.contains(process_key), has_mailbox = f.contains("mailbox");
  const std::string direct = process_key == "to" ? "\"to\" (a process: direct communication)"
                                                 : "\"from\" (a process or \"any\": direct communication)";
  if (has_process && has_mailbox)
    fail_at(ctx.read.file, path, "give either " + direct + " or \"mailbox\" (indirect), not both");
  if (!has_process && !has_mailbox)
    fail_at(ctx.read.file, path, "missing " + direct + " or \"mailbox\" (a mailbox: indirect communication)");
  Endpoint end;
  if (has_mailbox) {
    end.mailbox = mailbox_field(f, path, ctx);
    return end;
  }
  auto text = f.at(process_key).get<std::string>();
  if (process_key == "from" && text == "any") {
    end.kind = Endpoint::Kind::Any;
    return end;
  }
  end.kind = Endpoint::Kind::Process;
  end.process = read_process(text, join_path(path, process_key), ctx, process_key == "from");
  return end;
}

const OpRegistrar register_create_op(
    {"mb_create",
     "create a mailbox (indirect communication) owned by the calling process; destroyed by mb_destroy or "
     "when the owner exits",
     {"mb_create op",
      "",
      {{"mailbox", ParamType::String, nullptr, "", "its unique name"},
       capacity_param(),
       policy_param(),
       {"port", ParamType::Bool, false, "",
        "a port: its owner is its only receiver (a receive by another process fails with EPERM)"}}},
     [](const json& f, const std::string& path, CompileContext& ctx, Program& p, std::uint16_t a) {
       auto name = f.at("mailbox").get<std::string>();
       reject_placeholder(name, join_path(path, "mailbox"), ctx);
       name_check(ctx).created.push_back(name);
       auto capacity = read_capacity(f.at("capacity"), ctx.read.file, join_path(path, "capacity"));
       auto policy = f.at("policy").get<std::string>();
       bool port = f.at("port").get<bool>();
       if (port && policy != "shared")
         fail_at(ctx.read.file, join_path(path, "policy"),
                 "a port has one receiver, its owner: drop \"policy\" (or \"port\")");
       p.ops.push_back(std::make_unique<CreateOp>(a, name, capacity, policy_from(policy), port));
     }});

const OpRegistrar register_destroy_op(
    {"mb_destroy",
     "destroy a mailbox the calling process owns; its waiting senders and receivers fail with EIDRM",
     {"mb_destroy op", "", {{"mailbox", ParamType::String, nullptr, "", "the mailbox's name"}}},
     [](const json& f, const std::string& path, CompileContext& ctx, Program& p, std::uint16_t a) {
       p.ops.push_back(std::make_unique<DestroyOp>(a, mailbox_field(f, path, ctx)));
     }});

const OpRegistrar register_send_op(
    {"mb_send",
     "send a message to a process (direct: the link is set up on first use) or to a mailbox (indirect); "
     "{receiver} names who got it when the system chose a waiting receiver",
     {"mb_send op",
      "",
      {optional_string("to", "the receiving process (NAME, or NAME[K]): direct communication", "none"),
       optional_string("mailbox", "the mailbox: indirect communication", "none"),
       message_bytes_param(64, "the message's size: what is copied"),
       {"text", ParamType::String, "", "", "text carried for print ({msg.text} at the receiver)"},
       timeout_param()}},
     [](const json& f, const std::string& path, CompileContext& ctx, Program& p, std::uint16_t a) {
       Endpoint to = read_endpoint(f, path, ctx, "to");
       Message m;
       m.text = f.at("text").get<std::string>();
       p.ops.push_back(std::make_unique<MbSendOp>(a, read_timeout(f, path, ctx), std::move(to),
                                                  read_int_field(f, "bytes", path, ctx), m));
     }});

const OpRegistrar register_recv_op(
    {"mb_recv",
     "receive a message from a process, from \"any\" (the sender is then {msg.sender}) or from a mailbox; "
     "{result} is its size",
     {"mb_recv op",
      "",
      {optional_string("from", "the sending process, or \"any\": direct communication", "none"),
       optional_string("mailbox", "the mailbox: indirect communication", "none"),
       message_bytes_param("1MiB", "the receive buffer's size: a longer message fails with E2BIG"),
       timeout_param()}},
     [](const json& f, const std::string& path, CompileContext& ctx, Program& p, std::uint16_t a) {
       Endpoint from = read_endpoint(f, path, ctx, "from");
       p.ops.push_back(std::make_unique<MbRecvOp>(a, read_timeout(f, path, ctx), std::move(from),
                                                  read_int_field(f, "bytes", path, ctx)));
     }});

// ---- The channel -------------------------------------------------------------------------------

class MailboxChannel : public Channel {
public:
  explicit MailboxChannel(Endpoint end) : end_(std::move(end)) {}
  IoStatus send(OpContext& ctx, std::uint16_t activity, const Message& message) override {
    return ctx.kernel.ipc<MailboxState>().send(ctx, activity, end_, message);
  }
  IoStatus recv(OpContext& ctx, std::uint16_t activity, std::uint64_t bytes) override {
    return ctx.kernel.ipc<MailboxState>().recv(ctx, activity, end_, bytes);
  }

private:
  Endpoint end_;
};

// "a,b" -> the two processes of a declared link.
std::optional<std::pair<ProcRef, ProcRef>> parse_link(const std::string& text) {
  auto comma = text.find(',');
  if (comma == std::string::npos) return std::nullopt;
  auto trim = [](std::string s) {
    while (!s.empty() && s.front() == ' ') s.erase(s.begin());
    while (!s.empty() && s.back() == ' ') s.pop_back();
    return s;
  };
  auto a = parse_proc(trim(text.substr(0, comma)));
  auto b = parse_proc(trim(text.substr(comma + 1)));
  if (!a || !b || a->name.empty() || b->name.empty() || a->key() == b->key()) return std::nullopt;
  return std::make_pair(*a, *b);
}

const MechanismRegistrar register_mailbox(
    {"mailbox",
     "textbook message passing: a mailbox named after the channel (indirect), or with \"link\" the direct "
     "link between two processes",
     {"mailbox channel",
      "",
      {capacity_param(), policy_param(),
       optional_string("link",
                       "\"P,Q\": the channel is the direct link between processes P and Q (its capacity "
                       "applies to mb_send/mb_recv between them too); send goes to the other process",
                       "none: a mailbox named after the channel")}},
     [](const json& params, const std::string& path, const ReadContext& ctx) {
       read_capacity(params.at("capacity"), ctx.file, join_path(path, "capacity"));
       if (params.contains("link")) {
         if (!parse_link(params.at("link").get<std::string>()))
           fail_at(ctx.file, join_path(path, "link"),
                   "invalid value " + params.at("link").dump() +
                       "; expected two different processes as \"P,Q\", such as \"courier,xiaoming\"");
         if (params.at("policy") != "shared")
           fail_at(ctx.file, join_path(path, "policy"),
                   "a direct link has exactly two processes and one receiver each way: drop \"policy\"");
         // Named here, with the file and place, rather than when the kernel builds the channel.
         auto link = *parse_link(params.at("link").get<std::string>());
         if (ctx.process_names)
           for (const ProcRef* ref : {&link.first, &link.second})
             if (std::find(ctx.process_names->begin(), ctx.process_names->end(), ref->name) ==
                 ctx.process_names->end())
               fail_at(ctx.file, join_path(path, "link"),
                       "unknown process \"" + ref->name + "\"" + did_you_mean(ref->name, *ctx.process_names) +
                           "; processes: " + join_list(*ctx.process_names));
       }
     },
     [](const ChannelSpec& spec, Kernel& kernel) -> std::unique_ptr<Channel> {
       auto& state = kernel.ipc<MailboxState>();
       auto capacity = read_capacity(spec.params.at("capacity"), "", "");
       Endpoint end;
       if (spec.params.contains("link")) {
         auto link = *parse_link(spec.params.at("link").get<std::string>());
         for (const ProcRef* ref : {&link.first, &link.second}) {
           bool known = false;
           std::vector<std::string> names;
           for (const auto& p : kernel.model().processes) {
             names.push_back(p->name);
             known = known || p->name == ref->name;
           }
           if (!known)
             throw UserError("channel \"" + spec.name + "\": link: unknown process \"" + ref->name + "\"" +
                             did_you_mean(ref->name, names) + "; processes: " + join_list(names));
         }
         state.declare_link(link.first, link.second, capacity, spec.name);
         end.kind = Endpoint::Kind::Link;
         end.link[0] = link.first;
         end.link[1] = link.second;
       } else {
         state.create(spec.name, BoxKind::Mailbox, capacity,
                      policy_from(spec.params.at("policy").get<std::string>()), nullptr);
         end.mailbox = spec.name;
       }
       return std::make_unique<MailboxChannel>(std::move(end));
     }});

} // namespace

} // namespace ipcsim
