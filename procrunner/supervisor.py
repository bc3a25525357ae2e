"""The supervisor: the one owner of every instance, driven by one queue of events.

Everything that wants something done (signal handlers, the --run-for timer, the output sink,
instance watchers) puts a frozen event on the queue; ``run`` takes them one at a time and is
the only code that changes an instance's state. Stop sequences run as tasks and report back
through the same queue.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from procrunner import tree
from procrunner.durations import format_duration
from procrunner.errors import ProcrunnerError
from procrunner.events import (
    Cause,
    Event,
    LeaderExited,
    OutputBroken,
    Ready,
    RunForElapsed,
    SignalReceived,
    State,
    Stopped,
    check_transition,
)
from procrunner.formation import InstanceSpec
from procrunner.instance import Incarnation, StopReport
from procrunner.output import Printer
from procrunner.watchdog import Watchdog

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
OUTPUT_BROKEN_STATUS = 128 + signal.SIGPIPE


@dataclass(frozen=True)
class RunOptions:
    stop_timeout: float = 5.0
    run_for: float | None = None
    start_seconds: float = 1.0


@dataclass
class Instance:
    """One slot of the formation (``web.1``); its name and port outlive incarnations."""

    spec: InstanceSpec
    state: State = State.STOPPED
    incarnation: Incarnation | None = None
    count: int = 0
    cause: Cause | None = None

    @property
    def label(self) -> str:
        return f"{self.spec.name}#{self.count}"


@dataclass
class _Shutdown:
    status: int
    signals_seen: int = 0


class Supervisor:
    def __init__(
        self,
        plan: tuple[InstanceSpec, ...],
        root: Path,
        env_for: Callable[[InstanceSpec, str], Mapping[str, str]],
        printer: Printer,
        queue: asyncio.Queue[Event],
        options: RunOptions,
        watchdog: Watchdog | None = None,
    ) -> None:
        self._instances = {spec.name: Instance(spec) for spec in plan}
        self._root = root
        self._env_for = env_for
        self._printer = printer
        self._queue = queue
        self._options = options
        self._watchdog = watchdog
        self._shutdown: _Shutdown | None = None
        self._kill_now = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._crashed = False
        printer.add_names(list(self._instances))

    @property
    def instances(self) -> Mapping[str, Instance]:
        return self._instances

    async def run(self) -> int:
        """Start the formation and supervise it until it has stopped; returns the exit status."""
        loop = asyncio.get_running_loop()
        for sig in STOP_SIGNALS:
            loop.add_signal_handler(sig, self._queue.put_nowait, SignalReceived(sig))
        try:
            if not self._instances:
                self._printer.system("the formation has no instances: nothing to run")
                return 0
            for instance in self._instances.values():
                if self._shutdown is None:
                    await self._start(instance)
            if self._options.run_for is not None:
                loop.call_later(self._options.run_for, self._queue.put_nowait, RunForElapsed())
            while not self._finished():
                self._handle(await self._queue.get())
        finally:
            for sig in STOP_SIGNALS:
                loop.remove_signal_handler(sig)
        assert self._shutdown is not None
        return self._shutdown.status

    def _finished(self) -> bool:
        busy = (State.STARTING, State.RUNNING, State.STOPPING)
        return self._shutdown is not None and not any(
            i.state in busy for i in self._instances.values()
        )

    def _transition(self, instance: Instance, new: State) -> None:
        check_transition(instance.spec.name, instance.state, new)
        instance.state = new

    async def _start(self, instance: Instance) -> None:
        instance.count += 1
        label = instance.label
        try:
            incarnation = Incarnation(
                label,
                instance.spec.command,
                self._root,
                self._env_for(instance.spec, label),
                self._printer,
                instance.spec.name,
            )
        except ProcrunnerError as exc:
            self._printer.system(f"failed to start {label}: {exc}")
            self._crashed = True
            self._begin_shutdown(1, f"{label} failed to start")
            return
        instance.incarnation = incarnation
        instance.cause = None
        self._transition(instance, State.STARTING)
        if self._watchdog is not None:
            self._watchdog.track(incarnation.pid, incarnation.since)
        self._printer.system(
            f"{label} started with pid {incarnation.pid} (port {instance.spec.port})"
        )
        await incarnation.connect()
        name, number = instance.spec.name, instance.count
        incarnation.exited.add_done_callback(
            lambda done: self._queue.put_nowait(LeaderExited(name, number, done.result()))
        )
        asyncio.get_running_loop().call_later(
            self._options.start_seconds, self._queue.put_nowait, Ready(name, number)
        )

    def _current(self, name: str, number: int) -> Instance | None:
        """The instance if ``number`` is still its incarnation; stale events are dropped."""
        instance = self._instances.get(name)
        return instance if instance is not None and instance.count == number else None

    def _handle(self, event: Event) -> None:
        match event:
            case LeaderExited(name, number, status):
                instance = self._current(name, number)
                if instance is None or instance.state not in (State.STARTING, State.RUNNING):
                    return
                instance.cause = Cause.CRASH if status.shell_code != 0 else Cause.EXITED
                self._crashed |= instance.cause is Cause.CRASH
                assert instance.incarnation is not None
                self._printer.system(
                    f"{instance.label} {status.describe()} "
                    f"after {format_duration(instance.incarnation.uptime)}"
                )
                self._begin_shutdown(status.shell_code, f"{instance.label} ended")
            case Stopped(name, number, report):
                instance = self._current(name, number)
                if instance is not None:
                    self._finish(instance, report)
            case Ready(name, number):
                instance = self._current(name, number)
                if instance is not None and instance.state is State.STARTING:
                    self._transition(instance, State.RUNNING)
            case SignalReceived(signum):
                self._on_signal(signum)
            case RunForElapsed():
                self._begin_shutdown(1 if self._crashed else 0, "--run-for elapsed")
            case OutputBroken():
                self._begin_shutdown(OUTPUT_BROKEN_STATUS, "procrunner's output was closed")

    def _on_signal(self, signum: int) -> None:
        name = tree.signal_name(signum)
        if self._shutdown is None:
            self._begin_shutdown(128 + signum, f"{name} received", hint=True)
            return
        self._shutdown.signals_seen += 1
        if self._shutdown.signals_seen == 1 and signum != signal.SIGHUP:
            self._printer.system(f"second {name}: killing all processes now (SIGKILL)")
            self._kill_now.set()

    def _begin_shutdown(self, status: int, reason: str, hint: bool = False) -> None:
        if self._shutdown is not None:
            return
        self._shutdown = _Shutdown(status)
        again = " (press Ctrl-C again to kill them at once)" if hint else ""
        self._printer.system(f"{reason}: stopping all processes{again}")
        for instance in self._instances.values():
            if instance.state in (State.STARTING, State.RUNNING):
                instance.cause = instance.cause or Cause.SHUTDOWN
                self._stop(instance)

    def _stop(self, instance: Instance) -> None:
        """Run the stop sequence as a task; it reports back with a ``Stopped`` event.
        An instance whose leader already exited gets the same sequence for what it left."""
        self._transition(instance, State.STOPPING)
        incarnation = instance.incarnation
        assert incarnation is not None
        name, number = instance.spec.name, instance.count

        async def stop() -> None:
            report = await incarnation.stop(
                signal.SIGTERM, self._options.stop_timeout, self._kill_now
            )
            self._queue.put_nowait(Stopped(name, number, report))

        task = asyncio.create_task(stop())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _finish(self, instance: Instance, report: StopReport) -> None:
        incarnation = instance.incarnation
        assert incarnation is not None
        if self._watchdog is not None:
            self._watchdog.untrack(incarnation.pid)
        own_exit = instance.cause in (Cause.CRASH, Cause.EXITED)
        self._transition(instance, State.EXITED if own_exit else State.STOPPED)
        label, timeout = instance.label, format_duration(self._options.stop_timeout)
        if report.killed:
            self._printer.system(f"{label} did not stop on SIGTERM within {timeout}: SIGKILL sent")
        elif own_exit and report.signalled:
            self._printer.system(f"{label} left processes behind: stopped them")
        elif not own_exit:
            self._printer.system(f"{label} stopped by procrunner (SIGTERM)")
        if report.survivors:
            pids = ", ".join(map(str, report.survivors))
            self._printer.system(f"ERROR: {label}: processes survived SIGKILL: {pids}")
