"""The lines procrunner prints about instances, in one place, worded for people: the text
subscriber of the supervisor's facts."""

from __future__ import annotations

import signal
from dataclasses import dataclass

from procrunner.config.durations import format_duration
from procrunner.config.units import format_bytes
from procrunner.output.printer import CHAOS_NAME, Printer
from procrunner.output.text import SYSTEM_NAME
from procrunner.supervise import facts as f
from procrunner.supervise.events import EndedIncarnation
from procrunner.supervise.incarnation import StopReport
from procrunner.supervise.restart import Fatal
from procrunner.supervise.states import Cause
from procrunner.supervise.tree import signal_name

SHOWN_FILES = 5  # changed files named in a watch line


@dataclass(frozen=True)
class Line:
    """One line procrunner says, the name it shows under, and whether ``--quiet`` hides it
    (chatter: what went as expected) or keeps it (an error, a crash, a warning)."""

    text: str
    name: str = SYSTEM_NAME
    chatter: bool = True


def end_lines(
    ended: EndedIncarnation, report: StopReport, kept: bool, stopping: bool, second: str | None
) -> list[Line]:
    """What procrunner says when an incarnation has ended: what it destroyed (during the run
    only: at the end the summary says it for all), then anything that went wrong with its
    scratch or its stop."""
    problems = [Line(f"{ended.label} scratch: {p}", chatter=False) for p in ended.scratch.problems]
    told = [] if stopping else [Line(describe_end(ended, kept))]
    return [*told, *problems, *stop_trouble(ended.label, report, second)]


def describe_end(ended: EndedIncarnation, kept: bool) -> str:
    """``web.1#3 ended (exited 1 after 12.4 s): destroyed 7 files / 2.1 MB of scratch and
    48.0 MB of process memory``."""
    scratch = ended.scratch
    memory = (
        " (its memory was not sampled)"
        if ended.memory is None
        else f" and {format_bytes(ended.memory.best)} of process memory"
    )
    verb = "kept" if kept else "destroyed"
    return (
        f"{ended.label} ended ({ended.how} after {format_duration(ended.uptime)}): "
        f"{verb} {plural(scratch.files, 'file')} / {format_bytes(scratch.bytes)} of scratch"
        f"{memory}"
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


def stop_trouble(label: str, report: StopReport, second: str | None = None) -> list[Line]:
    """What went wrong in a stop sequence, loudly; a kill on a second stop signal is what
    was asked for, and is told as such."""
    lines = []
    if report.killed and report.signum != signal.SIGKILL:
        name = signal_name(report.signum)
        if report.escalated and second is not None:
            text = f"{label} killed with SIGKILL on the second {_as_typed(second)}"
            lines.append(Line(f"{text}: it had not stopped on {name} yet"))
        else:
            timeout = format_duration(report.timeout)
            text = f"{label} did not stop on {name} within {timeout}: SIGKILL sent"
            lines.append(Line(text, chatter=False))
    if report.survivors:
        pids = ", ".join(map(str, report.survivors))
        lines.append(Line(f"ERROR: {label}: processes survived SIGKILL: {pids}", chatter=False))
    return lines


def _as_typed(signal_name: str) -> str:
    return "Ctrl-C" if signal_name == "SIGINT" else signal_name


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def watch_line(event: f.Reloading) -> str:
    if event.failure is not None:
        why = f"the watcher failed ({event.failure}); changes may have been missed"
    else:
        more = len(event.files) - SHOWN_FILES
        shown = ", ".join(event.files[:SHOWN_FILES]) + (f" and {more} more" if more > 0 else "")
        why = f"{len(event.files)} changed: {shown}"
    return f"watch: {why}: restarting {', '.join(event.types)}"


class Narration:
    """What procrunner says about each fact, in order. It remembers the two facts that change
    later wording: once the formation stops, an ended incarnation gets a line only when
    something went wrong (the summary tells the rest at once), and a SIGKILL after a second
    stop signal is told as the kill that was asked for."""

    def __init__(self) -> None:
        self.stopping = False
        self._second: str | None = None  # the signal name of a second stop signal

    def lines(self, fact: f.Fact) -> list[Line]:
        match fact:
            case f.ShutdownBegan():
                self.stopping = True
            case f.KillingNow(name):
                self._second = name
        chaos = _chaos_line(fact)
        if chaos is not None:
            return [Line(chaos, CHAOS_NAME)]
        if isinstance(fact, f.Ended):
            return self._ended_lines(fact)
        return _system_lines(fact)

    def _ended_lines(self, fact: f.Ended) -> list[Line]:
        label = fact.ended.label
        behind = [Line(f"{label} left processes behind: stopped them", chatter=False)]
        return (behind if fact.left_behind else []) + end_lines(
            fact.ended, fact.report, fact.kept, self.stopping, self._second
        )


def print_fact(printer: Printer, narration: Narration, fact: f.Fact) -> None:
    """The printer's subscription to the facts."""
    if isinstance(fact, f.Added):
        printer.add_names([*(spec.name for spec in fact.specs), CHAOS_NAME])
    for line in narration.lines(fact):
        printer.system(line.text, line.name, chatter=line.chatter)


def _system_lines(fact: f.Fact) -> list[Line]:
    match fact:
        case f.NothingToRun():
            return [Line("the formation has no instances: nothing to run", chatter=False)]
        case f.Spawned(replacing=previous):
            after = f", replacing {previous.label} ({previous.cause.value})" if previous else ""
            return [Line(f"{fact.label} started with pid {fact.pid} (port {fact.port}){after}")]
        case f.FailedToStart(error=error):
            return [Line(f"failed to start {fact.label}: {error}", chatter=False)]
        case f.HeldBack(name, reason):
            return [Line(f"{name} {reason} (depends_on)")]
        case f.DependencyFailed(name, reason):
            return [Line(f"{name} stays held: it {reason} (depends_on)", chatter=False)]
        case f.WentUnhealthy(label, problem, failures):
            text = f"{label} is unhealthy: {failures} checks failed in a row (last: {problem})"
            return [Line(text, chatter=False)]
        case f.Completed(name, release):
            if release:
                return [Line(f"{name} completed: the release phase is over, starting the "
                             "formation")]
            return [Line(f"{name} completed (once): it stays down, the rest keeps running")]
        case f.ExitedOnItsOwn(label, how, cause, policy):
            return [Line(f"{label} {how} ({cause.value}, {policy})", chatter=cause is Cause.EXITED)]
        case f.RestartPlanned(name, cause, delay):
            return [Line(restarting(name, cause.value, delay))]
        case f.GaveUp(name, fatal):
            return [Line(gave_up(name, fatal), chatter=False)]
        case f.StaysDown(name):
            return [Line(f"{name} stays down (exited); the rest keeps running")]
        case f.BecameReady():
            return [Line(text) for text in _ready_lines(fact)]
        case f.ScaledType(type_name, before, after):
            return [Line(f"scaled {type_name} from {before} to {after} (requested)")]
        case f.Reloading(failure=failure):
            return [Line(watch_line(fact), chatter=failure is None)]
        case f.ShutdownBegan(reason, status, hint):
            again = " (press Ctrl-C again to kill them at once)" if hint else ""
            asked_or_clean = hint or status == 0  # a stop signal, --run-for, a clean exit
            return [Line(f"{reason}: stopping all processes{again}", chatter=asked_or_clean)]
        case f.KillingNow(name):
            return [Line(f"second {name}: killing all processes now (SIGKILL)")]
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
