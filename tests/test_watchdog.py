"""The watchdog helper, driven directly: what procrunner leaving without ``release()`` means
depends on whether any instance could have been started."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator

import pytest

from procrunner.config.app import new_run_id
from procrunner.markers import RUN_MARKER
from procrunner.supervise.watchdog import Watchdog


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
