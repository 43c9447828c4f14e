// Do two CPUs share a core? hostbench records the answer for its cross-core cells, and
// hostbench-probe siblings prints it. A virtual machine's topology (/sys/devices/system/cpu/*/
// topology) is what the hypervisor chose to show, not where its vCPUs run, so this measures it: a
// 64 KiB memcpy loop on one CPU alone, then while the other CPU runs the same loop. Separate cores
// keep their rate (about 1.00); SMT siblings share the core's load and store ports and its L1 and
// L2, and each loop slows down (typically 0.5 to 0.7), as the two sides of a cross-core stream
// would slow each other down. Linux only, no simulator code.
#pragma once
#include <chrono>
#include <cstring>
#include <optional>
#include <sched.h>
#include <sys/wait.h>
#include <unistd.h>

namespace hostbench_siblings {

// 64 KiB copies a second on the calling thread, over `seconds`.
inline double copies_per_second(double seconds) {
  using Clock = std::chrono::steady_clock;
  static char from[65536], to[65536];
  long copies = 0;
  const auto start = Clock::now();
  auto elapsed = [&] { return std::chrono::duration<double>(Clock::now() - start).count(); };
  while (elapsed() < seconds) {
    for (int i = 0; i < 64; ++i) {
      std::memcpy(to, from, sizeof to);
      asm volatile("" : : "r"(to) : "memory"); // keep each copy: the asm may read `to`
    }
    copies += 64;
  }
  return double(copies) / elapsed();
}

inline bool pin(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  return sched_setaffinity(0, sizeof set, &set) == 0;
}

struct Result {
  double alone = 0;  // copies a second on `cpu` alone
  double shared = 0; // while `other` copies too
  double ratio() const { return alone > 0 ? shared / alone : 0; }
};

// The loop on `cpu` for `seconds` alone, then for `seconds` beside a child process running it on
// `other`. Leaves the calling thread pinned to `cpu`. Empty when either CPU cannot be used.
inline std::optional<Result> measure(int cpu, int other, double seconds) {
  if (!pin(cpu)) return std::nullopt;
  Result r;
  r.alone = copies_per_second(seconds);
  const pid_t pid = fork();
  if (pid < 0) return std::nullopt;
  if (pid == 0) {
    if (!pin(other)) _exit(1);
    copies_per_second(seconds * 1.5);
    _exit(0);
  }
  usleep(static_cast<useconds_t>(seconds * 1e5)); // the other loop running first
  r.shared = copies_per_second(seconds);
  int status = 0;
  waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) return std::nullopt;
  return r;
}

// What a ratio says: below 0.85 the two CPUs slow each other down as SMT siblings do.
inline const char* verdict(double ratio) {
  return ratio < 0.85 ? "they share a core (SMT siblings, or one host core under two vCPUs)"
                      : "separate cores";
}

} // namespace hostbench_siblings
