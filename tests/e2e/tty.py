#!/usr/bin/env python3
"""The interactive prompt on a real terminal (tmux).

Attaches to fixtures/grow inside a private tmux server with a fixed
120x40 window and HOME set to a fresh directory, then, reading the screen
with capture-pane after each key press (polling for the expected screen,
never sleeping on hope):
  * the "(heapdbg) " prompt appears;
  * `snapshot zebra` runs and a new prompt follows;
  * Tab completes "snaps" to "snapshot" (the common prefix of snapshot
    and snapshots), then to "snapshots " after an "s"; it lists zebra;
  * Up-arrow recalls the previous command;
  * Tab completes a snapshot name: "top zeb" -> "top zebra";
  * `detach` ends heapdbg, and ~/.heapdbg_history holds the commands;
  * the target runs on unharmed.
"""

import os
import shutil
import subprocess
import sys
import time

import hdtest as hd

PROMPT = "(heapdbg) "


class Tmux:
    def __init__(self, tmp, command, env):
        self.sock = os.path.join(tmp, "tmux.sock")
        self.t(["new-session", "-d", "-s", "hd", "-x", "120", "-y", "40"]
               + ["env"] + ["%s=%s" % kv for kv in env.items()]
               + ["sh", "-c", command + "; echo HEAPDBG-EXIT=$?; sleep 600"])

    def t(self, args):
        return subprocess.run(["tmux", "-S", self.sock, "-f", "/dev/null"]
                              + args, capture_output=True, text=True,
                              timeout=30)

    def screen(self):
        return self.t(["capture-pane", "-p", "-t", "hd"]).stdout

    def cursor_x(self):
        out = self.t(["display-message", "-p", "-t", "hd",
                      "#{cursor_x}"]).stdout.strip()
        return int(out) if out.isdigit() else None

    def keys(self, *keys):
        self.t(["send-keys", "-t", "hd"] + list(keys))

    def type(self, text):
        self.t(["send-keys", "-t", "hd", "-l", text])

    def wait_for(self, pred, timeout=30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            s = self.screen()
            if pred(s):
                return True, s
            time.sleep(0.05)
        return False, self.screen()

    def kill(self):
        self.t(["kill-server"])


def last_line(screen):
    lines = [l for l in screen.split("\n") if l.strip()]
    return lines[-1] if lines else ""


def main():
    ctx = hd.Ctx()
    if shutil.which("tmux") is None:
        hd.skip("tmux is not installed")
    chk = hd.Checker()
    untraced = hd.untraced_grow(ctx.fixture("grow"))
    home = os.path.join(ctx.tmp, "home")
    os.mkdir(home)
    g = hd.Grow(ctx.fixture("grow"))
    tm = Tmux(ctx.tmp, "'%s' -q attach %d" % (ctx.heapdbg, g.pid),
              {"HOME": home, "TERM": "screen", "INPUTRC": "/dev/null"})
    try:
        ok, s = tm.wait_for(lambda s: last_line(s) == PROMPT.rstrip())
        chk.check(ok, "the (heapdbg) prompt appears", s)

        tm.type("snapshot zebra")
        tm.keys("Enter")
        ok, s = tm.wait_for(lambda s: s.count(PROMPT.rstrip()) >= 2
                            and last_line(s) == PROMPT.rstrip())
        chk.check(ok, "snapshot zebra runs and a new prompt follows", s)

        # "snapshot" is a prefix of "snapshots": the first Tab can only
        # complete the common part, the second one after an "s" the rest.
        tm.type("snaps")
        tm.keys("Tab")
        ok, s = tm.wait_for(lambda s: last_line(s).rstrip()
                            == PROMPT + "snapshot")
        chk.check(ok, "Tab completes snaps -> snapshot (common prefix)", s)
        tm.type("s")
        tm.keys("Tab")
        # capture-pane drops trailing blanks: the cursor shows the space
        ok, s = tm.wait_for(lambda s: last_line(s) == PROMPT + "snapshots"
                            and tm.cursor_x() == len(PROMPT + "snapshots "))
        chk.check(ok, "Tab completes snapshots, the unique match, with a "
                  "space (cursor at column %s)" % tm.cursor_x(), s)
        tm.keys("Enter")
        ok, s = tm.wait_for(lambda s: "zebra" in s.split(PROMPT + "snapshots")
                            [-1] and last_line(s) == PROMPT.rstrip())
        chk.check(ok, "snapshots lists zebra", s)

        tm.keys("Up")
        ok, s = tm.wait_for(lambda s: last_line(s).rstrip()
                            == PROMPT + "snapshots")
        chk.check(ok, "Up-arrow recalls the last command", s)
        tm.keys("C-u")
        ok, s = tm.wait_for(lambda s: last_line(s) == PROMPT.rstrip())
        chk.check(ok, "C-u clears the line", s)

        tm.type("top zeb")
        tm.keys("Tab")
        ok, s = tm.wait_for(lambda s: last_line(s).rstrip()
                            == PROMPT + "top zebra")
        chk.check(ok, "Tab completes a snapshot name: top zeb -> top zebra",
                  s)
        tm.keys("Enter")
        ok, s = tm.wait_for(lambda s: "flat  flat%" in s
                            and last_line(s) == PROMPT.rstrip())
        chk.check(ok, "top zebra prints a report", s)

        tm.type("detach")
        tm.keys("Enter")
        ok, s = tm.wait_for(lambda s: "HEAPDBG-EXIT=0" in s)
        chk.check(ok, "detach ends heapdbg with status 0", s)

        hist = os.path.join(home, ".heapdbg_history")
        text = open(hist).read() if os.path.exists(hist) else ""
        for cmd in ("snapshot zebra", "snapshots", "top zebra"):
            chk.check(cmd in [l.strip() for l in text.split("\n")],
                      "~/.heapdbg_history holds '%s'" % cmd, text)
        hd.check_target_healthy(chk, g, untraced, "after detach")
    finally:
        tm.kill()
        g.kill()
    chk.finish()


if __name__ == "__main__":
    sys.exit(main())
