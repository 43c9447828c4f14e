// Unix domain sockets (AF_UNIX), stream and datagram: the socketpair, socket, bind, listen, accept,
// connect, sendto, recvfrom and shutdown ops, the generic read/write/close/fcntl on sockets, and the
// channels "unix_stream" and "unix_dgram". Every rule follows Linux's net/unix/af_unix.c; the
// model, its simplifications and every charge are in docs/unix-socket.md.
#include "call_name.hpp"
#include "error.hpp"
#include "fs.hpp"
#include "ipc.hpp"
#include "lock.hpp"
#include "names.hpp"

#include <algorithm>
#include <bit>
#include <deque>

namespace ipcsim {
namespace {

enum class SockType : std::uint8_t { Stream, Dgram };

constexpr std::uint64_t kDefaultBuffer = 212992; // net.core.wmem_default: a new socket's sk_sndbuf
constexpr std::uint32_t kDefaultQlen = 10;       // net.unix.max_dgram_qlen
constexpr std::uint64_t kSkbMax =
    3776 + 32768; // SKB_MAX_HEAD(0) + UNIX_SKB_FRAGS_SZ: a stream sk_buff's payload
constexpr std::uint64_t kDgramOverhead = 32; // unix_dgram_sendmsg: len > sk_sndbuf - 32 is EMSGSIZE
constexpr std::uint32_t kSomaxconn = 4096;   // net.core.somaxconn: listen() caps its backlog here

struct Socket;

// An sk_buff as sock_alloc_send_pskb allocates it: its head (the struct sk_buff, from
// skbuff_head_cache) and its linear data (kmalloc), two slab objects, and the rest of the payload
// in page fragments. alloc_skb_with_frags takes the fragments' pages in blocks of decreasing
// order, the largest that fits what is left, at most order 3 (32 KiB): 40 KiB is 32 KiB then 8 KiB.
struct SkbShape {
  std::uint64_t linear = 0;      // payload bytes in the head's data
  std::uint64_t frag_pages = 0;  // bytes of the fragments' pages (whole pages)
  std::uint64_t frag_blocks = 0; // page allocations for them
  // What it counts against its sender's send buffer (skb->truesize, added to sk_wmem_alloc by
  // skb_set_owner_w): the struct sk_buff (cache-aligned, 256 bytes), the kmalloc size class of its
  // data (the linear payload cache-aligned plus the 320 bytes of skb_shared_info; a power of two,
  // at least 512 here, and whole pages of a power-of-two order above 8 KiB) and the fragments'
  // pages. Measured on Linux 6.18 (`hostbench-probe sndbuf`): 768 bytes up to 192 bytes of
  // payload, so 278 small writes fill the default buffer.
  std::uint64_t truesize() const {
    return 256 + std::bit_ceil(std::max<std::uint64_t>((linear + 63) / 64 * 64 + 320, 512)) + frag_pages;
  }
};
// One sk_buff queued on a socket's receive queue.
struct Skb {
  Message message;            // message.bytes: the payload not yet read
  SkbShape shape;             // what it was allocated as: what consume_skb frees
  bool started = false;       // stream: a read has taken its first byte (and its text)
  std::weak_ptr<Socket> from; // the sender, whose send buffer it is charged to
  std::string from_path;      // the sender's address ("" when unbound)
};

struct Socket : std::enable_shared_from_this<Socket> {
  Socket(std::uint32_t id, SockType type, std::uint64_t buffer, std::uint32_t qlen)
      : id(id), type(type), buffer(buffer), qlen(qlen), object("unix socket " + std::to_string(id)),
        readers(label("waiting for data")), room(label("waiting for room in its receive queue")),
        wmem_wait(label("waiting for send buffer space")), acceptors(label("waiting for a connection")),
        connectors(label("waiting for room in its backlog")) {}
  std::string label(const std::string& what) const {
    return "unix socket " + std::to_string(id) + ": " + what;
  }
  std::string name() const { return type == SockType::Stream ? "stream" : "dgram"; }

  std::uint32_t id;
  SockType type;
  std::uint64_t buffer; // sk_sndbuf
  std::uint32_t qlen;   // sk_max_ack_backlog of a datagram socket (max_dgram_qlen)
  std::string object;   // what the timeline calls it, as the listing's socket column
  std::string path;     // its address: bound, or inherited from the listener by an accepted socket
  bool listening = false;
  std::uint32_t backlog = 0;
  bool connected = false; // a stream socket that has had a peer (ESTABLISHED); a datagram one with a peer
  std::weak_ptr<Socket> peer;
  bool closed = false;
  bool rcv_shutdown = false, snd_shutdown = false;
  int pending_error = 0; // sk_err: ECONNRESET when the peer closed with data unread
  std::deque<Skb> rx;
  std::uint64_t rx_bytes = 0;        // payload bytes in rx
  std::uint64_t reserved = 0;        // stream bytes being copied in by a writer, not yet queued
  std::uint32_t reserved_dgrams = 0; // datagrams being copied in, not yet queued
  std::uint64_t wmem = 0;            // sk_wmem_alloc: the truesize of its sk_buffs still queued somewhere
  // Its receive queue's fill for the timeline: bytes of a stream, datagrams.
  void filled(OpContext& ctx) const {
    if (type == SockType::Stream)
      fill_changed(ctx, object, "bytes", rx_bytes);
    else
      fill_changed(ctx, object, "datagrams", rx.size());
  }
  std::deque<std::shared_ptr<Socket>> pending; // a listener's connections not yet accepted
  WaitQueue readers, room, wmem_wait, acceptors, connectors;
  // unix_state_lock and its receive queue's lock, as one: a sender holds them while it queues an
  // sk_buff here (after copying it in), a receiver while it finds and unlinks one (it copies out
  // after: the data is visible from the end of the sender's copy). Five lines shared (struct
  // unix_sock, struct sock, net/unix/af_unix.c): unix_state_lock's; sk_receive_queue (its lock, ends
  // and qlen); the sk_buff's list and length fields, filled by the sender and unlinked by the
  // receiver; the sender's sk_wmem_alloc, which its allocation raises and the receiver's
  // consume_skb (sock_wfree) lowers; the sender's struct pid, whose count scm_pid raises and
  // unix_destruct_scm lowers.
  ObjectLock lock{5};
  // The core of the last receive here, whose frees the sender's next sk_buffs reuse (-1: none yet).
  std::int32_t consumed_on = -1;
};

// Messages in a receive queue none of whose bytes was read: a stream write's first sk_buff (the
// later ones carry no id), every datagram.
std::uint64_t unread_messages(const Socket& s) {
  std::uint64_t n = 0;
  for (const auto& skb : s.rx) n += skb.message.id != 0 && !skb.started;
  return n;
}

// The file-system entry of a bound socket points here; the socket may be gone (ECONNREFUSED).
struct Binding {
  std::weak_ptr<Socket> socket;
};

class UnixState : public IpcState {
public:
  explicit UnixState(Kernel&) {}
  std::shared_ptr<Socket> make(SockType type, std::uint64_t buffer, std::uint32_t qlen) {
    // Forget closed sockets now and then, when the list has doubled since the last time: each
    // make stays O(1) amortised (sweeping at every make was quadratic in live sockets).
    if (sockets_.size() >= sweep_at_) {
      std::erase_if(sockets_, [](const std::weak_ptr<Socket>& s) { return s.expired(); });
      sweep_at_ = std::max<std::size_t>(64, 2 * sockets_.size());
    }
    auto socket = std::make_shared<Socket>(next_id_++, type, buffer, qlen);
    sockets_.push_back(socket);
    return socket;
  }
  void list(std::vector<IpcTable>& tables) const override {
    IpcTable table{
        "Unix domain sockets (ss -x)", {"netid", "state", "recv-q", "send-q", "local", "socket", "peer"}, {}};
    for (const auto& weak : sockets_) {
      auto s = weak.lock();
      if (!s || s->closed) continue;
      auto peer = s->peer.lock();
      std::string state = s->listening ? "LISTEN" : (s->connected ? "ESTAB" : "UNCONN");
      std::uint64_t recv_q = s->listening ? s->pending.size() : s->rx_bytes;
      std::uint64_t send_q = s->listening ? s->backlog : s->wmem; // unix_diag: sk_wmem_alloc_get
      table.rows.push_back({s->type == SockType::Stream ? "u_str" : "u_dgr", state, std::to_string(recv_q),
                            std::to_string(send_q), s->path.empty() ? "*" : s->path, std::to_string(s->id),
                            peer && !peer->closed ? std::to_string(peer->id) : "*"});
    }
    if (!table.rows.empty()) tables.push_back(table);
  }
  void held(std::vector<Held>& out) const override {
    for (const auto& weak : sockets_)
      if (auto s = weak.lock(); s && s->rx_bytes + s->rx.size() > 0)
        out.push_back({s->object, unread_messages(*s), s->rx_bytes});
  }

private:
  std::vector<std::weak_ptr<Socket>> sockets_;
  std::size_t sweep_at_ = 64;
  std::uint32_t next_id_ = 1;
};

// ---- Costs ------------------------------------------------------------------------------------

// Looking a path up (bind, connect, sendto with an address): a name lookup with a permission check.
void charge_lookup(OpContext& ctx, std::uint16_t a) { ctx.charge(a, Primitive::capability_lookup); }
constexpr std::uint64_t kPage = 4096;
constexpr std::uint64_t kMaxFragOrderPages = 8; // order 3 (UNIX_SKB_FRAGS_SZ; PAGE_ALLOC_COSTLY_ORDER)
constexpr std::uint64_t kMaxSkbFrags = 17;      // MAX_SKB_FRAGS
std::uint64_t page_align(std::uint64_t n) { return (n + kPage - 1) / kPage * kPage; }
SkbShape skb_shape(std::uint64_t linear, std::uint64_t frag_pages) {
  const std::uint64_t pages = frag_pages / kPage;
  return {linear, frag_pages,
          pages / kMaxFragOrderPages + static_cast<std::uint64_t>(std::popcount(pages % kMaxFragOrderPages))};
}
// SKB_MAX_HEAD(0): the linear part a stream skb gets (a page less skb_shared_info), and
// SKB_MAX_ALLOC: a datagram's (an order-2 allocation less it).
constexpr std::uint64_t kStreamLinear = 4096 - 320, kDgramLinear = 16384 - 320;
// unix_stream_sendmsg: what goes beyond SKB_MAX_HEAD(0) goes into fragments, rounded up to pages
// but never more than the chunk (so 3777 bytes are all in one page), the rest into the head.
SkbShape stream_skb(std::uint64_t chunk) {
  const std::uint64_t frags = std::min(chunk, page_align(chunk > kStreamLinear ? chunk - kStreamLinear : 0));
  return skb_shape(chunk - frags, page_align(frags));
}
// unix_dgram_sendmsg: beyond SKB_MAX_ALLOC, whole pages of fragments, at most MAX_SKB_FRAGS of them.
SkbShape dgram_skb(std::uint64_t bytes) {
  const std::uint64_t frags =
      bytes > kDgramLinear ? page_align(std::min(bytes - kDgramLinear, kMaxSkbFrags * kPage)) : 0;
  return skb_shape(bytes - frags, frags);
}
void charge_skb(OpContext& ctx, std::uint16_t a, const SkbShape& skb = {}) {
  const CostModel& costs = ctx.kernel.model().costs;
  ctx.charge(a, Primitive::slab_alloc, 2 * costs.cycles(Primitive::slab_alloc));
  ctx.charge(a, Primitive::page_alloc, costs.cycles(Primitive::page_alloc) * skb.frag_blocks);
}
// consume_skb / skb_free_datagram: the same objects and blocks back.
void charge_skb_free(OpContext& ctx, std::uint16_t a, const SkbShape& skb) {
  const CostModel& costs = ctx.kernel.model().costs;
  ctx.charge(a, Primitive::slab_free, 2 * costs.cycles(Primitive::slab_free));
  ctx.charge(a, Primitive::page_free, costs.cycles(Primitive::page_free) * skb.frag_blocks);
}

// The entry of a send or receive on a socket, once per call: the descriptor
// (sockfd_lookup_light), the socket layer (sock_sendmsg / sock_recvmsg: the msghdr and iov_iter,
// the proto_ops call, scm_send / scm_recv) and its LSM hook (security_socket_sendmsg / _recvmsg).
void charge_socket_entry(OpContext& ctx, std::uint16_t a) {
  if (!ctx.first_run()) return;
  ctx.charge(a, Primitive::fd_lookup);
  ctx.charge(a, Primitive::socket_dispatch);
  ctx.charge(a, Primitive::security_hook);
}
// A message's credentials: the pid and cred references unix_scm_to_skb takes for the skb (send)
// and scm_recv / the skb's destructor drops (receive).
void charge_credentials(OpContext& ctx, std::uint16_t a) {
  ctx.charge(a, Primitive::atomic_rmw, 2 * ctx.kernel.model().costs.cycles(Primitive::atomic_rmw));
}
// Queueing an skb on the peer: unix_state_lock(other), then skb_queue_tail under the receive
// queue's own lock (the caller holds the peer's ObjectLock).
void charge_enqueue(OpContext& ctx, std::uint16_t a) {
  ctx.charge(a, Primitive::lock_acquire, 2 * ctx.kernel.model().costs.cycles(Primitive::lock_acquire));
  ctx.charge(a, Primitive::list_op);
}
// Copying a payload between user and kernel: copy_setup + ceil(bytes / rate) (docs/machine.md);
// `queued`: the receive queue's bytes with this datagram's (charge_copy).
void charge_data(OpContext& ctx, std::uint16_t a, std::uint64_t bytes, std::uint64_t queued,
                 std::int32_t written_on = -1) {
  charge_copy(ctx, a, bytes, 0, queued, written_on);
}

// sock_wfree: a consumed or purged sk_buff's truesize leaves its sender's send buffer.
void uncharge_wmem(const Skb& skb) {
  if (auto from = skb.from.lock()) from->wmem -= std::min(from->wmem, skb.shape.truesize());
}
// unix_write_space, after sock_wfree: the sender's waiters are woken only once the socket is
// writable again, unix_writable(): sk_wmem_alloc << 2 <= sk_sndbuf, a quarter of its buffer. They
// wait on sk_sleep, which is also where a stream socket's readers wait, and a stream reader's
// waiter (unix_stream_data_wait: prepare_to_wait, autoremove_wake_function) takes every wakeup: a
// sender blocked in read() on the same socket wakes, finds nothing and sleeps again. (A datagram
// reader's receiver_wake_function ignores EPOLLOUT.)
void wake_writers(OpContext& ctx, std::uint16_t a, const std::weak_ptr<Socket>& sender) {
  auto from = sender.lock();
  if (!from || from->wmem * 4 > from->buffer) return;
  ctx.kernel.wake_all(ctx.core, from->wmem_wait, &ctx.thread, a);
  if (from->type == SockType::Stream) ctx.kernel.wake_all(ctx.core, from->readers, &ctx.thread, a);
}
void release_wmem(OpContext& ctx, std::uint16_t a, const Skb& skb) {
  uncharge_wmem(skb);
  wake_writers(ctx, a, skb.from);
}

// ---- Blocking ---------------------------------------------------------------------------------

// Waits, unless part of the call is already done and it may not wait (non-blocking, timed out):
// then the call returns what it moved, as Linux's stream calls do.
IoStatus wait_partial(OpContext& ctx, WaitQueue& queue, std::uint16_t a, int timeout_error) {
  Thread& t = ctx.thread;
  if (t.op_progress > 0 &&
      (t.op_nonblocking || t.wait_result == WaitResult::TimedOut || ctx.now() >= t.op_deadline)) {
    ctx.succeed(static_cast<std::int64_t>(t.op_progress));
    return IoStatus::Done;
  }
  return wait_on(ctx, queue, a, timeout_error);
}

IoStatus done(OpContext& ctx, std::uint64_t value) {
  ctx.succeed(static_cast<std::int64_t>(value));
  return IoStatus::Done;
}

// Resolves a path to a live socket of `type` (unix_find_bsd): ENOENT, ECONNREFUSED, EPROTOTYPE.
int lookup(OpContext& ctx, const std::string& path, SockType type, std::shared_ptr<Socket>& out) {
  FsEntry* entry = ctx.kernel.ipc<FileSystem>().find(path);
  if (!entry) return ENOENT;
  if (entry->kind != FileKind::Socket || !entry->object) return ECONNREFUSED;
  auto socket = std::static_pointer_cast<Binding>(entry->object)->socket.lock();
  if (!socket || socket->closed) return ECONNREFUSED;
  if (socket->type != type) return EPROTOTYPE;
  out = std::move(socket);
  return 0;
}

// ---- Stream sockets ---------------------------------------------------------------------------

// A write on a broken stream: the bytes already sent, or EPIPE and SIGPIPE.
IoStatus broken_pipe(OpContext& ctx, std::uint16_t a) {
  if (ctx.thread.op_progress > 0) return done(ctx, ctx.thread.op_progress);
  send_sigpipe(ctx, a);
  return fail_call(ctx, a, EPIPE);
}

// unix_stream_sendmsg: the payload goes into the peer's receive queue in sk_buffs of at most
// SKB_MAX_HEAD(0) + 32 KiB and half the send buffer less 64; each is allocated while the truesize
// of what this socket has in flight is below its buffer (sock_alloc_send_pskb), so the last may
// pass it. A full buffer blocks the writer, which continues where it stopped
// (thread.op_progress: bytes sent so far).
IoStatus stream_send(OpContext& ctx, std::uint16_t a, Socket& s, const Message& m, int timeout_error) {
  Thread& t = ctx.thread;
  charge_socket_entry(ctx, a);
  if (ctx.first_run()) charge_credentials(ctx, a);
  ctx.sync();
  if (!s.connected) return fail_call(ctx, a, ENOTCONN);
  auto peer = s.peer.lock();
  for (;;) {
    // Woken in sock_alloc_send_pskb's wait for buffer space with nothing sent yet: the socket's
    // error first (sock_error, which takes it: ECONNRESET when the peer closed with data unread),
    // then SEND_SHUTDOWN (the peer closed, or shut down reading): EPIPE. Both without SIGPIPE,
    // which only unix_stream_sendmsg's own check sends (Linux 6.18: the next write gets it).
    if (ctx.after_wait() && t.op_progress == 0) {
      if (s.pending_error) {
        const int error = std::exchange(s.pending_error, 0);
        return fail_call(ctx, a, error);
      }
      if (s.snd_shutdown) return fail_call(ctx, a, EPIPE);
    }
    if (s.snd_shutdown || !peer || peer->closed || peer->rcv_shutdown) return broken_pipe(ctx, a);
    if (t.op_progress >= m.bytes) return done(ctx, m.bytes);
    if (s.wmem >= s.buffer) return wait_partial(ctx, s.wmem_wait, a, timeout_error);
    const std::uint64_t queued = peer->rx_bytes + peer->reserved;
    const std::uint64_t chunk = std::min({m.bytes - t.op_progress, s.buffer / 2 - 64, kSkbMax});
    const SkbShape shape = stream_skb(chunk);
    s.wmem += shape.truesize();
    peer->reserved += chunk;
    charge_skb(ctx, a, shape);
    charge_copy(ctx, a, chunk, m.bytes, queued + chunk, peer->consumed_on);
    // unix_stream_sendmsg: the skb is filled before unix_state_lock(other) is taken.
    ObjectLock::Held held = peer->lock.take(ctx, a);
    charge_enqueue(ctx, a);
    peer->reserved -= chunk;
    Skb skb;
    skb.message = m;
    skb.message.written_on = static_cast<std::int32_t>(ctx.core.index); // filled on this core
    if (t.op_progress == 0)
      message_sent(ctx, skb.message, peer->object, chunk);
    else
      bytes_sent(ctx, peer->object, chunk);
    skb.message.bytes = chunk;
    skb.shape = shape;
    if (t.op_progress > 0) skb.message.text.clear(); // the text travels with the write's first byte
    skb.from = s.shared_from_this();
    skb.from_path = s.path;
    peer->rx.push_back(std::move(skb));
    peer->rx_bytes += chunk;
    peer->filled(ctx);
    t.op_progress += chunk;
    held.release(); // unix_state_unlock(other), then sk_data_ready wakes the reader
    ctx.kernel.wake_all(ctx.core, peer->readers, &t, a);
  }
}

// unix_stream_read_generic: takes what is queued, up to `want`; returns once it has `target` bytes
// (1 for read(2): whatever is there), at end of file, or on the pending error.
IoStatus stream_recv(OpContext& ctx, std::uint16_t a, Socket& s, std::uint64_t want, std::uint64_t target,
                     int timeout_error, const std::string* from_var) {
  Thread& t = ctx.thread;
  charge_socket_entry(ctx, a);
  // unix_stream_read_generic: the reader's u->iolock, then unix_state_lock, again after a sleep
  if (ctx.resumed())
    ctx.charge(a, Primitive::lock_acquire, 2 * ctx.kernel.model().costs.cycles(Primitive::lock_acquire));
  {
    // unix_state_lock(sk) to peek at the queue: a sender queueing an skb meanwhile finishes first.
    // The copies below run under the reader's u->iolock only (not modelled: one reader a socket).
    ObjectLock::Held peek = s.lock.take(ctx, a);
  }
  if (!s.connected) return fail_call(ctx, a, EINVAL);
  Message& message = t.script_locals().message;
  if (t.op_progress == 0) message = Message{};
  if (from_var) {
    auto peer = s.peer.lock();
    t.script_locals().set(*from_var, peer ? peer->path : std::string());
  }
  std::uint64_t took = 0;
  while (!s.rx.empty() && t.op_progress < want) {
    Skb& skb = s.rx.front();
    std::uint64_t take = std::min(skb.message.bytes, want - t.op_progress);
    if (!skb.started) {
      if (skb.message.id != 0) message_received(ctx, skb.message, s.object, 0); // a write's first byte
      if (message.sender < 0) {
        message.sender = skb.message.sender;
        message.id = skb.message.id;
        message.type = skb.message.type;
        message.priority = skb.message.priority;
      }
      message.text += skb.message.text;
      skb.started = true;
    }
    const std::uint64_t queued = s.rx_bytes; // what the copy reads is among it
    const std::int32_t source = skb.message.written_on;
    skb.message.bytes -= take;
    s.rx_bytes -= take;
    t.op_progress += take;
    message.bytes = t.op_progress;
    const bool consumed = skb.message.bytes == 0;
    const SkbShape allocated = skb.shape;
    if (consumed) {
      uncharge_wmem(skb);
      s.rx.pop_front();
    }
    charge_copy(ctx, a, take, want, queued, source);
    s.consumed_on = static_cast<std::int32_t>(ctx.core.index);
    if (consumed) { // skb_unlink under the queue's lock, then consume_skb drops its credentials and frees it
      ctx.charge(a, Primitive::lock_acquire);
      ctx.charge(a, Primitive::list_op);
      charge_credentials(ctx, a);
      charge_skb_free(ctx, a, allocated);
    }
    took += take;
  }
  if (took > 0) {
    bytes_received(ctx, s.object, took);
    s.filled(ctx);
    // consume_skb -> sock_wfree -> unix_write_space(sender), once for the sk_buffs consumed.
    wake_writers(ctx, a, s.peer);
  }
  // A receive of 0 bytes (recv, recvfrom: read(2) of 0 returns before, in sock_read_iter) still
  // waits for data as unix_stream_read_generic's target of one byte makes it, and returns 0
  // without taking any once some is queued.
  if (want == 0 && !s.rx.empty()) return done(ctx, 0);
  if (want > 0 && t.op_progress >= std::min(target, want)) return done(ctx, t.op_progress);
  if (s.pending_error) {
    int error = s.pending_error;
    s.pending_error = 0;
    return t.op_progress > 0 ? done(ctx, t.op_progress) : fail_call(ctx, a, error);
  }
  if (s.rcv_shutdown) return done(ctx, t.op_progress); // end of file
  return wait_partial(ctx, s.readers, a, timeout_error);
}

// ---- Datagram sockets -------------------------------------------------------------------------

// unix_dgram_sendmsg: one datagram to `path`, or to the connected peer.
IoStatus dgram_send(OpContext& ctx, std::uint16_t a, const std::shared_ptr<Socket>& s, const Message& m,
                    const std::string* path, int timeout_error) {
  Thread& t = ctx.thread;
  charge_socket_entry(ctx, a);
  if (ctx.first_run()) {
    ctx.charge(a, Primitive::security_hook); // security_unix_may_send
    charge_credentials(ctx, a);
  }
  ctx.sync();
  if (!path && !s->connected) return fail_call(ctx, a, ENOTCONN);
  if (m.bytes + kDgramOverhead > s->buffer) return fail_call(ctx, a, EMSGSIZE);
  if (s->snd_shutdown) return fail_call(ctx, a, EPIPE);
  // sock_alloc_send_pskb: wait while the datagrams this socket sent still fill its send buffer.
  if (s->wmem >= s->buffer) return wait_on(ctx, s->wmem_wait, a, timeout_error);
  std::shared_ptr<Socket> other;
  if (path) {
    if (t.op_progress == 0) charge_lookup(ctx, a); // once, even when the call waits and retries
    t.op_progress = 1;
    if (int error = lookup(ctx, *path, SockType::Dgram, other)) return fail_call(ctx, a, error);
  } else {
    other = s->peer.lock();
    if (!other || other->closed) { // the peer is gone: disconnect, as unix_dgram_disconnected
      s->peer.reset();
      s->connected = false;
      return fail_call(ctx, a, ECONNREFUSED);
    }
  }
  auto others_peer = other->peer.lock();
  if (other->connected && others_peer != s && other != s) return fail_call(ctx, a, EPERM); // unix_may_send
  if (other->rcv_shutdown) return fail_call(ctx, a, EPIPE);
  // unix_recvq_full: the queue is full when it holds MORE than max_dgram_qlen; skipped when the
  // receiver is connected back to the sender (a socketpair).
  if (other != s && others_peer != s && other->rx.size() + other->reserved_dgrams > other->qlen)
    return wait_on(ctx, other->room, a, timeout_error);
  ++other->reserved_dgrams;
  const SkbShape shape = dgram_skb(m.bytes);
  s->wmem += shape.truesize();
  charge_skb(ctx, a, shape);
  charge_data(ctx, a, m.bytes, other->rx_bytes + m.bytes, other->consumed_on);
  // unix_dgram_sendmsg: unix_state_lock(other) once the skb is filled.
  ObjectLock::Held held = other->lock.take(ctx, a);
  charge_enqueue(ctx, a);
  --other->reserved_dgrams;
  Skb skb;
  skb.message = m;
  skb.shape = shape;
  skb.message.written_on = static_cast<std::int32_t>(ctx.core.index); // filled on this core
  message_sent(ctx, skb.message, other->object);
  skb.from = s;
  skb.from_path = s->path;
  other->rx.push_back(std::move(skb));
  other->rx_bytes += m.bytes;
  other->filled(ctx);
  held.release(); // unix_state_unlock(other), then sk_data_ready wakes the reader
  ctx.kernel.wake_all(ctx.core, other->readers, &t, a);
  return done(ctx, m.bytes);
}

// unix_dgram_recvmsg: the first datagram, truncated to the buffer (the rest of it is lost).
IoStatus dgram_recv(OpContext& ctx, std::uint16_t a, Socket& s, std::uint64_t want, int timeout_error,
                    const std::string* from_var) {
  Thread& t = ctx.thread;
  charge_socket_entry(ctx, a);
  // unix_dgram_recvmsg: u->iolock, and the receive queue's lock in __skb_try_recv_datagram
  if (ctx.resumed())
    ctx.charge(a, Primitive::lock_acquire, 2 * ctx.kernel.model().costs.cycles(Primitive::lock_acquire));
  ObjectLock::Held held = s.lock.take(ctx, a); // __skb_try_recv_datagram: the receive queue's lock
  if (s.rx.empty()) {
    held.release();
    // Shut down for reading: a call that may wait returns 0 (__skb_wait_for_more_packets sees
    // RCV_SHUTDOWN); one that may not gets EAGAIN, as any empty datagram socket (only
    // SOCK_SEQPACKET turns that into end of file).
    if (s.rcv_shutdown && !t.op_nonblocking && ctx.now() < t.op_deadline) {
      t.script_locals().message = Message{};
      return done(ctx, 0);
    }
    return wait_on(ctx, s.readers, a, s.rcv_shutdown ? EAGAIN : timeout_error);
  }
  Skb skb = std::move(s.rx.front());
  s.rx.pop_front();
  const std::uint64_t queued = s.rx_bytes; // this datagram's included
  s.rx_bytes -= skb.message.bytes;
  std::uint64_t n = std::min(want, skb.message.bytes);
  message_received(ctx, skb.message, s.object, n);
  message_dropped(ctx, s.object, 0, skb.message.bytes - n,
                  "the rest of a datagram longer than the receive buffer (MSG_TRUNC)");
  s.filled(ctx);
  held.release(); // the skb is unlinked; the copy out comes after
  release_wmem(ctx, a, skb);
  ctx.kernel.wake_all(ctx.core, s.room, &t, a);
  Message& message = t.script_locals().message;
  message = skb.message;
  message.bytes = n;
  if (from_var) t.script_locals().set(*from_var, skb.from_path);
  charge_data(ctx, a, n, queued, skb.message.written_on);
  s.consumed_on = static_cast<std::int32_t>(ctx.core.index);
  ctx.charge(a, Primitive::list_op); // __skb_unlink
  charge_credentials(ctx, a);
  charge_skb_free(ctx, a, skb.shape); // skb_free_datagram
  return done(ctx, n);
}

// ---- Closing ----------------------------------------------------------------------------------

// unix_release_sock: a stream peer sees end of file (ECONNRESET first when data was left unread, or
// when the socket was never accepted); a listener's pending connections are released; datagrams
// left in the queue give their senders' buffer space back; everyone waiting on the socket retries.
void release(OpContext& ctx, std::uint16_t a, Socket& s, bool embryo) {
  s.closed = true;
  while (!s.pending.empty()) {
    auto e = std::move(s.pending.front());
    s.pending.pop_front();
    release(ctx, a, *e, true);
  }
  if (s.type == SockType::Stream)
    if (auto p = s.peer.lock(); p && !p->closed) {
      p->rcv_shutdown = p->snd_shutdown = true;
      if (!s.rx.empty() || embryo) p->pending_error = ECONNRESET;
      // sk_state_change(skpair): its readers and a writer waiting for buffer space (EPIPE).
      ctx.kernel.wake_all(ctx.core, p->readers, &ctx.thread, a);
      ctx.kernel.wake_all(ctx.core, p->wmem_wait, &ctx.thread, a);
    }
  // skb_queue_purge: every sender's buffer space comes back first; the wakeups let time pass.
  std::vector<std::weak_ptr<Socket>> senders;
  for (const auto& skb : s.rx) {
    uncharge_wmem(skb);
    senders.push_back(skb.from);
  }
  for (const auto& sender : senders) wake_writers(ctx, a, sender);
  message_dropped(ctx, s.object, unread_messages(s), s.rx_bytes,
                  embryo ? "the connection was never accepted: its listener was closed with data unread"
                         : "the socket was closed with data unread");
  bool had_data = !s.rx.empty();
  s.rx.clear();
  s.rx_bytes = 0;
  if (had_data) s.filled(ctx);
  for (WaitQueue* q : {&s.readers, &s.room, &s.wmem_wait, &s.acceptors, &s.connectors})
    ctx.kernel.wake_all(ctx.core, *q, &ctx.thread, a);
}

// ---- Open files -------------------------------------------------------------------------------

class SocketFile : public OpenFile {
public:
  explicit SocketFile(std::shared_ptr<Socket> socket) : socket(std::move(socket)) {}
  std::shared_ptr<Socket> socket;
  std::string describe() const override {
    return "unix " + socket->name() + " socket " + std::to_string(socket->id);
  }
  IoStatus read(OpContext& ctx, std::uint16_t a, std::uint64_t bytes) override {
    // sock_read_iter: a read of 0 bytes returns 0 at once ("Match SYS5 behaviour"), whatever is
    // queued; recv and recvfrom of 0 go on to the protocol (below).
    if (bytes == 0) return done(ctx, 0);
    if (socket->type == SockType::Stream) return stream_recv(ctx, a, *socket, bytes, 1, ETIMEDOUT, nullptr);
    return dgram_recv(ctx, a, *socket, bytes, ETIMEDOUT, nullptr);
  }
  IoStatus write(OpContext& ctx, std::uint16_t a, const Message& m) override {
    if (socket->type == SockType::Stream) return stream_send(ctx, a, *socket, m, ETIMEDOUT);
    return dgram_send(ctx, a, socket, m, nullptr, ETIMEDOUT);
  }
  void on_last_close(OpContext& ctx, std::uint16_t a) override {
    ctx.sync();
    release(ctx, a, *socket, false);
  }
};

// ---- Ops --------------------------------------------------------------------------------------

SockType read_type(const json& f) { return f.at("type") == "stream" ? SockType::Stream : SockType::Dgram; }

ParamSpec type_param() {
  return {"type",
          ParamType::Choice,
          nullptr,
          "",
          "stream (SOCK_STREAM: a byte stream) or dgram (SOCK_DGRAM: datagrams)",
          std::nullopt,
          std::nullopt,
          {"stream", "dgram"}};
}
ParamSpec buffer_param() {
  return {
      "buffer",
      ParamType::Bytes,
      kDefaultBuffer,
      "bytes",
      "the send buffer (sk_sndbuf; default net.core.wmem_default): the memory of the sk_buffs this socket "
      "sent that are still queued (their truesize: 768 bytes for a small message, docs/unix-socket.md); "
      "a datagram may be at most this minus 32 bytes; at least SOCK_MIN_SNDBUF",
      4608.0,
      1073741824.0};
}
ParamSpec qlen_param() {
  return {"max_dgram_qlen",
          ParamType::Integer,
          kDefaultQlen,
          "datagrams",
          "net.unix.max_dgram_qlen: a datagram socket's queue is full when it holds more than this many "
          "(from senders it is not connected to)",
          0.0,
          1000000.0};
}
ParamSpec fd_param(const std::string& what) { return {"fd", ParamType::String, nullptr, "", what}; }
ParamSpec socket_timeout_param() {
  return {"timeout",
          ParamType::Time,
          nullptr,
          "cycles or duration",
          "how long the call may wait (SO_RCVTIMEO / SO_SNDTIMEO): absent blocks, 0 never blocks, a time "
          "gives up with EAGAIN as socket(7) says",
          0.0,
          std::nullopt,
          {},
          "block",
          true};
}
CallTimeout read_socket_timeout(const json& f, const std::string& path, CompileContext& ctx) {
  return read_timeout(f, path, ctx);
}

// The socket behind descriptor `fd`: EBADF when there is none, ENOTSOCK when it is not a socket.
// Applies the descriptor's O_NONBLOCK to the call.
SocketFile* socket_file(OpContext& ctx, std::uint16_t a, Symbol fd) {
  OpenFile* file = lookup_descriptor(ctx, fd);
  if (!file) {
    ctx.fail(a, EBADF);
    return nullptr;
  }
  auto* socket = dynamic_cast<SocketFile*>(file);
  if (!socket) {
    ctx.fail(a, ENOTSOCK);
    return nullptr;
  }
  ctx.thread.op_nonblocking = ctx.thread.op_nonblocking || file->nonblocking;
  return socket;
}

class SocketpairOp : public SyscallOp {
public:
  SocketpairOp(std::uint16_t a, std::string fd_a, std::string fd_b, SockType type, std::uint64_t buffer,
               std::uint32_t qlen)
      : SyscallOp(a, {}), fd_a_(fd_a), fd_b_(fd_b), type_(type), buffer_(buffer), qlen_(qlen) {}
  IoStatus call(OpContext& ctx) const override {
    auto& state = ctx.kernel.ipc<UnixState>();
    if (!ctx.kernel.new_ipc_object(ctx, "a socket pair"))
      return fail_call(ctx, activity, ENFILE); // the run stops
    auto x = state.make(type_, buffer_, qlen_);
    auto y = state.make(type_, buffer_, qlen_);
    x->peer = y;
    y->peer = x;
    x->connected = y->connected = true;
    install_descriptor(ctx, fd_a_, std::make_shared<SocketFile>(x), activity);
    install_descriptor(ctx, fd_b_, std::make_shared<SocketFile>(y), activity);
    return done(ctx, 0);
  }

private:
  Symbol fd_a_, fd_b_;
  SockType type_;
  std::uint64_t buffer_;
  std::uint32_t qlen_;
};

class SocketOp : public SyscallOp {
public:
  SocketOp(std::uint16_t a, std::string fd, SockType type, std::uint64_t buffer, std::uint32_t qlen)
      : SyscallOp(a, {}), fd_(fd), type_(type), buffer_(buffer), qlen_(qlen) {}
  IoStatus call(OpContext& ctx) const override {
    if (!ctx.kernel.new_ipc_object(ctx, "a socket")) return fail_call(ctx, activity, ENFILE); // the run stops
    auto socket = ctx.kernel.ipc<UnixState>().make(type_, buffer_, qlen_);
    install_descriptor(ctx, fd_, std::make_shared<SocketFile>(socket), activity);
    return done(ctx, 0);
  }

private:
  Symbol fd_;
  SockType type_;
  std::uint64_t buffer_;
  std::uint32_t qlen_;
};

class BindOp : public SyscallOp {
public:
  BindOp(std::uint16_t a, std::string fd, std::string path)
      : SyscallOp(a, {}), fd_(fd), path_(std::move(path)) {}
  IoStatus call(OpContext& ctx) const override {
    SocketFile* file = socket_file(ctx, activity, fd_);
    if (!file) return IoStatus::Done;
    const CallName filled = call_name(path_, NameKind::SocketPath, ctx, "bind", "path");
    if (!filled.ok()) return filled.fail(ctx, activity);
    const std::string& file_path = filled.name;
    Socket& s = *file->socket;
    ctx.sync();
    charge_lookup(ctx, activity);
    FileSystem& fs = ctx.kernel.ipc<FileSystem>();
    // unix_bind_bsd creates the file first (EEXIST, reported as EADDRINUSE), then finds the socket
    // already bound (EINVAL).
    if (fs.find(file_path)) return fail_call(ctx, activity, EADDRINUSE);
    if (!s.path.empty()) return fail_call(ctx, activity, EINVAL);
    FsEntry* entry = fs.create(file_path, FileKind::Socket, *ctx.thread.process, 0755);
    entry->object = std::make_shared<Binding>(Binding{file->socket});
    s.path = file_path;
    return done(ctx, 0);
  }

private:
  Symbol fd_;
  std::string path_;
};

class ListenOp : public SyscallOp {
public:
  ListenOp(std::uint16_t a, std::string fd, std::uint32_t backlog)
      : SyscallOp(a, {}), fd_(fd), backlog_(backlog) {}
  IoStatus call(OpContext& ctx) const override {
    SocketFile* file = socket_file(ctx, activity, fd_);
    if (!file) return IoStatus::Done;
    Socket& s = *file->socket;
    ctx.sync();
    if (s.type != SockType::Stream) return fail_call(ctx, activity, EOPNOTSUPP);
    if (s.path.empty() || s.connected) return fail_call(ctx, activity, EINVAL); // unbound, or connected
    std::uint32_t backlog = std::min(backlog_, kSomaxconn);
    if (s.listening && backlog > s.backlog)
      ctx.kernel.wake_all(ctx.core, s.connectors, &ctx.thread, activity);
    s.backlog = backlog;
    s.listening = true;
    return done(ctx, 0);
  }

private:
  Symbol fd_;
  std::uint32_t backlog_;
};

class AcceptOp : public SyscallOp {
public:
  AcceptOp(std::uint16_t a, CallTimeout timeout, std::string fd, std::string as)
      : SyscallOp(a, timeout), fd_(fd), as_(as) {}
  IoStatus call(OpContext& ctx) const override {
    SocketFile* file = socket_file(ctx, activity, fd_);
    if (!file) return IoStatus::Done;
    auto listener = file->socket; // keeps it alive across install_descriptor
    ctx.sync();
    if (listener->type != SockType::Stream) return fail_call(ctx, activity, EOPNOTSUPP);
    if (!listener->listening) return fail_call(ctx, activity, EINVAL);
    if (listener->pending.empty()) return wait_on(ctx, listener->acceptors, activity, EAGAIN);
    auto e = std::move(listener->pending.front());
    listener->pending.pop_front();
    ctx.kernel.wake_all(ctx.core, listener->connectors, &ctx.thread, activity);
    install_descriptor(ctx, as_, std::make_shared<SocketFile>(std::move(e)), activity);
    return done(ctx, 0);
  }

private:
  Symbol fd_, as_;
};

class ConnectOp : public SyscallOp {
public:
  ConnectOp(std::uint16_t a, std::string fd, std::string path)
      : SyscallOp(a, {}), fd_(fd), path_(std::move(path)) {}
  IoStatus call(OpContext& ctx) const override {
    SocketFile* file = socket_file(ctx, activity, fd_);
    if (!file) return IoStatus::Done;
    const CallName filled = call_name(path_, NameKind::SocketPath, ctx, "connect", "path");
    if (!filled.ok()) return filled.fail(ctx, activity);
    const std::string& file_path = filled.name;
    auto s = file->socket;
    Thread& t = ctx.thread;
    ctx.sync();
    if (t.op_progress == 0) charge_lookup(ctx, activity); // once, even when the call waits
    t.op_progress = 1;
    std::shared_ptr<Socket> other;
    if (int error = lookup(ctx, file_path, s->type, other)) return fail_call(ctx, activity, error);
    if (s->type == SockType::Dgram) { // unix_dgram_connect: sets the default destination
      auto others_peer = other->peer.lock();
      if (other->connected && others_peer != s && other != s) return fail_call(ctx, activity, EPERM);
      s->peer = other;
      s->connected = true;
      return done(ctx, 0);
    }
    // unix_stream_connect: the listener, then room in its backlog, then this socket's own state.
    if (!other->listening) return fail_call(ctx, activity, ECONNREFUSED);
    if (other->pending.size() > other->backlog) return wait_on(ctx, other->connectors, activity, EAGAIN);
    if (s->connected) return fail_call(ctx, activity, EISCONN);
    if (s->listening) return fail_call(ctx, activity, EINVAL);
    if (!ctx.kernel.new_ipc_object(ctx, "a connected socket"))
      return fail_call(ctx, activity, ENFILE); // the run stops
    auto e = ctx.kernel.ipc<UnixState>().make(SockType::Stream, other->buffer, other->qlen);
    e->path = other->path;
    e->connected = s->connected = true;
    e->peer = s;
    s->peer = e;
    charge_skb(ctx, activity); // the sk_buff that carries the connection to the listener
    other->pending.push_back(std::move(e));
    ctx.kernel.wake_all(ctx.core, other->acceptors, &t, activity);
    return done(ctx, 0);
  }

private:
  Symbol fd_;
  std::string path_;
};

class SendtoOp : public SyscallOp {
public:
  SendtoOp(std::uint16_t a, CallTimeout timeout, std::string fd, IntRef bytes, std::string text,
           std::optional<std::string> path)
      : SyscallOp(a, timeout), fd_(fd), bytes_(std::move(bytes)), text_(std::move(text)),
        path_(std::move(path)) {}
  IoStatus call(OpContext& ctx) const override {
    SocketFile* file = socket_file(ctx, activity, fd_);
    if (!file) return IoStatus::Done;
    std::int64_t bytes = 0;
    bytes_.read(ctx, bytes); // checked by arguments_valid
    Message m;
    m.bytes = static_cast<std::uint64_t>(bytes);
    m.type = 0;
    m.text = format_template(text_, ctx.kernel, ctx.thread);
    m.sender = static_cast<std::int32_t>(ctx.thread.id);
    if (file->socket->type == SockType::Stream) {
      // unix_stream_sendmsg refuses an address: EISCONN when connected, else EOPNOTSUPP.
      if (path_) return fail_call(ctx, activity, file->socket->connected ? EISCONN : EOPNOTSUPP);
      return stream_send(ctx, activity, *file->socket, m, EAGAIN);
    }
    CallName to;
    if (path_) {
      to = call_name(*path_, NameKind::SocketPath, ctx, "sendto", "path");
      if (!to.ok()) return to.fail(ctx, activity);
    }
    return dgram_send(ctx, activity, file->socket, m, path_ ? &to.name : nullptr, EAGAIN);
  }

protected:
  bool arguments_valid(OpContext& ctx) const override {
    std::int64_t v = 0;
    return bytes_.resolve_field(ctx, v, "sendto", "bytes", 0, kMaxMessageBytes, true);
  }

private:
  Symbol fd_;
  IntRef bytes_;
  std::string text_;
  std::optional<std::string> path_;
};

class RecvfromOp : public SyscallOp {
public:
  RecvfromOp(std::uint16_t a, CallTimeout timeout, std::string fd, IntRef bytes, std::string from)
      : SyscallOp(a, timeout), fd_(fd), bytes_(std::move(bytes)), from_(std::move(from)) {}
  IoStatus call(OpContext& ctx) const override {
    SocketFile* file = socket_file(ctx, activity, fd_);
    if (!file) return IoStatus::Done;
    std::int64_t signed_bytes = 0;
    bytes_.read(ctx, signed_bytes); // checked by arguments_valid
    auto bytes = static_cast<std::uint64_t>(signed_bytes);
    if (file->socket->type == SockType::Stream)
      return stream_recv(ctx, activity, *file->socket, bytes, 1, EAGAIN, &from_);
    return dgram_recv(ctx, activity, *file->socket, bytes, EAGAIN, &from_);
  }

protected:
  bool arguments_valid(OpContext& ctx) const override {
    std::int64_t v = 0;
    return bytes_.resolve_field(ctx, v, "recvfrom", "bytes", 0, kMaxMessageBytes, true);
  }

private:
  Symbol fd_;
  IntRef bytes_;
  std::string from_;
};

class ShutdownOp : public SyscallOp {
public:
  ShutdownOp(std::uint16_t a, std::string fd, bool rd, bool wr)
      : SyscallOp(a, {}), fd_(fd), rd_(rd), wr_(wr) {}
  IoStatus call(OpContext& ctx) const override {
    SocketFile* file = socket_file(ctx, activity, fd_);
    if (!file) return IoStatus::Done;
    Socket& s = *file->socket;
    ctx.sync();
    s.rcv_shutdown = s.rcv_shutdown || rd_;
    s.snd_shutdown = s.snd_shutdown || wr_;
    ctx.kernel.wake_all(ctx.core, s.readers, &ctx.thread, activity);
    ctx.kernel.wake_all(ctx.core, s.room, &ctx.thread, activity);
    // sk_state_change: a sender waiting for buffer space sees SEND_SHUTDOWN and fails with EPIPE.
    ctx.kernel.wake_all(ctx.core, s.wmem_wait, &ctx.thread, activity);
    if (s.type == SockType::Stream)
      if (auto p = s.peer.lock(); p && !p->closed) { // unix_shutdown: the peer's opposite side too
        p->snd_shutdown = p->snd_shutdown || rd_;
        p->rcv_shutdown = p->rcv_shutdown || wr_;
        ctx.kernel.wake_all(ctx.core, p->readers, &ctx.thread, activity);
        ctx.kernel.wake_all(ctx.core, p->wmem_wait, &ctx.thread, activity);
      }
    return done(ctx, 0);
  }

private:
  Symbol fd_;
  bool rd_, wr_;
};

// ---- Registration -----------------------------------------------------------------------------

std::string checked_fd(const json& value, const std::string& path, const CompileContext& ctx) {
  if (!value.is_string() || value.get<std::string>().empty())
    fail_at(ctx.read.file, path,
            "invalid value " + value.dump() + "; expected a descriptor name such as \"sock\"");
  return value.get<std::string>();
}

std::string checked_path(const json& f, const std::string& op_path, CompileContext& ctx) {
  auto path = f.at("path").get<std::string>();
  check_path(path, join_path(op_path, "path"), ctx);
  return path;
}

const OpRegistrar register_socketpair_op(
    {"socketpair",
     "create two connected unix sockets (socketpair(AF_UNIX, type)) as descriptors fds[0] and fds[1]",
     {"socketpair op",
      "",
      {{"fds", ParamType::StringList, nullptr, "", "the two descriptors' names, such as [\"a\", \"b\"]"},
       type_param(),
       buffer_param(),
       qlen_param()}},
     [](const json& f, const std::string& path, CompileContext& ctx, Program& p, std::uint16_t a) {
       const json& fds = f.at("fds");
       std::string where = join_path(path, "fds");
       if (fds.size() != 2)
         fail_at(ctx.read.file, where,
                 "expected two descriptor names such as [\"a\", \"b\"], got " + std::to_string(fds.size()));
       auto x = checked_fd(fds[0], join_path(where, 0), ctx);
       auto y = checked_fd(fds[1], join_path(where, 1), ctx);
       if (x == y) fail_at(ctx.read.file, join_path(where, 1), "the two descriptors need different names");
       p.ops.push_back(std::make_unique<SocketpairOp>(a, x, y, read_type(f), read_bytes(f.at("buffer")),
                                                      f.at("max_dgram_qlen").get<std::uint32_t>()));
     }});

const OpRegistrar register_socket_op(
    {"socket",
     "create an unconnected unix socket (socket(AF_UNIX, type, 0)) as descriptor `fd`",
     {"socket op", "", {fd_param("the new descriptor's name"), type_param(), buffer_param(), qlen_param()}},
     [](const json& f, const std::string&, CompileContext&, Program& p, std::uint16_t a) {
       p.ops.push_back(std::make_unique<SocketOp>(a, f.at("fd").get<std::string>(), read_type(f),
                                                  read_bytes(f.at("buffer")),
                                                  f.at("max_dgram_qlen").get<std::uint32_t>()));
     }});

const OpRegistrar register_bind_op(
    {"bind",
     "give a unix socket an address: creates the socket file at `path` (EADDRINUSE when it exists)",
     {"bind op", "", {fd_param("the socket's descriptor"), path_param("the socket file's path")}},
     [](const json& f, const std::string& path, CompileContext& ctx, Program& p, std::uint16_t a) {
       p.ops.push_back(
           std::make_unique<BindOp>(a, f.at("fd").get<std::string>(), checked_path(f, path, ctx)));
     }});

const OpRegistrar register_listen_op(
    {"listen",
     "make a bound stream socket accept connections; connections beyond the backlog wait",
     {"listen op",
      "",
      {fd_param("the socket's descriptor"),
       {"backlog", ParamType::Integer, nullptr, "connections",
        "pending connections allowed: connect waits once more than this many wait for accept (capped at "
        "net.core.somaxconn, 4096)",
        0.0, 2147483647.0}}},
     [](const json& f, const std::string&, CompileContext&, Program& p, std::uint16_t a) {
       p.ops.push_back(std::make_unique<ListenOp>(a, f.at("fd").get<std::string>(),
                                                  static_cast<std::uint32_t>(std::min<std::int64_t>(
                                                      f.at("backlog").get<std::int64_t>(), kSomaxconn))));
     }});

const OpRegistrar register_accept_op(
    {"accept",
     "take the first pending connection of a listening socket as descriptor `as` (blocks until one comes)",
     {"accept op",
      "",
      {fd_param("the listening socket's descriptor"),
       {"as", ParamType::String, nullptr, "", "the connected socket's new descriptor name"},
       socket_timeout_param()}},
     [](const json& f, const std::string& path, CompileContext& ctx, Program& p, std::uint16_t a) {
       p.ops.push_back(std::make_unique<AcceptOp>(a, read_socket_timeout(f, path, ctx),
                                                  f.at("fd").get<std::string>(),
                                                  f.at("as").get<std::string>()));
     }});

const OpRegistrar register_connect_op(
    {"connect",
     "connect a unix socket to the socket bound at `path` (stream: queued for accept; dgram: the default "
     "destination)",
     {"connect op", "", {fd_param("the socket's descriptor"), path_param("the peer's socket file")}},
     [](const json& f, const std::string& path, CompileContext& ctx, Program& p, std::uint16_t a) {
       p.ops.push_back(
           std::make_unique<ConnectOp>(a, f.at("fd").get<std::string>(), checked_path(f, path, ctx)));
     }});

const OpRegistrar register_sendto_op(
    {"sendto",
     "send `bytes` on a unix socket: a datagram to `path` (or to the connected peer), or stream bytes; "
     "{result} is the count",
     {"sendto op",
      "",
      {fd_param("the socket's descriptor"),
       variable_field({"bytes", ParamType::Bytes, nullptr, "bytes", "the payload's size: what is copied"}),
       {"text", ParamType::String, "", "",
        "text carried for print at the receiver; {NAME} placeholders are filled in when sent"},
       {"path",
        ParamType::String,
        nullptr,
        "",
        "the destination socket file (datagram sockets); absent: the connected peer",
        std::nullopt,
        std::nullopt,
        {},
        "the connected peer"},
       socket_timeout_param()}},
     [](const json& f, const std::string& path, CompileContext& ctx, Program& p, std::uint16_t a) {
       std::optional<std::string> to;
       if (f.contains("path")) to = checked_path(f, path, ctx);
       auto text = f.at("text").get<std::string>();
       check_template(text, join_path(path, "text"), ctx);
       p.ops.push_back(std::make_unique<SendtoOp>(a, read_socket_timeout(f, path, ctx),
                                                  f.at("fd").get<std::string>(),
                                                  read_int_field(f, "bytes", path, ctx), text, to));
     }});

const OpRegistrar register_recvfrom_op(
    {"recvfrom",
     "receive from a unix socket: one datagram (truncated to `bytes`) or up to `bytes` of a stream; the "
     "sender's address goes into the variable `from`",
     {"recvfrom op",
      "",
      {fd_param("the socket's descriptor"),
       variable_field({"bytes", ParamType::Bytes, nullptr, "bytes", "the buffer's size"}),
       {"from", ParamType::String, "from", "",
        "the script variable that receives the sender's path (\"\" when the sender is not bound)"},
       socket_timeout_param()}},
     [](const json& f, const std::string& path, CompileContext& ctx, Program& p, std::uint16_t a) {
       auto var = f.at("from").get<std::string>();
       if (!valid_variable(var) || is_builtin_variable(var))
         fail_at(ctx.read.file, join_path(path, "from"),
                 "invalid variable name \"" + var +
                     "\"; use letters, digits, _ and ., and not a name the system calls set (result, errno, "
                     "msg.*, ...)");
       ctx.assigned.push_back(var);
       p.ops.push_back(std::make_unique<RecvfromOp>(a, read_socket_timeout(f, path, ctx),
                                                    f.at("fd").get<std::string>(),
                                                    read_int_field(f, "bytes", path, ctx), var));
     }});

const OpRegistrar register_shutdown_op(
    {"shutdown",
     "shut down reading, writing or both on a unix socket (the stream peer sees end of file, or EPIPE)",
     {"shutdown op",
      "",
      {fd_param("the socket's descriptor"),
       {"how",
        ParamType::Choice,
        nullptr,
        "",
        "SHUT_RD, SHUT_WR or SHUT_RDWR",
        std::nullopt,
        std::nullopt,
        {"read", "write", "both"}}}},
     [](const json& f, const std::string&, CompileContext&, Program& p, std::uint16_t a) {
       auto how = f.at("how").get<std::string>();
       p.ops.push_back(
           std::make_unique<ShutdownOp>(a, f.at("fd").get<std::string>(), how != "write", how != "read"));
     }});

// ---- Channels ---------------------------------------------------------------------------------

// A socketpair of stream sockets: send writes the whole message on one end, recv reads up to the
// next message boundary (StreamFraming) from the other.
class StreamChannel : public Channel {
public:
  StreamChannel(Kernel& kernel, std::uint64_t buffer, const std::string& name) : framing_(name) {
    auto& state = kernel.ipc<UnixState>();
    a_ = state.make(SockType::Stream, buffer, kDefaultQlen);
    b_ = state.make(SockType::Stream, buffer, kDefaultQlen);
    a_->peer = b_;
    b_->peer = a_;
    a_->connected = b_->connected = true;
  }
  IoStatus send(OpContext& ctx, std::uint16_t a, const Message& m) override {
    return framing_.send(ctx, a, m.bytes, [&] { return stream_send(ctx, a, *a_, m, ETIMEDOUT); });
  }
  IoStatus recv(OpContext& ctx, std::uint16_t a, std::uint64_t bytes) override {
    return framing_.recv(ctx, a, bytes, [&](std::uint64_t target) {
      return stream_recv(ctx, a, *b_, target, target, ETIMEDOUT, nullptr);
    });
  }

private:
  std::shared_ptr<Socket> a_, b_;
  StreamFraming framing_;
};

// Two datagram sockets, the sender connected to the receiver but not the other way round (a client
// connected to a server's socket): so max_dgram_qlen applies, which Linux skips in a socketpair.
// With `pair`, a socketpair: each connected to the other, only the sender's buffer limits the queue.
class DgramChannel : public Channel {
public:
  DgramChannel(Kernel& kernel, std::uint64_t buffer, std::uint32_t qlen, bool pair) {
    auto& state = kernel.ipc<UnixState>();
    a_ = state.make(SockType::Dgram, buffer, qlen);
    b_ = state.make(SockType::Dgram, buffer, qlen);
    a_->peer = b_;
    a_->connected = true;
    if (pair) {
      b_->peer = a_;
      b_->connected = true;
    }
  }
  IoStatus send(OpContext& ctx, std::uint16_t a, const Message& m) override {
    return dgram_send(ctx, a, a_, m, nullptr, ETIMEDOUT);
  }
  IoStatus recv(OpContext& ctx, std::uint16_t a, std::uint64_t bytes) override {
    return dgram_recv(ctx, a, *b_, bytes, ETIMEDOUT, nullptr);
  }

private:
  std::shared_ptr<Socket> a_, b_;
};

const MechanismRegistrar register_stream_channel(
    {"unix_stream",
     "a Unix domain stream socketpair: a byte stream; recv reads up to the next message's boundary",
     ParamTable{"unix_stream channel", "", {buffer_param()}}, nullptr,
     [](const ChannelSpec& spec, Kernel& kernel) -> std::unique_ptr<Channel> {
       return std::make_unique<StreamChannel>(kernel, read_bytes(spec.params.at("buffer")), spec.name);
     }});

const MechanismRegistrar register_dgram_channel(
    {"unix_dgram",
     "Unix domain datagram sockets, the sender connected to the receiver: boundaries kept, a full queue "
     "blocks",
     ParamTable{"unix_dgram channel",
                "",
                {buffer_param(), qlen_param(),
                 ParamSpec{"pair", ParamType::Bool, false, "",
                           "a socketpair: the receiver connected back to the sender, so Linux skips the "
                           "max_dgram_qlen check and only the sender's buffer limits the queue"}}},
     nullptr, [](const ChannelSpec& spec, Kernel& kernel) -> std::unique_ptr<Channel> {
       return std::make_unique<DgramChannel>(kernel, read_bytes(spec.params.at("buffer")),
                                             spec.params.at("max_dgram_qlen").get<std::uint32_t>(),
                                             spec.params.at("pair").get<bool>());
     }});

} // namespace
} // namespace ipcsim
