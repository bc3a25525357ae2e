"""``--output json``: one JSON object per line, lossless for any bytes.

    {"time":"2025-01-02T10:00:00.123+01:00","instance":"web.1","incarnation":3,
     "stream":"stdout","line":"GET / 200"}

``stream`` is ``stdout``, ``stderr`` or ``procrunner`` (procrunner's own lines: instance
``system`` or ``chaos`` with incarnation null, or a log file's marker for an incarnation).
The line's bytes, without their newline, are ``line`` when they are valid UTF-8, else
``line_b64`` (standard base64). A piece of a line (a line held back longer than 50 ms, or cut
at 1 MiB, or the stream's last bytes without a newline) has ``"partial":true`` when no newline
followed it, and the piece after it ``"continued":true``. So the stream's exact bytes are the
objects' bytes in order, each followed by a newline unless it is partial.

The fast path: a block of whole lines with no control byte but tab and newline, and valid
UTF-8 (checked in C), needs only ``\\``, ``"`` and tab escaped, then is framed with one
``bytes.replace`` of its newlines, as the text format prefixes it. Any other block is encoded
line by line.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable

from procrunner.output.sink import Chunk
from procrunner.output.text import Clock, Origin

_STREAMS = (b"stdout", b"stderr")
_OWN = b"procrunner"
# Deleting these from a block leaves only the control bytes that JSON must escape as \uXXXX.
_NOT_CONTROL = bytes(b for b in range(256) if b >= 0x20 or b in b"\t\n")
_LINE = b'"line":"'
_END = b'"}\n'


class JsonFormat:
    """Formats lines as JSON objects; the head of each (up to the line) is cached per
    millisecond and origin."""

    def __init__(self, clock: Clock | None = None) -> None:
        self._clock = clock or Clock("iso")
        self._heads: dict[tuple[str, int | None, bytes], bytes] = {}

    def add_names(self, names: Iterable[str]) -> None:
        """Names change nothing in a JSON line (no padding, no colour)."""

    def block(self, origin: Origin, stderr: bool, body: bytes) -> Chunk:
        head = self._head(origin, _STREAMS[stderr])
        if _plain(body):
            if b"\\" in body:
                body = body.replace(b"\\", b"\\\\")
            if b'"' in body:
                body = body.replace(b'"', b'\\"')
            if b"\t" in body:
                body = body.replace(b"\t", b"\\t")
            head += _LINE
            # Every newline becomes end + head; the extra end in front and head behind are
            # cut off by a view, not a copy (copies of large blocks cost more than the rest).
            framed = (b"\n" + body).replace(b"\n", _END + head)
            return memoryview(framed)[len(_END) : -len(head)]
        return b"".join([encode_line(head, line) for line in body[:-1].split(b"\n")])

    def piece(
        self, origin: Origin, stderr: bool, piece: bytes, continued: bool, partial: bool
    ) -> bytes:
        head = self._head(origin, _STREAMS[stderr])
        if continued:
            head += b'"continued":true,'
        if partial:
            head += b'"partial":true,'
        return encode_line(head, piece)

    def note(self, origin: Origin, text: str) -> bytes:
        return encode_line(self._head(origin, _OWN), text.encode(errors="replace"))

    def _head(self, origin: Origin, stream: bytes) -> bytes:
        if self._clock.advance():
            self._heads.clear()
        key = (origin.name, origin.number, stream)
        head = self._heads.get(key)
        if head is None:
            name, number = json.dumps(origin.name), json.dumps(origin.number)
            head = b'{"time":"%s","instance":%s,"incarnation":%s,"stream":"%s",' % (
                self._clock.text,
                name.encode(),
                number.encode(),
                stream,
            )
            self._heads[key] = head
        return head


def encode_line(head: bytes, line: bytes) -> bytes:
    """One object: ``head`` (every field up to the line's), then ``line`` or ``line_b64``."""
    try:
        text = line.decode()
    except UnicodeDecodeError:
        return head + b'"line_b64":"' + base64.b64encode(line) + _END
    return head + b'"line":' + json.dumps(text, ensure_ascii=False).encode() + b"}\n"


def _plain(body: bytes) -> bool:
    if body.translate(None, _NOT_CONTROL):
        return False
    if body.isascii():
        return True
    try:
        body.decode()
    except UnicodeDecodeError:
        return False
    return True
