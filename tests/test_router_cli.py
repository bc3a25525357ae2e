"""``procrunner start --router`` end to end: real instances, real sockets, real kills."""

from __future__ import annotations

import re
import signal
import socket
import time
from collections import Counter

import psutil

from tests.harness import App, Run, free_ports, kid

MIB = 1 << 20


def ask(port: int, command: bytes, timeout: float = 10.0) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as conn:
        conn.sendall(command)
        received = b""
        while chunk := conn.recv(65536):
            received += chunk
        return received.strip()


def started_pid(run: Run, label: str) -> int:
    return int(run.wait_for(rf"{re.escape(label)} started with pid (\d+)").group(1))


def test_router_spreads_connections_and_instances_move_up_one_port(app: App) -> None:
    base = free_ports(3)
    app.procfile(f"web: {kid('serve')}\nshow: {kid('env', 'PROCRUNNER_ROUTER', 'PORT')}\n")
    run = app.start("-p", str(base), "-m", "web=2,show=1", "--router")
    run.wait_for(rf"web\.1#1 started with pid \d+ \(port {base + 1}\)")
    run.wait_for(rf"web\.2#1 started with pid \d+ \(port {base + 2}\)")
    run.wait_for(rf"show\.1 +\| PROCRUNNER_ROUTER='127\.0\.0\.1:{base}'")
    run.wait_for(r"web\.\d#1 ready: port", count=2)
    answers = Counter(ask(base, b"who\n") for _ in range(40))
    assert set(answers) == {b"web.1", b"web.2"}
    run.signal(signal.SIGINT)
    assert run.finish() == 128 + signal.SIGINT
    rows = dict(re.findall(r"(web\.\d) .* (\d+)\n", run.text()))
    assert {name: int(n) for name, n in rows.items()} == {
        k.decode(): v for k, v in answers.items()
    }
    assert "router: 40 connections; 0 retried" in run.text()


def test_router_port_elsewhere_leaves_instance_ports_alone(app: App) -> None:
    base = free_ports(2)
    router_port = free_ports(1)
    app.procfile(f"api: {kid('serve')}\n")
    run = app.start(
        "-p", str(base), "--router-type", "api", "--router-port", str(router_port)
    )
    run.wait_for(rf"api\.1#1 started with pid \d+ \(port {base}\)")
    run.wait_for(r"api\.1#1 ready: port")
    assert ask(router_port, b"who\n") == b"api.1"
    run.signal(signal.SIGTERM)
    run.finish()


def test_a_killed_instance_closes_its_connections_and_the_router_goes_on(app: App) -> None:
    base = free_ports(2)
    app.procfile(f"web: {kid('serve')}\n")
    run = app.start("-p", str(base), "--router", "--restart", "always", "--backoff", "first=0s")
    pid = started_pid(run, "web.1#1")
    run.wait_for(r"web\.1#1 ready: port")
    with socket.create_connection(("127.0.0.1", base), timeout=10) as conn:
        conn.sendall(b"stream 1000000000\n")
        assert conn.recv(65536)
        psutil.Process(pid).kill()
        received = 0
        try:
            while chunk := conn.recv(1 << 20):
                received += len(chunk)
        except ConnectionResetError:
            pass
        assert received < 1_000_000_000
    run.wait_for(r"web\.1#2 ready: recovered in")
    assert ask(base, b"who\n") == b"web.1"
    run.signal(signal.SIGINT)
    run.finish()


def test_a_slow_client_does_not_grow_procrunners_memory(app: App) -> None:
    base = free_ports(2)
    app.procfile(f"web: {kid('serve')}\n")
    run = app.start("-p", str(base), "--router")
    run.wait_for(r"web\.1#1 ready: port")
    supervisor = psutil.Process(run.proc.pid)
    before = supervisor.memory_info().rss
    size = 200 * MIB
    with socket.create_connection(("127.0.0.1", base), timeout=10) as conn:
        conn.sendall(f"stream {size}\n".encode())
        received = len(conn.recv(65536))
        # Not reading for a while: the instance writes as fast as loopback allows, so an
        # unbounded proxy would hold tens of MiB within this window.
        deadline = time.monotonic() + 1.5
        peak = before
        while time.monotonic() < deadline:
            peak = max(peak, supervisor.memory_info().rss)
            time.sleep(0.05)
        while chunk := conn.recv(1 << 20):
            received += len(chunk)
    assert received == size
    assert peak - before < 16 * MIB
    run.signal(signal.SIGINT)
    run.finish()


def test_router_bad_input_is_one_line_and_status_2(app: App) -> None:
    app.procfile(f"web: {kid('serve')}\n")
    base = free_ports(2)
    cases = {
        ("--router-type", "nope"): "unknown process type 'nope'",
        ("-m", "web=100", "--router"): "at most 99 web instances while the router",
        ("--router-port", str(base)): f"port {base} is also web.1's port",
        ("--router-port", "http"): "'http' is not a port number",
    }
    for args, message in cases.items():
        result = app.cli("start", "-p", str(base), *args)
        assert result.returncode == 2, (args, result.stderr)
        assert message in result.stderr
        assert len(result.stderr.splitlines()) == 1 and "Traceback" not in result.stderr


def test_a_busy_router_port_is_one_line_and_status_2(app: App) -> None:
    base = free_ports(2)
    app.procfile(f"web: {kid('serve')}\n")
    with socket.create_server(("127.0.0.1", base)):
        result = app.cli("start", "-p", str(base), "--router")
    assert result.returncode == 2
    assert f"port {base} is busy" in result.stderr
    assert len(result.stderr.splitlines()) == 1 and "Traceback" not in result.stderr
    assert not app.census()


def test_check_shows_the_router_and_the_moved_ports(app: App) -> None:
    app.procfile(f"web: {kid('serve')}\nworker: {kid('sleep')}\n")
    result = app.cli("check", "-p", "6000", "-m", "web=3,worker=1", "--router")
    assert result.returncode == 0, result.stderr
    assert re.search(r"web +x3 +ports 6001-6003", result.stdout)
    assert re.search(r"worker +x1 +port 6100", result.stdout)
    assert "router: port 6000, in front of web" in result.stdout
