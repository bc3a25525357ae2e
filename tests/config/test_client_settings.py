"""The client commands find a running formation from the settings they need (their flags,
PROCRUNNER_SOCKET, the `socket` of procrunner.yml), searching upward for the app, and never
read .env: a broken one must not keep anyone from stopping the formation."""

from __future__ import annotations

import subprocess
from pathlib import Path

from harness import PROCRUNNER, App, Run, kid, wait_until


def client(app: App, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*PROCRUNNER, *args], cwd=cwd or app.root, env=app.env,
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30)


def running(app: App) -> Run:
    app.procfile(f"worker: {kid('sleep')}\n")
    run = app.start()
    run.wait_for(r"worker\.1 +\| ready")
    return run


def test_a_socket_set_only_in_procrunner_yml_is_found(app: App) -> None:
    app.write("procrunner.yml", "socket: control.sock\n")
    run = running(app)
    assert wait_until(lambda: (app.root / "control.sock").exists())
    below = app.root / "sub" / "folder"
    below.mkdir(parents=True)
    listed = client(app, "ps", cwd=below)  # the app found upward, its settings file read
    assert listed.returncode == 0 and "worker.1" in listed.stdout, listed.stderr
    assert client(app, "stop").returncode == 0
    assert run.finish() == 0


def test_procrunner_socket_beats_the_settings_file_for_clients(app: App) -> None:
    app.write("procrunner.yml", "socket: control.sock\n")
    run = running(app)
    app.env["PROCRUNNER_SOCKET"] = str(app.root / "nobody.sock")
    missed = client(app, "ps")
    assert missed.returncode == 1 and "no procrunner is running" in missed.stderr
    del app.env["PROCRUNNER_SOCKET"]
    assert client(app, "stop").returncode == 0
    assert run.finish() == 0


def test_a_broken_env_file_does_not_stop_ps_or_stop(app: App) -> None:
    app.write(".env", "GOOD=1\n")
    run = running(app)
    app.write(".env", 'BROKEN="never closed\nPORT=abc\n')
    listed = client(app, "ps")
    assert listed.returncode == 0 and "worker.1" in listed.stdout, listed.stderr
    stopped = client(app, "stop")
    assert stopped.returncode == 0, stopped.stderr
    assert run.finish() == 0


def test_a_client_with_no_app_is_one_line(app: App) -> None:
    result = client(app, "ps")
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "no Procfile here" in result.stderr
