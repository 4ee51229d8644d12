#!/usr/bin/env python3
"""reliability.py: "the traced process is never harmed", scenario by scenario.

    reliability.py --heapdbg PATH --target PATH [--sleeper32 PATH]
                   --scenario NAME [--runs N] [--seed S]

Runs one scenario N times against the real heapdbg and the fixture
rel_target (tests/reliability/fixtures/rel_target.c), each run on a fresh
process, and checks the promises of SPEC.md to the traced process:

  * it survives: its final line is "final ok" (its own checks passed: no
    corrupted block, no lost or doubled signal, every child exited as it
    should) and its exit status is 0;
  * after heapdbg leaves, every byte of every executable mapping equals
    what it was before heapdbg came (read through /proc/PID/mem, keyed by
    file and offset so an exec'd image compares too), no thread is
    stopped and none is still traced;
  * where the fixture knows its allocations exactly (leak N, burst N,
    the image after exec), heapdbg at --rate=1 reports exactly them.

The last line is a summary that scripts/reliability.sh turns into a row
of docs/RELIABILITY.md:

    RESULT scenario=NAME runs=N survived=S/N restored=B/M lost=L/A

(restored: runs whose bytes all matched, of those where it applies;
lost: allocations missing from heapdbg's report, of those expected).
Exit status 0 when every run passed, 1 otherwise, 77 when the scenario
cannot run here (the reason is printed).
"""

import argparse
import errno
import hashlib
import os
import pty
import queue
import random
import re
import select
import signal
import subprocess
import sys
import threading
import time

SKIP = 77
TIMEOUT = 30  # seconds for any single expected event


class Failure(Exception):
    pass


# ---------------------------------------------------------------- helpers


class Lines:
    """A pipe read line by line on a thread, with timeouts."""

    def __init__(self, f):
        self.q = queue.Queue()
        self.all = []
        self.t = threading.Thread(target=self._run, args=(f,), daemon=True)
        self.t.start()

    def _run(self, f):
        for raw in iter(f.readline, b""):
            line = raw.decode("utf-8", "replace").rstrip("\n")
            self.all.append(line)
            self.q.put(line)
        self.q.put(None)

    def expect(self, pattern, timeout=TIMEOUT, what=""):
        """Lines up to and including the first matching `pattern`."""
        got = []
        end = time.monotonic() + timeout
        while True:
            left = end - time.monotonic()
            try:
                line = self.q.get(timeout=max(left, 0.01))
            except queue.Empty:
                raise Failure("timeout waiting for %s /%s/; got %r" %
                              (what, pattern, got[-20:]))
            if line is None:
                raise Failure("end of output waiting for %s /%s/; got %r" %
                              (what, pattern, got[-20:]))
            got.append(line)
            if re.search(pattern, line):
                return got

    def rest(self, timeout=TIMEOUT):
        self.t.join(timeout)
        return list(self.all)


def proc_status(pid, key, tid=None):
    path = "/proc/%d/task/%d/status" % (pid, tid) if tid else \
        "/proc/%d/status" % pid
    try:
        with open(path) as f:
            for line in f:
                if line.startswith(key + ":"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        return None
    return None


def tids(pid):
    try:
        return [int(t) for t in os.listdir("/proc/%d/task" % pid)]
    except OSError:
        return []


def thread_states(pid):
    """{tid: (State letter, TracerPid)} of every thread."""
    out = {}
    for tid in tids(pid):
        st = proc_status(pid, "State", tid)
        tr = proc_status(pid, "TracerPid", tid)
        if st is not None:
            out[tid] = (st[0], int(tr or 0))
    return out


def wait_states(pid, pred, timeout=5.0):
    """Polls until pred(states) holds; returns the last states seen."""
    end = time.monotonic() + timeout
    while True:
        s = thread_states(pid)
        if pred(s) or time.monotonic() > end:
            return s
        time.sleep(0.01)


def exec_image(pid):
    """Digest of every executable mapping, keyed by (file, offset, size)
    so the same code compares equal wherever it is mapped."""
    try:
        return read_image(pid)
    except OSError as e:
        raise Failure("cannot read the code of %d: %s" % (pid, e))


def read_image(pid):
    image = {}
    with open("/proc/%d/maps" % pid) as f:
        maps = f.read().splitlines()
    with open("/proc/%d/mem" % pid, "rb", buffering=0) as mem:
        for line in maps:
            parts = line.split(None, 5)
            if len(parts) < 5 or "x" not in parts[1]:
                continue
            name = parts[5] if len(parts) == 6 else "[anon]"
            if name == "[vsyscall]":
                continue  # not readable through /proc/PID/mem
            lo, hi = (int(x, 16) for x in parts[0].split("-"))
            try:
                mem.seek(lo)
                data = mem.read(hi - lo)
            except OSError as e:
                raise Failure("cannot read %s of %d: %s" % (line, pid, e))
            key = (name, parts[2], hi - lo)
            image[key] = hashlib.sha256(data).hexdigest()
    return image


def compare_images(before, after):
    """A list of differences (empty when equal)."""
    diffs = []
    for k in sorted(set(before) | set(after)):
        if k[0] == "[anon]":
            continue  # anonymous code (a JIT) is the process's business
        if k not in after:
            diffs.append("mapping gone: %s" % (k,))
        elif k not in before:
            diffs.append("mapping new: %s" % (k,))
        elif before[k] != after[k]:
            diffs.append("bytes differ: %s" % (k,))
    return diffs


# ---------------------------------------------------------------- processes


class Target:
    """rel_target: started untraced in its own session, driven by stdin."""

    def __init__(self, ctx, workers, env=None):
        self.p = subprocess.Popen([ctx.target] + workers,
                                  stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE,
                                  start_new_session=True, env=env)
        self.out = Lines(self.p.stdout)
        self.err = Lines(self.p.stderr)
        self.pid = self.p.pid
        self.out.expect(r"^ready \d+$", what="the target's ready line")

    def send(self, line):
        self.p.stdin.write((line + "\n").encode())
        self.p.stdin.flush()

    def ask(self, line, answer, timeout=TIMEOUT):
        self.send(line)
        return self.out.expect(answer, timeout, "the answer to %r" % line)

    def finish(self, timeout=TIMEOUT):
        """quit; returns (exit status, final line)."""
        try:
            self.send("quit")
        except OSError:
            pass
        try:
            self.p.stdin.close()
        except OSError:
            pass
        try:
            rc = self.p.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise Failure("target %d did not exit after quit; threads %s" %
                          (self.pid, thread_states(self.pid)))
        out = self.out.rest()
        final = [l for l in out if l.startswith("final")]
        return rc, final[-1] if final else "(no final line)"

    def kill(self):
        if self.p.poll() is None:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.p.wait()


class Heapdbg:
    """heapdbg attach PID, its prompt read from a pipe."""

    def __init__(self, ctx, pid, rate=None, batch_cmds=None, stdin=None,
                 extra=(), **kw):
        argv = [ctx.heapdbg] + ctx.hd_args
        if rate:
            argv.append("--rate=%s" % rate)
        if batch_cmds is not None:
            argv.append("-batch")
            for c in batch_cmds:
                argv += ["-ex", c]
        argv += list(extra) + ["attach", str(pid)]
        self.argv = argv
        self.p = subprocess.Popen(argv,
                                  stdin=stdin if stdin is not None
                                  else subprocess.PIPE,
                                  stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, **kw)
        self.out = Lines(self.p.stdout)
        self.err = Lines(self.p.stderr)

    def attached(self):
        self.out.expect(r"^attached to \d+", what="heapdbg's banner")

    def cmd(self, line, timeout=TIMEOUT):
        """The reply to one command (the `rate` after it marks its end)."""
        self.p.stdin.write((line + "\nrate\n").encode())
        self.p.stdin.flush()
        got = self.out.expect(r"^(sampling every|recording every)", timeout,
                              "the reply to %r" % line)
        return got[:-1]

    def objects(self, fn, want=None, settle=3.0):
        """In-use objects that `top` gives function fn (flat), or 0.
        The in-tracee agent hands samples over asynchronously: ask again
        for up to `settle` seconds until the count is `want`."""
        end = time.monotonic() + settle
        while True:
            n = 0
            for l in self.cmd("top -inuse_objects -focus=^%s$" % fn):
                f = l.split()
                if len(f) == 6 and f[5] == fn:
                    n = int(f[0])
            if want is None or n == want or time.monotonic() > end:
                return n
            time.sleep(0.05)

    def detach(self, timeout=TIMEOUT):
        self.p.stdin.write(b"detach\n")
        self.p.stdin.flush()
        self.p.stdin.close()
        return self.wait(timeout)

    def wait(self, timeout=TIMEOUT):
        try:
            rc = self.p.wait(timeout)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()
            raise Failure("heapdbg did not exit within %ds" % timeout)
        self.out.rest()
        self.err.rest()
        return rc

    def transcript(self):
        if self.p.poll() is None:
            try:
                self.p.wait(2)
            except subprocess.TimeoutExpired:
                pass
        return "$ %s\nexit %s\nstdout: %r\nstderr: %r" % (
            " ".join(self.argv), self.p.returncode, self.out.all[-30:],
            self.err.all[-10:])

    def kill(self):
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait()


# ---------------------------------------------------------------- one run


class Run:
    """What one run found; every check goes through here."""

    def __init__(self):
        self.survived = None  # None: not applicable
        self.restored = None
        self.expected = 0
        self.lost = 0
        self.problems = []

    def check(self, cond, what):
        if not cond:
            self.problems.append(what)
        return cond

    def count(self, fn, want, got):
        self.expected += want
        self.lost += max(want - got, 0)
        self.check(got == want, "%s: heapdbg reports %d objects, the "
                   "fixture made %d" % (fn, got, want))

    def released(self, pid, before):
        """After heapdbg left: no thread stopped or traced, bytes equal."""
        st = thread_states(pid)
        bad = {t: s for t, s in st.items() if s[0] in "tT" or s[1]}
        self.check(not bad, "threads stopped or still traced after "
                   "heapdbg left: %s" % bad)
        if before is not None:
            diffs = compare_images(before, exec_image(pid))
            self.restored = not diffs
            self.check(not diffs, "executable bytes changed: %s" % diffs)

    def ended(self, target):
        rc, final = target.finish()
        self.survived = rc == 0 and final == "final ok"
        self.check(self.survived, "target ended with status %s, %r%s" % (
            rc, final, "" if not target.err.all else
            " stderr %r" % target.err.all[-5:]))


def attach_cycle(ctx, run, workers, rate=None, during=None, detach=True,
                 env=None):
    """The common shape: start the target, read its code, attach, do
    `during(hd, target)`, detach, check the release, end the target."""
    t = Target(ctx, workers, env=env)
    hd = None
    try:
        before = exec_image(t.pid)
        hd = Heapdbg(ctx, t.pid, rate=rate)
        hd.attached()
        if during:
            during(hd, t)
        if detach:
            rc = hd.detach()
            run.check(rc == 0, "heapdbg detach: %s" % hd.transcript())
        run.released(t.pid, before)
        run.ended(t)
    except (Failure, OSError) as e:
        if t.p.poll() is not None:
            run.survived = False  # it was never told to quit
            e = "%s\ntarget ended with status %s, output %r, stderr %r" % (
                e, t.p.returncode, t.out.rest(1)[-5:], t.err.rest(1)[-5:])
        run.problems.append(str(e) + ("\n" + hd.transcript() if hd else ""))
    finally:
        if hd:
            hd.kill()
        t.kill()


# ---------------------------------------------------------------- scenarios


def sc_threads(ctx, run, i):
    """Threads created and joined at a high rate while heapdbg attaches
    and detaches; every burst thread's allocation appears."""
    def during(hd, t):
        t.ask("burst 40", r"^done 40$")
        run.count("rel_leak_thread", 40, hd.objects("rel_leak_thread", 40))
    attach_cycle(ctx, run, ["churn", "churn"], rate=1, during=during)


def sc_exact_load(ctx, run, i):
    """--rate=1 while 2 threads allocate hard: every one of the main
    thread's allocations must still be counted (none dropped)."""
    def during(hd, t):
        t.ask("leak 200", r"^done 200$")
        run.count("rel_leak_main", 200, hd.objects("rel_leak_main", 200))
    attach_cycle(ctx, run, ["alloc=2"], rate=1, during=during)


def sc_fork(ctx, run, i):
    """Children forked while attached malloc/free and exit 0 (the fixture
    checks every status: a SIGTRAP death is an error)."""
    rate = 1 if i % 2 else None
    def during(hd, t):
        time.sleep(0.3)
        t.ask("leak 10", r"^done 10$")
        if rate == 1:  # figures are estimates at other rates
            run.count("rel_leak_main", 10, hd.objects("rel_leak_main", 10))
        time.sleep(0.2)
    attach_cycle(ctx, run, ["fork", "fork", "alloc=1"], rate=rate,
                 during=during)


def sc_spawn(ctx, run, i):
    """posix_spawn, vfork+exec, vfork+_exit and system() while attached."""
    rate = 1 if i % 2 else None
    def during(hd, t):
        time.sleep(0.3)
        t.ask("leak 10", r"^done 10$")
        if rate == 1:  # figures are estimates at other rates
            run.count("rel_leak_main", 10, hd.objects("rel_leak_main", 10))
        time.sleep(0.2)
    attach_cycle(ctx, run, ["spawn", "alloc=1"], rate=rate, during=during)


def sc_exec_attach(ctx, run, i):
    """The attached process execs itself: heapdbg follows, re-arms on the
    new image and attributes what it allocates to the new image."""
    def during(hd, t):
        t.ask("leak 3", r"^done 3$")
        run.count("rel_leak_main", 3, hd.objects("rel_leak_main", 3))
        t.send("exec " + ctx.target)
        t.out.expect(r"^ready \d+$", what="the exec'd image's ready line")
        run.count("rel_leak_after_exec", 5,
                  hd.objects("rel_leak_after_exec", 5))
        t.ask("leak 2", r"^done 2$")
        # The old image's blocks went with it: only the new 2 remain.
        run.count("rel_leak_main", 2, hd.objects("rel_leak_main", 2))
    attach_cycle(ctx, run, ["alloc=1"], rate=1, during=during)


def sc_exec_run(ctx, run, i):
    """heapdbg run: the program execs; the exit snapshot is the new
    image's, with the new image's names."""
    script = os.path.join(ctx.tmp, "cmds")
    with open(script, "w") as f:
        f.write("leak 3\nexec %s\n" % ctx.target)
    argv = [ctx.heapdbg] + ctx.hd_args + [
            "--rate=1", "-batch", "-ex", "wait",
            "-ex", "top -inuse_objects -focus=^rel_leak exit",
            "run", ctx.target]
    with open(script) as stdin:
        try:
            res = subprocess.run(argv, stdin=stdin, capture_output=True,
                                 timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            run.problems.append("heapdbg run did not finish")
            return
    out = res.stdout.decode(errors="replace")
    run.survived = "final ok" in out and \
        re.search(r"exited (normally|with status 0|with code 0)", out) \
        is not None or ("final ok" in out and "status 0" in out)
    run.check(run.survived and res.returncode == 0,
              "run mode exec: %s" % out[-800:] + res.stderr.decode()[-400:])
    got = {}
    for l in out.splitlines():
        f = l.split()
        if len(f) == 6 and f[5].startswith("rel_leak"):
            got[f[5]] = int(f[0])
    run.count("rel_leak_after_exec", 5, got.get("rel_leak_after_exec", 0))
    run.check("rel_leak_main" not in got,
              "the old image's blocks survive exec: %r" % got)


def sc_sig_stop(ctx, run, i):
    """The tracee's own SIGSTOP/SIGCONT: it really stops and continues,
    while attached and across a detach."""
    def stopped(s):
        return bool(s) and all(v[0] in "tT" for v in s.values())

    def running(s):
        return bool(s) and not any(v[0] in "tT" for v in s.values())

    def during(hd, t):
        for _ in range(3):
            os.kill(t.pid, signal.SIGSTOP)
            s = wait_states(t.pid, stopped)
            run.check(stopped(s), "SIGSTOP did not stop every thread: %s" % s)
            os.kill(t.pid, signal.SIGCONT)
            t.ask("ping", r"^pong$")
        t.send("stop")
        s = wait_states(t.pid, stopped)
        run.check(stopped(s), "raise(SIGSTOP) did not stop it: %s" % s)
        os.kill(t.pid, signal.SIGCONT)
        t.out.expect(r"^cont$", what="the target after SIGCONT")
        # Detach while it is stopped: it stays stopped, as it was.
        os.kill(t.pid, signal.SIGSTOP)
        s = wait_states(t.pid, stopped)
        run.check(stopped(s), "SIGSTOP before detach: %s" % s)
        rc = hd.detach()
        run.check(rc == 0, "detach of a stopped process: %s" %
                  hd.transcript())
        time.sleep(0.05)
        s = thread_states(t.pid)
        run.check(stopped(s), "a stopped process ran after detach: %s" % s)
        os.kill(t.pid, signal.SIGCONT)
        s = wait_states(t.pid, running)
        t.ask("ping", r"^pong$")
    attach_cycle(ctx, run, ["alloc=2"], rate=1 if i % 2 else None,
                 during=during, detach=False)


def sleeper(secs):
    def during(hd, t):
        time.sleep(secs)
        t.ask("ping", r"^pong$")
    return during


def sc_sig_usr1(ctx, run, i):
    attach_cycle(ctx, run, ["usr1", "alloc=1"], rate=1 if i % 2 else None,
                 during=sleeper(0.4))


def sc_sig_trap(ctx, run, i):
    attach_cycle(ctx, run, ["trap", "alloc=1"], rate=1 if i % 2 else None,
                 during=sleeper(0.4))


def sc_sig_segv(ctx, run, i):
    attach_cycle(ctx, run, ["segv", "alloc=1"], rate=1 if i % 2 else None,
                 during=sleeper(0.4))


def sc_sig_kill(ctx, run, i):
    """The tracee is killed by SIGKILL while attached: heapdbg notices,
    says so, and exits without hanging or crashing."""
    t = Target(ctx, ["alloc=4"])
    hd = Heapdbg(ctx, t.pid, rate=1 if i % 2 else None)
    try:
        hd.attached()
        time.sleep(random.uniform(0.05, 0.3))
        os.kill(t.pid, signal.SIGKILL)
        t.p.wait(TIMEOUT)
        run.check(t.p.returncode == -signal.SIGKILL,
                  "target status %s" % t.p.returncode)
        got = hd.cmd("wait 5")
        run.check(any("SIGKILL" in l for l in got),
                  "heapdbg's wait does not say SIGKILL: %r" % got)
        rc = hd.detach()
        run.check(rc in (0, 1), "heapdbg exit %s: %s" %
                  (rc, hd.transcript()))
    except Failure as e:
        run.problems.append(str(e) + "\n" + hd.transcript())
    finally:
        hd.kill()
        t.kill()


def sc_exit_attach(ctx, run, i):
    """The tracee exits on its own while heapdbg is attaching: it still
    exits 0 with its normal output, heapdbg fails cleanly or follows."""
    ms = random.randint(0, 150)
    t = Target(ctx, ["alloc=2", "exitsoon=%d" % ms])
    hd = Heapdbg(ctx, t.pid, rate=1 if i % 2 else None,
                 batch_cmds=["wait 10"], stdin=subprocess.DEVNULL)
    try:
        rc = hd.wait()
        run.check(rc in (0, 1), "heapdbg exit %s: %s" % (rc, hd.transcript()))
        if rc == 1:
            err = " ".join(hd.err.all)
            run.check(re.search(r"exited|no such process", err) is not None,
                      "unclear failure: %s" % hd.transcript())
        trc, final = t.finish()
        run.survived = trc == 0 and final == "final ok"
        run.check(run.survived, "target %s %r" % (trc, final))
    except Failure as e:
        run.problems.append(str(e) + "\n" + hd.transcript())
    finally:
        hd.kill()
        t.kill()


def make_quit_signal(sig):
    """heapdbg gets `sig` while 4 threads allocate hard: it detaches and
    dies of that signal, the tracee runs to its normal end."""
    def sc(ctx, run, i):
        def during(hd, t):
            time.sleep(random.uniform(0.05, 0.4))
            hd.p.send_signal(sig)
            rc = hd.wait()
            run.check(rc == -sig, "heapdbg after %s: %s" % (
                signal.Signals(sig).name, hd.transcript()))
            t.ask("ping", r"^pong$")
        attach_cycle(ctx, run, ["alloc=4"], rate=1 if i % 2 else None,
                     during=during, detach=False)
    return sc


def sc_hd_killed(ctx, run, i):
    """heapdbg is killed with SIGKILL (no chance to detach) while 4
    threads allocate hard: the in-tracee agent stays, the tracee runs on,
    loads and unloads a library (the dynamic linker's hook is the
    agent's too), and ends normally."""
    t = Target(ctx, ["alloc=4"])
    hd = Heapdbg(ctx, t.pid, rate=1 if i % 2 else None)
    try:
        hd.attached()
        time.sleep(random.uniform(0.05, 0.4))
        hd.p.kill()
        run.check(hd.wait() == -signal.SIGKILL, "heapdbg was not killed")
        t.ask("plugin 3", r"^done 3$")
        t.ask("ping", r"^pong$")
        run.ended(t)
    except (Failure, OSError) as e:
        if t.p.poll() is not None:
            run.survived = False
        run.problems.append(str(e) + "\n" + hd.transcript())
    finally:
        hd.kill()
        t.kill()


def sc_dlopen(ctx, run, i):
    """A library is loaded, allocates, and is unloaded again, three times,
    while 2 threads allocate: every block it leaked is reported under
    its function's name, though the library is gone when heapdbg is
    asked (heapdbg reads the modules at each change of the link map)."""
    def during(hd, t):
        for _ in range(3):
            t.ask("plugin 10", r"^done 10$")
        run.count("rel_plugin_leak", 30, hd.objects("rel_plugin_leak", 30))
    attach_cycle(ctx, run, ["alloc=2"], rate=1, during=during)


def sc_sig_tty(ctx, run, i):
    """heapdbg's terminal closes (hangup) while 4 threads allocate."""
    t = Target(ctx, ["alloc=4"])
    master = None
    hd = None
    try:
        before = exec_image(t.pid)
        master, slave = pty.openpty()

        def ctty():
            os.setsid()
            import fcntl
            import termios
            fcntl.ioctl(0, termios.TIOCSCTTY, 0)
        argv = [ctx.heapdbg] + ctx.hd_args + \
            (["--rate=1"] if i % 2 else []) + \
            ["attach", str(t.pid)]
        hd = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave,
                              preexec_fn=ctty, close_fds=True)
        os.close(slave)
        buf = b""
        end = time.monotonic() + TIMEOUT
        while b"(heapdbg)" not in buf and time.monotonic() < end:
            r, _, _ = select.select([master], [], [], 0.5)
            if r:
                try:
                    buf += os.read(master, 4096)
                except OSError:
                    break
        if not run.check(b"(heapdbg)" in buf, "no prompt on the terminal: "
                         "%r" % buf[-300:]):
            return
        time.sleep(random.uniform(0.05, 0.4))
        os.close(master)
        master = None
        try:
            rc = hd.wait(TIMEOUT)
        except subprocess.TimeoutExpired:
            raise Failure("heapdbg did not exit when its terminal closed")
        run.check(rc in (0, -signal.SIGHUP), "heapdbg exit %s" % rc)
        t.ask("ping", r"^pong$")
        run.released(t.pid, before)
        run.ended(t)
    except Failure as e:
        run.problems.append(str(e))
    finally:
        if master is not None:
            os.close(master)
        if hd and hd.poll() is None:
            hd.kill()
            hd.wait()
        t.kill()


def sc_detach(ctx, run, i):
    """detach while 4 threads allocate hard (half the runs at --rate=1,
    where every allocation has its return address hijacked)."""
    def during(hd, t):
        time.sleep(random.uniform(0.0, 0.3))
    attach_cycle(ctx, run, ["alloc=4"], rate=1 if i % 2 else None,
                 during=during)


def refuse(ctx, run, pid, pattern, check_target=True):
    """heapdbg attach pid fails with one clear line; pid is untouched."""
    before = exec_image(pid) if check_target else None
    st_before = thread_states(pid) if check_target else None
    hd = Heapdbg(ctx, pid, batch_cmds=[], stdin=subprocess.DEVNULL)
    rc = hd.wait()
    err = "\n".join(hd.err.all)
    run.check(rc == 1 and re.search(pattern, err, re.I) is not None and
              len(hd.err.all) == 1,
              "want exit 1 and one line /%s/: %s" % (pattern,
                                                     hd.transcript()))
    if check_target:
        diffs = compare_images(before, exec_image(pid))
        run.restored = not diffs
        run.check(not diffs, "bytes changed by a refused attach: %s" % diffs)
        st = thread_states(pid)
        run.check({k: v[1] for k, v in st.items()} ==
                  {k: v[1] for k, v in st_before.items()},
                  "tracers changed: %s -> %s" % (st_before, st))


def sc_refuse_traced(ctx, run, i):
    t = Target(ctx, ["alloc=1"])
    st = None
    try:
        st = subprocess.Popen(["strace", "-f", "-qq", "-o", os.devnull,
                               "-p", str(t.pid)],
                              stderr=subprocess.DEVNULL)
        s = wait_states(t.pid, lambda s: s and all(v[1] == st.pid
                                                   for v in s.values()))
        if not run.check(all(v[1] == st.pid for v in s.values()),
                         "strace did not attach: %s" % s):
            return
        refuse(ctx, run, t.pid, r"already traced.*strace")
        st.send_signal(signal.SIGINT)
        st.wait(TIMEOUT)
        st = None
        run.released(t.pid, None)
        run.ended(t)
    except Failure as e:
        run.problems.append(str(e))
    finally:
        if st:
            st.kill()
            st.wait()
        t.kill()


def sc_refuse_zombie(ctx, run, i):
    z = subprocess.Popen(["sh", "-c", "exit 0"])
    end = time.monotonic() + 5
    while proc_status(z.pid, "State", None)[0] != "Z" and \
            time.monotonic() < end:
        time.sleep(0.01)
    refuse(ctx, run, z.pid, r"zombie", check_target=False)
    run.check(proc_status(z.pid, "State")[0] == "Z",
              "the zombie changed state")
    z.wait()
    run.survived = z.returncode == 0
    run.check(run.survived, "zombie's status %s" % z.returncode)


def sc_refuse_kthread(ctx, run, i):
    refuse(ctx, run, 2, r"kernel thread", check_target=False)
    run.check(proc_status(2, "TracerPid") == "0", "kthreadd traced")


def sc_refuse_self(ctx, run, i):
    """heapdbg attach to its own pid."""
    argv = ["sh", "-c", 'exec "$0" "$@" -batch attach $$', ctx.heapdbg] + \
        ctx.hd_args
    res = subprocess.run(argv, capture_output=True, timeout=TIMEOUT,
                         stdin=subprocess.DEVNULL)
    err = res.stderr.decode(errors="replace")
    run.check(res.returncode == 1 and re.search(r"itself|heapdbg", err) and
              len(err.splitlines()) == 1,
              "attach to itself: exit %s, %r" % (res.returncode, err))


def sc_refuse_32bit(ctx, run, i):
    if not ctx.sleeper32:
        raise Skip("no 32-bit fixture: the compiler cannot build -m32 "
                   "(install gcc-multilib)")
    try:
        p = subprocess.Popen([ctx.sleeper32], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, start_new_session=True)
    except OSError as e:
        if e.errno == errno.ENOEXEC:
            raise Skip("this kernel cannot run 32-bit x86 programs "
                       "(no IA32 emulation)")
        raise
    out = Lines(p.stdout)
    try:
        out.expect(r"^ready \d+$")
        refuse(ctx, run, p.pid, r"x86-64|32-bit")
        p.stdin.write(b"quit\n")
        p.stdin.close()
        rc = p.wait(TIMEOUT)
        run.survived = rc == 0 and "final ok" in out.rest()
        run.check(run.survived, "32-bit process ended with %s" % rc)
    except Failure as e:
        run.problems.append(str(e))
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


class Skip(Exception):
    pass


SCENARIOS = {
    "threads": sc_threads,
    "exact_load": sc_exact_load,
    "fork": sc_fork,
    "spawn": sc_spawn,
    "exec_attach": sc_exec_attach,
    "exec_run": sc_exec_run,
    "sig_stop": sc_sig_stop,
    "sig_usr1": sc_sig_usr1,
    "sig_trap": sc_sig_trap,
    "sig_segv": sc_sig_segv,
    "sig_kill": sc_sig_kill,
    "exit_attach": sc_exit_attach,
    "quit_sigint": make_quit_signal(signal.SIGINT),
    "quit_sigterm": make_quit_signal(signal.SIGTERM),
    "quit_sighup": make_quit_signal(signal.SIGHUP),
    "quit_tty": sc_sig_tty,
    "hd_killed": sc_hd_killed,
    "dlopen": sc_dlopen,
    "detach": sc_detach,
    "refuse_traced": sc_refuse_traced,
    "refuse_zombie": sc_refuse_zombie,
    "refuse_kthread": sc_refuse_kthread,
    "refuse_self": sc_refuse_self,
    "refuse_32bit": sc_refuse_32bit,
}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--heapdbg", required=True)
    ap.add_argument("--target", required=True)
    ap.add_argument("--sleeper32")
    ap.add_argument("--scenario", required=True, choices=sorted(SCENARIOS))
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--heapdbg-arg", dest="hd_args", action="append",
                    default=[], help="an extra option for every heapdbg "
                    "run (e.g. --level=0)")
    ap.add_argument("--seed", type=int)
    ctx = ap.parse_args()
    ctx.heapdbg = os.path.abspath(ctx.heapdbg)
    ctx.target = os.path.abspath(ctx.target)
    if ctx.sleeper32:
        ctx.sleeper32 = os.path.abspath(ctx.sleeper32)
    import tempfile
    ctx.tmp = tempfile.mkdtemp(prefix="hd-rel-")
    seed = ctx.seed if ctx.seed is not None else int(time.time())
    random.seed(seed)
    print("scenario %s, %d runs, seed %d" % (ctx.scenario, ctx.runs, seed))
    sys.stdout.flush()

    fn = SCENARIOS[ctx.scenario]
    failed = survived = surv_n = restored = rest_n = expected = lost = 0
    start = time.monotonic()
    for i in range(ctx.runs):
        run = Run()
        try:
            fn(ctx, run, i)
        except Skip as e:
            print("SKIP: %s" % e)
            sys.exit(SKIP)
        except (Failure, OSError) as e:
            run.problems.append("%s: %s" % (type(e).__name__, e))
        if run.survived is not None:
            surv_n += 1
            survived += bool(run.survived)
        if run.restored is not None:
            rest_n += 1
            restored += bool(run.restored)
        expected += run.expected
        lost += run.lost
        if run.problems:
            failed += 1
            print("FAIL run %d:" % i)
            for p in run.problems:
                for line in str(p).splitlines():
                    print("     | " + line)
        else:
            print("ok   run %d" % i)
        sys.stdout.flush()
    print("%d passed, %d failed (%.1f s)" % (ctx.runs - failed, failed,
                                            time.monotonic() - start))
    print("RESULT scenario=%s runs=%d survived=%d/%d restored=%d/%d "
          "lost=%d/%d failed=%d" % (ctx.scenario, ctx.runs, survived, surv_n,
                                    restored, rest_n, lost, expected, failed))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
