// The timeline: a subscriber that records a run as Chrome Trace Event Format JSON (the JSON Object
// Format), for Perfetto (ui.perfetto.dev) and chrome://tracing. docs/trace.md describes the tracks.
//
// Tracks: one per core (process "cores"): the thread dispatched, with nested slices for user time
// and system calls; one per simulated thread (a process per simulated process): its state, with
// the console lines it printed and the calls that failed as instants; flow arrows from each send
// to the receive that took the message; counters of how full each IPC object is.
//
// Events arrive out of time order across cores (each core runs ahead of the others between
// synchronisations); they are kept with an emission number and sorted by (time, emission) when
// written, so the same scenario and seed give the same file, byte for byte.
#pragma once
#include "kernel.hpp"
#include "scenario.hpp"

#include <cstdio>
#include <map>
#include <string>
#include <unordered_map>
#include <vector>

namespace ipcsim {

class TraceRecorder : public Observer {
public:
  explicit TraceRecorder(const Kernel& kernel) : kernel_(kernel) {}

  void on_thread_state(const Thread& thread, ThreadState from, ThreadState to, const WaitQueue* queue,
                       Cycles at) override;
  void on_dispatch(const Core& core, const Thread& thread, Cycles at) override;
  void on_switch_out(const Core& core, const Thread& thread, Cycles at) override;
  void on_user_run(const Core& core, const Thread& thread, Cycles start, Cycles end) override;
  void on_syscall_enter(const Core& core, const Thread& thread, std::uint16_t activity, Cycles at) override;
  void on_return_to_user(const Core& core, const Thread& thread, std::uint16_t activity, Cycles at) override;
  void on_wakeup(const Thread& woken, const Thread* waker, Cycles at) override;
  void on_message_sent(const Thread& thread, const Message& message, const std::string& object,
                       Cycles at) override;
  void on_message_received(const Thread& thread, const Message& message, const std::string& object,
                           Cycles at) override;
  void on_fill(const std::string& object, const char* unit, std::uint64_t value, Cycles at) override;
  void on_print(const Thread& thread, const std::string& text, Cycles at) override;
  void on_call_failed(const Thread& thread, std::uint16_t activity, int error, Cycles at) override;

  // After Kernel::run() (however it ended): closes what is still open at the end of the run and
  // writes the JSON. Throws UserError when `out` fails; `path` names it in the message.
  void write(std::FILE* out, const std::string& path, const Scenario& scenario);

  // Events that arrived earlier in time than the last one on their track (0 in a correct run:
  // they are moved forward to keep the file well formed).
  std::uint64_t out_of_order() const { return out_of_order_; }

private:
  // Where an event goes: a core, a simulated thread, or the IPC objects' counters.
  struct Track {
    enum Kind : std::uint8_t { Core, Thread, Objects } kind;
    std::uint32_t index;
  };
  // Names and arguments repeat (thread names, states): each is kept once.
  struct Strings {
    std::vector<std::string> texts{""};
    std::unordered_map<std::string, std::uint32_t> index{{"", 0}};
    std::uint32_t intern(const std::string& text);
  };
  struct Event {
    Cycles ts;
    std::uint64_t seq; // emission order
    std::uint64_t id;  // flows
    Track track;
    std::uint32_t name; // in names_, quoted
    std::uint32_t args; // in args_: a JSON object, or 0 for none
    const char* cat;
    char ph;
  };
  // What the recorder knows of a simulated thread.
  struct ThreadTrack {
    std::int32_t core = -1;    // the core it is dispatched on
    std::string state;         // its open state slice ("" when none)
    std::string syscall;       // the system call it is in ("" when none)
    std::string syscall_slice; // that call's slice open on the core's track ("" when none)
    std::string woken_by;      // who made it ready, for its next "ready" slice
    Cycles last = 0;           // its track's last event
  };

  ThreadTrack& thread_track(const Thread& thread);
  // `at`, or the last event's time on the track when `at` is earlier (counted in out_of_order_).
  Cycles in_order(Cycles& last, Cycles at);
  void emit(char ph, Track track, Cycles at, const std::string& name, const char* cat,
            const std::string& args = {}, std::uint64_t id = 0);
  void begin_syscall_slice(const Core& core, ThreadTrack& t, Cycles at, bool resumed);
  void end_syscall_slice(const Core& core, ThreadTrack& t, Cycles at);
  Track flow_track(const Thread& thread) const;
  void finish();
  std::string micros(Cycles cycles) const;

  const Kernel& kernel_;
  std::vector<Event> events_;
  Strings names_, args_;
  std::vector<ThreadTrack> threads_;
  std::vector<std::string> core_slice_; // per core: the thread slice open on it ("" when none)
  std::vector<Cycles> core_last_;       // per core: its track's last event
  std::map<std::string, Cycles> counter_last_;
  std::uint64_t seq_ = 0;
  std::uint64_t out_of_order_ = 0;
  bool finished_ = false;
};

// Opens `path` for the trace before a run (its directory is created when missing), so that a path
// that cannot be written fails at once; never the scenario file itself. Throws UserError naming the
// path and the reason.
std::FILE* open_trace_file(const std::string& path, const std::string& scenario_file);

} // namespace ipcsim
