#!/usr/bin/env python3
"""The in-tracee agent (the default) records exactly what breakpoints
(--level=0) record: at --rate=1, for every exact fixture, `top` of the exit
snapshot is the same for all four sample indexes, and the fixture's own
output and exit status are those of an untraced run.  `stats` after the
exit says which method recorded (the agent in the default run, so that
this comparison cannot pass by using breakpoints twice)."""
import re
import sys

import hdtest

FIXTURES = ("known", "cxx", "threads", "mixed256")


def normalized(text):
    # Addresses of unnamed code move with ASLR; pids differ per run; the
    # stats line is checked on its own.
    text = re.sub(r"0x[0-9a-f]{6,}", "0xADDR", text)
    text = re.sub(r"\[process \d+ ", "[process PID ", text)
    return sorted(l for l in text.split("\n")
                  if l.strip() and not l.startswith("heap "))


def method(text):
    """'agent' or 'breakpoints', from the tail of the stats line."""
    m = re.search(r"^heap \d+ @.*; (agent|breakpoints): ", text, re.M)
    return m.group(1) if m else None


def report(ctx, fixture, index, level):
    args = ["--rate=1", "-q", "-batch", "-ex", "wait", "-ex",
            "top 1000 -unit=B -%s exit" % index, "-ex", "stats"]
    if level is not None:
        args.insert(0, "--level=%d" % level)
    return hdtest.heapdbg(ctx, *args, "run", ctx.fixture(fixture))


def main():
    ctx = hdtest.Ctx()
    chk = hdtest.Checker()
    for name in FIXTURES:
        plain = hdtest.run([ctx.fixture(name)])
        for index in hdtest.INDEXES:
            agent = report(ctx, name, index, None)
            level0 = report(ctx, name, index, 0)
            for res, what in ((agent, "agent"), (level0, "level 0")):
                chk.eq(res.returncode, 0, "%s %s %s: heapdbg exits 0"
                       % (name, index, what), hdtest.describe(res))
            chk.eq(normalized(agent.stdout), normalized(level0.stdout),
                   "%s -%s: agent and breakpoints agree" % (name, index),
                   hdtest.describe(agent) + "\n" + hdtest.describe(level0))
            chk.check("Showing nodes accounting for" in agent.stdout,
                      "%s -%s: a report was printed" % (name, index),
                      hdtest.describe(agent))
            chk.eq(method(agent.stdout), "agent", "%s -%s: the default "
                   "run used the agent" % (name, index),
                   hdtest.describe(agent))
            chk.eq(method(level0.stdout), "breakpoints", "%s -%s: "
                   "--level=0 used breakpoints" % (name, index),
                   hdtest.describe(level0))
        # The tracee's own output is passed through unchanged.
        out = agent.stdout.split("[process")[0]
        chk.eq(out, plain.stdout, "%s: traced output equals untraced" % name)
    chk.finish()


if __name__ == "__main__":
    sys.exit(main())
