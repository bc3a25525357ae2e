"""The control socket end to end: a real formation driven by the real client commands."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

import psutil
import pytest

from procrunner.control.socketpath import socket_path
from tests.harness import PROCRUNNER, App, Run, free_ports, kid, wait_until


def control_path(app: App) -> Path:
    return socket_path(app.root.resolve(), None, app.env)


def ps(app: App) -> dict[str, dict[str, Any]]:
    result = app.cli("ps", "--json")
    assert result.returncode == 0, result.stderr
    return {row["name"]: row for row in json.loads(result.stdout)["instances"]}


def ok(app: App, *args: str) -> str:
    result = app.cli(*args)
    assert result.returncode == 0, result.stderr
    return result.stdout


def started(app: App, *args: str) -> Run:
    run = app.start(*args)
    wait_until(lambda: control_path(app).exists())
    return run


class Raw:
    """A bare connection to the socket, to send what no well-behaved client would."""

    def __init__(self, path: Path) -> None:
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.settimeout(10)
        self.sock.connect(str(path))
        self.reader = self.sock.makefile("rb")
        self.greeting = self.next()

    def next(self) -> dict[str, Any]:
        line = self.reader.readline()
        assert line, "the server closed the connection"
        message: dict[str, Any] = json.loads(line)
        return message

    def ask(self, data: bytes) -> dict[str, Any]:
        self.sock.sendall(data)
        return self.next()

    def close(self) -> None:
        self.reader.close()
        self.sock.close()


def test_ps_shows_every_instance(app: App) -> None:
    base = free_ports(2)
    app.procfile(f"web: {kid('serve')}\nworker: {kid('sleep')}\n")
    run = started(app, "-p", str(base), "-m", "web=2,worker=1")
    assert wait_until(lambda: all(r["state"] == "running" for r in ps(app).values()))
    rows = ps(app)
    assert [(n, r["port"]) for n, r in rows.items()] == [
        ("web.1", base), ("web.2", base + 1), ("worker.1", base + 100)
    ]
    for name, row in rows.items():
        assert psutil.Process(row["pid"]).is_running()
        assert f"{name}#1 started with pid {row['pid']}" in run.text()
        assert row["incarnation"] == 1 and row["scratch_files"] == 0
    table = ok(app, "ps")
    assert re.search(r"web\.2 +running +\d+ +#1 ", table)
    run.signal(signal.SIGINT)
    run.finish()


def test_scale_up_and_down_starts_and_stops_real_processes(app: App) -> None:
    base = free_ports(3)
    app.procfile(f"web: {kid('serve')}\n")
    run = started(app, "-p", str(base), "--summary-json", "s.json")
    run.wait_for(r"web\.1#1 ready")
    assert "started: web.2, web.3" in ok(app, "scale", "web=3")
    run.wait_for(r"web\.3#1 ready: port (\d+)")
    rows = ps(app)
    assert {n: r["port"] for n, r in rows.items()} == {
        "web.1": base, "web.2": base + 1, "web.3": base + 2
    }
    pids = [rows["web.2"]["pid"], rows["web.3"]["pid"]]
    assert "stopping: web.2, web.3" in ok(app, "scale", "web=1")
    run.wait_for(r"web\.3#1 ended \(stopped by scaling down")
    wait_until(lambda: list(ps(app)) == ["web.1"])
    assert not any(psutil.pid_exists(pid) for pid in pids)
    ok(app, "stop")
    assert run.finish() == 0
    summary = json.loads((app.root / "s.json").read_text())["instances"]
    assert [i["name"] for i in summary] == ["web.1", "web.2", "web.3"]


def test_restart_makes_a_new_incarnation_with_a_new_scratch_dir(app: App) -> None:
    app.procfile(f"worker: {kid('env', 'TMPDIR')}\n")
    run = started(app)
    first = run.wait_for(r"worker\.1 +\| TMPDIR='(\S+)'").group(1)
    assert "restarting: worker.1" in ok(app, "restart", "worker")
    second = run.wait_for(r"worker\.1 +\| TMPDIR='(\S+)'", count=2).group(1)
    assert first != second and not Path(first).exists() and Path(second).is_dir()
    run.wait_for(r"worker\.1#1 ended \(stopped on request")
    assert ps(app)["worker.1"]["incarnation"] == 2
    assert ps(app)["worker.1"]["restarts"] == {"requested": 1}
    run.signal(signal.SIGTERM)
    run.finish()


def test_stop_one_instance_then_start_it_again(app: App) -> None:
    app.procfile(f"worker: {kid('sleep')}\n")
    run = started(app, "-m", "worker=2")
    run.wait_for(r"worker\.\d +\| ready", count=2)
    pid = ps(app)["worker.2"]["pid"]
    assert "stopping: worker.2" in ok(app, "stop", "worker.2")
    assert wait_until(lambda: ps(app)["worker.2"]["state"] == "stopped")
    assert not psutil.pid_exists(pid)
    assert ps(app)["worker.1"]["state"] in ("starting", "running")
    ok(app, "restart", "worker.2")
    run.wait_for(r"worker\.2#2 started with pid")
    run.signal(signal.SIGINT)
    run.finish()


def test_kill_sends_a_signal_to_the_group_and_chaos_now_kills(app: App) -> None:
    app.procfile(f"worker: {kid('signals')}\n")
    run = started(app)
    run.wait_for(r"worker\.1 +\| ready")
    assert "sent SIGHUP to: worker.1" in ok(app, "kill", "worker.1", "-s", "HUP")
    run.wait_for(r"worker\.1 +\| got SIGHUP")
    assert wait_until(lambda: ps(app)["worker.1"]["state"] == "running")
    assert "chaos: killed worker.1" in ok(app, "chaos", "now")
    run.wait_for(r"worker\.1#2 started with pid")
    assert ps(app)["worker.1"]["restarts"] == {"chaos": 1}
    run.signal(signal.SIGINT)
    run.finish()


def test_events_stream_in_order(app: App) -> None:
    app.procfile(f"worker: {kid('sleep')}\nextra: {kid('sleep')}\n")
    run = started(app, "-m", "worker=1,extra=0")
    raw = Raw(control_path(app))
    assert raw.ask(b'{"id": 1, "command": "events"}\n')["ok"] is True  # subscribed from here
    ok(app, "scale", "extra=1")
    seen: list[str] = []
    while "ready:" not in seen:
        notice = raw.next()
        if notice.get("instance", "extra.1") == "extra.1":
            seen.append(notice["event"] + ":" + str(notice.get("state", "")))
    assert seen == ["state:starting", "spawned:", "scaled:", "state:running", "ready:"]
    raw.close()
    run.signal(signal.SIGINT)
    run.finish()


def test_the_events_command_prints_json_lines_until_the_formation_stops(app: App) -> None:
    app.procfile(f"worker: {kid('sleep')}\n")
    run = started(app)
    events = subprocess.Popen(
        [*PROCRUNNER, "events"], cwd=app.root, env=app.env, stdout=subprocess.PIPE, text=True
    )
    assert events.stdout is not None
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(events.stdout or ()), daemon=True)
    reader.start()

    def poke() -> bool:
        """Make notices until the client shows one (it may not have subscribed yet)."""
        if not lines:
            ok(app, "restart", "worker")
        return bool(lines)

    assert wait_until(poke, timeout=20, interval=0.5)
    ok(app, "stop")
    assert events.wait(timeout=20) == 0 and run.finish() == 0
    reader.join(10)
    kinds = [json.loads(line)["event"] for line in lines]
    assert "shutdown" in kinds and kinds[-1] in ("state", "ended", "finished")


def test_logs_shows_recent_lines(app: App) -> None:
    app.procfile(f"worker: {kid('lines', '5', '20')}\n")
    run = started(app)
    run.wait_for(r"lines done")
    out = ok(app, "logs", "worker", "--lines", "3", "--no-follow")
    assert re.findall(r"worker\.1 \| worker\.1 (\d+)", out) == ["000000003", "000000004"]
    run.signal(signal.SIGINT)
    run.finish()


def test_logs_follows_new_output_of_the_chosen_instances(app: App) -> None:
    app.procfile(f"worker: {kid('signals')}\nother: {kid('signals')}\n")
    run = started(app)
    run.wait_for(r"other\.1 +\| ready")
    logs = subprocess.Popen(
        [*PROCRUNNER, "logs", "worker", "--lines", "0"],
        cwd=app.root, env=app.env, stdout=subprocess.PIPE, text=True,
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(logs.stdout or ()), daemon=True)
    reader.start()

    def poke() -> bool:
        if not lines:
            ok(app, "kill", "worker", "other", "-s", "USR1")
        return bool(lines)

    assert wait_until(poke, timeout=20, interval=0.5)
    ok(app, "stop")
    assert logs.wait(timeout=20) == 0 and run.finish() == 0
    reader.join(10)
    assert lines and all(re.fullmatch(r"\S+ worker\.1 \| got SIGUSR1\n", x) for x in lines)


def test_bad_requests_get_errors_and_the_formation_keeps_running(app: App) -> None:
    app.procfile(f"worker: {kid('sleep')}\n")
    run = started(app)
    raw = Raw(control_path(app))
    assert raw.greeting["protocol"] == 1 and raw.greeting["app"] == str(app.root.resolve())
    assert "not a JSON object" in raw.ask(b"{nope\n")["error"]
    assert "unknown command" in raw.ask(b'{"id": 7, "command": "fly"}\n')["error"]
    assert raw.ask(b'{"id": 8, "command": "scale", "counts": {"worker": -1}}\n')["id"] == 8
    assert "over 65536 bytes" in raw.ask(b'{"id": 1, "x": "' + b"a" * 10_000_000 + b'"}\n')[
        "error"
    ]
    assert raw.ask(b'{"id": 9, "command": "ps"}\n')["ok"] is True  # still in step
    other = Raw(control_path(app))
    assert other.ask(b'{"id": "b", "command": "ps"}\n')["id"] == "b"
    raw.sock.sendall(b'{"id": 10, "comm')
    raw.sock.shutdown(socket.SHUT_WR)
    assert "truncated request" in raw.next()["error"]
    raw.close()
    other.close()
    assert ps(app)["worker.1"]["state"] in ("starting", "running")
    run.signal(signal.SIGINT)
    assert run.finish() == 130


def test_errors_and_no_formation_are_one_line(app: App) -> None:
    app.procfile(f"worker: {kid('sleep')}\n")
    result = app.cli("ps")
    assert result.returncode == 1
    assert result.stderr == f"procrunner: no procrunner is running for {app.root.resolve()}\n"
    run = started(app)
    for args, message in {
        ("restart", "nope"): "no instance or process type 'nope'",
        ("scale", "web=2"): "unknown process type 'web'",
        ("kill", "worker.1", "-s", "BOGUS"): "unknown signal 'BOGUS'",
        ("chaos", "on", "every=x"): "invalid duration 'x'",
    }.items():
        result = app.cli(*args)
        assert result.returncode == 2, (args, result.stderr)
        assert message in result.stderr and len(result.stderr.splitlines()) == 1
    run.signal(signal.SIGINT)
    run.finish()


def test_a_second_start_of_the_same_app_is_refused(app: App) -> None:
    app.procfile(f"worker: {kid('sleep')}\n")
    run = started(app)
    second = app.cli("start")
    assert second.returncode == 2
    assert "already running" in second.stderr and "--socket" in second.stderr
    other = app.start("--socket", str(app.root / "second.sock"))
    other.wait_for(r"worker\.1 +\| ready")
    assert app.cli("ps", "--socket", str(app.root / "second.sock")).returncode == 0
    for each in (run, other):
        each.signal(signal.SIGINT)
        each.finish()
    assert not control_path(app).exists()


def test_a_stale_socket_is_replaced_and_the_socket_is_private(app: App) -> None:
    app.procfile(f"worker: {kid('sleep')}\n")
    path = control_path(app)
    path.parent.mkdir(mode=0o700, exist_ok=True)
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(str(path))
    stale.close()  # a dead procrunner's socket: the file stays, nobody listens
    run = started(app)
    run.wait_for(r"worker\.1 +\| ready")
    assert (path.stat().st_mode & 0o777, path.parent.stat().st_mode & 0o777) == (0o600, 0o700)
    assert ps(app)["worker.1"]["state"] in ("starting", "running")
    run.signal(signal.SIGINT)
    run.finish()


def test_unsafe_socket_paths_are_refused(app: App) -> None:
    app.procfile(f"worker: {kid('sleep')}\n")
    (app.root / "link.sock").symlink_to(app.root / "elsewhere")
    long = app.root / ("x" * 120)
    for path, message in {
        app.root / "link.sock": "is not a socket",
        long: "over the 107-byte limit",
    }.items():
        result = app.cli("start", "--socket", str(path))
        assert result.returncode == 2
        assert message in result.stderr and "Traceback" not in result.stderr
    assert not (app.root / "elsewhere").exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run a client as another user")
def test_a_peer_with_another_uid_is_refused(app: App) -> None:
    shared = Path(tempfile.mkdtemp(prefix="procrunner-test-"))  # reachable by nobody
    shared.chmod(0o755)
    path = shared / "control.sock"
    app.procfile(f"worker: {kid('sleep')}\n")
    run = app.start("--socket", str(path))
    run.wait_for(r"worker\.1 +\| ready")
    path.chmod(0o666)  # past the file mode, only the peer-uid check is left
    client = (
        "import socket,sys; s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); "
        "print(s.makefile().readline())"
    )
    result = subprocess.run(
        ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
         "/usr/bin/python3", "-c", client, str(path)],
        capture_output=True, text=True, timeout=30, env={**app.env, "PYTHONPATH": ""},
    )
    run.signal(signal.SIGINT)
    run.finish()
    shutil.rmtree(shared)
    assert "refused: another user" in result.stdout, result.stderr


def test_stop_with_no_argument_ends_start_with_status_0(app: App) -> None:
    app.procfile(f"worker: {kid('sleep')}\n")
    run = started(app)
    run.wait_for(r"worker\.1 +\| ready")
    ok(app, "stop")
    assert run.finish() == 0
    assert "stop requested through the control socket" in run.text()
    assert sys.executable  # the client ran with the same interpreter as the tests


def test_connect_attaches_to_a_tty_instance_and_detaches(app: App) -> None:
    repl = (
        f"{sys.executable} -c \"import sys; print('tty' if sys.stdin.isatty() else 'no tty'); "
        "[print('echo', line.strip()) for line in sys.stdin]\""
    )
    app.procfile(f"repl: {repl}\nplain: {repl}\n")
    run = started(app, "--tty", "repl", "--restart", "never")
    run.wait_for(r"repl\.1 +\| tty$")
    run.wait_for(r"plain\.1 +\| no tty$")
    connect = subprocess.Popen(
        [*PROCRUNNER, "connect", "repl.1"], cwd=app.root, env=app.env,
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    assert connect.stdin is not None and connect.stdout is not None
    connect.stdin.write(b"hello\n")
    connect.stdin.flush()
    seen = b""
    while b"echo hello" not in seen:
        chunk = connect.stdout.read1(4096)
        assert chunk, "connect ended before the echo"
        seen += chunk
    connect.stdin.write(b"\x1d")
    connect.stdin.flush()
    assert connect.wait(timeout=20) == 0
    assert connect.stderr is not None and b"detached" in connect.stderr.read()
    run.wait_for(r"repl\.1 +\| echo hello")
    assert ps(app)["repl.1"]["state"] in ("starting", "running")
    refused = app.cli("connect", "plain.1")
    assert refused.returncode == 2 and "start its type with --tty plain" in refused.stderr
    run.signal(signal.SIGINT)
    run.finish()


def test_a_slot_scaled_away_and_added_again_keeps_every_life(app: App) -> None:
    """Regression (issue 16): the re-added worker.2 was worker.2#1 again, and the summary,
    --summary-json and ps kept only its last life."""
    app.procfile(f"worker: {kid('sleep')}\n")
    run = started(app, "-m", "worker=2", "--summary-json", "s.json")
    run.wait_for(r"worker\.2 +\| ready")
    assert "stopping: worker.2" in ok(app, "scale", "worker=1")
    run.wait_for(r"worker\.2#1 ended \(stopped by scaling down")
    assert wait_until(lambda: list(ps(app)) == ["worker.1"])
    assert "started: worker.2" in ok(app, "scale", "worker=2")
    run.wait_for(r"worker\.2#2 started with pid")
    row = ps(app)["worker.2"]
    assert row["incarnation"] == 2 and row["restarts"] == {"scaled": 1}
    assert [e["label"] for e in row["ended"]] == ["worker.2#1"]
    run.signal(signal.SIGINT)
    run.finish()
    assert re.search(r"^\S+ system +\| +worker\.2 +2 +scaled 1 ", run.text(), re.MULTILINE)
    summary = json.loads((app.root / "s.json").read_text())["instances"]
    worker = next(i for i in summary if i["name"] == "worker.2")
    assert [e["label"] for e in worker["incarnations"]] == ["worker.2#1", "worker.2#2"]
    assert [e["number"] for e in worker["incarnations"]] == [1, 2]


def test_scale_does_not_say_started_for_an_instance_that_failed_to_start(app: App) -> None:
    """Regression (issue 17): ``procrunner scale`` printed ``started`` for an instance
    whose spawn failed (here: the app root it runs in has vanished)."""
    app.procfile(f"main: {kid('sleep')}\nworker: {kid('sleep')}\n")
    (app.root / "work").mkdir()
    app.env["PROCRUNNER_SOCKET"] = str(app.root / "ctl.sock")
    run = app.start("-f", "Procfile", "-d", "work", "-m", "main=1,worker=0")
    run.wait_for(r"main\.1 +\| ready")
    (app.root / "work").rmdir()
    reply = ok(app, "scale", "worker=1", "-f", "Procfile")
    assert "started: none" in reply and "failed to start: worker.1" in reply
    run.wait_for(r"failed to start worker\.1#1")
    assert wait_until(lambda: ps(app)["main.1"]["state"] == "running")
    run.signal(signal.SIGINT)
    run.finish()
