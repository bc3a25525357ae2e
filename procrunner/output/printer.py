"""The output path: child pipes to procrunner's stdout (and the log files), bytes end to end,
whole lines only.

Children's pipes are read in large chunks by asyncio protocols (``StreamProtocol``). Each
stream's ``LineAssembler`` cuts the bytes into lines and hands whole lines, a block at a time,
to its incarnation's ``Source``, which formats them (``lineformat.py``, ``jsonlines.py``) for
the ``Printer``'s stdout sink and for the instance's log file (``logfiles.py``). Each sink is
a writer thread (``sink.py``); when one holds too much, the printer pauses reading every child
pipe, so a slow reader of procrunner (or a slow disk) slows the children down instead of
growing memory.
"""

from __future__ import annotations

import asyncio
import datetime
import fcntl
import sys
import termios
import time
from collections.abc import Callable
from pathlib import Path

from procrunner.config.settings import Style
from procrunner.output.jsonlines import JsonFormat
from procrunner.output.logfiles import LogFiles
from procrunner.output.sink import Sink
from procrunner.output.terminal import Terminal
from procrunner.output.text import CHAOS_NAME as CHAOS_NAME  # the supervisor's name for chaos
from procrunner.output.text import SYSTEM_NAME, Clock, Format, Origin, TextFormat

MAX_LINE = 1 << 20
# A read asks for what is waiting in the pipe (FIONREAD), at least SHORT_READ, at most
# LONG_READ. Asking far more than is there costs more than the read itself: the bytes object is
# allocated for the full size (above malloc's mmap threshold: fresh pages) and then shrunk.
SHORT_READ = 64 << 10
LONG_READ = 256 << 10
PARTIAL_DELAY = 0.05
REDRAW_EVERY = 0.5


class Printer:
    """The one writer of output: formats procrunner's own lines, hands every line to the
    sinks, and pauses the child pipes while a sink is congested."""

    def __init__(
        self,
        style: Style,
        sink_factory: Callable[[Printer], Sink],
        log_dir: Path | None = None,
    ) -> None:
        self.style = style
        self._readers: set[asyncio.ReadTransport] = set()
        self.sink = sink_factory(self)
        # On a terminal, children's control sequences are shown rather than obeyed, and a
        # line redrawn with \r shows its latest state while it is drawn.
        self.escapes = style.output == "text" and self.sink.is_terminal and not style.raw_output
        self.format: Format = (
            JsonFormat() if style.output == "json" else TextFormat.for_terminal(style, self.escapes)
        )
        self.logs: LogFiles | None = None
        if log_dir is not None:
            file_format: Format = JsonFormat()
            if style.output == "text":  # the file names the instance: stamp and mark only
                clock = Clock(style.timestamp_format)
                file_format = TextFormat(clock, names=False, merge_stderr=style.merge_stderr,
                                         note_mark=b"= ")  # fmt: skip
            loop = asyncio.get_running_loop()
            self.logs = LogFiles(log_dir, file_format, loop, self.congestion_changed,
                                 self._log_broken)  # fmt: skip
        # Called with each block of whole lines (or piece) before it is formatted: the
        # control socket keeps recent output and streams it to ``procrunner logs``.
        self.observe: Callable[[str, bytes, bool], None] | None = None

    def add_names(self, names: list[str]) -> None:
        """Register instance names: pads every prefix to the longest, gives each a colour."""
        self.format.add_names(names)

    def system(self, text: str, name: str = SYSTEM_NAME, *, chatter: bool = False) -> None:
        """One line of procrunner's own (``system``, or ``chaos``), through the same path as
        the children's; ``--quiet`` drops the chatter (what went as expected)."""
        if chatter and self.style.quiet:
            return
        self.sink.write(self.format.note(Origin(name), text))

    def source(self, name: str, number: int, pid: int) -> Source:
        """Where incarnation ``number`` of instance ``name`` sends its output; its log file
        gets a start line."""
        log = self.logs.sink(name) if self.logs is not None else None
        source = Source(self, Origin(name, number), log)
        now = datetime.datetime.now().astimezone().isoformat(timespec="milliseconds")
        source.note(f"{name}#{number} started with pid {pid} at {now}")
        return source

    async def close(self) -> None:
        """Write out everything queued (stdout, log files), then close the log files."""
        self.sink.flush()
        if self.logs is not None:
            self.logs.flush()
            await asyncio.to_thread(self.logs.close)
        await asyncio.to_thread(self.sink.close)

    def attach(self, transport: asyncio.ReadTransport) -> None:
        self._readers.add(transport)
        if self.reading_paused:
            transport.pause_reading()

    def detach(self, transport: asyncio.ReadTransport) -> None:
        self._readers.discard(transport)

    @property
    def reading_paused(self) -> bool:
        return self.sink.congested or (self.logs is not None and self.logs.congested)

    def congestion_changed(self) -> None:
        paused = self.reading_paused
        for transport in self._readers:
            if transport.is_closing():
                continue
            if paused:
                transport.pause_reading()
            else:
                transport.resume_reading()

    def _log_broken(self, path: Path, exc: OSError) -> None:
        self.system(f"log file {path}: {exc.strerror}; its instance's output goes to stdout only")


class Source:
    """One incarnation's output: formats its streams' lines for stdout and for its instance's
    log file, and marks the incarnation's end in the file once its streams are closed."""

    def __init__(self, printer: Printer, origin: Origin, log: Sink | None) -> None:
        self.printer = printer
        self._origin = origin
        self._log = log
        self._log_format = printer.logs.format if printer.logs is not None else None
        self._streams = 0
        self._ending: str | None = None

    def lines(self, stderr: bool, body: bytes) -> None:
        """``body`` is one or more whole lines, each ending in a newline."""
        printer = self.printer
        if printer.observe is not None:
            printer.observe(self._origin.name, body, stderr)
        printer.sink.write(printer.format.block(self._origin, stderr, body))
        if self._log is not None and self._log_format is not None:
            self._log.write(self._log_format.block(self._origin, stderr, body))

    def piece(self, stderr: bool, piece: bytes, continued: bool, partial: bool) -> None:
        printer = self.printer
        if printer.observe is not None:
            printer.observe(self._origin.name, piece + b"\n", stderr)
        origin = self._origin
        printer.sink.write(printer.format.piece(origin, stderr, piece, continued, partial))
        if self._log is not None and self._log_format is not None:
            self._log.write(self._log_format.piece(origin, stderr, piece, continued, partial))

    def note(self, text: str) -> None:
        """A line of procrunner's own about this incarnation, in its log file only."""
        if self._log is not None and self._log_format is not None:
            self._log.write(self._log_format.note(self._origin, text))

    def stream_opened(self) -> None:
        self._streams += 1

    def stream_closed(self) -> None:
        self._streams -= 1
        self._mark_end()

    def end(self, how: str) -> None:
        """The incarnation is over (``exited 1``): say so in the log file after its last
        line, which may still be on its way (a stream closes soon after its stop)."""
        self._ending = how
        self._mark_end()

    def _mark_end(self) -> None:
        if self._streams == 0 and self._ending is not None:
            name, number = self._origin
            self.note(f"{name}#{number} ended: {self._ending}")
            self._ending = None


class LineAssembler:
    """Cuts one stream's bytes into lines and hands them to the incarnation's source.

    A partial line is held until its newline comes, at most ``MAX_LINE`` bytes (then it is
    passed on in pieces), and at most until its stream is quiet (then it is shown as it is, so
    prompts appear). Quiet means both: no bytes for ``PARTIAL_DELAY``, and none waiting in the
    pipe (``pipe_fd``), since a loop that is late (busy with other pipes, or paused by
    backpressure) has not read what the child already wrote. On a terminal, a line redrawn
    with ``\r`` (a progress bar) is also shown every ``REDRAW_EVERY`` while it is drawn. The
    piece after such a cut carries the continuation mark.
    """

    def __init__(self, source: Source, stderr: bool) -> None:
        self._source = source
        self._printer = source.printer
        self._stderr = stderr
        self._pending: list[bytes | memoryview] = []
        self._pending_len = 0
        self._last_data = self._held_since = 0.0
        self._continuing = False
        self._timer: asyncio.TimerHandle | None = None
        self.pipe_fd: int | None = None  # where to look for bytes not read yet

    def feed(self, data: bytes) -> None:
        last = data.rfind(b"\n")
        if last < 0:
            self._hold(data)
            return
        # The held start of a line and every whole line of ``data`` go on as one block, in
        # one copy (block-buffered writers leave a line cut at the end of nearly every read).
        whole = data if last == len(data) - 1 else memoryview(data)[: last + 1]
        if self._pending:
            self._pending.append(whole)
            body = b"".join(self._pending)
            self._pending.clear()
            self._pending_len = 0
        else:
            body = bytes(whole)  # no copy when it is ``data`` itself
        self._emit_lines(body)
        if last + 1 < len(data):
            self._hold(data[last + 1 :])

    def flush(self) -> None:
        """End of stream: a final line without newline is still printed."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._pending:
            self._emit_piece(b"".join(self._pending), partial=True)
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
        self._source.lines(self._stderr, body)

    def _emit_line(self, line: bytes) -> None:
        """One whole line, in ``MAX_LINE`` pieces if it is longer."""
        for start in range(0, max(len(line), 1), MAX_LINE):
            self._emit_piece(line[start : start + MAX_LINE], partial=start + MAX_LINE < len(line))
            self._continuing = True
        self._continuing = False

    def _emit_piece(self, piece: bytes, partial: bool) -> None:
        self._source.piece(self._stderr, piece, self._continuing, partial)

    def _hold(self, data: bytes) -> None:
        self._last_data = time.monotonic()
        if not self._pending:
            self._held_since = self._last_data
        self._pending.append(data)
        self._pending_len += len(data)
        if self._pending_len > MAX_LINE:
            held = b"".join(self._pending)
            while len(held) > MAX_LINE:
                self._emit_piece(held[:MAX_LINE], partial=True)
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
        if self.unread():  # the rest of the line may be there: read it first
            self._arm(PARTIAL_DELAY)
            return
        now = time.monotonic()
        waited = now - self._last_data
        if waited < PARTIAL_DELAY and not self._redrawn(now):
            self._arm(max(PARTIAL_DELAY - waited, 0.005))
            return
        self._emit_piece(b"".join(self._pending), partial=True)
        self._pending.clear()
        self._pending_len = 0
        self._continuing = True

    def unread(self) -> int:
        """Bytes waiting in the pipe (or PTY), not read yet."""
        if self.pipe_fd is None:
            return 0
        try:
            count = fcntl.ioctl(self.pipe_fd, termios.FIONREAD, bytes(4))
        except OSError:
            return 0
        return int.from_bytes(count, sys.byteorder)

    def _redrawn(self, now: float) -> bool:
        """On a terminal: the held text has been redrawn with \r for ``REDRAW_EVERY``."""
        if not self._printer.escapes or now - self._held_since < REDRAW_EVERY:
            return False
        return b"\r" in b"".join(self._pending)[:-1]  # not a CRLF's CR waiting for its LF


class StreamProtocol(asyncio.Protocol):
    """Reads one child pipe in chunks; resolves ``closed`` at end of stream."""

    def __init__(self, source: Source, stderr: bool, terminal: Terminal | None = None) -> None:
        self._source = source
        self._printer = source.printer
        self._terminal = terminal
        self._assembler = LineAssembler(source, stderr)
        self._transport: asyncio.ReadTransport | None = None
        self._read_size = LONG_READ  # asyncio's pipe transport reads up to 256 KiB
        self.received = 0
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.ReadTransport)
        self._transport = transport
        pipe = transport.get_extra_info("pipe")
        if pipe is not None:
            self._assembler.pipe_fd = pipe.fileno()
        self._printer.attach(transport)
        self._source.stream_opened()

    def data_received(self, data: bytes) -> None:
        self.received += len(data)
        if self._terminal is not None:  # a PTY: raw to whoever is attached, lines to the log
            self._terminal.output(data)
            data = data.replace(b"\r\n", b"\n")
        self._assembler.feed(data)
        if len(data) >= SHORT_READ or self._read_size != SHORT_READ:
            self._size_next_read()

    def _size_next_read(self) -> None:
        waiting = self._assembler.unread()
        size = min(max(waiting, SHORT_READ), LONG_READ)
        if size != self._read_size and self._transport is not None:
            self._read_size = size
            self._transport.max_size = size  # type: ignore[attr-defined]  # asyncio's pipe

    def eof_received(self) -> bool:
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._assembler.flush()
        if self._terminal is not None:
            self._terminal.close()
        if self._transport is not None:
            self._printer.detach(self._transport)
            self._source.stream_closed()
        if not self.closed.done():
            self.closed.set_result(None)

    def unread(self) -> int:
        """Bytes waiting in its pipe, not read yet."""
        return self._assembler.unread()

    def close(self) -> None:
        """Stop reading even if an escaped descendant still holds the pipe open."""
        if self._transport is not None and not self._transport.is_closing():
            self._transport.close()
