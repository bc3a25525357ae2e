"""Run ``procrunner start`` (or another command) with its stdout on a pseudo-terminal, as a
user's shell would, and keep the exact bytes it writes there (the terminal's output
processing is off, so ``\\r`` and ``\\n`` arrive as procrunner wrote them)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import termios
import threading
import time
from pathlib import Path

from harness import PROCRUNNER, App

SCRIBBLER = Path(__file__).with_name("scribbler.py")


def scribbler(*args: str) -> str:
    """A Procfile command that runs the scribbler with a behaviour."""
    return " ".join([sys.executable, str(SCRIBBLER), *args])


START = ("start", "--no-color", "--no-timestamp")


class Screen:
    def __init__(self, app: App, *args: str, command: tuple[str, ...] = START) -> None:
        master, slave = os.openpty()
        attributes = termios.tcgetattr(slave)
        attributes[1] &= ~termios.OPOST  # oflag: no \n -> \r\n
        termios.tcsetattr(slave, termios.TCSANOW, attributes)
        self.proc = subprocess.Popen(
            [*PROCRUNNER, *command, *args],
            cwd=app.root,
            env=app.env,
            stdin=subprocess.DEVNULL,
            stdout=slave,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        os.close(slave)
        app.runs.append(self)  # type: ignore[arg-type]  # the app fixture kills what is left
        self._master = master
        self._cond = threading.Condition()
        self.data = bytearray()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while True:
            try:
                chunk = os.read(self._master, 65536)
            except OSError:  # EIO: every writer of the terminal is gone
                chunk = b""
            with self._cond:
                self.data += chunk
                self._cond.notify_all()
            if not chunk:
                return

    def wait_for(self, pattern: bytes, timeout: float = 15.0) -> re.Match[bytes]:
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self._cond:
            while (found := regex.search(self.data)) is None:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not self._reader.is_alive():
                    raise AssertionError(f"no {pattern!r} in {bytes(self.data)!r}")
                self._cond.wait(min(remaining, 0.2))
            return found

    def finish(self, sig: int, timeout: float = 20.0) -> bytes:
        self.proc.send_signal(sig)
        self.proc.communicate(timeout=timeout)
        self._reader.join(timeout)
        os.close(self._master)
        return bytes(self.data)
