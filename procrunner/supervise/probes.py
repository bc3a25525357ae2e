"""One check of an instance, as readiness (``ready: {http: ...}``, ``{exec: ...}``) and
liveness (``health:``) both run it: a GET on its PORT, a command with its environment, or a
TCP connection to its PORT. Each is bounded by a timeout and answers None when it passes,
else a few words saying why not (for the ``unhealthy`` line). Standard library only."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

HOST = "127.0.0.1"
READ_LIMIT = 64 * 1024  # a status line longer than this is no HTTP answer


@dataclass(frozen=True)
class Site:
    """Where a check of one incarnation runs: its PORT, its environment and its folder."""

    port: int
    env: Mapping[str, str]
    cwd: Path


async def check(kind: str, target: str | None, site: Site, timeout: float) -> str | None:
    """``kind`` is ``http`` (``target`` the path), ``exec`` (the command) or ``port``."""
    try:
        async with asyncio.timeout(timeout):
            if kind == "http":
                return await _http(site.port, target or "/")
            if kind == "exec":
                return await _exec(target or "true", site)
            return await _connect(site.port)
    except TimeoutError:
        return f"timed out after {timeout:g}s"
    except OSError as exc:
        return exc.strerror or str(exc)


async def _http(port: int, path: str) -> str | None:
    """A GET of ``path``; a 2xx or 3xx status passes."""
    path = path if path.startswith("/") else f"/{path}"
    reader, writer = await asyncio.open_connection(HOST, port, limit=READ_LIMIT)
    try:
        writer.write(
            f"GET {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\nUser-Agent: procrunner\r\n"
            "Connection: close\r\n\r\n".encode()
        )
        await writer.drain()
        status_line = await reader.readline()
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
    parts = status_line.decode("latin-1").split()
    if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
        return "no HTTP answer" if not status_line else "not an HTTP answer"
    status = int(parts[1])
    return None if 200 <= status < 400 else f"GET {path} answered {status}"


async def _exec(command: str, site: Site) -> str | None:
    """The command, in its own session with the instance's environment; exit 0 passes. A
    command still running at the timeout is killed with its group."""
    process = await asyncio.create_subprocess_exec(
        "/bin/sh", "-c", command, cwd=site.cwd, env=dict(site.env),
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    try:
        code = await process.wait()
    finally:
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            await asyncio.shield(process.wait())
    return None if code == 0 else f"{command!r} exited {code}"


async def _connect(port: int) -> str | None:
    _, writer = await asyncio.open_connection(HOST, port)
    writer.close()
    return None
