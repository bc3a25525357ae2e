"""What the dashboard page shows, built only from what the control socket says: the last
``ps`` and the notices that followed. Watchers (the page's event streams) are woken on
every change; each reads the whole picture when it is ready, so a slow one skips pictures
rather than piling them up."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from dataclasses import asdict, dataclass
from typing import Any

Notice = dict[str, Any]

BARS = 100  # incarnations kept per instance
LINES = 15  # output lines kept per instance
LINE_CHARS = 500  # characters kept of one output line
EVENTS = 40  # notices kept for the page's event list
LIVE = ("starting", "running", "stopping")


@dataclass
class Bar:
    """One incarnation on the timeline, from spawn to end (``end`` None: still running)."""

    incarnation: int
    start: float
    ready: float | None = None
    recovered: float | None = None  # this incarnation's outage: previous end to ready
    end: float | None = None
    cause: str | None = None
    how: str | None = None
    uptime: float | None = None
    destroyed: dict[str, int | None] | None = None
    recovery: float | None = None  # how long the next incarnation took to be ready


class Picture:
    def __init__(self) -> None:
        self.version = 0
        self._watchers: set[asyncio.Event] = set()  # one per reader, set on change
        self._reset()
        self.connected = False
        self.down_since: float | None = None
        self.last = False  # the dashboard closes after this picture: pages stop following

    def _reset(self) -> None:
        self.app: str | None = None
        self.pid: int | None = None
        self.stopping: str | None = None
        self.finished: dict[str, Any] | None = None  # the run's exit status and summary
        self.ps: dict[str, Any] | None = None
        # the last state each instance's notices told: a ps reply that left before a change
        # and arrives after its notice must not undo it (at the end no later ps comes)
        self._noticed: dict[str, str] = {}
        self.types: dict[str, None] = {}  # every type seen, in order (a type scaled to 0 stays)
        # per type, the count its last scale asked for: ps still lists the instances that are
        # stopping after a scale down, so their number tells no count
        self.counts: dict[str, int] = {}
        self.timeline: dict[str, list[Bar]] = {}
        self.output: dict[str, deque[dict[str, Any]]] = {}
        self.events: deque[Notice] = deque(maxlen=EVENTS)

    def watch(self) -> asyncio.Event:
        """An event set whenever the picture changes (the reader clears it)."""
        watcher = asyncio.Event()
        self._watchers.add(watcher)
        return watcher

    def forget(self, watcher: asyncio.Event) -> None:
        self._watchers.discard(watcher)

    def came_up(self, greeting: dict[str, Any]) -> None:
        """Connected to a formation; a new one (another pid) starts a new picture."""
        if greeting.get("pid") != self.pid:
            self._reset()
        self.app, self.pid = greeting.get("app"), greeting.get("pid")
        self.connected, self.down_since, self.stopping = True, None, None
        self._changed()

    def closing(self) -> None:
        """The dashboard sends this picture, then closes: ``start --dashboard`` is over."""
        self.last = True
        self._changed()

    async def run_ended(self) -> None:
        """Until the run's last notice (``finished``) is in, or the formation is gone."""
        watcher = self.watch()
        try:
            while self.connected and self.finished is None:
                await watcher.wait()
                watcher.clear()
        finally:
            self.forget(watcher)

    def went_down(self) -> None:
        """The formation is gone: keep the last picture, say since when."""
        if self.connected:
            self.connected, self.down_since = False, time.time()
            self._changed()

    def seed(self, ps: dict[str, Any]) -> None:
        """The latest ``ps``; instances that run an incarnation the notices did not show
        (started before the dashboard) get a bar from their uptime."""
        self.ps = ps
        for name, state in self._noticed.items():
            self._restate(name, state)
        now = time.time()
        for row in ps["instances"]:
            self.types.setdefault(row["type"], None)
            bars = self.timeline.setdefault(row["name"], [])
            if row["state"] in LIVE and row["uptime"] is not None and not _bar(bars, row):
                bars.append(Bar(row["incarnation"], now - row["uptime"]))
        self._changed()

    def history(self, lines: list[dict[str, Any]]) -> None:
        """Recent output lines, as the ``events`` reply gives them."""
        for line in lines:
            self._output(line["instance"], line["time"], line["text"], line["stderr"])
        self._changed()

    def apply(self, notice: Notice) -> None:
        event, name = notice["event"], notice.get("instance")
        if event == "output" and name is not None:
            for text in notice["lines"]:
                self._output(name, notice["time"], text, notice["stderr"])
            self._changed()
            return
        if event == "state" and name is not None:
            self._noticed[name] = notice["state"]
            self._restate(name, notice["state"])
        elif name is not None and "incarnation" in notice:
            self._on_incarnation(event, name, notice)
        elif event == "shutdown":
            self.stopping = notice["reason"]
        elif event == "finished":
            self.finished = {"status": notice["status"], "summary": notice["summary"]}
        elif event == "scaled":
            self.counts[notice["type"]] = notice["after"]
        if event != "state":  # the table shows states; the list tells what happened
            self.events.append(notice)
        self._changed()

    def _restate(self, name: str, state: str) -> None:
        """A state notice, on the instance's row until the next ``ps``: at the end of a run
        no ``ps`` answers, and the rows must still show every instance stopped."""
        row = next((r for r in self.ps["instances"] if r["name"] == name), None) if (
            self.ps) else None
        if row is None:
            return
        row["state"] = state
        if state not in LIVE:
            row.update(pid=None, uptime=None, rss=None)
        if state != "starting":
            row["ready"] = None
        if state != "backoff":
            row["retry_at"] = None

    def _on_incarnation(self, event: str, name: str, notice: Notice) -> None:
        bars = self.timeline.setdefault(name, [])
        number, when = notice["incarnation"], notice["time"]
        bar = next((b for b in reversed(bars) if b.incarnation == number), None)
        if event == "spawned" and bar is None:
            bars.append(Bar(number, when))
            del bars[:-BARS]
        elif event == "ready" and bar is not None:
            bar.ready, bar.recovered = when, notice["recovered"]
            previous = next((b for b in bars if b.incarnation == number - 1), None)
            if previous is not None:
                previous.recovery = notice["recovered"]
        elif event == "ended":
            if bar is None:
                bar = Bar(number, when - notice["uptime"])
                bars.append(bar)
            bar.end, bar.cause, bar.how = when, notice["cause"], notice["how"]
            bar.uptime, bar.destroyed = notice["uptime"], notice["destroyed"]

    def _output(self, name: str, when: float, text: str, stderr: bool) -> None:
        lines = self.output.setdefault(name, deque(maxlen=LINES))
        lines.append({"time": when, "text": text[:LINE_CHARS], "stderr": stderr})

    def _changed(self) -> None:
        self.version += 1
        for watcher in self._watchers:
            watcher.set()

    def as_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "time": time.time(),
            "connected": self.connected,
            "down_since": self.down_since,
            "app": self.app,
            "pid": self.pid,
            "stopping": self.stopping,
            "finished": self.finished,
            "last": self.last,
            "types": list(self.types),
            "counts": dict(self.counts),
            "instances": self.ps["instances"] if self.ps else [],
            "chaos": self.ps["chaos"] if self.ps else None,
            "timeline": {n: [asdict(b) for b in bars] for n, bars in self.timeline.items()},
            "output": {n: list(lines) for n, lines in self.output.items()},
            "events": list(self.events),
        }


def _bar(bars: list[Bar], row: dict[str, Any]) -> bool:
    return any(b.incarnation == row["incarnation"] for b in bars)
