"""One incarnation: spawn it, learn of its leader's exit, and stop its whole tree.

The leader (``/bin/sh -c COMMAND``) runs in a new session, so its process group id is its pid.
Where a cgroup can be had (see ``platform``), the shell first moves itself into the
incarnation's own cgroup, before it can fork: the stop sequence ends by freezing that cgroup,
killing all of it and removing it, so no descendant escapes however it leaves the group.
procrunner reaps the leader itself and only after the rest of the tree is gone: until then the
leader is at worst a zombie that pins the group id, so ``killpg`` can never reach a group that
someone else has reused.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import signal
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import psutil

from procrunner import platform
from procrunner.config.procfile import shell_command
from procrunner.errors import ProcrunnerError
from procrunner.markers import INCARNATION_MARKER, RUN_MARKER
from procrunner.output.printer import Printer, StreamProtocol
from procrunner.output.sink import enlarge_pipe
from procrunner.output.terminal import Terminal, take_terminal
from procrunner.supervise import tree
from procrunner.supervise.memory import Memory, measure

KILL_TIMEOUT = 2.0
DRAIN_TIMEOUT = 0.5
_KILL_ROUNDS = 3
_CATCH_UP_POLL = 0.01


@dataclass(frozen=True)
class ExitStatus:
    """How a leader ended: an exit code or the signal that killed it."""

    code: int | None = None
    signal: int | None = None

    @property
    def shell_code(self) -> int:
        """The status a shell reports: the exit code, or 128 + the signal number."""
        return self.code if self.code is not None else 128 + (self.signal or 0)

    def describe(self) -> str:
        if self.signal is not None:
            name = tree.signal_name(self.signal)
            return f"killed by {name} (out of memory?)" if self.signal == 9 else f"killed by {name}"
        if self.code == 127:
            return "exited 127 (command not found)"
        if self.code == 126:
            return "exited 126 (command not executable)"
        return f"exited {self.code}"


@dataclass(frozen=True)
class StopReport:
    """What the stop sequence had to do, and the tree's memory just before it began."""

    signalled: bool
    killed: bool
    survivors: tuple[int, ...] = ()
    memory: Memory | None = None
    signum: int = signal.SIGTERM  # what was sent first
    timeout: float = 0.0  # how long it was given before SIGKILL
    escalated: bool = False  # a second stop signal cut that wait short


class Incarnation:
    """One run of an instance: one spawn, one process tree."""

    def __init__(
        self,
        label: str,
        command: str,
        cwd: Path,
        env: Mapping[str, str],
        printer: Printer,
        instance_name: str,
        scratch: Path,
        tty: bool = False,
    ) -> None:
        self.label = label
        self.scratch = scratch
        self.env = env
        self.cwd = cwd
        self.marker = env[INCARNATION_MARKER]
        self.terminal = Terminal() if tty else None
        run_id = env.get(RUN_MARKER)
        self.cgroup = platform.incarnation_cgroup(run_id, label) if run_id else None
        try:
            self._popen = self._spawn(command, cwd, env, printer.style.merge_stderr)
        except OSError as exc:
            if self.terminal is not None:
                self.terminal.discard()
            if self.cgroup is not None:
                self.cgroup.remove()
            raise ProcrunnerError(f"cannot start {label}: {exc.strerror}", str(cwd)) from exc
        self.pid = self._popen.pid
        self.started = time.monotonic()
        self.started_at = time.time()
        self.ended: float | None = None
        self.last_memory: Memory | None = None
        self._printer = printer
        number = int(label.rpartition("#")[2])  # the label is web.1#3
        self._output = printer.source(instance_name, number, self.pid)
        self._streams: list[StreamProtocol] = []
        self._status: ExitStatus | None = None
        self._announcing: asyncio.Task[None] | None = None  # held: the loop keeps weak refs
        self.exited: asyncio.Future[ExitStatus] = asyncio.get_running_loop().create_future()
        try:
            platform.watch_exit(self.pid, asyncio.get_running_loop(), self._on_leader_exit)
        except OSError as exc:  # no fd left for its pidfd: a child nobody watches must go
            self._abandon()
            raise ProcrunnerError(f"cannot watch {label}: {exc.strerror}", str(cwd)) from exc
        self._connected = asyncio.create_task(self._connect())

    def _abandon(self) -> None:
        """Kill and reap a child that was spawned but cannot be supervised."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGKILL)
        if self.cgroup is not None and self.cgroup.kill(KILL_TIMEOUT):
            self.cgroup.remove()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._popen.wait(KILL_TIMEOUT)
        for pipe in (self._popen.stdout, self._popen.stderr):
            if pipe is not None:
                pipe.close()

    def _spawn(
        self, command: str, cwd: Path, env: Mapping[str, str], merge_stderr: bool
    ) -> subprocess.Popen[bytes]:
        script = shell_command(command)
        if self.cgroup is not None:
            script = self.cgroup.shell_enter(script)
        argv = ["/bin/sh", "-c", script]
        if self.terminal is None:
            return subprocess.Popen(
                argv,
                cwd=cwd,
                env=dict(env),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT if merge_stderr else subprocess.PIPE,
                start_new_session=True,
                bufsize=0,
            )
        slave = self.terminal.slave
        popen = subprocess.Popen(
            argv,
            cwd=cwd,
            env=dict(env),
            stdin=slave,
            stdout=slave,
            stderr=slave,
            start_new_session=True,
            # preexec_fn is unsafe with threads only for Python code that takes locks; this
            # is one ioctl, and only a forked child can make a PTY its controlling terminal.
            preexec_fn=take_terminal,
        )
        self.terminal.child_started()
        return popen

    @functools.cached_property
    def since(self) -> float:
        """The leader's start time as psutil reads it: its tree's members are no older. Read
        once the spawning is over (see ``Supervisor.start``): while the child is still in
        its exec, the read waits for it (~0.7 ms a child)."""
        return _create_time(self.pid)

    @property
    def containment(self) -> str:
        """For ``procrunner ps``: what keeps this incarnation's processes together."""
        return "cgroup" if self.cgroup is not None else "group+session+marker"

    @property
    def uptime(self) -> float:
        return (self.ended or time.monotonic()) - self.started

    @property
    def status(self) -> ExitStatus | None:
        return self._status

    @property
    def target(self) -> tree.Target:
        return tree.Target(self.pid, self.marker, self.since, self.cgroup)

    async def _connect(self) -> None:
        loop = asyncio.get_running_loop()
        if self.terminal is not None:
            master = os.fdopen(self.terminal.master, "rb", buffering=0)
            protocol = StreamProtocol(self._output, False, self.terminal)
            await loop.connect_read_pipe(functools.partial(_same, protocol), master)
            self._streams.append(protocol)
            return
        pipes = [(self._popen.stdout, False), (self._popen.stderr, True)]
        for pipe, is_stderr in pipes:
            if pipe is None:
                continue
            enlarge_pipe(pipe.fileno())
            protocol = StreamProtocol(self._output, is_stderr)
            await loop.connect_read_pipe(functools.partial(_same, protocol), pipe)
            self._streams.append(protocol)

    async def stop(self, sig: int, timeout: float, escalate: asyncio.Event) -> StopReport:
        """The stop sequence: ``sig`` and SIGCONT to the tree, wait ``timeout`` (or until
        ``escalate``), SIGKILL what is left, a bounded wait, reap, drain the pipes."""
        await self._connected
        return await tree.when_fds_allow(functools.partial(self._stop, sig, timeout, escalate))

    async def _stop(self, sig: int, timeout: float, escalate: asyncio.Event) -> StopReport:
        """TERM (or ``sig``) and CONT, then the cgroup frozen and killed whole, then SIGKILL
        rounds for marked escapees outside it (or for everything, without a cgroup)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        signalled = killed = False
        seen: set[int] = set()
        procs = self._members()
        memory = measure(procs) if procs else None
        while procs and not escalate.is_set() and (remaining := deadline - loop.time()) > 0:
            fresh = [p for p in procs if p.pid not in seen]
            seen.update(p.pid for p in fresh)
            group = None if signalled else self._unreaped_group()
            tree.send(fresh, sig, group)
            tree.send(fresh, signal.SIGCONT, group)
            signalled = True
            await tree.wait_gone(procs, remaining, escalate)
            procs = self._members()
        survivors = procs
        escalated = escalate.is_set()
        if self.cgroup is not None and self.cgroup.populated():
            killed = True
            await asyncio.to_thread(self.cgroup.kill, KILL_TIMEOUT)
            survivors = self._members()
        for _ in range(_KILL_ROUNDS):
            if not survivors:
                break
            killed = True
            tree.send(survivors, signal.SIGKILL, self._unreaped_group())
            await tree.wait_gone(survivors, KILL_TIMEOUT)
            survivors = self._members()
        leader_stuck = not await self._reap()
        if self.cgroup is not None and (trouble := self.cgroup.remove()) is not None:
            self._printer.system(f"{self.label}: {trouble}")
        await self._drain(escalate)
        status = self._status
        self._output.end(status.describe() if status is not None else "not reaped")
        stuck = [p.pid for p in survivors] + ([self.pid] if leader_stuck else [])
        return StopReport(signalled, killed, tuple(stuck), memory, sig, timeout, escalated)

    def send_signal(self, sig: int) -> None:
        """Signal the process group, as ``kill -SIG -PGID`` does; only while the leader is
        unreaped, so the group id cannot have been reused."""
        group = self._unreaped_group()
        if group is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(group, sig)

    def _members(self) -> list[psutil.Process]:
        return tree.members(self.pid, self.marker, self.since, self.cgroup)

    def _unreaped_group(self) -> int | None:
        return self.pid if self._popen.returncode is None else None

    def _on_leader_exit(self, code: int | None, signum: int | None) -> None:
        status = ExitStatus(code, signum)
        self._status = status
        self.ended = time.monotonic()
        self._announcing = asyncio.create_task(self._announce(status))

    async def _announce(self, status: ExitStatus) -> None:
        """Resolve ``exited`` once what the leader wrote has been read: the pidfd can wake the
        loop before the pipes do (or before they are even connected), and the line that says
        how it ended must come after its last output. Bounded: a descendant may hold a pipe
        open and keep writing, or a slow reader of procrunner may pause the pipes."""
        await self._connected
        deadline = time.monotonic() + DRAIN_TIMEOUT
        pending = {s.closed for s in self._streams}
        while pending and any(s.unread() for s in self._streams):
            left = deadline - time.monotonic()
            if left <= 0:
                break
            _, pending = await asyncio.wait(pending, timeout=min(left, _CATCH_UP_POLL))
        if not self.exited.done():
            self.exited.set_result(status)

    async def _reap(self) -> bool:
        """Reap the leader once it has exited; False if even SIGKILL did not end it."""
        if self._status is None:
            done, _ = await asyncio.wait([self.exited], timeout=KILL_TIMEOUT)
            if not done:
                return False
        self._popen.wait()
        return True

    async def _drain(self, escalate: asyncio.Event) -> None:
        """Read the pipes to their end while output still moves (a slow reader of procrunner
        may hold it back: nothing is dropped), but not past ``DRAIN_TIMEOUT`` without progress
        (an escaped descendant may hold a pipe open) nor after a second Ctrl-C."""
        pending = {s.closed for s in self._streams}
        progress = -1
        while pending and not escalate.is_set():
            moved = self._printer.sink.written + sum(s.received for s in self._streams)
            if moved == progress:
                break
            progress = moved
            _, pending = await asyncio.wait(pending, timeout=DRAIN_TIMEOUT)
        for stream in self._streams:
            stream.close()


def _same(protocol: StreamProtocol) -> StreamProtocol:
    return protocol


def _create_time(pid: int) -> float:
    try:
        return psutil.Process(pid).create_time()
    except psutil.Error:
        return time.time()

