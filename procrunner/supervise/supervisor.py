"""The supervisor: the one owner of every instance, driven by one queue of events.

Everything that wants something done (signal handlers, the --run-for timer, the output sink,
instance watchers, the memory sampler, chaos, the control socket) puts a frozen event on the
queue; ``run`` takes them one at a time and is the only code that changes an instance's
state. Stop sequences run as tasks and report back through the same queue. Control requests
are carried out in ``control_ops``, on the supervisor's behalf.
"""

from __future__ import annotations

import asyncio
import functools
import signal
from collections.abc import Callable, Sequence

from procrunner.config.durations import format_duration
from procrunner.config.formation import InstanceMaker, InstanceSpec
from procrunner.config.settings import RunOptions
from procrunner.control.notices import Notices
from procrunner.errors import ProcrunnerError
from procrunner.output.printer import CHAOS_NAME, Printer
from procrunner.scratch.wipe import Inventory
from procrunner.supervise import tree
from procrunner.supervise.chaos import ChaosSchedule, ChaosSpec
from procrunner.supervise.control_ops import chaos_tick, perform, reload
from procrunner.supervise.events import (
    ChaosTick,
    ControlRequest,
    Event,
    LeaderExited,
    MemorySampled,
    OutputBroken,
    Ready,
    Respawn,
    RunForElapsed,
    SignalReceived,
    Stopped,
    WatchTriggered,
)
from procrunner.supervise.incarnation import StopReport
from procrunner.supervise.instance import Held, Instance, Remove, live_lives, unmet_dependencies
from procrunner.supervise.messages import end_lines, gave_up, restarting
from procrunner.supervise.restart import (
    COUNTED,
    Fatal,
    Restart,
    Stay,
    StopAll,
    backoff_delay,
    decide,
)
from procrunner.supervise.spawner import Cancellable, Clock, ReadinessArming, Spawner
from procrunner.supervise.states import Cause, State, check_transition

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
ALIVE = (State.STARTING, State.RUNNING, State.BACKOFF, State.STOPPING)
OUTPUT_BROKEN_STATUS = 128 + signal.SIGPIPE
Listener = Callable[[Instance], None]


class Supervisor:
    def __init__(
        self,
        plan: tuple[InstanceSpec, ...],
        make_spec: InstanceMaker,
        options: RunOptions,
        spawner: Spawner,
        clock: Clock,
        readiness: ReadinessArming,
        printer: Printer,
        queue: asyncio.Queue[Event],
        listeners: Sequence[Listener] = (),
        notices: Notices | None = None,
    ) -> None:
        self._instances = {spec.name: Instance(spec) for spec in plan}
        self._last_slots = dict(self._instances)  # by name, the latest slot: removed ones too
        self.make_spec = make_spec
        self.options = options
        self._spawner = spawner
        self.clock = clock
        self.readiness = readiness
        self.printer = printer
        self._queue = queue
        self._listeners = tuple(listeners)
        self.notices = notices or Notices()
        self.status: int | None = None
        self._signals_seen = 0
        self._formation_started = False  # a failed start ends the run only before this
        self._kill_now = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self.crashed = False
        self.chaos = ChaosSchedule(functools.partial(queue.put_nowait, ChaosTick()), clock.sleep)
        printer.add_names([*self._instances, CHAOS_NAME])

    @property
    def instances(self) -> dict[str, Instance]:
        return self._instances

    async def run(self) -> int:
        """Start the formation and supervise it until it has stopped; returns the exit status."""
        loop = asyncio.get_running_loop()
        for sig in STOP_SIGNALS:
            loop.add_signal_handler(sig, self._queue.put_nowait, SignalReceived(sig))
        sampler = asyncio.create_task(self._sample_memory())
        if self.options.chaos is not None:
            self.start_chaos(self.options.chaos)
        try:
            if not self._instances:
                self.printer.system("the formation has no instances: nothing to run")
                return 0
            for instance in self._instances.values():
                if self.status is None:
                    self.start_when_free(instance)
            self._formation_started = True
            if self.options.run_for is not None:
                self._post_later(self.options.run_for, RunForElapsed())
            while not self._finished():
                self._handle(await self._queue.get())
        finally:
            sampler.cancel()
            self.chaos.stop()
            for sig in STOP_SIGNALS:
                loop.remove_signal_handler(sig)
        assert self.status is not None
        return self.status

    async def _sample_memory(self) -> None:
        """Every ``memory_interval`` (the first after ``start_seconds``), the live trees."""
        await self.clock.sleep(self.options.start_seconds)
        while True:
            samples = await self._spawner.measure(live_lives(self._instances.values()))
            self._queue.put_nowait(MemorySampled(samples))
            await self.clock.sleep(self.options.memory_interval)

    def _post_later(self, delay: float, event: Event) -> Cancellable:
        return self.clock.call_later(delay, functools.partial(self._queue.put_nowait, event))

    def start_chaos(self, spec: ChaosSpec) -> None:
        planner = self.chaos.start(spec)
        self.printer.system(spec.describe(planner.seed), CHAOS_NAME)
        self.notices.post("chaos", action="on", spec=spec.describe(planner.seed))

    def _finished(self) -> bool:
        return self.status is not None and not any(
            i.state in ALIVE for i in self._instances.values()
        )

    def transition(self, instance: Instance, new: State) -> None:
        check_transition(instance.spec.name, instance.state, new)
        instance.state = new
        self.notices.post(
            "state", instance=instance.spec.name, incarnation=instance.count, state=new.value
        )
        for listener in self._listeners:
            listener(instance)

    def every_instance(self) -> list[Instance]:
        """Every instance name of the run (scaled away too), each with all of its lives."""
        return list(self._last_slots.values())

    def retire(self, instance: Instance) -> None:
        """Scaled down: the slot leaves the formation; the summary still counts its past."""
        del self._instances[instance.spec.name]
        self.notices.post("removed", instance=instance.spec.name)

    def add(self, spec: InstanceSpec) -> Instance:
        """A new slot; a name scaled away earlier goes on with its lives (numbers continue)."""
        earlier = self._last_slots.get(spec.name)
        instance = Instance(spec, earlier.lives) if earlier is not None else Instance(spec)
        self._instances[spec.name] = self._last_slots[spec.name] = instance
        self.printer.add_names([spec.name])
        return instance

    def start(self, instance: Instance) -> None:
        instance.lives.count += 1
        label = instance.label
        tty = self.options.for_type(instance.spec.type_name).tty
        try:
            incarnation = self._spawner.spawn(instance.spec, label, instance.count, tty)
        except (ProcrunnerError, OSError) as exc:
            self._failed_start(instance, label, exc)
            return
        instance.incarnation = incarnation
        instance.cause = None
        instance.fate = None
        self.transition(instance, State.STARTING)
        previous = instance.history[-1] if instance.history else None
        after = f", replacing {previous.label} ({previous.cause.value})" if previous else ""
        self.printer.system(
            f"{label} started with pid {incarnation.pid} (port {instance.spec.port}){after}"
        )
        self.notices.post(
            "spawned",
            instance=instance.spec.name,
            incarnation=instance.count,
            pid=incarnation.pid,
            port=instance.spec.port,
            scratch=str(incarnation.scratch),
        )
        name, number = instance.spec.name, instance.count
        incarnation.exited.add_done_callback(
            lambda done: self._queue.put_nowait(LeaderExited(name, number, done.result()))
        )
        readiness = self.options.readiness(instance.spec.type_name)
        instance.waiting = self.readiness.arm(readiness, name, number, instance.spec.port)

    def _failed_start(self, instance: Instance, label: str, error: Exception) -> None:
        """A spawn that failed (no fd or process left, say): one line. While the formation
        starts, the run ends (status 1); later (scale, restart, respawn, watch) the rest runs
        on: a respawn waits its backoff again, any other start leaves the instance down."""
        self.printer.system(f"failed to start {label}: {error}")
        self.crashed = True
        if not self._formation_started:
            self.begin_shutdown(1, f"{label} failed to start")
        elif instance.state is State.BACKOFF:
            instance.streak += 1
            delay = backoff_delay(instance.streak, self.options.restart.backoff)
            name = instance.spec.name
            self.printer.system(restarting(name, Cause.CRASH.value, delay))
            instance.waiting = self._post_later(delay, Respawn(name, instance.count))

    def start_when_free(self, instance: Instance) -> None:
        """Start now, or once every instance of the types it depends on is RUNNING."""
        needed = self.options.for_type(instance.spec.type_name).depends_on
        waiting_for = unmet_dependencies(self._instances.values(), needed)
        if not waiting_for:
            self.start(instance)
        elif not isinstance(instance.fate, Held):
            instance.fate = Held()
            self.printer.system(f"{instance.spec.name} waits for {', '.join(waiting_for)} "
                                "to be running (depends_on)")

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
                    self.start(instance)
            case ChaosTick():
                chaos_tick(self)
            case SignalReceived(signum):
                self._on_signal(signum)
            case RunForElapsed():
                self.begin_shutdown(1 if self.crashed else 0, "--run-for elapsed")
            case OutputBroken():
                self.begin_shutdown(OUTPUT_BROKEN_STATUS, "procrunner's output was closed")
            case ControlRequest(command, reply):
                perform(self, command, reply)
            case WatchTriggered():
                reload(self, event)

    def _on_own_exit(self, instance: Instance, code: int, how: str) -> None:
        """The leader exited on its own: decide now (the policy is a pure function), act when
        the rest of its tree is stopped and its scratch wiped."""
        instance.cause = Cause.CRASH if code != 0 else Cause.EXITED
        self.crashed |= instance.cause is Cause.CRASH
        incarnation = instance.incarnation
        assert incarnation is not None
        now = self.clock.now()
        instance.down_since = incarnation.ended or now
        reset = self.options.restart.backoff.reset_after
        instance.streak = 1 if incarnation.uptime >= reset else instance.streak + 1
        instance.deaths.append(now)
        policy = self.options.restart.policy(instance.spec.type_name)
        decision = decide(
            policy, instance.cause, instance.streak, instance.deaths, now, self.options.restart
        )
        if isinstance(decision, StopAll) or self.status is not None:
            self.begin_shutdown(code, f"{instance.label} {how}")
            return
        instance.fate = decision
        self.printer.system(f"{instance.label} {how} ({instance.cause.value}, {policy.value})")
        self.stop(instance)

    def _on_stopped(self, instance: Instance, report: StopReport, scratch: Inventory) -> None:
        own_exit = instance.cause in COUNTED
        if report.signalled and own_exit:
            self.printer.system(f"{instance.label} left processes behind: stopped them")
        self._finish(instance, report, scratch, own_exit)
        fate, instance.fate = instance.fate, None
        name = instance.spec.name
        match fate:
            case Restart(delay) if self.status is None:
                self.transition(instance, State.BACKOFF)
                assert instance.cause is not None
                self.printer.system(restarting(name, instance.cause.value, delay))
                instance.waiting = self._post_later(delay, Respawn(name, instance.count))
            case Fatal() if self.status is None:
                self.transition(instance, State.FATAL)
                self.printer.system(gave_up(name, fate))
            case Stay() if self.status is None:
                self.transition(instance, State.EXITED)
                self.printer.system(f"{name} stays down (exited); the rest keeps running")
            case _:
                self.transition(instance, State.EXITED if own_exit else State.STOPPED)
        if isinstance(fate, Remove):
            self.retire(instance)
        nothing_left = not any(i.state in ALIVE for i in self._instances.values())
        if self.status is None and own_exit and nothing_left:
            self.begin_shutdown(1 if self.crashed else 0, "no instance is left running")

    def _on_ready(self, instance: Instance) -> None:
        self.transition(instance, State.RUNNING)
        recovered = None
        if instance.down_since is not None:
            recovered = self.clock.now() - instance.down_since
            instance.recoveries.append(recovered)
            instance.down_since = None
            self.printer.system(
                f"{instance.label} ready: recovered in {format_duration(recovered)}"
            )
        else:
            how = self.options.readiness(instance.spec.type_name)
            if how.kind == "port":
                port = instance.spec.port
                self.printer.system(f"{instance.label} ready: port {port} accepts connections")
            elif how.kind == "log":
                self.printer.system(f"{instance.label} ready: its output matched /{how.pattern}/")
        self.notices.post(
            "ready", instance=instance.spec.name, incarnation=instance.count, recovered=recovered
        )
        for held in [i for i in self._instances.values() if isinstance(i.fate, Held)]:
            if self.status is None:
                self.start_when_free(held)

    def _on_signal(self, signum: int) -> None:
        name = tree.signal_name(signum)
        if self.status is None:
            self.begin_shutdown(128 + signum, f"{name} received", hint=True)
            return
        self._signals_seen += 1
        if self._signals_seen == 1 and signum != signal.SIGHUP:
            self.printer.system(f"second {name}: killing all processes now (SIGKILL)")
            self._kill_now.set()

    def begin_shutdown(self, status: int, reason: str, hint: bool = False) -> None:
        if self.status is not None:
            return
        self.status = status
        again = " (press Ctrl-C again to kill them at once)" if hint else ""
        self.printer.system(f"{reason}: stopping all processes{again}")
        self.notices.post("shutdown", reason=reason, status=status)
        for instance in self._instances.values():
            if instance.state in (State.STARTING, State.RUNNING):
                instance.cause = instance.cause or Cause.SHUTDOWN
                self.stop(instance)
            elif instance.state is State.BACKOFF:
                _cancel(instance.waiting)
                self.transition(instance, State.STOPPED)

    def stop(self, instance: Instance, sig: int | None = None) -> None:
        """Run the stop sequence and the scratch wipe as a task, which reports back with a
        ``Stopped`` event. An instance whose leader already exited gets the same sequence
        for what it left behind."""
        self.transition(instance, State.STOPPING)
        _cancel(instance.waiting)
        self.readiness.disarm(instance.spec.name)
        incarnation = instance.incarnation
        assert incarnation is not None
        name, number = instance.spec.name, instance.count
        type_name = instance.spec.type_name
        signum = self.options.for_type(type_name).stop_signal if sig is None else sig
        timeout = self.options.stop_timeout_of(type_name)

        async def stop() -> None:
            report, scratch = await self._spawner.take_down(
                incarnation, signum, timeout, self._kill_now
            )
            self._queue.put_nowait(Stopped(name, number, report, scratch))

        task = asyncio.create_task(stop())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def cancel_backoff(self, instance: Instance) -> None:
        """A BACKOFF instance's wait is over early: it is started or stopped instead."""
        _cancel(instance.waiting)

    def _finish(
        self, instance: Instance, report: StopReport, scratch: Inventory, own_exit: bool
    ) -> None:
        incarnation = instance.incarnation
        assert incarnation is not None and instance.cause is not None
        ended = instance.record_end(report.memory, scratch, own_exit)
        for line in end_lines(ended, report, self._spawner.keeps_scratch):
            self.printer.system(line)
        memory = ended.memory.best if ended.memory is not None else None
        self.notices.post(
            "ended",
            instance=instance.spec.name,
            incarnation=instance.count,
            cause=ended.cause.value,
            how=ended.how,
            uptime=ended.uptime,
            destroyed={"files": scratch.files, "bytes": scratch.bytes, "memory": memory},
        )


def _cancel(waiting: Cancellable | None) -> None:
    if waiting is not None:
        waiting.cancel()
