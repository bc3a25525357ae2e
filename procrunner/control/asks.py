"""What a client of the control socket can ask the running formation: one frozen value per
command, made by ``requests.parse_request`` and carried out by ``ops``."""

from __future__ import annotations

from dataclasses import dataclass


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
