"""The supervisor: the one owner of every instance, driven by one queue.

Everything that wants something done (signal handlers, the --run-for timer, the output sink,
lives, the memory sampler, chaos, watch, the control socket) puts a frozen event, or a
client's ``Ask``, on the queue; ``run`` takes them one at a time and is the only code that
changes an instance. The verbs that change an instance (start, restart, stop, remove, scale,
chaos kill, kill with a signal) are its own methods; clients reach them through ``Handle``.
"""

from __future__ import annotations

import asyncio
import functools
import signal
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from procrunner.config.chaos_spec import ChaosSpec
from procrunner.config.settings import RELEASE_TYPE
from procrunner.errors import ProcrunnerError
from procrunner.supervise import tree
from procrunner.supervise.events import (
    ChaosTick,
    LeaderExited,
    MemorySampled,
    OutputBroken,
    Ready,
    Respawn,
    RunForElapsed,
    SignalReceived,
    Stopped,
    Unhealthy,
    WatchTriggered,
)
from procrunner.supervise.facts import (
    Added,
    ChaosDone,
    ChaosKilled,
    ChaosMissed,
    ChaosOff,
    ChaosOn,
    KillingNow,
    NothingToRun,
    Reloading,
    ScaledType,
)
from procrunner.supervise.handle import Ask, Handle, Incoming, Scaled
from procrunner.supervise.instance import Instance, Remove, live_lives
from procrunner.supervise.lifecycle import UP, Lifecycle, cancel
from procrunner.supervise.restart import Restart
from procrunner.supervise.states import Cause, State

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
OUTPUT_BROKEN_STATUS = 128 + signal.SIGPIPE
SOURCE = "control"


class Supervisor(Lifecycle):
    @property
    def instances(self) -> Mapping[str, Instance]:
        return self._instances

    @property
    def stopping(self) -> bool:
        return self.status is not None

    @property
    def type_names(self) -> Sequence[str]:
        return self.make_spec.type_names

    async def run(self) -> int:
        """Start the formation and supervise it until it has stopped; returns the exit status."""
        loop = asyncio.get_running_loop()
        for sig in STOP_SIGNALS:
            loop.add_signal_handler(sig, self._queue.put_nowait, SignalReceived(sig))
        try:
            async with asyncio.TaskGroup() as self._tasks:
                await self._supervise()
        finally:
            self._tasks = None
            for sig in STOP_SIGNALS:
                loop.remove_signal_handler(sig)
        return 0 if self.status is None else self.status

    async def _supervise(self) -> None:
        self.facts.publish(Added(tuple(i.spec for i in self._instances.values())))
        if not self._instances:
            self.facts.publish(NothingToRun())
            return
        sampler = self._task(self._sample_memory())
        if self.options.chaos is not None:
            self.chaos_on(self.options.chaos)
        try:
            if self.options.run_for is not None:
                self._post_later(self.options.run_for, RunForElapsed())
            release = next((i for i in self._instances.values()
                            if i.spec.type_name == RELEASE_TYPE), None)  # fmt: skip
            if release is None:
                self._start_formation()
            else:  # the formation starts once it has completed
                self._spawn(release)
            while not self._finished():
                self._handle(await self._queue.get())
        finally:
            sampler.cancel()
            self.chaos.stop()

    async def _sample_memory(self) -> None:
        """Every ``memory_interval`` (the first after ``start_seconds``), the live trees."""
        await self.clock.sleep(self.options.start_seconds)
        while True:
            samples = await self._spawner.measure(live_lives(self._instances.values()))
            self._queue.put_nowait(MemorySampled(samples))
            await self.clock.sleep(self.options.memory_interval)

    def _current(self, name: str, number: int) -> Instance | None:
        """The instance if ``number`` is still its incarnation; stale events are dropped."""
        instance = self._instances.get(name)
        return instance if instance is not None and instance.number == number else None

    def _handle(self, event: Incoming) -> None:
        match event:
            case LeaderExited(name, number, status):
                instance = self._current(name, number)
                if instance is not None and instance.state in UP:
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
            case Unhealthy(name, number, problem, failures):
                instance = self._current(name, number)
                if instance is not None and instance.state is State.RUNNING and not self.stopping:
                    self._on_unhealthy(instance, problem, failures)
            case Respawn(name, number):
                instance = self._current(name, number)
                if instance is not None and instance.state is State.BACKOFF:
                    self._spawn(instance)
            case ChaosTick():
                self._on_chaos_tick()
            case SignalReceived(signum):
                self._on_signal(signum)
            case RunForElapsed():
                self._begin_shutdown(1 if self.crashed else 0, "--run-for elapsed")
            case OutputBroken():
                self._begin_shutdown(OUTPUT_BROKEN_STATUS, "procrunner's output was closed")
            case WatchTriggered():
                self._on_watch(event)
            case Ask(act, reply):
                _answer(reply, act, self)

    def _on_signal(self, signum: int) -> None:
        name = tree.signal_name(signum)
        if self.status is None:
            self._begin_shutdown(128 + signum, f"{name} received", hint=True)
            return
        self._signals_seen += 1
        if self._signals_seen == 1 and signum != signal.SIGHUP:
            self.facts.publish(KillingNow(name))
            self._kill_now.set()

    def _on_watch(self, event: WatchTriggered) -> None:
        """Files changed: restart the matching types' instances (cause ``watch``), start again
        those that had crashed or given up (the fix may be in), leave stopped ones alone."""
        affected = [
            i.spec.name
            for i in self._instances.values()
            if i.spec.type_name in event.types
            and i.spec.type_name != RELEASE_TYPE
            and i.state is not State.STOPPED
            and not (i.state is State.STOPPING and i.cause is Cause.WATCH)
        ]
        if self.status is not None or not affected:
            return
        self.facts.publish(Reloading(event.types, event.files, event.failure))
        for name in affected:
            self.restart(name, Cause.WATCH)

    def _on_chaos_tick(self) -> None:
        """The schedule says kill: a victim among the RUNNING instances of its types."""
        schedule, planner = self.chaos, self.chaos.planner
        if self.status is not None or planner is None or not schedule.on:
            return
        instances = self._instances
        running = [n for n, i in instances.items() if i.state is State.RUNNING]
        victim = planner.choose(running, {n: i.spec.type_name for n, i in instances.items()})
        if victim is None:
            self.facts.publish(ChaosMissed())
            return
        self.chaos_kill(victim, planner.spec.signal)
        if schedule.count_kill():
            self.facts.publish(ChaosDone(schedule.kills))

    def _slot(self, name: str) -> Instance:
        instance = self._instances.get(name)
        if instance is None:
            raise ProcrunnerError(f"no instance {name!r}", SOURCE)
        return instance

    def _formation_slot(self, name: str) -> Instance:
        """The instance, unless it is the release phase, which runs once and only first."""
        instance = self._slot(name)
        if instance.spec.type_name == RELEASE_TYPE:
            raise ProcrunnerError(f"{name} is the release phase: it runs once, first", SOURCE)
        return instance

    def start(self, name: str) -> bool:
        """Start a down instance's next life now; False if its spawn failed."""
        instance = self._formation_slot(name)
        if instance.state is State.BACKOFF:
            cancel(instance.waiting)
        instance.streak = 0
        return self._spawn(instance)

    def restart(self, name: str, cause: Cause = Cause.REQUESTED) -> None:
        """Graceful restart of a live instance; a start for one that is down or waiting."""
        instance = self._formation_slot(name)
        if instance.state in UP:
            instance.cause = cause
            instance.fate = Restart(0.0)
            instance.down_since = self.clock.now()
            self._take_down(instance)
        elif instance.state is State.STOPPING:
            instance.fate = Restart(0.0)
        else:
            self.start(name)

    def stop(self, name: str) -> None:
        """Stop one instance; it stays STOPPED until restarted."""
        instance = self._slot(name)
        if instance.state in UP:
            instance.cause = Cause.REQUESTED
            instance.fate = None
            self._take_down(instance)
        elif instance.state is State.BACKOFF:
            cancel(instance.waiting)
            self._transition(instance, State.STOPPED)
        elif not isinstance(instance.fate, Remove):  # stopping: stays down; held: waits no more
            instance.fate = None

    def stop_all(self, reason: str) -> None:
        self._begin_shutdown(0, reason)

    def remove(self, name: str) -> None:
        """The slot leaves the formation, once its life (if any) has stopped gracefully."""
        instance = self._slot(name)
        if instance.state in UP:
            instance.fate = Remove()
            instance.cause = Cause.SCALED
            self._take_down(instance)
            return
        if instance.state is State.STOPPING:
            instance.fate = Remove()
            return
        if instance.state is State.BACKOFF:
            cancel(instance.waiting)
            self._transition(instance, State.STOPPED)
        self._retire(instance)

    def scale(self, counts: Mapping[str, int]) -> Scaled:
        """Add instances up to the count (next names, foreman's ports); stop the
        highest-numbered ones beyond it, gracefully, and drop their slots once stopped."""
        for type_name, count in counts.items():
            if count < 0:
                raise ProcrunnerError(f"count {count} for {type_name!r} is negative", SOURCE)
            if type_name == RELEASE_TYPE:
                raise ProcrunnerError("release is the release phase, not part of the "
                                      "formation: it cannot be scaled", SOURCE)
            self.make_spec(type_name, max(count, 1))  # unknown type, port range, router
        started: list[str] = []
        stopping: list[str] = []
        failed: list[str] = []
        for type_name, count in counts.items():
            slots = {i.spec.slot: i for i in self._instances.values()
                     if i.spec.type_name == type_name}  # fmt: skip
            before = sum(1 for i in slots.values() if not isinstance(i.fate, Remove))
            for slot in range(1, count + 1):
                instance = slots.get(slot)
                if instance is None:
                    instance = self._add(self.make_spec(type_name, slot))
                    ok = self._start_when_free(instance)
                    (started if ok else failed).append(instance.spec.name)
                elif isinstance(instance.fate, Remove):  # scaled down and up before it stopped
                    instance.fate = Restart(0.0)
                    started.append(instance.spec.name)
            for slot in sorted(n for n in slots if n > count):
                instance = slots[slot]
                if not isinstance(instance.fate, Remove):
                    stopping.append(instance.spec.name)
                    self.remove(instance.spec.name)
            if before != count:
                self.facts.publish(ScaledType(type_name, before, count))
        return Scaled(tuple(started), tuple(stopping), tuple(failed))

    def kill(self, name: str, signum: int) -> None:
        """Send a signal to the instance's process group (an app reloads on HUP, say)."""
        instance = self._slot(name)
        life = instance.incarnation
        if life is None or instance.state not in (*UP, State.STOPPING):
            raise ProcrunnerError(f"{name} is {instance.state.value}", SOURCE)
        life.send_signal(signum)

    def chaos_kill(self, name: str, signum: int) -> None:
        """Kill the instance's tree; it restarts at once, outside the backoff, cause chaos."""
        victim = self._slot(name)
        if victim.state not in UP or victim.incarnation is None:
            raise ProcrunnerError(f"{name!r} is not a running instance", SOURCE)
        uptime = victim.incarnation.uptime
        self.facts.publish(ChaosKilled(name, victim.number, uptime, tree.signal_name(signum)))
        victim.cause = Cause.CHAOS
        victim.fate = Restart(0.0)
        victim.down_since = self.clock.now()
        self._take_down(victim, signum)

    def chaos_on(self, spec: ChaosSpec) -> None:
        tick = functools.partial(self._queue.put_nowait, ChaosTick())
        planner = self.chaos.start(spec, lambda plan: self._task(plan.run(tick, self.clock.sleep)))
        self.facts.publish(ChaosOn(spec.describe(planner.seed)))

    def chaos_off(self) -> None:
        self.chaos.stop()
        self.facts.publish(ChaosOff())


def _answer(reply: asyncio.Future[Any], act: Callable[[Handle], Any], handle: Handle) -> None:
    """Carry out a client's request and answer it (unless the client left)."""
    try:
        result = act(handle)
    except ProcrunnerError as exc:
        if not reply.done():
            reply.set_exception(exc)
        return
    if not reply.done():
        reply.set_result(result)
