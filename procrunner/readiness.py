"""Readiness checks: when an incarnation counts as RUNNING (and its restart as recovered)."""

from __future__ import annotations

import asyncio
import contextlib

PROBE_INTERVAL = 0.05


async def wait_for_port(port: int, host: str = "127.0.0.1") -> None:
    """Return once ``port`` accepts a TCP connection; tried every 50 ms (the child gives no
    other sign that it listens)."""
    while True:
        with contextlib.suppress(OSError):
            _, writer = await asyncio.open_connection(host, port)
            writer.close()
            return
        await asyncio.sleep(PROBE_INTERVAL)
