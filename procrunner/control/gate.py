"""Who gets into a server, and for how long: the control socket's and the dashboard's door.

- At most ``limit`` connections at once: by default 256, and never more than a quarter of
  the process's descriptors, so that a flood cannot starve the supervisor of the pipes it
  needs to start a process. A connection waiting for a request is *idle*: it is
  closed when no complete request arrives within ``idle_seconds``, and at the limit the one
  idle the longest makes room for a newcomer, so a ``ps`` still gets in under a flood. When
  none is idle the newcomer is turned away at once.
- A connection that streams (``events``, ``logs``, ``connect``, the page's event stream) is
  never idle; the subscriptions it reads bound its memory instead.
- Out of descriptors (EMFILE and kin), the gate makes room the same way and backs off, and
  says so in one line at most once a minute, never a line per failed accept.
- Each connection is served by a task the gate owns and, on closing, cancels and waits for:
  none is left for ``asyncio.run`` to cancel (served by ``asyncio.start_server``, each such
  task printed "Exception in callback ... CancelledError" on some 3.11 patch releases).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import resource
import socket
import sys
import time
from collections.abc import Awaitable, Callable
from http import HTTPStatus

MAX_CONNECTIONS = 256
DESCRIPTOR_SHARE = 4  # connections of one server take at most 1/4 of the descriptor limit
IDLE_SECONDS = 10.0
LINGER_SECONDS = 5.0  # a finished connection's last bytes may take this long to leave
CLOSING_SECONDS = 1.0  # on closing the server, then the connections that still linger are cut
FIRST_PAUSE, LAST_PAUSE = 0.05, 1.0  # between accepts, while accepting fails
SAY_EVERY = 60.0  # seconds at least between two lines about failing accepts
_SHORT_OF_DESCRIPTORS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})

# What a connection turned out is sent: the reason, and the HTTP status that fits it.
Farewell = Callable[[str, HTTPStatus], bytes]


class Visit:
    """One connection's standing at the gate: idle (waiting for a request) or served."""

    def __init__(self, gate: Gate, writer: asyncio.StreamWriter) -> None:
        self.writer = writer
        self._gate = gate
        self._deadline: asyncio.TimerHandle | None = None

    def waiting(self) -> None:
        """Waiting for a request: closed unless one is complete in time, and the first to
        make room when the gate is full."""
        self.served()
        self._deadline = self._gate.wait_for_request(self)

    def served(self) -> None:
        """A complete request arrived, or the connection streams: kept open."""
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        self._gate.stop_waiting(self)


Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter, Visit], Awaitable[None]]


class Gate:
    def __init__(
        self,
        what: str,
        handler: Handler,
        farewell: Farewell,
        line_limit: int = 1 << 16,
        limit: int | None = None,
        idle_seconds: float = IDLE_SECONDS,
    ) -> None:
        self._what = what  # "the control socket", for the line about failing accepts
        self._handler = handler
        self._farewell = farewell
        self._line_limit = line_limit
        self._limit = limit if limit is not None else _fair_limit()
        self._idle_seconds = idle_seconds
        self._idle: dict[Visit, None] = {}  # in the order they began to wait: oldest first
        # accepted, their task not yet begun: a burst of accepts runs ahead of the tasks
        self._pending: dict[socket.socket, None] = {}
        self._visits: set[Visit] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._accepting: asyncio.Task[None] | None = None
        self._sock: socket.socket | None = None
        self._said_at: float | None = None

    def open(self, sock: socket.socket) -> None:
        """Start accepting on a listening socket (the gate closes it)."""
        sock.setblocking(False)
        self._sock = sock
        self._accepting = asyncio.create_task(self._accept(sock))

    async def close(self) -> None:
        """Stop accepting, then end every connection: each gets to send what it has written
        for a moment, then is cut."""
        if self._accepting is not None:
            self._accepting.cancel()
            await asyncio.wait([self._accepting])
        if self._sock is not None:
            self._sock.close()
        tasks = list(self._tasks)
        for connection in self._pending:  # a task cancelled before it began never closes it
            connection.close()
        self._pending.clear()
        for visit in self._visits:
            visit.writer.close()
        for task in tasks:
            task.cancel()
        if not tasks:
            return
        _, lingering = await asyncio.wait(tasks, timeout=CLOSING_SECONDS)
        if lingering:
            for visit in self._visits:
                visit.writer.transport.abort()
            await asyncio.wait(lingering)

    def wait_for_request(self, visit: Visit) -> asyncio.TimerHandle:
        self._idle[visit] = None
        reason = f"no complete request within {self._idle_seconds:g} s"
        loop = asyncio.get_running_loop()
        return loop.call_later(
            self._idle_seconds, self._turn_out, visit, reason, HTTPStatus.REQUEST_TIMEOUT
        )

    def stop_waiting(self, visit: Visit) -> None:
        self._idle.pop(visit, None)

    async def _accept(self, sock: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        pause = FIRST_PAUSE
        while True:
            try:
                connection, _ = await loop.sock_accept(sock)
            except ConnectionAbortedError:
                continue  # that client left before it was accepted
            except OSError as exc:
                if self._failed(exc):
                    await asyncio.sleep(0)  # the turned-out connection's descriptor is freed
                    continue
                await asyncio.sleep(pause)
                pause = min(pause * 2, LAST_PAUSE)
                continue
            pause = FIRST_PAUSE
            self._admit(connection)
            await asyncio.sleep(0)  # let its task begin before the next accept

    def _failed(self, exc: OSError) -> bool:
        """An accept failed: say so now and then, and make room if descriptors ran out.
        Whether room was made."""
        shortage = exc.errno in _SHORT_OF_DESCRIPTORS
        now = time.monotonic()
        if self._said_at is None or now - self._said_at >= SAY_EVERY:
            self._said_at = now
            then = (
                "idle connections are closed to make room (raise the limit: ulimit -n)"
                if shortage
                else "retrying with a pause"
            )
            print(f"procrunner: {self._what} cannot accept a connection: {exc.strerror}; {then}",
                  file=sys.stderr, flush=True)
        return shortage and self._make_room()

    def _admit(self, connection: socket.socket) -> None:
        if len(self._tasks) >= self._limit and not self._make_room():
            farewell = self._farewell("too many connections", HTTPStatus.SERVICE_UNAVAILABLE)
            with contextlib.suppress(OSError):
                connection.send(farewell)
            connection.close()
            return
        self._pending[connection] = None
        task = asyncio.create_task(self._serve(connection))
        self._tasks.add(task)
        task.add_done_callback(self._served)

    def _make_room(self) -> bool:
        """Turn out the connection idle the longest (one accepted but not yet served counts
        as idle); False when none is idle."""
        reason, status = "too many connections", HTTPStatus.SERVICE_UNAVAILABLE
        if self._idle:
            self._turn_out(next(iter(self._idle)), reason, status)
            return True
        if self._pending:
            connection = next(iter(self._pending))
            del self._pending[connection]  # its task sees it gone and ends
            with contextlib.suppress(OSError):
                connection.send(self._farewell(reason, status))
            connection.close()
            return True
        return False

    def _turn_out(self, visit: Visit, reason: str, status: HTTPStatus) -> None:
        visit.served()  # no longer idle: never turned out twice
        transport = visit.writer.transport
        if not transport.is_closing():
            transport.write(self._farewell(reason, status))  # sent now if the socket has room
            transport.abort()

    async def _serve(self, connection: socket.socket) -> None:
        if connection not in self._pending:
            return  # turned out before it began
        del self._pending[connection]
        try:
            reader, writer = await asyncio.open_connection(
                sock=connection, limit=self._line_limit
            )
        except OSError:
            connection.close()
            return
        visit = Visit(self, writer)
        self._visits.add(visit)
        visit.waiting()
        try:
            await self._handler(reader, writer, visit)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass  # the client went away
        finally:
            visit.waiting()  # a client that does not read what is left can be turned out
            await _part(writer)
            visit.served()
            self._visits.discard(visit)

    def _served(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            task.get_loop().call_exception_handler(
                {"message": f"{self._what}: a connection failed", "exception": task.exception()}
            )


def _fair_limit() -> int:
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return MAX_CONNECTIONS
    return max(1, min(MAX_CONNECTIONS, soft // DESCRIPTOR_SHARE))


async def _part(writer: asyncio.StreamWriter) -> None:
    """Close, letting what is written leave for a while; then cut the connection."""
    writer.close()
    try:
        async with asyncio.timeout(LINGER_SECONDS):
            await writer.wait_closed()
    except (TimeoutError, OSError):
        writer.transport.abort()
