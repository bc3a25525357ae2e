"""The no-orphans matrix: hostile shapes (``shapes.py``) in a given instance state, procrunner
stopped by a given signal, then a census of every process the run started.

A case is a set of (shape, state) instances run together under one procrunner and one way of
stopping it. ``STOPS`` are the ways: SIGINT, SIGTERM, SIGHUP, two quick SIGINTs, SIGKILL (the
watchdog cleans up), and SIGKILL of procrunner and its watchdog together (the next start
cleans up).
"""

from __future__ import annotations

import contextlib
import signal
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import psutil
from harness import App, Run, kid, wait_until
from shapes import FORK_MANY

SHAPES_PY = Path(__file__).with_name("shapes.py")
# Descendants each shape leaves alive beside its leader.
DESCENDANTS = {"ignore-term": 2, "stop-self": 2, "fork-many": FORK_MANY}
STATES = ("running", "starting", "backoff")
STOPS = ("SIGINT", "SIGTERM", "SIGHUP", "two-SIGINTs", "SIGKILL", "SIGKILL-both")
TIMEOUT = 1.0  # procrunner's -t: the ignore-term shapes need it
AFTER_EXIT = 2.0  # G1: the census must be empty this long after procrunner exits
RUN_MARKER = "PROCRUNNER_RUN"


@dataclass(frozen=True)
class Outcome:
    stop_seconds: float  # signal until procrunner exited
    clean_seconds: float  # procrunner's exit until the census was empty
    survivors: int  # marked processes alive once the bound had passed


def type_name(shape: str, state: str) -> str:
    return f"{state[:4]}-{shape}"


def build(app: App, cases: Sequence[tuple[str, str]]) -> None:
    """A Procfile with one type per (shape, state) and a procrunner.yml that puts each in its
    state: ``running`` is ready once built, ``starting`` never gets ready, ``backoff`` crashes
    after building (restart always; the second crash waits a long backoff)."""
    procfile, settings = [], ["backoff: first=60s", "types:"]
    for shape, state in cases:
        name = type_name(shape, state)
        crash = " crash" if state == "backoff" else ""
        procfile.append(f"{name}: {sys.executable} {SHAPES_PY} {shape}{crash}")
        if state == "running":
            settings.append(f"  {name}: {{ready: {{log: '^built'}}}}")
        elif state == "starting":
            settings.append(f"  {name}: {{ready: {{log: 'never printed'}}}}")
        else:
            settings.append(f"  {name}: {{restart: always}}")
    app.procfile("\n".join(procfile) + "\n")
    app.write("procrunner.yml", "\n".join(settings) + "\n")


def wait_in_state(app: App, run: Run, cases: Sequence[tuple[str, str]]) -> None:
    """Block until every case is in its state with its shape built."""
    for shape, state in cases:
        name = type_name(shape, state)
        if state == "running":
            run.wait_for(rf"{name}\.1#1 ready: its output matched")
        elif state == "starting":
            run.wait_for(rf"{name}\.1 +\| built {shape}")
        else:
            run.wait_for(rf"{name}\.1 restarting after crash in .*backoff")
    alive = sum(1 + DESCENDANTS.get(s, 1) for s, state in cases if state != "backoff")
    # Polled, not read once: on a loaded machine one census has missed a live process
    # (procrunner itself, seen once in 162 cases in CI) while reading /proc.
    built = wait_until(lambda: len(app.census()) >= 2 + alive, timeout=5.0)
    assert built, f"shapes not all built: {len(app.census())} < 2 + {alive}"


def stop(app: App, run: Run, how: str) -> Outcome:
    """Stop procrunner ``how``; measure until its exit, then until the census is empty."""
    watchdog = _watchdog(app) if how == "SIGKILL-both" else None
    began = time.monotonic()
    if how == "two-SIGINTs":
        run.signal(signal.SIGINT)
        time.sleep(0.05)  # "two quick Ctrl-Cs": the gap is the fault itself, not a wait
        run.signal(signal.SIGINT)
    elif how == "SIGKILL-both":
        assert watchdog is not None
        watchdog.kill()  # first, so it cannot notice procrunner's death
        run.signal(signal.SIGKILL)
    else:
        run.signal(getattr(signal, how.partition("-")[0]))
    code = run.finish()
    exited = time.monotonic()
    # A second SIGINT after the loop closed meets Python's own handler as it exits: killed
    # by SIGINT, which a shell reports as 130 too; everything was done by then.
    expected = {"two-SIGINTs": (130, -signal.SIGINT), "SIGKILL": (-9,), "SIGKILL-both": (-9,)}
    assert code in expected.get(how, (128 + getattr(signal, how, 0),)), run.text()
    if how == "SIGKILL-both":
        return _next_start_sweeps(app, began, exited)
    bound = AFTER_EXIT + (TIMEOUT + 1.0 if how == "SIGKILL" else 0.0)  # the watchdog's stop
    clean = wait_until(lambda: app.census() == [], timeout=bound)
    cleaned = time.monotonic()
    survivors = len(app.census())
    assert clean, f"survivors {bound} s after procrunner's exit: {_describe(app.census())}"
    return Outcome(exited - began, cleaned - exited, survivors)


def _watchdog(app: App) -> psutil.Process:
    for proc in app.census():
        with contextlib.suppress(psutil.Error):
            if "procrunner.supervise.watchdog" in proc.cmdline():
                return proc
    raise AssertionError("no watchdog found")


def _next_start_sweeps(app: App, began: float, exited: float) -> Outcome:
    """procrunner and its watchdog are dead: the shapes live on until the next start."""
    runs = {_run_of(p) for p in app.census()} - {None}
    app.procfile(f"web: {kid('sleep')}\n")
    app.write("procrunner.yml", "")
    started = time.monotonic()
    run = app.start("-t", str(TIMEOUT))
    if runs:  # in backoff alone, nothing of the shape was alive to leave behind
        run.wait_for(r"stopped \d+ processes of run .* left by a procrunner that died")
    run.wait_for(r"web\.1 +\| ready")
    swept = time.monotonic()
    leftovers = [p for p in app.census() if _run_of(p) in runs]
    run.signal(signal.SIGINT)
    assert run.finish() == 130
    assert wait_until(lambda: app.census() == [], timeout=AFTER_EXIT)
    assert leftovers == [], f"the next start left the dead run's {_describe(leftovers)}"
    return Outcome(exited - began, swept - started, len(leftovers))


def _run_of(proc: psutil.Process) -> str | None:
    try:
        return proc.environ().get(RUN_MARKER)
    except psutil.Error:
        return None


def _describe(procs: list[psutil.Process]) -> list[str]:
    described = []
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            described.append(f"{proc.pid} {' '.join(proc.cmdline())}")
    return described


def run_case(app: App, cases: Sequence[tuple[str, str]], how: str) -> Outcome:
    build(app, cases)
    run = app.start("-t", str(TIMEOUT))
    wait_in_state(app, run, cases)
    return stop(app, run, how)
