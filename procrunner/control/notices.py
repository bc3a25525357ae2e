"""What happened in the formation, for anyone who follows it: ``procrunner events``, ``logs``
and the dashboard. Each subscriber has its own bounded queue; a slow one loses its oldest
notices and is told how many, so it never slows the formation."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from typing import Any

Notice = dict[str, Any]
BACKLOG = 1000


class Subscription:
    def __init__(self, output: bool, limit: int) -> None:
        self.output = output
        self._pending: deque[Notice] = deque()
        self._limit = limit
        self._dropped = 0
        self._ready = asyncio.Event()

    def put(self, notice: Notice) -> None:
        if len(self._pending) >= self._limit:
            self._pending.popleft()
            self._dropped += 1
        self._pending.append(notice)
        self._ready.set()

    async def get(self) -> list[Notice]:
        """Every notice waiting (at least one), a ``dropped`` notice first if some were lost."""
        await self._ready.wait()
        self._ready.clear()
        notices = list(self._pending)
        self._pending.clear()
        if self._dropped:
            notices.insert(0, {"event": "dropped", "time": time.time(), "count": self._dropped})
            self._dropped = 0
        return notices


class Notices:
    """The formation's notice board: the supervisor and the printer post, subscribers read."""

    def __init__(self) -> None:
        self._subscriptions: set[Subscription] = set()
        self.wants_output = False

    def subscribe(self, output: bool = False, limit: int = BACKLOG) -> Subscription:
        subscription = Subscription(output, limit)
        self._subscriptions.add(subscription)
        self.wants_output |= output
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        self._subscriptions.discard(subscription)
        self.wants_output = any(s.output for s in self._subscriptions)

    def post(self, event: str, **fields: Any) -> None:
        if not self._subscriptions:
            return
        notice = {"event": event, "time": time.time(), **fields}
        for subscription in self._subscriptions:
            if event != "output" or subscription.output:
                subscription.put(notice)
