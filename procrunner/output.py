"""The output path: child pipes to procrunner's stdout, bytes end to end, whole lines only.

Children's pipes are read in large chunks by asyncio protocols (``StreamProtocol``). Each
stream's ``LineAssembler`` cuts the bytes into lines and hands whole, prefixed lines to the
``Printer``, which queues them on the ``Sink``: one writer thread that does blocking writes to
stdout. When the sink holds more than ``HIGH_WATER`` bytes the printer pauses reading every
child pipe, so a slow reader of procrunner slows the children down instead of growing memory.
A thread (rather than a non-blocking stdout) keeps the terminal's file description blocking
for the shell that shares it, and keeps the event loop free to handle signals and deadlines
while stdout is stuck.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import os
import select
import threading
import time
from collections.abc import Callable

from procrunner.settings import Style
from procrunner.terminal import Terminal

MAX_LINE = 1 << 20
PIPE_SIZE = 1 << 20
_F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)
PARTIAL_DELAY = 0.05
HIGH_WATER = 4 << 20
LOW_WATER = 1 << 20
SYSTEM_NAME = "system"
CHAOS_NAME = "chaos"
_IOV_MAX = 1024

_RESET = b"\033[0m"
_PALETTE = (36, 33, 32, 35, 34, 96, 93, 92, 95, 94, 91, 31)
_SYSTEM_COLOR = b"\033[1m"
_CHAOS_COLOR = b"\033[1;31m"


def enlarge_pipe(fd: int) -> None:
    """Ask for a 1 MiB pipe buffer (Linux; the default is 64 KiB): fewer wake-ups and
    context switches between writer, procrunner and reader under heavy output. Not a pipe,
    or not Linux, or over the system's limit: left as it is."""
    with contextlib.suppress(OSError):
        fcntl.fcntl(fd, _F_SETPIPE_SZ, PIPE_SIZE)


class Sink:
    """One writer thread that owns procrunner's stdout."""

    def __init__(
        self,
        fd: int,
        loop: asyncio.AbstractEventLoop,
        on_congestion_change: Callable[[], None],
        on_broken: Callable[[], None],
    ) -> None:
        self._fd = fd
        self._loop = loop
        self._on_congestion_change = on_congestion_change
        self._on_broken = on_broken
        self._cond = threading.Condition()
        self._chunks: list[bytes] = []
        self._pending = 0
        self._congested = False
        self._closing = False
        self._broken = False
        self._written = 0
        enlarge_pipe(fd)
        self._thread = threading.Thread(target=self._run, name="procrunner-stdout", daemon=True)
        self._thread.start()

    @property
    def congested(self) -> bool:
        with self._cond:
            return self._congested

    @property
    def written(self) -> int:
        return self._written

    def write_many(self, chunks: list[bytes]) -> None:
        if self._broken:
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
        """Write out what is queued, waiting as long as the reader keeps making progress."""
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

    def _write_all(self, chunks: list[bytes]) -> None:
        """``writev`` without joining (one copy less on the hot path); partial writes resume
        where they stopped."""
        views = [memoryview(c) for c in chunks if c]
        while views:
            try:
                written = os.writev(self._fd, views[:_IOV_MAX])
            except BlockingIOError:
                select.select([], [self._fd], [])
                continue
            except OSError as exc:
                if exc.errno not in (errno.EPIPE, errno.EBADF, errno.EIO):
                    raise
                self._broken = True
                self._call_in_loop(self._on_broken)
                return
            self._written += written
            while views and written >= len(views[0]):
                written -= len(views.pop(0))
            if views and written:
                views[0] = views[0][written:]

    def _call_in_loop(self, callback: Callable[[], None]) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is already closed at exit
            self._loop.call_soon_threadsafe(callback)


class Printer:
    """Formats prefixes and is the only writer to the sink."""

    def __init__(self, style: Style, sink_factory: Callable[[Printer], Sink]) -> None:
        self.style = style
        self._width = len(SYSTEM_NAME)
        self._colors: dict[str, bytes] = {SYSTEM_NAME: _SYSTEM_COLOR, CHAOS_NAME: _CHAOS_COLOR}
        self._prefix_cache: dict[tuple[str, bytes], bytes] = {}
        self._cached_second = -1
        self._clock_text = b""
        self._readers: set[asyncio.ReadTransport] = set()
        self.resumed_at = 0.0
        self._batch: list[bytes] = []
        self._flush_scheduled = False
        self.sink = sink_factory(self)
        # Called with each block of whole lines (or piece) before it is prefixed: the
        # control socket keeps recent output and streams it to ``procrunner logs``.
        self.observe: Callable[[str, bytes, bool], None] | None = None

    def add_names(self, names: list[str]) -> None:
        """Register instance names: pads every prefix to the longest, gives each a colour."""
        for name in names:
            if name not in self._colors:
                index = len(self._colors) - 2
                self._colors[name] = b"\033[%dm" % _PALETTE[index % len(_PALETTE)]
        self._width = max(self._width, *(len(n) for n in names)) if names else self._width
        self._prefix_cache.clear()

    def prefix(self, name: str, mark: bytes) -> bytes:
        """``HH:MM:SS web.1  | `` for ``mark=b"| "``; the cache is keyed per wall-clock second."""
        if not self.style.prefix:
            return b""
        now = int(time.time())
        if now != self._cached_second:
            self._cached_second = now
            self._clock_text = time.strftime("%H:%M:%S ", time.localtime(now)).encode()
            self._prefix_cache.clear()
        key = (name, mark)
        cached = self._prefix_cache.get(key)
        if cached is None:
            stamp = self._clock_text if self.style.timestamps else b""
            label = b"%s%s %s" % (stamp, name.ljust(self._width).encode(), mark[:1])
            if self.style.color:
                label = self._colors.get(name, b"") + label + _RESET
            cached = self._prefix_cache[key] = label + mark[1:]
        return cached

    def write(self, data: bytes) -> None:
        """Queue output; it goes to the sink once per event-loop turn, in one handoff."""
        self._batch.append(data)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        batch, self._batch = self._batch, []
        self.sink.write_many(batch)

    def system(self, text: str, name: str = SYSTEM_NAME) -> None:
        """One line of procrunner's own (``system``, or ``chaos``), through the same path as
        the children's."""
        self.write(self.prefix(name, b"| ") + text.encode(errors="replace") + b"\n")

    def attach(self, transport: asyncio.ReadTransport) -> None:
        self._readers.add(transport)
        if self.sink.congested:
            transport.pause_reading()

    def detach(self, transport: asyncio.ReadTransport) -> None:
        self._readers.discard(transport)

    @property
    def reading_paused(self) -> bool:
        return self.sink.congested

    def congestion_changed(self) -> None:
        paused = self.sink.congested
        if not paused:
            self.resumed_at = time.monotonic()
        for transport in self._readers:
            if transport.is_closing():
                continue
            if paused:
                transport.pause_reading()
            else:
                transport.resume_reading()


class LineAssembler:
    """Cuts one stream's bytes into lines and prints them with the instance's prefix.

    A partial line is held until its newline comes, for at most ``PARTIAL_DELAY`` (then it is
    shown as it is, so prompts appear) and at most ``MAX_LINE`` bytes (then it is passed on in
    pieces). The piece after such a cut carries the continuation mark.
    """

    def __init__(self, printer: Printer, name: str, stderr: bool) -> None:
        self._printer = printer
        self._name = name
        self._stderr = stderr
        separator = b"!" if stderr and not printer.style.merge_stderr else b"|"
        self._mark = separator + b" "
        self._continued_mark = separator + b"+"
        self._pending: list[bytes] = []
        self._pending_len = 0
        self._last_data = 0.0
        self._continuing = False
        self._timer: asyncio.TimerHandle | None = None

    def feed(self, data: bytes) -> None:
        if self._pending:
            newline = data.find(b"\n")
            if newline < 0:
                self._hold(data)
                return
            self._pending.append(data[: newline + 1])
            line = b"".join(self._pending)
            self._pending.clear()
            self._pending_len = 0
            self._emit_lines(line)
            data = data[newline + 1 :]
        last = data.rfind(b"\n")
        if last >= 0:
            self._emit_lines(data[: last + 1])
            data = data[last + 1 :]
        if data:
            self._hold(data)

    def flush(self) -> None:
        """End of stream: a final line without newline is still printed."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._pending:
            self._emit_piece(b"".join(self._pending))
            self._pending.clear()
            self._pending_len = 0
        self._continuing = False

    def _emit_lines(self, body: bytes) -> None:
        """``body`` is one or more whole lines, each ending in a newline."""
        if self._continuing:
            first_end = body.find(b"\n")
            self._emit_line(body[:first_end])
            body = body[first_end + 1 :]
            if not body:
                return
        if len(body) > MAX_LINE:
            for line in body[:-1].split(b"\n"):
                self._emit_line(line)
            return
        if self._printer.observe is not None:
            self._printer.observe(self._name, body, self._stderr)
        prefix = self._printer.prefix(self._name, self._mark)
        if prefix:
            body = prefix + body[:-1].replace(b"\n", b"\n" + prefix) + b"\n"
        self._printer.write(body)

    def _emit_line(self, line: bytes) -> None:
        """One whole line, in ``MAX_LINE`` pieces if it is longer."""
        for start in range(0, max(len(line), 1), MAX_LINE):
            self._emit_piece(line[start : start + MAX_LINE])
            self._continuing = True
        self._continuing = False

    def _emit_piece(self, piece: bytes) -> None:
        if self._printer.observe is not None:
            self._printer.observe(self._name, piece + b"\n", self._stderr)
        mark = self._continued_mark if self._continuing else self._mark
        self._printer.write(self._printer.prefix(self._name, mark) + piece + b"\n")

    def _hold(self, data: bytes) -> None:
        self._last_data = time.monotonic()
        self._pending.append(data)
        self._pending_len += len(data)
        if self._pending_len > MAX_LINE:
            held = b"".join(self._pending)
            while len(held) > MAX_LINE:
                self._emit_piece(held[:MAX_LINE])
                self._continuing = True
                held = held[MAX_LINE:]
            self._pending = [held] if held else []
            self._pending_len = len(held)
        if self._pending and self._timer is None:
            self._arm(PARTIAL_DELAY)

    def _arm(self, delay: float) -> None:
        self._timer = asyncio.get_running_loop().call_later(delay, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        if not self._pending:
            return
        # Quiet time counts from the last bytes of this stream and from the last resume: while
        # reading is paused, or just after, the rest of the line may still be in the pipe.
        waited = time.monotonic() - max(self._last_data, self._printer.resumed_at)
        if self._printer.reading_paused or waited < PARTIAL_DELAY:
            self._arm(max(PARTIAL_DELAY - waited, 0.005))
            return
        self._emit_piece(b"".join(self._pending))
        self._pending.clear()
        self._pending_len = 0
        self._continuing = True


class StreamProtocol(asyncio.Protocol):
    """Reads one child pipe in chunks; resolves ``closed`` at end of stream."""

    def __init__(
        self, printer: Printer, name: str, stderr: bool, terminal: Terminal | None = None
    ) -> None:
        self._printer = printer
        self._terminal = terminal
        self._assembler = LineAssembler(printer, name, stderr)
        self._transport: asyncio.ReadTransport | None = None
        self.received = 0
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.ReadTransport)
        self._transport = transport
        self._printer.attach(transport)

    def data_received(self, data: bytes) -> None:
        self.received += len(data)
        if self._terminal is not None:  # a PTY: raw to whoever is attached, lines to the log
            self._terminal.output(data)
            data = data.replace(b"\r\n", b"\n")
        self._assembler.feed(data)

    def eof_received(self) -> bool:
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._assembler.flush()
        if self._terminal is not None:
            self._terminal.close()
        if self._transport is not None:
            self._printer.detach(self._transport)
        if not self.closed.done():
            self.closed.set_result(None)

    def close(self) -> None:
        """Stop reading even if an escaped descendant still holds the pipe open."""
        if self._transport is not None and not self._transport.is_closing():
            self._transport.close()
