"""The lines procrunner prints about instances, in one place, worded for people."""

from __future__ import annotations

import signal

from procrunner.config.durations import format_duration
from procrunner.config.units import format_bytes
from procrunner.supervise.events import EndedIncarnation, WatchTriggered
from procrunner.supervise.incarnation import StopReport
from procrunner.supervise.restart import Fatal
from procrunner.supervise.tree import signal_name

SHOWN_FILES = 5  # changed files named in a watch line


def end_lines(ended: EndedIncarnation, report: StopReport, kept: bool) -> list[str]:
    """What procrunner says when an incarnation has ended: what it destroyed, then anything
    that went wrong with its scratch or its stop."""
    problems = [f"{ended.label} scratch: {problem}" for problem in ended.scratch.problems]
    return [describe_end(ended, kept), *problems, *stop_trouble(ended.label, report)]


def describe_end(ended: EndedIncarnation, kept: bool) -> str:
    """``web.1#3 ended (exited 1 after 12.4 s): destroyed 7 files / 2.1 MB of scratch and
    48.0 MB of process memory``."""
    scratch = ended.scratch
    memory = (
        " (its memory was not sampled)"
        if ended.memory is None
        else f" and {format_bytes(ended.memory.best)} of process memory"
    )
    files = "1 file" if scratch.files == 1 else f"{scratch.files} files"
    verb = "kept" if kept else "destroyed"
    return (
        f"{ended.label} ended ({ended.how} after {format_duration(ended.uptime)}): "
        f"{verb} {files} / {format_bytes(scratch.bytes)} of scratch{memory}"
    )


def restarting(name: str, cause: str, delay: float) -> str:
    when = "now" if delay == 0 else f"in {format_duration(delay)} (backoff)"
    after = "on request" if cause == "requested" else f"after {cause}"
    return f"{name} restarting {after} {when}"


def gave_up(name: str, fatal: Fatal) -> str:
    return (
        f"{name} gave up: {fatal.deaths} deaths within {format_duration(fatal.window)} "
        "(--give-up); it stays down (fatal), the rest of the formation keeps running"
    )


def stop_trouble(label: str, report: StopReport) -> list[str]:
    """What went wrong in a stop sequence, loudly."""
    lines = []
    if report.killed and report.signum != signal.SIGKILL:
        name, timeout = signal_name(report.signum), format_duration(report.timeout)
        lines.append(f"{label} did not stop on {name} within {timeout}: SIGKILL sent")
    if report.survivors:
        pids = ", ".join(map(str, report.survivors))
        lines.append(f"ERROR: {label}: processes survived SIGKILL: {pids}")
    return lines


def watch_line(event: WatchTriggered) -> str:
    if event.failure is not None:
        why = f"the watcher failed ({event.failure}); changes may have been missed"
    else:
        more = len(event.files) - SHOWN_FILES
        shown = ", ".join(event.files[:SHOWN_FILES]) + (f" and {more} more" if more > 0 else "")
        why = f"{len(event.files)} changed: {shown}"
    return f"watch: {why}: restarting {', '.join(event.types)}"
