"""Stopping: every wait bounded, no orphans whatever the children do, even if procrunner is
SIGKILLed. The ``app`` fixture fails any test that leaves a marked process behind."""

from __future__ import annotations

import signal
import time

import pytest
from harness import App, kid, wait_until

SHAPES = ("group", "setsid", "double-fork", "ignore-term-setsid")


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_no_descendant_survives_a_stop(app: App, shape: str, sig: int) -> None:
    app.procfile(f"web: {kid('escape', shape)}\n")
    run = app.start("-t", "1")
    run.wait_for(rf"escaped {shape}")
    assert len(app.census()) >= 3  # procrunner, the leader, the escaped descendant
    run.signal(sig)
    assert run.finish() == 128 + sig
    assert app.census() == []


@pytest.mark.parametrize("shape", SHAPES)
def test_a_sigkilled_procrunner_leaves_no_orphans(app: App, shape: str) -> None:
    app.procfile(f"web: {kid('escape', shape)}\nworker: {kid('ignore-term')}\n")
    run = app.start("-t", "1")
    run.wait_for(rf"escaped {shape}")
    run.wait_for(r"ignoring TERM")
    run.signal(signal.SIGKILL)
    run.finish()
    assert wait_until(lambda: app.census() == [], timeout=10)
    assert "procrunner died; stopped its" in run.stderr


def test_a_child_ignoring_sigterm_is_killed_after_the_timeout(app: App) -> None:
    app.procfile(f"web: {kid('ignore-term')}\n")
    run = app.start("-t", "1")
    run.wait_for("ignoring TERM")
    began = time.monotonic()
    run.signal(signal.SIGINT)
    assert run.finish() == 130
    assert time.monotonic() - began < 1 + 3  # generous: the timeout plus a bounded kill
    assert "web.1#1 did not stop on SIGTERM within 1.0 s: SIGKILL sent" in run.text()


def test_a_second_ctrl_c_kills_at_once(app: App) -> None:
    app.procfile(f"web: {kid('ignore-term')}\n")
    run = app.start("-t", "60")
    run.wait_for("ignoring TERM")
    run.signal(signal.SIGINT)
    run.wait_for("SIGINT received")
    began = time.monotonic()
    run.signal(signal.SIGINT)
    assert run.finish() == 130
    assert time.monotonic() - began < 10
    assert "second SIGINT: killing all processes now (SIGKILL)" in run.text()


def test_a_grandchild_holding_the_pipes_cannot_hang_the_stop(app: App) -> None:
    app.procfile(f"web: (trap '' TERM; exec sleep 300) & {kid('sleep')}\n")
    run = app.start("-t", "1")
    run.wait_for(r"web\.1 +\| ready")
    run.signal(signal.SIGTERM)
    assert run.finish(timeout=10) == 143


def test_leftovers_of_an_exited_leader_are_stopped_before_anything_else(app: App) -> None:
    app.procfile(f"web: {kid('sleep')}\nonce: {kid('leave', 'setsid')}\n")
    run = app.start()
    assert run.finish() == 0
    text = run.text()
    assert "once.1#1 exited 0: stopping all processes" in text
    assert "once.1#1 left processes behind: stopped them" in text


def test_closed_stdout_stops_the_formation_in_order(app: App) -> None:
    app.procfile(f"web: {kid('lines', '100000', '80')}\n")
    run = app.start(read=False)
    assert run.proc.stdout is not None
    run.proc.stdout.readline()
    run.proc.stdout.close()
    assert run.finish() == 128 + signal.SIGPIPE
    assert "Traceback" not in run.stderr


def test_stop_sends_sigterm_to_the_whole_group(app: App) -> None:
    script = (
        "trap 'echo child got TERM; exit 0' TERM; echo up; while :; do sleep 0.05; done"
    )
    app.write("child.sh", script)
    app.procfile("web: sh child.sh & wait\n")
    run = app.start()
    run.wait_for(r"web\.1 +\| up")
    run.signal(signal.SIGINT)
    run.finish()
    assert "child got TERM" in run.text()
