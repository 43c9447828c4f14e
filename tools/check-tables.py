#!/usr/bin/env python3
"""Markdown error tables from `ipcsim check-preset --out CHECK.csv` (docs/calibrate.md's tables).

usage: tools/check-tables.py CHECK.csv
Prints four tables (round trips and streams, one core and across two): measured / simulated and the
error, in bold when outside the cell's target."""
import csv
import sys

SIZES = [8, 64, 512, 4096, 8192, 65536, 1048576]
MECHANISMS = ["pipe", "sysv_msg", "posix_mq", "unix_stream", "unix_dgram", "shm_spin", "shm_yield", "shm_futex"]


def size_name(b):
    return f"{b} B" if b < 1024 else f"{b // 1024} KiB" if b < 1048576 else f"{b // 1048576} MiB"


def sig3(v):
    if v >= 1000:
        return f"{v:.0f}"
    if v >= 100:
        return f"{v:.0f}"
    if v >= 10:
        return f"{v:.1f}"
    if v >= 1:
        return f"{v:.2f}"
    if v >= 0.1:
        return f"{v:.3f}" if v < 0.01 else f"{v:.2f}"
    return f"{v:.3f}"


def rtt(measured_ns, simulated_ns):
    if max(measured_ns, simulated_ns) >= 1e6:
        return f"{measured_ns / 1e6:.1f} ms / {simulated_ns / 1e6:.1f} ms"
    return f"{sig3(measured_ns / 1e3)} / {sig3(simulated_ns / 1e3)}"


def main():
    rows = list(csv.DictReader(open(sys.argv[1])))
    cells = {}
    for r in rows:
        if r["kind"] in ("roundtrip", "stream") and r["simulated"]:
            cells[(r["kind"], r["placement"], r["mechanism"], int(r["bytes"]))] = r
    titles = {("roundtrip", "same_core"): "Round trips, measured / simulated in us (error), same core:",
              ("roundtrip", "cross_core"): "Round trips, measured / simulated in us (error), cross core:",
              ("stream", "same_core"): "Streams, measured / simulated in MB/s (error), same core:",
              ("stream", "cross_core"): "Streams, measured / simulated in MB/s (error), cross core:"}
    for (kind, placement), title in titles.items():
        print(title)
        print()
        print("| mechanism | " + " | ".join(size_name(b) for b in SIZES) + " |")
        print("|---|" + "---|" * len(SIZES))
        for m in MECHANISMS:
            out = []
            for b in SIZES:
                r = cells.get((kind, placement, m, b))
                if not r:
                    out.append("")
                    continue
                meas, sim, err = float(r["measured"]), float(r["simulated"]), float(r["error_pct"])
                text = rtt(meas, sim) if kind == "roundtrip" else f"{sig3(meas)} / {sig3(sim)}"
                e = f"{err:+.0f}%".replace("+-", "-")
                if e in ("-0%", "+0%"):
                    e = f"{'-' if err < 0 else '+'}0%"
                e = e if r["within"] == "yes" else f"**{e}**"
                out.append(f"{text} ({e})")
            if any(out):
                print(f"| {m} | " + " | ".join(out) + " |")
        print()


main()
