#!/usr/bin/env python3
"""Attach to a running multi-threaded process and find what grows.

Starts fixtures/grow (a grower thread adding 4 KiB a millisecond in
grow_cache, two churner threads in steady state), attaches with
    heapdbg -batch -ex 'snapshot base' -ex 'sleep 1'
            -ex 'snapshot current' -ex 'top -base base' attach PID
and checks that grow_cache heads the report with a positive flat figure,
that heapdbg saw the process's threads, and that the process runs on
unharmed: not stopped, not traced, making progress, and ending with the
very output and exit status of an untraced run.
"""

import re
import sys

import hdtest as hd


def main():
    ctx = hd.Ctx()
    path = ctx.fixture("grow")
    chk = hd.Checker()
    untraced = hd.untraced_grow(path)
    chk.eq(untraced, ("ready PID\npong 1\ndone 3\n", 3),
           "untraced grow run behaves as documented")

    g = hd.Grow(path)
    tids = g.tids()  # grow starts all its threads before "ready"
    try:
        res = hd.heapdbg(ctx, "-q", "-batch", "-ex", "snapshot base",
                         "-ex", "sleep 1", "-ex", "snapshot current",
                         "-ex", "top -base base", "-ex", "info threads",
                         "attach", str(g.pid), timeout=120)
        ev = hd.describe(res)
        chk.eq(res.returncode, 0, "heapdbg -batch attach exits 0", ev)
        top = hd.Top(res.stdout)
        chk.check(top.showing is not None and top.has_column_header,
                  "top -base base has pprof's header lines", ev)
        first = top.rows[0] if top.rows else None
        chk.check(first is not None and first["key"] == "grow_cache",
                  "grow_cache is first in top -base base", ev)
        chk.check(first is not None and first["flat"] > 0,
                  "grow_cache grew (positive flat)", ev)
        listed = [t for t in tids if re.search(r"\b%d\b" % t, res.stdout)]
        chk.eq(listed, tids, "info threads lists all 4 threads", ev)
        hd.check_target_healthy(chk, g, untraced, "after detach")
    finally:
        g.kill()
    chk.finish()


if __name__ == "__main__":
    sys.exit(main())
