"""The events on the supervisor's one queue: what happened to a life, timers, signals.

Signal handlers, timers, the output sink, lives, the memory sampler, chaos and watch only ever
put one of these frozen values on the queue; the supervisor alone acts on them. Clients'
requests are another type (``handle.Ask``).
"""

from __future__ import annotations

from dataclasses import dataclass

from procrunner.scratch.wipe import Inventory
from procrunner.supervise.incarnation import ExitStatus, StopReport
from procrunner.supervise.memory import Memory
from procrunner.supervise.states import Cause


@dataclass(frozen=True)
class LeaderExited:
    """An incarnation's leader process exited (its group may live on)."""

    instance: str
    number: int
    status: ExitStatus


@dataclass(frozen=True)
class Stopped:
    """An incarnation's tree is gone and its scratch directory inventoried and wiped."""

    instance: str
    number: int
    report: StopReport
    scratch: Inventory


@dataclass(frozen=True)
class MemorySampled:
    """The latest memory of each live incarnation: (instance, incarnation number, memory)."""

    samples: tuple[tuple[str, int, Memory], ...]


@dataclass(frozen=True)
class Ready:
    """An incarnation passed its readiness check: it counts as RUNNING."""

    instance: str
    number: int


@dataclass(frozen=True)
class Unhealthy:
    """A RUNNING incarnation failed its liveness check ``failures`` times in a row."""

    instance: str
    number: int
    problem: str  # what the last check found
    failures: int


@dataclass(frozen=True)
class Respawn:
    """A backoff delay is over: start the instance's next incarnation."""

    instance: str
    number: int


@dataclass(frozen=True)
class ChaosTick:
    """The chaos schedule says: kill one running instance now."""


@dataclass(frozen=True)
class SignalReceived:
    """procrunner itself got a stop signal (SIGINT, SIGTERM or SIGHUP)."""

    signum: int


@dataclass(frozen=True)
class RunForElapsed:
    """``--run-for`` ran out: the formation stops gracefully."""


@dataclass(frozen=True)
class OutputBroken:
    """procrunner's own stdout is gone: the formation stops."""


@dataclass(frozen=True)
class WatchTriggered:
    """Files changed under the app root: restart these types. ``failure``: the watcher
    failed (changes may have been missed), so every watched type is named."""

    types: tuple[str, ...]
    files: tuple[str, ...]
    failure: str | None = None


Event = (
    LeaderExited
    | Stopped
    | MemorySampled
    | Ready
    | Unhealthy
    | Respawn
    | ChaosTick
    | SignalReceived
    | RunForElapsed
    | OutputBroken
    | WatchTriggered
)


@dataclass(frozen=True)
class EndedIncarnation:
    """What the supervisor keeps of an incarnation once it has ended."""

    label: str
    number: int
    pid: int
    started_at: float
    uptime: float
    cause: Cause
    how: str
    scratch: Inventory
    memory: Memory | None
