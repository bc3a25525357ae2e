"""The supervisor: the one owner of every instance, driven by one queue of events.

Everything that wants something done (signal handlers, the --run-for timer, the output sink,
instance watchers, the memory sampler) puts a frozen event on the queue; ``run`` takes them
one at a time and is the only code that changes an instance's state. Stop sequences run as
tasks and report back through the same queue.
"""

from __future__ import annotations

import asyncio
import functools
import signal
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from procrunner import tree
from procrunner.chaos import ChaosPlanner
from procrunner.durations import format_duration
from procrunner.errors import ProcrunnerError
from procrunner.events import (
    ChaosTick,
    EndedIncarnation,
    Event,
    LeaderExited,
    MemorySampled,
    OutputBroken,
    Ready,
    Respawn,
    RunForElapsed,
    SignalReceived,
    Stopped,
)
from procrunner.formation import InstanceSpec
from procrunner.instance import Incarnation, StopReport
from procrunner.memory import Memory, sample_memory
from procrunner.messages import describe_end, gave_up, restarting, stop_trouble
from procrunner.output import CHAOS_NAME, Printer
from procrunner.readiness import wait_for_port
from procrunner.restart import COUNTED, Decision, Fatal, Restart, StopAll, decide
from procrunner.scratch import ScratchSpace
from procrunner.settings import RunOptions
from procrunner.states import Cause, State, check_transition
from procrunner.watchdog import Watchdog
from procrunner.wipe import Inventory

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
ALIVE = (State.STARTING, State.RUNNING, State.BACKOFF, State.STOPPING)
OUTPUT_BROKEN_STATUS = 128 + signal.SIGPIPE
STOPPED_HOW = {Cause.CHAOS: "killed by chaos", Cause.WATCH: "restarted by watch"}
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
    streak: int = 0
    deaths: list[float] = field(default_factory=list)
    decision: Decision | None = None
    down_since: float | None = None
    recoveries: list[float] = field(default_factory=list)
    waiting: asyncio.Task[None] | asyncio.TimerHandle | None = None

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
        listeners: Sequence[Callable[[Instance], None]] = (),
    ) -> None:
        self._instances = {spec.name: Instance(spec) for spec in plan}
        self._root = root
        self._env_for = env_for
        self._printer = printer
        self._queue = queue
        self._options = options
        self._scratch = scratch
        self._watchdog = watchdog
        self._listeners = tuple(listeners)
        self._status: int | None = None
        self._signals_seen = 0
        self._kill_now = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self.crashed = False
        self._chaos_planner = ChaosPlanner(options.chaos) if options.chaos else None
        self._chaos_task: asyncio.Task[None] | None = None
        self._chaos_kills = 0
        printer.add_names(list(self._instances))
        if self._chaos_planner is not None:
            printer.add_names([CHAOS_NAME])

    @property
    def instances(self) -> Mapping[str, Instance]:
        return self._instances

    async def run(self) -> int:
        """Start the formation and supervise it until it has stopped; returns the exit status."""
        loop = asyncio.get_running_loop()
        for sig in STOP_SIGNALS:
            loop.add_signal_handler(sig, self._queue.put_nowait, SignalReceived(sig))
        sampler = asyncio.create_task(
            sample_memory(
                self._live_targets,
                lambda samples: self._queue.put_nowait(MemorySampled(samples)),
                self._options.start_seconds,
                self._options.memory_interval,
            )
        )
        chaos = None
        if self._chaos_planner is not None and self._options.chaos is not None:
            self._printer.system(
                self._options.chaos.describe(self._chaos_planner.seed), CHAOS_NAME
            )
            tick = functools.partial(self._queue.put_nowait, ChaosTick())
            chaos = self._chaos_task = asyncio.create_task(self._chaos_planner.run(tick))
        try:
            if not self._instances:
                self._printer.system("the formation has no instances: nothing to run")
                return 0
            for instance in self._instances.values():
                if self._status is None:
                    self._start(instance)
            if self._options.run_for is not None:
                loop.call_later(self._options.run_for, self._queue.put_nowait, RunForElapsed())
            while not self._finished():
                self._handle(await self._queue.get())
        finally:
            sampler.cancel()
            if chaos is not None:
                chaos.cancel()
            for sig in STOP_SIGNALS:
                loop.remove_signal_handler(sig)
        assert self._status is not None
        return self._status

    def _finished(self) -> bool:
        return self._status is not None and not any(
            i.state in ALIVE for i in self._instances.values()
        )

    def _transition(self, instance: Instance, new: State) -> None:
        check_transition(instance.spec.name, instance.state, new)
        instance.state = new
        for listener in self._listeners:
            listener(instance)

    def _start(self, instance: Instance) -> None:
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
        previous = instance.history[-1] if instance.history else None
        after = f", replacing {previous.label} ({previous.cause.value})" if previous else ""
        self._printer.system(
            f"{label} started with pid {incarnation.pid} (port {instance.spec.port}){after}"
        )
        name, number = instance.spec.name, instance.count
        incarnation.exited.add_done_callback(
            lambda done: self._queue.put_nowait(LeaderExited(name, number, done.result()))
        )
        if instance.spec.type_name in self._options.port_ready_types:
            instance.waiting = asyncio.create_task(
                self._ready_on_port(name, number, instance.spec.port)
            )
        else:
            instance.waiting = asyncio.get_running_loop().call_later(
                self._options.start_seconds, self._queue.put_nowait, Ready(name, number)
            )

    async def _ready_on_port(self, name: str, number: int, port: int) -> None:
        await wait_for_port(port)
        self._queue.put_nowait(Ready(name, number))

    def _current(self, name: str, number: int) -> Instance | None:
        """The instance if ``number`` is still its incarnation; stale events are dropped."""
        instance = self._instances.get(name)
        return instance if instance is not None and instance.count == number else None

    def _handle(self, event: Event) -> None:
        match event:
            case LeaderExited(name, number, status):
                instance = self._current(name, number)
                if instance is not None and instance.state in (State.STARTING, State.RUNNING):
                    self._on_own_exit(instance, status.shell_code, status.describe())
            case Stopped(name, number, report, scratch):
                instance = self._current(name, number)
                if instance is not None:
                    self._on_stopped(instance, report, scratch)
            case MemorySampled(samples):
                for name, number, memory in samples:
                    instance = self._current(name, number)
                    if instance is not None and instance.incarnation is not None:
                        instance.incarnation.last_memory = memory
            case Ready(name, number):
                instance = self._current(name, number)
                if instance is not None and instance.state is State.STARTING:
                    self._on_ready(instance)
            case Respawn(name, number):
                instance = self._current(name, number)
                if instance is not None and instance.state is State.BACKOFF:
                    self._start(instance)
            case ChaosTick():
                self._on_chaos()
            case SignalReceived(signum):
                self._on_signal(signum)
            case RunForElapsed():
                self._begin_shutdown(1 if self.crashed else 0, "--run-for elapsed")
            case OutputBroken():
                self._begin_shutdown(OUTPUT_BROKEN_STATUS, "procrunner's output was closed")

    def _on_own_exit(self, instance: Instance, code: int, how: str) -> None:
        """The leader exited on its own: decide now (the policy is a pure function), act when
        the rest of its tree is stopped and its scratch wiped."""
        instance.cause = Cause.CRASH if code != 0 else Cause.EXITED
        self.crashed |= instance.cause is Cause.CRASH
        incarnation = instance.incarnation
        assert incarnation is not None
        now = time.monotonic()
        instance.down_since = incarnation.ended or now
        reset = self._options.restart.backoff.reset_after
        instance.streak = 1 if incarnation.uptime >= reset else instance.streak + 1
        instance.deaths.append(now)
        policy = self._options.restart.policy(instance.spec.type_name)
        decision = decide(
            policy, instance.cause, instance.streak, instance.deaths, now, self._options.restart
        )
        if isinstance(decision, StopAll) or self._status is not None:
            self._begin_shutdown(code, f"{instance.label} {how}")
            return
        instance.decision = decision
        self._printer.system(f"{instance.label} {how} ({instance.cause.value}, {policy.value})")
        self._stop(instance)

    def _on_stopped(self, instance: Instance, report: StopReport, scratch: Inventory) -> None:
        own_exit = instance.cause in COUNTED
        if report.signalled and own_exit:
            self._printer.system(f"{instance.label} left processes behind: stopped them")
        self._finish(instance, report.memory, scratch)
        for line in stop_trouble(instance.label, report, self._options.stop_timeout):
            self._printer.system(line)
        decision, instance.decision = instance.decision, None
        name = instance.spec.name
        if self._status is not None or decision is None:
            self._transition(instance, State.EXITED if own_exit else State.STOPPED)
        elif isinstance(decision, Restart):
            self._transition(instance, State.BACKOFF)
            assert instance.cause is not None
            self._printer.system(restarting(name, instance.cause.value, decision.delay))
            instance.waiting = asyncio.get_running_loop().call_later(
                decision.delay, self._queue.put_nowait, Respawn(name, instance.count)
            )
        elif isinstance(decision, Fatal):
            self._transition(instance, State.FATAL)
            self._printer.system(gave_up(name, decision))
        else:
            self._transition(instance, State.EXITED)
            self._printer.system(f"{name} stays down (exited); the rest keeps running")
        if self._status is None and not any(i.state in ALIVE for i in self._instances.values()):
            self._begin_shutdown(1 if self.crashed else 0, "no instance is left running")

    def _on_ready(self, instance: Instance) -> None:
        self._transition(instance, State.RUNNING)
        if instance.down_since is not None:
            recovered = time.monotonic() - instance.down_since
            instance.recoveries.append(recovered)
            instance.down_since = None
            self._printer.system(
                f"{instance.label} ready: recovered in {format_duration(recovered)}"
            )
        elif instance.spec.type_name in self._options.port_ready_types:
            port = instance.spec.port
            self._printer.system(f"{instance.label} ready: port {port} accepts connections")

    def _on_chaos(self) -> None:
        assert self._chaos_planner is not None
        running = [n for n, i in self._instances.items() if i.state is State.RUNNING]
        types = {n: i.spec.type_name for n, i in self._instances.items()}
        victim_name = self._chaos_planner.choose(running, types)
        if self._status is not None:
            return
        if victim_name is None:
            self._printer.system("no running instance to kill this time", CHAOS_NAME)
            return
        victim = self._instances[victim_name]
        assert victim.incarnation is not None
        sig = self._options.chaos.signal if self._options.chaos else signal.SIGKILL
        self._printer.system(
            f"killing {victim.label} (up {format_duration(victim.incarnation.uptime)}) "
            f"with {tree.signal_name(sig)}",
            CHAOS_NAME,
        )
        victim.cause = Cause.CHAOS
        victim.decision = Restart(0.0)
        victim.down_since = time.monotonic()
        self._stop(victim, sig)
        self._chaos_kills += 1
        limit = self._options.chaos.max_kills if self._options.chaos else None
        if limit is not None and self._chaos_kills >= limit and self._chaos_task is not None:
            self._chaos_task.cancel()
            self._printer.system(f"done: {limit} kills (max={limit})", CHAOS_NAME)

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
            elif instance.state is State.BACKOFF:
                _cancel(instance.waiting)
                self._transition(instance, State.STOPPED)

    def _stop(self, instance: Instance, sig: int = signal.SIGTERM) -> None:
        """Run the stop sequence and the scratch wipe as a task, which reports back with a
        ``Stopped`` event. An instance whose leader already exited gets the same sequence
        for what it left behind."""
        self._transition(instance, State.STOPPING)
        _cancel(instance.waiting)
        incarnation = instance.incarnation
        assert incarnation is not None
        name, number = instance.spec.name, instance.count

        async def stop() -> None:
            report = await incarnation.stop(sig, self._options.stop_timeout, self._kill_now)
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
        own_exit = instance.cause in COUNTED
        if own_exit or memory is None:
            memory = incarnation.last_memory
        status = incarnation.status
        how = status.describe() if own_exit and status else STOPPED_HOW.get(
            instance.cause, "stopped by procrunner"
        )
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

    def _live_targets(self) -> dict[tuple[str, int], tree.Target]:
        return {
            (i.spec.name, i.count): i.incarnation.target
            for i in self._instances.values()
            if i.incarnation is not None and i.state in (State.STARTING, State.RUNNING)
        }


def _cancel(waiting: asyncio.Task[None] | asyncio.TimerHandle | None) -> None:
    if waiting is not None:
        waiting.cancel()
