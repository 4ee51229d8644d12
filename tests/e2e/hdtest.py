"""hdtest: what heapdbg's end-to-end tests share (Python 3 standard library).

Every test script takes the same arguments, passed by ctest:

    --heapdbg PATH          the heapdbg executable under test
    --fixture NAME=PATH     a fixture program (repeatable)
    --source-dir DIR        the source tree (fixture sources, scripts/)
    --build-dir DIR         the build tree heapdbg comes from

A script makes its checks with a Checker, which prints each failure and
ends with the line "N passed, N failed"; exit status 0 when all passed,
1 otherwise, 77 (ctest's SKIP_RETURN_CODE) with the reason printed when
the test cannot run here.
"""

import argparse
import os
import re
import select
import signal
import subprocess
import sys
import tempfile
import time

SKIP = 77
INDEXES = ("inuse_space", "inuse_objects", "alloc_space", "alloc_objects")
COLUMN_HEADER = "      flat  flat%   sum%        cum   cum%"


class Ctx:
    """Paths of the things under test, from the command line."""

    def __init__(self, argv=None, extra=None):
        ap = argparse.ArgumentParser()
        ap.add_argument("--heapdbg", required=True)
        ap.add_argument("--fixture", action="append", default=[])
        ap.add_argument("--source-dir", required=True)
        ap.add_argument("--build-dir", required=True)
        if extra:
            extra(ap)
        self.args = ap.parse_args(argv)
        self.heapdbg = os.path.abspath(self.args.heapdbg)
        self.source_dir = os.path.abspath(self.args.source_dir)
        self.build_dir = os.path.abspath(self.args.build_dir)
        self.fixtures = {}
        for f in self.args.fixture:
            name, _, path = f.partition("=")
            self.fixtures[name] = os.path.abspath(path)
        if not os.access(self.heapdbg, os.X_OK):
            fail_now("heapdbg is not executable: %s" % self.heapdbg)
        self.tmp = tempfile.mkdtemp(prefix="hd-e2e-")

    def fixture(self, name):
        if name not in self.fixtures:
            fail_now("no --fixture %s=PATH given" % name)
        return self.fixtures[name]

    def fixture_source(self, filename):
        return os.path.join(self.source_dir, "fixtures", filename)


def skip(reason):
    print("SKIP: " + reason)
    sys.stdout.flush()
    sys.exit(SKIP)


def fail_now(msg):
    print("FAIL: " + msg)
    print("0 passed, 1 failed")
    sys.exit(1)


class Checker:
    """Counts checks; prints every failure with the evidence."""

    def __init__(self):
        self.passed = 0
        self.failed = 0

    def check(self, cond, what, evidence=None):
        if cond:
            self.passed += 1
            print("ok   " + what)
        else:
            self.failed += 1
            print("FAIL " + what)
            if evidence is not None:
                for line in str(evidence).rstrip("\n").split("\n"):
                    print("     | " + line)
        sys.stdout.flush()
        return cond

    def eq(self, got, want, what, evidence=None):
        ok = got == want
        msg = "%s: got %r, want %r" % (what, got, want)
        return self.check(ok, msg if not ok else what, evidence if not ok else None)

    def finish(self):
        print("%d passed, %d failed" % (self.passed, self.failed))
        sys.stdout.flush()
        sys.exit(0 if self.failed == 0 and self.passed > 0 else 1)


def describe(res):
    """A completed heapdbg run, for failure messages."""
    return "$ %s\nexit status %s\n--- stdout\n%s--- stderr\n%s" % (
        " ".join(shquote(a) for a in res.args), res.returncode,
        res.stdout, res.stderr)


def shquote(a):
    if re.fullmatch(r"[A-Za-z0-9_./=:,+-]+", a):
        return a
    return "'" + a.replace("'", "'\\''") + "'"


def run(argv, input=None, timeout=120, env=None, **kw):
    """Runs a command to completion; a hang is a test failure, not a
    stuck ctest (the child's whole process group is killed)."""
    p = subprocess.Popen(argv, stdin=subprocess.PIPE if input is not None
                         else subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, env=env,
                         start_new_session=True, **kw)
    try:
        out, err = p.communicate(input, timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        out, err = p.communicate()
        err += "\n[hdtest: killed after %ss]\n" % timeout
        return subprocess.CompletedProcess(argv, "timeout", out, err)
    return subprocess.CompletedProcess(argv, p.returncode, out, err)


def heapdbg(ctx, *args, **kw):
    return run([ctx.heapdbg] + list(args), **kw)


def stderr_lines(res):
    return [l for l in res.stderr.split("\n") if l.strip()]


# ---------------------------------------------------------------- facts

class Facts:
    """What a fixture says a profile of it must show (`FIXTURE --expect`,
    format described in fixtures/fixture.h)."""

    def __init__(self, path):
        res = run([path, "--expect"], timeout=30)
        if res.returncode != 0:
            fail_now("%s --expect failed:\n%s" % (path, describe(res)))
        self.args = []
        self.fns = []      # (name, index, flat or None, cum)
        self.absent = []   # (name, index)
        self.lines = []    # (marker, fn, index, flat, cum) as strings
        for line in res.stdout.split("\n"):
            w = line.split()
            if not w:
                continue
            if w[0] == "args":
                self.args = w[1:]
            elif w[0] == "fn":
                flat = None if w[3] == "?" else int(w[3])
                self.fns.append((w[1], w[2], flat, int(w[4])))
            elif w[0] == "absent":
                self.absent.append((w[1], w[2]))
            elif w[0] == "line":
                self.lines.append(tuple(w[1:6]))
            else:
                fail_now("unknown fact in %s --expect: %r" % (path, line))

    def indexes(self):
        seen = [f[1] for f in self.fns] + [a[1] for a in self.absent]
        return [i for i in INDEXES if i in seen]


def marker_lines(source):
    """Maps each /* MARKER */ comment of a fixture source to its line."""
    found = {}
    with open(source) as f:
        for n, text in enumerate(f, 1):
            for m in re.findall(r"/\* ([A-Z][A-Z0-9_]+) \*/", text):
                if m in found:
                    fail_now("marker %s twice in %s" % (m, source))
                found[m] = n
    return found


# ------------------------------------------------------------- reports

UNITS = {
    "B": 1, "kB": 1024, "KB": 1024, "MB": 1024 ** 2, "GB": 1024 ** 3,
    "TB": 1024 ** 4, "k": 1000, "M": 1000 ** 2, "G": 1000 ** 3,
}


def value(text):
    """A pprof figure ("12000B", "1.50kB", "-3", ".") as a number."""
    if text in (".", "0"):
        return 0
    m = re.fullmatch(r"(-?[0-9]+(?:\.[0-9]+)?)([A-Za-z]*)", text)
    if not m:
        raise ValueError("not a pprof value: %r" % text)
    unit = m.group(2)
    if unit and unit not in UNITS:
        raise ValueError("unknown unit in %r" % text)
    v = float(m.group(1)) * UNITS.get(unit, 1)
    return int(v) if v == int(v) else v


def fn_key(name):
    """A report's function name without C++ parameters, cv-qualifiers or
    pprof's " (inline)" mark: "ns::C::f(int) const (inline)" -> "ns::C::f".
    """
    name = name.strip()
    if name.endswith(" (inline)"):
        name = name[: -len(" (inline)")]
    if name.endswith(" const"):
        name = name[: -len(" const")]
    if name.endswith(")"):
        depth = 0
        for i in range(len(name) - 1, -1, -1):
            if name[i] == ")":
                depth += 1
            elif name[i] == "(":
                depth -= 1
                if depth == 0:
                    if i > 0:
                        name = name[:i]
                    break
    return name


class Top:
    """One parsed `top` report."""

    ROW = re.compile(r"^\s*(\S+)\s+(\S+%)\s+(\S+%)\s+(\S+)\s+(\S+%)\s+(.+)$")
    SHOWING = re.compile(
        r"^Showing nodes accounting for (\S+), (\S+)% of (\S+) total$")

    def __init__(self, text):
        self.text = text
        self.rows = []
        self.total = None
        self.showing = None
        self.has_column_header = False
        lines = text.split("\n")
        start = None
        for i, line in enumerate(lines):
            m = self.SHOWING.match(line)
            if m and self.showing is None:
                self.showing = value(m.group(1))
                self.total = value(m.group(3))
            if line == COLUMN_HEADER and start is None:
                self.has_column_header = True
                start = i + 1
        if start is None:
            return
        for line in lines[start:]:
            m = self.ROW.match(line)
            if not m:
                break
            self.rows.append({
                "flat": value(m.group(1)), "cum": value(m.group(4)),
                "name": m.group(6), "key": fn_key(m.group(6)),
            })

    def find(self, name):
        return [r for r in self.rows if r["key"] == name]


class Listing:
    """Parsed `list` output: ROUTINE blocks by function name."""

    HEADER = re.compile(r"^ROUTINE =+ (.+) in (\S.*)$")
    LINE = re.compile(r"^\s*(\S+)\s+(\S+)\s+(\d+):(.*)$")

    def __init__(self, text):
        self.routines = []
        cur = None
        for line in text.split("\n"):
            m = self.HEADER.match(line)
            if m:
                cur = {"name": m.group(1), "key": fn_key(m.group(1)),
                       "file": m.group(2), "lines": {}, "text": line + "\n"}
                self.routines.append(cur)
                continue
            if cur is None:
                continue
            cur["text"] += line + "\n"
            m = self.LINE.match(line)
            if m:
                cur["lines"][int(m.group(3))] = (m.group(1), m.group(2),
                                                 m.group(4))

    def find(self, name):
        return [r for r in self.routines if r["key"] == name]


def list_regex(name):
    """A regex that selects exactly function `name` in `list`."""
    esc = re.sub(r"([.^$*+?()\[\]{}|\\])", r"\\\1", name)
    return "^" + esc + ("" if "::" in name else "$")


# ------------------------------------------------------- live fixtures

class LineReader:
    """Reads lines from a pipe with a deadline (no sleep-and-hope)."""

    def __init__(self, fd):
        self.fd = fd
        self.buf = b""
        self.eof = False

    def readline(self, timeout):
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buf and not self.eof:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            r, _, _ = select.select([self.fd], [], [], left)
            if r:
                chunk = os.read(self.fd, 65536)
                if not chunk:
                    self.eof = True
                self.buf += chunk
        if b"\n" in self.buf:
            line, _, self.buf = self.buf.partition(b"\n")
            return line.decode(errors="replace")
        if self.buf:
            line, self.buf = self.buf, b""
            return line.decode(errors="replace")
        return None

    def rest(self, timeout):
        lines = []
        while True:
            line = self.readline(timeout)
            if line is None:
                return lines
            lines.append(line)


class Grow:
    """The grow fixture (see fixtures/grow.c) run with pipes, or under a
    wrapper such as strace (prefix)."""

    def __init__(self, path, prefix=(), max_seconds=120, **kw):
        self.proc = subprocess.Popen(
            list(prefix) + [path, str(max_seconds)], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, start_new_session=True, **kw)
        self.out = LineReader(self.proc.stdout.fileno())
        self.lines = []
        line = self.out.readline(30)
        if line is None or not line.startswith("ready "):
            self.kill()
            fail_now("grow fixture did not say ready: %r" % line)
        self.lines.append(line)
        self.pid = int(line.split()[1])

    def state(self):
        """The State letter of /proc/PID/status and TracerPid."""
        st, tracer = None, None
        try:
            with open("/proc/%d/status" % self.pid) as f:
                for line in f:
                    if line.startswith("State:"):
                        st = line.split()[1]
                    elif line.startswith("TracerPid:"):
                        tracer = int(line.split()[1])
        except OSError:
            pass
        return st, tracer

    def tids(self):
        try:
            return sorted(int(t) for t in os.listdir("/proc/%d/task"
                                                     % self.pid))
        except OSError:
            return []

    def ping(self, timeout=20):
        try:
            self.proc.stdin.write(b"ping\n")
            self.proc.stdin.flush()
        except BrokenPipeError:
            return None
        line = self.out.readline(timeout)
        if line is not None:
            self.lines.append(line)
        return line

    def finish(self, timeout=30):
        """Closes stdin; returns (normalized output, exit status: negative
        for a signal, as subprocess says)."""
        try:
            self.proc.stdin.close()
        except BrokenPipeError:
            pass
        self.lines += self.out.rest(timeout)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            rc = "timeout"
        return normalize("\n".join(self.lines) + "\n", self.pid), rc

    def kill(self):
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except OSError:
            pass
        self.proc.wait()


def untraced_grow(path):
    g = Grow(path)
    g.ping()
    return g.finish()


def normalize(text, pid=None):
    """Masks what changes from run to run: pids and addresses."""
    if pid is not None:
        text = re.sub(r"\b%d\b" % pid, "PID", text)
    return re.sub(r"0x[0-9a-fA-F]+", "0xADDR", text)


def check_target_healthy(chk, g, untraced, what):
    """The target is not left stopped or traced, still makes progress, and
    ends with the output and status of an untraced run."""
    st, tracer = g.state()
    chk.check(st is not None and st not in ("t", "T"),
              "%s: target is not stopped (State %s)" % (what, st))
    chk.eq(tracer, 0, "%s: target has no tracer left" % what)
    chk.eq(g.ping(), "pong 1", "%s: target still makes progress" % what)
    out, rc = g.finish()
    chk.eq(out, untraced[0], "%s: target's output equals an untraced run's"
           % what)
    chk.eq(rc, untraced[1], "%s: target's exit status equals an untraced "
           "run's" % what)


def free_pid():
    """A pid that no process has: that of a child that has been reaped."""
    p = subprocess.Popen(["true"])
    p.wait()
    if os.path.exists("/proc/%d" % p.pid):
        fail_now("pid %d reused at once" % p.pid)
    return p.pid
