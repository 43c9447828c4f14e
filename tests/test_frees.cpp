// Where each mechanism frees what its send allocated, as Linux does it: in the receive. The teaching
// preset folds a free into its allocation (slab_free and page_free 0); here they are given their own
// values, so that every free shows up exactly where and how often Linux frees.
#include "harness.hpp"

#include <doctest/doctest.h>

using namespace ipcsim;
using ipcsim::test::run_text;

namespace {

// slab_free 7 and page_free 11 cycles: a count times a cost that no other charge matches.
std::string with_frees(const std::string& processes, const std::string& extra = "") {
  return R"({"machine": {"cores": 1, "costs": {"preset": "teaching", "slab_free": 7, "page_free": 11}}, )" +
         extra + R"("processes": [)" + processes + "]}";
}

} // namespace

TEST_CASE("frees: System V and POSIX queues free a message's msg_msg and msg_msgsegs in the receive") {
  // A message of 5000 bytes is a msg_msg (4048 bytes) and one msg_msgseg: two kmallocs in the send,
  // two kfrees in free_msg (msgrcv, mq_receive); 8 bytes is one of each. Cut short by MSG_NOERROR,
  // the whole message is still freed.
  auto run = run_text(with_frees(R"({"name": "p", "script": [
    {"op": "msgget", "key": "IPC_PRIVATE", "into": "q"},
    {"op": "msgsnd", "msqid": "q", "type": 1, "bytes": 5000},
    {"op": "msgrcv", "msqid": "q", "bytes": 100, "flags": ["MSG_NOERROR"]},
    {"op": "msgsnd", "msqid": "q", "type": 1, "bytes": 8},
    {"op": "msgrcv", "msqid": "q", "bytes": 8},
    {"op": "mq_open", "name": "/q", "fd": "m", "access": "O_RDWR", "flags": ["O_CREAT"]},
    {"op": "mq_send", "fd": "m", "bytes": 5000},
    {"op": "mq_receive", "fd": "m", "bytes": 8192}]})"));
  CHECK(run.charged("p", "msgsnd", Primitive::slab_alloc) == 3 * 100);
  CHECK(run.charged("p", "msgrcv", Primitive::slab_free) == 3 * 7);
  CHECK(run.charged("p", "msgsnd", Primitive::slab_free) == 0);
  CHECK(run.charged("p", "mq_send", Primitive::slab_alloc) == 2 * 100);
  CHECK(run.charged("p", "mq_receive", Primitive::slab_free) == 2 * 7);
}

TEST_CASE("frees: a Unix socket's receive frees the sk_buff it consumed, head, data and page fragments") {
  // Stream: 70000 bytes go in two sk_buffs (36544, 33456), each a head and linear data (2 slab
  // objects) and one order-3 block of page fragments beyond its linear bytes; the read that
  // empties each frees the same: 4 slab_free, 2 page_free. Datagram: 20000 bytes, 16064 linear and one
  // fragment: 2 slab_free, 1 page_free; 100 bytes: 2 slab_free.
  auto stream = run_text(with_frees(R"({"name": "p", "script": [
    {"op": "socketpair", "fds": ["a", "b"], "type": "stream"},
    {"op": "write", "fd": "a", "bytes": 70000},
    {"op": "read", "fd": "b", "bytes": 70000}]})"));
  CHECK(stream.charged("p", "read", Primitive::slab_free) == 4 * 7);
  CHECK(stream.charged("p", "read", Primitive::page_free) == 2 * 11);
  CHECK(stream.charged("p", "write", Primitive::slab_free) == 0);
  auto dgram = run_text(with_frees(R"({"name": "p", "script": [
    {"op": "socketpair", "fds": ["c", "d"], "type": "dgram"},
    {"op": "write", "fd": "c", "bytes": 20000},
    {"op": "read", "fd": "d", "bytes": 20000},
    {"op": "write", "fd": "c", "bytes": 100},
    {"op": "read", "fd": "d", "bytes": 100}]})"));
  CHECK(dgram.charged("p", "read", Primitive::slab_free) == 4 * 7);
  CHECK(dgram.charged("p", "read", Primitive::page_free) == 1 * 11);
}

TEST_CASE("frees: a partly read stream sk_buff is freed by the read that empties it") {
  auto run = run_text(with_frees(R"({"name": "p", "script": [
    {"op": "socketpair", "fds": ["a", "b"], "type": "stream"},
    {"op": "write", "fd": "a", "bytes": 100},
    {"op": "begin", "name": "first"}, {"op": "read", "fd": "b", "bytes": 60}, {"op": "end", "name": "first"},
    {"op": "read", "fd": "b", "bytes": 40}]})"));
  // 14 cycles of slab_free in all, none in the first read (40 bytes stay in the sk_buff).
  CHECK(run.charged("p", "read", Primitive::slab_free) == 2 * 7);
  const auto& first = run.kernel->records().front();
  auto second = run_text(with_frees(R"({"name": "p", "script": [
    {"op": "socketpair", "fds": ["a", "b"], "type": "stream"},
    {"op": "write", "fd": "a", "bytes": 100},
    {"op": "begin", "name": "first"}, {"op": "read", "fd": "b", "bytes": 60}, {"op": "end", "name": "first"}]})"));
  CHECK(second.charged("p", "read", Primitive::slab_free) == 0);
  CHECK(first.end - first.start ==
        second.kernel->records().front().end - second.kernel->records().front().start);
}

TEST_CASE("frees: a pipe read frees an emptied page unless the pipe keeps it in its two tmp_pages") {
  // 12288 bytes fill three pages. Reading them empties all three: the first two become the pipe's
  // tmp_pages (anon_pipe_buf_release keeps two since Linux 6.15), the third is freed. The next
  // write of 8192 reuses both (no page_alloc); reading it, both are kept again, not freed.
  auto run = run_text(with_frees(R"({"name": "p", "script": [
    {"op": "pipe", "fds": ["r", "w"]},
    {"op": "write", "fd": "w", "bytes": 12288},
    {"op": "read", "fd": "r", "bytes": 12288},
    {"op": "write", "fd": "w", "bytes": 8192},
    {"op": "read", "fd": "r", "bytes": 8192}]})"));
  CHECK(run.charged("p", "write", Primitive::page_alloc) == 3 * 200);
  CHECK(run.charged("p", "read", Primitive::page_free) == 1 * 11);
}

TEST_CASE("frees: a mailbox frees the kernel buffer of a queued message when it is taken, not a handed one") {
  auto run = run_text(with_frees(R"({"name": "a", "script": [
    {"op": "mb_send", "to": "b", "bytes": 64}]},
    {"name": "b", "script": [{"op": "compute", "time": 100000}, {"op": "mb_recv", "from": "a", "bytes": 64}]})"));
  CHECK(run.charged("a", "mb_send", Primitive::slab_alloc) == 100);
  CHECK(run.charged("b", "mb_recv", Primitive::slab_free) == 7);
  // A receiver already waiting gets the message copied straight in: nothing queued, nothing freed.
  auto direct = run_text(with_frees(R"({"name": "b", "script": [{"op": "mb_recv", "from": "a", "bytes": 64}]},
    {"name": "a", "script": [{"op": "compute", "time": 100000}, {"op": "mb_send", "to": "b", "bytes": 64}]})"));
  CHECK(direct.charged("a", "mb_send", Primitive::slab_alloc) == 0);
  CHECK(direct.charged("b", "mb_recv", Primitive::slab_free) == 0);
}
