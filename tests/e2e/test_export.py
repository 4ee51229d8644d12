#!/usr/bin/env python3
"""What heapdbg exports, go tool pprof reads as heapdbg reads it.

One traced run of an exact-allocation fixture (--rate=1) exports its exit
snapshot, an early snapshot and their difference, as profiles and as
folded stacks, and prints heapdbg's own top and list of the same
snapshots.  Then:

  * go tool pprof -top -sample_index=S -unit=B shows the same total and
    the same flat/cum per function as heapdbg's top, for the four sample
    indexes, of the exit snapshot and of the exported -base differences
    (exit - base, and base - exit: all negative);
  * the exported difference is what pprof computes itself (-diff_base);
  * go tool pprof -list shows the same source line values as heapdbg's
    list;
  * go tool pprof -http serves a flame graph whose data names the
    fixture's functions, with the total at its root;
  * the folded stacks are pprof's stacks (-traces), summing to the total.

usage: test_export.py HEAPDBG FIXTURE   (FIXTURE: fixtures' `known`)
Exit 77 (skipped) without Go, or when no local port can be bound.
"""
import html
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_export_common import (Checker, go_env, parse_folded,  # noqa
                                parse_list, parse_top, parse_traces,
                                pprof, require_go, skip)

INDEXES = ["alloc_objects", "alloc_space", "inuse_objects", "inuse_space"]
# Functions of fixtures/known.c and libknownleak.c that must show up.
FUNCS = ["main", "leak_a", "leak_b1", "leak_b2", "leak_b3",
         "knownleak_alloc", "leak_calloc", "leak_half"]
LIST_RX = "leak_"


def heapdbg_run(heapdbg, fixture, d):
    """Runs the fixture once under heapdbg; returns its stdout."""
    p = lambda name: os.path.join(d, name)  # noqa: E731
    cmds = ["snapshot base", "wait",
            "export %s exit" % p("exit.pb.gz"),
            "export %s base" % p("base.pb.gz"),
            "export %s -base base exit" % p("diff.pb.gz"),
            # base - exit: every value negative
            "export %s -base exit base" % p("neg.pb.gz")]
    for idx in INDEXES:
        cmds.append("export %s -format=folded -%s exit" %
                    (p("exit.%s.folded" % idx), idx))
    for idx in INDEXES:
        cmds.append("top 100 -unit=B -%s exit" % idx)
    for idx in INDEXES:
        cmds.append("top 100 -unit=B -%s -base base exit" % idx)
    for idx in INDEXES:
        cmds.append("top 100 -unit=B -%s -base exit base" % idx)
    cmds.append("list %s -unit=B exit" % LIST_RX)
    argv = [heapdbg, "--rate=1", "-q", "-batch"]
    for c in cmds:
        argv += ["-ex", c]
    argv += ["run", fixture]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=300,
                       env=go_env(d))
    if r.returncode != 0:
        raise AssertionError("heapdbg failed (%d):\n%s%s" %
                             (r.returncode, r.stdout, r.stderr))
    return r.stdout


def top_blocks(text):
    """heapdbg's top reports, in order, as parse_top() results."""
    parts = re.split(r"(?m)^(?=Showing nodes accounting for)", text)
    return [parse_top(part) for part in parts[1:]]


def free_port():
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
    except OSError as e:
        skip("cannot bind a local port: %s" % e)
    finally:
        s.close()


def flamegraph(d, profile):
    """(root value, full function names) of pprof's flame graph page."""
    port = free_port()
    server = subprocess.Popen(
        ["go", "tool", "pprof", "-http=127.0.0.1:%d" % port, "-no_browser",
         profile], env=go_env(d), stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, start_new_session=True)
    try:
        page = None
        deadline = time.time() + 60
        while time.time() < deadline and server.poll() is None:
            try:
                with urllib.request.urlopen(
                        "http://127.0.0.1:%d/ui/flamegraph" % port,
                        timeout=10) as resp:
                    page = resp.read().decode()
                break
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.2)
        if page is None:
            out = server.stdout.read().decode() if server.poll() else ""
            if "address already in use" in out:
                skip("port %d taken: %s" % (port, out.strip()))
            raise AssertionError("no flame graph page from pprof -http:\n" +
                                 out)
    finally:
        # go tool runs pprof as a child: stop the whole session we made.
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
        server.stdout.close()
    # The graph is JSON inside the page, with quotes as \u0022.
    data = html.unescape(page).replace("\\u0022", '"')
    m = re.search(r'"n":"root","f":"root","v":(-?\d+)', data)
    names = set(re.findall(r'"f":"([^"]*)"', data))
    return (int(m.group(1)) if m else None), names


def main():
    if len(sys.argv) != 3:
        print(__doc__)
        return 2
    require_go()
    heapdbg, fixture = sys.argv[1:]
    c = Checker()
    with tempfile.TemporaryDirectory(prefix="hd_export_e2e.") as d:
        out = heapdbg_run(heapdbg, fixture, d)
        tops = top_blocks(out)
        if not c.eq("heapdbg top reports", len(tops), 12):
            print(out)
            return c.done()
        exit_pb = os.path.join(d, "exit.pb.gz")
        base_pb = os.path.join(d, "base.pb.gz")
        # (file, its heapdbg tops, the -diff_base and profile pprof
        # would subtract) for the two exported differences
        diffs = [(os.path.join(d, "diff.pb.gz"), tops[4:8], base_pb,
                  exit_pb),
                 (os.path.join(d, "neg.pb.gz"), tops[8:12], exit_pb,
                  base_pb)]

        for i, idx in enumerate(INDEXES):
            want = tops[i]
            got = parse_top(pprof(d, "-top", "-nodecount=100",
                                  "-sample_index=" + idx, "-unit=B",
                                  exit_pb))
            c.eq("exit %s total" % idx, got[:2], want[:2])
            c.eq("exit %s flat/cum" % idx, got[2], want[2])
            for fn in ("main", "leak_a", "knownleak_alloc"):
                if idx.startswith("alloc") or fn in want[2]:
                    c.eq("%s in heapdbg top %s" % (fn, idx),
                         fn in want[2], True)

            for diff_pb, want_tops, minus, plus in diffs:
                name = os.path.basename(diff_pb)
                want_d = want_tops[i]
                got_d = parse_top(pprof(d, "-top", "-nodecount=100",
                                        "-sample_index=" + idx, "-unit=B",
                                        diff_pb))
                c.eq("%s %s total" % (name, idx), got_d[:2], want_d[:2])
                c.eq("%s %s flat/cum" % (name, idx), got_d[2], want_d[2])
                ref = parse_top(pprof(d, "-top", "-nodecount=100",
                                      "-sample_index=" + idx, "-unit=B",
                                      "-diff_base", minus, plus))
                c.eq("%s %s == pprof -diff_base" % (name, idx),
                     (got_d[0], got_d[2]), (ref[0], ref[2]))

            with open(os.path.join(d, "exit.%s.folded" % idx)) as f:
                folded = parse_folded(f.read())
            c.eq("folded %s sum == total" % idx, sum(folded.values()),
                 want[1])
            traces = parse_traces(pprof(d, "-traces", "-sample_index=" + idx,
                                        "-unit=B", exit_pb))
            c.eq("folded %s == pprof -traces" % idx, folded, traces)

        want_l = parse_list(out)
        got_l = parse_list(pprof(d, "-list", LIST_RX, "-unit=B", exit_pb))
        c.eq("list has lines", len(want_l) > 0, True)
        c.eq("list %s" % LIST_RX, got_l, want_l)

        root, names = flamegraph(d, exit_pb)
        c.eq("flame graph root value", root, tops[3][1])
        for fn in FUNCS:
            c.eq("flame graph names " + fn, fn in names, True)
    return c.done()


if __name__ == "__main__":
    sys.exit(main())
