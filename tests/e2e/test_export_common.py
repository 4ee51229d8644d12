"""Shared by the export tests: running go tool pprof offline, and reading
its text reports back into numbers.

go tool pprof is run with HOME and PPROF_TMPDIR in a scratch directory (it
may write ~/pprof), no module downloads, no toolchain switch, no proxy.
"""
import os
import re
import shutil
import subprocess
import sys

SKIP = 77


def skip(msg):
    print("SKIP: " + msg)
    sys.exit(SKIP)


def go_env(scratch):
    home = os.path.join(scratch, "home")
    os.makedirs(home, exist_ok=True)
    env = dict(os.environ)
    env.update(HOME=home, PPROF_TMPDIR=home, GOFLAGS="-mod=mod",
               GOTOOLCHAIN="local", GOPROXY="off", GOTELEMETRY="off",
               GOPATH=os.path.join(home, "go"),
               GOCACHE=os.path.join(home, "gocache"))
    env.pop("DISPLAY", None)
    env.pop("BROWSER", None)
    return env


def require_go():
    if shutil.which("go") is None:
        skip("go is not installed (apt-get install golang-go)")


def pprof(scratch, *args, timeout=120):
    """Output of `go tool pprof ARGS`; raises on failure."""
    r = subprocess.run(["go", "tool", "pprof"] + list(args),
                       env=go_env(scratch), capture_output=True, text=True,
                       timeout=timeout)
    if r.returncode != 0:
        raise AssertionError("go tool pprof %s failed (%d):\n%s%s" %
                             (" ".join(args), r.returncode, r.stdout,
                              r.stderr))
    return r.stdout


def value(text):
    """A value printed with -unit=B ("1366B", "-42B", "0") as an int."""
    m = re.fullmatch(r"(-?\d+)B?", text)
    if not m:
        raise AssertionError("not a -unit=B value: %r" % text)
    return int(m.group(1))


def parse_top(text):
    """(accounted, total, {name: (flat, cum)}) of a -top -unit=B report,
    pprof's or heapdbg's (the same layout)."""
    accounted = total = None
    rows = {}
    in_rows = False
    for line in text.splitlines():
        m = re.match(r"Showing nodes accounting for (\S+), \S+ of (\S+) "
                     r"total", line)
        if m:
            accounted, total = value(m.group(1)), value(m.group(2))
            continue
        if re.match(r"\s+flat\s+flat%\s+sum%\s+cum\s+cum%", line):
            in_rows = True
            continue
        if in_rows:
            f = line.split(None, 5)
            if len(f) < 6:
                in_rows = False
                continue
            rows[f[5]] = (value(f[0]), value(f[3]))
    if accounted is None:
        raise AssertionError("no 'Showing nodes' line in:\n" + text)
    return accounted, total, rows


def parse_traces(text):
    """{folded stack: value} of a -traces -unit=B report, with pprof's
    " (inline)" marks removed and equal stacks merged."""
    out = {}
    for block in text.split("-----------+")[1:]:
        lines = [l for l in block.splitlines()[1:] if l.strip()]
        if not lines or lines[0].startswith("Total:"):
            continue
        m = re.match(r"\s*(\S+)\s+(.*)$", lines[0])
        v = value(m.group(1))
        frames = [m.group(2)] + [l.strip() for l in lines[1:]]
        frames = [re.sub(r" \(inline\)$", "", f) for f in frames]
        key = ";".join(reversed(frames))
        out[key] = out.get(key, 0) + v
    return {k: v for k, v in out.items() if v != 0}


def parse_folded(text):
    out = {}
    for line in text.splitlines():
        stack, _, v = line.rpartition(" ")
        if stack in out:
            raise AssertionError("folded stack twice: " + stack)
        out[stack] = int(v)
    return out


def parse_list(text):
    """{(function, line number): (flat, cum)} of a -list -unit=B report
    (pprof's or heapdbg's), for the lines that carry a value."""
    out = {}
    func = None
    for line in text.splitlines():
        m = re.match(r"ROUTINE =+ (.*) in (.*)$", line)
        if m:
            func = m.group(1)
            continue
        m = re.match(r"\s+(\S+)\s+(\S+)\s+(\d+):", line)
        if m and func and (m.group(1) != "." or m.group(2) != "."):
            flat = 0 if m.group(1) == "." else value(m.group(1))
            cum = 0 if m.group(2) == "." else value(m.group(2))
            key = (func, int(m.group(3)))
            old = out.get(key, (0, 0))
            out[key] = (old[0] + flat, old[1] + cum)
    return out


class Checker:
    def __init__(self):
        self.failed = 0
        self.passed = 0

    def eq(self, what, got, want):
        if got == want:
            self.passed += 1
            return True
        self.failed += 1
        print("FAIL %s:\n  got  %r\n  want %r" % (what, got, want))
        return False

    def done(self):
        print("%d passed, %d failed" % (self.passed, self.failed))
        return 1 if self.failed else 0
