"""Containment: a cgroup per incarnation holds what leaves group, session and marker.

The escapees (``escapee.py``) empty their environment, so the ``app`` fixture's census cannot
see them: ``escaped()`` finds them by a token in their arguments instead. The run's cgroup is
read from the leader's ``/proc/PID/cgroup`` while it runs, and must be gone afterwards.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from harness import App, Run, kid, wait_until

from procrunner import platform

ESCAPEE = Path(__file__).with_name("escapee.py")
SHAPES = ("env-i-setsid", "env-i-double-fork", "storm")
STOPS = ("SIGINT", "SIGKILL", "SIGKILL-both")


def _cgroups_or_skip() -> None:
    if not platform.containment().startswith("cgroup"):
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI must run the cgroup tests: {platform.containment()}")
        pytest.skip(f"no cgroup to use here: {platform.containment()}")


@pytest.fixture
def token() -> Iterator[str]:
    """A word in every escapee's arguments; what is still alive at the end is killed."""
    word = f"escapee-{uuid.uuid4().hex}"
    yield word
    deadline = time.monotonic() + 130  # escapees end by themselves within their lifetime
    while (left := escaped(word)) and time.monotonic() < deadline:
        for proc in left:
            with contextlib.suppress(psutil.Error):
                proc.kill()
        time.sleep(0.01)


def escaped(token: str) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter():
        with contextlib.suppress(psutil.Error):
            if token in proc.cmdline() and proc.status() != psutil.STATUS_ZOMBIE:
                found.append(proc)
    return found


def run_cgroup(run: Run) -> Path:
    """The run's cgroup directory, read from its first leader (once it printed a line: it
    is in its cgroup before it runs anything)."""
    pid = int(run.wait_for(r"#1 started with pid (\d+)").group(1))
    line = Path(f"/proc/{pid}/cgroup").read_text().splitlines()[-1]
    relative = line.partition("::")[2]
    name = relative.strip("/").split("/")[-2]
    assert name.startswith(platform.RUN_CGROUP_PREFIX), line
    cgroup = platform.run_cgroup(name.removeprefix(platform.RUN_CGROUP_PREFIX))
    assert cgroup is not None and cgroup.path.is_dir()
    return cgroup.path


def _watchdog(app: App) -> psutil.Process:
    for proc in app.census():
        with contextlib.suppress(psutil.Error):
            if "procrunner.supervise.watchdog" in proc.cmdline():
                return proc
    raise AssertionError("no watchdog found")


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("how", STOPS)
def test_escapees_that_leave_group_session_and_marker_are_gone(
    app: App, token: str, shape: str, how: str
) -> None:
    _cgroups_or_skip()
    app.procfile(f"web: {sys.executable} {ESCAPEE} {shape} {token}\n")
    run = app.start("-t", "1")
    run.wait_for(rf"escaped {shape}")
    cgroup = run_cgroup(run)
    assert wait_until(lambda: len(escaped(token)) >= 2)  # the leader and its escapee
    if how == "SIGKILL-both":
        _watchdog(app).kill()
    run.signal(getattr(signal, how.partition("-")[0]))
    run.finish()
    if how == "SIGKILL-both":
        assert escaped(token), "nothing left for the next start to sweep"
        app.procfile(f"web: {kid('sleep')}\n")
        again = app.start("-t", "1")
        again.wait_for(r"stopped \d+ processes of run .* left by a procrunner that died")
        again.wait_for(r"web\.1 +\| ready")
        again.signal(signal.SIGINT)
        assert again.finish() == 130
    assert wait_until(lambda: escaped(token) == [], timeout=10), [
        p.cmdline() for p in escaped(token)
    ]
    assert wait_until(lambda: not cgroup.exists(), timeout=5), "the run's cgroup is left"


def test_ps_and_check_say_a_cgroup_holds_each_incarnation(app: App) -> None:
    _cgroups_or_skip()
    app.procfile(f"web: {kid('sleep')}\n")
    assert "containment: cgroup v2 per incarnation" in app.cli("check").stdout
    run = app.start()
    run.wait_for(r"web\.1 +\| ready")
    assert wait_until(lambda: "containment: cgroup" in app.cli("ps").stdout)
    run.signal(signal.SIGINT)
    assert run.finish() == 130


def test_without_cgroups_check_and_ps_name_the_fallback(app: App) -> None:
    app.env[platform.CGROUP_SWITCH] = "off"
    app.procfile(f"web: {kid('sleep')}\n")
    check = app.cli("check").stdout
    assert "containment: process group + session + marker" in check
    assert "env -i + setsid escapee is not seen" in check
    run = app.start()
    run.wait_for(r"web\.1 +\| ready")
    assert wait_until(lambda: "containment: group+session+marker" in app.cli("ps").stdout)
    run.signal(signal.SIGINT)
    assert run.finish() == 130


@pytest.mark.parametrize("how", ["SIGINT", "SIGKILL"])
def test_without_cgroups_the_session_still_holds_an_env_i_double_fork(
    app: App, token: str, how: str
) -> None:
    """The fallback: a descendant that cleared its environment and left the group (setpgid
    plus a double fork) is still in the leader's session."""
    app.env[platform.CGROUP_SWITCH] = "off"
    app.procfile(f"web: {sys.executable} {ESCAPEE} env-i-double-fork {token}\n")
    run = app.start("-t", "1")
    run.wait_for(r"escaped env-i-double-fork")
    assert wait_until(lambda: len(escaped(token)) >= 2)
    run.signal(getattr(signal, how))
    run.finish()
    assert wait_until(lambda: escaped(token) == [], timeout=10)


def test_without_cgroups_an_env_i_setsid_escapee_is_not_seen(app: App, token: str) -> None:
    """The limit the README states: the same escapee the cgroup test stops survives the
    fallback (the ``token`` fixture then kills it). Without this, that test proves nothing."""
    app.env[platform.CGROUP_SWITCH] = "off"
    app.procfile(f"web: {sys.executable} {ESCAPEE} env-i-setsid {token}\n")
    run = app.start("-t", "1")
    run.wait_for(r"escaped env-i-setsid")
    run.signal(signal.SIGINT)
    assert run.finish() == 130
    assert len(escaped(token)) == 1
