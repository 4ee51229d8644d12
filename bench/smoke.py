#!/usr/bin/env python3
"""bench_smoke: the benchmark runs and produces a sane table.

Runs bench/bench.py --quick (tiniest sizes, one repetition) and checks what
it wrote: every workload has a row per mode, the traced runs did exactly
the calls of the native run (the workloads are deterministic, and tracing
must not change what a program does), at --rate=1 heapdbg's in-use bytes
equal the workload's own exact count, and the markdown has every table.
It never asserts a speed: the targets belong to the benchmark's output.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile


def fail(msg):
    print(f"bench_smoke: FAIL: {msg}")
    sys.exit(1)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--bench", required=True)
    p.add_argument("--heapdbg", required=True)
    p.add_argument("--workload-dir", required=True)
    p.add_argument("--source-dir", required=True)
    a = p.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        md = os.path.join(tmp, "PERFORMANCE.md")
        js = os.path.join(tmp, "rows.json")
        with open(md, "w") as f:
            f.write("# Performance\n\nhand-written text before\n")
        r = subprocess.run(
            [sys.executable, a.bench, "--quick", "--reps=1",
             "--heapdbg", a.heapdbg, "--workload-dir", a.workload_dir,
             "--source-dir", a.source_dir, "--out", md, "--json", js],
            capture_output=True, text=True, timeout=240)
        sys.stdout.write(r.stdout)
        sys.stderr.write(r.stderr)
        if r.returncode != 0:
            fail(f"bench.py exited with status {r.returncode}")
        with open(js) as f:
            res = json.load(f)
        with open(md) as f:
            doc = f.read()

    rows = res["rows"]
    workloads = ["churn1", "churn4", "pair", "server"]
    modes = ["native", "attach", "run", "rate64k", "rate1"]
    if res["has_level"]:
        modes.append("level0")
    by = {(x["workload"], x["mode"]): x for x in rows}
    checked = 0
    for wl in workloads:
        nat = by.get((wl, "native"))
        if nat is None:
            fail(f"no native row for {wl}")
        for m in modes:
            row = by.get((wl, m))
            if row is None:
                fail(f"no row for {wl} {m}")
            if not row["wall"] > 0 or not row["calls_s"] > 0:
                fail(f"{wl} {m}: wall {row['wall']}, calls/s "
                     f"{row['calls_s']}")
            calls = round(row["calls_s"] * row["wall"])
            ncalls = round(nat["calls_s"] * nat["wall"])
            if row["n"] == nat["n"] and calls != ncalls:
                fail(f"{wl} {m}: {calls} calls, natively {ncalls}")
            if row["exact"] != nat["exact"]:
                fail(f"{wl} {m}: exact live bytes {row['exact']}, natively "
                     f"{nat['exact']}")
            if m != "native" and row["est"] is None:
                fail(f"{wl} {m}: no estimate read from heapdbg")
            # `stats` after the exit reports the agent's lost records.
            if m not in ("native", "level0") and row["dropped"] is None:
                fail(f"{wl} {m}: no dropped count read from heapdbg")
            checked += 1
        r1 = by[(wl, "rate1")]
        if r1["est"] != r1["exact"]:
            fail(f"{wl} at --rate=1: heapdbg says {r1['est']} B in use, "
                 f"the workload {r1['exact']} B")
        if wl == "pair" and r1["exact"] != 0:
            fail(f"pair left {r1['exact']} B live")
        if wl != "pair" and r1["exact"] <= 0:
            fail(f"{wl} reports no live bytes")
    for t in ("1", "100"):
        v = res["latency"].get(t)
        if not v or not all(x > 0 for x in v["attach"] + v["detach"]):
            fail(f"no attach/detach latency for {t} threads: {v}")
    if not doc.startswith("# Performance\n\nhand-written text before\n"):
        fail("the text before the generated block was not kept")
    for h in ["### " + w for w in workloads] + ["### attach and detach",
                                                "### targets"]:
        if h not in doc:
            fail(f"{h!r} missing from the markdown")
    if doc.count("<!-- bench:begin") != 1 or doc.count("<!-- bench:end") != 1:
        fail("the generated block is not delimited exactly once")
    print(f"bench_smoke: {checked} rows checked, --rate=1 exact for "
          f"{len(workloads)} workloads, latency for 1 and 100 threads")
    return 0


if __name__ == "__main__":
    sys.exit(main())
