"""``--log-dir DIR``: each instance's output also goes to ``DIR/web.1.log``.

A file is opened for appending at the instance's first incarnation and kept for the run, so
it holds every incarnation (and earlier runs) in order; each incarnation's start and end are
marked by a line of procrunner's own. The directory is made 0700 if it does not exist (an
existing one is left as it is) and each file is created 0600: output often holds secrets.
Each file has its own ``Sink``, with the same high and low water marks as stdout: a slow disk
pauses the child pipes, and no line is dropped. A file that cannot be written (disk full) is
reported once and written no more.
"""

from __future__ import annotations

import asyncio
import functools
import os
from collections.abc import Callable
from pathlib import Path

from procrunner.errors import ProcrunnerError
from procrunner.output.sink import Sink
from procrunner.output.text import Format


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
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW
        try:
            fd = os.open(path, flags, 0o600)
        except OSError as exc:
            self._on_broken(path, exc)
            return None
        broken = functools.partial(self._on_broken, path)
        sink = Sink(fd, self._loop, self._on_congestion_change, broken)
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
