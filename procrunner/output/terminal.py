"""A pseudo-terminal for the instances of ``--tty`` types: the child sees a terminal (colours,
prompts, a debugger that reads stdin) and ``procrunner connect`` can attach to it.

procrunner keeps the master side. Its output goes through the printer like a pipe's, and to
whoever is attached; what an attached user types is written to it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import struct
import termios
from collections.abc import Callable

Observer = Callable[[bytes], None]


class Terminal:
    def __init__(self) -> None:
        self.master, self.slave = os.openpty()
        os.set_inheritable(self.slave, False)
        self._observers: set[Observer] = set()
        self.closed = False

    def child_started(self) -> None:
        """The child has its own copy of the slave: ours would keep the PTY from ever
        reporting the end of output."""
        os.close(self.slave)

    def discard(self) -> None:
        """The child could not be started: close both sides."""
        os.close(self.master)
        os.close(self.slave)

    def observe(self, observer: Observer) -> None:
        self._observers.add(observer)

    def forget(self, observer: Observer) -> None:
        self._observers.discard(observer)

    def output(self, data: bytes) -> None:
        for observer in list(self._observers):
            observer(data)

    def write(self, data: bytes) -> None:
        """Keystrokes from an attached user; dropped if the child does not read its input."""
        with contextlib.suppress(BlockingIOError, OSError):
            os.write(self.master, data)

    def resize(self, rows: int, columns: int) -> None:
        with contextlib.suppress(OSError):
            fcntl.ioctl(self.master, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))

    def close(self) -> None:
        self.closed = True
        for observer in list(self._observers):
            observer(b"")
        self._observers.clear()


def take_terminal() -> None:
    """In the child, after ``setsid``: make stdin (the slave) the controlling terminal."""
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)
