"""G1 no orphans: every shape, in every instance state, under every way procrunner can be
stopped. The default run packs all 9 shapes x 3 states into one formation per way of stopping
(6 runs cover all 162 triples, so every pair); the ``slow`` mark runs each triple alone."""

from __future__ import annotations

import itertools
import signal
import time

import pytest
from harness import App, kid, wait_until
from matrix import STATES, STOPS, run_case
from shapes import SHAPES

EVERY_CASE = list(itertools.product(SHAPES, STATES))


# SIGINT and SIGKILL of both (the next start sweeps) in the default run; every way under -m slow
@pytest.mark.parametrize("how", [
    how if how in ("SIGINT", "SIGKILL-both") else pytest.param(how, marks=pytest.mark.slow)
    for how in STOPS
])
def test_no_shape_in_any_state_survives_a_stop(app: App, how: str) -> None:
    outcome = run_case(app, EVERY_CASE, how)
    print(f"{how}: 27 instances, {outcome}")
    assert outcome.survivors == 0


@pytest.mark.slow
@pytest.mark.parametrize("how", STOPS)
@pytest.mark.parametrize(("shape", "state"), EVERY_CASE)
def test_no_shape_survives_alone(app: App, shape: str, state: str, how: str) -> None:
    outcome = run_case(app, [(shape, state)], how)
    assert outcome.survivors == 0


def test_fifty_term_ignoring_instances_stop_within_the_timeout_plus_one_and_a_half(
    app: App,
) -> None:
    app.procfile(f"worker: {kid('ignore-term')}\n")
    app.write("procrunner.yml", "types:\n  worker: {ready: none}\n")
    run = app.start("-t", "1", "-m", "worker=50")
    run.wait_for(r"worker\.\d+ +\| ignoring TERM", count=50)
    began = time.monotonic()
    run.signal(signal.SIGTERM)
    assert run.finish() == 143
    took = time.monotonic() - began
    print(f"50 TERM-ignoring instances, -t 1: stopped in {took:.2f} s")
    assert took < 1.0 + 1.5 + 2.0  # G2 is 1 + 1.5 s; 2 s more for a loaded CI machine
    assert wait_until(lambda: app.census() == [], timeout=2.0)
