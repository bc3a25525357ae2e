"""The ``app`` fixture: a throwaway app directory whose processes must all be gone at the end."""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from harness import App
from postgres_cluster import demo_database_url, postgres_cluster  # noqa: F401 (the demo's)


@pytest.fixture
def app(tmp_path: Path) -> Iterator[App]:
    application = App(tmp_path)
    yield application
    for run in application.runs:
        if run.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(run.proc.pid, signal.SIGKILL)
            run.proc.wait(10)
    leftovers = application.census()
    described = []
    for proc in leftovers:
        with contextlib.suppress(psutil.Error):
            described.append(" ".join(proc.cmdline()))
            proc.kill()
    assert not leftovers, f"processes left behind: {described}"
