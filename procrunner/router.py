"""The router: one port in front of a process type, each TCP connection forwarded to a ready
instance chosen at random, as Heroku's router does: no session affinity, so state kept in one
process's memory visibly breaks.

A plain byte proxy on asyncio protocols: no HTTP parsing. Each direction writes what it reads
and pauses its reader while the other side's send buffer is full, so a slow peer never makes
procrunner buffer more than a transport's high-water mark per connection.
"""

from __future__ import annotations

import asyncio
import errno
import random
from collections import Counter
from dataclasses import dataclass, field

from procrunner.errors import ProcrunnerError
from procrunner.supervise.facts import Fact, StateChanged
from procrunner.supervise.states import State

HOST = "127.0.0.1"
ROUTER_VARIABLE = "PROCRUNNER_ROUTER"  # every instance learns the router's HOST:PORT
ATTEMPTS = 2  # the chosen instance, then one other


@dataclass
class RouterStats:
    """Connections forwarded per instance, and those the router could not place."""

    type_name: str
    connections: Counter[str] = field(default_factory=Counter)
    retried: int = 0
    unrouted: int = 0


class Router:
    """Forwards connections on ``port`` to the instances the supervisor says are ready."""

    def __init__(self, type_name: str, port: int, rng: random.Random | None = None) -> None:
        self.type_name = type_name
        self.port = port
        self.stats = RouterStats(type_name)
        self._rng = rng or random.Random()
        self._ready: dict[str, int] = {}
        self._choices: list[tuple[str, int]] = []
        self._server: asyncio.Server | None = None
        self._open: set[asyncio.Transport] = set()
        self._placing: set[asyncio.Task[None]] = set()

    @property
    def address(self) -> str:
        return f"{HOST}:{self.port}"

    def variables(self) -> dict[str, str]:
        """What every instance's environment learns of the router."""
        return {ROUTER_VARIABLE: self.address}

    async def open(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            self._server = await loop.create_server(
                lambda: _Downstream(self), HOST, self.port, reuse_address=True
            )
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise ProcrunnerError(
                    f"port {self.port} is busy (another process listens there); "
                    "choose another with --router-port or -p",
                    "--router",
                ) from exc
            raise ProcrunnerError(f"cannot listen on port {self.port}: {exc.strerror}",
                                  "--router") from exc

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            for transport in list(self._open):
                transport.abort()
            await self._server.wait_closed()

    def follow(self, fact: Fact) -> None:
        """Its subscription to the supervisor's facts: only RUNNING instances of its type
        get connections."""
        if isinstance(fact, StateChanged) and fact.type_name == self.type_name:
            running = fact.state is State.RUNNING
            self.set_ready(fact.instance, fact.port if running else None)

    def set_ready(self, name: str, port: int | None) -> None:
        """``port`` None: the instance takes no new connections (down, stopping, not ready)."""
        if port is None:
            self._ready.pop(name, None)
        else:
            self._ready[name] = port
        self._choices = sorted(self._ready.items())

    def choose(self, exclude: str | None = None) -> tuple[str, int] | None:
        """A ready instance uniformly at random (sorted first, so a seed replays exactly)."""
        choices = [c for c in self._choices if c[0] != exclude]
        return self._rng.choice(choices) if choices else None

    def place(self, downstream: _Downstream, transport: asyncio.Transport) -> None:
        """Connect a new client to an instance, in a task held until done (the loop only
        keeps weak references to tasks)."""
        self._open.add(transport)
        task = asyncio.get_running_loop().create_task(self._connect(downstream))
        self._placing.add(task)
        task.add_done_callback(self._placing.discard)

    def forget(self, transport: asyncio.Transport) -> None:
        self._open.discard(transport)

    async def _connect(self, downstream: _Downstream) -> None:
        loop = asyncio.get_running_loop()
        tried: str | None = None
        for attempt in range(ATTEMPTS):
            target = self.choose(exclude=tried)
            if target is None:
                break
            name, port = target
            if attempt:
                self.stats.retried += 1
            try:
                await loop.create_connection(lambda: _Upstream(downstream), HOST, port)
            except OSError:
                tried = name
                continue
            self.stats.connections[name] += 1
            return
        self.stats.unrouted += 1
        downstream.close()


class _Side(asyncio.Protocol):
    """One socket of a proxied connection; what it reads goes to its peer."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.peer: _Side | None = None
        self.got_eof = False

    def data_received(self, data: bytes) -> None:
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.write(data)

    def eof_received(self) -> bool:
        self.got_eof = True
        peer = self.peer
        if peer is None or peer.got_eof or peer.transport is None:
            self.close()
            return False
        if peer.transport.can_write_eof():
            peer.transport.write_eof()
        return True  # half-closed: the other direction may still be talking

    def pause_writing(self) -> None:
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.resume_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self.close()

    def close(self) -> None:
        """Close both sockets; each flushes what it has buffered first."""
        for side in (self, self.peer):
            if side is not None and side.transport is not None:
                side.transport.close()


class _Downstream(_Side):
    """The client's connection; reading waits until an instance is connected."""

    def __init__(self, router: Router) -> None:
        super().__init__()
        self._router = router

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.pause_reading()
        self._router.place(self, transport)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.transport is not None:
            self._router.forget(self.transport)
        super().connection_lost(exc)


class _Upstream(_Side):
    """The connection to the chosen instance."""

    def __init__(self, downstream: _Downstream) -> None:
        super().__init__()
        self.peer = downstream

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport) and self.peer is not None
        self.transport = transport
        if self.peer.transport is None:  # the client left while we were connecting
            transport.close()
            return
        self.peer.peer = self
        self.peer.transport.resume_reading()
