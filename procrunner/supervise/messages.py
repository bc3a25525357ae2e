"""The lines procrunner prints about instances, in one place, worded for people: the text
subscriber of the supervisor's facts."""

from __future__ import annotations

import signal

from procrunner.config.durations import format_duration
from procrunner.config.units import format_bytes
from procrunner.output.printer import CHAOS_NAME, Printer
from procrunner.output.text import SYSTEM_NAME
from procrunner.supervise import facts as f
from procrunner.supervise.events import EndedIncarnation
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


def watch_line(event: f.Reloading) -> str:
    if event.failure is not None:
        why = f"the watcher failed ({event.failure}); changes may have been missed"
    else:
        more = len(event.files) - SHOWN_FILES
        shown = ", ".join(event.files[:SHOWN_FILES]) + (f" and {more} more" if more > 0 else "")
        why = f"{len(event.files)} changed: {shown}"
    return f"watch: {why}: restarting {', '.join(event.types)}"


def print_fact(printer: Printer, fact: f.Fact) -> None:
    """The printer's subscription to the facts."""
    if isinstance(fact, f.Added):
        printer.add_names([*(spec.name for spec in fact.specs), CHAOS_NAME])
    for text, name in lines(fact):
        printer.system(text, name)


def lines(fact: f.Fact) -> list[tuple[str, str]]:
    """What procrunner says about a fact, each line with the name it shows under."""
    chaos = _chaos_line(fact)
    if chaos is not None:
        return [(chaos, CHAOS_NAME)]
    return [(text, SYSTEM_NAME) for text in _system_lines(fact)]


def _system_lines(fact: f.Fact) -> list[str]:
    match fact:
        case f.NothingToRun():
            return ["the formation has no instances: nothing to run"]
        case f.Spawned(replacing=previous):
            after = f", replacing {previous.label} ({previous.cause.value})" if previous else ""
            return [f"{fact.label} started with pid {fact.pid} (port {fact.port}){after}"]
        case f.FailedToStart(error=error):
            return [f"failed to start {fact.label}: {error}"]
        case f.HeldBack(name, reason):
            return [f"{name} {reason} (depends_on)"]
        case f.DependencyFailed(name, reason):
            return [f"{name} stays held: it {reason} (depends_on)"]
        case f.WentUnhealthy(label, problem, failures):
            return [f"{label} is unhealthy: {failures} checks failed in a row (last: {problem})"]
        case f.Completed(name, release):
            if release:
                return [f"{name} completed: the release phase is over, starting the formation"]
            return [f"{name} completed (once): it stays down, the rest keeps running"]
        case f.ExitedOnItsOwn(label, how, cause, policy):
            return [f"{label} {how} ({cause.value}, {policy})"]
        case f.Ended(_, ended, report, kept, left_behind):
            behind = [f"{ended.label} left processes behind: stopped them"] if left_behind else []
            return behind + end_lines(ended, report, kept)
        case f.RestartPlanned(name, cause, delay):
            return [restarting(name, cause.value, delay)]
        case f.GaveUp(name, fatal):
            return [gave_up(name, fatal)]
        case f.StaysDown(name):
            return [f"{name} stays down (exited); the rest keeps running"]
        case f.BecameReady():
            return _ready_lines(fact)
        case f.ScaledType(type_name, before, after):
            return [f"scaled {type_name} from {before} to {after} (requested)"]
        case f.Reloading():
            return [watch_line(fact)]
        case f.ShutdownBegan(reason, _, hint):
            again = " (press Ctrl-C again to kill them at once)" if hint else ""
            return [f"{reason}: stopping all processes{again}"]
        case f.KillingNow(name):
            return [f"second {name}: killing all processes now (SIGKILL)"]
    return []


def _ready_lines(fact: f.BecameReady) -> list[str]:
    if fact.recovered is not None:
        return [f"{fact.label} ready: recovered in {format_duration(fact.recovered)}"]
    if fact.readiness.kind == "port":
        return [f"{fact.label} ready: port {fact.port} accepts connections"]
    if fact.readiness.kind == "log":
        return [f"{fact.label} ready: its output matched /{fact.readiness.pattern}/"]
    if fact.readiness.kind == "http":
        return [f"{fact.label} ready: GET {fact.readiness.target} on port {fact.port} answered"]
    if fact.readiness.kind == "exec":
        return [f"{fact.label} ready: {fact.readiness.target!r} exited 0"]
    return []


def _chaos_line(fact: f.Fact) -> str | None:
    match fact:
        case f.ChaosOn(description):
            return description
        case f.ChaosOff():
            return "chaos off (requested)"
        case f.ChaosKilled(name, number, uptime, sig):
            return f"killing {name}#{number} (up {format_duration(uptime)}) with {sig}"
        case f.ChaosMissed():
            return "no running instance to kill this time"
        case f.ChaosDone(kills):
            return f"done: {kills} kills (max={kills})"
    return None
