"""What clients put on the supervisor's one queue, and the instance states and exit causes.

Signal handlers, timers, the output sink and instance watchers only ever put one of these
frozen values on the queue; the supervisor alone acts on them.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

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


@dataclass(frozen=True)
class PsRequest:
    """The instance table, as ``procrunner ps`` shows it."""


@dataclass(frozen=True)
class ScaleRequest:
    """Set these types' instance counts."""

    counts: tuple[tuple[str, int], ...]


@dataclass(frozen=True)
class RestartRequest:
    """Restart these instances gracefully."""

    targets: tuple[str, ...]  # instance names (web.1) or type names (web)


@dataclass(frozen=True)
class StopRequest:
    """Stop these instances, or the whole formation."""

    targets: tuple[str, ...]  # none: the whole formation


@dataclass(frozen=True)
class KillRequest:
    """Send a signal to these instances' process groups."""

    targets: tuple[str, ...]
    signum: int


@dataclass(frozen=True)
class ChaosRequest:
    """Turn the chaos schedule on or off, or kill one instance now."""

    action: str  # on, off or now
    spec: str | None = None  # for on
    target: str | None = None  # for now: an instance, else one chosen at random


@dataclass(frozen=True)
class AttachRequest:
    """``procrunner connect``: the terminal of an instance of a ``--tty`` type."""

    target: str
    rows: int = 0  # the client's window size, given to the PTY
    columns: int = 0


Command = (
    AttachRequest
    | PsRequest
    | ScaleRequest
    | RestartRequest
    | StopRequest
    | KillRequest
    | ChaosRequest
)


@dataclass(frozen=True)
class ControlRequest:
    """A command from the control socket; the supervisor answers through ``reply`` with a
    JSON-ready result, or a ``ProcrunnerError`` saying why it cannot."""

    command: Command
    reply: asyncio.Future[Any]


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
    | ControlRequest
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
