"""The dashboard: serves the page, its live picture (Server-Sent Events) and its actions,
on loopback only, while its link follows the formation through the control socket."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import socket
from collections.abc import AsyncIterator
from http import HTTPStatus
from importlib import resources
from pathlib import Path
from typing import Any

from procrunner.control.gate import Gate, Visit
from procrunner.dashboard.guard import LOOPBACK, Guard, loopback_host
from procrunner.dashboard.httpd import MAX_HEAD, BadHttp, Request, head, read_request, refusal
from procrunner.dashboard.httpd import response as http_response
from procrunner.dashboard.link import Link, NotConnected
from procrunner.dashboard.picture import Picture
from procrunner.errors import ProcrunnerError

STATIC = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/dom.js": ("dom.js", "text/javascript; charset=utf-8"),
    "/app.js": ("app.js", "text/javascript; charset=utf-8"),
    "/style.css": ("style.css", "text/css; charset=utf-8"),
}
# The page's actions, each a control request with the arguments it may carry.
ACTIONS = {
    "/scale": ("scale", ("counts",)),
    "/restart": ("restart", ("targets",)),
    "/stop": ("stop", ("targets",)),
    "/kill": ("kill", ("targets", "signal")),
    "/chaos": ("chaos", ("action", "spec", "target")),
}
KEEPALIVE = 15.0  # seconds between comments on a quiet event stream
PICTURE_GAP = 0.2  # seconds at least between two pictures sent to one page
FINISH_WITHIN = 5.0  # seconds the end of a run waits for its last notice, then for the pages
JSON = "application/json"
BACKLOG = 128  # connections the kernel holds until they are accepted


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class Dashboard:
    def __init__(self, path: Path) -> None:
        self.picture = Picture()
        self.link = Link(path, self.picture)
        self.url = ""
        self._guard: Guard | None = None
        self._gate = Gate(
            "the dashboard", self._serve, lambda reason, status: refusal(status, reason), MAX_HEAD
        )
        self._following: asyncio.Task[None] | None = None
        self._streams: set[asyncio.Task[Any]] = set()  # the pages' event streams

    async def open(self, host: str, port: int) -> None:
        """Listen (loopback only) and start following the formation."""
        host = loopback_host(host)
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        try:
            sock = socket.create_server((host, port), family=family, backlog=BACKLOG)
        except OSError as exc:
            message = f"cannot listen on {host}:{port}: {exc.strerror}"
            raise ProcrunnerError(message, "--port") from None
        self._gate.open(sock)
        port = sock.getsockname()[1]
        self._guard = Guard(host, port)
        self.url = f"{self._guard.origin}/?token={self._guard.token}"
        self._following = asyncio.create_task(self.link.run())

    async def finish(self) -> None:
        """The run is over (``start --dashboard``): once its last notice (the summary) is in
        the picture, every page gets the final picture and its stream ends, so the page shows
        the end of the run rather than a server gone mid-run."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(FINISH_WITHIN):
                await self.picture.run_ended()
        self.picture.closing()
        if self._streams:
            await asyncio.wait(self._streams, timeout=FINISH_WITHIN)

    async def close(self) -> None:
        if self._following is not None:
            self._following.cancel()
            await asyncio.wait([self._following])
        await self._gate.close()

    async def _serve(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, visit: Visit
    ) -> None:
        """One request (the gate closes the connection after it)."""
        try:
            request = await read_request(reader)
            if request is not None:
                visit.served()
                await self._answer(request, writer)
        except BadHttp as exc:
            writer.write(refusal(exc.status, str(exc)))

    async def _answer(self, request: Request, writer: asyncio.StreamWriter) -> None:
        assert self._guard is not None
        reason = self._guard.refusal(request)
        if reason is not None:
            writer.write(refusal(HTTPStatus.FORBIDDEN, reason))
        elif request.method == "GET" and request.path in STATIC:
            name, content_type = STATIC[request.path]
            body = resources.files("procrunner.dashboard").joinpath(name).read_bytes()
            cookie = (self._guard.cookie(),) if request.path == "/" else ()
            writer.write(http_response(HTTPStatus.OK, body, content_type, cookie))
        elif request.method == "GET" and request.path == "/events":
            await self._stream(writer)
        elif request.method == "POST" and request.path in ACTIONS:
            writer.write(await self._act(request))
        elif request.path in STATIC or request.path in ACTIONS or request.path == "/events":
            writer.write(refusal(HTTPStatus.METHOD_NOT_ALLOWED, request.method))
        else:
            writer.write(refusal(HTTPStatus.NOT_FOUND, request.path))

    async def _act(self, request: Request) -> bytes:
        command, allowed = ACTIONS[request.path]
        try:
            fields = json.loads(request.body)
        except ValueError:
            fields = None
        if not isinstance(fields, dict):
            return _json(HTTPStatus.BAD_REQUEST, {"ok": False, "error": "expected a JSON object"})
        arguments = {k: v for k, v in fields.items() if k in allowed}
        try:
            result = await self.link.ask(command, **arguments)
        except NotConnected as exc:
            return _json(HTTPStatus.SERVICE_UNAVAILABLE, {"ok": False, "error": str(exc)})
        except ProcrunnerError as exc:
            return _json(HTTPStatus.CONFLICT, {"ok": False, "error": exc.message})
        return _json(HTTPStatus.OK, {"ok": True, "result": result})

    async def _stream(self, writer: asyncio.StreamWriter) -> None:
        """Server-Sent Events: the whole picture first and after every change (at most five
        a second; a slow page skips pictures), a comment when quiet (to notice a closed page)."""
        writer.write(head(HTTPStatus.OK, "text/event-stream", None) + b"retry: 1000\n\n")
        watcher = self.picture.watch()
        stream = asyncio.current_task()
        assert stream is not None
        self._streams.add(stream)
        try:
            while await self._send(writer, watcher):
                await asyncio.sleep(PICTURE_GAP)
                while not watcher.is_set():
                    try:
                        await asyncio.wait_for(watcher.wait(), KEEPALIVE)
                    except TimeoutError:
                        writer.write(b": still here\n\n")
                        await writer.drain()
        finally:
            self._streams.discard(stream)
            self.picture.forget(watcher)

    async def _send(self, writer: asyncio.StreamWriter, watcher: asyncio.Event) -> bool:
        """One picture; False once it was the last."""
        watcher.clear()
        picture = self.picture.as_dict()
        writer.write(_event("picture", picture))
        await writer.drain()
        return not picture["last"]


def _event(name: str, data: dict[str, Any]) -> bytes:
    return f"event: {name}\ndata: {json.dumps(data)}\n\n".encode()


def _json(status: HTTPStatus, data: dict[str, Any]) -> bytes:
    return http_response(status, json.dumps(data).encode(), JSON)


async def serve(path: Path, host: str, port: int) -> int:
    """``procrunner dashboard``: until SIGINT, SIGTERM or SIGHUP (128 + its number), whether
    the formation runs or not. The handlers are its own: a SIGINT that the shell started it
    with ignored (a background job) must still stop it when sent on purpose."""
    dashboard = Dashboard(path)
    await dashboard.open(host, port)
    loop = asyncio.get_running_loop()
    stopped: asyncio.Future[int] = loop.create_future()
    for signum in STOP_SIGNALS:
        loop.add_signal_handler(signum, _settle, stopped, 128 + signum)
    print(f"dashboard on {dashboard.url}", flush=True)  # from here a signal stops it
    try:
        return await stopped
    finally:
        for signum in STOP_SIGNALS:
            loop.remove_signal_handler(signum)
        await dashboard.close()


def _settle(future: asyncio.Future[int], status: int) -> None:
    if not future.done():
        future.set_result(status)


@contextlib.asynccontextmanager
async def alongside(path: Path) -> AsyncIterator[str]:
    """``start --dashboard``: the dashboard runs in the same process, still only a client of
    the control socket; yields its URL."""
    dashboard = Dashboard(path)
    await dashboard.open(LOOPBACK, 0)
    try:
        yield dashboard.url
        await dashboard.finish()  # the run is over: while its control socket still serves
    finally:
        await dashboard.close()
