// The resource limits of a run, in one place: what a scenario may not exceed without a clear error
// (instead of exhausting the host). Each has a default and an override on the command line
// (`--limit NAME=VALUE`; simulated time and wall time also as `--max-time` and `--timeout`), and
// `ipcsim list limits` shows them. docs/limits.md says what each bounds and why.
#pragma once
#include "cycles.hpp"
#include "error.hpp"

#include <cstdint>
#include <string>
#include <vector>

namespace ipcsim {

struct Limits {
  std::uint64_t nesting_depth = 100;         // arrays and objects inside each other, in any JSON read
  std::uint64_t script_ops = 1'000'000;      // ops in all scripts together (nested ones counted)
  std::uint64_t processes = 100'000;         // processes a run creates (at start and by spawn)
  std::uint64_t threads = 1'000'000;         // threads a run creates (at start, by spawn, at run time)
  std::uint64_t ipc_objects = 100'000;       // IPC objects a run creates (queues, pipes, sockets, ...)
  std::uint64_t events = 1'000'000'000;      // ops executed and dispatches
  std::uint64_t input_bytes = 16ull << 20;   // a scenario or preset file
  std::uint64_t output_bytes = 256ull << 20; // printed lines and measured intervals a run records
  double max_time_seconds = 86400;           // simulated time; 0: only the clock's own limit
  double timeout_seconds = 600;              // wall-clock time of a run; 0: none
};

// One limit as `ipcsim list limits` shows it and `--limit` names it.
struct LimitInfo {
  std::string name;
  std::string unit;
  std::string description;
  std::string option; // the command-line option besides --limit, if any
};
const std::vector<LimitInfo>& limit_infos();

// The value of limit `name` in `limits`, as text ("100", "16MiB", "1d", "600s").
std::string limit_value_text(const Limits& limits, const std::string& name);

// Applies "NAME=VALUE" (--limit) to `limits`. Throws UserError naming the option, the limit and
// what would be accepted.
void apply_limit(Limits& limits, const std::string& assignment);
// --max-time TIME and --timeout TIME (durations such as "1s", "500ms"; "0" or "none": no limit).
void set_max_time(Limits& limits, const std::string& text);
void set_timeout(Limits& limits, const std::string& text);

// " (--limit NAME=N raises it)" style hint for messages.
std::string limit_hint(const std::string& name);

// Reads a whole input file (a scenario, a preset): it must be a regular file of at most `max_bytes`
// bytes. `what` names it in messages ("scenario file", "cost preset file"). Throws InputFileError:
// "PATH: REASON", with the reason alone for callers that name the file their own way.
class InputFileError : public UserError {
public:
  InputFileError(const std::string& path, std::string reason)
      : UserError(path + ": " + reason), reason(std::move(reason)) {}
  std::string reason;
};
// Reads a whole input file: never a directory, device, FIFO or socket (which could block or never
// end), nor more than `max_bytes`; `kind` says what a good one is (".json file", ".csv file").
std::string read_input_file(const std::string& path, const std::string& what, std::uint64_t max_bytes,
                            const std::string& kind = ".json file");

// The depth of a JSON text's deepest array or object, counted without building anything (so
// without recursion); stops counting past `limit` + 1. Byte offset of the first opening past the
// limit in `where` when there is one.
std::uint64_t json_text_depth(const std::string& text, std::uint64_t limit, std::size_t* where = nullptr);

} // namespace ipcsim
