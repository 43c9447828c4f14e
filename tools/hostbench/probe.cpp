// hostbench-probe: measurements behind docs/hostbench.md's analysis of cross-core streams, and
// checks of the kernel's buffer rules the models follow (native C++, no simulator code; Linux
// only). Not part of the CSV that calibrate fits.
//
//   hostbench-probe sides MECH BYTES COUNT READER_CPU
//     A stream of COUNT messages of BYTES (MECH: pipe, dgram, stream, mq, sysv) from a writer pinned
//     to CPU 0 to a reader pinned to READER_CPU (1: across two cores, 0: on one). Prints the time
//     per message, the time each side spends inside its system call per message (the mean, and the
//     median call: what one call costs when it does not wait), and each side's voluntary and
//     involuntary context switches (getrusage): whether a side sleeps in the stream.
//
//   hostbench-probe wake ROUNDS IDLE_US...
//     A reader on CPU 0 blocks in read() on a pipe; a writer on CPU 1 waits IDLE_US microseconds
//     after the reader announced it is about to block, then writes one byte. Prints the median,
//     10th and 90th percentile of the time from the write to the reader's return, per IDLE_US:
//     whether waking an idle core costs more the longer it has been idle.
//
//   hostbench-probe duplex TYPE BYTES ROUNDS CPU
//     Round trips of BYTES between two processes pinned to CPU over Unix sockets of TYPE (stream
//     or dgram): first over one socketpair used both ways (as hostbench's cells), then over two
//     socketpairs, one each way. Prints the 10th, 50th and 90th percentile round trip and the
//     client's voluntary and involuntary switches per round trip for each: on one socket the
//     server's read of a stream request wakes the client blocked reading the same socket
//     (unix_write_space on the shared wait queue), docs/unix-socket.md.
//
//   hostbench-probe sndbuf BYTES...
//     On a fresh Unix socketpair of each type with the default send buffer, non-blocking writes of
//     BYTES until EAGAIN: how many were taken, their bytes, and the send queue after the first
//     (SIOCOUTQ: sk_wmem_alloc, the sk_buff's truesize), docs/unix-socket.md.
//
//   hostbench-probe pipefill BYTES...
//     On a fresh pipe of the default size, non-blocking writes of BYTES until one is refused or cut
//     short: how many went and their bytes (the page slots and merges of docs/pipe.md).
//
//   hostbench-probe siblings
//     A 64 KiB memcpy loop on CPU 0 for a second alone, then for a second while CPU 1 runs the same
//     loop: the ratio of the two rates. Near 1, the two CPUs are separate cores; well below, they
//     share one (SMT siblings), and two sides of a cross-core stream slow each other down.
//
//   hostbench-probe usercopy
//     On CPU 0, one thread: a write and a read of the same size through a pipe (1 MiB, so nothing
//     waits), a send and a recv of one datagram on a socketpair, and two memcpy calls, at 512 B to
//     64 KiB (the best of 5 runs of 20,000). Each pair copies the bytes twice, so the slope from 512
//     B to 8 KiB is the kernel's copy_from_user / copy_to_user rate (its data in L1 and L2) beside
//     glibc's memcpy: on the AMD EPYC guest about 2 to 4 times slower, a cost the model charges at
//     memcpy's rate (docs/calibrate.md).
//
//   hostbench-probe pipepages ROUNDS
//     Rounds of 1, 2 and 3 pages written into a pipe and read back; prints the page allocations a
//     round makes (/proc/vmstat's pgalloc_*): how many freed pages a pipe keeps (docs/pipe.md).
#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <linux/sockios.h>
#include <mqueue.h>
#include <sched.h>
#include <string>
#include <sys/ioctl.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/msg.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

#include "siblings.hpp"

namespace {

using Clock = std::chrono::steady_clock;

double ns_since(Clock::time_point start) {
  return std::chrono::duration<double, std::nano>(Clock::now() - start).count();
}

void pin(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  if (sched_setaffinity(0, sizeof set, &set) != 0) {
    std::perror("sched_setaffinity");
    std::exit(1);
  }
}

struct Switches {
  long voluntary, involuntary;
};
Switches switches() {
  rusage r{};
  getrusage(RUSAGE_SELF, &r);
  return {r.ru_nvcsw, r.ru_nivcsw};
}

// What the two sides report through shared memory.
struct Report {
  double in_call_ns;
  double median_call_ns;
  Switches switches;
};

double median(std::vector<double> values) {
  if (values.empty()) return 0;
  auto middle = values.begin() + static_cast<std::ptrdiff_t>(values.size() / 2);
  std::nth_element(values.begin(), middle, values.end());
  return *middle;
}

// A System V message: the type, then the bytes.
struct SysvMessage {
  long type;
  char text[1];
};

int sides(const std::string& mech, std::size_t bytes, long count, int reader_cpu) {
  if (bytes == 0 || count <= 0 || reader_cpu < 0) {
    std::fprintf(stderr, "BYTES and COUNT must be above 0, READER_CPU at least 0\n");
    return 2;
  }
  int fds[2] = {-1, -1};
  mqd_t mq = -1;
  const char* mq_name = "/hostbench-probe";
  if (mech == "pipe") {
    if (pipe(fds) != 0) return std::perror("pipe"), 1;
  } else if (mech == "dgram" || mech == "stream") {
    if (socketpair(AF_UNIX, mech == "dgram" ? SOCK_DGRAM : SOCK_STREAM, 0, fds) != 0)
      return std::perror("socketpair"), 1;
  } else if (mech == "mq") {
    mq_unlink(mq_name);
    mq_attr attr{};
    attr.mq_maxmsg = 10;
    attr.mq_msgsize = static_cast<long>(bytes);
    mq = mq_open(mq_name, O_CREAT | O_RDWR, 0600, &attr);
    if (mq == -1) return std::perror("mq_open"), 1;
  } else if (mech != "sysv") {
    std::fprintf(stderr, "unknown mechanism %s (pipe, dgram, stream, mq, sysv)\n", mech.c_str());
    return 2;
  }
  // A pipe reads at fds[0]; a socket pair's writer uses one end and its reader the other.
  const int reader_fd = mech == "pipe" ? fds[0] : fds[1], writer_fd = mech == "pipe" ? fds[1] : fds[0];
  auto* shared = static_cast<Report*>(
      mmap(nullptr, sizeof(Report), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0));
  int go[2];
  if (shared == MAP_FAILED || pipe(go) != 0) return std::perror("setup"), 1;
  int msqid = -1;
  if (mech == "sysv") {
    msqid = msgget(IPC_PRIVATE, IPC_CREAT | 0600);
    if (msqid == -1) return std::perror("msgget"), 1;
  }
  std::vector<char> buffer(sizeof(long) + bytes, 'x');
  reinterpret_cast<SysvMessage*>(buffer.data())->type = 1;
  std::vector<double> calls;
  calls.reserve(static_cast<std::size_t>(count));
  pid_t pid = fork();
  if (pid == 0) {
    pin(reader_cpu);
    char c;
    if (read(go[0], &c, 1) != 1) _exit(1);
    Switches before = switches();
    double in_call = 0;
    std::size_t received = 0;
    const std::size_t total = bytes * static_cast<std::size_t>(count);
    while (received < total) {
      auto start = Clock::now();
      ssize_t n = mq != -1      ? mq_receive(mq, buffer.data(), bytes, nullptr)
                  : msqid != -1 ? msgrcv(msqid, buffer.data(), bytes, 0, 0)
                                : read(reader_fd, buffer.data(), bytes);
      calls.push_back(ns_since(start));
      in_call += calls.back();
      if (n <= 0) _exit(1);
      received += static_cast<std::size_t>(n);
    }
    Switches after = switches();
    *shared = {
        in_call, median(calls), {after.voluntary - before.voluntary, after.involuntary - before.involuntary}};
    _exit(0);
  }
  pin(0);
  Switches before = switches();
  double in_call = 0;
  auto start = Clock::now();
  if (write(go[1], "g", 1) != 1) return 1;
  for (long i = 0; i < count; ++i) {
    auto call = Clock::now();
    if (mq != -1) {
      if (mq_send(mq, buffer.data(), bytes, 0) != 0) return std::perror("mq_send"), 1;
    } else if (msqid != -1) {
      if (msgsnd(msqid, buffer.data(), bytes, 0) != 0) return std::perror("msgsnd"), 1;
    } else {
      for (std::size_t off = 0; off < bytes;) {
        ssize_t n = write(writer_fd, buffer.data() + off, bytes - off);
        if (n <= 0) return std::perror("write"), 1;
        off += static_cast<std::size_t>(n);
      }
    }
    calls.push_back(ns_since(call));
    in_call += calls.back();
  }
  int status = 0;
  waitpid(pid, &status, 0);
  const double total_ns = ns_since(start);
  Switches after = switches();
  if (mq != -1) mq_unlink(mq_name);
  if (msqid != -1) msgctl(msqid, IPC_RMID, nullptr);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) return std::fprintf(stderr, "reader failed\n"), 1;
  const double n = static_cast<double>(count);
  std::printf("%s %zu B x %ld, reader on CPU %d: %.3f us a message; in the call: writer %.3f us, reader "
              "%.3f us; median call: writer %.3f us, reader %.3f us; context switches "
              "(voluntary/involuntary): writer %ld/%ld, reader %ld/%ld\n",
              mech.c_str(), bytes, count, reader_cpu, total_ns / n / 1e3, in_call / n / 1e3,
              shared->in_call_ns / n / 1e3, median(calls) / 1e3, shared->median_call_ns / 1e3,
              after.voluntary - before.voluntary, after.involuntary - before.involuntary,
              shared->switches.voluntary, shared->switches.involuntary);
  return 0;
}

long now_ns() {
  timespec t{};
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1000000000L + t.tv_nsec;
}

struct WakeShared {
  std::atomic<long> blocking_at, written_at;
  std::atomic<int> step;
};

int wake(int rounds, const std::vector<long>& idle_us) {
  if (rounds <= 0) return std::fprintf(stderr, "ROUNDS must be above 0\n"), 2;
  auto* shared = static_cast<WakeShared*>(
      mmap(nullptr, sizeof(WakeShared), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0));
  int fds[2];
  if (shared == MAP_FAILED || pipe(fds) != 0) return std::perror("setup"), 1;
  for (long idle : idle_us) {
    shared->step = 0;
    pid_t pid = fork();
    if (pid == 0) { // the writer
      pin(1);
      for (int i = 0; i < rounds; ++i) {
        while (shared->step.load() != 2 * i + 1) {
        }
        const long blocking = shared->blocking_at.load();
        while (now_ns() - blocking < idle * 1000) {
        }
        shared->written_at.store(now_ns());
        shared->step.store(2 * i + 2);
        char c = 'x';
        if (write(fds[1], &c, 1) != 1) _exit(1);
      }
      _exit(0);
    }
    pin(0);
    std::vector<long> latency;
    for (int i = 0; i < rounds; ++i) {
      shared->blocking_at.store(now_ns());
      shared->step.store(2 * i + 1);
      char c;
      if (read(fds[0], &c, 1) != 1) return 1;
      const long woke = now_ns();
      while (shared->step.load() != 2 * i + 2) {
      }
      latency.push_back(woke - shared->written_at.load());
    }
    waitpid(pid, nullptr, 0);
    std::sort(latency.begin(), latency.end());
    const std::size_t n = latency.size();
    std::printf("idle %ld us: wakeup to return %.2f us median, p10 %.2f, p90 %.2f\n", idle,
                latency[n / 2] / 1e3, latency[n / 10] / 1e3, latency[n * 9 / 10] / 1e3);
  }
  return 0;
}

} // namespace

// ---- duplex: one socketpair both ways against two ----------------------------------------------

void read_full(int fd, char* buf, std::size_t n) {
  while (n > 0) {
    ssize_t r = read(fd, buf, n);
    if (r <= 0) std::exit(1);
    buf += r;
    n -= std::size_t(r);
  }
}

int duplex(const std::string& type, std::size_t bytes, int rounds, int cpu) {
  if ((type != "stream" && type != "dgram") || bytes == 0 || bytes > 65536 || rounds < 1) {
    std::fprintf(stderr, "duplex: TYPE stream or dgram, BYTES 1 to 65536, ROUNDS at least 1\n");
    return 2;
  }
  pin(cpu);
  for (bool one : {true, false}) {
    int a[2], b[2];
    const int kind = type == "stream" ? SOCK_STREAM : SOCK_DGRAM;
    if (socketpair(AF_UNIX, kind, 0, a) != 0 || socketpair(AF_UNIX, kind, 0, b) != 0) {
      std::perror("socketpair");
      return 1;
    }
    // The client writes requests on a[0] and reads replies on a[0] (one) or b[0] (two).
    const int reply_w = one ? a[1] : b[1], reply_r = one ? a[0] : b[0];
    const int warm = 100;
    std::vector<char> buf(bytes, 1);
    pid_t child = fork();
    if (child == 0) {
      for (int i = 0; i < warm + rounds; ++i) {
        read_full(a[1], buf.data(), bytes);
        if (write(reply_w, buf.data(), bytes) != ssize_t(bytes)) _exit(1);
      }
      _exit(0);
    }
    std::vector<double> rtt;
    rusage before{}, after{};
    for (int i = 0; i < warm + rounds; ++i) {
      if (i == warm) getrusage(RUSAGE_SELF, &before);
      auto start = Clock::now();
      if (write(a[0], buf.data(), bytes) != ssize_t(bytes)) return 1;
      read_full(reply_r, buf.data(), bytes);
      if (i >= warm) rtt.push_back(ns_since(start));
    }
    getrusage(RUSAGE_SELF, &after);
    waitpid(child, nullptr, 0);
    for (int fd : {a[0], a[1], b[0], b[1]}) close(fd);
    std::sort(rtt.begin(), rtt.end());
    auto at = [&](double q) { return rtt[std::size_t(q * double(rtt.size() - 1))]; };
    std::printf("%s %zu B, %s: round trip p10 %.0f p50 %.0f p90 %.0f ns; client switches per round trip: "
                "%.2f voluntary, %.2f involuntary\n",
                type.c_str(), bytes, one ? "one socketpair both ways" : "two socketpairs", at(0.1), at(0.5),
                at(0.9), double(after.ru_nvcsw - before.ru_nvcsw) / rounds,
                double(after.ru_nivcsw - before.ru_nivcsw) / rounds);
  }
  return 0;
}

// ---- sndbuf: what a socket's send buffer takes ------------------------------------------------

int sndbuf(const std::vector<std::size_t>& sizes) {
  std::vector<char> buf(*std::max_element(sizes.begin(), sizes.end()), 'x');
  for (int type : {SOCK_STREAM, SOCK_DGRAM})
    for (std::size_t bytes : sizes) {
      int sv[2];
      if (socketpair(AF_UNIX, type, 0, sv) != 0 || fcntl(sv[0], F_SETFL, O_NONBLOCK) != 0) {
        std::perror("socketpair");
        return 1;
      }
      long sends = 0, total = 0;
      int first_outq = -1;
      for (;;) {
        ssize_t r = send(sv[0], buf.data(), bytes, 0);
        if (r <= 0) break;
        ++sends;
        total += r;
        if (sends == 1 && ioctl(sv[0], SIOCOUTQ, &first_outq) != 0) first_outq = -1;
        if (std::size_t(r) < bytes) break; // a stream write that took part of its bytes: full now
      }
      const char* why = errno == EAGAIN ? "EAGAIN" : std::strerror(errno);
      std::printf("%s %zu B: %ld writes, %ld bytes, then %s; send queue after the first %d bytes\n",
                  type == SOCK_STREAM ? "stream" : "dgram", bytes, sends, total,
                  sends && total % long(bytes) ? "a short write" : why, first_outq);
      close(sv[0]);
      close(sv[1]);
    }
  return 0;
}

// ---- pipefill and pipepages: a pipe's page slots and spare pages -------------------------------

int pipefill(const std::vector<std::size_t>& sizes) {
  std::vector<char> buf(*std::max_element(sizes.begin(), sizes.end()), 'x');
  for (std::size_t bytes : sizes) {
    int p[2];
    if (pipe(p) != 0 || fcntl(p[1], F_SETFL, O_NONBLOCK) != 0) {
      std::perror("pipe");
      return 1;
    }
    long writes = 0, total = 0;
    ssize_t r = 0;
    while ((r = write(p[1], buf.data(), bytes)) > 0) {
      ++writes;
      total += r;
      if (std::size_t(r) < bytes) break;
    }
    std::printf("pipe %zu B: %ld writes, %ld bytes, then %s\n", bytes, writes, total,
                r > 0 ? "a short write" : (errno == EAGAIN ? "EAGAIN" : std::strerror(errno)));
    close(p[0]);
    close(p[1]);
  }
  return 0;
}

long page_allocations() {
  FILE* f = std::fopen("/proc/vmstat", "r");
  if (!f) return -1;
  char key[128];
  long value = 0, sum = 0;
  while (std::fscanf(f, "%127s %ld", key, &value) == 2)
    if (std::strncmp(key, "pgalloc_", 8) == 0) sum += value;
  std::fclose(f);
  return sum;
}

int pipepages(long rounds) {
  if (page_allocations() < 0) {
    std::perror("/proc/vmstat");
    return 1;
  }
  std::vector<char> buf(3 * 4096, 'x');
  for (int pages = 1; pages <= 3; ++pages) {
    int p[2];
    if (pipe(p) != 0) {
      std::perror("pipe");
      return 1;
    }
    const long before = page_allocations();
    for (long i = 0; i < rounds; ++i) {
      for (int k = 0; k < pages; ++k)
        if (write(p[1], buf.data(), 4096) != 4096) return 1;
      if (read(p[0], buf.data(), 4096 * pages) != 4096 * pages) return 1;
    }
    const long after = page_allocations();
    std::printf("%d page(s) written and read back a round: %.3f page allocations a round (%ld rounds)\n",
                pages, double(after - before) / double(rounds), rounds);
    close(p[0]);
    close(p[1]);
  }
  return 0;
}

// ---- siblings: do CPUs 0 and 1 share a core? ----------------------------------------------------

int siblings() {
  const auto r = hostbench_siblings::measure(0, 1, 1.0);
  if (!r) {
    std::fprintf(stderr, "siblings: CPUs 0 and 1 are not both available to this process\n");
    return 1;
  }
  std::printf("64 KiB copies on CPU 0: %.0f/s alone, %.0f/s with CPU 1 copying too (%.2f: %s)\n", r->alone,
              r->shared, r->ratio(), hostbench_siblings::verdict(r->ratio()));
  return 0;
}

// ---- usercopy: the kernel's copies to and from user memory beside memcpy --------------------------

int usercopy() {
  pin(0);
  int p[2], sv[2];
  if (pipe(p) != 0 || fcntl(p[1], F_SETPIPE_SZ, 1 << 20) < 0 || socketpair(AF_UNIX, SOCK_DGRAM, 0, sv) != 0) {
    std::perror("usercopy: pipe, F_SETPIPE_SZ or socketpair");
    return 1;
  }
  static char from[65536], to[65536];
  constexpr int kRounds = 20000;
  // The best of 5 runs: ns per pair of copies of `n` bytes.
  auto best_of = [&](auto&& pair) {
    double best = 1e300;
    for (int run = 0; run < 5; ++run) {
      const auto start = Clock::now();
      for (int i = 0; i < kRounds; ++i) pair();
      best = std::min(best, ns_since(start) / kRounds);
    }
    return best;
  };
  // A call that moves less than `n` ends the probe with what failed (a user's smaller socket send
  // buffer refuses a 64 KiB datagram: EMSGSIZE).
  auto whole = [](const char* call, ssize_t got, std::size_t n) {
    if (got == ssize_t(n)) return;
    if (got < 0)
      std::fprintf(stderr, "usercopy: %s of %zu bytes: %s\n", call, n, std::strerror(errno));
    else
      std::fprintf(stderr, "usercopy: %s of %zu bytes moved %zd\n", call, n, got);
    std::exit(1);
  };
  const std::size_t sizes[] = {512, 4096, 8192, 16384, 32768, 65536};
  std::vector<std::array<double, 3>> ns;
  std::printf("%8s %16s %16s %16s\n", "bytes", "pipe write+read", "dgram send+recv", "two memcpy");
  for (std::size_t n : sizes) {
    std::array<double, 3> t{};
    t[0] = best_of([&] {
      whole("pipe write", write(p[1], from, n), n);
      whole("pipe read", read(p[0], to, n), n);
    });
    t[1] = best_of([&] {
      whole("datagram send", send(sv[0], from, n, 0), n);
      whole("datagram recv", recv(sv[1], to, n, 0), n);
    });
    t[2] = best_of([&] {
      std::memcpy(to, from, n);
      asm volatile("" : : "r"(to) : "memory");
      std::memcpy(from, to, n);
      asm volatile("" : : "r"(from) : "memory");
    });
    ns.push_back(t);
    std::printf("%8zu %13.1f ns %13.1f ns %13.1f ns\n", n, t[0], t[1], t[2]);
  }
  // 512 B and 8 KiB are sizes[0] and sizes[2]: two copies of 7680 more bytes.
  auto rate = [&](int k) { return 2.0 * (8192 - 512) / (ns[2][k] - ns[0][k]); }; // bytes per ns = GB/s
  std::printf("per copy from 512 B to 8 KiB: pipe %.1f GB/s, datagram %.1f GB/s, memcpy %.1f GB/s\n", rate(0),
              rate(1), rate(2));
  return 0;
}

int main(int argc, char** argv) {
  const std::string usage =
      "usage: hostbench-probe sides MECH BYTES COUNT READER_CPU | wake ROUNDS IDLE_US... | duplex TYPE BYTES "
      "ROUNDS CPU | sndbuf BYTES... | pipefill BYTES... | pipepages ROUNDS | siblings | usercopy\n(BYTES: 1 "
      "to "
      "67108864)\n";
  if (argc >= 6 && std::string(argv[1]) == "sides")
    return sides(argv[2], std::strtoul(argv[3], nullptr, 10), std::strtol(argv[4], nullptr, 10),
                 std::atoi(argv[5]));
  if (argc >= 4 && std::string(argv[1]) == "wake") {
    std::vector<long> idle;
    for (int i = 3; i < argc; ++i) idle.push_back(std::strtol(argv[i], nullptr, 10));
    return wake(std::atoi(argv[2]), idle);
  }
  // sndbuf and pipefill: sizes of 1 byte to 64 MiB, written from one buffer of the largest.
  auto sizes_from = [&](std::vector<std::size_t>& sizes) {
    for (int i = 2; i < argc; ++i) {
      char* end = nullptr;
      const unsigned long long n = std::strtoull(argv[i], &end, 10);
      if (*end || n == 0 || n > (64ull << 20)) return false;
      sizes.push_back(std::size_t(n));
    }
    return !sizes.empty();
  };
  if (argc >= 3 && std::string(argv[1]) == "sndbuf") {
    std::vector<std::size_t> sizes;
    if (sizes_from(sizes)) return sndbuf(sizes);
  }
  if (argc >= 3 && std::string(argv[1]) == "pipefill") {
    std::vector<std::size_t> sizes;
    if (sizes_from(sizes)) return pipefill(sizes);
  }
  if (argc == 2 && std::string(argv[1]) == "siblings") return siblings();
  if (argc == 2 && std::string(argv[1]) == "usercopy") return usercopy();
  if (argc == 3 && std::string(argv[1]) == "pipepages" && std::atol(argv[2]) > 0)
    return pipepages(std::atol(argv[2]));
  if (argc >= 6 && std::string(argv[1]) == "duplex")
    return duplex(argv[2], std::strtoul(argv[3], nullptr, 10), std::atoi(argv[4]), std::atoi(argv[5]));
  std::fputs(usage.c_str(), stderr);
  return 2;
}
