"""What clients put on the supervisor's one queue, and the instance states and exit causes.

Signal handlers, timers, the output sink and instance watchers only ever put one of these
frozen values on the queue; the supervisor alone acts on them.
"""

from __future__ import annotations

from dataclasses import dataclass

from procrunner.instance import ExitStatus, StopReport
from procrunner.memory import Memory
from procrunner.states import Cause
from procrunner.wipe import Inventory


@dataclass(frozen=True)
class LeaderExited:
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
    instance: str
    number: int


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
    signum: int


@dataclass(frozen=True)
class RunForElapsed:
    pass


@dataclass(frozen=True)
class OutputBroken:
    pass


Event = (
    LeaderExited
    | Stopped
    | MemorySampled
    | Ready
    | Respawn
    | ChaosTick
    | SignalReceived
    | RunForElapsed
    | OutputBroken
)


@dataclass(frozen=True)
class EndedIncarnation:
    """What the supervisor keeps of an incarnation once it has ended."""

    label: str
    pid: int
    started_at: float
    uptime: float
    cause: Cause
    how: str
    scratch: Inventory
    memory: Memory | None
