"""Descendants that leave everything a scan can see: ``python escapee.py SHAPE TOKEN``.

Each escapee empties its environment (no marker left) and leaves the group and session, so
only a cgroup holds it; ``TOKEN`` stays in every process's arguments for the test's census.
Shapes: ``env-i-setsid``, ``env-i-double-fork`` (setpgid plus a double fork) and ``storm`` (a
process that keeps forking a setsid copy of itself and exiting). The leader prints
``escaped SHAPE`` once built. Every process ends by itself after ``LIFETIME`` seconds, so a
test that fails cannot leave them behind for long.
"""

from __future__ import annotations

import os
import sys
import time

LIFETIME = 120.0
STORM_GAP = 0.002  # between generations: far quicker than a scan of the process table


def _exec_bare(mode: str, token: str, deadline: float) -> None:
    """Become ``escapee.py MODE TOKEN DEADLINE`` with an empty environment."""
    argv = [sys.executable, os.path.abspath(__file__), mode, token, repr(deadline)]
    os.execve(sys.executable, argv, {})


def _sleep_until(deadline: float) -> None:
    while time.time() < deadline:
        time.sleep(min(1.0, max(deadline - time.time(), 0.0)))


def _storm(deadline: float) -> None:
    while time.time() < deadline:
        time.sleep(STORM_GAP)
        if os.fork():
            os._exit(0)
        os.setsid()


def build(shape: str, token: str, deadline: float) -> None:
    """Build the escapee and return once it has left: every copy of the close-on-exec pipe's
    write end is gone only when the escapee has exec'd bare (and the middle process ended)."""
    done, left = os.pipe()
    _leave(shape, token, deadline)
    os.close(left)
    os.read(done, 1)
    os.close(done)


def _leave(shape: str, token: str, deadline: float) -> None:
    if shape == "env-i-setsid":
        if os.fork() == 0:
            os.setsid()
            _exec_bare("bare-sleep", token, deadline)
    elif shape == "env-i-double-fork":
        middle = os.fork()
        if middle == 0:
            os.setpgid(0, 0)
            if os.fork() == 0:
                _exec_bare("bare-sleep", token, deadline)
            os._exit(0)
        os.waitpid(middle, 0)
    elif shape == "storm":
        if os.fork() == 0:
            os.setsid()
            _exec_bare("bare-storm", token, deadline)
    else:
        raise SystemExit(f"unknown shape {shape!r}")


if __name__ == "__main__":
    mode, token = sys.argv[1], sys.argv[2]
    if mode == "bare-sleep":
        _sleep_until(float(sys.argv[3]))
    elif mode == "bare-storm":
        _storm(float(sys.argv[3]))
    else:
        end = time.time() + LIFETIME
        build(mode, token, end)
        print(f"escaped {mode}", flush=True)
        _sleep_until(end)
