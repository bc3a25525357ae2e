"""Followers that stop reading, and input that nobody asked for: procrunner's memory stays
bounded in bytes, whatever the lines' length (issue 17, part 1)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path

import psutil
import pytest

from procrunner.control.history import OutputHistory
from procrunner.control.notices import Notices
from procrunner.control.protocol import encode
from procrunner.control.server import ControlServer
from procrunner.supervise.events import Event
from tests.control.formation import formation
from tests.harness import App, kid, wait_until
from tests.test_control import Raw, control_path, ok

MIB = 1 << 20


def follower(path: Path, command: str) -> Raw:
    """Subscribed (its reply read), then never reading again."""
    raw = Raw(path)
    reply = raw.ask(encode({"id": 1, "command": command, "output": True}))
    assert reply["ok"], reply
    return raw


def test_regression_five_idle_followers_of_megabyte_lines_stay_under_100_mb(app: App) -> None:
    done = app.root / "done"
    app.procfile(f"big: {kid('lines', '150', str(MIB), str(done))}\nidle: {kid('sleep')}\n")
    with formation(app, "-m", "big=0,idle=1", keep_stdout=False) as running:
        followers = [follower(control_path(app), ("events", "logs")[n % 2]) for n in range(5)]
        procrunner = psutil.Process(running.proc.pid)
        peak = 0

        def finished() -> bool:
            nonlocal peak
            peak = max(peak, procrunner.memory_info().rss)
            return done.with_name("done.big.1").exists()

        ok(app, "scale", "big=1")  # 150 lines of 1 MiB, through five followers who never read
        assert wait_until(finished, timeout=120, interval=0.05)
        ok(app, "ps")  # the last lines are through the printer too
        finished()
        for raw in followers:
            raw.close()
    assert peak < 100 * MIB, f"procrunner grew to {peak / MIB:.0f} MB"


def test_regression_input_after_an_events_request_is_read_and_dropped(app: App) -> None:
    app.procfile(f"worker: {kid('sleep')}\n")
    with formation(app, keep_stdout=False) as running:
        procrunner = psutil.Process(running.proc.pid)
        before = procrunner.memory_info().rss
        raw = follower(control_path(app), "events")
        peak = before
        junk = b"y" * MIB
        for sent in range(300):  # 300 MB that the server must not keep
            raw.sock.sendall(junk)
            if sent % 10 == 0:
                peak = max(peak, procrunner.memory_info().rss)
        raw.close()
        assert "worker.1" in ok(app, "ps")
    assert peak - before < 50 * MIB, f"procrunner grew by {(peak - before) / MIB:.0f} MB"


@contextlib.asynccontextmanager
async def followed(tmp_path: Path, patience: float) -> AsyncIterator[tuple[Notices, Raw]]:
    """A control server in process, with no supervisor (followers need none), and a
    follower of its ``events``."""
    path = tmp_path / "control.sock"
    notices = Notices()
    queue: asyncio.Queue[Event] = asyncio.Queue()
    server = ControlServer(path, tmp_path, queue, notices, OutputHistory(), None, patience)
    await server.open(private_parent=False)
    try:
        client = await asyncio.to_thread(follower, path, "events")
        try:
            yield notices, client
        finally:
            client.close()
    finally:
        await server.close()


def test_regression_a_follower_that_stops_reading_is_cut_off_once_its_queue_stays_full(
    tmp_path: Path,
) -> None:
    """With a patience of 1 s instead of 30."""

    async def scenario() -> tuple[bool, int]:
        async with followed(tmp_path, 1.0) as (notices, client):
            line = "z" * MIB
            for _ in range(1000):  # about 10 s at most
                notices.post("output", instance="big.1", stderr=False, lines=[line])
                await asyncio.sleep(0.01)
                if not notices.wants_output:  # unsubscribed: the server let the follower go
                    break
            return not notices.wants_output, await asyncio.to_thread(_read_to_the_end, client)

    cut_off, received = asyncio.run(scenario())
    assert cut_off
    assert received < 64 * MIB  # what was in the socket's buffers, then the end


def _read_to_the_end(client: Raw) -> int:
    total = 0
    while chunk := client.sock.recv(MIB):
        total += len(chunk)
    return total


@pytest.mark.slow
def test_a_slow_follower_that_keeps_reading_is_not_cut_off(tmp_path: Path) -> None:
    """It loses notices (and is told), but it reads: its patience starts over each time."""

    async def scenario() -> tuple[bool, bytes]:
        async with followed(tmp_path, 2.0) as (notices, client):  # 2 s: room for a busy machine
            received = bytearray()
            reading = threading.Thread(target=_read_slowly, args=(client.sock, received))
            reading.start()
            for _ in range(500):  # 5 s or more: two and a half times the patience
                notices.post("output", instance="big.1", stderr=False, lines=["z" * 1024] * 64)
                await asyncio.sleep(0.01)
            still_following = notices.wants_output
            client.sock.shutdown(socket.SHUT_RDWR)
            await asyncio.to_thread(reading.join, 10)
            return still_following, bytes(received)

    still_following, received = asyncio.run(scenario())
    assert still_following
    assert b'{"event":"dropped"' in received


def _read_slowly(sock: socket.socket, into: bytearray) -> None:
    """64 KiB every 100 ms, about 650 kB/s: far less than is posted, and a full queue's
    4 MiB take longer than the patience."""
    while chunk := sock.recv(64 * 1024):
        into += chunk
        time.sleep(0.1)
