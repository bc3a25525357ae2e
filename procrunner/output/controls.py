"""What a child may do to the user's terminal: colour its text, nothing more.

On a terminal, a child's control sequences would act on the screen procrunner shares with
every other instance: ``\\r`` and cursor moves overwrite procrunner's own lines, erase-line
wipes them, OSC sequences set the window title or (OSC 52) the user's clipboard. So, unless
``--raw-output``, text output keeps SGR colour sequences (``ESC [ ... m``, followed by a reset
at the end of their line so a colour cannot leak into the next prefix) and shows every other
control byte as text: ``\\r`` as ``\\r``, ``ESC`` as ``\\x1b`` (the rest of its sequence is
printable already), UTF-8 encoded C1 controls as ``\\xc2\\x9b``. A line redrawn with ``\\r``
(a progress bar) is shown as its latest state: ``\\r`` and the text after the last one.
Pipes, JSON and log files never come here.
"""

from __future__ import annotations

import re

_RESET = b"\033[0m"
# Everything but these is a control byte: deleting them leaves the control bytes of a block.
_PLAIN = bytes(b for b in range(256) if 0x20 <= b != 0x7F or b in b"\t\n")
_C1 = re.compile(rb"\xc2[\x80-\x9f]")
_SGR = re.compile(rb"\x1b\[[0-9;:]*m")
_CONTROL = re.compile(rb"\x1b\[[0-9;:]*m|[\x00-\x08\x0b-\x1f\x7f]|\xc2[\x80-\x9f]")


def unsafe(data: bytes) -> bool:
    """True if ``data`` holds any control byte but tab and newline (the fast path: checked in
    C, and a clean block is passed on as it is)."""
    if data.translate(None, _PLAIN):
        return True
    return not data.isascii() and _C1.search(data) is not None


def escape_block(body: bytes) -> bytes:
    """``body`` is one or more whole lines, each ending in a newline."""
    if not unsafe(body):
        return body
    return b"\n".join([escape_line(line) for line in body[:-1].split(b"\n")]) + b"\n"


def escape_line(line: bytes) -> bytes:
    """One line (or piece of one) without its newline, made safe to show."""
    if not unsafe(line):
        return line
    if line.endswith(b"\r"):  # the CR of a CRLF line end, or of a bar about to be redrawn
        line = line[:-1]
    if b"\r" in line:
        line = b"\r" + line.rpartition(b"\r")[2]
    shown = _CONTROL.sub(_show, line)
    return shown + _RESET if _SGR.search(line) else shown


def _show(match: re.Match[bytes]) -> bytes:
    control = match.group()
    if control.startswith(b"\x1b["):  # only SGR is matched with its parameters
        return control
    if control == b"\r":
        return b"\\r"
    return b"".join(b"\\x%02x" % byte for byte in control)
