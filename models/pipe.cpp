// Pipes and named pipes (FIFOs), after xv6's kernel/pipe.c (pipewrite / piperead with sleep and
// wakeup on nread / nwrite) and Linux's pipe(7), fifo(7) and fs/pipe.c. See docs/pipe.md.
//
// A Pipe is the kernel object: a byte counter pair (nread, nwrite) over a buffer of `capacity`
// bytes, the number of open read and write ends, and two wait queues (readers waiting for data,
// writers waiting for room). Descriptors refer to a PipeEnd (an open file description: the read
// end, the write end, or both for a FIFO opened O_RDWR). The generic read / write / close / fcntl
// ops reach the pipe through PipeEnd; the `pipe`, `mkfifo`, `open` and `pipe_stat` ops are here,
// and the channel mechanism "pipe" carries the generic send / recv over a pipe.
#include "call_name.hpp"
#include "error.hpp"
#include "fs.hpp"
#include "ipc.hpp"
#include "lock.hpp"

#include <algorithm>
#include <bit>
#include <deque>
#include <map>

namespace ipcsim {

namespace {

enum class WakePolicy : std::uint8_t { All, One };

constexpr std::uint64_t kPage = 4096;

struct PipeConfig {
  std::uint64_t capacity = 65536;
  std::uint64_t pipe_buf = 4096;
  WakePolicy wake = WakePolicy::All;
  // Linux's ring of page slots (pipe->max_usage pipe_buffers of a page each: a write that needs a
  // new page waits for a free slot, whatever the bytes in the others), or xv6's ring of bytes.
  bool page_slots = true;
  std::uint64_t slots() const { return capacity / kPage; }
};

// A page of the buffer (struct pipe_buffer): `end` is where the bytes written into it end
// (offset + len: a write merges there), `unread` how many of them are left (len).
struct PipePage {
  std::uint64_t end, unread;
};

struct FifoNode;

// The bytes of one write (or of one chunk of a long write) still in the buffer, with the message
// they came from: a read's msg.text is the text of every write whose first byte it consumes.
struct Segment {
  std::uint64_t start, end; // [start, end) in nwrite's numbering
  bool first;               // holds the write's first byte
  Message meta;
};

class Pipe {
public:
  Pipe(std::uint32_t id, std::string name, PipeConfig config)
      : id(id), name(std::move(name)), config(config), read_wait(this->name + ": waiting for data"),
        write_wait(this->name + ": waiting for room") {}

  const std::uint32_t id;
  const std::string name; // "pipe 1", "fifo /tmp/f", "channel c"
  const PipeConfig config;
  std::uint64_t nread = 0, nwrite = 0; // bytes read and written so far, as xv6 counts them
  std::uint32_t readers = 0, writers = 0;
  std::uint64_t reads = 0, writes = 0, spurious = 0;
  WaitQueue read_wait, write_wait;
  // pipe->mutex (__pipe_lock): held by a read or a write from its check of the buffer to the end of
  // its copy, so a reader on another core never sees a write's bytes before their copy is done.
  // Three lines shared (struct pipe_inode_info, struct pipe_buffer): the mutex with rd_wait; wr_wait
  // with the head and tail; the pipe_buffer at the ring's end (page, offset, len), which a write
  // fills or extends and a read consumes.
  ObjectLock mutex{3};
  std::deque<Segment> segments;
  std::weak_ptr<FifoNode> fifo; // the FIFO this pipe belongs to, if any
  // The buffer's pages (fs/pipe.c: one pipe_buffer per page): the unread bytes of each, oldest
  // first; whether the last one takes more (a write merges into it, PIPE_BUF_FLAG_CAN_MERGE);
  // and pipe->tmp_page[], the freed pages a pipe keeps for its next writes: two since Linux 6.15
  // ("pipe: cache 2 pages instead of 1"; on Linux 6.18 a round of three pages written and read
  // allocates one page, of two none: hostbench-probe pipepages).
  std::deque<PipePage> pages;
  bool last_page_open = false;
  static constexpr std::uint32_t kTmpPages = 2;
  std::uint32_t tmp_pages = 0;
  // The core of the last read: the pages it emptied come back to writes (tmp_page[]), their lines in
  // its cache; a write on another core takes them back (-1: none yet).
  std::int32_t consumed_on = -1;

  std::uint64_t buffered() const { return nwrite - nread; }
  // pipe_full: with page slots, no slot is free; with a byte ring, no byte.
  bool full() const {
    return config.page_slots ? pages.size() >= config.slots() : buffered() >= config.capacity;
  }
  // anon_pipe_write merges the head of a write (its length modulo the page size: all of a short
  // one) into the last page when the pipe is not empty, that page takes merges and the head fits
  // behind what was written into it (`offset + chars <= PAGE_SIZE`). Returns the bytes merged.
  std::uint64_t mergeable(std::uint64_t total) const {
    const std::uint64_t head = total % kPage;
    return head > 0 && last_page_open && !pages.empty() && pages.back().end + head <= kPage ? head : 0;
  }
  // Writes none of whose bytes was read yet (a write read in part keeps its segment, first byte gone).
  std::uint64_t unread_messages() const {
    std::uint64_t n = 0;
    for (const auto& s : segments) n += s.first && s.start >= nread;
    return n;
  }
  IoStatus read(OpContext& ctx, std::uint16_t activity, std::uint64_t bytes, bool exact);
  IoStatus write(OpContext& ctx, std::uint16_t activity, const Message& message);
  void close_reader(OpContext& ctx, std::uint16_t activity);
  void close_writer(OpContext& ctx, std::uint16_t activity);

private:
  void wake(OpContext& ctx, WaitQueue& queue, std::uint16_t activity) {
    if (config.wake == WakePolicy::All)
      ctx.kernel.wake_all(ctx.core, queue, &ctx.thread, activity);
    else
      ctx.kernel.wake_one(ctx.core, queue, &ctx.thread, activity);
  }
  void take_text(OpContext& ctx, Message& into, std::uint64_t from, std::uint64_t to);
  // The core that wrote byte `at` (nwrite's numbering) into the buffer; -1 if no segment holds it.
  std::int32_t written_on(std::uint64_t at) const {
    for (const auto& s : segments)
      if (s.start <= at && at < s.end) return s.meta.written_on;
    return -1;
  }
  void enter(OpContext& ctx, std::uint16_t activity, bool woken);
  std::uint64_t store_pages(OpContext& ctx, std::uint16_t activity, std::uint64_t bytes,
                            std::uint64_t merged);
  std::uint64_t release_pages(std::uint64_t bytes);
  void filled(OpContext& ctx) { fill_changed(ctx, name, "bytes", buffered()); }
};

// A named pipe's file-system node: the pipe while some descriptor (or a pending open) refers to
// it, and the counters Linux's fifo_open waits on (an opener waits until the other side's counter
// moves, so a partner who opened and closed again still releases it).
struct FifoNode {
  explicit FifoNode(std::string path)
      : path(std::move(path)), wait_writer("fifo " + this->path + ": waiting for a writer to open"),
        wait_reader("fifo " + this->path + ": waiting for a reader to open") {}
  std::string path;
  std::shared_ptr<Pipe> pipe;
  std::uint64_t r_counter = 0, w_counter = 0;
  WaitQueue wait_writer, wait_reader;
};

// Every pipe of this kernel (the live ones are listed at the end of a run), and the FIFO opens in
// progress (blocked in the rendezvous), by thread.
class PipeState : public IpcState {
public:
  explicit PipeState(Kernel&) {}
  std::shared_ptr<Pipe> create(const std::string& name_prefix, const std::string& name, PipeConfig config) {
    auto id = static_cast<std::uint32_t>(pipes_.size() + 1);
    auto pipe =
        std::make_shared<Pipe>(id, name.empty() ? name_prefix + " " + std::to_string(id) : name, config);
    pipes_.push_back(pipe);
    return pipe;
  }
  std::map<std::uint32_t, std::shared_ptr<FifoNode>> pending_opens;

  void list(std::vector<IpcTable>& tables) const override {
    IpcTable table{"Pipes and FIFOs",
                   {"id", "name", "capacity", "bytes", "readers", "writers", "reads", "writes", "spurious"},
                   {}};
    for (const auto& weak : pipes_) {
      auto p = weak.lock();
      if (!p) continue;
      table.rows.push_back({std::to_string(p->id), p->name, std::to_string(p->config.capacity),
                            std::to_string(p->buffered()), std::to_string(p->readers),
                            std::to_string(p->writers), std::to_string(p->reads), std::to_string(p->writes),
                            std::to_string(p->spurious)});
    }
    if (!table.rows.empty()) tables.push_back(table);
  }
  void held(std::vector<Held>& out) const override {
    for (const auto& weak : pipes_)
      if (auto p = weak.lock(); p && p->buffered() > 0)
        out.push_back({p->name, p->unread_messages(), p->buffered()});
  }

private:
  std::vector<std::weak_ptr<Pipe>> pipes_;
};

// A woken thread runs its call again: note whether it was woken (not timed out), once.
bool consume_woken(Thread& thread) {
  if (thread.wait_result != WaitResult::Woken) return false;
  thread.wait_result = WaitResult::None;
  return true;
}

// A call that has already moved bytes returns that count instead of EAGAIN / ETIMEDOUT.
// A call that has moved bytes returns their count instead of waiting on: non-blocking, timed out, or
// with a signal to handle (pipe_write and pipe_read return what they did rather than -ERESTARTSYS).
bool cannot_wait(OpContext& ctx) {
  const Thread& t = ctx.thread;
  return t.op_nonblocking || t.wait_result == WaitResult::TimedOut ||
         t.wait_result == WaitResult::Interrupted || t.signal_pending || ctx.now() >= t.op_deadline;
}

// The read of bytes [from, to) takes every write whose first byte is among them: it receives it.
void Pipe::take_text(OpContext& ctx, Message& into, std::uint64_t from, std::uint64_t to) {
  bool had_sender = into.sender >= 0;
  for (const auto& s : segments) {
    if (s.start >= to) break;
    if (s.first && s.start >= from) {
      message_received(ctx, s.meta, name, 0); // its bytes are counted by the read (bytes_received)
      into.text += s.meta.text;
      if (!had_sender) {
        into.type = s.meta.type;
        into.priority = s.meta.priority;
        into.sender = s.meta.sender;
        into.id = s.meta.id;
        had_sender = true;
      }
    }
  }
  while (!segments.empty() && segments.front().end <= to) segments.pop_front();
}

// pipe_read / anon_pipe_write up to the loop: the descriptor (fdget_pos), rw_verify_area's
// security_file_permission, then the pipe's mutex (__pipe_lock), taken again after every sleep.
void Pipe::enter(OpContext& ctx, std::uint16_t activity, bool woken) {
  if (ctx.first_run()) {
    ctx.charge(activity, Primitive::fd_lookup);
    ctx.charge(activity, Primitive::security_hook);
  }
  if (ctx.first_run() || woken) ctx.charge(activity, Primitive::lock_acquire);
}

// anon_pipe_write: `merged` bytes go into the last page (mergeable()); the rest takes new pages of
// up to a page each, the pipe's tmp_pages first, then alloc_page. Returns the bytes written into
// pages the reader has had: the merged page, which it reads as it fills, and the tmp_pages, which it
// emptied.
std::uint64_t Pipe::store_pages(OpContext& ctx, std::uint16_t activity, std::uint64_t bytes,
                                std::uint64_t merged) {
  std::uint64_t reused = 0;
  if (merged > 0) {
    pages.back().end += merged;
    pages.back().unread += merged;
    bytes -= merged;
    reused += merged;
  }
  while (bytes > 0) {
    std::uint64_t n = std::min(bytes, kPage);
    if (tmp_pages > 0) {
      --tmp_pages;
      reused += n;
    } else {
      ctx.charge(activity, Primitive::page_alloc);
    }
    pages.push_back({n, n});
    bytes -= n;
  }
  last_page_open = !pages.empty() && pages.back().end < kPage;
  return reused;
}

// pipe_read: a page read empty is released (anon_pipe_buf_release keeps it in tmp_page[] when one of
// the two is free, and frees it otherwise). Returns the pages freed.
std::uint64_t Pipe::release_pages(std::uint64_t bytes) {
  std::uint64_t freed = 0;
  while (bytes > 0 && !pages.empty()) {
    std::uint64_t n = std::min(bytes, pages.front().unread);
    pages.front().unread -= n;
    bytes -= n;
    if (pages.front().unread == 0) {
      pages.pop_front();
      if (tmp_pages < kTmpPages)
        ++tmp_pages;
      else
        ++freed;
    }
  }
  if (pages.empty()) last_page_open = false;
  return freed;
}

IoStatus Pipe::read(OpContext& ctx, std::uint16_t activity, std::uint64_t bytes, bool exact) {
  Thread& t = ctx.thread;
  bool woken = consume_woken(t);
  enter(ctx, activity, woken);
  ObjectLock::Held held = mutex.take(ctx, activity); // pipe_read: __pipe_lock
  Message& message = t.script_locals().message;
  std::uint64_t done = t.op_progress;
  if (done == 0) message = Message{};
  for (;;) {
    if (done >= bytes) break;
    // The channel's exact read goes on after a chunk's wakeup: under the mutex again (Linux's
    // pipe_read keeps it; the model wakes after each chunk, as xv6, so it let go for the wakeup).
    if (!held.held()) held = mutex.take(ctx, activity);
    std::uint64_t available = buffered();
    if (available == 0) {
      if (writers == 0) break; // end of file: what we have (0 at once)
      if (woken) ++spurious;   // woken, and another reader took the data first (xv6's herd)
      if (done > 0 && cannot_wait(ctx)) break;
      held.release(); // __pipe_unlock before sleeping: a writer may come in
      return wait_on(ctx, read_wait, activity);
    }
    std::uint64_t n = std::min(available, bytes - done);
    const bool was_full = full();
    const std::uint64_t queued = available; // what the copy reads is among it
    const std::int32_t source = written_on(nread);
    take_text(ctx, message, nread, nread + n);
    bytes_received(ctx, name, n);
    nread += n;
    const std::uint64_t freed = release_pages(n);
    ctx.charge(activity, Primitive::page_free, ctx.kernel.model().costs.cycles(Primitive::page_free) * freed);
    filled(ctx);
    done += n;
    t.op_progress = done;
    woken = false;
    charge_copy(ctx, activity, n, bytes, queued, source); // kernel buffer -> user buffer
    consumed_on = static_cast<std::int32_t>(ctx.core.index);
    // __pipe_unlock, then the wakeup (pipe_read wakes the writers after unlocking). A pipe that was
    // full wakes its writers: __wake_up takes the queue's lock, sleepers or not.
    held.release();
    if (was_full) ctx.charge(activity, Primitive::waitqueue_op);
    wake(ctx, write_wait, activity);
    if (!exact) break;
  }
  held.release();
  // Wake-one: pass the wakeup on when data is left for another sleeping reader.
  if (config.wake == WakePolicy::One && buffered() > 0 && read_wait.head)
    ctx.kernel.wake_one(ctx.core, read_wait, &t, activity);
  message.bytes = done;
  ++reads;
  ctx.succeed(static_cast<std::int64_t>(done));
  return IoStatus::Done;
}

IoStatus Pipe::write(OpContext& ctx, std::uint16_t activity, const Message& message) {
  Thread& t = ctx.thread;
  bool woken = consume_woken(t);
  enter(ctx, activity, woken);
  ObjectLock::Held held = mutex.take(ctx, activity); // anon_pipe_write: __pipe_lock
  const std::uint64_t total = message.bytes;
  std::uint64_t done = t.op_progress;
  const bool atomic = total <= config.pipe_buf; // waits until the whole write fits
  while (done < total) {
    if (readers == 0) {
      // pipe(7): SIGPIPE, and EPIPE unless some bytes were already written (then their count).
      held.release();
      send_sigpipe(ctx, activity);
      if (done > 0) {
        ++writes;
        ctx.succeed(static_cast<std::int64_t>(done));
      } else {
        ctx.fail(activity, EPIPE);
      }
      return IoStatus::Done;
    }
    std::uint64_t left = total - done;
    // What may go in now. Page slots: the merge into the last page (at the write's start only, as
    // anon_pipe_write tries it once before its loop), then a page per free slot; a write of at most
    // a page so goes whole or waits, which is PIPE_BUF's atomicity there. Byte ring: the free bytes,
    // all of an atomic write or nothing.
    std::uint64_t merged = config.page_slots && done == 0 ? mergeable(total) : 0;
    std::uint64_t room = config.page_slots
                             ? merged + (config.slots() - std::min(config.slots(), pages.size())) * kPage
                             : config.capacity - buffered();
    if (room == 0 || (!config.page_slots && atomic && room < left)) {
      if (woken) ++spurious;
      if (done > 0 && cannot_wait(ctx)) break;
      held.release(); // __pipe_unlock before sleeping: a reader may come in
      return wait_on(ctx, write_wait, activity);
    }
    if (!held.held()) {
      // A chunk filled the pipe and its wakeup let a reader on another core make room: wait_event
      // finds the pipe writable at once, and anon_pipe_write takes the mutex again. Look again.
      ctx.charge(activity, Primitive::lock_acquire);
      held = mutex.take(ctx, activity);
      continue;
    }
    std::uint64_t chunk = std::min(room, left);
    // A byte ring has no slots; its bytes are still laid out in pages for what they cost.
    merged = config.page_slots ? std::min(merged, chunk) : mergeable(chunk);
    const bool was_empty = buffered() == 0;
    Segment segment{nwrite, nwrite + chunk, done == 0, message};
    segment.meta.written_on = static_cast<std::int32_t>(ctx.core.index);
    if (segment.first)
      message_sent(ctx, segment.meta, name, chunk);
    else
      bytes_sent(ctx, name, chunk);
    segments.push_back(std::move(segment));
    nwrite += chunk;
    filled(ctx);
    done += chunk;
    t.op_progress = done;
    woken = false;
    // Charged once the bytes are in, the message sent then: the pages they need, then the copy. No
    // reader sees them before the copy ends: the mutex is held until then.
    const std::uint64_t reused = store_pages(ctx, activity, chunk, merged);
    charge_copy(ctx, activity, chunk, total, buffered(), consumed_on, reused); // user buffer -> kernel buffer
    // __pipe_unlock, then the wakeup (anon_pipe_write wakes the readers after unlocking). A pipe
    // that was empty wakes its readers: __wake_up takes the queue's lock, sleepers or not.
    held.release();
    if (was_empty) ctx.charge(activity, Primitive::waitqueue_op);
    wake(ctx, read_wait, activity); // after each chunk, as pipewrite does
  }
  held.release();
  if (config.wake == WakePolicy::One && !full() && write_wait.head)
    ctx.kernel.wake_one(ctx.core, write_wait, &t, activity);
  ++writes;
  ctx.succeed(static_cast<std::int64_t>(done));
  return IoStatus::Done;
}

// pipe_release: the count changes under __pipe_lock.
void Pipe::close_reader(OpContext& ctx, std::uint16_t activity) {
  ObjectLock::Held held = mutex.take(ctx, activity);
  --readers;
  held.release();
  if (readers == 0) ctx.kernel.wake_all(ctx.core, write_wait, &ctx.thread, activity); // EPIPE
}

void Pipe::close_writer(OpContext& ctx, std::uint16_t activity) {
  ObjectLock::Held held = mutex.take(ctx, activity);
  --writers;
  held.release();
  if (writers == 0) ctx.kernel.wake_all(ctx.core, read_wait, &ctx.thread, activity); // end of file
}

// An open file description of a pipe: its read end, its write end, or both (a FIFO opened O_RDWR).
class PipeEnd : public OpenFile {
public:
  PipeEnd(std::shared_ptr<Pipe> pipe, bool can_read, bool can_write)
      : pipe(std::move(pipe)), can_read(can_read), can_write(can_write) {}
  std::shared_ptr<Pipe> pipe;
  const bool can_read, can_write;

  std::string describe() const override {
    return pipe->name + (can_read && can_write ? " (read and write)"
                         : can_read            ? " (read end)"
                                               : " (write end)");
  }
  IoStatus read(OpContext& ctx, std::uint16_t activity, std::uint64_t bytes) override {
    if (!can_read) return OpenFile::read(ctx, activity, bytes);
    return pipe->read(ctx, activity, bytes, false);
  }
  IoStatus write(OpContext& ctx, std::uint16_t activity, const Message& message) override {
    if (!can_write) return OpenFile::write(ctx, activity, message);
    return pipe->write(ctx, activity, message);
  }
  void on_last_close(OpContext& ctx, std::uint16_t activity) override {
    if (can_read) pipe->close_reader(ctx, activity);
    if (can_write) pipe->close_writer(ctx, activity);
    if (pipe->readers == 0 && pipe->writers == 0) {
      // free_pipe_info: the buffer goes with the pipe (a FIFO's too: its next open makes a new one).
      message_dropped(ctx, pipe->name, pipe->unread_messages(), pipe->buffered(),
                      "the pipe's last descriptor was closed with data unread");
      pipe->segments.clear();
      pipe->nread = pipe->nwrite;
      if (auto node = pipe->fifo.lock(); node && node->pipe == pipe) node->pipe.reset();
    }
  }
};

// ---- Load-time helpers ------------------------------------------------------------------------

std::vector<ParamSpec> config_params() {
  return {{"capacity", ParamType::Bytes, 65536, "bytes",
           "the pipe's buffer (Linux: 64 KiB; xv6's PIPESIZE: 512)", 1.0, 1073741824.0},
          {"pipe_buf", ParamType::Bytes, 4096, "bytes",
           "PIPE_BUF: writes of at most this many bytes are atomic (never split, never interleaved); at most "
           "the capacity; 0: none is (xv6)",
           0.0, 1073741824.0},
          {"wake",
           ParamType::Choice,
           "all",
           "",
           "who a write (read) wakes: all sleeping readers (writers), as xv6's wakeup; or one",
           std::nullopt,
           std::nullopt,
           {"all", "one"}},
          {"layout",
           ParamType::Choice,
           "auto",
           "",
           "pages: Linux's ring of page slots (capacity / 4096 of them; a write that needs a new page waits "
           "for a free slot); bytes: a ring of bytes, as xv6's; auto: pages when the capacity is a power of "
           "two pages and pipe_buf is 4096 (Linux's sizes), bytes otherwise",
           std::nullopt,
           std::nullopt,
           {"auto", "pages", "bytes"}}};
}

PipeConfig read_config(const json& f, const std::string& path, const std::string& file) {
  PipeConfig c;
  c.capacity = read_bytes(f.at("capacity"));
  c.pipe_buf = read_bytes(f.at("pipe_buf"));
  c.wake = f.at("wake") == "one" ? WakePolicy::One : WakePolicy::All;
  const std::string layout = f.at("layout");
  const std::uint64_t pages = c.capacity / kPage;
  const bool linux_sizes = c.capacity % kPage == 0 && std::has_single_bit(pages) && c.pipe_buf == kPage;
  c.page_slots = layout == "pages" || (layout == "auto" && linux_sizes);
  if (layout == "pages" && !linux_sizes) {
    if (c.capacity % kPage != 0 || !std::has_single_bit(pages))
      fail_at(file, join_path(path, "capacity"),
              "capacity " + std::to_string(c.capacity) +
                  " is not a power of two pages; Linux rounds a pipe's size up to one (round_pipe_size): "
                  "give " +
                  std::to_string(
                      kPage * std::bit_ceil(std::max<std::uint64_t>(1, (c.capacity + kPage - 1) / kPage))) +
                  ", or \"layout\": \"bytes\" for a ring of exactly this many bytes");
    fail_at(file, join_path(path, "pipe_buf"),
            "pipe_buf " + std::to_string(c.pipe_buf) +
                " with page slots: a write of at most a page is atomic there, so pipe_buf is 4096; give "
                "\"layout\": \"bytes\" for another");
  }
  if (c.pipe_buf > c.capacity)
    fail_at(file, join_path(path, "pipe_buf"),
            "pipe_buf " + std::to_string(c.pipe_buf) + " is larger than the capacity " +
                std::to_string(c.capacity) +
                ": a write of pipe_buf bytes could never fit; set pipe_buf to at "
                "most " +
                std::to_string(c.capacity) + " (0: no write is atomic, as in xv6)");
  return c;
}

ParamSpec fd_name(const std::string& what) { return {"fd", ParamType::String, nullptr, "", what}; }

// ---- pipe ---------------------------------------------------------------------------------------

class PipeOp : public SyscallOp {
public:
  PipeOp(std::uint16_t activity, std::string read_name, std::string write_name, PipeConfig config)
      : SyscallOp(activity, {}), read_name_(read_name), write_name_(write_name), config_(config) {}
  IoStatus call(OpContext& ctx) const override {
    ctx.sync();
    if (!ctx.kernel.new_ipc_object(ctx, "a pipe")) return fail_call(ctx, activity, ENFILE); // the run stops
    auto pipe = ctx.kernel.ipc<PipeState>().create("pipe", "", config_);
    pipe->readers = pipe->writers = 1;
    install_descriptor(ctx, read_name_, std::make_shared<PipeEnd>(pipe, true, false), activity);
    install_descriptor(ctx, write_name_, std::make_shared<PipeEnd>(pipe, false, true), activity);
    ctx.succeed();
    return IoStatus::Done;
  }

private:
  Symbol read_name_, write_name_;
  PipeConfig config_;
};

const OpRegistrar register_pipe_op(
    {"pipe",
     "create a pipe: two descriptors, its read end and its write end (pipe(2))",
     {"pipe op", "",
      [] {
        std::vector<ParamSpec> params{
            {"fds", ParamType::StringList, nullptr, "",
             "the two descriptors' names, [READ_NAME, WRITE_NAME], as fd[0] and fd[1]"}};
        for (auto& p : config_params()) params.push_back(p);
        return params;
      }()},
     [](const json& f, const std::string& path, CompileContext& ctx, Program& p, std::uint16_t a) {
       const json& fds = f.at("fds");
       std::string where = join_path(path, "fds");
       bool ok = fds.size() == 2;
       for (const auto& name : fds) ok = ok && name.is_string() && !name.get<std::string>().empty();
       if (!ok)
         fail_at(ctx.read.file, where,
                 "invalid value " + fds.dump() +
                     "; expected the two descriptors' names [READ_NAME, WRITE_NAME], such as [\"r\", \"w\"]");
       auto read_name = fds[0].get<std::string>(), write_name = fds[1].get<std::string>();
       if (read_name == write_name)
         fail_at(ctx.read.file, where,
                 "both ends are named \"" + read_name +
                     "\"; give the read end and the write end different names");
       p.ops.push_back(
           std::make_unique<PipeOp>(a, read_name, write_name, read_config(f, path, ctx.read.file)));
     }});

// ---- pipe_stat ----------------------------------------------------------------------------------

const std::vector<std::string>& stat_variables() {
  static const std::vector<std::string> names{"pipe.bytes", "pipe.readers", "pipe.writers",
                                              "pipe.reads", "pipe.writes",  "pipe.spurious"};
  return names;
}

class PipeStatOp : public SyscallOp {
public:
  PipeStatOp(std::uint16_t activity, std::string fd) : SyscallOp(activity, {}), fd_(fd) {}
  IoStatus call(OpContext& ctx) const override {
    auto* end = dynamic_cast<PipeEnd*>(lookup_descriptor(ctx, fd_));
    if (!end) return fail_call(ctx, activity, EBADF);
    Pipe& pipe = *end->pipe;
    ObjectLock::Held held = pipe.mutex.take(ctx, activity); // pipe_ioctl(FIONREAD): __pipe_lock
    auto& locals = ctx.thread.script_locals();
    const std::uint64_t values[] = {pipe.buffered(), pipe.readers, pipe.writers,
                                    pipe.reads,      pipe.writes,  pipe.spurious};
    for (std::size_t i = 0; i < stat_variables().size(); ++i)
      locals.set(stat_variables()[i], static_cast<std::int64_t>(values[i]));
    ctx.succeed(static_cast<std::int64_t>(pipe.buffered()));
    return IoStatus::Done;
  }

private:
  Symbol fd_;
};

const OpRegistrar register_pipe_stat_op(
    {"pipe_stat",
     "look at a pipe through a descriptor (as ioctl FIONREAD): sets pipe.bytes, pipe.readers, pipe.writers, "
     "pipe.reads, pipe.writes, pipe.spurious; {result} is pipe.bytes",
     {"pipe_stat op", "", {fd_name("a descriptor of the pipe (either end)")}},
     [](const json& f, const std::string&, CompileContext& ctx, Program& p, std::uint16_t a) {
       for (const auto& name : stat_variables()) ctx.assigned.push_back(name);
       p.ops.push_back(std::make_unique<PipeStatOp>(a, f.at("fd").get<std::string>()));
     }});

// ---- mkfifo and open ----------------------------------------------------------------------------

class MkfifoOp : public SyscallOp {
public:
  MkfifoOp(std::uint16_t activity, std::string path, std::uint32_t mode)
      : SyscallOp(activity, {}), path_(std::move(path)), mode_(mode) {}
  IoStatus call(OpContext& ctx) const override {
    const CallName filled = call_name(path_, NameKind::Path, ctx, "mkfifo", "path");
    if (!filled.ok()) return filled.fail(ctx, activity);
    const std::string& file_path = filled.name;
    ctx.sync();
    if (!ctx.kernel.new_ipc_object(ctx, "a FIFO")) return fail_call(ctx, activity, ENOSPC); // the run stops
    FsEntry* entry =
        ctx.kernel.ipc<FileSystem>().create(file_path, FileKind::Fifo, *ctx.thread.process, mode_);
    if (!entry) return fail_call(ctx, activity, EEXIST);
    entry->object = std::make_shared<FifoNode>(file_path);
    ctx.succeed();
    return IoStatus::Done;
  }

private:
  std::string path_;
  std::uint32_t mode_;
};

enum class OpenMode : std::uint8_t { Read, Write, ReadWrite };

class OpenOp : public SyscallOp {
public:
  OpenOp(std::uint16_t activity, std::string path, std::string fd, OpenMode mode, bool nonblock)
      : SyscallOp(activity, {}), path_(std::move(path)), fd_(fd), mode_(mode), nonblock_(nonblock) {}

  IoStatus call(OpContext& ctx) const override {
    Thread& t = ctx.thread;
    bool woken = consume_woken(t);
    ctx.sync();
    auto& state = ctx.kernel.ipc<PipeState>();
    if (t.op_progress == 0) return start(ctx, state);
    // Back from the rendezvous: has the other side opened since we started waiting?
    std::shared_ptr<FifoNode> node = state.pending_opens.at(t.id);
    std::uint64_t partner = mode_ == OpenMode::Read ? node->w_counter : node->r_counter;
    if (partner == t.op_progress - 1) {
      if (woken) ++node->pipe->spurious;
      return wait_on(ctx, mode_ == OpenMode::Read ? node->wait_writer : node->wait_reader, activity);
    }
    state.pending_opens.erase(t.id);
    return finish(ctx, node->pipe);
  }

private:
  IoStatus start(OpContext& ctx, PipeState& state) const {
    const CallName filled = call_name(path_, NameKind::Path, ctx, "open", "path");
    if (!filled.ok()) return filled.fail(ctx, activity);
    const std::string& file_path = filled.name;
    FsEntry* entry = ctx.kernel.ipc<FileSystem>().find(file_path);
    if (!entry) return fail_call(ctx, activity, ENOENT);
    const Process& process = *ctx.thread.process;
    std::uint32_t bits = entry->mode;
    if (process.spec->uid == entry->uid)
      bits >>= 6;
    else if (process.spec->gid == entry->gid)
      bits >>= 3;
    std::uint32_t need = (mode_ != OpenMode::Write ? 4u : 0u) | (mode_ != OpenMode::Read ? 2u : 0u);
    if (process.spec->uid != 0 && (bits & need) != need) return fail_call(ctx, activity, EACCES);
    if (entry->kind == FileKind::Socket) return fail_call(ctx, activity, ENXIO); // open(2) on a socket file
    if (entry->kind == FileKind::Regular)
      return fail_call(ctx, activity, EOPNOTSUPP); // no file contents modelled
    auto node = std::static_pointer_cast<FifoNode>(entry->object);
    if (mode_ == OpenMode::Write && nonblock_ && (!node->pipe || node->pipe->readers == 0))
      return fail_call(ctx, activity, ENXIO);
    if (!node->pipe) {
      node->pipe = state.create("fifo", "fifo " + file_path, PipeConfig{});
      node->pipe->fifo = node;
    }
    Pipe& pipe = *node->pipe;
    if (mode_ != OpenMode::Write) {
      ++pipe.readers;
      ++node->r_counter;
      ctx.kernel.wake_all(ctx.core, node->wait_reader, &ctx.thread, activity);
    }
    if (mode_ != OpenMode::Read) {
      ++pipe.writers;
      ++node->w_counter;
      ctx.kernel.wake_all(ctx.core, node->wait_writer, &ctx.thread, activity);
    }
    // The rendezvous: a reader waits for a writer and vice versa (O_RDWR and O_NONBLOCK reads never).
    bool wait = (mode_ == OpenMode::Read && !nonblock_ && pipe.writers == 0) ||
                (mode_ == OpenMode::Write && pipe.readers == 0);
    if (!wait) return finish(ctx, node->pipe);
    ctx.thread.op_progress = 1 + (mode_ == OpenMode::Read ? node->w_counter : node->r_counter);
    state.pending_opens[ctx.thread.id] = node;
    return wait_on(ctx, mode_ == OpenMode::Read ? node->wait_writer : node->wait_reader, activity);
  }

  IoStatus finish(OpContext& ctx, const std::shared_ptr<Pipe>& pipe) const {
    auto end = std::make_shared<PipeEnd>(pipe, mode_ != OpenMode::Write, mode_ != OpenMode::Read);
    end->nonblocking = nonblock_;
    install_descriptor(ctx, fd_, end, activity);
    ctx.succeed();
    return IoStatus::Done;
  }

  std::string path_;
  Symbol fd_;
  OpenMode mode_;
  bool nonblock_;
};

const OpRegistrar register_mkfifo_op(
    {"mkfifo",
     "create a named pipe (FIFO) at a path (mkfifo(3)); EEXIST when the path exists",
     {"mkfifo op", "", {path_param("the FIFO's path"), file_mode_param()}},
     [](const json& f, const std::string& path, CompileContext& ctx, Program& p, std::uint16_t a) {
       auto file = f.at("path").get<std::string>();
       check_path(file, join_path(path, "path"), ctx);
       p.ops.push_back(std::make_unique<MkfifoOp>(a, file, read_mode(f, path, ctx)));
     }});

const OpRegistrar register_open_op(
    {"open",
     "open a FIFO by path as a descriptor; a reader waits for a writer and vice versa (fifo(7))",
     {"open op",
      "",
      {path_param("the FIFO's path (made by mkfifo)"),
       fd_name("the new descriptor's name"),
       {"mode",
        ParamType::Choice,
        nullptr,
        "",
        "read (O_RDONLY), write (O_WRONLY) or readwrite (O_RDWR, never waits)",
        std::nullopt,
        std::nullopt,
        {"read", "write", "readwrite"}},
       {"nonblock", ParamType::Bool, false, "",
        "O_NONBLOCK: a read open returns at once, a write open with no reader fails with ENXIO; the "
        "descriptor stays non-blocking"}}},
     [](const json& f, const std::string& path, CompileContext& ctx, Program& p, std::uint16_t a) {
       auto file = f.at("path").get<std::string>();
       check_path(file, join_path(path, "path"), ctx);
       auto mode = f.at("mode").get<std::string>();
       OpenMode m = mode == "read" ? OpenMode::Read : mode == "write" ? OpenMode::Write : OpenMode::ReadWrite;
       p.ops.push_back(
           std::make_unique<OpenOp>(a, file, f.at("fd").get<std::string>(), m, f.at("nonblock").get<bool>()));
     }});

// ---- The channel --------------------------------------------------------------------------------

// send writes the whole message (continuing where it stopped); recv reads up to the next message
// boundary (StreamFraming), over as many partial reads as it takes (readn). The channel's ends never close:
// no end of file, no SIGPIPE.
class PipeChannel : public Channel {
public:
  PipeChannel(const ChannelSpec& spec, Kernel& kernel)
      : pipe_(kernel.ipc<PipeState>().create("channel", "channel " + spec.name,
                                             read_config(spec.params, "channels", "?"))),
        framing_(spec.name) {
    pipe_->readers = pipe_->writers = 1;
  }
  IoStatus send(OpContext& ctx, std::uint16_t activity, const Message& message) override {
    return framing_.send(ctx, activity, message.bytes, [&] { return pipe_->write(ctx, activity, message); });
  }
  IoStatus recv(OpContext& ctx, std::uint16_t activity, std::uint64_t bytes) override {
    return framing_.recv(ctx, activity, bytes,
                         [&](std::uint64_t target) { return pipe_->read(ctx, activity, target, true); });
  }

private:
  std::shared_ptr<Pipe> pipe_;
  StreamFraming framing_;
};

const MechanismRegistrar register_pipe_mechanism(
    {"pipe", "a pipe between the channel's senders and receivers: a byte stream, 64 KiB by default",
     ParamTable{"pipe channel", "", config_params()},
     [](const json& params, const std::string& path, const ReadContext& ctx) {
       read_config(params, path, ctx.file);
     },
     [](const ChannelSpec& spec, Kernel& kernel) -> std::unique_ptr<Channel> {
       return std::make_unique<PipeChannel>(spec, kernel);
     }});

} // namespace

} // namespace ipcsim
