"""Hostile descendant shapes for the no-orphans matrix: ``python shapes.py SHAPE [crash]``.

Each shape leaves descendants that a supervisor must find and stop, then prints
``built SHAPE`` (tests wait for it, never sleep). Without ``crash`` the leader then runs
forever; with ``crash`` it exits 1 at once, leaving its descendants to the stop sequence.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

FORK_MANY = 20


def forever() -> None:
    while True:
        time.sleep(3600)


def child(setsid: bool = False, ignore_term: bool = False, stop_self: bool = False) -> int:
    """Fork a child that sleeps forever (in its own session, ignoring SIGTERM, or stopped)."""
    pid = os.fork()
    if pid:
        return pid
    if setsid:
        os.setsid()
    if ignore_term:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if stop_self:
        os.kill(os.getpid(), signal.SIGSTOP)
    forever()
    return 0  # never reached


def double_fork(hold_stdout: bool) -> None:
    """A grandchild in its own session, orphaned at once (its parent exits); with
    ``hold_stdout`` it also ignores SIGTERM, keeping the instance's pipes open."""
    middle = os.fork()
    if middle == 0:
        os.setsid()
        if os.fork() == 0:
            if hold_stdout:  # it keeps the inherited stdout and stderr, writing nothing
                signal.signal(signal.SIGTERM, signal.SIG_IGN)
            else:
                os.close(1)
                os.close(2)
            forever()
        os._exit(0)
    os.waitpid(middle, 0)


def shell(line: str) -> None:
    """Run a shell line that backgrounds a command and returns at once (``&``, nohup)."""
    subprocess.run(["/bin/sh", "-c", line], check=True, stdout=subprocess.DEVNULL)


def wait_stopped(pid: int) -> None:
    """Block until ``pid`` is in the stopped state (a condition, polled: no event exists)."""
    path = f"/proc/{pid}/stat"
    while True:
        with open(path) as stat:
            if stat.read().rpartition(")")[2].split()[0] == "T":
                return
        time.sleep(0.005)


def build(shape: str) -> None:
    if shape == "group":
        child()
    elif shape == "bg":
        shell("sleep 3600 &")
    elif shape == "nohup":
        shell("nohup sleep 3600 >/dev/null 2>&1 &")
    elif shape == "setsid":
        child(setsid=True)
    elif shape == "double-fork":
        double_fork(hold_stdout=False)
    elif shape == "ignore-term":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        child(ignore_term=True)
        child(setsid=True, ignore_term=True)
    elif shape == "stop-self":
        wait_stopped(child(stop_self=True))
        wait_stopped(child(setsid=True, stop_self=True))
    elif shape == "fork-many":
        for number in range(FORK_MANY):
            child(setsid=number % 2 == 1)
    elif shape == "hold-stdout":
        double_fork(hold_stdout=True)
    else:
        raise SystemExit(f"unknown shape {shape!r}")


SHAPES = (
    "group",
    "bg",
    "nohup",
    "setsid",
    "double-fork",
    "ignore-term",
    "stop-self",
    "fork-many",
    "hold-stdout",
)

if __name__ == "__main__":
    build(sys.argv[1])
    print(f"built {sys.argv[1]}", flush=True)
    if sys.argv[2:] == ["crash"]:
        sys.exit(1)
    forever()
