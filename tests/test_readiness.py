"""Readiness checks: a log line, at once, a port, and disarming when stopped first."""

from __future__ import annotations

import asyncio
import socket

from procrunner.config.settings import Readiness
from procrunner.supervise.events import Ready
from procrunner.supervise.readiness import ReadinessChecks


def test_each_kind_posts_ready_for_its_incarnation() -> None:
    async def scenario() -> list[Ready]:
        posted: list[Ready] = []
        checks = ReadinessChecks(posted.append, start_seconds=0.05)
        checks.arm(Readiness("log", r"^listening on \d+$"), "web.1", 3, 0)
        checks.saw_output("web.1", b"booting\nloading\n")
        checks.saw_output("web.2", b"listening on 80\n")  # another instance: not web.1's line
        checks.saw_output("web.1", b"x\nlistening on 8080\n")
        checks.saw_output("web.1", b"listening on 8080\n")  # once only
        checks.arm(Readiness("none"), "clock.1", 1, 0)
        uptime = checks.arm(Readiness("uptime"), "worker.1", 2, 0)
        with socket.create_server(("127.0.0.1", 0)) as server:
            port = server.getsockname()[1]
            probe = checks.arm(Readiness("port"), "api.1", 1, port)
            assert isinstance(probe, asyncio.Task)
            await asyncio.wait_for(probe, 5)
        checks.arm(Readiness("log", "never"), "late.1", 1, 0)
        checks.disarm("late.1")
        checks.saw_output("late.1", b"never\n")
        assert isinstance(uptime, asyncio.TimerHandle)
        await asyncio.sleep(0.2)  # past the 50 ms uptime
        return posted

    posted = asyncio.run(scenario())
    assert sorted(posted, key=lambda r: r.instance) == [
        Ready("api.1", 1), Ready("clock.1", 1), Ready("web.1", 3), Ready("worker.1", 2)
    ]
