"""The mechanics of lives, for the supervisor: the instance table and its one transition
function, spawning a life, taking one down, and what follows its end (the restart policy's
fate), its readiness and a shutdown. ``Supervisor`` builds its loop and verbs on top; nothing
else changes an instance."""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Coroutine
from typing import Any

from procrunner.config.formation import InstanceMaker, InstanceSpec
from procrunner.config.settings import RELEASE_TYPE, RunOptions
from procrunner.errors import ProcrunnerError
from procrunner.scratch.wipe import Inventory
from procrunner.supervise import facts
from procrunner.supervise.chaos import ChaosSchedule
from procrunner.supervise.dependencies import holding
from procrunner.supervise.events import Event, LeaderExited, Respawn, Stopped
from procrunner.supervise.handle import Incoming
from procrunner.supervise.incarnation import StopReport
from procrunner.supervise.instance import Held, Instance, Lives, Remove
from procrunner.supervise.probes import Site
from procrunner.supervise.restart import (
    COUNTED,
    Decision,
    Fatal,
    Restart,
    Stay,
    StopAll,
    backoff_delay,
    decide,
    restart_counted,
)
from procrunner.supervise.spawner import Cancellable, Clock, Life, ReadinessArming, Spawner
from procrunner.supervise.states import Cause, State, check_transition

ALIVE = (State.STARTING, State.RUNNING, State.BACKOFF, State.STOPPING)
UP = (State.STARTING, State.RUNNING)


class Lifecycle:
    def __init__(
        self,
        plan: tuple[InstanceSpec, ...],
        make_spec: InstanceMaker,
        options: RunOptions,
        spawner: Spawner,
        clock: Clock,
        readiness: ReadinessArming,
        queue: asyncio.Queue[Incoming],
        facts_out: facts.Facts,
    ) -> None:
        # the release phase is no part of the formation: it runs once, first, whatever -m says
        release = [make_spec(RELEASE_TYPE, 1)] if (
            options.release and RELEASE_TYPE in make_spec.type_names) else []
        formation = [spec for spec in plan if spec.type_name != RELEASE_TYPE]
        self._instances = {spec.name: Instance(spec) for spec in [*release, *formation]}
        self._lives = {name: i.lives for name, i in self._instances.items()}  # removed too
        self.make_spec = make_spec
        self.options = options
        self._spawner = spawner
        self.clock = clock
        self.readiness = readiness
        self._queue = queue
        self.facts = facts_out
        self.status: int | None = None
        self._formation_started = False  # a failed start ends the run only before this
        self._kill_now = asyncio.Event()
        self._tasks: asyncio.TaskGroup | None = None  # owns every task; set while running
        self.crashed = False
        self._signals_seen = 0
        self.chaos = ChaosSchedule()

    def _post_later(self, delay: float, event: Event) -> Cancellable:
        return self.clock.call_later(delay, functools.partial(self._queue.put_nowait, event))

    def _task(self, work: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        """A task owned by the run's task group: awaited before ``run`` returns."""
        assert self._tasks is not None, "tasks start only while the supervisor runs"
        return self._tasks.create_task(work)

    def _finished(self) -> bool:
        return self.status is not None and not any(
            i.state in ALIVE for i in self._instances.values()
        )

    def _transition(self, instance: Instance, new: State) -> None:
        check_transition(instance.spec.name, instance.state, new)
        instance.state = new
        spec = instance.spec
        self.facts.publish(
            facts.StateChanged(spec.name, spec.type_name, instance.number, new, spec.port)
        )

    def _retire(self, instance: Instance) -> None:
        """Scaled down: the slot leaves the formation; the summary still counts its past."""
        del self._instances[instance.spec.name]
        self.facts.publish(facts.Removed(instance.spec.name))

    def _add(self, spec: InstanceSpec) -> Instance:
        """A new slot; a name scaled away earlier goes on with its lives (numbers continue)."""
        lives = self._lives.setdefault(spec.name, Lives())
        instance = self._instances[spec.name] = Instance(spec, lives)
        self.facts.publish(facts.Added((spec,)))
        return instance

    def _spawn(self, instance: Instance) -> bool:
        """Start the instance's next life; False if it could not be spawned."""
        instance.lives.number += 1
        label = instance.label
        tty = self.options.for_type(instance.spec.type_name).tty
        readiness = self.options.readiness(instance.spec.type_name)
        claims_port = readiness.kind == "port" and not readiness.any_listener
        try:
            life = self._spawner.spawn(instance.spec, label, instance.number, tty, claims_port)
        except (ProcrunnerError, OSError) as exc:
            self._failed_start(instance, label, exc)
            return False
        instance.incarnation = life
        instance.cause = None
        instance.fate = None
        self._transition(instance, State.STARTING)
        previous = instance.history[-1] if instance.history else None
        spec = instance.spec
        scratch = str(life.scratch)
        self.facts.publish(
            facts.Spawned(spec.name, instance.number, life.pid, spec.port, scratch, previous)
        )
        name, number = instance.spec.name, instance.number
        life.exited.add_done_callback(
            lambda done: self._queue.put_nowait(LeaderExited(name, number, done.result()))
        )
        instance.waiting = self.readiness.arm(readiness, name, number, _site(instance, life))
        return True

    def _failed_start(self, instance: Instance, label: str, error: Exception) -> None:
        """A spawn that failed (no fd or process left, say): one line. While the formation
        starts, the run ends (status 1); later (scale, restart, respawn, watch) the rest runs
        on: a respawn waits its backoff again, any other start leaves the instance down."""
        self.facts.publish(facts.FailedToStart(instance.spec.name, instance.number, str(error)))
        self.crashed = True
        if not self._formation_started:
            self._begin_shutdown(1, f"{label} failed to start")
        elif instance.state is State.BACKOFF:
            instance.streak += 1
            delay = backoff_delay(instance.streak, self.options.restart.backoff)
            self.facts.publish(facts.RestartPlanned(instance.spec.name, Cause.CRASH, delay))
            self._respawn_later(instance, delay)

    def _respawn_later(self, instance: Instance, delay: float) -> None:
        instance.retry_at = time.time() + delay
        instance.waiting = self._post_later(delay, Respawn(instance.spec.name, instance.number))

    def _start_when_free(self, instance: Instance) -> bool:
        """Start now, or hold it until the types it depends on meet their conditions;
        False if its start failed."""
        needed = self.options.for_type(instance.spec.type_name).depends_on
        held = holding(self._instances.values(), needed)
        if held is None:
            return self._spawn(instance)
        before = instance.fate if isinstance(instance.fate, Held) else None
        instance.fate = held
        name = instance.spec.name
        if before is None:
            self.facts.publish(facts.HeldBack(name, held.reason))
        if held.failed is not None and (before is None or before.failed != held.failed):
            self.facts.publish(facts.DependencyFailed(name, held.reason))
        return True

    def _recheck_held(self) -> None:
        """A dependency became ready, completed or failed: start or re-hold who waits."""
        for held in [i for i in self._instances.values() if isinstance(i.fate, Held)]:
            if self.status is None:
                self._start_when_free(held)

    def _count_death(self, instance: Instance) -> float:
        """One more death toward backoff and giving up; returns the time of it."""
        life = instance.incarnation
        assert life is not None
        now = self.clock.now()
        reset = self.options.restart.backoff.reset_after
        instance.streak = 1 if life.uptime >= reset else instance.streak + 1
        instance.deaths.append(now)
        return now

    def _on_own_exit(self, instance: Instance, code: int, how: str) -> None:
        """The leader exited on its own: decide now (the policy is a pure function), act when
        the rest of its tree is stopped and its scratch wiped. A one-shot step's or the
        release's clean exit is its completion; a failed release ends the run."""
        instance.cause = Cause.CRASH if code != 0 else Cause.EXITED
        self.crashed |= instance.cause is Cause.CRASH
        life = instance.incarnation
        assert life is not None
        now = self._count_death(instance)
        instance.down_since = life.ended or now
        type_name = instance.spec.type_name
        policy = self.options.restart.policy(type_name).value
        decision: Decision
        if type_name == RELEASE_TYPE:
            policy, decision = "release", Stay() if code == 0 else StopAll()
        elif code == 0 and self.options.for_type(type_name).once:
            policy, decision = "once", Stay()
        else:
            decision = decide(self.options.restart.policy(type_name), instance.cause,
                              instance.streak, instance.deaths, now, self.options.restart)
        if isinstance(decision, StopAll) or self.status is not None:
            reason = f"{instance.label} {how}"
            if type_name == RELEASE_TYPE:
                self.facts.publish(facts.ReleaseFailed(instance.label, how, code))
                reason = f"the release phase failed ({reason})"
            self._begin_shutdown(code, reason)
            return
        instance.fate = decision
        self.facts.publish(facts.ExitedOnItsOwn(instance.label, how, instance.cause, policy))
        self._take_down(instance)

    def _on_unhealthy(self, instance: Instance, problem: str, failures: int) -> None:
        """Its liveness check failed too often: restart it whatever its policy (unless it
        gave up), counted like a crash."""
        instance.cause = Cause.UNHEALTHY
        self.crashed = True
        now = self._count_death(instance)
        instance.down_since = now
        instance.fate = restart_counted(instance.streak, instance.deaths, now,
                                        self.options.restart)
        self.facts.publish(facts.WentUnhealthy(instance.label, problem, failures))
        self._take_down(instance)

    def _on_stopped(self, instance: Instance, report: StopReport, scratch: Inventory) -> None:
        own_exit = instance.cause in COUNTED
        assert instance.cause is not None
        ended = instance.record_end(report.memory, scratch, own_exit)
        kept = self._spawner.keeps_scratch
        left_behind = report.signalled and own_exit
        self.facts.publish(facts.Ended(instance.spec.name, ended, report, kept, left_behind))
        fate, instance.fate = instance.fate, None
        name = instance.spec.name
        match fate:
            case Restart(delay) if self.status is None:
                self._transition(instance, State.BACKOFF)
                self.facts.publish(facts.RestartPlanned(name, instance.cause, delay))
                self._respawn_later(instance, delay)
            case Fatal() if self.status is None:
                self._transition(instance, State.FATAL)
                self.facts.publish(facts.GaveUp(name, fate))
            case Stay() if self.status is None:
                self._transition(instance, State.EXITED)
                release = instance.spec.type_name == RELEASE_TYPE
                once = self.options.for_type(instance.spec.type_name).once
                if release or (once and instance.completed):
                    self.facts.publish(facts.Completed(name, release))
                else:
                    self.facts.publish(facts.StaysDown(name))
                if release:
                    self._start_formation()
            case _:
                self._transition(instance, State.EXITED if own_exit else State.STOPPED)
        if isinstance(fate, Remove):
            self._retire(instance)
        self._recheck_held()
        nothing_left = not any(i.state in ALIVE for i in self._instances.values())
        if self.status is None and own_exit and nothing_left:
            self._begin_shutdown(1 if self.crashed else 0, "no instance is left running")

    def _on_ready(self, instance: Instance) -> None:
        self._transition(instance, State.RUNNING)
        recovered = None
        if instance.down_since is not None:
            recovered = self.clock.now() - instance.down_since
            instance.down_since = None
        spec = instance.spec
        how = self.options.readiness(spec.type_name)
        self.facts.publish(
            facts.BecameReady(spec.name, instance.number, spec.port, how, recovered)
        )
        health = self.options.for_type(spec.type_name).health
        if health is not None and instance.incarnation is not None:
            site = _site(instance, instance.incarnation)
            instance.waiting = self.readiness.watch_health(health, spec.name, instance.number,
                                                           site)  # fmt: skip
        self._recheck_held()

    def _start_formation(self) -> None:
        """Every instance of the formation, in order (the release phase, if any, is over)."""
        for instance in self._instances.values():
            if self.status is None and instance.spec.type_name != RELEASE_TYPE:
                self._start_when_free(instance)
        self._formation_started = True

    def _begin_shutdown(self, status: int, reason: str, hint: bool = False) -> None:
        if self.status is not None:
            return
        self.status = status
        self.facts.publish(facts.ShutdownBegan(reason, status, hint))
        for instance in self._instances.values():
            if instance.state in UP:
                instance.cause = instance.cause or Cause.SHUTDOWN
                self._take_down(instance)
            elif instance.state is State.BACKOFF:
                cancel(instance.waiting)
                self._transition(instance, State.STOPPED)

    def _take_down(self, instance: Instance, sig: int | None = None) -> None:
        """Run the stop sequence and the scratch wipe as a task, which reports back with a
        ``Stopped`` event. An instance whose leader already exited gets the same sequence
        for what it left behind."""
        self._transition(instance, State.STOPPING)
        cancel(instance.waiting)
        self.readiness.disarm(instance.spec.name)
        life = instance.incarnation
        assert life is not None
        name, number = instance.spec.name, instance.number
        type_name = instance.spec.type_name
        settings = self.options.for_type(type_name)
        signum = settings.stop_signal if sig is None else sig
        stop_command = settings.stop_command if sig is None else None
        timeout = self.options.stop_timeout_of(type_name)

        async def stop() -> None:
            report, scratch = await self._spawner.take_down(
                life, signum, timeout, self._kill_now, stop_command)
            self._queue.put_nowait(Stopped(name, number, report, scratch))

        self._task(stop())


def _site(instance: Instance, life: Life) -> Site:
    return Site(instance.spec.port, life.env, life.cwd)


def cancel(waiting: Cancellable | None) -> None:
    if waiting is not None:
        waiting.cancel()
