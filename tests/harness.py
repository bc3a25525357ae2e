"""Helpers that run the real ``procrunner`` command on throwaway apps.

Every process a test starts carries ``PROCRUNNER_TEST_MARK`` (a per-test value) in its
environment, so ``census()`` finds them all, escaped grandchildren included. A test that leaves
any behind fails, and the leftovers are killed.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import psutil
import pytest

PROCRUNNER = [sys.executable, "-m", "procrunner"]
KID = Path(__file__).with_name("kid.py")
MARK = "PROCRUNNER_TEST_MARK"


def kid(*args: str) -> str:
    """A Procfile command that runs the test child with a behaviour."""
    return " ".join([sys.executable, str(KID), *args])


def free_ports(count: int) -> int:
    """The first of ``count`` consecutive ports that are free right now."""
    for _ in range(100):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            first = probe.getsockname()[1]
        if first + count <= 65535 and all(_free(first + i) for i in range(count)):
            return first
    raise RuntimeError(f"no {count} consecutive free ports")


def _free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def census(mark: str) -> list[psutil.Process]:
    """Live processes (zombies excluded) that carry a test's marker."""
    found = []
    for proc in psutil.process_iter():
        with contextlib.suppress(psutil.Error):
            if proc.environ().get(MARK) == mark and proc.status() != psutil.STATUS_ZOMBIE:
                found.append(proc)
    return found


def wait_until(predicate: object, timeout: float = 10.0, interval: float = 0.02) -> bool:
    """Poll a condition of the outside world (another process) until true or timed out."""
    assert callable(predicate)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())


class Run:
    """A running ``procrunner`` whose stdout is collected line by line in a thread."""

    def __init__(self, args: list[str], cwd: Path, env: dict[str, str], read: bool = True):
        self.proc = subprocess.Popen(
            [*PROCRUNNER, *args],
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        self.lines: list[bytes] = []
        self._cond = threading.Condition()
        self._stderr = b""
        self._threads = [threading.Thread(target=self._read_stderr, daemon=True)]
        if read:
            self._threads.append(threading.Thread(target=self._read_stdout, daemon=True))
        for thread in self._threads:
            thread.start()

    def _read_stdout(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._cond:
                self.lines.append(line)
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        self._stderr = self.proc.stderr.read()

    def wait_for(self, pattern: str, timeout: float = 15.0, count: int = 1) -> re.Match[str]:
        """Block until ``count`` output lines match (returns the last); fails with the output
        so far if they never do."""
        regex = re.compile(pattern)
        seen = found = 0
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for line in self.lines[seen:]:
                    match = regex.search(line.decode(errors="replace"))
                    if match:
                        found += 1
                        if found == count:
                            return match
                seen = len(self.lines)
                remaining = deadline - time.monotonic()
                if remaining <= 0 or (self.proc.poll() is not None and not self._reading()):
                    pytest.fail(f"no line matching {pattern!r} in:\n{self.text()}")
                self._cond.wait(min(remaining, 0.2))

    def _reading(self) -> bool:
        return any(t.is_alive() for t in self._threads)

    def signal(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def finish(self, timeout: float = 20.0) -> int:
        code = self.proc.wait(timeout)
        for thread in self._threads:
            thread.join(timeout)
        return code

    def text(self) -> str:
        with self._cond:
            return b"".join(self.lines).decode(errors="replace")

    @property
    def stderr(self) -> str:
        return self._stderr.decode(errors="replace")


class App:
    """A throwaway app directory with its own process census."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.mark = uuid.uuid4().hex
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("PROCRUNNER_")}
        self.env[MARK] = self.mark
        self.env.pop("NO_COLOR", None)
        self.env.pop("PORT", None)
        self.runs: list[Run] = []

    def procfile(self, text: str, name: str = "Procfile") -> Path:
        path = self.root / name
        path.write_text(text)
        return path

    def write(self, name: str, text: str) -> Path:
        path = self.root / name
        path.write_text(text)
        return path

    def start(self, *args: str, read: bool = True) -> Run:
        run = Run(["start", "--no-color", *args], self.root, self.env, read)
        self.runs.append(run)
        return run

    def cli(self, *args: str, timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*PROCRUNNER, *args],
            cwd=self.root,
            env=self.env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def census(self) -> list[psutil.Process]:
        return census(self.mark)


