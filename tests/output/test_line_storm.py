"""Every line checked by its writer and number: whole, once, in order, none missing (to the
count each writer prints at its end), none split. 50 writers as fast as they can for a minute
(slow: ``-m slow``; ``STORM_SECONDS`` shortens or lengthens the run), and a stop while a slow
reader holds megabytes back.
"""

from __future__ import annotations

import os
import signal
import time
from collections import Counter
from dataclasses import dataclass, field

import pytest
from harness import App
from screen import scribbler
from scribbler import numbered_line

WRITERS = 50


@dataclass
class Tally:
    """What procrunner printed of each writer."""

    following: dict[bytes, int] = field(default_factory=dict)  # the next number expected
    ends: dict[bytes, int] = field(default_factory=dict)  # the count each writer printed
    problems: Counter[str] = field(default_factory=Counter)
    examples: list[bytes] = field(default_factory=list)
    lines: int = 0

    def take(self, line: bytes) -> None:
        bar = line.find(b"|")
        name = line[:bar].rstrip()
        if not name.startswith(b"w."):
            return
        self.lines += 1
        body = line[bar + 2 :]
        if line[bar + 1 : bar + 2] != b" ":
            return self._problem("split", line)
        number = body.split(b" ", 2)[1] if body.count(b" ") >= 2 else b""
        if number == b"end" and body.startswith(name + b" "):
            self.ends[name] = int(body.split()[2])
            return None
        expected = self.following.get(name, 0)
        if not number.isdigit():
            return self._problem("mangled", line)
        if body != numbered_line(name, int(number)):
            return self._problem("cut" if int(number) == expected else "mangled", line)
        if int(number) != expected:
            self._problem("out of order or missing", line)
        self.following[name] = int(number) + 1
        return None

    def _problem(self, kind: str, line: bytes) -> None:
        self.problems[kind] += 1
        if len(self.examples) < 5:
            self.examples.append(line[:120])

    def missing(self) -> dict[bytes, int]:
        return {
            name: count - self.following.get(name, 0)
            for name, count in self.ends.items()
            if count != self.following.get(name, 0)
        }


@pytest.mark.slow
def test_fifty_writers_for_a_minute_lose_split_or_reorder_no_line(app: App) -> None:
    seconds = os.environ.get("STORM_SECONDS", "60")
    app.procfile(f"w: {scribbler('numbered', '17')}\n")
    began = time.monotonic()
    run = app.start("--no-timestamp", "-m", f"w={WRITERS}", "--run-for", f"{seconds}s",
                    "--timeout", "60s", read=False)  # fmt: skip
    tally = Tally()
    assert run.proc.stdout is not None
    for line in run.proc.stdout:
        tally.take(line)
    status = run.finish(60)
    took = time.monotonic() - began
    print(f"{tally.lines} lines of {len(tally.ends)} writers in {took:.0f} s")
    assert status == 0, run.stderr
    assert not tally.problems, (tally.problems, tally.examples)
    assert len(tally.ends) == WRITERS, sorted(tally.ends)
    assert not tally.missing(), tally.missing()


@pytest.mark.slow
def test_a_long_write_to_a_slow_reader_does_not_cut_the_stops_drain_short(app: App) -> None:
    app.procfile(f"w: {scribbler('numbered', '5')}\n")
    run = app.start("--no-timestamp", "-m", "w=10", "--timeout", "60s", read=False)
    assert run.proc.stdout is not None
    tally = Tally()
    taken = 0
    rest = b""
    # A reader of about 3 MB/s: the children write faster, so at the stop megabytes wait in
    # procrunner's queue and in the pipes. The stop reads the pipes to their end only while
    # output moves; one writev of the whole queue to this reader took longer than its 0.5 s
    # bound, so it looked stuck and the pipes' last megabytes were dropped.
    while chunk := run.proc.stdout.read1(64 << 10):
        *lines, rest = (rest + chunk).split(b"\n")
        for line in lines:
            tally.take(line + b"\n")
        if taken < 8 << 20 <= taken + len(chunk):
            run.signal(signal.SIGINT)
        taken += len(chunk)
        time.sleep(0.02)
    assert run.finish() == 130
    assert not tally.problems, (tally.problems, tally.examples)
    assert len(tally.ends) == 10 and not tally.missing(), (tally.ends, tally.missing())
