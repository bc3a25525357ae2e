"""The restart decision: a pure function of (policy, exit cause, recent deaths, now).

Policies: ``stop-all`` (foreman's default: an instance ending stops the formation),
``never`` (it stays down), ``on-failure`` (restart after a crash), ``always`` (restart after
any exit). A chaos or watch kill always restarts, at once and outside the backoff. Restarts
after crashes (and clean exits under ``always``) back off exponentially; the streak resets once
an incarnation has been up for ``reset_after``. ``give_up`` (N deaths within a window) turns
a crash loop into FATAL; without it procrunner never gives up, as Heroku and Kubernetes.
An instance that failed its liveness check (``unhealthy``) is restarted whatever its policy
(the check exists to restart it), and counts toward backoff and giving up like a crash.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from procrunner.config.restart_rules import Backoff, Policy, RestartRules
from procrunner.supervise.states import Cause


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
    return restart_counted(streak, deaths, now, rules)


def restart_counted(
    streak: int, deaths: Sequence[float], now: float, rules: RestartRules
) -> Restart | Fatal:
    """A restart after a counted death (a crash, an exit, an unhealthy instance whatever
    its policy): after its backoff, unless the give-up rule trips."""
    limit = rules.give_up
    if limit is not None and sum(1 for t in deaths if now - t <= limit.window) >= limit.deaths:
        return Fatal(limit.deaths, limit.window)
    return Restart(backoff_delay(streak, rules.backoff))


def backoff_delay(streak: int, backoff: Backoff) -> float:
    """0 for the first death in a streak, then ``first``, doubling, up to ``cap``."""
    if streak <= 1:
        return 0.0
    return min(backoff.first * backoff.factor ** (streak - 2), backoff.cap)
