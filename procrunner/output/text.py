"""How a line looks once it leaves the output path: time stamps, and the text format (a
prefix, then the line's bytes as they came).

A format turns a block of whole lines (each ending in a newline), a piece of a line, or one of
procrunner's own notes into the bytes to write. ``TextFormat`` prefixes a whole block with one
``bytes.replace``; ``jsonlines.JsonFormat`` is the other format. The terminal and the log
files (``logfiles.py``) each have their own.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import NamedTuple, Protocol

from procrunner.config.settings import Style, TimestampFormat
from procrunner.output.controls import escape_block, escape_line
from procrunner.output.sink import Chunk

_RESET = b"\033[0m"
_PALETTE = (36, 33, 32, 35, 34, 96, 93, 92, 95, 94, 91, 31)
SYSTEM_NAME = "system"
CHAOS_NAME = "chaos"
_OWN_COLORS = {SYSTEM_NAME: b"\033[1m", CHAOS_NAME: b"\033[1;31m"}


class Origin(NamedTuple):
    """Whose line it is: an instance and its incarnation number, or procrunner itself
    (``system`` or ``chaos``, no number)."""

    name: str
    number: int | None = None


class Format(Protocol):
    def add_names(self, names: Iterable[str]) -> None: ...

    def block(self, origin: Origin, stderr: bool, body: bytes) -> Chunk:
        """``body`` is one or more whole lines, each ending in a newline."""
        ...

    def piece(
        self, origin: Origin, stderr: bool, piece: bytes, continued: bool, partial: bool
    ) -> bytes:
        """Part of a line: ``continued`` if it follows an earlier piece of the same line,
        ``partial`` if the line goes on after it (or the stream ended without a newline)."""
        ...

    def note(self, origin: Origin, text: str) -> bytes:
        """One line of procrunner's own."""
        ...


class Clock:
    """Time stamps, remade only when their tick changes: a second for ``local``
    (``HH:MM:SS``), a millisecond for ``iso`` (``2025-01-02T10:00:00.123+01:00``) and
    ``relative`` (seconds since the clock was made: ``+12.345``)."""

    def __init__(
        self,
        kind: TimestampFormat,
        wall: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._kind = kind
        self._wall = wall
        self._monotonic = monotonic
        self._started = monotonic()
        self._scale = 1 if kind == "local" else 1000
        self._tick = -1
        self._second = -1
        self._date = self._zone = b""
        self.text = b""

    def advance(self) -> bool:
        """Read the clock; True if ``text`` changed."""
        relative = self._kind == "relative"
        now = self._monotonic() - self._started if relative else self._wall()
        tick = int(now * self._scale)
        if tick == self._tick:
            return False
        self._tick = tick
        self.text = self._format(tick)
        return True

    def _format(self, tick: int) -> bytes:
        if self._kind == "local":
            return time.strftime("%H:%M:%S", time.localtime(tick)).encode()
        seconds, millis = divmod(tick, 1000)
        if self._kind == "relative":
            return b"+%d.%03d" % (seconds, millis)
        if seconds != self._second:
            self._second = seconds
            local = time.localtime(seconds)
            zone = time.strftime("%z", local)
            self._date = time.strftime("%Y-%m-%dT%H:%M:%S", local).encode()
            self._zone = f"{zone[:3]}:{zone[3:]}".encode()
        return b"%s.%03d%s" % (self._date, millis, self._zone)


class TextFormat:
    """``HH:MM:SS web.1     | line``: time stamp, padded name, then a mark (``|``, ``!`` for
    stderr, ``+`` for a continued piece). The prefix is cached per clock tick. With
    ``escape`` (a terminal), the children's control sequences are shown, not obeyed
    (``controls.py``)."""

    def __init__(
        self,
        clock: Clock,
        *,
        timestamps: bool = True,
        names: bool = True,
        color: bool = False,
        prefix: bool = True,
        merge_stderr: bool = False,
        note_mark: bytes = b"| ",
        escape: bool = False,
    ) -> None:
        self._clock = clock
        self._timestamps = timestamps
        self._names = names
        self._color = color
        self._prefix = prefix
        self._note_mark = note_mark
        self.escape = escape
        self._separators = (b"|", b"|" if merge_stderr else b"!")
        self._width = len(SYSTEM_NAME)
        self._colors = dict(_OWN_COLORS)
        self._cache: dict[tuple[str, bytes], bytes] = {}

    @classmethod
    def for_terminal(cls, style: Style, escape: bool = False) -> TextFormat:
        """Procrunner's stdout; ``escape`` when it is a terminal (and not ``--raw-output``)."""
        return cls(
            Clock(style.timestamp_format),
            timestamps=style.timestamps,
            color=style.color,
            prefix=style.prefix,
            merge_stderr=style.merge_stderr,
            escape=escape,
        )

    def add_names(self, names: Iterable[str]) -> None:
        """Pads every prefix to the longest name; gives each name a colour."""
        for name in names:
            if name not in self._colors:
                index = len(self._colors) - len(_OWN_COLORS)
                self._colors[name] = b"\033[%dm" % _PALETTE[index % len(_PALETTE)]
            self._width = max(self._width, len(name))
        self._cache.clear()

    def prefix(self, name: str, mark: bytes) -> bytes:
        """``HH:MM:SS web.1     | `` for ``mark=b"| "``."""
        if not self._prefix:
            return b""
        if self._timestamps and self._clock.advance():
            self._cache.clear()
        key = (name, mark)
        cached = self._cache.get(key)
        if cached is None:
            stamp = self._clock.text + b" " if self._timestamps else b""
            shown = name.ljust(self._width).encode() + b" " if self._names else b""
            label = stamp + shown + mark[:1]
            if self._color:
                label = self._colors.get(name, b"") + label + _RESET
            cached = self._cache[key] = label + mark[1:]
        return cached

    def block(self, origin: Origin, stderr: bool, body: bytes) -> bytes:
        prefix = self.prefix(origin.name, self._separators[stderr] + b" ")
        if self.escape:
            body = escape_block(body)
        if not prefix:
            return body
        return prefix + body[:-1].replace(b"\n", b"\n" + prefix) + b"\n"

    def piece(
        self, origin: Origin, stderr: bool, piece: bytes, continued: bool, partial: bool
    ) -> bytes:
        mark = self._separators[stderr] + (b"+" if continued else b" ")
        if self.escape:
            piece = escape_line(piece)
        return self.prefix(origin.name, mark) + piece + b"\n"

    def note(self, origin: Origin, text: str) -> bytes:
        return self.prefix(origin.name, self._note_mark) + text.encode(errors="replace") + b"\n"
