#!/usr/bin/env python3
"""Bad input: one clear line on stderr, a non-zero exit, and the target
left exactly as it was.

    errors.py COMMON-ARGS --case CASE

Cases (each a ctest test of its own):
  nopid    attach to a pid no process has
  perm     attach, as user nobody, to a root-owned process (needs root)
  self     heapdbg asked to attach to itself
  traced   attach to a process that strace already traces
  command  an unknown command at the prompt: the next command still works
  snapshot an unknown snapshot at the prompt: the next command still works
  rate     a bad --rate (usage error, exit 2) and a bad `rate` command

Wherever a target process is involved, it is fixtures/grow, and afterwards
it must not be stopped or traced, must still make progress, and must end
with the output and exit status of an untraced run.
"""

import os
import re
import subprocess
import sys

import hdtest as hd

NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]


def extra(ap):
    ap.add_argument("--case", required=True)


def one_line(chk, res, what, pattern=None):
    """Exactly one non-empty stderr line (matching pattern, if given) and a
    non-zero exit that is not a crash."""
    ev = hd.describe(res)
    lines = hd.stderr_lines(res)
    chk.eq(len(lines), 1, what + ": exactly one line on stderr", ev)
    rc = res.returncode
    chk.check(isinstance(rc, int) and 0 < rc < 128,
              what + ": non-zero exit status, no crash (%s)" % rc, ev)
    if pattern and lines:
        chk.check(re.search(pattern, lines[0], re.I) is not None,
                  what + ": stderr says /%s/" % pattern, ev)


def case_nopid(ctx, chk):
    pid = hd.free_pid()
    res = hd.heapdbg(ctx, "-q", "-batch", "attach", str(pid), timeout=30)
    one_line(chk, res, "attach to a free pid", r"no such process")
    chk.check(str(pid) in res.stderr, "the message names the pid",
              hd.describe(res))


def case_perm(ctx, chk, untraced):
    if os.geteuid() != 0:
        hd.skip("needs root to run heapdbg as another user")
    probe = hd.run(NOBODY + [ctx.heapdbg, "--version"], timeout=30)
    if probe.returncode != 0:
        hd.skip("user nobody cannot run %s (%s)" % (
            ctx.heapdbg, probe.stderr.strip()))
    g = hd.Grow(ctx.fixture("grow"))
    try:
        res = hd.run(NOBODY + [ctx.heapdbg, "-q", "-batch", "attach",
                               str(g.pid)], timeout=30)
        one_line(chk, res, "attach to another user's process",
                 r"permission|not permitted")
        hd.check_target_healthy(chk, g, untraced, "after refused attach")
    finally:
        g.kill()


def case_self(ctx, chk):
    # The shell's pid becomes heapdbg's own through exec.
    res = hd.run(["sh", "-c", 'exec "$0" -q -batch attach $$', ctx.heapdbg],
                 timeout=30)
    one_line(chk, res, "attach to itself")


def case_traced(ctx, chk, untraced):
    g = hd.Grow(ctx.fixture("grow"),
                prefix=["strace", "-f", "-o", "/dev/null"])
    try:
        st, tracer = g.state()
        chk.check(tracer not in (None, 0), "strace traces the target")
        res = hd.heapdbg(ctx, "-q", "-batch", "attach", str(g.pid),
                         timeout=30)
        one_line(chk, res, "attach to a traced process", r"trac")
        st, tracer2 = g.state()
        chk.check(st not in ("t", "T") or tracer2 == tracer,
                  "target is left to its tracer (State %s)" % st)
        chk.eq(g.ping(), "pong 1", "target still makes progress")
        out, rc = g.finish()
        chk.eq((out, rc), untraced, "target's output and status (through "
               "strace) equal an untraced run's")
    finally:
        g.kill()


def prompt_case(ctx, chk, untraced, bad, pattern):
    """`bad` fails with one line; the commands around it still work, in
    -batch (exit 1) and with commands on a non-terminal stdin."""
    g = hd.Grow(ctx.fixture("grow"))
    try:
        res = hd.heapdbg(ctx, "-q", "-batch", "-ex", "snapshot s1", "-ex",
                         bad, "-ex", "snapshot s2", "-ex", "snapshots",
                         "attach", str(g.pid), timeout=60)
        ev = hd.describe(res)
        one_line(chk, res, "-batch -ex '%s'" % bad, pattern)
        chk.eq(res.returncode, 1, "-batch exit status 1 after a failed "
               "command", ev)
        chk.check(re.search(r"^\s*s2\b", res.stdout, re.M) is not None,
                  "the command after the bad one ran: snapshots lists s2",
                  ev)

        res = hd.heapdbg(ctx, "-q", "attach", str(g.pid),
                         input="snapshot s1\n%s\nsnapshot s2\nsnapshots\n"
                         % bad, timeout=60)
        ev = hd.describe(res)
        lines = hd.stderr_lines(res)
        chk.eq(len(lines), 1, "stdin '%s': exactly one line on stderr" % bad,
               ev)
        chk.check(re.search(r"^\s*s2\b", res.stdout, re.M) is not None,
                  "stdin: the prompt stays usable: snapshots lists s2", ev)
        hd.check_target_healthy(chk, g, untraced, "after the session")
    finally:
        g.kill()


def case_rate(ctx, chk, untraced):
    g = hd.Grow(ctx.fixture("grow"))
    try:
        for bad in (["--rate=abc"], ["--rate=0"], ["--rate=-5"],
                    ["--rate=12q"], ["-r", "1.5.3"]):
            res = hd.heapdbg(ctx, "-q", *bad, "-batch", "attach",
                             str(g.pid), timeout=30)
            one_line(chk, res, " ".join(bad), r"rate")
            chk.eq(res.returncode, 2, "%s: usage error, exit status 2"
                   % " ".join(bad), hd.describe(res))
            st, tracer = g.state()
            chk.eq(tracer, 0, "%s: target never traced" % " ".join(bad))

        res = hd.heapdbg(ctx, "-q", "-batch", "-ex", "rate", "-ex",
                         "rate banana", "-ex", "rate", "attach", str(g.pid),
                         timeout=60)
        ev = hd.describe(res)
        one_line(chk, res, "rate banana", r"banana|rate")
        chk.eq(res.returncode, 1, "-batch exit status 1 after a bad rate", ev)
        out = [l for l in res.stdout.split("\n") if l.strip()]
        chk.check(len(out) >= 2 and out.count(out[0]) >= 2,
                  "the rate is unchanged and `rate` still works", ev)
        hd.check_target_healthy(chk, g, untraced, "after the session")
    finally:
        g.kill()


def main():
    ctx = hd.Ctx(extra=extra)
    chk = hd.Checker()
    case = ctx.args.case
    if case in ("nopid", "self"):
        globals()["case_" + case](ctx, chk)
    else:
        untraced = hd.untraced_grow(ctx.fixture("grow"))
        if case == "perm":
            case_perm(ctx, chk, untraced)
        elif case == "traced":
            case_traced(ctx, chk, untraced)
        elif case == "command":
            prompt_case(ctx, chk, untraced, "frobnicate", r"frobnicate")
        elif case == "snapshot":
            prompt_case(ctx, chk, untraced, "top nosuchsnap", r"nosuchsnap")
        elif case == "rate":
            case_rate(ctx, chk, untraced)
        else:
            hd.fail_now("unknown --case %s" % case)
    chk.finish()


if __name__ == "__main__":
    sys.exit(main())
