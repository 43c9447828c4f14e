#include "limits.hpp"

#include "error.hpp"
#include "units.hpp"

#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <fcntl.h>
#include <optional>
#include <sys/stat.h>
#include <unistd.h>

namespace ipcsim {

namespace {

enum class Kind { Count, Bytes, Duration };

// Levels: 4,000 nested repeats (8,000 levels) load in half a second; 20,000 nested ifs overflowed an
// 8 MiB stack.
constexpr std::uint64_t kMaxNestingDepth = 10000;

struct Entry {
  LimitInfo info;
  Kind kind;
  std::uint64_t Limits::*count; // Count and Bytes
  double Limits::*seconds;      // Duration
};

const std::vector<Entry>& entries() {
  static const std::vector<Entry> table{
      {{"nesting_depth", "levels",
        "arrays and objects inside each other in a scenario, a --set value or a preset file (a repeat "
        "or if nests two)",
        ""},
       Kind::Count,
       &Limits::nesting_depth,
       nullptr},
      {{"script_ops", "ops", "ops in all scripts together, nested ones counted", ""},
       Kind::Count,
       &Limits::script_ops,
       nullptr},
      {{"processes", "processes",
        "processes a run creates, at the start and by spawn (a spawn past it fails with EAGAIN, as fork "
        "does)",
        ""},
       Kind::Count,
       &Limits::processes,
       nullptr},
      {{"threads", "threads",
        "threads a run creates, at the start, by spawn and at run time (a spawn or thread creation past it "
        "fails with EAGAIN)",
        ""},
       Kind::Count,
       &Limits::threads,
       nullptr},
      {{"ipc_objects", "objects",
        "IPC objects a run creates: pipes, FIFOs, sockets, message queues, semaphores, mailboxes (the run "
        "stops past "
        "it)",
        ""},
       Kind::Count,
       &Limits::ipc_objects,
       nullptr},
      {{"events", "events", "ops executed plus dispatches in one run (the run stops past it)", ""},
       Kind::Count,
       &Limits::events,
       nullptr},
      {{"input_bytes", "bytes", "size of a scenario file or a cost preset file", ""},
       Kind::Bytes,
       &Limits::input_bytes,
       nullptr},
      {{"output_bytes", "bytes",
        "what a run records for its outputs: printed lines, and 64 bytes per measured interval (the run "
        "stops "
        "past it)",
        ""},
       Kind::Bytes,
       &Limits::output_bytes,
       nullptr},
      {{"max_time", "simulated time", "simulated time a run may reach (the run stops there); 0: no limit",
        "--max-time"},
       Kind::Duration,
       nullptr,
       &Limits::max_time_seconds},
      {{"timeout", "wall-clock time", "host time a run may take (the run stops there); 0: no limit",
        "--timeout"},
       Kind::Duration,
       nullptr,
       &Limits::timeout_seconds},
  };
  return table;
}

std::vector<std::string> names() {
  std::vector<std::string> out;
  for (const auto& e : entries()) out.push_back(e.info.name);
  return out;
}

std::string format_bytes(std::uint64_t bytes) {
  if (bytes && bytes % (1ull << 20) == 0) return std::to_string(bytes >> 20) + "MiB";
  if (bytes && bytes % 1024 == 0) return std::to_string(bytes >> 10) + "KiB";
  return std::to_string(bytes) + "B";
}

std::string format_seconds(double seconds) {
  if (seconds == 0) return "0 (none)";
  if (seconds >= 86400 && std::fmod(seconds, 86400) == 0)
    return std::to_string(std::llround(seconds / 86400)) + "d";
  if (seconds >= 3600 && std::fmod(seconds, 3600) == 0)
    return std::to_string(std::llround(seconds / 3600)) + "h";
  if (seconds >= 60 && std::fmod(seconds, 60) == 0) return std::to_string(std::llround(seconds / 60)) + "min";
  if (seconds >= 1 && std::fmod(seconds, 1) == 0) return std::to_string(std::llround(seconds)) + "s";
  return format_duration(static_cast<Cycles>(std::llround(seconds * 1e9)), 1e9);
}

// A duration such as "1s", "500ms", "1h", "2d", or 0 / "none" (no limit), in seconds.
std::optional<double> parse_seconds(const std::string& text) {
  if (text == "0" || text == "none") return 0.0;
  std::string body = text;
  double scale = 1;
  if (!body.empty() && body.back() == 'd' && body.size() > 1 &&
      std::isdigit(static_cast<unsigned char>(body[body.size() - 2])))
    body.pop_back(), scale = 86400;
  else if (!body.empty() && body.back() == 'h' && body.size() > 1 &&
           std::isdigit(static_cast<unsigned char>(body[body.size() - 2])))
    body.pop_back(), scale = 3600;
  else if (body.size() > 3 && body.substr(body.size() - 3) == "min")
    body.resize(body.size() - 3), scale = 60;
  // Everything else through the scenario's own duration syntax, at 1 GHz (1 cycle = 1 ns).
  if (scale != 1) body += "s";
  auto ns = parse_duration_cycles(body, 1e9);
  if (!ns || body.find("cycles") != std::string::npos) return std::nullopt;
  double seconds = *ns / 1e9 * scale;
  if (!(seconds > 0) || seconds > 1e9) return std::nullopt;
  return seconds;
}

[[noreturn]] void bad_limit(const std::string& option, const std::string& what) {
  throw UserError(option + ": " + what);
}

} // namespace

const std::vector<LimitInfo>& limit_infos() {
  static const std::vector<LimitInfo> infos = [] {
    std::vector<LimitInfo> out;
    for (const auto& e : entries()) out.push_back(e.info);
    return out;
  }();
  return infos;
}

std::string limit_value_text(const Limits& limits, const std::string& name) {
  for (const auto& e : entries()) {
    if (e.info.name != name) continue;
    switch (e.kind) {
    case Kind::Count:
      return std::to_string(limits.*e.count);
    case Kind::Bytes:
      return format_bytes(limits.*e.count);
    case Kind::Duration:
      return format_seconds(limits.*e.seconds);
    }
  }
  return "?";
}

std::string limit_hint(const std::string& name) {
  for (const auto& e : entries())
    if (e.info.name == name && !e.info.option.empty())
      return " (" + e.info.option + " or --limit " + name + "=VALUE changes it)";
  return " (--limit " + name + "=N raises it)";
}

void apply_limit(Limits& limits, const std::string& assignment) {
  const std::string option = "--limit " + assignment;
  auto eq = assignment.find('=');
  if (eq == std::string::npos || eq == 0)
    bad_limit(option, "expected NAME=VALUE, such as threads=2000000; limits: " + join_list(names()));
  std::string name = assignment.substr(0, eq), text = assignment.substr(eq + 1);
  for (const auto& e : entries()) {
    if (e.info.name != name) continue;
    switch (e.kind) {
    case Kind::Count: {
      bool digits =
          !text.empty() && text.size() <= 18 && text.find_first_not_of("0123456789") == std::string::npos;
      if (!digits || std::stoull(text) == 0)
        bad_limit(option, "expected a whole number from 1 to 999999999999999999");
      // The loader recurses once per nested list of ops.
      if (e.count == &Limits::nesting_depth && std::stoull(text) > kMaxNestingDepth)
        bad_limit(option, "expected a depth from 1 to " + std::to_string(kMaxNestingDepth) +
                              " (deeper nesting would overflow the loader's stack)");
      limits.*e.count = std::stoull(text);
      return;
    }
    case Kind::Bytes: {
      auto bytes = parse_bytes(text);
      if (!bytes || *bytes == 0 || *bytes > (1ull << 40))
        bad_limit(option, "expected a size from 1 byte to 1TiB, such as 64MiB or 1048576");
      limits.*e.count = *bytes;
      return;
    }
    case Kind::Duration: {
      auto seconds = parse_seconds(text);
      if (!seconds)
        bad_limit(option, "expected a duration such as 1s, 500ms, 10min, 2h, 1d, or 0 for no limit");
      limits.*e.seconds = *seconds;
      return;
    }
    }
  }
  bad_limit(option, "unknown limit \"" + name + "\"" + did_you_mean(name, names()) +
                        "; limits: " + join_list(names()));
}

void set_max_time(Limits& limits, const std::string& text) {
  auto seconds = parse_seconds(text);
  if (!seconds)
    throw UserError("--max-time " + text +
                    ": expected a simulated duration such as 1s, 500ms, 10min, 2h, 1d, or 0 for no limit");
  limits.max_time_seconds = *seconds;
}

void set_timeout(Limits& limits, const std::string& text) {
  auto seconds = parse_seconds(text);
  if (!seconds)
    throw UserError("--timeout " + text +
                    ": expected a wall-clock duration such as 30s, 10min, 1h, or 0 for no limit");
  limits.timeout_seconds = *seconds;
}

std::string read_input_file(const std::string& path, const std::string& what, std::uint64_t max_bytes,
                            const std::string& kind) {
  // Non-blocking, so that opening a FIFO with no writer returns at once instead of waiting forever.
  int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) throw InputFileError(path, "cannot open the " + what + ": " + std::strerror(errno));
  struct FdCloser {
    int fd;
    ~FdCloser() { ::close(fd); }
  } closer{fd};
  struct stat st {};
  if (::fstat(fd, &st) != 0)
    throw InputFileError(path, "cannot read the " + what + ": " + std::strerror(errno));
  if (S_ISDIR(st.st_mode))
    throw InputFileError(path, "is a directory, not a " + what + " (give a " + kind + ")");
  if (!S_ISREG(st.st_mode))
    throw InputFileError(path, "is not a regular file (a device, FIFO or socket); a " + what +
                                   " must be an ordinary " + kind);
  auto too_big = [&] {
    throw InputFileError(path, "the " + what + " is larger than " + format_bytes(max_bytes) +
                                   ", the most ipcsim reads" + limit_hint("input_bytes"));
  };
  if (static_cast<std::uint64_t>(st.st_size) > max_bytes) too_big();
  std::string text;
  char buffer[65536];
  for (;;) {
    ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw InputFileError(path, "cannot read the " + what + ": " + std::strerror(errno));
    if (n == 0) break;
    text.append(buffer, static_cast<std::size_t>(n));
    if (text.size() > max_bytes) too_big(); // it grew while being read
  }
  return text;
}

std::uint64_t json_text_depth(const std::string& text, std::uint64_t limit, std::size_t* where) {
  std::uint64_t depth = 0, deepest = 0;
  bool in_string = false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (in_string) {
      if (c == '\\')
        ++i;
      else if (c == '"')
        in_string = false;
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > deepest) deepest = depth;
      if (depth > limit) {
        if (where) *where = i;
        return depth;
      }
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  return deepest;
}

} // namespace ipcsim
