"""The supervisor: the one owner of every instance, driven by one queue of events.

Everything that wants something done (signal handlers, the --run-for timer, the output sink,
instance watchers, the memory sampler) puts a frozen event on the queue; ``run`` takes them
one at a time and is the only code that changes an instance's state. Stop sequences run as
tasks and report back through the same queue.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from procrunner import tree
from procrunner.durations import format_duration
from procrunner.errors import ProcrunnerError
from procrunner.events import (
    Cause,
    EndedIncarnation,
    Event,
    LeaderExited,
    MemorySampled,
    OutputBroken,
    Ready,
    RunForElapsed,
    SignalReceived,
    State,
    Stopped,
    check_transition,
)
from procrunner.formation import InstanceSpec
from procrunner.instance import Incarnation
from procrunner.memory import Memory, measure
from procrunner.output import Printer
from procrunner.scratch import ScratchSpace
from procrunner.settings import RunOptions
from procrunner.units import format_bytes
from procrunner.watchdog import Watchdog
from procrunner.wipe import Inventory

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
OUTPUT_BROKEN_STATUS = 128 + signal.SIGPIPE
EnvFor = Callable[[InstanceSpec, str, Path], Mapping[str, str]]


@dataclass
class Instance:
    """One slot of the formation (``web.1``); its name and port outlive incarnations."""

    spec: InstanceSpec
    state: State = State.STOPPED
    incarnation: Incarnation | None = None
    count: int = 0
    cause: Cause | None = None
    history: list[EndedIncarnation] = field(default_factory=list)

    @property
    def label(self) -> str:
        return f"{self.spec.name}#{self.count}"


class Supervisor:
    def __init__(
        self,
        plan: tuple[InstanceSpec, ...],
        root: Path,
        env_for: EnvFor,
        printer: Printer,
        queue: asyncio.Queue[Event],
        options: RunOptions,
        scratch: ScratchSpace,
        watchdog: Watchdog | None = None,
    ) -> None:
        self._instances = {spec.name: Instance(spec) for spec in plan}
        self._root = root
        self._env_for = env_for
        self._printer = printer
        self._queue = queue
        self._options = options
        self._scratch = scratch
        self._watchdog = watchdog
        self._status: int | None = None
        self._signals_seen = 0
        self._kill_now = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self.crashed = False
        printer.add_names(list(self._instances))

    @property
    def instances(self) -> Mapping[str, Instance]:
        return self._instances

    async def run(self) -> int:
        """Start the formation and supervise it until it has stopped; returns the exit status."""
        loop = asyncio.get_running_loop()
        for sig in STOP_SIGNALS:
            loop.add_signal_handler(sig, self._queue.put_nowait, SignalReceived(sig))
        sampler = asyncio.create_task(self._sample_memory())
        try:
            if not self._instances:
                self._printer.system("the formation has no instances: nothing to run")
                return 0
            for instance in self._instances.values():
                if self._status is None:
                    await self._start(instance)
            if self._options.run_for is not None:
                loop.call_later(self._options.run_for, self._queue.put_nowait, RunForElapsed())
            while not self._finished():
                self._handle(await self._queue.get())
        finally:
            sampler.cancel()
            for sig in STOP_SIGNALS:
                loop.remove_signal_handler(sig)
        assert self._status is not None
        return self._status

    def _finished(self) -> bool:
        busy = (State.STARTING, State.RUNNING, State.STOPPING)
        return self._status is not None and not any(
            i.state in busy for i in self._instances.values()
        )

    def _transition(self, instance: Instance, new: State) -> None:
        check_transition(instance.spec.name, instance.state, new)
        instance.state = new

    async def _start(self, instance: Instance) -> None:
        instance.count += 1
        label = instance.label
        try:
            scratch = self._scratch.make(label)
            incarnation = Incarnation(
                label,
                instance.spec.command,
                self._root,
                self._env_for(instance.spec, label, scratch),
                self._printer,
                instance.spec.name,
                scratch,
            )
        except (ProcrunnerError, OSError) as exc:
            self._printer.system(f"failed to start {label}: {exc}")
            self.crashed = True
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
                self.crashed |= instance.cause is Cause.CRASH
                self._begin_shutdown(status.shell_code, f"{instance.label} {status.describe()}")
            case Stopped(name, number, report, scratch):
                instance = self._current(name, number)
                if instance is not None:
                    if report.signalled and instance.cause in (Cause.CRASH, Cause.EXITED):
                        self._printer.system(
                            f"{instance.label} left processes behind: stopped them"
                        )
                    self._finish(instance, report.memory, scratch)
                    if report.killed:
                        timeout = format_duration(self._options.stop_timeout)
                        self._printer.system(
                            f"{instance.label} did not stop on SIGTERM within {timeout}: "
                            "SIGKILL sent"
                        )
                    if report.survivors:
                        pids = ", ".join(map(str, report.survivors))
                        self._printer.system(
                            f"ERROR: {instance.label}: processes survived SIGKILL: {pids}"
                        )
            case MemorySampled(samples):
                for name, number, memory in samples:
                    instance = self._current(name, number)
                    if instance is not None and instance.incarnation is not None:
                        instance.incarnation.last_memory = memory
            case Ready(name, number):
                instance = self._current(name, number)
                if instance is not None and instance.state is State.STARTING:
                    self._transition(instance, State.RUNNING)
            case SignalReceived(signum):
                self._on_signal(signum)
            case RunForElapsed():
                self._begin_shutdown(1 if self.crashed else 0, "--run-for elapsed")
            case OutputBroken():
                self._begin_shutdown(OUTPUT_BROKEN_STATUS, "procrunner's output was closed")

    def _on_signal(self, signum: int) -> None:
        name = tree.signal_name(signum)
        if self._status is None:
            self._begin_shutdown(128 + signum, f"{name} received", hint=True)
            return
        self._signals_seen += 1
        if self._signals_seen == 1 and signum != signal.SIGHUP:
            self._printer.system(f"second {name}: killing all processes now (SIGKILL)")
            self._kill_now.set()

    def _begin_shutdown(self, status: int, reason: str, hint: bool = False) -> None:
        if self._status is not None:
            return
        self._status = status
        again = " (press Ctrl-C again to kill them at once)" if hint else ""
        self._printer.system(f"{reason}: stopping all processes{again}")
        for instance in self._instances.values():
            if instance.state in (State.STARTING, State.RUNNING):
                instance.cause = instance.cause or Cause.SHUTDOWN
                self._stop(instance)

    def _stop(self, instance: Instance) -> None:
        """Run the stop sequence and the scratch wipe as a task, which reports back with a
        ``Stopped`` event. An instance whose leader already exited gets the same sequence
        for what it left behind."""
        self._transition(instance, State.STOPPING)
        incarnation = instance.incarnation
        assert incarnation is not None
        name, number = instance.spec.name, instance.count

        async def stop() -> None:
            report = await incarnation.stop(
                signal.SIGTERM, self._options.stop_timeout, self._kill_now
            )
            scratch = await asyncio.to_thread(self._scratch.end, incarnation.scratch)
            self._queue.put_nowait(Stopped(name, number, report, scratch))

        task = asyncio.create_task(stop())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _finish(self, instance: Instance, memory: Memory | None, scratch: Inventory) -> None:
        incarnation = instance.incarnation
        assert incarnation is not None and instance.cause is not None
        if self._watchdog is not None:
            self._watchdog.untrack(incarnation.pid)
        own_exit = instance.cause in (Cause.CRASH, Cause.EXITED)
        self._transition(instance, State.EXITED if own_exit else State.STOPPED)
        if own_exit or memory is None:
            memory = incarnation.last_memory
        status = incarnation.status
        how = status.describe() if own_exit and status else "stopped by procrunner"
        ended = EndedIncarnation(
            instance.label,
            incarnation.pid,
            incarnation.started_at,
            incarnation.uptime,
            instance.cause,
            how,
            scratch,
            memory,
        )
        instance.history.append(ended)
        self._printer.system(describe_end(ended, self._scratch.keep))
        for problem in scratch.problems:
            self._printer.system(f"{instance.label} scratch: {problem}")

    async def _sample_memory(self) -> None:
        """Every few seconds, the memory of every live tree, in one pass, off the loop."""
        await asyncio.sleep(self._options.start_seconds)
        while True:
            targets = {
                f"{i.spec.name}#{i.count}": i.incarnation.target
                for i in self._instances.values()
                if i.incarnation is not None and i.state in (State.STARTING, State.RUNNING)
            }
            samples = await asyncio.to_thread(_measure_all, targets)
            self._queue.put_nowait(MemorySampled(samples))
            await asyncio.sleep(self._options.memory_interval)


def _measure_all(targets: Mapping[str, tree.Target]) -> tuple[tuple[str, int, Memory], ...]:
    samples = []
    for label, procs in tree.members_of(targets).items():
        memory = measure(procs)
        if memory is not None:
            name, number = label.rsplit("#", 1)
            samples.append((name, int(number), memory))
    return tuple(samples)


def describe_end(ended: EndedIncarnation, kept: bool) -> str:
    """``web.1#3 ended (exited 1 after 12.4 s): destroyed 7 files / 2.1 MB of scratch and
    48.0 MB of process memory``."""
    scratch = ended.scratch
    memory = (
        " (its memory was not sampled)"
        if ended.memory is None
        else f" and {format_bytes(ended.memory.best)} of process memory"
    )
    files = "1 file" if scratch.files == 1 else f"{scratch.files} files"
    verb = "kept" if kept else "destroyed"
    return (
        f"{ended.label} ended ({ended.how} after {format_duration(ended.uptime)}): "
        f"{verb} {files} / {format_bytes(scratch.bytes)} of scratch{memory}"
    )
