"""The router in-process against real TCP backends: spread, readiness, retries, integrity."""

from __future__ import annotations

import asyncio
import hashlib
import os
import random
import socket
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from procrunner.router import HOST, Router

CHI_SQUARE_2DF_P001 = 13.82  # critical value: a fair spread over 3 fails 1 time in 1000


class Backend:
    """An instance stand-in: answers ``who``, echoes after ``echo``, counts connections."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.accepted = 0
        self.server: asyncio.Server | None = None

    @property
    def port(self) -> int:
        assert self.server is not None
        port: int = self.server.sockets[0].getsockname()[1]
        return port

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        command = await reader.readline()
        if command == b"who\n":
            writer.write(self.name.encode())
        elif command == b"echo\n":
            while chunk := await reader.read(65536):
                writer.write(chunk)
                await writer.drain()
        elif command == b"reset\n":
            writer.write(b"x" * 100_000)
            await writer.drain()
            writer.transport.abort()
            return
        writer.close()


@asynccontextmanager
async def routed(*names: str, seed: int = 1) -> AsyncIterator[tuple[Router, list[Backend]]]:
    backends = [Backend(name) for name in names]
    for backend in backends:
        backend.server = await asyncio.start_server(backend.handle, HOST, 0)
    router = Router("web", 0, random.Random(seed))
    await router.open()
    for backend in backends:
        router.set_ready(backend.name, backend.port)
    try:
        yield router, backends
    finally:
        await router.close()
        for backend in backends:
            assert backend.server is not None
            backend.server.close()


def router_port(router: Router) -> int:
    assert router._server is not None
    port: int = router._server.sockets[0].getsockname()[1]
    return port


async def ask(router: Router, command: bytes) -> bytes:
    reader, writer = await asyncio.open_connection(HOST, router_port(router))
    writer.write(command)
    answer = await reader.read()
    writer.close()
    return answer


def test_connections_spread_at_random_over_ready_instances() -> None:
    async def scenario() -> tuple[Counter[bytes], Router]:
        async with routed("web.1", "web.2", "web.3") as (router, _):
            answers = Counter([await ask(router, b"who\n") for _ in range(600)])
            return answers, router

    answers, router = asyncio.run(scenario())
    assert set(answers) == {b"web.1", b"web.2", b"web.3"}
    chi_square = sum((n - 200) ** 2 / 200 for n in answers.values())
    assert chi_square < CHI_SQUARE_2DF_P001, answers
    assert router.stats.connections == {k.decode(): v for k, v in answers.items()}


def test_the_same_seed_replays_the_same_choices() -> None:
    def choices(seed: int) -> list[str]:
        router = Router("web", 0, random.Random(seed))
        for number in (3, 1, 2):
            router.set_ready(f"web.{number}", 5000 + number)
        return [router.choose()[0] for _ in range(50)]  # type: ignore[index]

    assert choices(7) == choices(7)
    assert choices(7) != choices(8)


def test_an_instance_that_is_not_ready_gets_no_connection() -> None:
    async def scenario() -> tuple[Counter[bytes], list[Backend]]:
        async with routed("web.1", "web.2") as (router, backends):
            router.set_ready("web.2", None)
            return Counter([await ask(router, b"who\n") for _ in range(50)]), backends

    answers, backends = asyncio.run(scenario())
    assert answers == {b"web.1": 50}
    assert backends[1].accepted == 0


def test_a_refused_connection_is_retried_once_on_another_instance() -> None:
    async def scenario() -> tuple[Counter[bytes], Router]:
        async with routed("web.1") as (router, _):
            router.set_ready("web.2", unused_port())
            return Counter([await ask(router, b"who\n") for _ in range(40)]), router

    answers, router = asyncio.run(scenario())
    assert answers == {b"web.1": 40}
    assert router.stats.retried > 0
    assert router.stats.connections["web.2"] == 0


def test_with_no_instance_to_take_it_the_connection_is_closed() -> None:
    async def scenario() -> tuple[bytes, Router]:
        async with routed() as (router, _):
            router.set_ready("web.1", unused_port())
            router.set_ready("web.2", unused_port())
            first = await ask_allowing_reset(router, b"who\n")
            router.set_ready("web.1", None)
            router.set_ready("web.2", None)
            return first + await ask_allowing_reset(router, b"who\n"), router

    answer, router = asyncio.run(scenario())
    assert answer == b""
    assert router.stats.unrouted == 2


def test_large_transfers_in_both_directions_arrive_intact() -> None:
    payload = os.urandom(1 << 20) * 24  # 24 MiB each way, at once

    async def scenario() -> bytes:
        async with routed("web.1") as (router, _):
            reader, writer = await asyncio.open_connection(HOST, router_port(router))

            async def send() -> None:
                writer.write(b"echo\n")
                for offset in range(0, len(payload), 1 << 20):
                    writer.write(payload[offset : offset + (1 << 20)])
                    await writer.drain()
                writer.write_eof()  # half-close: the echo must still come back in full

            sending = asyncio.create_task(send())
            received = await reader.read(-1)
            await sending
            writer.close()
            return received

    received = asyncio.run(scenario())
    assert len(received) == len(payload)
    assert hashlib.sha256(received).digest() == hashlib.sha256(payload).digest()


def test_an_instance_dropping_a_connection_closes_only_that_connection() -> None:
    async def scenario() -> tuple[bytes, bytes]:
        async with routed("web.1") as (router, _):
            dropped = await ask_allowing_reset(router, b"reset\n")
            return dropped, await ask(router, b"who\n")

    dropped, after = asyncio.run(scenario())
    assert 0 < len(dropped) <= 100_000
    assert after == b"web.1"


async def ask_allowing_reset(router: Router, command: bytes) -> bytes:
    """What arrives before the connection ends; closing a socket with unread input resets."""
    reader, writer = await asyncio.open_connection(HOST, router_port(router))
    writer.write(command)
    received = b""
    try:
        while chunk := await reader.read(65536):
            received += chunk
    except ConnectionResetError:
        pass
    writer.close()
    return received


def unused_port() -> int:
    """A port nobody listens on: bound and released, never listened on."""
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
    return port
