"""Readiness: when an incarnation counts as RUNNING, and its restart as recovered; and
liveness: when a RUNNING one has stopped answering.

``port``: its PORT accepts a TCP connection (probed every 50 ms: the child gives no other
sign that it listens) and the listener is a process of its own tree, unless the type accepts
any listener (``{port: any}``, for a proxy such as docker's); ``log``: a line of its output
matches a pattern; ``http``: a GET of a path on its PORT answers 2xx or 3xx; ``exec``: a
command exits 0; ``uptime``: it has stayed up ``start_seconds``; ``none``: at once. Each
check ends by posting ``Ready``; the supervisor drops it if that incarnation is no longer
current. A ``health:`` check starts once it is RUNNING and ``grace`` has passed, and posts
``Unhealthy`` after ``failures`` failed checks in a row.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Callable

from procrunner.config.settings import Health, Readiness
from procrunner.supervise.events import Ready, Unhealthy
from procrunner.supervise.ports import tree_listens
from procrunner.supervise.probes import Site, check

PROBE_INTERVAL = 0.05
CHECK_INTERVAL = {"http": 0.1, "exec": 0.25}  # between readiness checks that failed
CHECK_TIMEOUT = 2.0  # each readiness check's bound
FOREIGN_RECHECK_MAX = 1.0  # a foreign listener costs a process table scan at most this often
Waiting = asyncio.Task[None] | asyncio.Handle


async def wait_for_port(port: int, host: str = "127.0.0.1") -> None:
    """Return once ``port`` accepts a TCP connection."""
    while True:
        with contextlib.suppress(OSError):
            _, writer = await asyncio.open_connection(host, port)
            writer.close()
            return
        await asyncio.sleep(PROBE_INTERVAL)


class ReadinessChecks:
    def __init__(self, post: Callable[[Ready | Unhealthy], None], start_seconds: float) -> None:
        self._post = post
        self._start_seconds = start_seconds
        self._log_waiters: dict[str, tuple[int, re.Pattern[str]]] = {}

    def arm(self, readiness: Readiness, name: str, number: int, site: Site) -> Waiting | None:
        """Start the check for incarnation ``number`` of ``name``; returns what to cancel
        if it is stopped first."""
        ready = Ready(name, number)
        loop = asyncio.get_running_loop()
        if readiness.kind == "port":
            return asyncio.create_task(self._port(site.port, ready, readiness.any_listener))
        if readiness.kind in CHECK_INTERVAL:
            return asyncio.create_task(self._until_passed(readiness, site, ready))
        if readiness.kind == "uptime":
            return loop.call_later(self._start_seconds, self._post, ready)
        if readiness.kind == "none":
            return loop.call_soon(self._post, ready)
        self._log_waiters[name] = (number, re.compile(readiness.pattern or "", re.MULTILINE))
        return None

    def disarm(self, name: str) -> None:
        self._log_waiters.pop(name, None)

    def saw_output(self, name: str, body: bytes) -> None:
        """Lines from ``name``'s output (called from the output path: cheap when no
        instance waits for a log line)."""
        waiter = self._log_waiters.get(name)
        if waiter is not None and waiter[1].search(body.decode(errors="replace")):
            del self._log_waiters[name]
            self._post(Ready(name, waiter[0]))

    def watch_health(self, health: Health, name: str, number: int, site: Site) -> Waiting:
        return asyncio.create_task(self._liveness(health, site, name, number))

    async def _until_passed(self, readiness: Readiness, site: Site, ready: Ready) -> None:
        while await check(readiness.kind, readiness.target, site, CHECK_TIMEOUT) is not None:
            await asyncio.sleep(CHECK_INTERVAL[readiness.kind])
        self._post(ready)

    async def _liveness(self, health: Health, site: Site, name: str, number: int) -> None:
        await asyncio.sleep(health.grace)
        failed = 0
        while True:
            problem = await check(health.kind, health.target, site, health.timeout)
            failed = 0 if problem is None else failed + 1
            if problem is not None and failed >= health.failures:
                self._post(Unhealthy(name, number, problem, failed))
                return
            await asyncio.sleep(health.every)

    async def _port(self, port: int, ready: Ready, any_listener: bool) -> None:
        """Connect first (cheap); only once something answers, look for the listener in
        the tree, off the event loop, and less often while a foreign program answers."""
        label = f"{ready.instance}#{ready.number}"
        recheck = PROBE_INTERVAL
        while True:
            await wait_for_port(port)
            if any_listener or await asyncio.to_thread(tree_listens, label, port):
                self._post(ready)
                return
            await asyncio.sleep(recheck)
            recheck = min(recheck * 2, FOREIGN_RECHECK_MAX)
