"""The chaos scheduler: kill running instances on a schedule, reproducibly.

``--chaos every=10s`` or ``--chaos rate=6/min,types=web+worker,signal=KILL,seed=42``, with
``after=DURATION`` (grace at start) and ``max=N``. The planner is a pure function of the
seed and the sequence of running sets it is shown: the same seed and the same formation give
the same (time, victim, signal) sequence. The supervisor owns the victim's fate; the planner
only proposes.
"""

from __future__ import annotations

import os
import random
import signal
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from procrunner.config.durations import format_duration, parse_duration

if TYPE_CHECKING:
    from asyncio import Task
from procrunner.errors import ProcrunnerError

SIGNALS = {"KILL": signal.SIGKILL, "TERM": signal.SIGTERM}
SOURCE = "--chaos"


@dataclass(frozen=True)
class ChaosSpec:
    """A parsed ``--chaos`` schedule: when, how often, which types, which signal, which seed."""

    every: float | None = None
    rate_per_min: float | None = None
    after: float = 0.0
    max_kills: int | None = None
    types: tuple[str, ...] | None = None
    signal: int = signal.SIGKILL
    seed: int | None = None

    def describe(self, seed: int) -> str:
        when = (
            f"every {format_duration(self.every)}"
            if self.every is not None
            else f"{self.rate_per_min:g} kills a minute at random (Poisson)"
        )
        among = "+".join(self.types) if self.types else "all types"
        name = "SIGKILL" if self.signal == signal.SIGKILL else "SIGTERM then SIGKILL"
        extra = f", after {format_duration(self.after)}" if self.after else ""
        extra += f", at most {self.max_kills}" if self.max_kills is not None else ""
        return f"chaos on: {when} among {among} with {name}{extra}; seed {seed}"


def parse_chaos(text: str, type_names: Sequence[str]) -> ChaosSpec:
    fields: dict[str, str] = {}
    for entry in text.split(","):
        key, eq, value = (part.strip() for part in entry.partition("="))
        if not eq or not value:
            raise ProcrunnerError(f"expected KEY=VALUE, got {entry.strip()!r}", SOURCE)
        if key in fields:
            raise ProcrunnerError(f"{key!r} given twice", SOURCE)
        fields[key] = value
    unknown = set(fields) - {"every", "rate", "after", "max", "types", "signal", "seed"}
    if unknown:
        raise ProcrunnerError(f"unknown key {sorted(unknown)[0]!r}", SOURCE)
    if ("every" in fields) == ("rate" in fields):
        raise ProcrunnerError("give exactly one of every=DURATION or rate=N/min", SOURCE)
    every = parse_duration(fields["every"], SOURCE) if "every" in fields else None
    if every is not None and every <= 0:
        raise ProcrunnerError("every= must be more than 0", SOURCE)
    return ChaosSpec(
        every=every,
        rate_per_min=_rate(fields["rate"]) if "rate" in fields else None,
        after=parse_duration(fields.get("after", "0"), SOURCE),
        max_kills=_count(fields["max"], "max") if "max" in fields else None,
        types=_types(fields["types"], type_names) if "types" in fields else None,
        signal=_signal(fields.get("signal", "KILL")),
        seed=_count(fields["seed"], "seed") if "seed" in fields else None,
    )


def _rate(value: str) -> float:
    number, slash, unit = value.partition("/")
    try:
        rate = float(number)
    except ValueError:
        rate = -1.0
    if slash and unit.strip() == "min" and 0 < rate < 10_000:
        return rate
    raise ProcrunnerError(f"rate must look like 6/min, got {value!r}", SOURCE)


def _count(value: str, key: str) -> int:
    if not value.isdigit():
        raise ProcrunnerError(f"{key} must be a whole number, got {value!r}", SOURCE)
    return int(value)


def _types(value: str, type_names: Sequence[str]) -> tuple[str, ...]:
    chosen = tuple(t.strip() for t in value.split("+"))
    for name in chosen:
        if name not in type_names:
            raise ProcrunnerError(f"unknown process type {name!r} in types=", SOURCE)
    return chosen


def _signal(value: str) -> int:
    name = value.upper().removeprefix("SIG")
    if name not in SIGNALS:
        raise ProcrunnerError(f"signal must be KILL or TERM, got {value!r}", SOURCE)
    return SIGNALS[name]


class ChaosPlanner:
    """Seeded randomness for the schedule and the victims, in one deterministic stream."""

    def __init__(self, spec: ChaosSpec, seed: int | None = None) -> None:
        self.spec = spec
        self.seed = seed if seed is not None else (spec.seed if spec.seed is not None
                                                   else int.from_bytes(os.urandom(4)) >> 1)
        self._rng = random.Random(self.seed)
        self.next_at: float | None = None  # wall-clock time of the next kill, when known

    def gaps(self) -> Iterator[float]:
        """Seconds to wait before each attempt (the first includes the ``after`` grace).
        Endless: ``max`` counts real kills, which only the supervisor knows."""
        wait = self.spec.after
        while True:
            if self.spec.every is not None:
                wait += self.spec.every
            else:
                assert self.spec.rate_per_min is not None
                wait += self._rng.expovariate(self.spec.rate_per_min / 60.0)
            yield wait
            wait = 0.0

    async def run(
        self, tick: Callable[[], None], sleep: Callable[[float], Awaitable[None]]
    ) -> None:
        """Call ``tick`` at each time of the schedule (the supervisor then picks a victim)."""
        for gap in self.gaps():
            self.next_at = time.time() + gap
            await sleep(gap)
            tick()

    def choose(self, running: Sequence[str], type_of: dict[str, str]) -> str | None:
        """A victim, uniformly among the running instances of the chosen types."""
        candidates = sorted(
            name for name in running if self.spec.types is None or type_of[name] in self.spec.types
        )
        return self._rng.choice(candidates) if candidates else None


class ChaosSchedule:
    """Whether chaos is on, its schedule task and its kill count. The supervisor turns it on
    (at start, or when asked through the control socket) and counts the kills it makes."""

    def __init__(self) -> None:
        self.planner: ChaosPlanner | None = None
        self._task: Task[None] | None = None
        self.kills = 0

    @property
    def on(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self, spec: ChaosSpec, run: Callable[[ChaosPlanner], Task[None]]) -> ChaosPlanner:
        """A new planner for ``spec``; ``run`` starts its task (in the supervisor's group)."""
        self.stop()
        self.planner = ChaosPlanner(spec)
        self.kills = 0
        self._task = run(self.planner)
        return self.planner

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None
        if self.planner is not None:
            self.planner.next_at = None

    def count_kill(self) -> bool:
        """One more kill; True when it was the last that ``max=`` allows (chaos is now off)."""
        self.kills += 1
        limit = self.planner.spec.max_kills if self.planner is not None else None
        if limit is not None and self.kills >= limit:
            self.stop()
            return True
        return False
