"""The watchdog helper, driven directly: what procrunner leaving without ``release()`` means
depends on whether any instance could have been started."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from procrunner.config.app import new_run_id
from procrunner.markers import RUN_MARKER, WATCHDOG_MODULE
from procrunner.supervise.watchdog import _KEEPER, Watchdog


@pytest.fixture
def marked() -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """A process in a session of its own that carries a run's marker, as instances do."""
    run_id = new_run_id()
    sleeper = subprocess.Popen(
        ["sleep", "60"], env={**os.environ, RUN_MARKER: run_id}, start_new_session=True
    )
    yield run_id, sleeper
    sleeper.kill()
    sleeper.wait()


def test_left_unreleased_once_armed_it_takes_the_run_down(
    marked: tuple[str, subprocess.Popen[bytes]],
) -> None:
    run_id, sleeper = marked
    with Watchdog(run_id, 1.0) as watchdog:
        watchdog.armed = True  # as the session does before the first spawn
    assert sleeper.wait(timeout=10) is not None  # stopped by the helper's sweep


def test_left_before_anything_started_it_sweeps_nothing(
    marked: tuple[str, subprocess.Popen[bytes]],
) -> None:
    """procrunner failed before spawning (a busy control socket, say): no sweep, which would
    cost the exit a walk over every process on the machine."""
    run_id, sleeper = marked
    with Watchdog(run_id, 1.0):
        pass
    assert sleeper.poll() is None


def _keeper(told: str, tmp_path: Path) -> str:
    """What the watchdog's shell hands to the Python take-down at end of file, through a
    stand-in for Python that prints its arguments and its input."""
    python = tmp_path / "python"
    python.write_text('#!/bin/sh\necho "ARGS $*"; cat\n')
    python.chmod(0o755)
    argv = ["/bin/sh", "-c", _KEEPER, WATCHDOG_MODULE, str(python), "RUN", "5.0"]
    done = subprocess.run(argv, input=told.encode(), capture_output=True, timeout=10)
    assert done.returncode == 0, done.stderr
    return done.stdout.decode()


def test_the_watchdog_shell_hands_on_only_live_groups_and_the_paths(tmp_path: Path) -> None:
    told = "+ 10 1.5\n+ 11 2.5\n+ 110 3.5\n- 11\n- 1\nscratch 6162\nsocket 6364\n+ 7"
    assert _keeper(told, tmp_path).split("\n") == [
        f"ARGS -m {WATCHDOG_MODULE} RUN 5.0", "+ 10 1.5", "+ 110 3.5", "scratch 6162",
        "socket 6364", "", "",
    ]  # fmt: skip


def test_the_watchdog_shell_told_done_runs_nothing(tmp_path: Path) -> None:
    assert _keeper("+ 10 1.5\ndone\n", tmp_path) == ""


def test_the_watchdog_is_a_shell_while_procrunner_lives() -> None:
    """A few hundred KiB, not a Python interpreter's megabytes, for the whole run."""
    with Watchdog(new_run_id(), 1.0) as watchdog:
        helper = psutil.Process(watchdog.pid)
        assert helper.cmdline()[:2] == ["/bin/sh", "-c"]
        assert WATCHDOG_MODULE in helper.cmdline()
        assert helper.memory_info().rss < 8 << 20
