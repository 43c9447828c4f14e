// hostbench: measures on the real machine what ipcsim models (docs/hostbench.md): round trips and
// streams over each IPC mechanism, a null system call, a context switch and memcpy. Linux only,
// native C++20, no simulator code. Times with clock_gettime(CLOCK_MONOTONIC) so that it runs the
// same on any x86-64 or arm64 CPU; that clock is system-wide, so two processes can time one
// interval between them.
#include <fcntl.h>
#include <fnmatch.h>
#include <linux/futex.h>
#include <mqueue.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/msg.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>
#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <functional>
#include <iostream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "siblings.hpp"

namespace {

constexpr int format_version = 1;
constexpr unsigned ring_slots = 10; // the course's BUFFER_SIZE (docs/shm.md)
const std::vector<std::size_t> message_sizes = {8, 64, 512, 4096, 8192, 65536, 1048576};
const std::vector<std::string> ipc_mechanisms = {"pipe",       "sysv_msg", "posix_mq",  "unix_stream",
                                                 "unix_dgram", "shm_spin", "shm_yield", "shm_futex"};

// ---- errors and cleanup ------------------------------------------------------------------------

// A cell that cannot run on this host (mechanism missing, permission): reported as a skip.
struct HostError {
  std::string what;
  bool limit = false; // a documented limit of the mechanism, not a failure
};

std::string errno_text(const char* call, int err = errno) {
  return std::string(call) + ": " + std::strerror(err);
}

// Objects that outlive the process unless removed: System V queues. The signal handler removes
// them, so they are kept in plain arrays it may read.
constexpr int max_sysv = 4;
volatile sig_atomic_t sysv_ids[max_sysv] = {-1, -1, -1, -1};
volatile sig_atomic_t child_pid = 0;
volatile sig_atomic_t in_child = 0;

void remove_sysv_queues() {
  for (int i = 0; i < max_sysv; ++i) {
    if (sysv_ids[i] >= 0) {
      msgctl(sysv_ids[i], IPC_RMID, nullptr);
      sysv_ids[i] = -1;
    }
  }
}

void write_stderr(const char* text) {
  ssize_t ignored = write(STDERR_FILENO, text, std::strlen(text));
  (void)ignored;
}

void on_fatal_signal(int sig) {
  if (in_child) _exit(128 + sig);
  if (child_pid > 0) kill(child_pid, SIGKILL);
  remove_sysv_queues();
  if (sig == SIGALRM)
    write_stderr("hostbench: a measurement cell took too long (peer process stuck?); aborted, IPC objects "
                 "removed\n");
  else if (sig == SIGUSR1)
    write_stderr("hostbench: the peer process failed (its message is above); aborted, IPC objects removed\n");
  else
    write_stderr("hostbench: interrupted; IPC objects removed\n");
  _exit(sig == SIGUSR1 || sig == SIGALRM ? 1 : 128 + sig);
}

void install_signal_handlers() {
  struct sigaction sa {};
  sa.sa_handler = on_fatal_signal;
  sigemptyset(&sa.sa_mask);
  for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGALRM, SIGUSR1}) sigaction(sig, &sa, nullptr);
}

// In the child: a failure is printed, the parent told (it cleans up), and the child exits.
[[noreturn]] void child_fail(const std::string& what) {
  std::string line = "hostbench: peer process: " + what + "\n";
  write_stderr(line.c_str());
  kill(getppid(), SIGUSR1);
  _exit(1);
}

// ---- timing and statistics ---------------------------------------------------------------------

std::int64_t now_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return std::int64_t(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

struct Stats {
  double median = 0, p99 = 0, min = 0;
  double p10 = 0, p90 = 0; // for the notes of the wakeup cells: their spread
};

Stats summarise(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  Stats s;
  std::size_t n = v.size();
  s.median = n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
  s.p99 = v[std::size_t(std::ceil(0.99 * double(n))) - 1]; // nearest rank
  s.p10 = v[std::size_t(std::ceil(0.10 * double(n))) - 1];
  s.p90 = v[std::size_t(std::ceil(0.90 * double(n))) - 1];
  s.min = v.front();
  return s;
}

// How long each cell runs: `warmup` untimed trials (fewer if they alone outlast the budget: a
// one-core busy-poll trial costs whole time slices), then at least min_trials, then until the
// budget is spent or max_trials.
struct Budget {
  int warmup;
  int min_trials;
  int max_trials;
  double seconds;
};

std::int64_t now_ns();

bool warmed_up(std::int64_t began, const Budget& budget) {
  return double(now_ns() - began) / 1e9 >= budget.seconds / 2;
}

struct Mode {
  bool quick = false;
  Budget ipc() const { return quick ? Budget{2, 3, 400, 0.03} : Budget{5, 20, 20000, 0.5}; }
  Budget single() const { return quick ? Budget{2, 5, 200, 0.02} : Budget{10, 20, 5000, 0.4}; }
  // Each idle time of the wakeup ladder: enough trials for its 10th and 90th percentiles.
  Budget ladder() const { return quick ? Budget{2, 10, 200, 0.02} : Budget{3, 30, 2000, 0.25}; }
};

// ---- pinning -----------------------------------------------------------------------------------

void pin_to(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  if (sched_setaffinity(0, sizeof set, &set) != 0) throw HostError{errno_text("sched_setaffinity")};
}

std::vector<int> allowed_cpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  std::vector<int> cpus;
  if (sched_getaffinity(0, sizeof set, &set) == 0) {
    for (int i = 0; i < CPU_SETSIZE; ++i)
      if (CPU_ISSET(i, &set)) cpus.push_back(i);
  }
  return cpus;
}

// ---- results -----------------------------------------------------------------------------------

struct Row {
  std::string kind, mechanism;
  std::size_t bytes;
  std::string placement;
  int trials;
  long ops_per_trial;
  Stats per_op;
};

struct Skip {
  std::string cell, reason;
  bool error; // the host refused something (as opposed to a documented limit)
};

std::string cell_name(const std::string& kind, const std::string& mechanism, std::size_t bytes,
                      const std::string& placement) {
  return kind + "," + mechanism + "," + std::to_string(bytes) + "," + placement;
}

std::string fmt(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.1f", v);
  return buf;
}

// ---- shared control page and channels ----------------------------------------------------------

// One page shared by the two processes of a cell: the producer's start time for streams.
struct Control {
  std::atomic<std::int64_t> stream_start_ns;
};

template <typename T> T* map_shared(std::size_t bytes) {
  void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) throw HostError{errno_text("mmap")};
  std::memset(p, 0, bytes); // touch every page now: no page fault inside a timed interval
  return static_cast<T*>(p);
}

int futex(std::atomic<std::uint32_t>* word, int op, std::uint32_t value) {
  return int(syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(word), op, value, nullptr, nullptr, 0));
}

// The course's ring: `in` and `out` on their own cache lines, then ring_slots slots of `size`.
struct Ring {
  alignas(64) std::atomic<std::uint32_t> in;
  alignas(64) std::atomic<std::uint32_t> out;
  alignas(64) char slots[1];
};
static_assert(std::atomic<std::uint32_t>::is_always_lock_free);

std::size_t ring_bytes(std::size_t size) { return offsetof(Ring, slots) + ring_slots * size; }

enum class Wait { spin, yield, futex };

// Waits while *word == seen, the way the mechanism waits.
void wait_while_equal(std::atomic<std::uint32_t>* word, std::uint32_t seen, Wait how) {
  while (word->load(std::memory_order_acquire) == seen) {
    if (how == Wait::yield)
      sched_yield();
    else if (how == Wait::futex)
      futex(word, FUTEX_WAIT, seen); // EAGAIN (changed meanwhile) and EINTR: the loop reloads
  }
}

// One direction of a cell: send and receive whole messages of `size` bytes.
class Channel {
public:
  virtual ~Channel() = default;
  virtual void send(const char* data) = 0;
  virtual void recv(char* data) = 0;
};

// Writes or reads all of `size` bytes over a byte stream (pipe, stream socket): a large message
// takes several partial writes and reads, as it does in the simulator.
void write_all(int fd, const char* data, std::size_t size, const char* what) {
  while (size > 0) {
    ssize_t n = write(fd, data, size);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw HostError{errno_text(what)};
    }
    data += n;
    size -= std::size_t(n);
  }
}

void read_all(int fd, char* data, std::size_t size, const char* what) {
  while (size > 0) {
    ssize_t n = read(fd, data, size);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw HostError{errno_text(what)};
    }
    if (n == 0) throw HostError{std::string(what) + ": end of file (the peer closed its end)"};
    data += n;
    size -= std::size_t(n);
  }
}

class FdStream : public Channel {
public:
  FdStream(int read_fd, int write_fd, std::size_t size, const char* name)
      : read_fd_(read_fd), write_fd_(write_fd), size_(size), name_(name) {}
  void send(const char* data) override { write_all(write_fd_, data, size_, name_); }
  void recv(char* data) override { read_all(read_fd_, data, size_, name_); }

private:
  int read_fd_, write_fd_;
  std::size_t size_;
  const char* name_;
};

class Datagram : public Channel {
public:
  Datagram(int fd, std::size_t size) : fd_(fd), size_(size) {}
  void send(const char* data) override {
    while (::send(fd_, data, size_, 0) < 0)
      if (errno != EINTR) throw HostError{errno_text("send (unix_dgram)")};
  }
  void recv(char* data) override {
    ssize_t n;
    while ((n = ::recv(fd_, data, size_, 0)) < 0)
      if (errno != EINTR) throw HostError{errno_text("recv (unix_dgram)")};
    if (std::size_t(n) != size_) throw HostError{"recv (unix_dgram): short datagram"};
  }

private:
  int fd_;
  std::size_t size_;
};

class SysvQueue : public Channel {
public:
  SysvQueue(int send_id, int recv_id, std::size_t size)
      : send_id_(send_id), recv_id_(recv_id), size_(size), buf_(sizeof(long) + size) {}
  void send(const char* data) override {
    long type = 1;
    std::memcpy(buf_.data(), &type, sizeof type);
    std::memcpy(buf_.data() + sizeof type, data, size_);
    while (msgsnd(send_id_, buf_.data(), size_, 0) != 0)
      if (errno != EINTR) throw HostError{errno_text("msgsnd")};
  }
  void recv(char* data) override {
    ssize_t n;
    while ((n = msgrcv(recv_id_, buf_.data(), size_, 0, 0)) < 0)
      if (errno != EINTR) throw HostError{errno_text("msgrcv")};
    std::memcpy(data, buf_.data() + sizeof(long), size_);
  }

private:
  int send_id_, recv_id_;
  std::size_t size_;
  std::vector<char> buf_;
};

class PosixQueue : public Channel {
public:
  PosixQueue(mqd_t send_q, mqd_t recv_q, std::size_t size) : send_q_(send_q), recv_q_(recv_q), size_(size) {}
  void send(const char* data) override {
    while (mq_send(send_q_, data, size_, 0) != 0)
      if (errno != EINTR) throw HostError{errno_text("mq_send")};
  }
  void recv(char* data) override {
    while (mq_receive(recv_q_, data, size_, nullptr) < 0)
      if (errno != EINTR) throw HostError{errno_text("mq_receive")};
  }

private:
  mqd_t send_q_, recv_q_;
  std::size_t size_;
};

class ShmRing : public Channel {
public:
  ShmRing(Ring* send_ring, Ring* recv_ring, std::size_t size, Wait how)
      : send_(send_ring), recv_(recv_ring), size_(size), how_(how) {}
  // while (((in + 1) % BUFFER_SIZE) == out) wait; buffer[in] = item; in = (in + 1) % BUFFER_SIZE;
  void send(const char* data) override {
    std::uint32_t in = send_->in.load(std::memory_order_relaxed);
    std::uint32_t next = (in + 1) % ring_slots;
    wait_while_equal(&send_->out, next, how_);
    std::memcpy(send_->slots + std::size_t(in) * size_, data, size_);
    send_->in.store(next, std::memory_order_release);
    if (how_ == Wait::futex) futex(&send_->in, FUTEX_WAKE, 1);
  }
  // while (in == out) wait; item = buffer[out]; out = (out + 1) % BUFFER_SIZE;
  void recv(char* data) override {
    std::uint32_t out = recv_->out.load(std::memory_order_relaxed);
    wait_while_equal(&recv_->in, out, how_);
    std::memcpy(data, recv_->slots + std::size_t(out) * size_, size_);
    recv_->out.store((out + 1) % ring_slots, std::memory_order_release);
    if (how_ == Wait::futex) futex(&recv_->out, FUTEX_WAKE, 1);
  }

private:
  Ring* send_;
  Ring* recv_;
  std::size_t size_;
  Wait how_;
};

// ---- limits of the host ------------------------------------------------------------------------

std::optional<long> read_proc_long(const char* path) {
  std::ifstream f(path);
  long v;
  if (f >> v) return v;
  return std::nullopt;
}

std::string read_first_line(const char* path) {
  std::ifstream f(path);
  std::string line;
  std::getline(f, line);
  return line;
}

// The largest message a mechanism takes here, or a reason it takes none of this size.
std::optional<std::string> size_limit_reason(const std::string& mechanism, std::size_t size) {
  if (mechanism == "sysv_msg") {
    auto msgmax = read_proc_long("/proc/sys/kernel/msgmax");
    if (msgmax && long(size) > *msgmax)
      return "larger than msgmax (" + std::to_string(*msgmax) + ", /proc/sys/kernel/msgmax)";
  }
  if (mechanism == "posix_mq") {
    auto max = read_proc_long("/proc/sys/fs/mqueue/msgsize_max");
    if (max && long(size) > *max)
      return "larger than mq_msgsize limit (" + std::to_string(*max) + ", /proc/sys/fs/mqueue/msgsize_max)";
  }
  return std::nullopt;
}

// ---- one IPC cell: the objects, created before the fork ----------------------------------------

// Everything a cell needs in both processes; the destructor removes it (the child _exits and never
// runs it).
class Endpoints {
public:
  Endpoints(const std::string& mechanism, std::size_t size) : mechanism_(mechanism), size_(size) {
    if (mechanism == "pipe") {
      if (pipe(a_) != 0 || pipe(b_) != 0) throw HostError{errno_text("pipe")};
    } else if (mechanism == "unix_stream" || mechanism == "unix_dgram") {
      int type = mechanism == "unix_stream" ? SOCK_STREAM : SOCK_DGRAM;
      if (socketpair(AF_UNIX, type, 0, a_) != 0) throw HostError{errno_text("socketpair")};
      if (mechanism == "unix_dgram") probe_datagram();
    } else if (mechanism == "sysv_msg") {
      for (int i = 0; i < 2; ++i) {
        int id = msgget(IPC_PRIVATE, IPC_CREAT | 0600);
        if (id < 0)
          throw HostError{errno == ENOSYS ? "System V message queues not available (msgget: " +
                                                std::string(std::strerror(errno)) + ")"
                                          : errno_text("msgget")};
        sysv_ids[i] = id;
      }
    } else if (mechanism == "posix_mq") {
      for (int i = 0; i < 2; ++i) {
        std::string name = "/hostbench-" + std::to_string(getpid()) + "-" + std::to_string(i);
        mq_attr attr{};
        long msg_max = read_proc_long("/proc/sys/fs/mqueue/msg_max").value_or(10);
        attr.mq_maxmsg = std::min(10L, msg_max);
        attr.mq_msgsize = long(size);
        mqd_t q = mq_open(name.c_str(), O_RDWR | O_CREAT | O_EXCL, 0600, &attr);
        if (q == mqd_t(-1)) {
          int err = errno;
          throw HostError{err == ENOSYS ? "POSIX message queues not available (mq_open: " +
                                              std::string(std::strerror(err)) + ")"
                                        : errno_text("mq_open", err)};
        }
        // The name is not needed once both processes share the descriptor (fork): unlink it
        // now, so nothing is left behind whatever happens next.
        mq_unlink(name.c_str());
        mq_[i] = q;
      }
    } else { // shm_*: two rings (requests and replies)
      ring_bytes_ = (ring_bytes(size) + 4095) / 4096 * 4096;
      rings_[0] = map_shared<Ring>(ring_bytes_);
      rings_[1] = map_shared<Ring>(ring_bytes_);
    }
  }
  ~Endpoints() {
    for (int fd : {a_[0], a_[1], b_[0], b_[1]})
      if (fd >= 0) close(fd);
    for (mqd_t q : mq_)
      if (q != mqd_t(-1)) mq_close(q);
    remove_sysv_queues();
    for (Ring* r : rings_)
      if (r) munmap(r, ring_bytes_);
  }
  Endpoints(const Endpoints&) = delete;
  Endpoints& operator=(const Endpoints&) = delete;

  // The channel of one side: side 0 sends on direction 0 and receives on 1; side 1 the reverse.
  std::unique_ptr<Channel> side(int s) {
    if (mechanism_ == "pipe")
      return std::make_unique<FdStream>(s == 0 ? b_[0] : a_[0], s == 0 ? a_[1] : b_[1], size_, "pipe");
    if (mechanism_ == "unix_stream") return std::make_unique<FdStream>(a_[s], a_[s], size_, "unix_stream");
    if (mechanism_ == "unix_dgram") return std::make_unique<Datagram>(a_[s], size_);
    if (mechanism_ == "sysv_msg") return std::make_unique<SysvQueue>(sysv_ids[s], sysv_ids[1 - s], size_);
    if (mechanism_ == "posix_mq") return std::make_unique<PosixQueue>(mq_[s], mq_[1 - s], size_);
    Wait how = mechanism_ == "shm_spin" ? Wait::spin : mechanism_ == "shm_yield" ? Wait::yield : Wait::futex;
    return std::make_unique<ShmRing>(rings_[s], rings_[1 - s], size_, how);
  }
  // After the fork, each process closes the ends it does not use, so a peer's death is an EOF.
  void keep_side(int s) {
    if (mechanism_ == "pipe") {
      close_fd(s == 0 ? a_[0] : a_[1]);
      close_fd(s == 0 ? b_[1] : b_[0]);
    } else if (mechanism_ == "unix_stream" || mechanism_ == "unix_dgram") {
      close_fd(a_[1 - s]);
    }
  }

private:
  static void close_fd(int& fd) {
    close(fd);
    fd = -1;
  }
  // A datagram larger than the socket's send buffer is refused (EMSGSIZE): find out before the fork.
  void probe_datagram() {
    std::vector<char> buf(size_);
    if (::send(a_[0], buf.data(), size_, MSG_DONTWAIT) < 0) {
      int err = errno;
      if (err == EMSGSIZE)
        throw HostError{"the kernel refuses a datagram this large (send: EMSGSIZE; socket send buffer "
                        "/proc/sys/net/core/wmem_default)",
                        true};
      throw HostError{errno_text("send (unix_dgram probe)", err)};
    }
    if (::recv(a_[1], buf.data(), size_, 0) < 0) throw HostError{errno_text("recv (unix_dgram probe)")};
  }

  std::string mechanism_;
  std::size_t size_;
  int a_[2] = {-1, -1}, b_[2] = {-1, -1};
  mqd_t mq_[2] = {mqd_t(-1), mqd_t(-1)};
  Ring* rings_[2] = {nullptr, nullptr};
  std::size_t ring_bytes_ = 0;
};

// ---- running a two-process cell ----------------------------------------------------------------

constexpr int cell_timeout_s = 300;

// Forks the peer, which pins itself and runs `peer`; returns its pid. The parent pins itself too.
pid_t start_peer(int parent_cpu, int child_cpu, const std::function<void()>& peer) {
  pin_to(parent_cpu);
  std::fflush(nullptr);
  pid_t pid = fork();
  if (pid < 0) throw HostError{errno_text("fork")};
  if (pid == 0) {
    in_child = 1;
    prctl(PR_SET_PDEATHSIG, SIGKILL); // never outlive the parent
    try {
      pin_to(child_cpu);
      peer();
    } catch (const HostError& e) {
      child_fail(e.what);
    }
    _exit(0);
  }
  child_pid = pid;
  return pid;
}

// If the parent gives up on a cell (an error), the peer is killed and reaped before the cell's
// objects go: it must not see them vanish and report a failure of its own.
struct PeerGuard {
  ~PeerGuard() {
    if (child_pid > 0) {
      pid_t pid = child_pid;
      kill(pid, SIGKILL);
      while (waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
      }
      child_pid = 0;
    }
  }
};

// `usage`, when given, receives the peer's resource usage (wait4).
void finish_peer(pid_t pid, rusage* usage = nullptr) {
  int status = 0;
  while (wait4(pid, &status, 0, usage) < 0 && errno == EINTR) {
  }
  child_pid = 0;
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    throw HostError{"the peer process ended abnormally (status " + std::to_string(status) + ")"};
}

// Tells a peer whether another trial follows: first byte of the message (round trips) or the
// control byte (streams).
constexpr char go_byte = 'g';
constexpr char quit_byte = 'q';

// The untimed control pipe from the parent to the peer (streams, context switch).
class ControlPipe {
public:
  ControlPipe() {
    if (pipe(fd_) != 0) throw HostError{errno_text("pipe")};
  }
  ~ControlPipe() {
    for (int fd : fd_)
      if (fd >= 0) close(fd);
  }
  ControlPipe(const ControlPipe&) = delete;
  ControlPipe& operator=(const ControlPipe&) = delete;
  void keep_read_end() { close_end(1); }
  void keep_write_end() { close_end(0); }
  void send(char c) { write_all(fd_[1], &c, 1, "control pipe"); }
  char receive() {
    char c;
    read_all(fd_[0], &c, 1, "control pipe");
    return c;
  }

private:
  void close_end(int i) {
    close(fd_[i]);
    fd_[i] = -1;
  }
  int fd_[2] = {-1, -1};
};

template <typename T> class SharedPage {
public:
  SharedPage() : p_(map_shared<T>(4096)) {}
  ~SharedPage() { munmap(p_, 4096); }
  SharedPage(const SharedPage&) = delete;
  SharedPage& operator=(const SharedPage&) = delete;
  T* operator->() const { return p_; }

private:
  T* p_;
};

struct Measured {
  int trials;
  long ops_per_trial;
  Stats per_op;
};

// Round trip: the parent is the client, the peer echoes each message until a message starts
// with quit_byte.
Measured roundtrip(const std::string& mechanism, std::size_t size, int cpu_a, int cpu_b,
                   const Budget& budget) {
  Endpoints ep(mechanism, size);
  PeerGuard guard;
  pid_t pid = start_peer(cpu_a, cpu_b, [&] {
    ep.keep_side(1);
    auto ch = ep.side(1);
    std::vector<char> buf(size);
    for (;;) {
      ch->recv(buf.data());
      if (buf[0] == quit_byte) return;
      ch->send(buf.data());
    }
  });
  ep.keep_side(0);
  auto ch = ep.side(0);
  std::vector<char> out(size, go_byte), back(size);
  std::vector<double> samples;
  std::int64_t began = now_ns();
  for (int i = 0;; ++i) {
    std::int64_t t0 = now_ns();
    ch->send(out.data());
    ch->recv(back.data());
    std::int64_t t1 = now_ns();
    if (i < budget.warmup && !warmed_up(began, budget)) continue;
    samples.push_back(double(t1 - t0));
    int n = int(samples.size());
    if (n >= budget.max_trials ||
        (n >= budget.min_trials && double(now_ns() - began) / 1e9 >= budget.seconds))
      break;
  }
  out[0] = quit_byte;
  ch->send(out.data());
  finish_peer(pid);
  return {int(samples.size()), 1, summarise(samples)};
}

// Messages per stream trial: enough to fill every channel's buffer several times over (pipe 64 KiB,
// System V 16 KiB, POSIX mq and the rings 10 messages), at most 32 MiB moved per trial. Busy
// polling on one core pays a time slice each time the ring fills or empties: 32 messages (three
// fills) show that and keep the cell short.
long stream_messages(const std::string& mechanism, std::size_t size, bool same_core) {
  if (mechanism == "shm_spin" && same_core) return 32;
  return std::clamp<long>(long((32u << 20) / size), 16, 1000);
}

// Stream: the peer produces, the parent consumes. A control pipe starts each trial (untimed): the
// producer reads its clock just before the first send and leaves it in the shared page.
// Each side's context switches in a stream, per message over the whole cell (warm-up included):
// voluntary (it slept: the buffer was full or empty) and involuntary (it was preempted, on one
// core by the other side's wakeup). On one core they say whether the two take turns a message at
// a time or a buffer at a time, which sets the throughput (docs/calibrate.md).
struct Switches {
  double writer_voluntary = 0, writer_involuntary = 0, reader_voluntary = 0, reader_involuntary = 0;
};

Measured stream(const std::string& mechanism, std::size_t size, int cpu_a, int cpu_b, const Budget& budget,
                Switches& switches) {
  rusage reader_before{};
  getrusage(RUSAGE_SELF, &reader_before);
  Endpoints ep(mechanism, size);
  ControlPipe ctl;
  SharedPage<Control> control;
  long n = stream_messages(mechanism, size, cpu_a == cpu_b);
  PeerGuard guard; // destroyed first: the peer is gone before its objects
  pid_t pid = start_peer(cpu_a, cpu_b, [&] {
    ctl.keep_read_end();
    ep.keep_side(1);
    auto ch = ep.side(1);
    std::vector<char> buf(size, 'd');
    while (ctl.receive() != quit_byte) {
      control->stream_start_ns.store(now_ns(), std::memory_order_release);
      for (long i = 0; i < n; ++i) ch->send(buf.data());
    }
  });
  ctl.keep_write_end();
  ep.keep_side(0);
  auto ch = ep.side(0);
  std::vector<char> buf(size);
  std::vector<double> samples;
  std::int64_t began = now_ns();
  long messages = 0;
  for (int t = 0;; ++t) {
    ctl.send(go_byte);
    for (long i = 0; i < n; ++i) ch->recv(buf.data());
    messages += n;
    std::int64_t t1 = now_ns();
    std::int64_t t0 = control->stream_start_ns.load(std::memory_order_acquire);
    if (t < budget.warmup && !warmed_up(began, budget)) continue;
    samples.push_back(double(t1 - t0) / double(n));
    int k = int(samples.size());
    if (k >= budget.max_trials ||
        (k >= budget.min_trials && double(now_ns() - began) / 1e9 >= budget.seconds))
      break;
  }
  ctl.send(quit_byte);
  rusage writer{}, reader_after{};
  finish_peer(pid, &writer);
  getrusage(RUSAGE_SELF, &reader_after);
  const double per = 1.0 / double(std::max(1L, messages));
  switches.writer_voluntary = double(writer.ru_nvcsw) * per;
  switches.writer_involuntary = double(writer.ru_nivcsw) * per;
  switches.reader_voluntary = double(reader_after.ru_nvcsw - reader_before.ru_nvcsw) * per;
  switches.reader_involuntary = double(reader_after.ru_nivcsw - reader_before.ru_nivcsw) * per;
  return {int(samples.size()), n, summarise(samples)};
}

// The mechanisms whose messages go through a send and a receive system call.
const std::vector<std::string> call_mechanisms = {"pipe", "sysv_msg", "posix_mq", "unix_stream",
                                                  "unix_dgram"};

double clock_read_ns();

// The clock's own cost, read once: a timed call's interval holds about one clock read.
double clock_read_cost_ns() {
  static const double cost = clock_read_ns();
  return cost;
}

// One side's calls in a one-core stream (send_call: the producer's sends, recv_call: the consumer's
// receives), each timed on its own, less one clock read: what one call costs, which the stream's
// throughput (a send and a receive together) cannot tell apart. The stream is hostbench's, the
// other side untimed; the median is the call that does not wait.
Measured stream_calls(const std::string& mechanism, std::size_t size, int cpu, bool time_sends,
                      const Budget& budget) {
  Endpoints ep(mechanism, size);
  ControlPipe ctl;
  long n = stream_messages(mechanism, size, true);
  const std::size_t shared_bytes = std::max<std::size_t>(4096, sizeof(double) * std::size_t(n));
  double* send_ns = map_shared<double>(shared_bytes); // the producer's calls of the last trial
  struct Unmap {
    void* p;
    std::size_t bytes;
    ~Unmap() { munmap(p, bytes); }
  } unmap{send_ns, shared_bytes};
  const double clock_cost = clock_read_cost_ns();
  PeerGuard guard; // destroyed first: the peer is gone before its objects
  pid_t pid = start_peer(cpu, cpu, [&] {
    ctl.keep_read_end();
    ep.keep_side(1);
    auto ch = ep.side(1);
    std::vector<char> buf(size, 'd');
    while (ctl.receive() != quit_byte)
      for (long i = 0; i < n; ++i) {
        std::int64_t t0 = time_sends ? now_ns() : 0;
        ch->send(buf.data());
        if (time_sends) send_ns[i] = double(now_ns() - t0);
      }
  });
  ctl.keep_write_end();
  ep.keep_side(0);
  auto ch = ep.side(0);
  std::vector<char> buf(size);
  std::vector<double> samples, recv_ns(std::size_t(n), 0);
  std::int64_t began = now_ns();
  for (int t = 0;; ++t) {
    ctl.send(go_byte);
    for (long i = 0; i < n; ++i) {
      std::int64_t t0 = time_sends ? 0 : now_ns();
      ch->recv(buf.data());
      if (!time_sends) recv_ns[std::size_t(i)] = double(now_ns() - t0);
    }
    if (t < budget.warmup && !warmed_up(began, budget)) continue;
    // The producer's last send returned before the consumer's last receive did: its times are in.
    for (long i = 0; i < n; ++i)
      samples.push_back(std::max(0.0, (time_sends ? send_ns[i] : recv_ns[std::size_t(i)]) - clock_cost));
    int k = int(samples.size() / std::size_t(n));
    if (k >= budget.max_trials ||
        (k >= budget.min_trials && double(now_ns() - began) / 1e9 >= budget.seconds))
      break;
  }
  ctl.send(quit_byte);
  finish_peer(pid);
  return {int(samples.size() / std::size_t(n)), n, summarise(samples)};
}

// Waking a halted core: the parent (the reader) blocks in read() on a pipe; the peer (the writer,
// on the other CPU) waits until the reader has been blocked for wake_idle_ns, then writes one
// byte. Each trial gives two times: from the write's start to the reader's return (`wakeup`: what
// leaving idle costs the woken core, plus the two calls), and the write() itself (`wakeup_call`:
// what sending the wakeup costs the waker; on a virtual machine the IPI to a halted vCPU is a trap
// to the hypervisor). The idle time is a round trip's: short, before a deeper idle state.
constexpr std::int64_t wake_idle_ns = 20000;
// The wakeup ladder (notes with the wakeup cell): the reader woken after each of these idle times,
// us; each note the idle time, the wakeup's median, 10th and 90th percentiles, the trials and the
// writer's write() median over the same trials (the waker's cost can depend on the state too).
// Leaving idle can cost more after a longer idle period (a deeper C-state; on a virtual machine, a
// host that polls a halted vCPU for a while before it deschedules it): dense around 100-200 us,
// where KVM's halt polling (halt_poll_ns, 200 us by default) and the guest's haltpoll end. From
// 2 us: a shorter idle time races the reader's own way into its sleep (on the AMD EPYC guest a
// 1 us rung's median was 7.3, 48 and 10 us in three runs, its 10th percentile below the 2 us
// rung's: some writes found the reader not yet asleep).
constexpr std::int64_t wake_ladder_us[] = {2,   5,   10,  20,  50,   100,  125, 150,
                                           175, 200, 300, 500, 1000, 2000, 5000};

struct WakeShared {
  std::atomic<std::int64_t> blocking_at, written_at, call_ns;
  std::atomic<int> step; // 2i + 1: round i's reader is about to block; 2i + 2: written; -1: quit
};

// `other`, when given, receives the other time's summary over the same trials (the call's for a
// wakeup, the wakeup's for a call).
Measured wakeup(bool call, int cpu_a, int cpu_b, const Budget& budget, std::int64_t idle_ns = wake_idle_ns,
                Stats* other = nullptr) {
  ControlPipe wake; // the pipe the reader blocks on; closed on every way out
  SharedPage<WakeShared> shared;
  shared->step.store(0);
  PeerGuard guard;
  pid_t pid = start_peer(cpu_a, cpu_b, [&] {
    wake.keep_write_end();
    for (int i = 0;; ++i) {
      int step;
      while ((step = shared->step.load(std::memory_order_acquire)) != 2 * i + 1 && step != -1) {
      }
      if (step == -1) return;
      const std::int64_t blocking = shared->blocking_at.load(std::memory_order_acquire);
      while (now_ns() - blocking < idle_ns) {
      }
      const std::int64_t t0 = now_ns();
      shared->written_at.store(t0, std::memory_order_release);
      wake.send('w');
      shared->call_ns.store(now_ns() - t0, std::memory_order_release);
      shared->step.store(2 * i + 2, std::memory_order_release);
    }
  });
  wake.keep_read_end();
  std::vector<double> samples, others;
  std::int64_t began = now_ns();
  for (int i = 0;; ++i) {
    shared->blocking_at.store(now_ns(), std::memory_order_release);
    shared->step.store(2 * i + 1, std::memory_order_release);
    wake.receive();
    const std::int64_t woke = now_ns();
    while (shared->step.load(std::memory_order_acquire) != 2 * i + 2) {
    }
    if (i < budget.warmup && !warmed_up(began, budget)) continue;
    const double call_ns = double(shared->call_ns.load()), wake_ns = double(woke - shared->written_at.load());
    samples.push_back(call ? call_ns : wake_ns);
    others.push_back(call ? wake_ns : call_ns);
    int k = int(samples.size());
    if (k >= budget.max_trials ||
        (k >= budget.min_trials && double(now_ns() - began) / 1e9 >= budget.seconds))
      break;
  }
  shared->step.store(-1, std::memory_order_release);
  finish_peer(pid);
  if (other) *other = summarise(others);
  return {int(samples.size()), 1, summarise(samples)};
}

// Runs trials of `ops` operations of `op` in this process; time per operation.
Measured single(long ops, const Budget& budget, const std::function<void()>& op) {
  std::vector<double> samples;
  std::int64_t began = now_ns();
  for (int t = 0;; ++t) {
    std::int64_t t0 = now_ns();
    for (long i = 0; i < ops; ++i) op();
    std::int64_t t1 = now_ns();
    if (t < budget.warmup && !warmed_up(began, budget)) continue;
    samples.push_back(double(t1 - t0) / double(ops));
    int k = int(samples.size());
    if (k >= budget.max_trials ||
        (k >= budget.min_trials && double(now_ns() - began) / 1e9 >= budget.seconds))
      break;
  }
  return {int(samples.size()), ops, summarise(samples)};
}

// Context switch: both processes on one CPU call sched_yield in a loop; the parent times its
// loop. With two runnable processes each yield hands the CPU over, so a trial of y yields per
// process is 2y switches (each including one sched_yield call). The fraction of the parent's
// yields that really switched (from getrusage) is returned for the file.
Measured context_switch(int cpu, const Budget& budget, double& switched_fraction) {
  constexpr long yields = 500;
  ControlPipe ctl;
  PeerGuard guard;
  pid_t pid = start_peer(cpu, cpu, [&] {
    ctl.keep_read_end();
    while (ctl.receive() != quit_byte)
      for (long i = 0; i < yields; ++i) sched_yield();
  });
  ctl.keep_write_end();
  std::vector<double> samples;
  long switches = 0, total_yields = 0;
  std::int64_t began = now_ns();
  for (int t = 0;; ++t) {
    ctl.send(go_byte);
    sched_yield(); // let the peer read the byte and start its loop
    rusage before{}, after{};
    getrusage(RUSAGE_SELF, &before);
    std::int64_t t0 = now_ns();
    for (long i = 0; i < yields; ++i) sched_yield();
    std::int64_t t1 = now_ns();
    getrusage(RUSAGE_SELF, &after);
    // Let the peer finish its loop before the next trial starts.
    for (int spin = 0; spin < 4; ++spin) sched_yield();
    if (t < budget.warmup && !warmed_up(began, budget)) continue;
    switches += (after.ru_nvcsw - before.ru_nvcsw) + (after.ru_nivcsw - before.ru_nivcsw);
    total_yields += yields;
    samples.push_back(double(t1 - t0) / double(2 * yields));
    int k = int(samples.size());
    if (k >= budget.max_trials ||
        (k >= budget.min_trials && double(now_ns() - began) / 1e9 >= budget.seconds))
      break;
  }
  ctl.send(quit_byte);
  finish_peer(pid);
  switched_fraction = total_yields ? double(switches) / double(total_yields) : 0;
  return {int(samples.size()), 2 * yields, summarise(samples)};
}

// ---- the machine -------------------------------------------------------------------------------

std::string cpuinfo_value(const std::string& key) {
  std::ifstream f("/proc/cpuinfo");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind(key, 0) == 0) {
      auto colon = line.find(':');
      if (colon != std::string::npos) {
        std::string v = line.substr(colon + 1);
        v.erase(0, v.find_first_not_of(" \t"));
        return v;
      }
    }
  }
  return "";
}

std::string hypervisor() {
#if defined(__x86_64__) || defined(__i386__)
  unsigned a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return "unknown";
  if (!(c & (1u << 31))) return "none (CPUID hypervisor bit clear)";
  __cpuid(0x40000000, a, b, c, d);
  char vendor[13] = {};
  std::memcpy(vendor, &b, 4);
  std::memcpy(vendor + 4, &c, 4);
  std::memcpy(vendor + 8, &d, 4);
  for (char& ch : vendor)
    if (ch && (ch < 32 || ch > 126)) ch = '?';
  return std::string("present (CPUID hypervisor bit set; vendor \"") + vendor + "\")";
#else
  return "unknown (no CPUID on this architecture)";
#endif
}

std::string run_command(const char* cmd) {
  FILE* p = popen(cmd, "r");
  if (!p) return "";
  char buf[256] = {};
  std::string out;
  if (std::fgets(buf, sizeof buf, p)) out = buf;
  pclose(p);
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
  return out;
}

double clock_read_ns() {
  std::vector<double> v;
  for (int t = 0; t < 101; ++t) {
    std::int64_t t0 = now_ns();
    for (int i = 0; i < 100; ++i) now_ns();
    v.push_back(double(now_ns() - t0) / 101);
  }
  return summarise(v).median;
}

std::vector<std::pair<std::string, std::string>> describe_machine(const Mode& mode, const std::string& only,
                                                                  const std::vector<int>& cpus) {
  std::vector<std::pair<std::string, std::string>> kv;
  std::time_t t = std::time(nullptr);
  char date[32];
  std::strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  kv.emplace_back("tool", "hostbench " + std::to_string(format_version));
  kv.emplace_back("date", date);
  kv.emplace_back("mode",
                  std::string(mode.quick ? "quick" : "full") + (only.empty() ? "" : " --only " + only));
  std::string model = cpuinfo_value("model name");
  if (model.empty()) {
    std::string impl = cpuinfo_value("CPU implementer"), part = cpuinfo_value("CPU part");
    model = impl.empty() ? "unknown" : "CPU implementer " + impl + ", CPU part " + part;
  }
  kv.emplace_back("cpu_model", model);
  std::string mhz = cpuinfo_value("cpu MHz");
  if (!mhz.empty()) kv.emplace_back("cpu_mhz", mhz);
  kv.emplace_back("cpus_online", std::to_string(cpus.size()) + " allowed to this process, " +
                                     std::to_string(sysconf(_SC_NPROCESSORS_ONLN)) + " online");
  std::string used = cpus.empty() ? "none" : "same_core on CPU " + std::to_string(cpus[0]);
  if (cpus.size() >= 2)
    used += ", cross_core on CPUs " + std::to_string(cpus[0]) + " and " + std::to_string(cpus[1]);
  kv.emplace_back("cpus_used", used);
  utsname u{};
  if (uname(&u) == 0)
    kv.emplace_back("kernel", std::string(u.sysname) + " " + u.release + " " + u.version + " " + u.machine);
  std::string cs = read_first_line("/sys/devices/system/clocksource/clocksource0/current_clocksource");
  kv.emplace_back("clocksource", cs.empty() ? "unknown" : cs);
  timespec res{};
  clock_getres(CLOCK_MONOTONIC, &res);
  kv.emplace_back("clock_resolution_ns", std::to_string(res.tv_sec * 1000000000L + res.tv_nsec));
  kv.emplace_back("clock_read_ns", fmt(clock_read_ns()));
  kv.emplace_back("hypervisor", hypervisor());
  std::string virt = run_command("systemd-detect-virt 2>/dev/null");
  kv.emplace_back("virtualisation", virt.empty() ? "unknown (systemd-detect-virt not available)" : virt);
  auto proc = [&](const char* key, const char* path) {
    auto v = read_proc_long(path);
    kv.emplace_back(key, v ? std::to_string(*v) : std::string("unknown (") + path + " unreadable)");
  };
  proc("limit.sysv_msgmax", "/proc/sys/kernel/msgmax");
  proc("limit.sysv_msgmnb", "/proc/sys/kernel/msgmnb");
  proc("limit.mq_msgsize_max", "/proc/sys/fs/mqueue/msgsize_max");
  proc("limit.mq_msg_max", "/proc/sys/fs/mqueue/msg_max");
  kv.emplace_back("load_before", read_first_line("/proc/loadavg"));
  return kv;
}

// Whether the two CPUs of the cross-core cells share a core (siblings.hpp): "RATIO (what it
// says: ...)", or why it could not be told. Leaves this process's affinity as it found it.
std::string siblings_line(int cpu, int other, double seconds) {
  cpu_set_t before;
  CPU_ZERO(&before);
  sched_getaffinity(0, sizeof before, &before);
  const auto r = hostbench_siblings::measure(cpu, other, seconds);
  sched_setaffinity(0, sizeof before, &before);
  if (!r) return "unknown (the two CPUs could not both be used)";
  char text[256];
  std::snprintf(text, sizeof text,
                "%.2f (64 KiB copies on CPU %d ran at %.2f of their rate alone while CPU %d copied too: %s)",
                r->ratio(), cpu, r->ratio(), other, hostbench_siblings::verdict(r->ratio()));
  return text;
}

// ---- the command line and the plan -------------------------------------------------------------

// A cell is selected when any comma-separated pattern matches its name "kind,mechanism,bytes,
// placement": as a glob when it has * ? or [, else as a substring.
bool selected(const std::vector<std::string>& patterns, const std::string& name) {
  if (patterns.empty()) return true;
  for (const auto& p : patterns) {
    if (p.find_first_of("*?[") != std::string::npos ? fnmatch(p.c_str(), name.c_str(), 0) == 0
                                                    : name.find(p) != std::string::npos)
      return true;
  }
  return false;
}

std::vector<std::string> split_patterns(const std::string& s) {
  std::vector<std::string> out;
  std::string cur;
  for (char c : s) {
    if (c == '|') {
      if (!cur.empty()) out.push_back(cur);
      cur.clear();
    } else {
      cur += c;
    }
  }
  if (!cur.empty()) out.push_back(cur);
  return out;
}

void usage(std::ostream& os) {
  os << "usage: hostbench [--quick] [--out FILE.csv] [--only PATTERN] [--list]\n"
        "  Measures IPC round trips and streams (and each side's call on one core), a null system\n"
        "  call, a context switch and memcpy on\n"
        "  this machine, and writes the CSV described in docs/hostbench.md (to stdout without --out).\n"
        "  --quick         a few seconds in all instead of a few minutes (fewer trials per cell)\n"
        "  --out FILE.csv  write the results to FILE.csv\n"
        "  --only PATTERN  only cells whose name \"kind,mechanism,bytes,placement\" matches PATTERN:\n"
        "                  a substring, or a glob with * ? [ ]; several patterns separated by |\n"
        "                  e.g. --only null_syscall, --only 'roundtrip,pipe,*', --only 'stream|memcpy'\n"
        "  --list          print the names of the cells that would run, and exit\n";
}

} // namespace

int main(int argc, char** argv) {
  Mode mode;
  std::string out_path, only;
  bool list = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--quick") {
      mode.quick = true;
    } else if (a == "--list") {
      list = true;
    } else if (a == "--out" || a == "--only") {
      if (i + 1 >= argc) {
        std::cerr << "hostbench: " << a << " needs a value\n";
        usage(std::cerr);
        return 2;
      }
      (a == "--out" ? out_path : only) = argv[++i];
    } else if (a == "-h" || a == "--help") {
      usage(std::cout);
      return 0;
    } else {
      std::cerr << "hostbench: unknown argument '" << a << "'\n";
      usage(std::cerr);
      return 2;
    }
  }
  auto patterns = split_patterns(only);
  std::vector<int> cpus = allowed_cpus();
  if (cpus.empty()) {
    std::cerr << "hostbench: sched_getaffinity found no CPU this process may run on\n";
    return 1;
  }

  // The plan: every cell in a fixed order, then the selection.
  struct Cell {
    std::string kind, mechanism;
    std::size_t bytes;
    std::string placement;
  };
  std::vector<Cell> plan;
  for (const char* kind : {"roundtrip", "stream"})
    for (const auto& m : ipc_mechanisms)
      for (const char* placement : {"same_core", "cross_core"})
        for (std::size_t s : message_sizes) plan.push_back({kind, m, s, placement});
  for (const char* kind : {"send_call", "recv_call"})
    for (const auto& m : call_mechanisms)
      for (std::size_t s : message_sizes) plan.push_back({kind, m, s, "same_core"});
  for (const char* kind : {"wakeup", "wakeup_call"}) plan.push_back({kind, "pipe", 1, "cross_core"});
  plan.push_back({"null_syscall", "getppid", 0, "same_core"});
  plan.push_back({"context_switch", "sched_yield", 0, "same_core"});
  plan.push_back({"lone_yield", "sched_yield", 0, "same_core"});
  for (std::size_t s = 4096; s <= (64u << 20); s *= 2) plan.push_back({"memcpy", "memcpy", s, "same_core"});
  std::erase_if(plan, [&](const Cell& c) {
    return !selected(patterns, cell_name(c.kind, c.mechanism, c.bytes, c.placement));
  });
  if (plan.empty()) {
    std::cerr << "hostbench: --only '" << only
              << "' matches no cell (names look like roundtrip,pipe,8,same_core; see --list)\n";
    return 2;
  }
  if (list) {
    for (const auto& c : plan) std::cout << cell_name(c.kind, c.mechanism, c.bytes, c.placement) << "\n";
    return 0;
  }
  std::ofstream out_file;
  if (!out_path.empty()) {
    out_file.open(out_path);
    if (!out_file) {
      std::cerr << "hostbench: cannot write '" << out_path << "': " << std::strerror(errno) << "\n";
      return 2;
    }
  }

  install_signal_handlers();
  signal(SIGPIPE, SIG_IGN); // a dead peer is an EPIPE error, not a silent death
  auto machine = describe_machine(mode, only, cpus);
  if (cpus.size() >= 2 &&
      std::any_of(plan.begin(), plan.end(), [](const Cell& c) { return c.placement == "cross_core"; }))
    machine.emplace_back("cross_core_siblings", siblings_line(cpus[0], cpus[1], mode.quick ? 0.5 : 1.0));
  std::vector<Row> rows;
  std::vector<Skip> skips;
  std::vector<std::pair<std::string, std::string>> notes;
  int cpu_a = cpus[0], cpu_b = cpus.size() >= 2 ? cpus[1] : -1;

  // memcpy buffers: allocated once, touched, reused by every size.
  std::vector<char> copy_src, copy_dst;

  for (const auto& c : plan) {
    std::string name = cell_name(c.kind, c.mechanism, c.bytes, c.placement);
    std::cerr << "hostbench: " << name << " ... " << std::flush;
    try {
      std::optional<Measured> m;
      if (c.kind == "roundtrip" || c.kind == "stream" || c.kind == "send_call" || c.kind == "recv_call") {
        if (c.placement == "cross_core" && cpu_b < 0) {
          skips.push_back({name, "only one CPU available to this process", false});
          std::cerr << "skipped (one CPU)\n";
          continue;
        }
        if (auto reason = size_limit_reason(c.mechanism, c.bytes)) {
          skips.push_back({name, *reason, false});
          std::cerr << "skipped (" << *reason << ")\n";
          continue;
        }
        int other = c.placement == "same_core" ? cpu_a : cpu_b;
        alarm(cell_timeout_s);
        if (c.kind == "roundtrip")
          m = roundtrip(c.mechanism, c.bytes, cpu_a, other, mode.ipc());
        else if (c.kind == "stream") {
          Switches sw;
          m = stream(c.mechanism, c.bytes, cpu_a, other, mode.ipc(), sw);
          char text[160];
          std::snprintf(text, sizeof text, "%s %.4f %.4f %.4f %.4f", name.c_str(), sw.writer_voluntary,
                        sw.writer_involuntary, sw.reader_voluntary, sw.reader_involuntary);
          notes.emplace_back("switches_per_message", text);
        } else
          m = stream_calls(c.mechanism, c.bytes, cpu_a, c.kind == "send_call", mode.ipc());
        alarm(0);
      } else if (c.kind == "wakeup" || c.kind == "wakeup_call") {
        if (cpu_b < 0) {
          skips.push_back({name, "only one CPU available to this process", false});
          std::cerr << "skipped (one CPU)\n";
          continue;
        }
        alarm(cell_timeout_s);
        m = wakeup(c.kind == "wakeup_call", cpu_a, cpu_b, mode.ipc());
        alarm(0);
        // The spread of the wakeups, which the row's median and p99 do not pin down: its middle 80%.
        notes.emplace_back(c.kind + "_p10_p90_ns", fmt(m->per_op.p10) + " " + fmt(m->per_op.p90));
        if (c.kind == "wakeup")
          for (std::int64_t idle_us : wake_ladder_us) {
            alarm(cell_timeout_s);
            Stats call{};
            Measured at = wakeup(false, cpu_a, cpu_b, mode.ladder(), idle_us * 1000, &call);
            alarm(0);
            notes.emplace_back("wakeup_after_idle_ns",
                               std::to_string(idle_us * 1000) + " " + fmt(at.per_op.median) + " " +
                                   fmt(at.per_op.p10) + " " + fmt(at.per_op.p90) + " " +
                                   std::to_string(at.trials) + " " + fmt(call.median));
            std::cerr << "\n  after " << idle_us << " us idle: median " << fmt(at.per_op.median)
                      << " ns, the write " << fmt(call.median) << " ns" << std::flush;
          }
        if (c.kind == "wakeup") std::cerr << "\n  the cell, after " << wake_idle_ns / 1000 << " us idle: ";
      } else if (c.kind == "null_syscall") {
        pin_to(cpu_a);
        m = single(1000, mode.single(), [] { syscall(SYS_getppid); });
      } else if (c.kind == "lone_yield") {
        // sched_yield with nothing else runnable on the CPU: the system call and schedule()
        // picking the caller again, no switch (what splits the switch's pieces, docs/calibrate.md).
        pin_to(cpu_a);
        m = single(1000, mode.single(), [] { sched_yield(); });
      } else if (c.kind == "context_switch") {
        double fraction = 0;
        alarm(cell_timeout_s);
        m = context_switch(cpu_a, mode.single(), fraction);
        alarm(0);
        notes.emplace_back("context_switch_switched_fraction",
                           fmt(fraction * 100) + "% of the parent's sched_yield calls switched "
                                                 "(getrusage); expected about 100%");
      } else { // memcpy
        pin_to(cpu_a);
        if (copy_src.size() < c.bytes) {
          copy_src.assign(c.bytes, 's');
          copy_dst.assign(c.bytes, 'd');
        }
        long ops = std::clamp<long>(long((16u << 20) / c.bytes), 1, 4096);
        char* dst = copy_dst.data();
        const char* src = copy_src.data();
        std::size_t n = c.bytes;
        m = single(ops, mode.single(), [&] {
          std::memcpy(dst, src, n);
          // Keep the copy: the compiler may not drop a memcpy whose result is read.
          asm volatile("" : : "r"(dst) : "memory");
        });
      }
      rows.push_back({c.kind, c.mechanism, c.bytes, c.placement, m->trials, m->ops_per_trial, m->per_op});
      std::cerr << "median " << fmt(m->per_op.median) << " ns\n";
    } catch (const HostError& e) {
      alarm(0);
      skips.push_back({name, e.what, !e.limit});
      std::cerr << (e.limit ? "skipped: " : "FAILED: ") << e.what << "\n";
    }
  }

  std::ostringstream csv;
  csv << "# hostbench " << format_version << "\n";
  for (const auto& [k, v] : machine) csv << "# " << k << ": " << v << "\n";
  for (const auto& [k, v] : notes) csv << "# " << k << ": " << v << "\n";
  for (const auto& s : skips) csv << "# skip: " << s.cell << ": " << s.reason << "\n";
  csv << "kind,mechanism,bytes,placement,trials,ops_per_trial,median_ns,p99_ns,min_ns,bytes_per_s\n";
  for (const auto& r : rows) {
    csv << r.kind << "," << r.mechanism << "," << r.bytes << "," << r.placement << "," << r.trials << ","
        << r.ops_per_trial << "," << fmt(r.per_op.median) << "," << fmt(r.per_op.p99) << ","
        << fmt(r.per_op.min) << ",";
    if (r.kind == "stream" || r.kind == "memcpy") csv << fmt(double(r.bytes) * 1e9 / r.per_op.median);
    csv << "\n";
  }
  if (out_path.empty()) {
    std::cout << csv.str();
  } else {
    out_file << csv.str();
    out_file.close();
    if (!out_file) {
      std::cerr << "hostbench: writing '" << out_path << "' failed\n";
      return 1;
    }
    std::cerr << "hostbench: wrote " << rows.size() << " cells to " << out_path << "\n";
  }
  long failed = std::count_if(skips.begin(), skips.end(), [](const Skip& s) { return s.error; });
  if (failed > 0) {
    std::cerr << "hostbench: " << failed
              << " cell(s) failed on this host (listed as '# skip:' lines with the error)\n";
    return 1;
  }
  return 0;
}
