"""A fake world for the real supervisor: lives whose exit, stop and readiness the script
controls, a clock whose timers fire only when the script advances it, and a recorder of
what the supervisor said. No process is spawned and nothing sleeps."""

from __future__ import annotations

import asyncio
import heapq
import itertools
import signal
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

from procrunner.config.formation import InstanceMaker
from procrunner.config.procfile import ProcessType
from procrunner.config.settings import Health, Readiness, RunOptions
from procrunner.control.asks import Command
from procrunner.control.ops import ask
from procrunner.scratch.wipe import Inventory
from procrunner.supervise.events import Ready, SignalReceived, Unhealthy
from procrunner.supervise.facts import Fact, Facts, StateChanged
from procrunner.supervise.handle import Incoming
from procrunner.supervise.incarnation import ExitStatus, StopReport
from procrunner.supervise.ledger import Ledger
from procrunner.supervise.memory import Key
from procrunner.supervise.messages import Narration
from procrunner.supervise.probes import Site
from procrunner.supervise.spawner import Life
from procrunner.supervise.supervisor import Supervisor

SETTLE_ROUNDS = 5  # loop turns with an empty queue that count as quiet


class FakeTimer:
    def __init__(self, callback: Callable[[], None]) -> None:
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class FakeClock:
    """Virtual monotonic time: a timer fires when ``advance`` passes its deadline."""

    def __init__(self) -> None:
        self._now = 1000.0
        self._timers: list[tuple[float, int, FakeTimer]] = []
        self._order = itertools.count()

    def now(self) -> float:
        return self._now

    def call_later(self, delay: float, callback: Callable[[], None]) -> FakeTimer:
        timer = FakeTimer(callback)
        heapq.heappush(self._timers, (self._now + delay, next(self._order), timer))
        return timer

    async def sleep(self, delay: float) -> None:
        woken: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.call_later(delay, lambda: woken.done() or woken.set_result(None))
        await woken

    def due(self, until: float) -> FakeTimer | None:
        """The next timer due by ``until`` (time moves to it), or None."""
        while self._timers and self._timers[0][0] <= until:
            when, _, timer = heapq.heappop(self._timers)
            self._now = max(self._now, when)
            if not timer.cancelled:
                return timer
        self._now = max(self._now, until)
        return None


class FakeLife:
    """One incarnation: exits when the script says, and its tree goes when the script says
    (at once if its leader had already exited, or when the stop escalates to SIGKILL)."""

    def __init__(self, label: str, pid: int, clock: FakeClock) -> None:
        loop = asyncio.get_running_loop()
        self.label = label
        self.pid = pid
        self.scratch = Path("/scratch") / label
        self.env: dict[str, str] = {}
        self.cwd = Path("/app")
        self.started_at = 0.0
        self.terminal = None
        self.last_memory = None
        self.containment = "fake"
        self.exited: asyncio.Future[ExitStatus] = loop.create_future()
        self.gone: asyncio.Future[None] = loop.create_future()
        self.stop_signal: int | None = None
        self.stop_command: str | None = None
        self.signals: list[int] = []
        self._clock = clock
        self._started = clock.now()
        self.ended: float | None = None

    @property
    def uptime(self) -> float:
        return (self.ended or self._clock.now()) - self._started

    @property
    def status(self) -> ExitStatus | None:
        return self.exited.result() if self.exited.done() else None

    def send_signal(self, sig: int) -> None:
        self.signals.append(sig)

    def exit(self, code: int | None = None, sig: int | None = None) -> None:
        self.ended = self._clock.now()
        self.exited.set_result(ExitStatus(code, sig))


class FakeSpawner:
    keeps_scratch = False

    def __init__(self, clock: FakeClock) -> None:
        self._clock = clock
        self._pids = itertools.count(100)
        self.lives: dict[str, FakeLife] = {}  # by label: web.1#2
        self.failing: set[str] = set()  # instance names whose spawns fail

    def spawn(
        self, spec: Any, label: str, number: int, tty: bool, claims_port: bool
    ) -> FakeLife:
        if spec.name in self.failing:
            raise OSError(24, "Too many open files")
        life = self.lives[label] = FakeLife(label, next(self._pids), self._clock)
        return life

    async def take_down(
        self, life: Life, sig: int, timeout: float, escalate: asyncio.Event,
        stop_command: str | None = None,
    ) -> tuple[StopReport, Inventory]:
        assert isinstance(life, FakeLife)
        life.stop_signal = sig
        life.stop_command = stop_command
        killed = False
        signalled = not life.exited.done()  # an exited leader left nothing behind
        if signalled:
            escalated = asyncio.ensure_future(escalate.wait())
            await asyncio.wait([life.gone, escalated], return_when=asyncio.FIRST_COMPLETED)
            escalated.cancel()
            killed = not life.gone.done()
            life.exit(sig=signal.SIGKILL if killed else sig)
        report = StopReport(signalled, killed, signum=sig, timeout=timeout, escalated=killed)
        return report, Inventory()

    async def measure(self, lives: Mapping[Key, Life]) -> tuple[()]:
        return ()


class FakeReadiness:
    """Armed checks never pass on their own: the script says when a life is ready, or
    unhealthy."""

    def __init__(self) -> None:
        self.armed: list[tuple[str, int, str]] = []
        self.health: list[tuple[str, int, FakeTimer]] = []

    def arm(self, readiness: Readiness, name: str, number: int, site: Site) -> None:
        self.armed.append((name, number, readiness.kind))

    def watch_health(self, health: Health, name: str, number: int, site: Site) -> FakeTimer:
        check = FakeTimer(lambda: None)
        self.health.append((name, number, check))
        return check

    def disarm(self, name: str) -> None:
        pass


class World:
    """The real supervisor among fakes, and the verbs a script uses."""

    def __init__(self, counts: Mapping[str, int], options: RunOptions) -> None:
        types = [ProcessType(name, f"run {name}", n) for n, name in enumerate(counts, 1)]
        maker = InstanceMaker(types, 5000)
        plan = tuple(maker(t, n) for t, count in counts.items() for n in range(1, count + 1))
        self.clock = FakeClock()
        self.spawner = FakeSpawner(self.clock)
        self.readiness = FakeReadiness()
        self.queue: asyncio.Queue[Incoming] = asyncio.Queue()
        self.facts: list[Fact] = []
        self.lines: list[str] = []  # what the printer would say
        self.chatter: list[bool] = []  # for each line: would --quiet drop it
        self.narration = Narration()
        self.trail: list[tuple[str, str]] = []
        self.ledger = Ledger()  # what the summary reads
        stream = Facts((self._saw, self.ledger.follow))
        self.supervisor = Supervisor(
            plan, maker, options, self.spawner, self.clock, self.readiness, self.queue, stream
        )
        self.running: asyncio.Task[int] | None = None

    def _saw(self, fact: Fact) -> None:
        self.facts.append(fact)
        if isinstance(fact, StateChanged):
            self.trail.append((f"{fact.instance}#{fact.number}", fact.state.value))
        for line in self.narration.lines(fact):
            name, text = line.name, line.text
            self.lines.append(text if name == "system" else f"{name}: {text}")
            self.chatter.append(line.chatter)

    def states(self, name: str) -> list[str]:
        """The states ``name`` went through, each with its life: ``web.1#1 running``."""
        return [f"{label} {state}" for label, state in self.trail if label.startswith(name + "#")]

    def state(self, name: str) -> str:
        return self.supervisor.instances[name].state.value

    def life(self, label: str) -> FakeLife:
        return self.spawner.lives[label]

    async def begin(self) -> None:
        self.running = asyncio.create_task(self.supervisor.run())
        await self.settle()

    async def settle(self) -> None:
        """Let the supervisor handle everything the last step caused."""
        quiet = 0
        while quiet < SETTLE_ROUNDS:
            await asyncio.sleep(0)
            ended = self.running is not None and self.running.done()
            quiet = quiet + 1 if self.queue.empty() or ended else 0

    async def advance(self, seconds: float) -> None:
        """Move virtual time on, handling each timer's consequences before the next fires."""
        until = self.clock.now() + seconds
        while (timer := self.clock.due(until)) is not None:
            timer.callback()
            await self.settle()

    async def ready(self, label: str) -> None:
        name, _, number = label.partition("#")
        self.queue.put_nowait(Ready(name, int(number)))
        await self.settle()

    async def unhealthy(self, label: str) -> None:
        """Its liveness check has failed too often."""
        name, _, number = label.partition("#")
        self.queue.put_nowait(Unhealthy(name, int(number), "timed out after 2s", 3))
        await self.settle()

    async def exit(self, label: str, code: int) -> None:
        self.life(label).exit(code)
        await self.settle()

    async def gone(self, label: str) -> None:
        """A life being stopped obeys: its tree is gone."""
        self.life(label).gone.set_result(None)
        await self.settle()

    async def ask(self, command: Command) -> Any:
        """A control request, answered in the loop's order; its result or its error."""
        reply: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.queue.put_nowait(ask(command, reply))
        await self.settle()
        exception = reply.exception()
        return exception if exception is not None else reply.result()

    async def signal(self, signum: int) -> None:
        self.queue.put_nowait(SignalReceived(signum))
        await self.settle()

    async def finish(self) -> int:
        """The run's end: whatever is still being stopped obeys; the exit status."""
        assert self.running is not None
        for life in self.spawner.lives.values():
            if life.stop_signal is not None and not life.gone.done():
                life.gone.set_result(None)
        await self.settle()
        return await asyncio.wait_for(self.running, 5)


def play(
    script: Callable[[World], Awaitable[None]], counts: Mapping[str, int], options: RunOptions
) -> World:
    """Run ``script`` against a world of ``counts`` instances per type."""

    async def main() -> World:
        world = World(counts, options)
        await world.begin()
        await script(world)
        return world

    return asyncio.run(asyncio.wait_for(main(), 10))
