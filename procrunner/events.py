"""What clients put on the supervisor's one queue, and the instance states and exit causes.

Signal handlers, timers, the output sink and instance watchers only ever put one of these
frozen values on the queue; the supervisor alone acts on them.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from procrunner.instance import ExitStatus, StopReport
from procrunner.memory import Memory
from procrunner.wipe import Inventory


class State(enum.Enum):
    """supervisord's names; shown in lowercase."""

    STOPPED = "stopped"
    STARTING = "starting"
    RUNNING = "running"
    STOPPING = "stopping"
    EXITED = "exited"


ALLOWED: dict[State, frozenset[State]] = {
    State.STOPPED: frozenset({State.STARTING}),
    State.STARTING: frozenset({State.RUNNING, State.STOPPING}),
    State.RUNNING: frozenset({State.STOPPING}),
    State.STOPPING: frozenset({State.STOPPED, State.EXITED}),
    State.EXITED: frozenset({State.STARTING}),
}


class IllegalTransition(RuntimeError):
    """A bug: the supervisor tried an arrow that the table does not allow."""


def check_transition(name: str, old: State, new: State) -> None:
    if new not in ALLOWED[old]:
        raise IllegalTransition(f"{name}: {old.value} -> {new.value} is not allowed")


class Cause(enum.Enum):
    """Why an incarnation ended, one list for the whole program. Only crash and exited are
    the instance's own doing, and only they count toward backoff and giving up."""

    CRASH = "crash"
    EXITED = "exited"
    CHAOS = "chaos"
    WATCH = "watch"
    REQUESTED = "requested"
    SCALED = "scaled"
    SHUTDOWN = "shutdown"


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
class SignalReceived:
    signum: int


@dataclass(frozen=True)
class RunForElapsed:
    pass


@dataclass(frozen=True)
class OutputBroken:
    pass


Event = (
    LeaderExited | Stopped | MemorySampled | Ready | SignalReceived | RunForElapsed | OutputBroken
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
