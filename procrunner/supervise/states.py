"""Instance states and exit causes: one set for the whole program, and the table of the
state changes allowed. Checked by ``check_transition`` on every change."""

from __future__ import annotations

import enum


class State(enum.Enum):
    """supervisord's names; shown in lowercase."""

    STOPPED = "stopped"
    STARTING = "starting"
    RUNNING = "running"
    BACKOFF = "backoff"
    STOPPING = "stopping"
    EXITED = "exited"
    FATAL = "fatal"


ALLOWED: dict[State, frozenset[State]] = {
    State.STOPPED: frozenset({State.STARTING}),
    State.STARTING: frozenset({State.RUNNING, State.STOPPING}),
    State.RUNNING: frozenset({State.STOPPING}),
    State.STOPPING: frozenset({State.STOPPED, State.EXITED, State.BACKOFF, State.FATAL}),
    State.BACKOFF: frozenset({State.STARTING, State.STOPPED}),
    State.EXITED: frozenset({State.STARTING}),
    State.FATAL: frozenset({State.STARTING}),
}


class IllegalTransition(RuntimeError):
    """A bug: the supervisor tried an arrow that the table does not allow."""


def check_transition(name: str, old: State, new: State) -> None:
    if new not in ALLOWED[old]:
        raise IllegalTransition(f"{name}: {old.value} -> {new.value} is not allowed")


class Cause(enum.Enum):
    """Why an incarnation ended, one list for the whole program. Only crash and exited are
    the instance's own doing; they and unhealthy (a failed liveness check: procrunner
    restarts it) count toward backoff and giving up."""

    CRASH = "crash"
    EXITED = "exited"
    UNHEALTHY = "unhealthy"
    CHAOS = "chaos"
    WATCH = "watch"
    REQUESTED = "requested"
    SCALED = "scaled"
    SHUTDOWN = "shutdown"
