"""Hypothesis budgets for the bad-input properties: a small count in the default run, 10,000
examples per parser under the ``slow`` mark (CI), as two registered profiles."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

settings.register_profile(
    "default-budget", max_examples=100, deadline=None, suppress_health_check=list(HealthCheck)
)
settings.register_profile(
    "slow-budget", max_examples=10_000, deadline=None, suppress_health_check=list(HealthCheck)
)
BUDGETS = [
    pytest.param("default-budget", id="default"),
    # 10,000 examples of a loader that reads files take minutes on a busy 2-core machine: past
    # the suite's 120 s per test, which is meant for hung processes, not for a budget.
    pytest.param("slow-budget", id="slow", marks=[pytest.mark.slow, pytest.mark.timeout(900)]),
]


def explore(profile: str, strategy: st.SearchStrategy[Any], check: Callable[[Any], None]) -> None:
    """Run ``check`` on as many examples of ``strategy`` as the profile allows."""

    @settings(settings.get_profile(profile))
    @given(strategy)
    def run(value: Any) -> None:
        check(value)

    run()
