#!/usr/bin/env python3
"""scripts/demo.sh shows what the README promises.

Runs `scripts/demo.sh --no-build BUILD_DIR` against the build under test
and checks its transcript: the prompt and each command before its output
(snapshot base, sleep, snapshot current, top -base base, list
leak_session), a pprof top table headed by leak_session with a positive
flat figure, a ROUTINE block for leak_session in leaky.c whose
LEAK_SESSION line carries the growth, and a clean exit.
"""

import os
import re
import sys

import hdtest as hd


def section(text, cmd):
    """The output of one command: from after its prompt line to the next
    prompt."""
    parts = text.split("(heapdbg) " + cmd + "\n", 1)
    if len(parts) < 2:
        return None
    return parts[1].split("(heapdbg) ", 1)[0]


def main():
    ctx = hd.Ctx()
    chk = hd.Checker()
    script = os.path.join(ctx.source_dir, "scripts", "demo.sh")
    if os.path.realpath(os.path.join(ctx.build_dir, "cli", "heapdbg")) != \
            os.path.realpath(ctx.heapdbg):
        hd.fail_now("heapdbg under test is not BUILD_DIR/cli/heapdbg")
    res = hd.run([script, "--no-build", ctx.build_dir], timeout=180)
    ev = hd.describe(res)
    chk.eq(res.returncode, 0, "demo.sh exits 0", ev)
    out = res.stdout
    for cmd in ("snapshot base", "sleep 2", "snapshot current",
                "top -base base", "list leak_session", "detach"):
        chk.check(section(out, cmd) is not None,
                  "the transcript shows (heapdbg) %s" % cmd, ev)
    top = hd.Top(section(out, "top -base base") or "")
    chk.check(top.showing is not None and top.has_column_header,
              "top -base base prints pprof's table", ev)
    first = top.rows[0] if top.rows else None
    chk.check(first is not None and first["key"] == "leak_session"
              and first["flat"] > 0,
              "leak_session heads top -base base, growing", ev)
    listing = hd.Listing(section(out, "list leak_session") or "")
    routines = listing.find("leak_session")
    chk.eq(len(routines), 1, "list prints one ROUTINE block for "
           "leak_session", ev)
    if routines:
        r = routines[0]
        chk.check(r["file"].endswith("/fixtures/leaky.c"),
                  "the ROUTINE is in fixtures/leaky.c", r["text"])
        line = hd.marker_lines(ctx.fixture_source("leaky.c"))["LEAK_SESSION"]
        got = r["lines"].get(line)
        chk.check(got is not None and hd.value(got[0]) > 0,
                  "line %d (LEAK_SESSION) carries the growth" % line,
                  r["text"])
    chk.check(not re.search(r"error|fail", res.stderr, re.I),
              "nothing went wrong on stderr", ev)
    chk.finish()


if __name__ == "__main__":
    sys.exit(main())
