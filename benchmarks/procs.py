"""Process helpers for the benchmark: markers, cleanup, memory.

Every process a measurement starts inherits ``PROCBENCH_MARKER=<token>`` in its environment,
so whatever a runner leaves behind (even re-parented, in its own session) can be found,
counted and killed afterwards.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import subprocess
import time
from dataclasses import dataclass

import psutil

MARKER_VAR = "PROCBENCH_MARKER"
WATCHDOG_TAG = "procrunner.supervise.watchdog"
_counter = itertools.count(1)


def new_token() -> str:
    """A marker unique to one measurement."""
    return f"pb{os.getpid()}x{next(_counter)}"


def bench_env(token: str) -> dict[str, str]:
    """The environment every runner (and the baseline) gets: same writer cost everywhere."""
    return {**os.environ, MARKER_VAR: token, "PYTHONUNBUFFERED": "1"}


def marked(token: str) -> list[psutil.Process]:
    """Live processes carrying the marker (environment or command line), not us."""
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        if proc.pid == os.getpid():
            continue
        try:
            cmdline = " ".join(proc.info["cmdline"] or ())
            mine = token in cmdline or proc.environ().get(MARKER_VAR) == token
            if mine and proc.status() != psutil.STATUS_ZOMBIE:
                found.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


def kill_marked(token: str) -> int:
    """SIGKILL every marked process; return how many there were."""
    procs = marked(token)
    for proc in procs:
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.kill()
    psutil.wait_procs(procs, timeout=5)
    return len(procs)


def kill_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL the runner's whole process group (it was started in a new session)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=5)


def cleanup(proc: subprocess.Popen[bytes], token: str) -> int:
    """End a measurement: kill the group, then any marked straggler. Return stragglers."""
    kill_group(proc)
    return kill_marked(token)


def wait_exit(proc: subprocess.Popen[bytes], timeout: float) -> float | None:
    """Seconds until proc exits, or None if it did not within timeout."""
    start = time.monotonic()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        return None
    return time.monotonic() - start


def rss(pid: int) -> int:
    """Resident set size of one process in bytes (0 if it is gone)."""
    try:
        return int(psutil.Process(pid).memory_info().rss)
    except psutil.NoSuchProcess:
        return 0


def helpers(pid: int) -> list[psutil.Process]:
    """The runner's own helper processes: descendants that are forks of the runner (same
    command line, like honcho's one multiprocessing worker per instance) or procrunner's
    watchdog. Instances and their children are not helpers."""
    try:
        runner = psutil.Process(pid)
        own = runner.cmdline()
        kids = runner.children(recursive=True)
    except psutil.NoSuchProcess:
        return []
    found = []
    for kid in kids:
        try:
            cmdline = kid.cmdline()
        except psutil.NoSuchProcess:
            continue
        if cmdline == own or WATCHDOG_TAG in " ".join(cmdline):
            found.append(kid)
    return found


@dataclass(frozen=True)
class Memory:
    rss: int  # the runner's own process
    helper_rss: int  # summed over its helpers
    helpers: int  # how many helpers
    uss: int  # private memory (USS) of runner + helpers: shared pages not counted
    pss: int  # proportional set size (PSS) of runner + helpers: each shared page divided


def memory(pid: int) -> Memory:
    """Memory of a runner and its helpers, instances excluded."""
    try:
        own = psutil.Process(pid).memory_full_info()
    except psutil.NoSuchProcess:
        return Memory(0, 0, 0, 0, 0)
    extra = []
    for helper in helpers(pid):
        with contextlib.suppress(psutil.NoSuchProcess):
            extra.append(helper.memory_full_info())
    uss = int(own.uss) + sum(int(i.uss) for i in extra)
    pss = int(own.pss) + sum(int(i.pss) for i in extra)
    return Memory(int(own.rss), sum(int(i.rss) for i in extra), len(extra), uss, pss)


def total_rss(pid: int) -> int:
    """RSS of a runner plus its helpers, instances excluded."""
    return rss(pid) + sum(rss(p.pid) for p in helpers(pid))
