"""``procrunner wait``: exit 0 once the instances are ready, exit 1 with one line when they
will not be; against real formations, attached and detached, and on ``ps`` rows."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from typing import Any

import pytest

from procrunner.control.wait import judge
from procrunner.errors import ProcrunnerError
from tests.harness import PROCRUNNER, App, free_ports, kid, wait_until
from tests.test_detach import detached


def one_line(result: subprocess.CompletedProcess[str]) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_wait_returns_once_the_web_listens_and_not_before(app: App) -> None:
    app.procfile(f"web: read go < go.fifo && exec {kid('serve')}\nworker: {kid('sleep')}\n")
    os.mkfifo(app.root / "go.fifo")
    run = app.start("-p", str(free_ports(2)))
    run.wait_for(r"worker\.1 +\| ready")
    waiting = subprocess.Popen([*PROCRUNNER, "wait", "web", "--timeout", "60s"], cwd=app.root,
                               env=app.env, stdout=subprocess.PIPE, text=True)
    try:
        with pytest.raises(subprocess.TimeoutExpired):
            waiting.wait(1)  # web does not listen yet
        (app.root / "go.fifo").write_text("go\n")
        assert waiting.wait(30) == 0
    finally:
        waiting.kill()
        out = waiting.communicate()[0]
    assert out == "ready: web.1\n"
    run.wait_for(r"web\.1 +\| serving")
    run.signal(signal.SIGINT)
    assert run.finish() == 130


def test_a_formation_that_never_gets_ready_times_out_with_its_last_line(app: App) -> None:
    app.procfile(f"web: echo still booting; exec {kid('sleep')}\n")
    port = free_ports(1)
    run = app.start("-p", str(port))
    run.wait_for(r"web\.1 +\| ready")  # it says so, but never listens on its port
    started = time.monotonic()
    result = app.cli("wait", "--timeout", "1s")
    assert result.returncode == 1 and time.monotonic() - started >= 1
    assert one_line(result) == (
        f"procrunner wait: not ready after 1.0 s: web.1 is starting: waits for port {port}; "
        "last line of web.1: 'ready'"
    )
    run.signal(signal.SIGINT)
    assert run.finish() == 130


def test_an_instance_that_goes_fatal_fails_the_wait_at_once(app: App) -> None:
    app.procfile(f"web: {kid('sleep')}\nworker: echo cannot connect; exit 1\n")
    run = app.start("-p", str(free_ports(1)), "--restart", "on-failure", "--give-up", "3/60s",
                    "--backoff", "first=0.1s")
    run.wait_for(r"web\.1#1 started")  # the control socket is open
    result = app.cli("wait", "--timeout", "60s")
    assert result.returncode == 1
    assert one_line(result) == ("procrunner wait: worker.1 is fatal: procrunner gave up on it "
                                "(last: exited 1); last line of worker.1: 'cannot connect'")
    run.signal(signal.SIGINT)
    assert run.finish() == 130


def test_an_instance_held_behind_a_failed_step_fails_the_wait(app: App) -> None:
    app.procfile(f"migrate: echo migration 7 broke; exit 1\nweb: {kid('serve')}\n"
                 f"worker: {kid('sleep')}\n")  # keeps the run going
    app.write("procrunner.yml", "types:\n  migrate:\n    once: true\n"
              "  web:\n    depends_on: {migrate: completed}\n")
    run = app.start("-p", str(free_ports(1)), "--restart", "never")
    run.wait_for(r"migrate\.1#1 started")  # the control socket is open
    result = app.cli("wait", "web", "--timeout", "60s")
    assert result.returncode == 1
    assert one_line(result) == (
        "procrunner wait: web.1 waits for migrate to complete, but migrate.1#1 exited 1; "
        "last line of migrate.1: 'migration 7 broke'"
    )
    run.signal(signal.SIGINT)
    assert run.finish() == 130


def test_a_completed_one_shot_step_counts_as_ready(app: App) -> None:
    app.procfile(f"migrate: echo migrated\nweb: {kid('serve')}\n")
    app.write("procrunner.yml", "types:\n  migrate:\n    once: true\n"
              "  web:\n    depends_on: {migrate: completed}\n")
    run = app.start("-p", str(free_ports(1)))
    run.wait_for(r"migrate\.1#1 started")  # the control socket is open
    result = app.cli("wait", "--timeout", "60s")
    assert (result.returncode, result.stdout) == (0, "ready: migrate.1, web.1\n"), result.stderr
    run.signal(signal.SIGINT)
    assert run.finish() == 130


def test_a_failed_release_under_detach_is_reported_by_wait(app: App) -> None:
    app.procfile(f"release: echo migrating; sleep 0.5; exit 3\nweb: {kid('serve')}\n")
    with detached(app, "-p", str(free_ports(1))):
        result = app.cli("wait", "web", "--timeout", "60s")
        assert result.returncode == 1
        assert "the release phase failed" in one_line(result)
        assert wait_until(lambda: not app.census(), timeout=30)  # the run ended by itself
    after = app.cli("wait", "--timeout", "60s")  # the run is gone: its log tells why
    assert after.returncode == 1
    assert one_line(after) == (
        f"procrunner wait: no procrunner is running for {app.root.resolve()}; its last "
        "detached run ended: 'the release phase failed (release.1#1 exited 3)'"
    )


def test_waiting_for_an_unknown_type_is_bad_input(app: App) -> None:
    app.procfile(f"web: {kid('serve')}\n")
    run = app.start("-p", str(free_ports(1)))
    run.wait_for(r"web\.1 +\| serving")
    result = app.cli("wait", "wbe")
    assert result.returncode == 2
    assert one_line(result) == ("procrunner: wait: no instance or process type 'wbe' "
                                "(instances: web.1)")
    run.signal(signal.SIGINT)
    assert run.finish() == 130


def row(name: str, state: str, **fields: Any) -> dict[str, Any]:
    return {"name": name, "state": state, "ready": None, "held": None, "held_failed": None,
            "retry_at": None, "ended": [], **fields}


def test_judge_counts_clean_exits_as_done_and_waits_on_backoff() -> None:
    clean = [{"cause": "exited", "how": "exited 0"}]
    rows = [row("migrate.1", "exited", ended=clean), row("web.1", "running")]
    assert judge({"stopping": False, "instances": rows}, ()).ready == ("migrate.1", "web.1")
    crashed = [{"cause": "crash", "how": "exited 2"}]
    backoff = row("web.1", "backoff", ended=crashed, retry_at=time.time() + 5)
    verdict = judge({"stopping": False, "instances": [backoff]}, ["web"])
    assert verdict.waiting and verdict.waiting[0][1].startswith("backoff: restarts in ")
    down = row("worker.1", "exited", ended=crashed)
    assert judge({"stopping": False, "instances": [down]}, ()).failure == (
        "worker.1 exited 2 and stays down")
    stopping = judge({"stopping": True, "instances": [row("web.1", "running")]}, ())
    assert stopping.failure == "the formation is stopping"
    with pytest.raises(ProcrunnerError):
        judge({"stopping": False, "instances": [row("web.1", "running")]}, ["worker"])


def test_a_timeout_of_zero_answers_at_once(app: App) -> None:
    app.procfile(f"web: {kid('sleep')}\n")
    run = app.start("-p", str(free_ports(1)))
    run.wait_for(r"web\.1 +\| ready")
    result = app.cli("wait", "--timeout", "0")
    assert result.returncode == 1
    assert one_line(result).startswith("procrunner wait: not ready after 0 ms: web.1 is starting")
    run.signal(signal.SIGINT)
    assert run.finish() == 130
