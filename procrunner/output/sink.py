"""The end of the output path: a writer thread that owns one file descriptor (procrunner's
stdout, or a ``--log-dir`` file) and does blocking writes to it.

Output is handed to the thread once per event-loop turn. When more than ``HIGH_WATER`` bytes
are queued the sink says it is congested (the printer then pauses every child pipe) until the
queue is down to ``LOW_WATER``, so a slow reader or disk slows the children down instead of
growing memory. A thread (rather than a non-blocking descriptor) keeps the terminal's file
description blocking for the shell that shares it, and keeps the event loop free to handle
signals and deadlines while a write is stuck.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import functools
import os
import select
import threading
from collections.abc import Callable

PIPE_SIZE = 1 << 20
_F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)
HIGH_WATER = 4 << 20
LOW_WATER = 1 << 20
_IOV_MAX = 1024
# At most this much per writev: ``written`` must show progress while a slow reader drains a
# long queue (a stop reads the children's pipes to their end only while output moves).
WRITE_STEP = 64 << 10
Chunk = bytes | memoryview  # what is written: bytes, or a view that spares a copy


def enlarge_pipe(fd: int) -> None:
    """Ask for a 1 MiB pipe buffer (Linux; the default is 64 KiB): fewer wake-ups and
    context switches between writer, procrunner and reader under heavy output. Not a pipe,
    or not Linux, or over the system's limit: left as it is."""
    with contextlib.suppress(OSError):
        fcntl.fcntl(fd, _F_SETPIPE_SZ, PIPE_SIZE)


class Sink:
    """One writer thread that owns one file descriptor."""

    def __init__(
        self,
        fd: int,
        loop: asyncio.AbstractEventLoop,
        on_congestion_change: Callable[[], None],
        on_broken: Callable[[OSError], None],
    ) -> None:
        self._fd = fd
        self._loop = loop
        self._on_congestion_change = on_congestion_change
        self._on_broken = on_broken
        self._batch: list[Chunk] = []
        self._flush_scheduled = False
        self._cond = threading.Condition()
        self._chunks: list[Chunk] = []
        self._pending = 0
        self._congested = False
        self._closing = False
        self._broken = False
        self._written = 0
        self.is_terminal = os.isatty(fd)
        enlarge_pipe(fd)
        self._thread = threading.Thread(target=self._run, name=f"procrunner-fd{fd}", daemon=True)
        self._thread.start()

    @property
    def congested(self) -> bool:
        with self._cond:
            return self._congested

    @property
    def written(self) -> int:
        return self._written

    def write(self, data: Chunk) -> None:
        """Queue output (in the loop); it goes to the thread once per loop turn, in one
        handoff."""
        self._batch.append(data)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self._loop.call_soon(self.flush)

    def flush(self) -> None:
        """Hand what this loop turn queued to the thread."""
        self._flush_scheduled = False
        chunks, self._batch = self._batch, []
        if self._broken or not chunks:
            return
        with self._cond:
            self._chunks.extend(chunks)
            self._pending += sum(map(len, chunks))
            became_congested = not self._congested and self._pending >= HIGH_WATER
            if became_congested:
                self._congested = True
            self._cond.notify()
        if became_congested:
            self._on_congestion_change()

    def close(self, stall_timeout: float = 10.0) -> None:
        """Write out what is queued, waiting as long as the reader keeps making progress.
        Called from a thread, after ``flush`` in the loop."""
        with self._cond:
            self._closing = True
            self._cond.notify()
        last = -1
        while self._thread.is_alive() and self._written != last:
            last = self._written
            self._thread.join(stall_timeout)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._chunks and not self._closing:
                    self._cond.wait()
                if not self._chunks:
                    return
                chunks, self._chunks = self._chunks, []
            size = sum(map(len, chunks))
            if not self._broken:
                self._write_all(chunks)
            with self._cond:
                self._pending -= size
                relieved = self._congested and self._pending <= LOW_WATER
                if relieved:
                    self._congested = False
            if relieved:
                self._call_in_loop(self._on_congestion_change)

    def _write_all(self, chunks: list[Chunk]) -> None:
        """``writev`` without joining (one copy less on the hot path), ``WRITE_STEP`` at a
        time; partial writes resume where they stopped. Any error (EPIPE on stdout, ENOSPC on
        a log file) ends writing: the rest is dropped, so the children are never paused for
        good."""
        views = [memoryview(c) for c in chunks if c]
        while views:
            try:
                written = os.writev(self._fd, _step(views))
            except BlockingIOError:
                select.select([], [self._fd], [])
                continue
            except OSError as exc:
                self._broken = True
                self._call_in_loop(functools.partial(self._on_broken, exc))
                return
            self._written += written
            while views and written >= len(views[0]):
                written -= len(views.pop(0))
            if views and written:
                views[0] = views[0][written:]

    def _call_in_loop(self, callback: Callable[[], None]) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is already closed at exit
            self._loop.call_soon_threadsafe(callback)


def _step(views: list[memoryview]) -> list[memoryview]:
    """The first ``WRITE_STEP`` bytes of ``views`` (at most ``_IOV_MAX`` of them)."""
    step: list[memoryview] = []
    room = WRITE_STEP
    for view in views[:_IOV_MAX]:
        step.append(view[:room])
        room -= len(step[-1])
        if not room:
            break
    return step
