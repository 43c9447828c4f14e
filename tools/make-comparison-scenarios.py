#!/usr/bin/env python3
"""Writes the ping-pong and streaming scenarios, one pair per mechanism, over the generic channel.

The workload is the same for every mechanism; only the channels' "mechanism" field (and the
mechanism's own limits) differ, so the summaries compare like with like. Each scenario runs on one
core; tests/expected/NAME.variants adds the two-core run. Rerun after changing the workload:

    tools/make-comparison-scenarios.py && tools/update-expected.sh scenarios/pingpong-*.json scenarios/stream-*.json
"""
import json
import os

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")

SIZES = [8, 64, 512, 4096, 8192, 65536, 1048576]

# name: (channel parameters, largest message the defaults allow, note). Every receive uses a buffer of
# the message's size, so the scripts are the same for every mechanism.
MECHANISMS = {
    "pipe": ({}, 1048576, "a 64 KiB pipe: a 1 MiB message is written in 16 partial writes"),
    "sysv_msg": ({}, 8192, "System V queues stop at MSGMAX = 8 KiB by default"),
    "posix_mq": ({}, 8192, "POSIX queues stop at mq_msgsize = 8 KiB by default"),
    "mailbox": ({"capacity": "unbounded"}, 1048576, "an unbounded textbook mailbox"),
    "unix_stream": ({}, 1048576, "a stream socketpair: a byte stream like a pipe"),
    "unix_dgram": ({}, 65536, "datagrams stop at 64 KiB here (the socket buffer is 208 KiB)"),
}


def label(size):
    if size >= 1048576:
        return f"{size // 1048576}MiB"
    if size >= 1024:
        return f"{size // 1024}KiB"
    return f"{size}B"


def rounds(size, small, big):
    return small if size <= 8192 else big


def channel(name, mechanism, params):
    c = {"name": name, "mechanism": mechanism}
    c.update(params)
    return c


def pingpong(mechanism, params, max_size, note):
    sizes = [s for s in SIZES if s <= max_size]
    client, server = [], []
    for size in sizes:
        n = rounds(size, 100, 10)
        name = f"rtt-{label(size)}"
        client.append({"op": "repeat", "count": n, "body": [
            {"op": "begin", "name": name},
            {"op": "send", "channel": "ping", "bytes": size},
            {"op": "recv", "channel": "pong", "bytes": size},
            {"op": "end", "name": name, "bytes": 2 * size}]})
        server.append({"op": "repeat", "count": n, "body": [
            {"op": "recv", "channel": "ping", "bytes": size},
            {"op": "send", "channel": "pong", "bytes": size}]})
    return {
        "description": f"Ping-pong over {mechanism} ({note}): a client sends a message and waits for the reply "
                       f"of the same size, at sizes {label(sizes[0])} to {label(sizes[-1])}; the rtt-SIZE "
                       "intervals give the round-trip time. On one core every round trip pays two switches; "
                       "the cores2 variant puts client and server on their own cores, where a wakeup costs an "
                       "IPI and the idle exit instead of a switch. Change the channels' mechanism to compare.",
        "machine": {"cores": 1, "costs": "linux-x86"},
        "channels": [channel("ping", mechanism, params), channel("pong", mechanism, params)],
        "processes": [{"name": "client", "script": client}, {"name": "server", "script": server}],
    }


def stream(mechanism, params, max_size, note):
    sizes = [s for s in SIZES if s <= max_size]
    producer, consumer = [], []
    for size in sizes:
        n = rounds(size, 200, 20)
        name = f"stream-{label(size)}"
        producer.append({"op": "repeat", "count": n, "body": [
            {"op": "send", "channel": "data", "bytes": size}]})
        # The consumer acknowledges each size's last message so that the next size starts clean.
        producer.append({"op": "recv", "channel": "ack", "bytes": 8})
        consumer.append({"op": "begin", "name": name})
        consumer.append({"op": "repeat", "count": n, "body": [
            {"op": "recv", "channel": "data", "bytes": size}]})
        consumer.append({"op": "end", "name": name, "bytes": n * size})
        consumer.append({"op": "send", "channel": "ack", "bytes": 8})
    return {
        "description": f"Streaming over {mechanism} ({note}): a producer sends messages back to back and a "
                       f"consumer receives them, at sizes {label(sizes[0])} to {label(sizes[-1])}; each "
                       "stream-SIZE interval gives the throughput: it begins when the consumer lets the "
                       "producer start the size (after acknowledging the previous one; on two cores that "
                       "includes waking the producer) and ends at the consumer's last receive. The cores2 "
                       "variant runs producer and consumer in parallel.",
        "machine": {"cores": 1, "costs": "linux-x86"},
        "channels": [channel("data", mechanism, params), channel("ack", mechanism, params)],
        "processes": [{"name": "producer", "script": producer}, {"name": "consumer", "script": consumer}],
    }


def write(path, doc):
    with open(path, "w") as f:
        json.dump(doc, f, indent=2)
        f.write("\n")


def main():
    for mechanism, (params, max_size, note) in MECHANISMS.items():
        slug = mechanism.replace("_", "-")
        for kind, make in (("pingpong", pingpong), ("stream", stream)):
            name = f"{kind}-{slug}"
            write(os.path.join(ROOT, "scenarios", name + ".json"), make(mechanism, params, max_size, note))
            with open(os.path.join(ROOT, "tests", "expected", name + ".variants"), "w") as f:
                f.write("cores2 --set machine.cores=2\n")


if __name__ == "__main__":
    main()
