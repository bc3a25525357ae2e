"""A child that writes what procrunner must not trust or must not split:
``python scribbler.py BEHAVIOUR [ARGS]``.

    controls         one line per kind of control sequence, then ``done``
    bar INTERVAL     a progress bar redrawn with \\r every INTERVAL seconds, never a newline
    numbered SEED    numbered lines (``<PS> <seq> x...``), written as fast as possible in
                     writes cut at random byte offsets (so lines straddle writes, as a stdio
                     flush does); on SIGTERM it finishes its line, prints ``<PS> end <count>``
                     and exits
"""

from __future__ import annotations

import os
import random
import signal
import sys
import time

CONTROLS = [
    b"title \x1b]0;pwned\x07 end",
    b"clipboard \x1b]52;c;aGVsbG8=\x07 end",
    b"overwrite before\rafter",
    b"move \x1b[2A\x1b[10C up",
    b"erase \x1b[2K\x1b[1G gone",
    b"colour \x1b[31mred\x1b[0m plain",
    b"c1 \xc2\x9b31m csi",
    b"bell \x07 backspace \x08 delete \x7f",
    b"crlf line\r",
]


def controls() -> None:
    os.write(1, b"".join(line + b"\n" for line in CONTROLS) + b"done\n")
    time.sleep(3600)


def bar(interval: str) -> None:
    percent = 0
    while True:
        os.write(1, b"\rprogress %d%%" % (percent % 101))
        percent += 1
        time.sleep(float(interval))


def numbered(seed: str) -> None:
    stopping = False

    def stop(_signal: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    name = os.environ["PS"].encode()
    rng = random.Random(f"{seed}/{name.decode()}")
    pending = b""
    sequence = 0
    while not stopping:
        while len(pending) < 16384:
            pending += numbered_line(name, sequence)
            sequence += 1
        cut = rng.randrange(1, len(pending))
        _write_all(pending[:cut])
        pending = pending[cut:]
    _write_all(pending + b"%s end %d\n" % (name, sequence))


def numbered_line(name: bytes, sequence: int) -> bytes:
    """Its length follows from its number, so a cut line cannot pass for a whole one."""
    return b"%s %d %s\n" % (name, sequence, b"x" * (sequence * 7919 % 200))


def _write_all(data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(1, view) :]


if __name__ == "__main__":
    {"controls": controls, "bar": bar, "numbered": numbered}[sys.argv[1]](*sys.argv[2:])
