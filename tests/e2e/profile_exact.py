#!/usr/bin/env python3
"""Exact leak report of a fixture run under `heapdbg --rate=1 run`.

With --rate=1 every allocation is recorded, so the `exit` snapshot must
show exactly what the fixture says it leaks (`FIXTURE --expect`): for each
sample index, every stated function's flat and cum in `top`, functions
that free everything absent from the in-use reports, and in `list` the
stated values on the source lines carrying the stated markers and "."
on every other line of the function.

    profile_exact.py COMMON-ARGS --name FIXTURE --source FILE [FILE...]
"""

import sys

import hdtest as hd


def extra(ap):
    ap.add_argument("--name", required=True)
    ap.add_argument("--source", action="append", required=True)


def run_exit(ctx, path, facts, commands):
    argv = ["-q", "--rate=1", "-batch", "-ex", "wait"]
    for c in commands:
        argv += ["-ex", c]
    return hd.heapdbg(ctx, *(argv + ["run", path] + facts.args), timeout=120)


def check_top(chk, ctx, path, facts, index):
    unit = "" if index.endswith("objects") else " -unit=B"
    res = run_exit(ctx, path, facts, ["top 50 -%s%s exit" % (index, unit)])
    ev = hd.describe(res)
    if not chk.eq(res.returncode, 0, "%s: top -%s exits 0" % (facts.name,
                                                              index), ev):
        return
    top = hd.Top(res.stdout)
    chk.check(top.showing is not None and top.has_column_header,
              "%s: top -%s has pprof's header lines" % (facts.name, index),
              ev)
    for name, idx, flat, cum in facts.fns:
        if idx != index:
            continue
        rows = top.find(name)
        what = "%s: top -%s: %s" % (facts.name, index, name)
        if not chk.eq(len(rows), 1, what + " appears once", ev):
            continue
        if flat is not None:
            chk.eq(rows[0]["flat"], flat, what + " flat", ev)
        chk.eq(rows[0]["cum"], cum, what + " cum", ev)
    for name, idx in facts.absent:
        if idx == index:
            chk.eq(len(top.find(name)), 0, "%s: top -%s: %s is absent"
                   % (facts.name, index, name), ev)


def check_list(chk, ctx, path, facts, markers, index):
    lines = [l for l in facts.lines if l[2] == index]
    if not lines:
        return
    fns = []
    for l in lines:
        if l[1] not in fns:
            fns.append(l[1])
    unit = "" if index.endswith("objects") else " -unit=B"
    res = run_exit(ctx, path, facts, ["list %s -%s%s exit"
                                      % (hd.list_regex(f), index, unit)
                                      for f in fns])
    ev = hd.describe(res)
    if not chk.eq(res.returncode, 0, "%s: list -%s exits 0"
                  % (facts.name, index), ev):
        return
    listing = hd.Listing(res.stdout)
    for fn in fns:
        what = "%s: list %s -%s" % (facts.name, fn, index)
        routines = listing.find(fn)
        if not chk.eq(len(routines), 1, what + ": one ROUTINE block", ev):
            continue
        r = routines[0]
        want = {}
        for marker, f, idx, flat, cum in lines:
            if f == fn:
                if marker not in markers:
                    hd.fail_now("marker %s not in the sources" % marker)
                want[markers[marker][0]] = (marker, flat, cum)
                chk.eq(r["file"].rsplit("/", 1)[-1], markers[marker][1],
                       "%s: source file of %s" % (what, marker), r["text"])
        for ln, (marker, flat, cum) in sorted(want.items()):
            got = r["lines"].get(ln)
            if not chk.check(got is not None, "%s: line %d (%s) is listed"
                             % (what, ln, marker), r["text"]):
                continue
            if flat != "?":
                chk.eq(fmt(got[0]), flat, "%s: line %d (%s) flat"
                       % (what, ln, marker), r["text"])
            chk.eq(fmt(got[1]), cum, "%s: line %d (%s) cum"
                   % (what, ln, marker), r["text"])
        others = [(ln, v) for ln, v in r["lines"].items() if ln not in want
                  and (v[0], v[1]) != (".", ".")]
        chk.eq(others, [], what + ": no other line has a value", r["text"])


def fmt(v):
    """A list column as the fact file writes it: "." or an integer."""
    n = hd.value(v)
    return "." if n == 0 else str(n)


def main():
    ctx = hd.Ctx(extra=extra)
    path = ctx.fixture(ctx.args.name)
    facts = hd.Facts(path)
    facts.name = ctx.args.name
    markers = {}
    for s in ctx.args.source:
        for m, ln in hd.marker_lines(ctx.fixture_source(s)).items():
            markers[m] = (ln, s)
    chk = hd.Checker()
    for index in facts.indexes():
        check_top(chk, ctx, path, facts, index)
    for index in hd.INDEXES:
        check_list(chk, ctx, path, facts, markers, index)
    chk.finish()


if __name__ == "__main__":
    sys.exit(main())
