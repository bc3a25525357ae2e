"""An instance: one slot of the formation (``web.1``), whose name and port outlive its
incarnations, and what it keeps of the incarnations that ended."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from procrunner.config.formation import InstanceSpec
from procrunner.config.settings import Condition, Readiness
from procrunner.scratch.wipe import Inventory
from procrunner.supervise.events import EndedIncarnation
from procrunner.supervise.memory import Key, Memory
from procrunner.supervise.restart import Fatal, Restart, Stay
from procrunner.supervise.spawner import Cancellable, Life
from procrunner.supervise.states import Cause, State

WORDING = {"ready": "be running", "completed": "complete"}
STOPPED_HOW = {
    Cause.UNHEALTHY: "restarted: unhealthy",
    Cause.CHAOS: "killed by chaos",
    Cause.WATCH: "restarted by watch",
    Cause.REQUESTED: "stopped on request",
    Cause.SCALED: "stopped by scaling down",
}


@dataclass(frozen=True)
class Remove:
    """Scaled down: the slot leaves the formation once its life has stopped."""


@dataclass(frozen=True)
class Held:
    """Down until the types it depends on meet their conditions (``depends_on``); ``failed``
    names a dependency that ended in failure and stays down."""

    waiting_for: tuple[tuple[str, Condition], ...]
    failed: str | None = None

    @property
    def reason(self) -> str:
        """For ``ps``, the dashboard and the line: ``waits for migrate to complete``."""
        waits = ", ".join(f"{name} to {WORDING[condition]}"
                          for name, condition in self.waiting_for)
        if self.failed is not None:
            return f"waits for {waits}, but {self.failed}"
        return f"waits for {waits}"


# What happens to an instance next: once its life has stopped (restart after a delay, stay
# down, go fatal, be removed), or once its dependencies run. None: it stays as it is (a
# stop on request or at shutdown ends in STOPPED, an own exit then in EXITED).
Fate = Restart | Stay | Fatal | Remove | Held


@dataclass
class Lives:
    """Every life of one instance name over the whole run: a slot scaled away and added
    again goes on counting (``worker.2#2``) and keeps the records of its earlier lives."""

    number: int = 0  # of the latest life
    ended: list[EndedIncarnation] = field(default_factory=list)


@dataclass
class Instance:
    """One slot of the formation (``web.1``): its state, its current incarnation and the
    lives of its name."""

    spec: InstanceSpec
    lives: Lives = field(default_factory=Lives)
    state: State = State.STOPPED
    incarnation: Life | None = None
    cause: Cause | None = None
    streak: int = 0
    deaths: list[float] = field(default_factory=list)
    fate: Fate | None = None
    down_since: float | None = None
    waiting: Cancellable | None = None  # its readiness check, liveness check or respawn
    retry_at: float | None = None  # wall clock of the respawn, while in BACKOFF

    @property
    def number(self) -> int:
        """The incarnation number of its current (or last) life."""
        return self.lives.number

    @property
    def history(self) -> list[EndedIncarnation]:
        return self.lives.ended

    @property
    def label(self) -> str:
        return f"{self.spec.name}#{self.number}"

    @property
    def completed(self) -> bool:
        """Its last life exited 0 on its own and it stays down (a one-shot step's end)."""
        life = self.incarnation
        status = life.status if life is not None else None
        return self.state is State.EXITED and status is not None and status.shell_code == 0

    def record_end(
        self, memory: Memory | None, scratch: Inventory, own_exit: bool
    ) -> EndedIncarnation:
        """Keep what the ended incarnation was and what it destroyed."""
        incarnation = self.incarnation
        assert incarnation is not None and self.cause is not None
        if own_exit or memory is None:
            memory = incarnation.last_memory
        status = incarnation.status
        if own_exit and status is not None:
            how = status.describe()
        else:
            how = STOPPED_HOW.get(self.cause, "stopped by procrunner")
        ended = EndedIncarnation(
            self.label,
            self.number,
            incarnation.pid,
            incarnation.started_at,
            incarnation.uptime,
            self.cause,
            how,
            scratch,
            memory,
        )
        self.history.append(ended)
        return ended


def restarts_by_cause(history: Sequence[EndedIncarnation], lives: int) -> Counter[str]:
    """Each of ``lives`` after the first was a restart; its cause is how the one before ended."""
    return Counter(e.cause.value for e in history[: max(lives - 1, 0)])


def ps_row(instance: Instance, readiness: Readiness, start_seconds: float) -> dict[str, Any]:
    """The instance as ``procrunner ps`` shows it (the control server adds scratch sizes,
    measured off the event loop); ``readiness``: its type's."""
    incarnation = instance.incarnation
    if instance.state not in (State.STARTING, State.RUNNING, State.STOPPING):
        incarnation = None
    memory = incarnation.last_memory if incarnation is not None else None
    return {
        "name": instance.spec.name,
        "type": instance.spec.type_name,
        "state": instance.state.value,
        "pid": incarnation.pid if incarnation is not None else None,
        "incarnation": instance.number,
        "uptime": incarnation.uptime if incarnation is not None else None,
        "restarts": dict(restarts_by_cause(instance.history, instance.number)),
        "ended": [
            {"label": e.label, "cause": e.cause.value, "how": e.how, "uptime": e.uptime}
            for e in instance.history
        ],
        "rss": memory.rss if memory is not None else None,
        "port": instance.spec.port,
        "scratch": str(incarnation.scratch) if incarnation is not None else None,
        "containment": incarnation.containment if incarnation is not None else None,
        "ready": (awaited(readiness, instance.spec.port, start_seconds)
                  if instance.state is State.STARTING else None),
        "retry_at": instance.retry_at if instance.state is State.BACKOFF else None,
        "held": instance.fate.reason if isinstance(instance.fate, Held) else None,
        "held_failed": instance.fate.failed if isinstance(instance.fate, Held) else None,
    }


def awaited(readiness: Readiness, port: int, start_seconds: float) -> dict[str, Any]:
    """What a STARTING instance waits for: ``{"kind": "port", "port": 5000}``..."""
    match readiness.kind:
        case "port":
            return {"kind": "port", "port": port, "any": readiness.any_listener}
        case "http":
            return {"kind": "http", "port": port, "path": readiness.target}
        case "exec":
            return {"kind": "exec", "command": readiness.target}
        case "log":
            return {"kind": "log", "pattern": readiness.pattern}
        case "uptime":
            return {"kind": "uptime", "seconds": start_seconds}
    return {"kind": readiness.kind}


def live_lives(instances: Iterable[Instance]) -> dict[Key, Life]:
    """The lives to sample: instances starting or running."""
    return {
        (i.spec.name, i.number): i.incarnation
        for i in instances
        if i.incarnation is not None and i.state in (State.STARTING, State.RUNNING)
    }
