"""Proof that a run is dead before anything of it is touched.

A free lock in the scratch base is not proof: children run as procrunner's user and can
write a ``RUN_ID.lock`` for any run, a live one of another app included. A run is alive while
its watchdog runs (the helper named by the run id), or while one of its processes (in its
cgroup, or carrying its marker) has a procrunner for a parent: the supervisor of a live run
is the parent of its leaders, while a dead one's leaders have been handed to init or to a
subreaper.
"""

from __future__ import annotations

import contextlib

import psutil

from procrunner import platform
from procrunner.markers import RUN_MARKER, WATCHDOG_MODULE

# psutil derives a start time from the boot time, which it knows to the second: a process
# may look up to this much older than a file made just before it.
CLOCK_SLACK = 1.0


def why_alive(run_id: str) -> str | None:
    """What shows that run ``run_id`` is still alive; None if nothing does."""
    members: set[int] = set()
    for cgroup in platform.find_run_cgroups(run_id):
        members.update(cgroup.pids())
    for proc in psutil.process_iter(["cmdline"]):
        with contextlib.suppress(psutil.Error, OSError):
            cmdline = proc.info["cmdline"] or []
            if WATCHDOG_MODULE in cmdline and run_id in cmdline:
                return f"its watchdog (pid {proc.pid}) is alive"
            if platform.environment_value(proc.pid, RUN_MARKER) == run_id:
                members.add(proc.pid)
    for pid in members:
        with contextlib.suppress(psutil.Error):
            parent = psutil.Process(pid).parent()
            if parent is None or parent.pid == 1 or parent.pid in members:
                continue
            if any("procrunner" in word for word in parent.cmdline()):
                return f"its procrunner (pid {parent.pid}) is alive"
    return None
