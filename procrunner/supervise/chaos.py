"""The chaos scheduler: kill running instances on a schedule, reproducibly.

The schedule is a ``ChaosSpec`` (``config.chaos_spec`` parses ``--chaos``). The planner is a
pure function of the seed and the sequence of running sets it is shown: the same seed and the
same formation give the same (time, victim, signal) sequence. The supervisor owns the victim's
fate; the planner only proposes.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from typing import TYPE_CHECKING

from procrunner.config.chaos_spec import ChaosSpec

if TYPE_CHECKING:
    from asyncio import Task


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
