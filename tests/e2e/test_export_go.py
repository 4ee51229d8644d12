#!/usr/bin/env python3
"""go tool pprof reads the profiles heapdbg exports, and finds in them the
values that were put in.

The synthetic snapshot of tests/unit/test_export.c (every allocation
recorded, rate 1, fake names) is written by `test_export --write DIR`; go
tool pprof's -top, -traces and -list of it must show exactly the
allocations recorded there, for all four sample indexes, and the exported
difference must equal what pprof computes itself with -diff_base.

usage: test_export_go.py PATH/TO/test_export
"""
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_export_common import (Checker, parse_folded, parse_list,  # noqa
                                parse_top, parse_traces, pprof,
                                require_go)

LEAF = "ns::Leaf::alloc(int)"
INDEXES = ["alloc_objects", "alloc_space", "inuse_objects", "inuse_space"]

# What test_export.c records (see record_base/record_more there):
#   stack                                ao    as   io   is
#   main;worker;Leaf (leaf.cc:40)         3   300    2  200
#   main;worker;Leaf (leaf.cc:41)         1    50    1   50
#   main;worker(:22);helper (inlined)     1  1000    0    0
#   main;Leaf (:42);operator new          2    16    1    8  (new trimmed)
TOTAL = {"alloc_objects": 7, "alloc_space": 1366, "inuse_objects": 4,
         "inuse_space": 258}
TOP = {
    "alloc_objects": {LEAF: (6, 6), "helper (inline)": (1, 1),
                      "main": (0, 7), "worker": (0, 5)},
    "alloc_space": {LEAF: (366, 366), "helper (inline)": (1000, 1000),
                    "main": (0, 1366), "worker": (0, 1350)},
    "inuse_objects": {LEAF: (4, 4), "main": (0, 4), "worker": (0, 3)},
    "inuse_space": {LEAF: (258, 258), "main": (0, 258), "worker": (0, 250)},
}
# The difference full - base, inuse_space.
DIFF_TOP = {LEAF: (-42, -42), "helper (inline)": (-1000, -1000),
            "main": (0, -1042), "worker": (0, -1050)}
LIST_ALLOC_SPACE = {
    (LEAF, 40): (300, 300), (LEAF, 41): (50, 50), (LEAF, 42): (16, 16),
    ("worker", 20): (0, 350), ("worker", 22): (0, 1000),
}


def main():
    if len(sys.argv) != 2:
        print(__doc__)
        return 2
    require_go()
    c = Checker()
    with tempfile.TemporaryDirectory(prefix="hd_export_go.") as d:
        subprocess.run([sys.argv[1], "--write", d], check=True)
        full = os.path.join(d, "full.pb.gz")
        base = os.path.join(d, "base.pb.gz")
        diff = os.path.join(d, "diff.pb.gz")

        for idx in INDEXES:
            out = pprof(d, "-top", "-sample_index=" + idx, "-unit=B", full)
            accounted, total, rows = parse_top(out)
            c.eq(idx + " total", (accounted, total),
                 (TOTAL[idx], TOTAL[idx]))
            c.eq(idx + " flat/cum", rows, TOP[idx])

            # Folded export == pprof's own (trimmed) stacks.
            traces = parse_traces(pprof(d, "-traces", "-sample_index=" + idx,
                                        "-unit=B", full))
            with open(os.path.join(d, "full.%s.folded" % idx)) as f:
                folded = parse_folded(f.read())
            c.eq(idx + " folded == pprof -traces", folded, traces)
            c.eq(idx + " folded sum", sum(folded.values()), TOTAL[idx])

        # The default sample type is inuse_space.
        _, _, rows = parse_top(pprof(d, "-top", "-unit=B", full))
        c.eq("default sample index", rows, TOP["inuse_space"])

        # The exported difference, read as it is ...
        accounted, _, rows = parse_top(pprof(d, "-top", "-unit=B", diff))
        c.eq("diff accounted", accounted, -1042)
        c.eq("diff flat/cum", rows, DIFF_TOP)
        # ... is what pprof computes from the two profiles.
        accounted, _, rows = parse_top(pprof(d, "-top", "-unit=B",
                                             "-diff_base", base, full))
        c.eq("-diff_base accounted", accounted, -1042)
        c.eq("-diff_base flat/cum", rows, DIFF_TOP)
        for idx in INDEXES:
            _, _, a = parse_top(pprof(d, "-top", "-sample_index=" + idx,
                                      "-unit=B", diff))
            _, _, b = parse_top(pprof(d, "-top", "-sample_index=" + idx,
                                      "-unit=B", "-diff_base", base, full))
            c.eq(idx + " diff == -diff_base", a, b)

        # Source lines: the call lines of the frames written.
        out = pprof(d, "-list", "worker|Leaf", "-sample_index=alloc_space",
                    "-unit=B", "-source_path=" + d, full)
        c.eq("list alloc_space", parse_list(out), LIST_ALLOC_SPACE)
    return c.done()


if __name__ == "__main__":
    sys.exit(main())
