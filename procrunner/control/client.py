"""The client side of the control socket, for ``ps``, ``scale``, ``events`` and the rest.

Blocking sockets and the standard library only: a client command must start fast.
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from procrunner.control.protocol import PROTOCOL, encode
from procrunner.control.socketpath import check_length
from procrunner.errors import NotRunning, ProcrunnerError

BUSY_RETRY = 0.01  # seconds between tries while the server's backlog is full


class Connection:
    def __init__(self, path: Path, root: Path, timeout: float | None = 10.0) -> None:
        check_length(path)  # else connect fails with a bare "AF_UNIX path too long"
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock.settimeout(timeout)
        self._path = path
        try:
            _connect(self._sock, path, timeout)
        except (FileNotFoundError, ConnectionRefusedError) as exc:
            self._sock.close()
            stale = " (its socket is stale)" if isinstance(exc, ConnectionRefusedError) else ""
            raise NotRunning(f"no procrunner is running for {root}{stale}") from None
        except OSError as exc:
            self._sock.close()
            raise ProcrunnerError(f"cannot connect: {exc.strerror}", str(path)) from None
        self._buffer = b""
        greeting = self._next()
        if greeting.get("protocol") != PROTOCOL:
            raise ProcrunnerError(
                f"speaks control protocol {greeting.get('protocol')!r}, this client "
                f"{PROTOCOL}: {greeting.get('error', 'use the same procrunner version')}",
                str(path),
            )
        self._ids = 0

    def close(self) -> None:
        self._sock.close()

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def request(self, command: str, **arguments: Any) -> Any:
        """Send one request and return its result; an error reply raises ProcrunnerError."""
        self._ids += 1
        self._sock.sendall(encode({"id": self._ids, "command": command, **arguments}))
        reply = self._next()
        if not reply.get("ok"):
            raise ProcrunnerError(str(reply.get("error", "request failed")), command)
        return reply.get("result")

    def notices(self) -> Iterator[dict[str, Any]]:
        """What the server streams after ``events`` or ``logs``, until it closes."""
        self._sock.settimeout(None)
        while line := self._line():
            yield json.loads(line)

    def notice(self, wait: float | None) -> dict[str, Any] | None:
        """The next streamed notice, or None if none came within ``wait`` seconds (None:
        as long as it takes); raises ``NotRunning`` when the server closes."""
        self._sock.settimeout(wait)
        try:
            line = self._line(quiet=True)
        except (TimeoutError, BlockingIOError):  # a wait of 0 makes the socket non-blocking
            return None
        if not line:
            raise NotRunning("procrunner closed the connection (the formation has stopped)")
        notice: dict[str, Any] = json.loads(line)
        return notice

    def has_more(self) -> bool:
        """Whether a whole notice has come already and waits to be read."""
        return b"\n" in self._buffer

    def take_raw(self) -> tuple[socket.socket, bytes]:
        """After ``connect``: the socket, and the bytes that came with the reply."""
        self._sock.settimeout(None)
        early, self._buffer = self._buffer, b""
        return self._sock, early

    def _next(self) -> dict[str, Any]:
        line = self._line()
        if not line:
            raise NotRunning("procrunner closed the connection (the formation has stopped)")
        message: dict[str, Any] = json.loads(line)
        return message

    def _line(self, quiet: bool = False) -> bytes:
        """The next line; ``quiet``: a timeout raises ``TimeoutError`` rather than saying
        that procrunner does not answer (what came so far stays buffered)."""
        while b"\n" not in self._buffer:
            try:
                chunk = self._sock.recv(65536)
            except TimeoutError:
                if quiet:
                    raise
                raise NotRunning(
                    f"procrunner did not answer within {self._sock.gettimeout():g} s "
                    f"at {self._path}"
                ) from None
            if not chunk:
                return b""
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line


def _connect(sock: socket.socket, path: Path, timeout: float | None) -> None:
    """Connect, waiting while the server's backlog is full: a Unix socket says so at once
    (EAGAIN) instead of waiting like a TCP one, and under a flood of connections it may be."""
    deadline = time.monotonic() + (timeout if timeout is not None else 10.0)
    while True:
        try:
            sock.connect(os.fsencode(path))
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                raise
            time.sleep(BUSY_RETRY)
