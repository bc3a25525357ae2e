"""The demo runs exported (issue 20): web binds the address in HOST (127.0.0.1 by default),
and traffic, with no procrunner router, sends its load to DEMO_TARGET_URL."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from typing import Any

import psutil
import pytest
from harness import App, wait_until
from test_demo_parts import accepts, free_port

START_TIMEOUT = 30.0


@pytest.fixture
def web(app: App) -> Iterator[Callable[[str | None], tuple[subprocess.Popen[bytes], int]]]:
    """``start(HOST)``: one web part on a free port; killed at the end."""
    started: list[subprocess.Popen[bytes]] = []

    def start(host: str | None) -> tuple[subprocess.Popen[bytes], int]:
        port = free_port()
        env = dict(app.env, PORT=str(port), DATABASE_URL="sqlite:///demo.sqlite3")
        if host is not None:
            env["HOST"] = host
        proc = subprocess.Popen([sys.executable, "-m", "procrunner.demo.web"], cwd=app.root,
                                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        started.append(proc)
        wait_until(lambda: accepts(port), START_TIMEOUT)
        return proc, port

    yield start
    for proc in started:
        proc.kill()
        proc.wait(10)


def listening_address(pid: int, port: int) -> str:
    (address,) = [c.laddr.ip for c in psutil.Process(pid).net_connections("tcp")
                  if c.status == psutil.CONN_LISTEN and c.laddr.port == port]
    return str(address)


@pytest.mark.parametrize(("host", "bound"), [(None, "127.0.0.1"), ("0.0.0.0", "0.0.0.0")])
def test_the_demo_web_binds_the_address_in_host(
    web: Any, host: str | None, bound: str) -> None:
    proc, port = web(host)
    assert listening_address(proc.pid, port) == bound


def test_the_demo_traffic_without_a_router_sends_its_load_to_demo_target_url(
    app: App, web: Any
) -> None:
    _, port = web(None)
    env = dict(app.env, DEMO_TARGET_URL=f"http://127.0.0.1:{port}", DEMO_SECONDS="1",
               DATABASE_URL="sqlite:///demo.sqlite3")
    result = subprocess.run([sys.executable, "-m", "procrunner.demo.traffic"], cwd=app.root,
                            env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert f"waiting for a web instance to answer at 127.0.0.1:{port}" in result.stdout


@pytest.mark.parametrize("url", ["https://web:5000", "web:5000", "http://web", "http://web:5000/x"])
def test_a_bad_demo_target_url_is_one_line_and_exit_2(app: App, url: str) -> None:
    result = subprocess.run([sys.executable, "-m", "procrunner.demo.traffic"], cwd=app.root,
                            env=dict(app.env, DEMO_TARGET_URL=url), capture_output=True,
                            text=True, timeout=60)
    assert (result.returncode, result.stderr) == (
        2, f"demo traffic: DEMO_TARGET_URL must be http://HOST:PORT, got {url!r}\n")
