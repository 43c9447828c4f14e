// The conservation invariant (issue 8; docs/limits.md): every message and byte sent on an object is
// received, still held there, or dropped with a recorded reason. One scenario per way of dropping,
// each with its exact ledger; and a deliberately leaky mechanism (defined here, test-only) is caught.
#include "harness.hpp"
#include "invariants.hpp"
#include "ipc.hpp"

#include <doctest/doctest.h>

using namespace ipcsim;
using ipcsim::test::run_text;

namespace {

std::string machine(const std::string& processes, const std::string& extra = "") {
  return R"({"machine": {"cores": 1}, )" + extra + R"("processes": [)" + processes + "]}";
}
std::string proc(const std::string& name, const std::string& script, const std::string& extra = "") {
  return R"({"name": ")" + name + R"(", "working_set_pages": 0, )" + extra + R"("script": [)" + script + "]}";
}

// What the mechanisms still hold on `object` at the end of the run.
std::pair<std::uint64_t, std::uint64_t> held(const Kernel& kernel, const std::string& object) {
  std::vector<Held> all;
  for (const auto& state : kernel.ipc_states())
    if (state) state->held(all);
  std::pair<std::uint64_t, std::uint64_t> total;
  for (const auto& h : all)
    if (h.object == object) {
      total.first += h.messages;
      total.second += h.bytes;
    }
  return total;
}

// "sent M/B received M/B held M/B dropped M/B [REASON M/B]..." for one object.
std::string ledger(const ipcsim::test::Run& run, const std::string& object) {
  const auto& all = run.kernel->invariants()->ledger();
  auto it = all.find(object);
  if (it == all.end()) return "<no ledger for " + object + ">";
  const auto& l = it->second;
  auto pair = [](std::uint64_t m, std::uint64_t b) { return std::to_string(m) + "/" + std::to_string(b); };
  auto h = held(*run.kernel, object);
  std::string text = "sent " + pair(l.sent_messages, l.sent_bytes) + " received " +
                     pair(l.received_messages, l.received_bytes) + " held " + pair(h.first, h.second) +
                     " dropped " + pair(l.dropped_messages, l.dropped_bytes);
  for (const auto& [reason, counts] : l.drops)
    text += " [" + reason + " " + pair(counts.first, counts.second) + "]";
  return text;
}

void balanced(const ipcsim::test::Run& run) {
  CHECK(run.kernel->runtime_error() == "");
  CHECK(run.kernel->invariants()->check_conservation() == "");
}

} // namespace

TEST_CASE("conservation: a pipe closed with unread data drops the unread writes and bytes") {
  // 100 + 50 bytes written, 30 read: the first write is received (its first byte read), the second
  // was never touched: at exit the last close drops 1 message and 150 - 30 = 120 bytes.
  auto run = run_text(machine(proc("p", R"({"op": "pipe", "fds": ["r", "w"]},
    {"op": "write", "fd": "w", "bytes": 100}, {"op": "write", "fd": "w", "bytes": 50},
    {"op": "read", "fd": "r", "bytes": 30})")));
  balanced(run);
  CHECK(ledger(run, "pipe 1") ==
        "sent 2/150 received 1/30 held 0/0 dropped 1/120 [the pipe's last descriptor "
        "was closed with data unread 1/120]");
}

TEST_CASE(
    "conservation: System V: IPC_RMID drops the queued messages; MSG_NOERROR the cut bytes; the rest is "
    "held") {
  auto run = run_text(machine(proc("p", R"({"op": "msgget", "key": "IPC_PRIVATE", "into": "q"},
    {"op": "msgsnd", "msqid": "q", "type": 1, "bytes": 8}, {"op": "msgsnd", "msqid": "q", "type": 1, "bytes": 24},
    {"op": "msgctl", "msqid": "q", "cmd": "IPC_RMID"},
    {"op": "msgget", "key": "IPC_PRIVATE", "into": "q2"},
    {"op": "msgsnd", "msqid": "q2", "type": 1, "bytes": 10},
    {"op": "msgrcv", "msqid": "q2", "bytes": 4, "flags": ["MSG_NOERROR"]}, {"op": "print", "text": "got {result}"},
    {"op": "msgsnd", "msqid": "q2", "type": 1, "bytes": 5})")));
  balanced(run);
  CHECK(ledger(run, "msqid 0") == "sent 2/32 received 0/0 held 0/0 dropped 2/32 [the queue was removed "
                                  "(IPC_RMID) with messages in it 2/32]");
  // The second queue is index 1: id 1. Its last message outlives the process (held).
  CHECK(ledger(run, "msqid 1") == "sent 2/15 received 1/4 held 1/5 dropped 0/6 [cut off by msgrcv's "
                                  "MSG_NOERROR (a buffer too small) 0/6]");
}

TEST_CASE("conservation: System V: a receiver killed holding a message handed over by msgsnd drops it") {
  // r sleeps in msgrcv; s's msgsnd hands the message straight to r (pipelined_send) and wakes it,
  // then kills r before r runs: r's call ends there, and the message with it.
  auto run = run_text(machine(
      proc("r", R"({"op": "msgget", "key": 7, "flags": ["IPC_CREAT"], "into": "q"},
        {"op": "msgrcv", "msqid": "q", "bytes": 64}, {"op": "print", "text": "got {result}"})") +
      "," +
      proc("s",
           R"({"op": "msgget", "key": 7, "into": "q"}, {"op": "msgsnd", "msqid": "q", "type": 1, "bytes": 16},
        {"op": "kill", "process": "r"})",
           R"("arrival": 10000, )")));
  balanced(run);
  CHECK(ipcsim::test::console_texts(run).empty());
  CHECK(ledger(run, "msqid 0") == "sent 1/16 received 0/0 held 0/0 dropped 1/16 [the receiver's process was "
                                  "killed holding it (handed over by msgsnd) 1/16]");
}

TEST_CASE(
    "conservation: POSIX: mq_unlink then the last close drops the queue's messages; a sender that stops "
    "waiting drops its own") {
  auto run = run_text(machine(proc("p", R"({"op": "mq_open", "name": "/q", "fd": "q", "access": "O_RDWR",
      "flags": ["O_CREAT"], "maxmsg": 2},
    {"op": "mq_send", "fd": "q", "bytes": 8}, {"op": "mq_send", "fd": "q", "bytes": 16},
    {"op": "mq_send", "fd": "q", "bytes": 4, "timeout": 10000}, {"op": "print", "text": "third {errno}"},
    {"op": "mq_unlink", "name": "/q"}, {"op": "mq_close", "fd": "q"})")));
  balanced(run);
  CHECK(ipcsim::test::console_texts(run) == std::vector<std::string>{"third ETIMEDOUT"});
  // The third message reached the queue when its sender went to sleep (it is then a waiting
  // sender's message, which a receive would take); the timeout drops it.
  CHECK(
      ledger(run, "posix mq /q") ==
      "sent 3/28 received 0/0 held 0/0 dropped 3/28 [its sender stopped waiting for room (timeout, signal or "
      "kill) before it was queued 1/4] [the queue was unlinked (mq_unlink) and its last descriptor closed "
      "with messages in it 2/24]");
}

TEST_CASE("conservation: unix sockets: a stream closed with data unread, a datagram cut by a short buffer, a "
          "datagram left on a closed socket") {
  auto run = run_text(machine(proc("p", R"({"op": "socketpair", "fds": ["a", "b"], "type": "stream"},
    {"op": "write", "fd": "a", "bytes": 100}, {"op": "write", "fd": "a", "bytes": 20},
    {"op": "read", "fd": "b", "bytes": 30}, {"op": "close", "fd": "b"},
    {"op": "socketpair", "fds": ["c", "d"], "type": "dgram"},
    {"op": "write", "fd": "c", "bytes": 100}, {"op": "read", "fd": "d", "bytes": 40},
    {"op": "write", "fd": "c", "bytes": 7}, {"op": "close", "fd": "d"})")));
  balanced(run);
  CHECK(ledger(run, "unix socket 2") ==
        "sent 2/120 received 1/30 held 0/0 dropped 1/90 [the socket was closed "
        "with data unread 1/90]");
  CHECK(ledger(run, "unix socket 4") ==
        "sent 2/107 received 1/40 held 0/0 dropped 1/67 [the rest of a datagram longer than the receive "
        "buffer (MSG_TRUNC) 0/60] [the socket was closed with data unread 1/7]");
}

TEST_CASE("conservation: mailboxes: destroyed with messages, a rendezvous offer withdrawn, a receiver killed "
          "holding a message of a destroyed mailbox") {
  auto run = run_text(
      machine(proc("owner", R"({"op": "mb_create", "mailbox": "m", "capacity": 4},
        {"op": "mb_send", "mailbox": "m", "bytes": 10}, {"op": "mb_send", "mailbox": "m", "bytes": 20},
        {"op": "mb_destroy", "mailbox": "m"},
        {"op": "mb_create", "mailbox": "z", "capacity": 0},
        {"op": "mb_send", "mailbox": "z", "bytes": 5, "timeout": 300}, {"op": "print", "text": "offer {errno}"},
        {"op": "mb_create", "mailbox": "h", "capacity": 4},
        {"op": "sleep", "time": 100000},
        {"op": "mb_send", "mailbox": "h", "bytes": 12}, {"op": "mb_destroy", "mailbox": "h"},
        {"op": "kill", "process": "r"})") +
              "," +
              proc("r", R"({"op": "mb_recv", "mailbox": "h"}, {"op": "print", "text": "got {result}"})",
                   R"("arrival": 50000, )")));
  balanced(run);
  CHECK(ipcsim::test::console_texts(run) == std::vector<std::string>{"offer ETIMEDOUT"});
  CHECK(ledger(run, "mailbox m") ==
        "sent 2/30 received 0/0 held 0/0 dropped 2/30 [the mailbox was destroyed (by "
        "its owner, or at its owner's exit) with messages in it 2/30]");
  CHECK(ledger(run, "mailbox z") == "sent 1/5 received 0/0 held 0/0 dropped 1/5 [a rendezvous send ended "
                                    "(timeout, signal or kill) before a receiver took it 1/5]");
  CHECK(ledger(run, "mailbox h") ==
        "sent 1/12 received 0/0 held 0/0 dropped 1/12 [the receiver's process was "
        "killed holding it, and its mailbox is gone 1/12]");
}

TEST_CASE(
    "conservation: a generic channel over each mechanism balances, and what is left at the end is held") {
  for (const char* mechanism : {"pipe", "sysv_msg", "posix_mq", "unix_stream", "unix_dgram", "mailbox"}) {
    CAPTURE(mechanism);
    auto run = run_text(
        std::string(R"({"machine": {"cores": 2}, "channels": [{"name": "c", "mechanism": ")") + mechanism +
        R"("}], "processes": [)" +
        proc("a", R"({"op": "repeat", "count": 5, "body": [{"op": "send", "channel": "c", "bytes": 64}]})") +
        "," +
        proc("b", R"({"op": "repeat", "count": 3, "body": [{"op": "recv", "channel": "c", "bytes": 64}]})") +
        "]}");
    balanced(run);
    std::uint64_t sent = 0, received = 0, dropped = 0, held_messages = 0;
    for (const auto& [object, l] : run.kernel->invariants()->ledger()) {
      sent += l.sent_messages;
      received += l.received_messages;
      dropped += l.dropped_messages;
      held_messages += held(*run.kernel, object).first;
    }
    CHECK(sent == 5);
    CHECK(received == 3);
    CHECK(held_messages + dropped == 2);
  }
}

// ---- A deliberately broken mechanism ----------------------------------------------------------

namespace {

// Test-only: a "mechanism" whose one object takes messages and loses some without saying so.
class LeakyState : public IpcState {
public:
  explicit LeakyState(Kernel&) {}
  std::uint64_t queued = 0, queued_bytes = 0;
  void held(std::vector<Held>& out) const override { out.push_back({"leaky 1", queued, queued_bytes}); }
};

} // namespace

TEST_CASE("conservation: a mechanism that loses a message without a reason is caught, naming the object") {
  auto run = run_text(machine(proc("p", R"({"op": "compute", "time": 1})")));
  Kernel& kernel = *run.kernel;
  OpContext ctx{kernel, const_cast<Core&>(*kernel.cores()[0]), const_cast<Thread&>(kernel.threads()[0])};
  LeakyState& leaky = kernel.ipc<LeakyState>();
  for (int i = 0; i < 3; ++i) { // three messages of 10 bytes go in
    Message m;
    m.bytes = 10;
    message_sent(ctx, m, "leaky 1");
    ++leaky.queued;
    leaky.queued_bytes += 10;
  }
  Message m;
  m.bytes = 10;
  message_received(ctx, m, "leaky 1", 10); // one is received
  --leaky.queued;
  leaky.queued_bytes -= 10;
  CHECK(kernel.invariants()->check_conservation() == "");
  // It drops one with a reason: still balanced.
  --leaky.queued;
  leaky.queued_bytes -= 10;
  message_dropped(ctx, "leaky 1", 1, 10, "a test drop");
  CHECK(kernel.invariants()->check_conservation() == "");
  // It loses the last one silently: caught.
  --leaky.queued;
  leaky.queued_bytes -= 10;
  const std::string broken = "conservation on leaky 1: 3 messages (30 bytes) sent, but 1 message (10 bytes) "
                             "received, 0 messages (0 bytes) still held and 1 message (10 bytes) dropped; 1 "
                             "message (10 bytes) dropped: a test drop";
  CHECK(kernel.invariants()->check_conservation() == broken);
  kernel.check_invariants(); // as at the end of a run: the run's error names it
  CHECK(kernel.runtime_error() ==
        "internal error: the simulator broke an invariant (please report it): " + broken);
  // Receiving more than was sent is caught at once, as it happens.
  message_received(ctx, m, "leaky 1", 10);
  message_received(ctx, m, "leaky 1", 10);
  CHECK(kernel.invariants()->violation() ==
        "conservation on leaky 1: 3 messages (30 bytes) received and 1 "
        "message (10 bytes) dropped, but only 3 messages (30 bytes) sent");
}

TEST_CASE(
    "conservation: POSIX: a receiver killed holding a handed message, a sender killed waiting for room") {
  // r sleeps in mq_receive on /a; s's mq_send hands its message to r (pipelined_send), fills /b
  // (maxmsg 1), kills r, then sleeps in mq_send on the full /b; k kills s there.
  auto run = run_text(machine(
      proc("r", R"({"op": "mq_open", "name": "/a", "fd": "a", "access": "O_RDONLY", "flags": ["O_CREAT"]},
        {"op": "mq_receive", "fd": "a", "bytes": 8192}, {"op": "print", "text": "got {result}"})") +
      "," +
      proc("s", R"({"op": "mq_open", "name": "/a", "fd": "a", "access": "O_WRONLY"},
        {"op": "mq_open", "name": "/b", "fd": "b", "access": "O_WRONLY", "flags": ["O_CREAT"], "maxmsg": 1},
        {"op": "mq_send", "fd": "a", "bytes": 16}, {"op": "kill", "process": "r"},
        {"op": "mq_send", "fd": "b", "bytes": 3}, {"op": "mq_send", "fd": "b", "bytes": 9})",
           R"("arrival": 10000, )") +
      "," + proc("k", R"({"op": "kill", "process": "s"})", R"("arrival": 50000, )")));
  balanced(run);
  CHECK(ipcsim::test::console_texts(run).empty());
  CHECK(ledger(run, "posix mq /a") ==
        "sent 1/16 received 0/0 held 0/0 dropped 1/16 [the receiver's process was "
        "killed holding it (handed over by mq_send) 1/16]");
  CHECK(ledger(run, "posix mq /b") == "sent 2/12 received 0/0 held 1/3 dropped 1/9 [its sender's process was "
                                      "killed while it waited for room 1/9]");
}
