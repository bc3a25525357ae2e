"""What happened in the formation, for anyone who follows it: ``procrunner events``, ``logs``
and the dashboard. Each subscriber has its own queue, bounded in notices and in bytes; a slow
one loses its oldest notices and is told how many, so it never slows the formation, and one
whose queue stays full (it stopped reading) is given up on."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from procrunner.supervise import facts as f

Notice = dict[str, Any]
BACKLOG = 1000  # notices waiting for one subscriber
BUDGET = 4 << 20  # bytes of notices waiting for one subscriber
PATIENCE = 30.0  # seconds a subscriber's queue may stay full before it is given up on
FIELDS_SIZE = 128  # bytes counted for a notice's fields, and for each output line's framing


class Subscription:
    def __init__(
        self, output: bool, limit: int, budget: int = BUDGET, patience: float = PATIENCE
    ) -> None:
        self.output = output
        self.on_stall: Callable[[], None] | None = None  # called when given up on
        self._pending: deque[tuple[Notice, int]] = deque()  # each with its size
        self._size = 0
        self._limit = limit
        self._budget = budget
        self._patience = patience
        self._dropped = 0
        self._dropped_lines = 0  # output lines in the dropped notices
        self._stall: asyncio.TimerHandle | None = None
        self._ready = asyncio.Event()

    def put(self, notice: Notice) -> None:
        size = _size(notice)
        self._pending.append((notice, size))
        self._size += size
        while len(self._pending) > 1 and (
            len(self._pending) > self._limit or self._size > self._budget
        ):
            dropped, size = self._pending.popleft()
            self._size -= size
            self._dropped += 1
            self._dropped_lines += len(dropped.get("lines", ()))
        if self._dropped and self._stall is None:
            loop = asyncio.get_running_loop()
            self._stall = loop.call_later(self._patience, self._stalled)
        self._ready.set()

    async def get(self) -> list[Notice]:
        """Every notice waiting (at least one), a ``dropped`` notice first if some were lost."""
        await self._ready.wait()
        self._ready.clear()
        self.forgive()
        notices = [notice for notice, _ in self._pending]
        self._pending.clear()
        self._size = 0
        if self._dropped:
            notices.insert(0, {"event": "dropped", "time": time.time(), "count": self._dropped,
                               "output_lines": self._dropped_lines})  # fmt: skip
            self._dropped = self._dropped_lines = 0
        return notices

    def end(self) -> None:
        """Unsubscribed: no longer given up on."""
        self.forgive()

    def forgive(self) -> None:
        """Its reader made progress: its patience starts over at the next loss."""
        if self._stall is not None:
            self._stall.cancel()
            self._stall = None

    def _stalled(self) -> None:
        """Full, with no progress from its reader, for the whole patience: it has stopped."""
        self._stall = None
        if self.on_stall is not None:
            self.on_stall()


def _size(notice: Notice) -> int:
    """About the notice's bytes: its output lines counted, its other fields estimated."""
    lines = notice.get("lines", ())
    return FIELDS_SIZE + sum(len(line) + FIELDS_SIZE for line in lines)


class Notices:
    """The formation's notice board: the supervisor and the printer post, subscribers read."""

    def __init__(self) -> None:
        self._subscriptions: set[Subscription] = set()
        self.wants_output = False

    def subscribe(
        self,
        output: bool = False,
        limit: int = BACKLOG,
        budget: int = BUDGET,
        patience: float = PATIENCE,
    ) -> Subscription:
        subscription = Subscription(output, limit, budget, patience)
        self._subscriptions.add(subscription)
        self.wants_output |= output
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        self._subscriptions.discard(subscription)
        subscription.end()
        self.wants_output = any(s.output for s in self._subscriptions)

    def follow(self, fact: f.Fact) -> None:
        """The notice board's subscription to the supervisor's facts."""
        if self._subscriptions and (found := notice_of(fact)) is not None:
            self.post(found[0], **found[1])

    def post(self, event: str, **fields: Any) -> None:
        if not self._subscriptions:
            return
        notice = {"event": event, "time": time.time(), **fields}
        for subscription in self._subscriptions:
            if event != "output" or subscription.output:
                subscription.put(notice)


def notice_of(fact: f.Fact) -> tuple[str, dict[str, Any]] | None:
    """A fact as followers see it: the event name and its fields (None: not for them)."""
    match fact:
        case f.StateChanged(name, _, number, state):
            return "state", {"instance": name, "incarnation": number, "state": state.value}
        case f.Spawned(name, number, pid, port, scratch):
            return "spawned", {"instance": name, "incarnation": number, "pid": pid,
                               "port": port, "scratch": scratch}  # fmt: skip
        case f.BecameReady(name, number, recovered=recovered):
            return "ready", {"instance": name, "incarnation": number, "recovered": recovered}
        case f.Ended(name, ended):
            memory = ended.memory.best if ended.memory is not None else None
            destroyed = {"files": ended.scratch.files, "bytes": ended.scratch.bytes,
                         "memory": memory}  # fmt: skip
            return "ended", {"instance": name, "incarnation": ended.number,
                             "cause": ended.cause.value, "how": ended.how,
                             "uptime": ended.uptime, "destroyed": destroyed}  # fmt: skip
        case f.Removed(name):
            return "removed", {"instance": name}
        case f.ScaledType(type_name, before, after):
            return "scaled", {"type": type_name, "before": before, "after": after}
        case f.ChaosOn(description):
            return "chaos", {"action": "on", "spec": description}
        case f.ChaosOff():
            return "chaos", {"action": "off"}
        case f.ChaosKilled(name, number):
            return "chaos", {"action": "kill", "instance": name, "incarnation": number}
        case f.ShutdownBegan(reason, status):
            return "shutdown", {"reason": reason, "status": status}
        case f.Reloading(types, files):
            return "watch", {"files": list(files), "types": list(types)}
        case f.HeldBack(name, reason) | f.DependencyFailed(name, reason):
            failed = isinstance(fact, f.DependencyFailed)
            return "held", {"instance": name, "reason": reason, "failed": failed}
        case f.WentUnhealthy(label, problem, failures):
            return "unhealthy", {"instance": label.partition("#")[0], "problem": problem,
                                 "failures": failures}  # fmt: skip
        case f.Completed(name, release):
            return "completed", {"instance": name, "release": release}
        case f.ReleaseFailed(label, how, status):
            return "release", {"instance": label.partition("#")[0], "how": how,
                               "status": status}  # fmt: skip
    return None
