"""Readiness checks: a log line, at once, a port whose listener is the incarnation's own, and
disarming when stopped first; the holder of a port named before a spawn."""

from __future__ import annotations

import asyncio
import contextlib
import http.server
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from procrunner.config.settings import Readiness
from procrunner.markers import INCARNATION_MARKER, RUN_MARKER, incarnation_marker
from procrunner.supervise import ports, readiness
from procrunner.supervise.events import Ready
from procrunner.supervise.ports import Holder, port_holder
from procrunner.supervise.probes import Site, check
from procrunner.supervise.readiness import ReadinessChecks
from tests.harness import KID, App, free_ports, kid

RUN = "run-test"


@contextlib.contextmanager
def spawned(
    argv: list[str], port: int, label: str | None = None, name: str = "foreign"
) -> Iterator[subprocess.Popen[bytes]]:
    """A process in its own session with PORT set (and the marker of incarnation ``label``
    when given, as procrunner spawns a leader); its whole group is killed at the end."""
    env = {**os.environ, "PORT": str(port), "PS": name}
    if label is not None:
        env.update({RUN_MARKER: RUN, INCARNATION_MARKER: incarnation_marker(RUN, label)})
    proc = subprocess.Popen(
        argv, env=env, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, start_new_session=True
    )
    try:
        yield proc
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
        assert proc.stdout is not None
        proc.stdout.close()


@contextlib.contextmanager
def foreign_listener(port: int) -> Iterator[subprocess.Popen[bytes]]:
    """A program procrunner did not start, serving on ``port`` (``who`` answers foreign)."""
    with spawned([sys.executable, str(KID), "serve"], port) as proc:
        assert proc.stdout is not None
        assert proc.stdout.readline() == b"serving\n"
        yield proc


def site(port: int) -> Site:
    return Site(port, dict(os.environ), Path.cwd())


async def until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.01)


def test_each_kind_posts_ready_for_its_incarnation() -> None:
    port = free_ports(1)

    async def scenario() -> list[Ready]:
        posted: list[Ready] = []
        checks = ReadinessChecks(posted.append, start_seconds=0.05)
        checks.arm(Readiness("log", r"^listening on \d+$"), "web.1", 3, site(0))
        checks.saw_output("web.1", b"booting\nloading\n")
        checks.saw_output("web.2", b"listening on 80\n")  # another instance: not web.1's line
        checks.saw_output("web.1", b"x\nlistening on 8080\n")
        checks.saw_output("web.1", b"listening on 8080\n")  # once only
        checks.arm(Readiness("none"), "clock.1", 1, site(0))
        uptime = checks.arm(Readiness("uptime"), "worker.1", 2, site(0))
        with spawned([sys.executable, str(KID), "serve"], port, "api.1#1"):
            probe = checks.arm(Readiness("port"), "api.1", 1, site(port))
            assert isinstance(probe, asyncio.Task)
            await asyncio.wait_for(probe, 10)
        checks.arm(Readiness("log", "never"), "late.1", 1, site(0))
        checks.disarm("late.1")
        checks.saw_output("late.1", b"never\n")
        assert isinstance(uptime, asyncio.TimerHandle)
        await asyncio.sleep(0.2)  # past the 50 ms uptime
        return posted

    posted = asyncio.run(scenario())
    assert sorted(posted, key=lambda r: r.instance) == [
        Ready("api.1", 1), Ready("clock.1", 1), Ready("web.1", 3), Ready("worker.1", 2)
    ]


def test_a_foreign_listener_on_the_port_does_not_make_the_instance_ready(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The instance's own listener, once the foreign one has gone, does; the probe's slower
    rechecks while the foreign one answered do not keep it waiting."""
    port = free_ports(1)
    go = tmp_path / "go"
    verdicts: list[bool] = []

    def recorded(label: str, port: int) -> bool:
        verdicts.append(ports.tree_listens(label, port))
        return verdicts[-1]

    monkeypatch.setattr(readiness, "tree_listens", recorded)
    later = f"while [ ! -e {go} ]; do sleep 0.02; done; exec {kid('serve')}"

    async def scenario() -> list[Ready]:
        posted: list[Ready] = []
        checks = ReadinessChecks(posted.append, start_seconds=1)
        with spawned(["/bin/sh", "-c", later], port, "web.1#1"):
            with foreign_listener(port):
                probe = checks.arm(Readiness("port"), "web.1", 1, site(port))
                assert isinstance(probe, asyncio.Task)
                await until(lambda: len(verdicts) >= 4)
                assert not posted and not any(verdicts)
            go.touch()
            await asyncio.wait_for(probe, 10)
        return posted

    assert asyncio.run(scenario()) == [Ready("web.1", 1)]
    assert verdicts[-1] is True


def probe_until_ready(readiness: Readiness, name: str, number: int, port: int) -> list[Ready]:
    """Arm a port check, wait until it ends; what it posted."""

    async def scenario() -> list[Ready]:
        posted: list[Ready] = []
        checks = ReadinessChecks(posted.append, start_seconds=1)
        probe = checks.arm(readiness, name, number, site(port))
        assert isinstance(probe, asyncio.Task)
        await asyncio.wait_for(probe, 10)
        return posted

    return asyncio.run(scenario())


def test_a_listener_deeper_in_the_tree_makes_the_instance_ready() -> None:
    port = free_ports(1)
    not_the_leader = f"{kid('serve')}; true"  # the shell stays: its child listens
    with spawned(["/bin/sh", "-c", not_the_leader], port, "web.2#4"):
        assert probe_until_ready(Readiness("port"), "web.2", 4, port) == [Ready("web.2", 4)]


def test_port_any_accepts_a_listener_outside_the_tree() -> None:
    port = free_ports(1)
    with foreign_listener(port):
        posted = probe_until_ready(Readiness("port", any_listener=True), "web.1", 1, port)
    assert posted == [Ready("web.1", 1)]


def test_port_holder_names_the_pid_and_command_of_a_listener() -> None:
    port = free_ports(1)
    with foreign_listener(port) as proc:
        holder = port_holder(port)
    assert holder == Holder(port, proc.pid, f"{sys.executable} {KID} serve")
    assert holder.describe() == f"port {port} is held by pid {proc.pid} ({holder.command})"


def test_port_holder_is_none_unless_someone_listens() -> None:
    port = free_ports(1)
    assert port_holder(port) is None
    with socket.socket() as bound:  # bound but not listening: nothing to wait for
        bound.bind(("127.0.0.1", port))
        assert port_holder(port) is None
    with (
        socket.create_server(("127.0.0.1", port)) as server,
        socket.create_connection(("127.0.0.1", port)) as client,
    ):
        server.accept()[0].close()  # the server side closes first: TIME_WAIT on the port
        client.recv(1)
    assert port_holder(port) is None


def test_a_holder_procrunner_cannot_see_is_another_users_process() -> None:
    assert Holder(80).describe() == "port 80 is held by another user's process"
    long = Holder(80, 7, "x" * 200).describe()
    assert long.endswith("...)") and len(long) < 160


def ask(port: int, command: bytes) -> bytes:
    """The reply to ``command``; empty when the router closes the connection unrouted."""
    received = b""
    with contextlib.suppress(ConnectionResetError), socket.create_connection(
        ("127.0.0.1", port), timeout=10
    ) as conn:
        conn.sendall(command)
        while chunk := conn.recv(65536):
            received += chunk
    return received.strip()


def test_a_foreign_listener_on_webs_port_gets_no_router_traffic(app: App) -> None:
    base = free_ports(2)
    app.procfile(f"web: {kid('sleep')}\n")  # never listens
    run = app.start("-p", str(base), "--router")
    run.wait_for(rf"web\.1#1 started with pid \d+ \(port {base + 1}\)")
    with foreign_listener(base + 1):
        # The probe connects every 50 ms and rechecks ownership after 0.05, 0.1, 0.2, 0.4,
        # 0.8 s: two seconds is room for many wrong answers, were it to believe the foreign one.
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline:
            assert ask(base, b"who\n") == b""
        run.signal(signal.SIGINT)
        run.finish()
    assert not re.search(r"web\.1#1 ready", run.text())
    assert "closed with no instance to take them" in run.text()


def test_port_any_routes_to_a_proxy_outside_the_tree(app: App) -> None:
    base = free_ports(2)
    app.procfile(f"web: {kid('sleep')}\n")
    app.write("procrunner.yml", "types:\n  web:\n    ready: {port: any}\n")
    run = app.start("-p", str(base), "--router")
    run.wait_for(rf"web\.1#1 started with pid \d+ \(port {base + 1}\)")
    with foreign_listener(base + 1):
        run.wait_for(r"web\.1#1 ready: port")
        assert ask(base, b"who\n") == b"foreign"
        run.signal(signal.SIGINT)
        run.finish()
    assert app.cli("config").stdout.count("port: any") == 1


def test_a_web_instance_whose_server_is_not_its_leader_becomes_ready(app: App) -> None:
    port = free_ports(1)
    app.procfile(f"web: {kid('serve')}; true\n")
    run = app.start("-p", str(port))
    run.wait_for(r"web\.1#1 ready: port")
    assert ask(port, b"who\n") == b"web.1"
    run.signal(signal.SIGINT)
    run.finish()


def test_a_foreign_listener_at_start_ends_the_run_naming_its_holder(app: App) -> None:
    port = free_ports(1)
    app.procfile(f"web: {kid('serve')}\nworker: {kid('sleep')}\n")
    with foreign_listener(port) as foreign:
        run = app.start("-p", str(port), "--run-for", "3s")
        status = run.finish()
    held = rf"port {port} is held by pid {foreign.pid} \(.*kid\.py serve\)"
    assert status == 1
    assert len(re.findall(held, run.text())) == 1
    assert not re.search(r"web\.1#1 started", run.text())


def test_a_wrong_port_readiness_names_the_spellings(app: App) -> None:
    app.procfile(f"web: {kid('sleep')}\n")
    app.write("procrunner.yml", "types:\n  web:\n    ready: {port: mine}\n")
    checked = app.cli("check")
    assert checked.returncode == 2
    assert "procrunner.yml:3" in checked.stderr and "{port: any}" in checked.stderr
    assert len(checked.stderr.strip().splitlines()) == 1


class _Answers(http.server.BaseHTTPRequestHandler):
    """``/CODE`` is answered with that status."""

    def do_GET(self) -> None:  # the name http.server calls
        self.send_response(int(self.path.strip("/")))
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


def test_one_check_passes_on_2xx_3xx_or_exit_0_and_says_why_otherwise() -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Answers)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    closed = free_ports(1)

    async def scenario() -> list[str | None]:
        return [
            await check("http", "/204", site(port), 2.0),
            await check("http", "302", site(port), 2.0),
            await check("http", "/503", site(port), 2.0),
            await check("exec", "test $PORT = 7", Site(7, {"PORT": "7"}, Path("/")),
                        2.0),
            await check("exec", "exit 4", site(port), 2.0),
            await check("exec", "sleep 30", site(port), 0.2),
            await check("port", None, site(port), 2.0),
            await check("port", None, site(closed), 2.0),
        ]

    try:
        results = asyncio.run(scenario())
    finally:
        server.shutdown()
        server.server_close()
    assert results == [
        None, None, "GET /503 answered 503", None, "'exit 4' exited 4",
        "timed out after 0.2s", None, f"Connect call failed ('127.0.0.1', {closed})",
    ]


def test_http_and_exec_readiness_post_ready_once_the_check_passes(tmp_path: Path) -> None:
    flag = tmp_path / "up"

    async def scenario() -> list[Ready]:
        posted: list[Ready] = []
        checks = ReadinessChecks(posted.append, start_seconds=1)
        where = Site(0, {"PATH": "/bin:/usr/bin", "FLAG": str(flag)}, tmp_path)
        probe = checks.arm(Readiness("exec", target='test -e "$FLAG"'), "db.1", 2, where)
        assert isinstance(probe, asyncio.Task)
        await asyncio.sleep(0.3)
        assert not posted
        flag.touch()
        await asyncio.wait_for(probe, 10)
        return posted

    assert asyncio.run(scenario()) == [Ready("db.1", 2)]
