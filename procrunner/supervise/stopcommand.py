"""``stop_command:``: a type that stops on a command (``redis-cli shutdown``, ``pg_ctl
stop``) rather than a signal. The command runs with the instance's environment; procrunner
waits for the instance's leader to exit, for at most half the stop timeout. A command still
running then is killed with its group, and the usual stop sequence takes the rest of the
timeout for whatever is still there."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from procrunner.config.quoting import quote
from procrunner.supervise.incarnation import ExitStatus


async def ask_to_stop(
    command: str,
    env: Mapping[str, str],
    cwd: Path,
    exited: asyncio.Future[ExitStatus],
    budget: float,
    escalate: asyncio.Event,
) -> str | None:
    """Run ``command`` and wait up to ``budget`` seconds for ``exited`` (or ``escalate``);
    returns what went wrong with the command, if anything, for one line."""
    try:
        process = await asyncio.create_subprocess_exec(
            "/bin/sh", "-c", command, cwd=cwd, env=dict(env),
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
    except OSError as exc:
        return f"stop command {quote(command)} could not start: {exc.strerror}"
    escalated = asyncio.ensure_future(escalate.wait())
    either: list[asyncio.Future[Any]] = [exited, escalated]
    try:
        await asyncio.wait(either, timeout=budget, return_when=asyncio.FIRST_COMPLETED)
    finally:
        escalated.cancel()
    if process.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        await process.wait()
        if not exited.done():
            return f"stop command {quote(command)} still ran after {budget:g}s: killed it"
        return None
    if process.returncode != 0:
        return f"stop command {quote(command)} exited {process.returncode}"
    return None
