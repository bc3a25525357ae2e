"""Restart rules as a user gives them: ``--restart`` policies (per type too), ``--backoff``
and ``--give-up``, parsed and checked. ``supervise.restart`` decides with them."""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from procrunner.config.durations import parse_duration
from procrunner.config.quoting import quote
from procrunner.errors import ProcrunnerError


class Policy(enum.Enum):
    STOP_ALL = "stop-all"
    NEVER = "never"
    ON_FAILURE = "on-failure"
    ALWAYS = "always"


@dataclass(frozen=True)
class GiveUp:
    """``--give-up``: stop restarting after ``deaths`` deaths within ``window`` seconds."""

    deaths: int
    window: float


@dataclass(frozen=True)
class Backoff:
    """Restart delays: ``first``, times ``factor`` per death in a streak, at most ``cap``; the
    streak resets once an incarnation has been up ``reset_after`` seconds."""

    first: float = 0.5
    factor: float = 2.0
    cap: float = 30.0
    reset_after: float = 10.0


@dataclass(frozen=True)
class RestartRules:
    """Per-type policies (the default for unnamed types), backoff and the give-up rule."""

    default: Policy = Policy.STOP_ALL
    per_type: Mapping[str, Policy] = field(default_factory=dict)
    backoff: Backoff = field(default_factory=Backoff)
    give_up: GiveUp | None = None

    def policy(self, type_name: str) -> Policy:
        return self.per_type.get(type_name, self.default)


def parse_policies(text: str, type_names: Sequence[str], source: str = "--restart") -> RestartRules:
    """``always`` for every type, or ``web=always,worker=on-failure``."""
    text = text.strip()
    if "=" not in text:
        return RestartRules(default=_policy(text, source))
    per_type: dict[str, Policy] = {}
    for entry in text.split(","):
        name, _, value = (part.strip() for part in entry.partition("="))
        if name not in type_names:
            known = ", ".join(type_names)
            raise ProcrunnerError(f"unknown process type {quote(name)} (the Procfile has: {known})",
                                  source)
        per_type[name] = _policy(value, source)
    return RestartRules(per_type=per_type)


def _policy(value: str, source: str) -> Policy:
    try:
        return Policy(value)
    except ValueError:
        choices = ", ".join(p.value for p in Policy)
        raise ProcrunnerError(f"unknown restart policy {quote(value)} (choose from {choices})",
                              source) from None


def parse_backoff(text: str, source: str = "--backoff") -> Backoff:
    """``first=0.5s,max=30s,reset=10s`` (any subset)."""
    values = {"first": Backoff.first, "max": Backoff.cap, "reset": Backoff.reset_after}
    for entry in text.split(","):
        key, eq, value = (part.strip() for part in entry.partition("="))
        if not eq or key not in values:
            raise ProcrunnerError(
                f"expected first=, max= or reset=DURATION, got {quote(entry)}", source
            )
        values[key] = parse_duration(value, source)
    return Backoff(first=values["first"], cap=values["max"], reset_after=values["reset"])


def parse_give_up(text: str, source: str = "--give-up") -> GiveUp:
    """``5/60s``: five counted deaths within a minute."""
    count, slash, window = text.partition("/")
    if not slash or not count.strip().isdigit() or int(count) < 1:
        raise ProcrunnerError(f"expected N/DURATION such as 5/60s, got {quote(text)}", source)
    return GiveUp(int(count), parse_duration(window, source))
