"""One line, never a traceback, on the control side (issue 17, part 3): client commands piped
into a reader that stops early, and Ctrl-C or SIGTERM of a formation with a dashboard and an
``events`` client, on every Python 3.11 this machine has."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from tests.harness import PROCRUNNER, App, kid, wait_until
from tests.test_control import Raw, control_path, ps, started

TREE = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    "command", [["logs"], ["logs", "--no-follow"], ["events", "--output"], ["ps"]]
)
def test_client_commands_piped_into_a_reader_that_left_end_quietly(
    app: App, command: list[str]
) -> None:
    app.procfile(f"web: {kid('lines', '50', '100')}\n")
    run = started(app)
    try:
        run.wait_for(r"web\.1 +\| lines done")
        reading, writing = os.pipe()
        os.close(reading)  # like ``| head`` once it has had its lines: every write fails
        client = subprocess.Popen(
            [*PROCRUNNER, *command], cwd=app.root, env=app.env, stdin=subprocess.DEVNULL,
            stdout=writing, stderr=subprocess.PIPE,
        )
        os.close(writing)

        def ended() -> bool:
            """Until the client ends, a restart now and then gives events and logs something
            new to write: a restart before the client has subscribed (a slow start on a
            loaded machine) gives it nothing."""
            if client.poll() is not None:
                return True
            app.cli("restart", "web")
            return False

        assert wait_until(ended, 60, 0.5)
        _, said = client.communicate(timeout=30)
        assert (client.returncode, said) == (0, b"")
    finally:
        run.signal(signal.SIGINT)
        run.finish()


def interpreters() -> list[object]:
    """This venv's Python, and Debian's if it is another patch release of the same 3.11."""
    found: list[object] = [pytest.param(sys.executable, id=_version(sys.executable))]
    system = shutil.which("python3", path="/usr/bin")
    if system is not None and _version(system) != _version(sys.executable):
        found.append(pytest.param(system, id=_version(system)))
    return found


def _version(python: str) -> str:
    return subprocess.run(
        [python, "-c", "import platform; print(platform.python_version())"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()


@pytest.mark.parametrize("python", interpreters())
@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_regression_stopping_with_a_dashboard_and_an_events_client_prints_no_cancelled_error(
    app: App, python: str, stop: signal.Signals
) -> None:
    """``Exception in callback ... CancelledError`` came on 3.11.7, not on 3.11.2: each
    interpreter runs this tree with the project venv's packages (same 3.11 ABI)."""
    path = [os.environ.get("PYTHONPATH", ""), str(TREE), sysconfig.get_paths()["purelib"]]
    env = {**app.env, "PYTHONPATH": os.pathsep.join(p for p in path if p)}
    check = subprocess.run([python, "-c", "import psutil, yaml, dotenv, watchfiles"], env=env,
                           capture_output=True, text=True)
    if check.returncode != 0:
        pytest.skip(f"{python} cannot import the project's dependencies: {check.stderr[-200:]}")
    app.env = env
    app.procfile(f"worker: {kid('sleep')}\n")
    proc = subprocess.Popen(
        [python, "-m", "procrunner", "start", "--no-color", "--dashboard"], cwd=app.root,
        env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        assert wait_until(lambda: control_path(app).exists(), 20)
        assert wait_until(lambda: ps(app)["worker.1"]["state"] == "running", 20)
        follower = Raw(control_path(app))
        assert follower.ask(b'{"id": 1, "command": "events", "output": true}\n')["ok"]
        proc.send_signal(stop)
        out, err = proc.communicate(timeout=30)
        follower.close()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
    said = (out + err).decode(errors="replace")
    assert "dashboard on" in said and "summary" in said
    assert "CancelledError" not in said and "Exception in callback" not in said, said
    assert "Traceback" not in said, said
