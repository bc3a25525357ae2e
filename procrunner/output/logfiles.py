"""``--log-dir DIR``: each instance's output also goes to ``DIR/web.1.log``.

A file is opened for appending at the instance's first incarnation and kept for the run, so
it holds every incarnation (and earlier runs) in order; each incarnation's start and end are
marked by a line of procrunner's own. The directory is made 0700 if it does not exist (an
existing one is left as it is) and each file is created 0600: output often holds secrets.
Each file has its own ``Sink``, with the same high and low water marks as stdout: a slow disk
pauses the child pipes, and no line is dropped. A file that cannot be written (disk full) is
reported once and written no more.

Each file is bounded: once it passes ``ROTATE_AT`` bytes, its writer thread renames it to
``web.1.log.1`` (that one to ``.2``; the oldest of ``KEEP`` files goes) and goes on in a new
file. It rotates between two writes, never inside a line, so a file may pass the bound by one
batch (at most the sink's high water mark).
"""

from __future__ import annotations

import asyncio
import functools
import os
from collections.abc import Callable
from pathlib import Path

from procrunner.errors import ProcrunnerError
from procrunner.output.sink import Chunk, Sink
from procrunner.output.text import Format

ROTATE_AT = 10 << 20  # bytes a log file holds before it is rotated
KEEP = 3  # files kept of one log: the current one and two rotated ones
FLAGS = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW


class LogFiles:
    def __init__(
        self,
        directory: Path,
        fmt: Format,
        loop: asyncio.AbstractEventLoop,
        on_congestion_change: Callable[[], None],
        on_broken: Callable[[Path, OSError], None],
    ) -> None:
        try:
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:
            problem = f"cannot make the log directory: {exc.strerror}"
            raise ProcrunnerError(problem, str(directory)) from exc
        self.directory = directory
        self.format = fmt
        self._loop = loop
        self._on_congestion_change = on_congestion_change
        self._on_broken = on_broken
        self._sinks: dict[str, tuple[int, Sink]] = {}

    def sink(self, name: str) -> Sink | None:
        """The instance's file, opened (created 0600, appending) on first use; None (and
        reported) if it cannot be opened."""
        if name in self._sinks:
            return self._sinks[name][1]
        path = self.directory / f"{name}.log"
        try:
            fd = os.open(path, FLAGS, 0o600)
        except OSError as exc:
            self._on_broken(path, exc)
            return None
        broken = functools.partial(self._on_broken, path)
        sink = RotatingSink(path, fd, self._loop, self._on_congestion_change, broken)
        self._sinks[name] = (fd, sink)
        return sink

    @property
    def congested(self) -> bool:
        return any(sink.congested for _, sink in self._sinks.values())

    def flush(self) -> None:
        for _, sink in self._sinks.values():
            sink.flush()

    def close(self) -> None:
        """Write out what is queued and close the files (from a thread, after ``flush``)."""
        for fd, sink in self._sinks.values():
            sink.close()
            os.close(fd)
        self._sinks.clear()


class RotatingSink(Sink):
    """A sink for the log file at ``path`` (open as ``fd``) that keeps it under ``limit``
    bytes by rotation. The new file takes the old one's descriptor number (``dup2``), and so
    do ``mirrors`` (a detached run's stderr follows its stdout), so nothing else changes."""

    def __init__(
        self,
        path: Path,
        fd: int,
        loop: asyncio.AbstractEventLoop,
        on_congestion_change: Callable[[], None],
        on_broken: Callable[[OSError], None],
        mirrors: tuple[int, ...] = (),
        limit: int = ROTATE_AT,
    ) -> None:
        self._path = path
        self._mirrors = mirrors
        self._limit = limit
        self._size = os.fstat(fd).st_size  # appending to what earlier runs wrote
        super().__init__(fd, loop, on_congestion_change, on_broken)

    def _write_all(self, chunks: list[Chunk]) -> None:
        super()._write_all(chunks)
        self._size += sum(map(len, chunks))
        if self._size >= self._limit and not self._broken:
            try:
                self._rotate()
            except OSError as exc:  # the file grows on: said once, like a failed write
                self._broken = True
                self._call_in_loop(functools.partial(self._on_broken, exc))

    def _rotate(self) -> None:
        for older in range(KEEP - 1, 0, -1):
            rotated = self._path.with_name(f"{self._path.name}.{older}")
            previous = self._path.with_name(f"{self._path.name}.{older - 1}") if (
                older > 1) else self._path  # fmt: skip
            if previous.exists():
                os.replace(previous, rotated)
        fresh = os.open(self._path, FLAGS, 0o600)
        try:
            for fd in (self._fd, *self._mirrors):
                os.dup2(fresh, fd, inheritable=os.get_inheritable(fd))
        finally:
            os.close(fresh)
        self._size = 0
