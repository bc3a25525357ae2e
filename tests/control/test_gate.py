"""The gate in front of the control socket and the dashboard, in process with a tiny line
server: idle connections are closed, the longest idle makes room at the limit, streams are
kept, and closing leaves no task behind for ``asyncio.run`` to complain about."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from http import HTTPStatus
from pathlib import Path
from typing import Any

from procrunner.control.gate import Gate, Visit

TIMEOUT = 10.0  # generous: both cores may be busy


async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, visit: Visit) -> None:
    """``ping`` gets ``pong``; ``stream`` makes the connection a stream (never idle)."""
    while line := await reader.readline():
        visit.served()
        if line == b"stream\n":
            writer.write(b"streaming\n")
            await asyncio.Event().wait()
        writer.write(b"pong\n")
        visit.waiting()


def farewell(reason: str, status: HTTPStatus) -> bytes:
    return f"bye {status.value} {reason}\n".encode()


async def connected(path: Path) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_unix_connection(path)


async def ask(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, line: bytes) -> bytes:
    writer.write(line)
    return await asyncio.wait_for(reader.readline(), TIMEOUT)


def run_gate(
    tmp_path: Path, scenario: Callable[[Path, Gate], Awaitable[Any]], **limits: Any
) -> tuple[Any, list[dict[str, Any]]]:
    """The scenario's result, and what reached the loop's exception handler."""
    path = tmp_path / "gate.sock"
    reported: list[dict[str, Any]] = []

    async def main() -> Any:
        loop = asyncio.get_running_loop()
        loop.set_exception_handler(lambda _, context: reported.append(context))
        sock = socket.socket(socket.AF_UNIX)
        sock.bind(str(path))
        sock.listen(64)
        gate = Gate("the test socket", echo, farewell, **limits)
        gate.open(sock)
        try:
            return await scenario(path, gate)
        finally:
            await gate.close()

    return asyncio.run(main()), reported


def test_a_connection_without_a_complete_request_is_closed_after_the_idle_time(
    tmp_path: Path,
) -> None:
    async def scenario(path: Path, _: Gate) -> tuple[bytes, bytes, bytes]:
        reader, writer = await connected(path)
        answered = await ask(reader, writer, b"ping\n")
        writer.write(b"half a requ")  # never completed
        bye = await asyncio.wait_for(reader.readline(), TIMEOUT)
        end = await asyncio.wait_for(reader.read(), TIMEOUT)
        writer.close()
        return answered, bye, end

    (answered, bye, end), reported = run_gate(tmp_path, scenario, idle_seconds=0.3)
    assert answered == b"pong\n"
    assert bye == b"bye 408 no complete request within 0.3 s\n" and end == b""
    assert reported == []


def test_at_the_limit_the_longest_idle_connection_makes_room(tmp_path: Path) -> None:
    async def scenario(path: Path, _: Gate) -> tuple[bytes, bytes, list[bytes]]:
        stream = await connected(path)
        streaming = await ask(*stream, b"stream\n")
        idle = [await connected(path) for _ in range(2)]
        await ask(*idle[0], b"ping\n")
        await ask(*idle[1], b"ping\n")  # idle[0] has waited the longest
        newcomer = await connected(path)
        answered = await ask(*newcomer, b"ping\n")
        seen = [await asyncio.wait_for(reader.readline(), TIMEOUT) for reader, _ in idle[:1]]
        for _, writer in [stream, *idle, newcomer]:
            writer.close()
        return streaming, answered, seen

    (streaming, answered, seen), reported = run_gate(tmp_path, scenario, limit=3)
    assert streaming == b"streaming\n" and answered == b"pong\n"
    assert seen == [b"bye 503 too many connections\n"]
    assert reported == []


def test_at_the_limit_with_only_streams_a_newcomer_is_turned_away(tmp_path: Path) -> None:
    async def scenario(path: Path, _: Gate) -> bytes:
        streams = [await connected(path) for _ in range(2)]
        for stream in streams:
            await ask(*stream, b"stream\n")
        reader, writer = await connected(path)
        refused = await asyncio.wait_for(reader.read(), TIMEOUT)
        for _, stream_writer in [*streams, (reader, writer)]:
            stream_writer.close()
        return refused

    refused, reported = run_gate(tmp_path, scenario, limit=2)
    assert refused == b"bye 503 too many connections\n"
    assert reported == []


def test_closing_ends_every_connection_and_leaves_no_task_behind(tmp_path: Path) -> None:
    async def scenario(path: Path, gate: Gate) -> tuple[list[bytes], set[asyncio.Task[Any]]]:
        clients = [await connected(path) for _ in range(3)]
        await ask(*clients[0], b"stream\n")
        await ask(*clients[1], b"ping\n")
        await gate.close()
        ends = [await asyncio.wait_for(reader.read(), TIMEOUT) for reader, _ in clients]
        for _, writer in clients:
            writer.close()
        left = asyncio.all_tasks() - {asyncio.current_task()}  # type: ignore[operator]
        return ends, left

    (ends, left), reported = run_gate(tmp_path, scenario)
    assert ends == [b"", b"", b""]
    assert left == set() and reported == []


# A gate whose process has a few dozen descriptors but a connection limit of 256: accepting
# fails with EMFILE. It serves until its standard input closes.
OUT_OF_DESCRIPTORS = """
import asyncio, resource, socket, sys
from procrunner.control.gate import Gate

async def echo(reader, writer, visit):
    while await reader.readline():
        visit.served()
        writer.write(b"pong\\n")
        visit.waiting()

async def main():
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (48, hard))
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(sys.argv[1])
    sock.listen(16)
    gate = Gate("the test socket", echo, lambda reason, status: b"bye\\n", limit=256)
    gate.open(sock)
    print("listening", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    await gate.close()

asyncio.run(main())
"""


def test_regression_out_of_descriptors_the_gate_makes_room_and_says_so_once(
    tmp_path: Path,
) -> None:
    path = tmp_path / "gate.sock"
    server = subprocess.Popen(
        [sys.executable, "-c", OUT_OF_DESCRIPTORS, str(path)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    held: list[socket.socket] = []
    try:
        assert server.stdout is not None and server.stdout.readline() == b"listening\n"
        while len(held) < 200:  # four times what the server has descriptors for
            held.append(connect_patiently(path))
        with connect_patiently(path) as client:
            client.settimeout(TIMEOUT)
            client.sendall(b"ping\n")
            assert client.recv(100) == b"pong\n"
    finally:
        for sock in held:
            sock.close()
        _, said = server.communicate(timeout=30)
    lines = said.decode().splitlines()
    assert len(lines) == 1, lines
    assert lines[0] == (
        "procrunner: the test socket cannot accept a connection: Too many open files; idle "
        "connections are closed to make room (raise the limit: ulimit -n)"
    )


def connect_patiently(path: Path) -> socket.socket:
    """Connected, even while the server's backlog is full for a moment."""
    deadline = time.monotonic() + TIMEOUT
    while True:
        sock = socket.socket(socket.AF_UNIX)
        try:
            sock.connect(str(path))
            return sock
        except BlockingIOError:
            sock.close()
            if time.monotonic() > deadline:
                raise
            time.sleep(0.001)
