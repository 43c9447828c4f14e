#!/usr/bin/env python3
"""Writes the shared-memory ring-buffer scenarios (scenarios/shm-ring-*.json): the course's ring
buffer (BUFFER_SIZE slots, in/out, one slot kept empty) as a ping-pong between a client and a server
through two rings in one System V segment, once per way of waiting for the other side. Run from the
repository root; review the diff."""
import json

BUFFER_SIZE = 10
ROUNDS = 4
# Ring A carries requests (client -> server), ring B replies. Each ring is laid out as in the
# slides: item buffer[BUFFER_SIZE]; int in; int out (8-byte words here).
RINGS = {"A": 0, "B": 128}


def in_off(ring):
    return RINGS[ring] + BUFFER_SIZE * 8


def out_off(ring):
    return RINGS[ring] + BUFFER_SIZE * 8 + 8


def wait_while_equal(strategy, offset, var):
    """Ops that wait while the word at `offset` equals variable `var`."""
    if strategy == "spin":
        return [{"op": "spin", "map": "ring", "offset": offset, "while": "== " + var}]
    # Conditions compare a variable with a constant: compare seen - var with 0.
    load = [{"op": "mem_load", "map": "ring", "offset": offset, "into": "seen"},
            {"op": "calc", "var": "same", "expr": f"seen - {var}"}]
    if strategy == "sleep":
        body = [{"op": "sleep", "time": "100us"}] + load
    elif strategy == "yield":
        body = [{"op": "yield"}] + load
    else:  # futex: sleep in the kernel while the word still holds what we saw
        body = [{"op": "futex_wait", "map": "ring", "offset": offset, "value": var}] + load
    return load + [{"op": "while", "cond": "same == 0", "body": body}]


def notify(strategy, offset):
    if strategy == "futex":
        return [{"op": "futex_wake", "map": "ring", "offset": offset, "count": 1}]
    return []


def put(strategy, ring, item):
    """while (((in + 1) % BUFFER_SIZE) == out) ; buffer[in] = item; in = (in + 1) % BUFFER_SIZE;"""
    i = "in" + ring
    return ([{"op": "calc", "var": "next", "expr": f"({i} + 1) % {BUFFER_SIZE}"}]
            + wait_while_equal(strategy, out_off(ring), "next")
            + [{"op": "calc", "var": "slot", "expr": f"{RINGS[ring]} + {i} * 8"},
               {"op": "mem_store", "map": "ring", "offset": "slot", "value": item},
               {"op": "mem_store", "map": "ring", "offset": in_off(ring), "value": "next"},
               {"op": "calc", "var": i, "expr": "next"}]
            + notify(strategy, in_off(ring)))


def get(strategy, ring):
    """while (in == out) ; item = buffer[out]; out = (out + 1) % BUFFER_SIZE;"""
    o = "out" + ring
    return (wait_while_equal(strategy, in_off(ring), o)
            + [{"op": "calc", "var": "slot", "expr": f"{RINGS[ring]} + {o} * 8"},
               {"op": "mem_load", "map": "ring", "offset": "slot", "into": "item"},
               {"op": "calc", "var": o, "expr": f"({o} + 1) % {BUFFER_SIZE}"},
               {"op": "mem_store", "map": "ring", "offset": out_off(ring), "value": o}]
            + notify(strategy, out_off(ring)))


def attach():
    return [{"op": "shmget", "key": "0x5249", "bytes": 4096, "flags": ["IPC_CREAT"], "mode": "0600",
             "into": "shmid"},
            {"op": "shmat", "shmid": "shmid", "as": "ring"},
            {"op": "set", "var": "inA", "value": 0}, {"op": "set", "var": "outA", "value": 0},
            {"op": "set", "var": "inB", "value": 0}, {"op": "set", "var": "outB", "value": 0}]


DESCRIPTIONS = {
    "spin": "Busy polling, as in the slides: each side spins on the other's index word. The spin burns its core "
            "(user time under 'spin') until the store it waits for, the end of its slice or a preemption. On one "
            "core (round robin, 4 ms slice) the spinner holds the CPU until its slice ends, so each hand-off costs "
            "a whole slice: a round trip takes about 8 ms. Variant cores2: each side on its own core sees the "
            "other's store through the cache (a cache-line transfer), and a round trip takes well under a microsecond.",
    "sleep": "Polling with a 100 us sleep between checks: the waiting side gives its core away, so one core is no "
             "longer wasted, but every hand-off waits for the poller's next wake-up (about 100 us) and each check is a "
             "system call and two context switches. Variant cores2: the same latency, since the sleep, not the core, "
             "is what it waits for.",
    "yield": "Polling with sched_yield between checks: on one core the other side runs at once, so a round trip "
             "costs a few context switches; variant cores2: with nobody else on its core, sched_yield returns at "
             "once and the poller spins through system calls (its core stays busy, in the kernel).",
    "futex": "Waiting in the kernel with a futex: the reader sleeps in FUTEX_WAIT while the index still holds what it "
             "saw, the writer stores and calls FUTEX_WAKE. Nobody burns a core; each hand-off costs two system calls "
             "and a wakeup (and on one core a context switch; variant cores2: an IPI and an idle exit instead).",
}


# ---- Waiting with System V semaphores ----------------------------------------------------------
# The course material (reference 004) pairs the System V segment with System V semaphores (P/V on a
# sem_array, sleepers on its pending queue), so the ring uses those: per ring a semaphore counting
# the items in it and one counting the free slots (BUFFER_SIZE - 1: one slot is still kept empty,
# so that the ring and its in/out words stay the slides'). One producer and one consumer per ring
# need no mutex.
SEM = {"A": (0, 1), "B": (2, 3)}  # (items, free slots)


def sem_op(num, delta):
    return {"op": "semop", "semid": "sems", "ops": [{"sem_num": num, "sem_op": delta}]}


def sem_put(ring, item):
    items, free = SEM[ring]
    i = "in" + ring
    return [sem_op(free, -1),
            {"op": "calc", "var": "slot", "expr": f"{RINGS[ring]} + {i} * 8"},
            {"op": "mem_store", "map": "ring", "offset": "slot", "value": item},
            {"op": "calc", "var": i, "expr": f"({i} + 1) % {BUFFER_SIZE}"},
            {"op": "mem_store", "map": "ring", "offset": in_off(ring), "value": i},
            sem_op(items, 1)]


def sem_get(ring):
    items, free = SEM[ring]
    o = "out" + ring
    return [sem_op(items, -1),
            {"op": "calc", "var": "slot", "expr": f"{RINGS[ring]} + {o} * 8"},
            {"op": "mem_load", "map": "ring", "offset": "slot", "into": "item"},
            {"op": "calc", "var": o, "expr": f"({o} + 1) % {BUFFER_SIZE}"},
            {"op": "mem_store", "map": "ring", "offset": out_off(ring), "value": o},
            sem_op(free, 1)]


# ---- Notification by a signal -------------------------------------------------------------------
# SIGUSR1 says "a ring you read has an item", SIGUSR2 "a ring you write has room". Both are blocked
# for the whole run and taken with sigwait: a signal sent between the check and the sigwait stays
# pending and ends the sigwait at once, so no wakeup is lost (a handler and a plain pause would
# lose it). The writer signals only when the reader may be asleep: after storing its index it
# reloads the other's, and signals if the ring was empty (put) or full (get) before its own store.
# Either the sleeper's check saw the store, or this reload sees the sleeper's index (both sides
# store, then load), so the signal is never skipped when it is needed.
PEER = {"client": "server", "server": "client"}


def sig_wait_while_equal(offset, var, signal):
    load = [{"op": "mem_load", "map": "ring", "offset": offset, "into": "seen"},
            {"op": "calc", "var": "same", "expr": f"seen - {var}"}]
    return load + [{"op": "while", "cond": "same == 0",
                    "body": [{"op": "sigwait", "signals": [signal]}] + load}]


def sig_put(me, ring, item):
    i = "in" + ring
    return ([{"op": "calc", "var": "next", "expr": f"({i} + 1) % {BUFFER_SIZE}"}]
            + sig_wait_while_equal(out_off(ring), "next", "SIGUSR2")
            + [{"op": "calc", "var": "slot", "expr": f"{RINGS[ring]} + {i} * 8"},
               {"op": "mem_store", "map": "ring", "offset": "slot", "value": item},
               {"op": "mem_store", "map": "ring", "offset": in_off(ring), "value": "next"},
               # Was it empty before this store? (out == the old in)
               {"op": "mem_load", "map": "ring", "offset": out_off(ring), "into": "seen"},
               {"op": "calc", "var": "was_empty", "expr": f"seen - {i}"},
               {"op": "calc", "var": i, "expr": "next"},
               {"op": "if", "cond": "was_empty == 0",
                "then": [{"op": "kill", "process": PEER[me], "signal": "SIGUSR1"}]}])


def sig_get(me, ring):
    o = "out" + ring
    return (sig_wait_while_equal(in_off(ring), o, "SIGUSR1")
            + [{"op": "calc", "var": "slot", "expr": f"{RINGS[ring]} + {o} * 8"},
               {"op": "mem_load", "map": "ring", "offset": "slot", "into": "item"},
               {"op": "calc", "var": "old", "expr": o},
               {"op": "calc", "var": o, "expr": f"({o} + 1) % {BUFFER_SIZE}"},
               {"op": "mem_store", "map": "ring", "offset": out_off(ring), "value": o},
               # Was it full before this store? ((in + 1) % BUFFER_SIZE == the old out)
               {"op": "mem_load", "map": "ring", "offset": in_off(ring), "into": "seen"},
               {"op": "calc", "var": "was_full", "expr": f"(seen + 1) % {BUFFER_SIZE} - old"},
               {"op": "if", "cond": "was_full == 0",
                "then": [{"op": "kill", "process": PEER[me], "signal": "SIGUSR2"}]}])


BLOCK = [{"op": "sigprocmask", "how": "SIG_BLOCK", "signals": ["SIGUSR1", "SIGUSR2"]}]


def ops(strategy, me, what, ring, item=None):
    if strategy == "sem":
        return sem_put(ring, item) if what == "put" else sem_get(ring)
    if strategy == "signal":
        return sig_put(me, ring, item) if what == "put" else sig_get(me, ring)
    return put(strategy, ring, item) if what == "put" else get(strategy, ring)


DESCRIPTIONS["sem"] = (
    "Waiting with System V semaphores, as the course's kernel notes pair them with the segment: per ring one "
    "semaphore counts the items (P before a get, V after a put) and one the free slots (9: P before a put, V "
    "after a get), in one array of four that the client creates and sets with SETALL. The index words are still "
    "stored but nobody polls them: a side with nothing to take sleeps in semop on the array's pending queue, and "
    "the V that lets it through completes its P and wakes it (update_queue). Every P and every V is a system call, "
    "even when nobody waits: four semops per hand-off, eight per round trip.")
DESCRIPTIONS["signal"] = (
    "Notification by a signal: the writer stores its index and sends SIGUSR1 to the reader with kill; the reader "
    "keeps SIGUSR1 and SIGUSR2 blocked and waits in sigwait while the index still holds what it saw, so a signal "
    "sent between its check and its sigwait stays pending and ends the sigwait at once (no lost wakeup). A writer "
    "signals only when the reader may be asleep (it reloads the other index after its store: the ring was empty, "
    "or full for SIGUSR2 to a writer waiting for room), which in this ping-pong is every put and no get. The "
    "client blocks both signals before it spawns the server, which starts with them blocked (fork copies the "
    "mask, exec keeps it) and shares the segment: no SIGUSR1 can find it unprepared (the default action would "
    "kill it).")


def ring_scenario(strategy):
    client = attach()
    server = attach()
    if strategy == "sem":
        client += [{"op": "semget", "key": "0x5249", "nsems": 4, "flags": ["IPC_CREAT"], "mode": "0600",
                    "into": "sems"},
                   {"op": "semctl", "semid": "sems", "cmd": "SETALL",
                    "values": [0, BUFFER_SIZE - 1, 0, BUFFER_SIZE - 1]}]
        server += [{"op": "semget", "key": "0x5249", "nsems": 4, "flags": ["IPC_CREAT"], "mode": "0600",
                    "into": "sems"}]
    if strategy == "signal":
        # Blocked before the spawn, so the server starts with them blocked (fork copies the mask,
        # exec keeps it) and inherits the attachment: no SIGUSR1 can find it unprepared.
        client = BLOCK + client + [{"op": "spawn", "process": "server"}]
        server = server[2:]
    client += [{"op": "set", "var": "n", "value": 0}, {"op": "repeat", "count": ROUNDS, "body":
        [{"op": "add", "var": "n"}, {"op": "begin", "name": "round trip"}]
        + ops(strategy, "client", "put", "A", "n") + ops(strategy, "client", "get", "B")
        + [{"op": "end", "name": "round trip"},
           {"op": "print", "text": "request {n}: reply {item}"}]},
        {"op": "shmdt", "map": "ring"},
        {"op": "shmctl", "shmid": "shmid", "cmd": "IPC_RMID"}]
    if strategy == "sem":
        client += [{"op": "semctl", "semid": "sems", "cmd": "IPC_RMID"}]
    server += [{"op": "repeat", "count": ROUNDS, "body":
        ops(strategy, "server", "get", "A") + [{"op": "calc", "var": "reply", "expr": "item * 10"}]
        + ops(strategy, "server", "put", "B", "reply")}]
    if strategy == "signal":
        client.insert(len(client) - 2, {"op": "join", "process": "server"})
    processes = [{"name": "client", "working_set_pages": 0, "script": client},
                 {"name": "server", "working_set_pages": 0, "script": server}]
    if strategy == "signal":
        processes[1] = {"name": "server", "spawned": True, "working_set_pages": 0, "script": server}
    return {
        "description": DESCRIPTIONS[strategy] + " The ring buffer is the course's (BUFFER_SIZE 10, in/out, one slot kept "
                       "empty), used twice: ring A at offset 0 carries requests, ring B at offset 128 replies; the "
                       "client sends 1..4 and gets 10..40 back.",
        "machine": {"cores": 1, "costs": "linux-x86", "scheduler": {"policy": "rr", "quantum": "4ms"}},
        "processes": processes,
    }


for strategy in ["spin", "sleep", "yield", "futex", "sem", "signal"]:
    name = f"scenarios/shm-ring-{strategy}.json"
    with open(name, "w") as f:
        json.dump(ring_scenario(strategy), f, indent=1)
        f.write("\n")
    with open(f"tests/expected/shm-ring-{strategy}.variants", "w") as f:
        f.write("cores2 --set machine.cores=2\n")


# ---- Bulk transfer: shared memory against a pipe ------------------------------------------------

SIZES = [("4KiB", 4096), ("64KiB", 65536), ("1MiB", 1048576), ("16MiB", 16777216)]
DATA = 4096  # the data region starts at the segment's second page; words at 0 (seq) and 64 (ack)


def futex_wait_change(offset, var):
    """Wait (in FUTEX_WAIT) until the word at offset differs from variable var."""
    return [{"op": "mem_load", "map": "buf", "offset": offset, "into": "seen"},
            {"op": "calc", "var": "same", "expr": f"seen - {var}"},
            {"op": "while", "cond": "same == 0", "body": [
                {"op": "futex_wait", "map": "buf", "offset": offset, "value": var},
                {"op": "mem_load", "map": "buf", "offset": offset, "into": "seen"},
                {"op": "calc", "var": "same", "expr": f"seen - {var}"}]}]


def bump(offset):
    return [{"op": "atomic_add", "map": "buf", "offset": offset, "value": 1},
            {"op": "futex_wake", "map": "buf", "offset": offset, "count": 1}]


def bulk():
    producer = [{"op": "shmget", "key": "0x42554c4b", "bytes": DATA + SIZES[-1][1], "flags": ["IPC_CREAT"],
                 "mode": "0600", "into": "shmid"},
                {"op": "shmat", "shmid": "shmid", "as": "buf"},
                {"op": "set", "var": "acks", "value": 0}]
    consumer = [{"op": "shmget", "key": "0x42554c4b", "bytes": DATA + SIZES[-1][1], "flags": ["IPC_CREAT"],
                 "mode": "0600", "into": "shmid"},
                {"op": "shmat", "shmid": "shmid", "as": "buf"},
                {"op": "set", "var": "seq", "value": 0}]
    for label, size in SIZES:
        for round_name in ["first", "again"]:
            name = f"shm {label} {round_name}"
            producer += [{"op": "begin", "name": name},
                         {"op": "mem_write", "map": "buf", "offset": DATA, "bytes": size, "text": f"block of {label}"}]
            producer += bump(0) + futex_wait_change(64, "acks")
            producer += [{"op": "add", "var": "acks"}, {"op": "end", "name": name, "bytes": size}]
            consumer += futex_wait_change(0, "seq") + [
                {"op": "add", "var": "seq"},
                {"op": "mem_read", "map": "buf", "offset": DATA, "bytes": size, "into": "got"}] + bump(64)
        for round_name in ["first", "again"]:
            name = f"pipe {label} {round_name}"
            producer += [{"op": "begin", "name": name},
                         {"op": "send", "channel": "data", "bytes": size},
                         {"op": "recv", "channel": "ack", "bytes": 1},
                         {"op": "end", "name": name, "bytes": size}]
            consumer += [{"op": "recv", "channel": "data", "bytes": size},
                         {"op": "send", "channel": "ack", "bytes": 1}]
    consumer += [{"op": "print", "text": "last block read: {got}"}, {"op": "shmdt", "map": "buf"},
                 {"op": "shmctl", "shmid": "shmid", "cmd": "IPC_RMID"}]
    return {
        "description": "Bulk transfer through shared memory against a pipe, 4 KiB to 16 MiB, each size twice "
                       "(linux-x86, one core; variant cores2). Through shared memory the producer writes the "
                       "block once into the segment and the consumer reads it once, with a futex word for "
                       "'ready' and another for the acknowledgement; through a pipe (64 KiB) the block is "
                       "copied into the kernel and out again in 64 KiB pieces, each a wakeup. The first round "
                       "through shared memory pays a page fault per page in each process and the zeroing of "
                       "each new page: it loses to the pipe at every size (16 MiB: 8.0 ms against 3.9 ms on "
                       "one core, for 8192 faults and 4096 zeroed pages). With the pages mapped, on one core "
                       "the handshake (two futex calls a side) costs as much as the copy it saves at 4 KiB "
                       "(2.0 us each), and shared memory wins from 64 KiB on (4.9 against 8.3 us; 1 MiB: 88 "
                       "against 164 us; 16 MiB: 2.6 against 3.9 ms). On two cores every hand-off wakes the "
                       "other core, which costs tens of microseconds on the 2-vCPU virtual machine linux-x86 "
                       "is calibrated on, and varies from one wakeup to the next: at 4 and 64 KiB the pipe's "
                       "one wakeup per 64 KiB block and the two futex wakes of shared memory come out within "
                       "that spread of each other (64 to 85 us), and shared memory wins from 1 MiB (216 us "
                       "against 1.3 ms; 16 MiB: 2.7 against 21 ms).",
        "machine": {"cores": 1, "costs": "linux-x86"},
        "channels": [{"name": "data", "mechanism": "pipe"}, {"name": "ack", "mechanism": "pipe"}],
        "processes": [
            {"name": "producer", "working_set_pages": 0, "script": producer},
            {"name": "consumer", "working_set_pages": 0, "script": consumer},
        ],
    }


with open("scenarios/shm-bulk.json", "w") as f:
    json.dump(bulk(), f, indent=1)
    f.write("\n")
with open("tests/expected/shm-bulk.variants", "w") as f:
    f.write("cores2 --set machine.cores=2\n")


# ---- A futex mutex under contention -------------------------------------------------------------

def contention():
    worker = [{"op": "shmget", "key": "0x4d555458", "bytes": 4096, "flags": ["IPC_CREAT"], "mode": "0600",
               "into": "shmid"},
              {"op": "shmat", "shmid": "shmid", "as": "shared"},
              {"op": "repeat", "count": 50, "body": [
                  {"op": "mutex_lock", "map": "shared", "offset": 0},
                  {"op": "mem_load", "map": "shared", "offset": 64, "into": "count"},
                  {"op": "compute", "time": "2us"},
                  {"op": "calc", "var": "count", "expr": "count + 1"},
                  {"op": "mem_store", "map": "shared", "offset": 64, "value": "count"},
                  {"op": "mutex_unlock", "map": "shared", "offset": 0},
                  {"op": "compute", "time": "2us"}]},
              {"op": "print", "text": "done; the counter was {count} after my last increment"}]
    return {
        "description": "A process-shared pthread mutex built on a futex (glibc's lowlevellock: 0 free, 1 locked, 2 "
                       "locked with waiters), taken 50 times by each worker around a 2 us critical section that "
                       "increments a shared counter, with 2 us of work outside it. With one worker every lock and "
                       "unlock stays in user space: no system call (breakdown: mutex_lock and mutex_unlock charge no "
                       "trap_enter). Variants 2, 4 and 8 workers on the two cores: the lock is contended, waiters sleep "
                       "in FUTEX_WAIT and each unlock of a word left at 2 makes a FUTEX_WAKE system call; the breakdown's "
                       "trap_enter cycles under mutex_lock and mutex_unlock divided by trap_enter's cost count them. "
                       "The last line printed is 50 times the number of workers: no increment is lost.",
        "machine": {"cores": 2, "costs": "linux-x86"},
        "processes": [{"name": "worker", "count": 1, "working_set_pages": 0, "script": worker}],
    }


with open("scenarios/futex-mutex-contention.json", "w") as f:
    json.dump(contention(), f, indent=1)
    f.write("\n")
with open("tests/expected/futex-mutex-contention.variants", "w") as f:
    for n in [2, 4, 8]:
        f.write(f"workers{n} --set processes.worker.count={n}\n")
