"""``procrunner wait [TYPE...] [--timeout DURATION]``: until every instance of those types
(all by default) is RUNNING and ready, or has completed cleanly (a one-shot step, the release
phase). Exit 0 then; exit 1 with one line naming what is not ready, and its last output line,
at the timeout, when an instance goes FATAL or stays down after a failure, when a step or the
release phase fails, when an instance is held behind a failed dependency, or when the
formation stops.

It follows ``events`` first, then looks at ``ps``, and looks again after each notice: no
change falls between the look and the follow, and it never polls.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from procrunner.config.durations import format_duration
from procrunner.config.quoting import quote
from procrunner.control.client import Connection
from procrunner.control.detach import RUN_LOG, default_log_dir
from procrunner.control.history import selects
from procrunner.errors import NotRunning, ProcrunnerError

SHOWN = 3  # instances named in a "not ready" line
LOG_TAIL = 64 << 10  # bytes read from the end of a detached run's log for its shutdown line
SHUTDOWN_SAYS = ": stopping all processes"  # how messages.print_fact ends a shutdown line


@dataclass(frozen=True)
class Verdict:
    """One look at ``ps``: every instance ready, or one failed (``failure``, about
    ``instance``), or these still on their way (``waiting``: name and what it waits for)."""

    ready: tuple[str, ...] = ()
    failure: str | None = None
    instance: str | None = None
    waiting: tuple[tuple[str, str], ...] = ()


def judge(ps: dict[str, Any], targets: Sequence[str]) -> Verdict:
    """Whether the instances that ``targets`` select (all for none) are ready."""
    rows = [row for row in ps["instances"]
            if not targets or selects(targets, row["name"])]  # fmt: skip
    for target in targets:
        if not any(selects([target], row["name"]) for row in rows):
            known = ", ".join(row["name"] for row in ps["instances"]) or "none"
            raise ProcrunnerError(f"no instance or process type {target!r} (instances: {known})",
                                  "wait")  # fmt: skip
    if ps["stopping"]:
        return Verdict(failure="the formation is stopping")
    waiting = []
    for row in rows:
        name, state, ended = row["name"], row["state"], row["ended"]
        how = ended[-1]["how"] if ended else None
        if state == "fatal":
            return Verdict(failure=f"{name} is fatal: procrunner gave up on it (last: {how})",
                           instance=name)
        if state == "exited" and ended and ended[-1]["cause"] != "exited":
            return Verdict(failure=f"{name} {how} and stays down", instance=name)
        if failed := row.get("held_failed"):  # the failed dependency's line tells why
            return Verdict(failure=f"{name} {row['held']}", instance=failed.partition("#")[0])
        if state not in ("running", "exited"):
            waiting.append((name, _awaits(row)))
    if waiting:
        return Verdict(waiting=tuple(waiting))
    return Verdict(ready=tuple(row["name"] for row in rows))


def _awaits(row: dict[str, Any]) -> str:
    """``starting: waits for port 5000``, ``backoff: restarts in 2 s``..."""
    state: str = row["state"]
    ready = row["ready"]
    if row["held"]:
        return f"{state}: {row['held']}"
    if state == "backoff" and row["retry_at"] is not None:
        return f"backoff: restarts in {format_duration(max(row['retry_at'] - time.time(), 0))}"
    if state != "starting" or ready is None:
        return state
    match ready["kind"]:
        case "port":
            return f"starting: waits for port {ready['port']}"
        case "http":
            return f"starting: waits for GET {ready['path']} on port {ready['port']}"
        case "exec":
            return f"starting: waits for {quote(ready['command'])} to exit 0"
        case "log":
            return f"starting: waits for a line matching {quote(ready['pattern'])}"
        case "uptime":
            return f"starting: waits to stay up {format_duration(ready['seconds'])}"
    return "starting"


def wait_until_ready(root: Path, path: Path, targets: Sequence[str],
                     timeout: float | None) -> int:
    deadline = None if timeout is None else time.monotonic() + timeout
    try:
        with Connection(path, root) as follower:
            follower.request("events")  # first: nothing that happens after the look is missed
            return _follow(root, path, follower, targets, deadline, timeout)
    except NotRunning as exc:
        return _fail(f"{exc}{_log_ending(root)}")


def _follow(root: Path, path: Path, follower: Connection, targets: Sequence[str],
            deadline: float | None, timeout: float | None) -> int:
    while True:
        with Connection(path, root) as looking:
            verdict = judge(looking.request("ps"), targets)
        if verdict.ready:
            print(f"ready: {', '.join(verdict.ready)}")
            return 0
        if verdict.failure is not None:
            return _fail(verdict.failure, root, path, verdict.instance)
        while True:  # until a notice that may change the verdict; every one waiting is read
            remaining = None if deadline is None else max(deadline - time.monotonic(), 0)
            try:
                notice = follower.notice(remaining)
            except NotRunning:
                return _fail(f"the formation stopped before it was ready{_log_ending(root)}")
            if notice is None:
                return _not_ready(root, path, verdict, timeout)
            if notice["event"] == "release":
                failure = f"the release phase failed: {notice['instance']} {notice['how']}"
                return _fail(failure, root, path, notice["instance"])
            if notice["event"] == "shutdown":
                return _fail(f"the formation is stopping: {notice['reason']}")
            if not follower.has_more():
                break


def _not_ready(root: Path, path: Path, verdict: Verdict, timeout: float | None) -> int:
    name, what = verdict.waiting[0]
    others = [other for other, _ in verdict.waiting[1:]]
    more = ""
    if others:
        shown = ", ".join(others[:SHOWN - 1]) + (" ..." if len(others) >= SHOWN else "")
        more = f" (also not ready: {shown})"
    after = format_duration(timeout or 0)
    return _fail(f"not ready after {after}: {name} is {what}{more}", root, path, name)


def _fail(problem: str, root: Path | None = None, path: Path | None = None,
          instance: str | None = None) -> int:
    """The one line of a wait that failed: the problem and the instance's last line."""
    last = _last_line(root, path, instance) if root and path and instance else None
    said = f"; last line of {instance}: {quote(last)}" if last is not None else ""
    print(f"procrunner wait: {problem}{said}", file=sys.stderr)
    return 1


def _last_line(root: Path, path: Path, instance: str) -> str | None:
    try:
        with Connection(path, root) as asking:
            lines = asking.request("logs", targets=[instance], lines=1, follow=False)["lines"]
    except (NotRunning, ProcrunnerError):
        return None
    return lines[-1]["text"] if lines else None


def _log_ending(root: Path) -> str:
    """``; its last detached run ended: REASON``, from the shutdown line that a detached run
    of this app wrote to its default log (a failed release, a bad port), else where that log
    is; nothing if there is none."""
    log = default_log_dir(root, os.environ) / RUN_LOG
    try:
        with log.open("rb") as file:
            file.seek(max(file.seek(0, os.SEEK_END) - LOG_TAIL, 0))
            lines = file.read().decode(errors="replace").splitlines()
    except OSError:
        return ""
    for line in reversed(lines):
        _, bar, text = line.partition("| ")
        if bar and text.endswith(SHUTDOWN_SAYS):
            return f"; its last detached run ended: {quote(text.removesuffix(SHUTDOWN_SAYS))}"
    return f"; its last detached run's log: {log}"
