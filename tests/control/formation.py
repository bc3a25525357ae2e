"""A ``procrunner start`` for the control-side limits: its output goes to a file (megabytes of
lines must not fill the test's memory), and it may run under a descriptor limit."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.harness import PROCRUNNER, App, wait_until
from tests.test_control import control_path


@dataclass(frozen=True)
class Formation:
    proc: subprocess.Popen[bytes]
    stdout: Path
    stderr: Path

    def output(self) -> str:
        return self.stdout.read_text(errors="replace") + self.stderr.read_text(errors="replace")


@contextlib.contextmanager
def formation(
    app: App, *args: str, files: int | None = None, keep_stdout: bool = True
) -> Iterator[Formation]:
    """Started and its control socket up; stopped with SIGINT (then SIGKILL) at the end.
    ``files``: its descriptor limit."""
    limit = ["prlimit", f"--nofile={files}"] if files is not None else []
    stdout, stderr = app.root / "procrunner.out", app.root / "procrunner.err"
    with (
        (stdout.open("wb") if keep_stdout else open(os.devnull, "wb")) as out,
        stderr.open("wb") as err,
    ):
        proc = subprocess.Popen(
            [*limit, *PROCRUNNER, "start", "--no-color", *args],
            cwd=app.root, env=app.env, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
            start_new_session=True,
        )
    stdout.touch()
    try:
        assert wait_until(lambda: control_path(app).exists() or proc.poll() is not None, 20)
        assert proc.poll() is None, stderr.read_text()
        yield Formation(proc, stdout, stderr)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
