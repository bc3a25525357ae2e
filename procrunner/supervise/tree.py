"""An incarnation's process tree: find every live member, signal them, wait for them to go.

Members are the processes in the incarnation's cgroup (where it has one: nothing leaves it),
its process group and its session, plus the descendants that left those (``setsid``, double
fork) but still carry the incarnation's marker in their environment. psutil does the walking;
a process created before the incarnation is never a member, and psutil checks the create
time before it signals, so a reused PID is never signalled.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import signal
from collections.abc import Awaitable, Callable, Hashable, Mapping
from dataclasses import dataclass
from typing import TypeVar

import psutil

from procrunner import platform
from procrunner.markers import INCARNATION_MARKER, RUN_MARKER

_POLL_INTERVAL = 0.05
K = TypeVar("K", bound=Hashable)
T = TypeVar("T")
_FD_LIMIT = (errno.EMFILE, errno.ENFILE)
_FD_RETRY_SECONDS = 0.05
_FD_RETRIES = 100  # 5 s: other stop sequences close their pidfds well before that


async def when_fds_allow(call: Callable[[], Awaitable[T]]) -> T:
    """``call()``, retried while procrunner is at its file descriptor limit (a scan of
    ``/proc``, a wipe and a pidfd each need one): parallel stop sequences free theirs as they
    finish, and a stop that gave up at the limit would leave its tree unsupervised."""
    for _ in range(_FD_RETRIES):
        try:
            return await call()
        except OSError as exc:
            if exc.errno not in _FD_LIMIT:
                raise
        await asyncio.sleep(_FD_RETRY_SECONDS)
    return await call()


@dataclass(frozen=True)
class Target:
    """How to recognise one incarnation's processes."""

    pgid: int  # also the session id: the leader starts a new session
    marker: str
    since: float
    cgroup: platform.Cgroup | None = None


def members(
    pgid: int, marker: str, since: float, cgroup: platform.Cgroup | None = None
) -> list[psutil.Process]:
    """Live (not zombie) processes in ``cgroup``, group or session ``pgid``, or whose
    environment carries ``marker``.

    ``since`` is the leader's create time; older processes are skipped without reading their
    environment, which keeps a scan cheap on a busy machine.
    """
    return members_of({0: Target(pgid, marker, since, cgroup)})[0]


def members_of(targets: Mapping[K, Target]) -> dict[K, list[psutil.Process]]:
    """The live members of several incarnations, in one pass over the process table."""
    found: dict[K, list[psutil.Process]] = {key: [] for key in targets}
    if not targets:
        return found
    by_group = {t.pgid: key for key, t in targets.items()}
    by_marker = {t.marker: key for key, t in targets.items() if t.marker}
    oldest = min(t.since for t in targets.values())
    me = os.getpid()
    for proc in psutil.process_iter():
        try:
            if proc.pid == me or proc.create_time() < oldest:
                continue
            key = by_group.get(os.getpgid(proc.pid))
            if key is None:
                key = by_group.get(os.getsid(proc.pid))
            if key is None:
                key = by_marker.get(platform.environment_value(proc.pid, INCARNATION_MARKER))
            if key is None or proc.create_time() < targets[key].since:
                continue
            if proc.status() != psutil.STATUS_ZOMBIE:
                found[key].append(proc)
        except (psutil.Error, OSError):
            continue
    for key, target in targets.items():
        if target.cgroup is not None:
            _add_live(found[key], target.cgroup.pids())
    return found


def _add_live(procs: list[psutil.Process], pids: list[int]) -> None:
    """Add the live processes among ``pids`` that ``procs`` does not hold yet."""
    known = {p.pid for p in procs}
    for pid in pids:
        if pid in known or pid == os.getpid():
            continue
        with contextlib.suppress(psutil.Error):
            proc = psutil.Process(pid)
            if proc.status() != psutil.STATUS_ZOMBIE:
                procs.append(proc)
                known.add(pid)


def run_members(
    run_id: str, since: float = 0.0, cgroups: list[platform.Cgroup] | None = None
) -> list[psutil.Process]:
    """Every live process of a run: in its cgroups, or carrying its marker and started at
    ``since`` or later. What a watchdog, or the sweep of a dead run, takes down."""
    found: list[psutil.Process] = []
    for proc in psutil.process_iter():
        with contextlib.suppress(psutil.Error, OSError):
            if (
                proc.create_time() >= since
                and platform.environment_value(proc.pid, RUN_MARKER) == run_id
                and proc.status() != psutil.STATUS_ZOMBIE
            ):
                found.append(proc)
    for cgroup in cgroups or []:
        _add_live(found, cgroup.pids())
    return found


def send(procs: list[psutil.Process], sig: int, group: int | None = None) -> None:
    """Signal a group (only while its leader is unreaped, so the id cannot be reused) and
    each listed process outside it, so no process gets the signal twice."""
    if group is not None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(group, sig)
    for proc in procs:
        with contextlib.suppress(psutil.Error, OSError):
            if group is None or os.getpgid(proc.pid) != group:
                proc.send_signal(sig)


async def wait_gone(
    procs: list[psutil.Process], timeout: float, interrupt: asyncio.Event | None = None
) -> list[psutil.Process]:
    """Wait until every process has exited (a zombie counts as gone), the timeout passes or
    ``interrupt`` is set; returns the ones still alive. Event-driven through pidfds."""
    loop = asyncio.get_running_loop()
    waiters: list[asyncio.Future[None]] = []
    fds: list[int] = []
    try:
        for proc in procs:
            fd = _pidfd(proc)
            if fd is None:
                continue
            fds.append(fd)
            waiter: asyncio.Future[None] = loop.create_future()
            loop.add_reader(fd, _resolve, waiter)
            waiters.append(waiter)
        if waiters or not platform.HAVE_PIDFD:
            await _until(waiters, procs, timeout, interrupt)
    finally:
        for fd in fds:
            loop.remove_reader(fd)
            os.close(fd)
    return [p for p in procs if alive(p)]


def _pidfd(proc: psutil.Process) -> int | None:
    try:
        fd = platform.open_pidfd(proc.pid)
    except OSError:
        return None
    if fd is None:
        return None
    if not alive(proc):  # the PID was reused between the scan and the open
        os.close(fd)
        return None
    return fd


def _resolve(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


async def _until(
    waiters: list[asyncio.Future[None]],
    procs: list[psutil.Process],
    timeout: float,
    interrupt: asyncio.Event | None,
) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    tasks: set[asyncio.Future[None]] = set(waiters)
    interrupted = asyncio.ensure_future(interrupt.wait()) if interrupt is not None else None
    try:
        while loop.time() < deadline:
            if interrupted is not None and interrupted.done():
                return
            if platform.HAVE_PIDFD:
                pending = {t for t in tasks if not t.done()}
                if not pending:
                    return
                watch = pending | ({interrupted} if interrupted is not None else set())
                await asyncio.wait(
                    watch, timeout=deadline - loop.time(), return_when=asyncio.FIRST_COMPLETED
                )
            else:
                if not any(alive(p) for p in procs):
                    return
                await asyncio.sleep(min(_POLL_INTERVAL, max(deadline - loop.time(), 0)))
    finally:
        if interrupted is not None:
            interrupted.cancel()


def alive(proc: psutil.Process) -> bool:
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"
