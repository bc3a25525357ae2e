"""The restart decision: a pure function of (policy, exit cause, recent deaths, now).

Policies: ``stop-all`` (foreman's default: an instance ending stops the formation),
``never`` (it stays down), ``on-failure`` (restart after a crash), ``always`` (restart after
any exit). A chaos or watch kill always restarts, at once and outside the backoff. Restarts
after crashes (and clean exits under ``always``) back off exponentially; the streak resets once
an incarnation has been up for ``reset_after``. ``give_up`` (N deaths within a window) turns
a crash loop into FATAL; without it procrunner never gives up, as Heroku and Kubernetes.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from procrunner.config.durations import parse_duration
from procrunner.errors import ProcrunnerError
from procrunner.supervise.states import Cause


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


@dataclass(frozen=True)
class Restart:
    """Start the next incarnation after ``delay`` seconds."""

    delay: float


@dataclass(frozen=True)
class Stay:
    """The instance stays down (EXITED); the formation goes on."""


@dataclass(frozen=True)
class StopAll:
    """foreman's rule: the formation is stopped."""


@dataclass(frozen=True)
class Fatal:
    """The give-up rule tripped: the instance goes FATAL and stays down."""

    deaths: int
    window: float


Decision = Restart | Stay | StopAll | Fatal
COUNTED = frozenset({Cause.CRASH, Cause.EXITED})


def decide(
    policy: Policy,
    cause: Cause,
    streak: int,
    deaths: Sequence[float],
    now: float,
    rules: RestartRules,
) -> Decision:
    """What to do after an incarnation ended with ``cause``.

    ``streak`` counts the counted deaths in a row, this one included (reset by a long
    enough run); ``deaths`` are the monotonic times of counted deaths, this one included.
    """
    if cause in (Cause.CHAOS, Cause.WATCH):
        return Restart(0.0)
    if cause not in COUNTED:
        return Stay()
    if policy is Policy.STOP_ALL:
        return StopAll()
    if policy is Policy.NEVER or (policy is Policy.ON_FAILURE and cause is Cause.EXITED):
        return Stay()
    limit = rules.give_up
    if limit is not None and sum(1 for t in deaths if now - t <= limit.window) >= limit.deaths:
        return Fatal(limit.deaths, limit.window)
    return Restart(backoff_delay(streak, rules.backoff))


def backoff_delay(streak: int, backoff: Backoff) -> float:
    """0 for the first death in a streak, then ``first``, doubling, up to ``cap``."""
    if streak <= 1:
        return 0.0
    return min(backoff.first * backoff.factor ** (streak - 2), backoff.cap)


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
            raise ProcrunnerError(f"unknown process type {name!r} (the Procfile has: {known})",
                                  source)
        per_type[name] = _policy(value, source)
    return RestartRules(per_type=per_type)


def _policy(value: str, source: str) -> Policy:
    try:
        return Policy(value)
    except ValueError:
        choices = ", ".join(p.value for p in Policy)
        raise ProcrunnerError(f"unknown restart policy {value!r} (choose from {choices})",
                              source) from None


def parse_backoff(text: str, source: str = "--backoff") -> Backoff:
    """``first=0.5s,max=30s,reset=10s`` (any subset)."""
    values = {"first": Backoff.first, "max": Backoff.cap, "reset": Backoff.reset_after}
    for entry in text.split(","):
        key, eq, value = (part.strip() for part in entry.partition("="))
        if not eq or key not in values:
            raise ProcrunnerError(f"expected first=, max= or reset=DURATION, got {entry!r}", source)
        values[key] = parse_duration(value, source)
    return Backoff(first=values["first"], cap=values["max"], reset_after=values["reset"])


def parse_give_up(text: str, source: str = "--give-up") -> GiveUp:
    """``5/60s``: five counted deaths within a minute."""
    count, slash, window = text.partition("/")
    if not slash or not count.strip().isdigit() or int(count) < 1:
        raise ProcrunnerError(f"expected N/DURATION such as 5/60s, got {text!r}", source)
    return GiveUp(int(count), parse_duration(window, source))
