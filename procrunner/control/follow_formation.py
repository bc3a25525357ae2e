"""``procrunner attach``: the formation's output in this terminal, as ``start`` prints it
(time, padded name, ``|`` or ``!``, colours and escaped control sequences on a terminal),
the last lines of each instance first, then what happens from there on. It only follows:
Ctrl-C detaches and the formation goes on.

It follows ``events`` with output, so the history and the stream join without a gap or a
repeat (the server takes both in one turn of its loop). Like every follower it reads a bounded
subscription: if it is slower than the formation, the oldest notices are dropped and it says
how many lines were lost (``start`` itself never drops).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from typing import Any, BinaryIO

from procrunner.config.durations import format_duration
from procrunner.control.client import Connection
from procrunner.output.text import CHAOS_NAME, Clock, Origin, TextFormat

HISTORY = 10  # lines of each instance shown first
ASKED = 10_000  # lines of history asked for, from which each instance's last are kept


class Screen:
    """Lines formatted as ``start`` formats them, stamped with the time they were printed."""

    def __init__(self, out: BinaryIO, terminal: bool) -> None:
        self._now = 0.0
        color = terminal and not os.environ.get("NO_COLOR")
        clock = Clock("local", wall=lambda: self._now)
        self._format = TextFormat(clock, color=color, escape=terminal)
        self._out = out
        self._names: set[str] = set()

    def add_names(self, names: Iterable[str]) -> None:
        """Pads every prefix to the longest name (a new name widens the lines after it)."""
        new = [name for name in dict.fromkeys(names) if name not in self._names]
        if new:
            self._names.update(new)
            self._format.add_names(new)

    def lines(self, when: float, name: str, stderr: bool, texts: list[str]) -> None:
        self._now = when
        self.add_names([name])
        body = "".join(f"{text}\n" for text in texts).encode(errors="replace")
        self._out.write(self._format.block(Origin(name), stderr, body))

    def system(self, when: float, text: str) -> None:
        self._now = when
        self._out.write(self._format.note(Origin("system"), text))

    def flush(self) -> None:
        self._out.flush()


def attach_formation(connection: Connection) -> int:
    terminal = sys.stdout.isatty()
    screen = Screen(sys.stdout.buffer, terminal)
    names = [row["name"] for row in connection.request("ps")["instances"]]
    screen.add_names([*names, CHAOS_NAME])  # as start does: the same widths and colours
    try:
        result = connection.request("events", output=True, lines=ASKED)
        print("attached; Ctrl-C detaches (the formation goes on)", file=sys.stderr, flush=True)
        for line in last_of_each(result["lines"], HISTORY):
            screen.lines(line["time"], line["instance"], line["stderr"], [line["text"]])
        screen.flush()
        for notice in connection.notices():
            show(screen, notice)
            screen.flush()
    except KeyboardInterrupt:
        print("\ndetached: the formation goes on ('procrunner stop' ends it)", file=sys.stderr)
        return 0
    print("the formation has stopped", file=sys.stderr)
    return 0


def last_of_each(lines: list[dict[str, Any]], count: int) -> list[dict[str, Any]]:
    """The last ``count`` of each instance's lines, in the order they came."""
    kept: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    for line in reversed(lines):
        name = line["instance"]
        seen[name] = seen.get(name, 0) + 1
        if seen[name] <= count:
            kept.append(line)
    return kept[::-1]


def show(screen: Screen, notice: dict[str, Any]) -> None:
    if notice["event"] == "output":
        screen.lines(notice["time"], notice["instance"], notice["stderr"], notice["lines"])
    elif (text := describe(notice)) is not None:
        screen.system(notice["time"], text)


def describe(notice: dict[str, Any]) -> str | None:
    """procrunner's own line about a notice, in short; None for those it does not show."""
    event, name = notice["event"], notice.get("instance")
    match event:
        case "dropped":
            return (f"{notice['output_lines']} lines ({notice['count']} notices) dropped here: "
                    "this attach was slower than the formation")
        case "spawned":
            return (f"{name}#{notice['incarnation']} started with pid {notice['pid']} "
                    f"(port {notice['port']})")
        case "ready":
            return f"{name}#{notice['incarnation']} is ready"
        case "ended":
            uptime = format_duration(notice["uptime"])
            return f"{name}#{notice['incarnation']} ended ({notice['how']} after {uptime})"
        case "held":
            return f"{name} {notice['reason']}"
        case "completed":
            return f"{name} completed"
        case "release":
            return f"the release phase failed: {name} {notice['how']}"
        case "unhealthy":
            return f"{name} is unhealthy ({notice['problem']}): restarting it"
        case "scaled":
            return f"{notice['type']} scaled from {notice['before']} to {notice['after']}"
        case "shutdown":
            return f"stopping the formation: {notice['reason']}"
    return None
