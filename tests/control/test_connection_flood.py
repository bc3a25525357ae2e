"""Floods of connections to the control socket, from its own user (issue 17, part 2): with a
descriptor limit of 1024 or 128, more connections than descriptors, ``ps`` still answers, the
formation keeps its descriptors for its processes, and procrunner says nothing about it,
never a traceback per failed accept (that EMFILE path is in test_gate.py)."""

from __future__ import annotations

import contextlib
import resource
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.control.formation import formation
from tests.harness import App, kid, wait_until
from tests.test_control import control_path, ok, ps

# ps answers in about 0.1 s on an idle machine; the bound allows for both cores being busy.
PS_WITHIN = 3.0


@contextlib.contextmanager
def flood(path: Path, count: int) -> Iterator[list[socket.socket]]:
    """``count`` connections that never send a thing, held open."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < count + 100:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, count + 200), hard))
    held: list[socket.socket] = []
    deadline = time.monotonic() + 60
    try:
        while len(held) < count and time.monotonic() < deadline:
            sock = socket.socket(socket.AF_UNIX)
            try:
                sock.connect(str(path))
            except BlockingIOError:  # the backlog is full for a moment: the server is behind
                sock.close()
                time.sleep(0.001)
                continue
            held.append(sock)
        assert len(held) == count
        yield held
    finally:
        for sock in held:
            sock.close()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def timed_ps(app: App) -> float:
    started = time.monotonic()
    assert "worker.1" in ok(app, "ps")
    return time.monotonic() - started


@pytest.mark.parametrize("files", [1024, 128])
def test_regression_a_flood_of_1100_connections_leaves_ps_answering(
    app: App, files: int
) -> None:
    app.procfile(f"worker: {kid('sleep')}\n")
    with formation(app, files=files) as running, flood(control_path(app), 1100):
        took = [timed_ps(app) for _ in range(3)]
        assert wait_until(lambda: ps(app)["worker.1"]["state"] == "running")
    assert max(took) < PS_WITHIN, took
    assert running.stderr.read_text() == ""
    assert "Traceback" not in running.output()


@pytest.mark.slow
def test_an_idle_connection_is_closed_with_a_reason(app: App) -> None:
    app.procfile(f"worker: {kid('sleep')}\n")
    with formation(app), socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(30)
        sock.connect(str(control_path(app)))
        started = time.monotonic()
        received = b""
        while chunk := sock.recv(4096):
            received += chunk
        waited = time.monotonic() - started
    greeting, farewell = received.splitlines()
    assert b'"protocol":1' in greeting
    assert farewell == b'{"id":null,"ok":false,"error":"no complete request within 10 s"}'
    assert 9 < waited < 20
