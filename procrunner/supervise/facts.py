"""What happened in the formation, as the supervisor publishes it: one typed stream of frozen
facts, written once. The text lines (``messages``), the notices for ``procrunner events`` and
the dashboard (``control.notices``), the router and the summary's ledger all subscribe; none
of them is told twice, and the supervisor knows none of them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from procrunner.config.formation import InstanceSpec
from procrunner.config.settings import Readiness
from procrunner.supervise.events import EndedIncarnation
from procrunner.supervise.incarnation import StopReport
from procrunner.supervise.restart import Fatal
from procrunner.supervise.states import Cause, State


@dataclass(frozen=True)
class Added:
    """Slots of the formation: the planned ones at the start, then each added by scaling."""

    specs: tuple[InstanceSpec, ...]


@dataclass(frozen=True)
class NothingToRun:
    """The formation has no instances."""


@dataclass(frozen=True)
class StateChanged:
    instance: str
    type_name: str
    number: int
    state: State
    port: int


@dataclass(frozen=True)
class Spawned:
    instance: str
    number: int
    pid: int
    port: int
    scratch: str
    replacing: EndedIncarnation | None  # the life it follows, if any

    @property
    def label(self) -> str:
        return f"{self.instance}#{self.number}"


@dataclass(frozen=True)
class FailedToStart:
    instance: str
    number: int
    error: str

    @property
    def label(self) -> str:
        return f"{self.instance}#{self.number}"


@dataclass(frozen=True)
class HeldBack:
    """Waits for the types it depends on (``depends_on``): ``waits for migrate to
    complete``."""

    instance: str
    reason: str


@dataclass(frozen=True)
class DependencyFailed:
    """A type it depends on failed and stays down: it stays held, and says why."""

    instance: str
    reason: str


@dataclass(frozen=True)
class WentUnhealthy:
    """Its liveness check failed ``failures`` times in a row: it is restarted."""

    label: str
    problem: str
    failures: int


@dataclass(frozen=True)
class Completed:
    """A one-shot step (``once``) or the release phase exited 0; it stays down."""

    instance: str
    release: bool


@dataclass(frozen=True)
class ReleaseFailed:
    """The release phase exited non-zero: the formation never starts; the run ends with
    ``status``."""

    label: str
    how: str
    status: int


@dataclass(frozen=True)
class ExitedOnItsOwn:
    label: str
    how: str
    cause: Cause
    policy: str


@dataclass(frozen=True)
class Ended:
    """A life is over: its tree stopped, its scratch inventoried (and wiped unless kept)."""

    instance: str
    ended: EndedIncarnation
    report: StopReport
    kept: bool
    left_behind: bool  # it exited on its own but its tree lived on


@dataclass(frozen=True)
class RestartPlanned:
    instance: str
    cause: Cause
    delay: float


@dataclass(frozen=True)
class GaveUp:
    instance: str
    fatal: Fatal


@dataclass(frozen=True)
class StaysDown:
    instance: str


@dataclass(frozen=True)
class BecameReady:
    instance: str
    number: int
    port: int
    readiness: Readiness
    recovered: float | None  # seconds from the end of the life before, after a restart

    @property
    def label(self) -> str:
        return f"{self.instance}#{self.number}"


@dataclass(frozen=True)
class Removed:
    instance: str


@dataclass(frozen=True)
class ScaledType:
    type_name: str
    before: int
    after: int


@dataclass(frozen=True)
class Reloading:
    """``--watch``: files changed, these types restart."""

    types: tuple[str, ...]
    files: tuple[str, ...]
    failure: str | None


@dataclass(frozen=True)
class ShutdownBegan:
    reason: str
    status: int
    hint: bool  # the first Ctrl-C: say that a second one kills at once


@dataclass(frozen=True)
class KillingNow:
    """A second stop signal: SIGKILL to everything."""

    signal_name: str


@dataclass(frozen=True)
class ChaosOn:
    description: str


@dataclass(frozen=True)
class ChaosOff:
    pass


@dataclass(frozen=True)
class ChaosKilled:
    instance: str
    number: int
    uptime: float
    signal_name: str


@dataclass(frozen=True)
class ChaosMissed:
    """A tick of the schedule found no running instance to kill."""


@dataclass(frozen=True)
class ChaosDone:
    kills: int


Fact = (
    Added
    | NothingToRun
    | StateChanged
    | Spawned
    | FailedToStart
    | HeldBack
    | DependencyFailed
    | WentUnhealthy
    | Completed
    | ReleaseFailed
    | ExitedOnItsOwn
    | Ended
    | RestartPlanned
    | GaveUp
    | StaysDown
    | BecameReady
    | Removed
    | ScaledType
    | Reloading
    | ShutdownBegan
    | KillingNow
    | ChaosOn
    | ChaosOff
    | ChaosKilled
    | ChaosMissed
    | ChaosDone
)
Subscriber = Callable[[Fact], None]


class Facts:
    """The stream: subscribers are called in order, at once, in the supervisor's turn."""

    def __init__(self, subscribers: tuple[Subscriber, ...] = ()) -> None:
        self._subscribers = list(subscribers)

    def subscribe(self, subscriber: Subscriber) -> None:
        self._subscribers.append(subscriber)

    def publish(self, fact: Fact) -> None:
        for subscriber in self._subscribers:
            subscriber(fact)
