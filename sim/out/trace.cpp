#include "trace.hpp"

#include "error.hpp"
#include "ipc.hpp"
#include "report.hpp"

#include <algorithm>
#include <cerrno>
#include <concepts>
#include <cstring>
#include <filesystem>
#include <unordered_map>
#include <utility>

namespace ipcsim {

namespace {

// A JSON string: quoted and escaped (invalid UTF-8, such as text cut in the middle of a character,
// is replaced rather than refused).
std::string quoted(const std::string& text) {
  return json(text).dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string arg(const char* key, const std::string& value) { return quoted(key) + ":" + quoted(value); }
std::string arg(const char* key, std::integral auto value) {
  return quoted(key) + ":" + std::to_string(value);
}
std::string object(const std::vector<std::string>& members) {
  std::string out = "{";
  for (const auto& m : members) {
    if (out.size() > 1) out += ",";
    out += m;
  }
  return out + "}";
}

const char* state_name(ThreadState state) {
  switch (state) {
  case ThreadState::Ready:
    return "ready";
  case ThreadState::Running:
    return "running";
  case ThreadState::Blocked:
    return "blocked";
  default:
    return "";
  }
}

} // namespace

// ---- Recording --------------------------------------------------------------------------------

TraceRecorder::ThreadTrack& TraceRecorder::thread_track(const Thread& thread) {
  if (threads_.size() <= thread.id) threads_.resize(thread.id + 1);
  return threads_[thread.id];
}

Cycles TraceRecorder::in_order(Cycles& last, Cycles at) {
  if (at < last) {
    ++out_of_order_;
    return last;
  }
  last = at;
  return at;
}

std::uint32_t TraceRecorder::Strings::intern(const std::string& text) {
  auto [it, inserted] = index.try_emplace(text, static_cast<std::uint32_t>(texts.size()));
  if (inserted) texts.push_back(text);
  return it->second;
}

void TraceRecorder::emit(char ph, Track track, Cycles at, const std::string& name, const char* cat,
                         const std::string& args, std::uint64_t id) {
  events_.push_back({at, seq_++, id, track, names_.intern(quoted(name)), args_.intern(args), cat, ph});
}

void TraceRecorder::on_thread_state(const Thread& thread, ThreadState, ThreadState to, const WaitQueue* queue,
                                    Cycles at) {
  ThreadTrack& t = thread_track(thread);
  at = in_order(t.last, at);
  Track track{Track::Thread, thread.id};
  if (!t.state.empty()) emit('E', track, at, t.state, "state");
  t.state.clear();
  if (to == ThreadState::Exited) {
    t.syscall.clear();
    return;
  }
  if (to == ThreadState::NotStarted) return;
  std::string args;
  if (to == ThreadState::Blocked) {
    t.state = queue ? "blocked on " + queue->label : "sleep";
    args = object({arg("state", "blocked"), arg("on", queue ? queue->label : "sleep")});
  } else {
    t.state = state_name(to);
    if (to == ThreadState::Ready && !t.woken_by.empty())
      args = object({arg("state", t.state), arg("woken by", t.woken_by)});
    else
      args = object({arg("state", t.state)});
  }
  t.woken_by.clear();
  emit('B', track, at, t.state, "state", std::move(args));
}

void TraceRecorder::on_dispatch(const Core& core, const Thread& thread, Cycles at) {
  if (core_slice_.size() <= core.index) {
    core_slice_.resize(core.index + 1);
    core_last_.resize(core.index + 1, 0);
  }
  at = in_order(core_last_[core.index], at);
  ThreadTrack& t = thread_track(thread);
  t.core = static_cast<std::int32_t>(core.index);
  core_slice_[core.index] = thread.display_name();
  emit('B', {Track::Core, static_cast<std::uint32_t>(core.index)}, at, core_slice_[core.index], "thread",
       object({arg("thread", core_slice_[core.index]), arg("pid", thread.process->pid)}));
  // Back from a block inside a system call: the call goes on.
  if (!t.syscall.empty()) begin_syscall_slice(core, t, at, true);
}

void TraceRecorder::on_switch_out(const Core& core, const Thread& thread, Cycles at) {
  if (core.index >= core_slice_.size() || core_slice_[core.index].empty()) return;
  at = in_order(core_last_[core.index], at);
  ThreadTrack& t = thread_track(thread);
  // A system call that blocks spans the switch: its slice ends here and resumes at the next dispatch.
  if (!t.syscall_slice.empty()) end_syscall_slice(core, t, at);
  emit('E', {Track::Core, static_cast<std::uint32_t>(core.index)}, at, core_slice_[core.index], "thread");
  core_slice_[core.index].clear();
  t.core = -1;
}

void TraceRecorder::on_user_run(const Core& core, const Thread&, Cycles start, Cycles end) {
  if (core.index >= core_slice_.size() || core_slice_[core.index].empty()) return;
  Track track{Track::Core, static_cast<std::uint32_t>(core.index)};
  emit('B', track, in_order(core_last_[core.index], start), "user", "user");
  emit('E', track, in_order(core_last_[core.index], end), "user", "user");
}

void TraceRecorder::begin_syscall_slice(const Core& core, ThreadTrack& t, Cycles at, bool resumed) {
  t.syscall_slice = resumed ? t.syscall + " (resumed)" : t.syscall;
  emit('B', {Track::Core, static_cast<std::uint32_t>(core.index)}, at, t.syscall_slice, "syscall");
}

void TraceRecorder::end_syscall_slice(const Core& core, ThreadTrack& t, Cycles at) {
  emit('E', {Track::Core, static_cast<std::uint32_t>(core.index)}, at, t.syscall_slice, "syscall");
  t.syscall_slice.clear();
}

void TraceRecorder::on_syscall_enter(const Core& core, const Thread& thread, std::uint16_t activity,
                                     Cycles at) {
  if (core.index >= core_slice_.size() || core_slice_[core.index].empty()) return;
  at = in_order(core_last_[core.index], at);
  ThreadTrack& t = thread_track(thread);
  if (!t.syscall_slice.empty()) end_syscall_slice(core, t, at); // cannot happen: calls do not nest
  t.syscall = activity_names()[activity];
  begin_syscall_slice(core, t, at, false);
}

void TraceRecorder::on_return_to_user(const Core& core, const Thread& thread, std::uint16_t, Cycles at) {
  ThreadTrack& t = thread_track(thread);
  if (!t.syscall_slice.empty() && core.index < core_slice_.size()) {
    at = in_order(core_last_[core.index], at);
    end_syscall_slice(core, t, at);
  }
  t.syscall.clear();
}

void TraceRecorder::on_wakeup(const Thread& woken, const Thread* waker, Cycles) {
  thread_track(woken).woken_by = waker ? waker->display_name() : "a timer";
}

// A flow event goes on the core the thread runs on (inside its system call's slice), else on the
// thread's own track (a message a blocked sender left in a queue).
TraceRecorder::Track TraceRecorder::flow_track(const Thread& thread) const {
  const ThreadTrack& t = threads_[thread.id];
  if (t.core >= 0) return {Track::Core, static_cast<std::uint32_t>(t.core)};
  return {Track::Thread, thread.id};
}

void TraceRecorder::on_message_sent(const Thread& thread, const Message& message,
                                    const std::string& object_name, Cycles at) {
  if (message.id == 0) return;
  ThreadTrack& t = thread_track(thread);
  Track track = flow_track(thread);
  at = in_order(track.kind == Track::Core ? core_last_[track.index] : t.last, at);
  std::vector<std::string> members{arg("object", object_name), arg("bytes", message.bytes)};
  if (message.type != 0) members.push_back(arg("type", message.type));
  if (message.priority != 0) members.push_back(arg("priority", message.priority));
  if (!message.text.empty()) members.push_back(arg("text", message.text));
  emit('s', track, at, "message", "ipc", object(members), message.id);
}

void TraceRecorder::on_message_received(const Thread& thread, const Message& message,
                                        const std::string& object_name, Cycles at) {
  if (message.id == 0) return;
  ThreadTrack& t = thread_track(thread);
  Track track = flow_track(thread);
  at = in_order(track.kind == Track::Core ? core_last_[track.index] : t.last, at);
  emit('f', track, at, "message", "ipc", object({arg("object", object_name)}), message.id);
}

void TraceRecorder::on_fill(const std::string& object_name, const char* unit, std::uint64_t value,
                            Cycles at) {
  auto [it, inserted] = counter_last_.try_emplace(object_name, at);
  at = in_order(it->second, at);
  emit('C', {Track::Objects, 0}, at, object_name, "fill", object({arg(unit, value)}));
}

void TraceRecorder::on_print(const Thread& thread, const std::string& text, Cycles at) {
  ThreadTrack& t = thread_track(thread);
  emit('i', {Track::Thread, thread.id}, in_order(t.last, at), text, "print");
}

void TraceRecorder::on_call_failed(const Thread& thread, std::uint16_t activity, int error, Cycles at) {
  ThreadTrack& t = thread_track(thread);
  const std::string& op = activity_names()[activity];
  emit('i', {Track::Thread, thread.id}, in_order(t.last, at), op + " failed: " + errno_name(error), "error",
       object({arg("op", op), arg("errno", errno_name(error))}));
}

// ---- Writing ----------------------------------------------------------------------------------

// Whatever is still open ends with the run: a thread slice on a core (a run stopped by an error),
// every thread's state (blocked threads at a deadlock). A flow needs both ends: a message sent and
// never received (still queued, withdrawn, timed out) has no arrow.
void TraceRecorder::finish() {
  if (finished_) return;
  finished_ = true;
  const Cycles end = kernel_.makespan();
  for (std::size_t c = 0; c < core_slice_.size(); ++c) {
    if (core_slice_[c].empty()) continue;
    for (std::size_t i = 0; i < threads_.size(); ++i)
      if (threads_[i].core == static_cast<std::int32_t>(c)) {
        on_switch_out(*kernel_.cores()[c], kernel_.threads()[i], std::max(end, core_last_[c]));
        break;
      }
  }
  for (std::size_t i = 0; i < threads_.size(); ++i)
    if (!threads_[i].state.empty())
      emit('E', {Track::Thread, static_cast<std::uint32_t>(i)}, std::max(end, threads_[i].last),
           threads_[i].state, "state");
  std::unordered_map<std::uint64_t, std::pair<int, int>> flows; // per message id: starts, finishes
  for (const auto& e : events_) {
    if (e.ph == 's') ++flows[e.id].first;
    if (e.ph == 'f') ++flows[e.id].second;
  }
  std::erase_if(events_, [&](const Event& e) {
    if (e.ph != 's' && e.ph != 'f') return false;
    const auto& [starts, finishes] = flows[e.id];
    return starts != 1 || finishes < 1;
  });
  std::stable_sort(events_.begin(), events_.end(),
                   [](const Event& a, const Event& b) { return a.ts != b.ts ? a.ts < b.ts : a.seq < b.seq; });
  // A message taken twice (it cannot be): only the first receive gets the arrow.
  std::unordered_map<std::uint64_t, bool> received;
  std::erase_if(events_, [&](const Event& e) { return e.ph == 'f' && std::exchange(received[e.id], true); });
}

// Microseconds, as the format requires, to the picosecond: at up to 100 GHz (the loader's limit)
// distinct cycles stay distinct.
std::string TraceRecorder::micros(Cycles cycles) const {
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "%.6Lf",
                static_cast<long double>(cycles) * 1e6L / static_cast<long double>(kernel_.model().hz));
  return buffer;
}

void TraceRecorder::write(std::FILE* out, const std::string& path, const Scenario& scenario) {
  finish();
  // Process and thread ids: the simulated pids (100 + n) for the simulated processes, 1 for the
  // cores and 2 for the IPC objects; thread ids all distinct and above every pid (viewers key
  // thread names by thread id alone).
  const auto& processes = kernel_.processes();
  const std::uint32_t cores_pid = 1, objects_pid = 2;
  std::uint32_t max_pid = objects_pid;
  for (const auto& p : processes) max_pid = std::max(max_pid, p.pid);
  const std::uint64_t tid_base = (max_pid / 1000 + 1) * 1000;
  const std::uint64_t ncores = kernel_.cores().size();
  const std::uint64_t objects_tid = tid_base + ncores;
  auto pid_of = [&](Track track) -> std::uint64_t {
    switch (track.kind) {
    case Track::Core:
      return cores_pid;
    case Track::Thread:
      return kernel_.threads()[track.index].process->pid;
    case Track::Objects:
      return objects_pid;
    }
    return 0;
  };
  auto tid_of = [&](Track track) -> std::uint64_t {
    switch (track.kind) {
    case Track::Core:
      return tid_base + track.index;
    case Track::Thread:
      return objects_tid + 1 + track.index;
    case Track::Objects:
      return objects_tid;
    }
    return 0;
  };

  std::string text;
  auto flush = [&] {
    if (std::fwrite(text.data(), 1, text.size(), out) != text.size())
      throw UserError("--trace " + path + ": cannot write: " + std::strerror(errno));
    text.clear();
  };
  bool first = true;
  auto add = [&](const std::string& event) {
    text += first ? "\n" : ",\n";
    text += event;
    first = false;
    if (text.size() > (1 << 20)) flush();
  };
  auto metadata = [&](std::uint64_t pid, std::uint64_t tid, const char* name, const std::string& args) {
    add("{\"ph\":\"M\",\"pid\":" + std::to_string(pid) + ",\"tid\":" + std::to_string(tid) +
        ",\"name\":" + quoted(name) + ",\"args\":" + args + "}");
  };

  // displayTimeUnit first: some versions of Perfetto look for it only at the start of the file.
  text += "{\"displayTimeUnit\":\"ns\",\"otherData\":";
  text += object({arg("generator", std::string("ipcsim ") + ipcsim_version()),
                  arg("git_revision", ipcsim_git_revision()), arg("scenario", scenario.file),
                  arg("scenario_hash", "fnv1a64:" + scenario.hash), arg("seed", kernel_.model().seed),
                  quoted("frequency_hz") + ":" + json(kernel_.model().hz).dump(), arg("cores", ncores),
                  arg("makespan_cycles", kernel_.makespan()),
                  arg("time", "ts is in microseconds: cycles * 1e6 / frequency_hz, to the picosecond"),
                  arg("out_of_order_events", out_of_order_)});
  text += ",\"traceEvents\":[";

  metadata(cores_pid, tid_base, "process_name", object({arg("name", "cores")}));
  metadata(cores_pid, tid_base, "process_sort_index", object({quoted("sort_index") + ":0"}));
  for (std::uint64_t c = 0; c < ncores; ++c) {
    metadata(cores_pid, tid_base + c, "thread_name", object({arg("name", "core " + std::to_string(c))}));
    metadata(cores_pid, tid_base + c, "thread_sort_index", object({arg("sort_index", c)}));
  }
  metadata(objects_pid, objects_tid, "process_name", object({arg("name", "IPC objects")}));
  metadata(objects_pid, objects_tid, "process_sort_index", object({quoted("sort_index") + ":1"}));
  metadata(objects_pid, objects_tid, "thread_name", object({arg("name", "fill")}));
  for (const auto& p : processes) {
    std::uint64_t tid = objects_tid + 1 + p.first_thread;
    metadata(p.pid, tid, "process_name", object({arg("name", p.display_name())}));
    metadata(p.pid, tid, "process_sort_index", object({arg("sort_index", 2 + p.id)}));
    for (std::uint32_t i = 0; i < p.threads_total(); ++i) {
      const Thread& thread = kernel_.threads()[p.thread_id(i)];
      metadata(p.pid, objects_tid + 1 + thread.id, "thread_name",
               object({arg("name", thread.display_name())}));
      metadata(p.pid, objects_tid + 1 + thread.id, "thread_sort_index",
               object({arg("sort_index", thread.id)}));
    }
  }

  for (const auto& e : events_) {
    std::string event = "{\"ph\":\"";
    event += e.ph;
    event += "\",\"ts\":" + micros(e.ts) + ",\"pid\":" + std::to_string(pid_of(e.track)) +
             ",\"tid\":" + std::to_string(tid_of(e.track)) + ",\"name\":" + names_.texts[e.name] +
             ",\"cat\":" + quoted(e.cat);
    if (e.ph == 's' || e.ph == 'f') event += ",\"id\":" + std::to_string(e.id);
    if (e.ph == 'f') event += ",\"bp\":\"e\"";
    if (e.ph == 'i') event += ",\"s\":\"t\"";
    if (e.args != 0) event += ",\"args\":" + args_.texts[e.args];
    add(event + "}");
  }
  text += "\n]}\n";
  flush();
  if (std::fflush(out) != 0) throw UserError("--trace " + path + ": cannot write: " + std::strerror(errno));
}

std::FILE* open_trace_file(const std::string& path, const std::string& scenario_file) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (fs::is_directory(path, ec))
    throw UserError("--trace " + path + ": cannot write the trace: it is a directory; give a file name");
  if (fs::equivalent(path, scenario_file, ec))
    throw UserError("--trace " + path + ": that is the scenario file; give the trace another name");
  fs::path parent = fs::path(path).parent_path();
  if (!parent.empty() && !fs::is_directory(parent, ec)) {
    fs::create_directories(parent, ec);
    if (ec)
      throw UserError("--trace " + path + ": cannot create the directory " + parent.string() + ": " +
                      ec.message());
  }
  std::FILE* file = std::fopen(path.c_str(), "wb");
  if (!file) throw UserError("--trace " + path + ": cannot write the trace: " + std::strerror(errno));
  return file;
}

} // namespace ipcsim
