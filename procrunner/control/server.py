"""The control socket's server: a small client of the supervisor, never a second owner.

Each connection is greeted, then sends one JSON request per line. Commands go to the
supervisor's queue and are answered when it has carried them out; ``events`` and ``logs``
stream notices from a subscription bounded in bytes. A malformed, truncated or oversized
request gets an error reply; nothing a client sends can stop the server or the formation, or
grow its memory without bound: the gate limits connections and idle time, and what a client
sends after a streaming request is read and dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from procrunner import __version__, platform
from procrunner.control import socketpath
from procrunner.control.asks import AttachRequest, PsRequest
from procrunner.control.gate import Gate, Visit
from procrunner.control.history import OutputHistory, selects
from procrunner.control.notices import PATIENCE, Notice, Notices
from procrunner.control.ops import ask
from procrunner.control.protocol import MAX_REQUEST, PROTOCOL, encode
from procrunner.control.requests import BadRequest, Follow, parse_request
from procrunner.errors import ProcrunnerError
from procrunner.output.terminal import Terminal
from procrunner.scratch.wipe import inventory
from procrunner.supervise.handle import Ask

if TYPE_CHECKING:
    from procrunner.router import Router

ATTACHED_BUFFER = 1 << 20  # bytes queued for an attached client before its output is dropped
BACKLOG = 128  # connections the kernel holds until they are accepted
DISCARDED = 1 << 16  # bytes read at a time from a follower, only to see it leave


class ControlServer:
    def __init__(
        self,
        path: Path,
        root: Path,
        post: Callable[[Ask], None],
        notices: Notices,
        history: OutputHistory,
        router: Router | None,
        patience: float = PATIENCE,
    ) -> None:
        """``patience``: seconds a follower's subscription may stay full before it is cut off."""
        self.path = path
        self._root = root
        self._post = post
        self._notices = notices
        self._history = history
        self._router = router
        self._patience = patience
        self._gate = Gate("the control socket", self._serve, lambda reason, _: _error(None, reason))
        self._inode: int | None = None

    async def open(self, private_parent: bool) -> None:
        sock = socketpath.bind(self.path, self._root, private_parent)
        sock.listen(BACKLOG)
        self._inode = os.stat(self.path).st_ino
        self._gate.open(sock)

    async def close(self) -> None:
        if self._inode is None:
            return
        with contextlib.suppress(OSError):
            if os.stat(self.path).st_ino == self._inode:  # still ours, not a successor's
                self.path.unlink()
        await self._gate.close()

    async def _serve(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, visit: Visit
    ) -> None:
        if not _same_user(writer):
            writer.write(_error(None, "refused: another user's connection"))
            return
        writer.write(
            encode(
                {
                    "procrunner": __version__,
                    "protocol": PROTOCOL,
                    "app": str(self._root),
                    "pid": os.getpid(),
                }
            )
        )
        async for line in _lines(reader):
            if isinstance(line, BadRequest):  # not a complete request: the idle clock runs on
                writer.write(_error(None, str(line)))
                continue
            visit.served()
            try:
                request_id, command = parse_request(line)
            except BadRequest as exc:
                writer.write(_error(exc.args[1] if len(exc.args) > 1 else None, exc.args[0]))
                visit.waiting()
                continue
            if isinstance(command, Follow):
                await self._follow(request_id, command, reader, writer)
                return
            if isinstance(command, AttachRequest):
                await self._attach(request_id, command, reader, writer)
                return
            writer.write(await self._ask(request_id, command))
            visit.waiting()  # from here: a client that does not read its answer can be closed
            await writer.drain()

    async def _ask(self, request_id: Any, command: Any) -> bytes:
        reply: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._post(ask(command, reply))
        try:
            result = await reply
        except ProcrunnerError as exc:
            return _error(request_id, exc.message)
        if isinstance(command, PsRequest):
            await self._add_sizes(result["instances"])
        return encode({"id": request_id, "ok": True, "result": result})

    async def _attach(
        self,
        request_id: Any,
        request: AttachRequest,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        """``connect``: after the reply, the connection carries the terminal's bytes both
        ways until the client detaches or the incarnation ends."""
        reply: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._post(ask(request, reply))
        try:
            terminal: Terminal = (await reply)["terminal"]
        except ProcrunnerError as exc:
            writer.write(_error(request_id, exc.message))
            return
        if request.rows and request.columns:
            terminal.resize(request.rows, request.columns)
        ended = asyncio.get_running_loop().create_future()

        def forward(data: bytes) -> None:
            if not data:
                if not ended.done():
                    ended.set_result(None)
            elif writer.transport.get_write_buffer_size() < ATTACHED_BUFFER:
                writer.write(data)  # a client that stops reading loses output, not the child

        writer.write(encode({"id": request_id, "ok": True, "result": {"attached": request.target}}))
        terminal.observe(forward)
        try:
            while not ended.done():
                typing = asyncio.ensure_future(reader.read(4096))
                await asyncio.wait([typing, ended], return_when=asyncio.FIRST_COMPLETED)
                if not typing.done():
                    typing.cancel()
                    break
                if not typing.result():
                    break
                terminal.write(typing.result())
        finally:
            terminal.forget(forward)

    async def _add_sizes(self, rows: list[dict[str, Any]]) -> None:
        """Scratch sizes (walked off the loop) and router connections for ``ps``."""
        paths = [row["scratch"] for row in rows]
        sizes = await asyncio.to_thread(_scratch_sizes, paths)
        for row, size in zip(rows, sizes, strict=True):
            row["scratch_files"], row["scratch_bytes"] = size
            row["connections"] = (
                self._router.stats.connections[row["name"]]
                if self._router is not None and row["type"] == self._router.type_name
                else None
            )

    async def _follow(
        self,
        request_id: Any,
        follow: Follow,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        """Reply, then stream notices until the client leaves (its end of input). A client
        whose subscription stays full (it stopped reading) is cut off."""
        subscription = self._notices.subscribe(output=follow.output, patience=self._patience)
        subscription.on_stall = writer.transport.abort
        gone: asyncio.Future[Any] = asyncio.ensure_future(_until_closed(reader))
        getting: asyncio.Future[Any] = asyncio.ensure_future(subscription.get())
        try:
            history = [
                {"instance": name, "text": text, "stderr": stderr, "time": when}
                for when, name, text, stderr in self._history.last(
                    self._history.names(follow.targets), follow.lines
                )
            ]
            writer.write(encode({"id": request_id, "ok": True, "result": {"lines": history}}))
            await writer.drain()
            while follow.follow:
                await asyncio.wait([gone, getting], return_when=asyncio.FIRST_COMPLETED)
                if not getting.done():
                    break
                for notice in getting.result():
                    if _wanted(notice, follow):  # one at a time: the socket's buffer stays small
                        writer.write(encode(notice))
                        await writer.drain()
                        subscription.forgive()  # the client reads, however slowly
                getting = asyncio.ensure_future(subscription.get())
        finally:
            gone.cancel()
            getting.cancel()
            self._notices.unsubscribe(subscription)


def _wanted(notice: Notice, follow: Follow) -> bool:
    if follow.logs and notice["event"] not in ("output", "dropped"):
        return False
    if not follow.targets or "instance" not in notice:
        return True
    return selects(follow.targets, notice["instance"])


async def _until_closed(reader: asyncio.StreamReader) -> None:
    """Until the client's end of input; what it sends meanwhile is read and dropped, so it
    cannot pile up in memory."""
    while await reader.read(DISCARDED):
        pass


async def _lines(reader: asyncio.StreamReader) -> AsyncIterator[bytes | BadRequest]:
    """Request lines; an oversized one is reported once and skipped to its newline, and
    input that ends without a newline is a truncated request."""
    buffer = bytearray()
    skipping = False
    while chunk := await reader.read(65536):
        buffer += chunk
        while (newline := buffer.find(b"\n")) >= 0:
            line = bytes(buffer[:newline])
            del buffer[: newline + 1]
            if skipping:
                skipping = False
            elif line.strip():
                yield line
        if len(buffer) > MAX_REQUEST:
            if not skipping:
                yield BadRequest(f"request over {MAX_REQUEST} bytes; skipped to its newline")
            skipping = True
            buffer.clear()
    if buffer.strip() and not skipping:
        yield BadRequest("truncated request: the input ended before its newline")


def _same_user(writer: asyncio.StreamWriter) -> bool:
    sock: socket.socket | None = writer.get_extra_info("socket")
    if sock is None:
        return False
    uid = platform.peer_uid(sock)
    return uid is None or uid == os.getuid()  # None: the socket's mode 0600 is the check


def _error(request_id: Any, message: str) -> bytes:
    return encode({"id": request_id, "ok": False, "error": message})


def _scratch_sizes(paths: Sequence[str | None]) -> list[tuple[int | None, int | None]]:
    sizes: list[tuple[int | None, int | None]] = []
    for path in paths:
        if path is None or not os.path.isdir(path):
            sizes.append((None, None))
            continue
        counted = inventory(Path(path), largest=0)
        sizes.append((counted.files, counted.bytes))
    return sizes
