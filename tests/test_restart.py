"""The restart decision and the chaos planner: pure functions, table-tested on a fake clock."""

from __future__ import annotations

import signal

import pytest

from procrunner.config.chaos_spec import ChaosSpec, parse_chaos
from procrunner.config.restart_rules import (
    Backoff,
    GiveUp,
    Policy,
    RestartRules,
    parse_backoff,
    parse_give_up,
    parse_policies,
)
from procrunner.errors import ProcrunnerError
from procrunner.supervise.chaos import ChaosPlanner
from procrunner.supervise.restart import Fatal, Restart, Stay, StopAll, backoff_delay, decide
from procrunner.supervise.states import Cause

RULES = RestartRules()


@pytest.mark.parametrize(
    ("policy", "cause", "expected"),
    [
        (Policy.STOP_ALL, Cause.CRASH, StopAll()),
        (Policy.STOP_ALL, Cause.EXITED, StopAll()),
        (Policy.NEVER, Cause.CRASH, Stay()),
        (Policy.NEVER, Cause.EXITED, Stay()),
        (Policy.ON_FAILURE, Cause.CRASH, Restart(0.0)),
        (Policy.ON_FAILURE, Cause.EXITED, Stay()),
        (Policy.ALWAYS, Cause.CRASH, Restart(0.0)),
        (Policy.ALWAYS, Cause.EXITED, Restart(0.0)),
        (Policy.NEVER, Cause.CHAOS, Restart(0.0)),
        (Policy.STOP_ALL, Cause.CHAOS, Restart(0.0)),
        (Policy.ALWAYS, Cause.REQUESTED, Stay()),
        (Policy.ALWAYS, Cause.SHUTDOWN, Stay()),
    ],
)
def test_policy_by_cause(policy: Policy, cause: Cause, expected: object) -> None:
    assert decide(policy, cause, 1, [0.0], 0.0, RULES) == expected


def test_backoff_schedule_doubles_up_to_the_cap() -> None:
    delays = [backoff_delay(streak, Backoff()) for streak in range(1, 10)]
    assert delays == [0.0, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]
    custom = Backoff(first=0.1, factor=2.0, cap=0.3)
    assert [backoff_delay(s, custom) for s in range(1, 5)] == [0.0, 0.1, 0.2, 0.3]


def test_a_crash_loop_on_a_fake_clock_backs_off_and_resets_after_a_long_run() -> None:
    """Replays what the supervisor does: streak grows with quick deaths, resets after 10 s up."""
    rules = RestartRules(default=Policy.ALWAYS)
    clock, streak, deaths, delays = 0.0, 0, [], []
    for uptime in [0.2, 0.2, 0.2, 0.2, 12.0, 0.2]:
        clock += uptime
        streak = 1 if uptime >= rules.backoff.reset_after else streak + 1
        deaths.append(clock)
        decision = decide(Policy.ALWAYS, Cause.CRASH, streak, deaths, clock, rules)
        assert isinstance(decision, Restart)
        delays.append(decision.delay)
        clock += decision.delay
    assert delays == [0.0, 0.5, 1.0, 2.0, 0.0, 0.5]


def test_give_up_counts_deaths_in_a_sliding_window() -> None:
    rules = RestartRules(default=Policy.ON_FAILURE, give_up=GiveUp(3, 10.0))
    assert decide(Policy.ON_FAILURE, Cause.CRASH, 2, [0.0, 5.0], 5.0, rules) == Restart(0.5)
    assert decide(Policy.ON_FAILURE, Cause.CRASH, 3, [0.0, 5.0, 9.0], 9.0, rules) == Fatal(3, 10.0)
    # the first death has slid out of the window: not fatal
    assert isinstance(decide(Policy.ON_FAILURE, Cause.CRASH, 3, [0.0, 5.0, 11.0], 11.0, rules),
                      Restart)
    # chaos kills never count
    assert decide(Policy.ON_FAILURE, Cause.CHAOS, 9, [0.0, 1.0, 2.0], 2.0, rules) == Restart(0.0)


def test_parsing_policies_backoff_and_give_up() -> None:
    assert parse_policies("always", ["web"]).policy("web") is Policy.ALWAYS
    rules = parse_policies("web=always, worker=on-failure", ["web", "worker", "clock"])
    assert rules.policy("worker") is Policy.ON_FAILURE
    assert rules.policy("clock") is Policy.STOP_ALL
    assert parse_backoff("first=1s,max=1m,reset=5s") == Backoff(1.0, 2.0, 60.0, 5.0)
    assert parse_give_up("5/60s") == GiveUp(5, 60.0)


@pytest.mark.parametrize(
    ("parse", "text"),
    [
        (lambda t: parse_policies(t, ["web"]), "sometimes"),
        (lambda t: parse_policies(t, ["web"]), "wbe=always"),
        (lambda t: parse_policies(t, ["web"]), "web=sometimes"),
        (parse_backoff, "first"),
        (parse_backoff, "slow=1s"),
        (parse_give_up, "5"),
        (parse_give_up, "0/10s"),
        (parse_give_up, "x/10s"),
        (lambda t: parse_chaos(t, ["web"]), "every=1s,rate=6/min"),
        (lambda t: parse_chaos(t, ["web"]), "seed=1"),
        (lambda t: parse_chaos(t, ["web"]), "every=1s,types=wbe"),
        (lambda t: parse_chaos(t, ["web"]), "every=1s,signal=HUP"),
        (lambda t: parse_chaos(t, ["web"]), "rate=6/hour"),
        (lambda t: parse_chaos(t, ["web"]), "every=0s"),
        (lambda t: parse_chaos(t, ["web"]), "every=1s,every=2s"),
        (lambda t: parse_chaos(t, ["web"]), "every=1s,colour=red"),
    ],
)
def test_bad_specs_are_one_line_errors(parse: object, text: str) -> None:
    assert callable(parse)
    with pytest.raises(ProcrunnerError) as caught:
        parse(text)
    assert "\n" not in str(caught.value)


def run_planner(spec: ChaosSpec, seed: int, kills: int) -> list[tuple[float, str | None]]:
    """The chaos sequence on a fake clock, against a formation where all are running."""
    planner = ChaosPlanner(spec, seed)
    running = ["web.1", "web.2", "web.3", "worker.1"]
    types = {n: n.split(".")[0] for n in running}
    clock, sequence = 0.0, []
    for gap, _ in zip(planner.gaps(), range(kills), strict=False):
        clock += gap
        sequence.append((round(clock, 9), planner.choose(running, types)))
    return sequence


def test_chaos_is_reproducible_for_a_seed() -> None:
    spec = parse_chaos("rate=6/min,types=web,after=5s", ["web", "worker"])
    first = run_planner(spec, 42, 20)
    assert first == run_planner(spec, 42, 20)
    assert first != run_planner(spec, 43, 20)
    assert all(victim is not None and victim.startswith("web.") for _, victim in first)
    assert first[0][0] > 5.0
    assert {victim for _, victim in first} == {"web.1", "web.2", "web.3"}


def test_every_gives_a_fixed_schedule_after_the_grace() -> None:
    spec = parse_chaos("every=10s,after=3s,max=3,signal=TERM,seed=7", ["web"])
    assert spec.signal == signal.SIGTERM and spec.seed == 7
    assert spec.max_kills == 3
    assert [t for t, _ in run_planner(spec, 7, 4)] == [13.0, 23.0, 33.0, 43.0]


def test_victims_are_spread_uniformly() -> None:
    spec = parse_chaos("every=1s", ["web", "worker"])
    counts: dict[str | None, int] = {}
    for _, victim in run_planner(spec, 1, 4000):
        counts[victim] = counts.get(victim, 0) + 1
    expected = 1000
    chi_square = sum((n - expected) ** 2 / expected for n in counts.values())
    assert len(counts) == 4
    assert chi_square < 16.27  # p = 0.001 with 3 degrees of freedom: fixed seed, not flaky


def test_no_victim_when_nothing_of_the_types_runs() -> None:
    planner = ChaosPlanner(parse_chaos("every=1s,types=worker", ["web", "worker"]), 1)
    assert planner.choose(["web.1"], {"web.1": "web"}) is None
