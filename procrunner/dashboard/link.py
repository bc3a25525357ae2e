"""The dashboard's side of the control socket (asyncio, the same JSON-lines protocol as
``procrunner ps``): one ``events`` subscription with output, and one connection for ``ps``
and the page's actions. When the formation goes away the link says so to the picture and
keeps trying, with a growing pause, until a formation answers again."""

from __future__ import annotations

import asyncio
import contextlib
import json
from pathlib import Path
from typing import Any

from procrunner.control.protocol import PROTOCOL, encode
from procrunner.dashboard.picture import Picture
from procrunner.errors import ProcrunnerError

PS_EVERY = 1.0  # seconds between two ps requests when nothing happens
FIRST_RETRY, LAST_RETRY = 0.2, 2.0  # seconds between tries to reach a formation that is gone
LINE_LIMIT = 32 << 20  # an output notice carries lines of up to 1 MiB, escaped
HISTORY_LINES = 500  # recent output lines asked for on connecting
ANSWER_WITHIN = 10.0  # seconds a request may wait for its reply


class NotConnected(Exception):
    """The formation is not running, so the page's action cannot be carried out."""


class _Lost(Exception):
    """The connection ended (the formation stopped)."""


class _Channel:
    """One connection: the greeting, then requests and replies (or notices) as JSON lines."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader, self._writer = reader, writer
        self._ids = 0

    @classmethod
    async def open(cls, path: Path) -> tuple[_Channel, dict[str, Any]]:
        reader, writer = await asyncio.open_unix_connection(path, limit=LINE_LIMIT)
        channel = cls(reader, writer)
        try:
            greeting = await channel.next()
            if greeting.get("protocol") != PROTOCOL:
                raise _Lost(greeting.get("error", f"protocol {greeting.get('protocol')!r}"))
        except BaseException:
            channel.close()
            raise
        return channel, greeting

    async def next(self) -> dict[str, Any]:
        line = await self._reader.readline()
        if not line.endswith(b"\n"):
            raise _Lost("the formation closed the connection")
        message: dict[str, Any] = json.loads(line)
        return message

    async def request(self, command: str, **arguments: Any) -> Any:
        self._ids += 1
        self._writer.write(encode({"id": self._ids, "command": command, **arguments}))
        await self._writer.drain()
        reply = await self.next()
        if not reply.get("ok"):
            raise ProcrunnerError(str(reply.get("error", "request failed")), command)
        return reply.get("result")

    def close(self) -> None:
        self._writer.close()


class Link:
    def __init__(self, path: Path, picture: Picture) -> None:
        self.path = path
        self._picture = picture
        self._requests: _Channel | None = None
        self._lock = asyncio.Lock()  # one request at a time on the request connection
        self._wake = asyncio.Event()  # something happened: ask ps again now

    async def run(self) -> None:
        """Follow the formation for as long as the dashboard runs, across its restarts."""
        pause = FIRST_RETRY
        while True:
            try:
                await self._follow()
                pause = FIRST_RETRY
            except (OSError, _Lost, NotConnected, ValueError, ProcrunnerError):
                pass
            finally:
                self._requests = None
            self._picture.went_down()
            await asyncio.sleep(pause)
            pause = min(pause * 2, LAST_RETRY)

    async def ask(self, command: str, **arguments: Any) -> Any:
        """Carry out one of the page's actions through the socket."""
        async with self._lock:
            if self._requests is None:
                raise NotConnected("the formation is not running")
            try:
                async with asyncio.timeout(ANSWER_WITHIN):
                    return await self._requests.request(command, **arguments)
            except TimeoutError:  # a late reply would answer the next request: start anew
                self._requests.close()
                self._requests = None
                raise NotConnected(f"no answer within {ANSWER_WITHIN:g} s") from None
            except (OSError, _Lost) as exc:
                raise NotConnected("the formation stopped before it answered") from exc

    async def _follow(self) -> None:
        events, greeting = await _Channel.open(self.path)
        try:
            requests, _ = await _Channel.open(self.path)
        except BaseException:
            events.close()
            raise
        try:
            self._picture.came_up(greeting)
            reply = await events.request("events", output=True, lines=HISTORY_LINES)
            self._picture.history(reply["lines"])
            self._requests = requests
            polling = asyncio.create_task(self._poll())
            try:
                while True:
                    notice = await events.next()
                    self._picture.apply(notice)
                    if notice["event"] != "output":
                        self._wake.set()
                    if polling.done():
                        polling.result()  # the request connection ended: raise its error
            finally:
                await _cancelled(polling)
        finally:
            events.close()
            requests.close()

    async def _poll(self) -> None:
        """``ps`` every second, and soon after each notice (coalesced)."""
        while True:
            self._wake.clear()
            self._picture.seed(await self.ask("ps"))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), PS_EVERY)


async def _cancelled(task: asyncio.Task[None]) -> None:
    """Cancel ``task`` and wait for it to end, without swallowing a cancellation of the task
    that waits (suppressing CancelledError around ``await task`` would: then the dashboard
    could never be stopped while the formation was going down)."""
    task.cancel()
    await asyncio.wait([task])
    if not task.cancelled():
        task.exception()  # retrieved: its error, if any, was the connection going away
