"""Health checks, the release phase, one-shot steps, dependency conditions and stop commands,
end to end with real processes: a real HTTP server, real commands, real exits."""

from __future__ import annotations

import json
import re
import signal
import sys
from pathlib import Path

from tests.harness import App, free_ports, kid

HTTP_KID = f"{sys.executable} {Path(__file__).with_name('httpkid.py')}"


def test_http_readiness_then_liveness_restarts_a_server_that_hangs(app: App) -> None:
    app.procfile(f"web: {HTTP_KID} 2\n")
    app.write("procrunner.yml", (
        "types:\n  web:\n    ready: {http: /ready}\n"
        "    health: {http: /live, every: 200ms, timeout: 500ms, failures: 2, grace: 0}\n"))
    port = free_ports(1)
    run = app.start("-p", str(port))
    run.wait_for(rf"web\.1#1 ready: GET /ready on port {port} answered")
    run.wait_for(r"web\.1 +\| hanging")
    run.wait_for(r"web\.1#1 is unhealthy: 2 checks failed in a row \(last: timed out after "
                 r"0\.5s\)")
    run.wait_for(r"web\.1 restarting after unhealthy")
    run.wait_for(r"web\.1#2 started with pid \d+ .*replacing web\.1#1 \(unhealthy\)")
    run.wait_for(r"web\.1#2 ready: ")  # the default policy, stop-all, did not end the run
    run.signal(signal.SIGINT)
    assert run.finish() == 130
    assert re.search(r"web\.1 +\d+ +unhealthy \d", run.text()), run.text()


def test_exec_readiness_runs_with_the_instances_environment_in_the_app_root(app: App) -> None:
    app.procfile(f"worker: {kid('sleep')}\n")
    app.write("procrunner.yml", "types:\n  worker:\n    ready: {exec: 'test -e up.$PORT'}\n")
    port = free_ports(1)
    run = app.start("-p", str(port))
    run.wait_for(r"worker\.1 +\| ready")
    rows = json.loads(app.cli("ps", "--json").stdout)["instances"]
    assert rows[0]["state"] == "starting"
    assert rows[0]["ready"] == {"kind": "exec", "command": "test -e up.$PORT"}
    (app.root / f"up.{port}").write_text("")
    run.wait_for(r"worker\.1#1 ready: 'test -e up\.\$PORT' exited 0")
    run.signal(signal.SIGINT)
    assert run.finish() == 130


def test_the_release_runs_before_the_formation_even_for_start_web(app: App) -> None:
    app.procfile(f"release: echo migrating on port $PORT\nweb: {kid('sleep')}\n")
    port = free_ports(1)
    run = app.start("-p", str(port), "web")
    run.wait_for(r"web\.1 +\| ready")
    text = run.text()
    assert f"migrating on port {port}" in text  # its position's PORT
    completed = text.index("release.1 completed: the release phase is over")
    assert completed < text.index("web.1#1 started with pid")
    run.signal(signal.SIGINT)
    assert run.finish() == 130


def test_a_failed_release_ends_the_run_with_its_status_and_one_line(app: App) -> None:
    app.procfile(f"release: exit 3\nweb: {kid('sleep')}\n")
    run = app.start("-p", str(free_ports(1)))
    assert run.finish() == 3
    text = run.text()
    assert "the release phase failed (release.1#1 exited 3): stopping all processes" in text
    assert "web.1#1" not in text


def test_no_release_skips_the_release_phase(app: App) -> None:
    app.procfile(f"release: echo migrating\nweb: {kid('sleep')}\n")
    run = app.start("-p", str(free_ports(1)), "--no-release")
    run.wait_for(r"web\.1 +\| ready")
    run.signal(signal.SIGINT)
    assert run.finish() == 130
    assert "migrating" not in run.text() and "release.1" not in run.text()


def test_migrate_then_web_a_one_shot_step_and_a_completed_condition(app: App) -> None:
    app.procfile(f"migrate: echo migrated\nweb: {kid('sleep')}\n")
    app.write("procrunner.yml", "types:\n  migrate:\n    once: true\n"
              "  web:\n    depends_on: {migrate: completed}\n")
    run = app.start("-p", str(free_ports(1)))
    run.wait_for(r"web\.1 +\| ready")
    text = run.text()
    assert text.index("web.1 waits for migrate to complete (depends_on)") \
        < text.index("migrate.1 completed (once)") < text.index("web.1#1 started with pid")
    run.signal(signal.SIGINT)
    assert run.finish() == 130  # the one-shot's exit did not stop the formation


def test_a_failed_migrate_leaves_web_held_and_ps_says_why(app: App) -> None:
    app.procfile(f"migrate: exit 1\nweb: {kid('sleep')}\nworker: {kid('sleep')}\n")
    app.write("procrunner.yml", "types:\n  migrate:\n    once: true\n"
              "  web:\n    depends_on: {migrate: completed}\n")
    run = app.start("-p", str(free_ports(1)), "--restart", "never")
    why = "waits for migrate to complete, but migrate.1#1 exited 1"
    run.wait_for(re.escape(f"web.1 stays held: it {why} (depends_on)"))
    rows = {r["name"]: r for r in json.loads(app.cli("ps", "--json").stdout)["instances"]}
    assert rows["web.1"]["held"] == why and rows["web.1"]["state"] == "stopped"
    run.signal(signal.SIGINT)
    assert run.finish() == 130
    assert "web.1#1" not in run.text()


def test_a_stop_command_that_works_stops_the_instance_without_a_signal(app: App) -> None:
    app.procfile(f"redis: echo $$ > redis.pid; exec {kid('ignore-term')}\n")
    app.write("procrunner.yml", "types:\n  redis:\n    stop_command: kill -INT $(cat redis.pid)\n")
    run = app.start("-p", str(free_ports(1)), "-t", "30s")
    run.wait_for(r"redis\.1 +\| ignoring TERM")
    run.signal(signal.SIGINT)
    assert run.finish(timeout=10) == 130  # not the 15 s half of its timeout: it had exited
    text = run.text()
    assert "KeyboardInterrupt" in text, text  # the stop command's SIGINT ended it
    assert "did not stop" not in text and "stop command" not in text and "SIGKILL" not in text


def test_a_stop_command_that_hangs_is_killed_and_the_stop_sequence_follows(app: App) -> None:
    app.procfile(f"redis: {kid('ignore-term')}\n")
    app.write("procrunner.yml", "types:\n  redis:\n    stop_command: sleep 600\n"
              "    stop_timeout: 1s\n")
    run = app.start("-p", str(free_ports(1)))
    run.wait_for(r"redis\.1 +\| ignoring TERM")
    run.signal(signal.SIGINT)
    assert run.finish() == 130
    text = run.text()
    assert "redis.1#1: stop command 'sleep 600' still ran after 0.5s: killed it" in text
    assert re.search(r"redis\.1#1 did not stop on SIGTERM within \d+ ms: SIGKILL sent", text)
