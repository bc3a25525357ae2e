"""What the supervisor needs of the world, as Protocols: a spawner of lives, a clock and
readiness checks; and the real ones (``ProcessSpawner``: an ``Incarnation`` with its scratch
directory and the watchdog's bookkeeping; ``LoopClock``: monotonic time and the event loop's
timers). Tests pass fakes and script a whole history in virtual time."""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Protocol

from procrunner.config.formation import InstanceSpec
from procrunner.config.settings import Health, Readiness
from procrunner.errors import ProcrunnerError
from procrunner.output.printer import Printer
from procrunner.output.terminal import Terminal
from procrunner.scratch.space import ScratchSpace
from procrunner.scratch.wipe import Inventory
from procrunner.supervise import tree
from procrunner.supervise.incarnation import ExitStatus, Incarnation, StopReport
from procrunner.supervise.memory import Key, Memory, Samples, measure_all
from procrunner.supervise.ports import port_holder
from procrunner.supervise.probes import Site
from procrunner.supervise.stopcommand import ask_to_stop
from procrunner.supervise.watchdog import Watchdog

EnvFor = Callable[[InstanceSpec, str, Path], Mapping[str, str]]


class Cancellable(Protocol):
    def cancel(self) -> object: ...


class Life(Protocol):
    """One incarnation as the supervisor sees it: its leader, its exit, its memory, and the
    environment and folder its checks and stop command run with."""

    pid: int
    scratch: Path
    env: Mapping[str, str]
    cwd: Path
    started_at: float  # wall clock, for people
    terminal: Terminal | None
    last_memory: Memory | None

    @property
    def exited(self) -> asyncio.Future[ExitStatus]: ...

    @property
    def ended(self) -> float | None: ...  # monotonic time the leader exited

    @property
    def uptime(self) -> float: ...

    @property
    def containment(self) -> str: ...  # what holds its tree: a cgroup, or group + session + marker

    @property
    def status(self) -> ExitStatus | None: ...

    def send_signal(self, sig: int) -> None: ...


class Spawner(Protocol):
    """Starts lives and takes them down; raises ``ProcrunnerError`` or ``OSError`` when a
    life cannot be started."""

    @property
    def keeps_scratch(self) -> bool: ...

    def spawn(
        self, spec: InstanceSpec, label: str, number: int, tty: bool, claims_port: bool
    ) -> Life: ...  # claims_port: its readiness is its PORT, which nobody else may hold

    async def take_down(
        self, life: Life, sig: int, timeout: float, escalate: asyncio.Event,
        stop_command: str | None = None,
    ) -> tuple[StopReport, Inventory]: ...

    async def measure(self, lives: Mapping[Key, Life]) -> Samples: ...


class Clock(Protocol):
    """Monotonic time and timers: the only time the supervisor's decisions read."""

    def now(self) -> float: ...

    def call_later(self, delay: float, callback: Callable[[], None]) -> Cancellable: ...

    async def sleep(self, delay: float) -> None: ...


class ReadinessArming(Protocol):
    """Arms a life's readiness check, which posts ``Ready`` when it passes, and its liveness
    check, which posts ``Unhealthy`` when it has failed too often."""

    def arm(self, readiness: Readiness, name: str, number: int, site: Site) -> Cancellable | None:
        ...

    def watch_health(self, health: Health, name: str, number: int, site: Site) -> Cancellable:
        ...

    def disarm(self, name: str) -> None: ...


class LoopClock:
    def now(self) -> float:
        return time.monotonic()

    def call_later(self, delay: float, callback: Callable[[], None]) -> Cancellable:
        return asyncio.get_running_loop().call_later(delay, callback)

    async def sleep(self, delay: float) -> None:
        await asyncio.sleep(delay)


class ProcessSpawner:
    """Real lives: a scratch directory, a process tree in its own session, the watchdog told."""

    def __init__(
        self,
        root: Path,
        env_for: EnvFor,
        printer: Printer,
        scratch: ScratchSpace,
        watchdog: Watchdog | None = None,
    ) -> None:
        self._root = root
        self._env_for = env_for
        self._printer = printer
        self._scratch = scratch
        self._watchdog = watchdog

    @property
    def keeps_scratch(self) -> bool:
        return self._scratch.keep

    def spawn(
        self, spec: InstanceSpec, label: str, number: int, tty: bool, claims_port: bool
    ) -> Incarnation:
        holder = port_holder(spec.port) if claims_port else None
        if holder is not None:
            raise ProcrunnerError(holder.describe())
        scratch = self._scratch.make(label)
        incarnation = Incarnation(
            label,
            spec.command,
            self._root,
            self._env_for(spec, label, scratch),
            self._printer,
            spec.name,
            scratch,
            tty=tty,
        )
        asyncio.get_running_loop().call_soon(self._track, incarnation)
        return incarnation

    def _track(self, incarnation: Incarnation) -> None:
        """Once this batch of starts is spawned: its start time, then the watchdog told.
        Until then the run's marker in its environment is what the watchdog goes by."""
        since = incarnation.since
        if self._watchdog is not None:
            self._watchdog.track(incarnation.pid, since)

    async def take_down(
        self, life: Life, sig: int, timeout: float, escalate: asyncio.Event,
        stop_command: str | None = None,
    ) -> tuple[StopReport, Inventory]:
        """The stop command (if any) for up to half the timeout, then the stop sequence for
        the rest of it, then the scratch inventoried and wiped."""
        assert isinstance(life, Incarnation)
        if stop_command is not None:
            loop = asyncio.get_running_loop()
            began = loop.time()
            trouble = await ask_to_stop(
                stop_command, life.env, life.cwd, life.exited, timeout / 2, escalate
            )
            if trouble is not None:
                self._printer.system(f"{life.label}: {trouble}")
            timeout = max(timeout - (loop.time() - began), 0.0)
        report = await life.stop(sig, timeout, escalate)
        end = functools.partial(asyncio.to_thread, self._scratch.end, life.scratch)
        scratch = await tree.when_fds_allow(end)
        if self._watchdog is not None:
            self._watchdog.untrack(life.pid)
        return report, scratch

    async def measure(self, lives: Mapping[Key, Life]) -> Samples:
        """The lives' trees' memory, off the event loop."""
        targets = {key: life.target for key, life in lives.items() if isinstance(life, Incarnation)}
        return await asyncio.to_thread(measure_all, targets)
