#!/usr/bin/env python3
"""scripts/session.py: drive heapdbg's prompt on a pseudo-terminal, as a
person at a terminal would, and print the transcript.

    session.py HEAPDBG [ARGS...] < commands

Starts HEAPDBG ARGS on a new pty (TERM=dumb, 160 columns), waits for the
"(heapdbg) " prompt, types the next line of standard input, and so on;
after the last line it types `detach` (unless the last line was detach,
quit or kill) and waits for heapdbg to exit.  Escape sequences and
carriage returns are stripped from the transcript.  Exits with heapdbg's
exit status, or 1 if a prompt does not come within --timeout seconds
(default 60).
"""

import fcntl
import os
import pty
import re
import select
import struct
import sys
import termios
import time

PROMPT = b"(heapdbg) "
ESC = re.compile(rb"\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][A-Za-z0-9]|\x1b[=>]|\r")


def main():
    argv = sys.argv[1:]
    timeout = 60.0
    if len(argv) >= 2 and argv[0] == "--timeout":
        timeout = float(argv[1])
        argv = argv[2:]
    if not argv:
        sys.stderr.write("usage: session.py [--timeout S] HEAPDBG [ARGS...]"
                         " < commands\n")
        return 2
    commands = [l.rstrip("\n") for l in sys.stdin if l.strip()]
    if not commands or commands[-1].split()[0] not in ("detach", "quit",
                                                        "kill"):
        commands.append("detach")

    pid, fd = pty.fork()
    if pid == 0:
        os.environ["TERM"] = "dumb"
        os.environ["INPUTRC"] = "/dev/null"
        try:
            os.execvp(argv[0], argv)
        finally:
            os._exit(127)
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 160, 0, 0))

    out = sys.stdout.buffer
    pending = b""
    eof = False

    def pump(deadline):
        """Reads what heapdbg printed; True once a prompt ends it."""
        nonlocal pending, eof
        while not eof:
            if pending.endswith(PROMPT):
                return True
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            r, _, _ = select.select([fd], [], [], left)
            if not r:
                continue
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                chunk = b""
            if not chunk:
                eof = True
                break
            chunk = ESC.sub(b"", chunk)
            out.write(chunk)
            out.flush()
            pending = (pending + chunk)[-len(PROMPT):]
        return pending.endswith(PROMPT)

    for cmd in commands:
        if not pump(time.monotonic() + timeout):
            sys.stderr.write("session.py: no prompt from heapdbg within "
                             "%gs\n" % timeout)
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            return 1
        pending = b""
        os.write(fd, cmd.encode() + b"\r")
    pump(time.monotonic() + timeout)
    if not eof:
        sys.stderr.write("session.py: heapdbg did not exit after the last "
                         "command\n")
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        return 1
    _, status = os.waitpid(pid, 0)
    out.write(b"\n")
    out.flush()
    return os.waitstatus_to_exitcode(status) if hasattr(
        os, "waitstatus_to_exitcode") else status >> 8


if __name__ == "__main__":
    sys.exit(main())
