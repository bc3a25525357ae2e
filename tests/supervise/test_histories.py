"""Scripted histories through the real supervisor loop, with fake lives and a fake clock
(honcho's HISTORIES are the model): each script drives exits, stops, readiness, requests,
signals and time, and checks the states each life went through. No process, no sleep."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Awaitable, Callable, Mapping

import fakes
from fakes import World

from procrunner.config.restart_rules import GiveUp, Policy, RestartRules
from procrunner.config.settings import Dependencies, RunOptions, TypeSettings
from procrunner.control.asks import ChaosRequest, RestartRequest, ScaleRequest, StopRequest
from procrunner.errors import ProcrunnerError
from procrunner.supervise.events import ChaosTick

ALWAYS = RunOptions(restart=RestartRules(default=Policy.ALWAYS))
DEPENDS = RunOptions(types={"web": TypeSettings(depends_on=Dependencies((("db", "ready"),)))})


def play(
    script: Callable[[World], Awaitable[None]],
    counts: Mapping[str, int],
    options: RunOptions = ALWAYS,
) -> World:
    return fakes.play(script, counts, options)


def test_a_restart_during_stopping_merges_into_the_stop_under_way() -> None:
    async def script(w: World) -> None:
        await w.ready("web.1#1")
        assert await w.ask(RestartRequest(("web.1",))) == {"restarting": ["web.1"]}
        assert w.state("web.1") == "stopping"
        assert await w.ask(RestartRequest(("web.1",))) == {"restarting": ["web.1"]}
        await w.gone("web.1#1")
        await w.advance(0)
        assert w.states("web.1") == [
            "web.1#1 starting", "web.1#1 running", "web.1#1 stopping", "web.1#1 backoff",
            "web.1#2 starting",
        ]
        assert sorted(w.spawner.lives) == ["web.1#1", "web.1#2"]  # one new life, not two
        await w.signal(signal.SIGTERM)
        assert await w.finish() == 128 + signal.SIGTERM

    play(script, {"web": 1})


def test_a_stop_then_a_restart_while_stopping_starts_it_again() -> None:
    async def script(w: World) -> None:
        await w.ready("web.1#1")
        await w.ask(StopRequest(("web.1",)))
        await w.ask(RestartRequest(("web.1",)))
        await w.gone("web.1#1")
        await w.advance(0)
        assert w.states("web.1")[-2:] == ["web.1#1 backoff", "web.1#2 starting"]
        await w.signal(signal.SIGINT)
        await w.finish()

    play(script, {"web": 1})


def test_scaling_down_then_up_before_the_stop_ends_keeps_the_slot() -> None:
    async def script(w: World) -> None:
        await w.ready("worker.1#1")
        await w.ready("worker.2#1")
        assert await w.ask(ScaleRequest((("worker", 1),))) == {
            "started": [], "stopping": ["worker.2"]
        }
        assert await w.ask(ScaleRequest((("worker", 2),))) == {
            "started": ["worker.2"], "stopping": []
        }
        await w.gone("worker.2#1")
        await w.advance(0)
        assert w.states("worker.2")[-3:] == [
            "worker.2#1 stopping", "worker.2#1 backoff", "worker.2#2 starting"
        ]
        assert list(w.supervisor.instances) == ["worker.1", "worker.2"]
        await w.signal(signal.SIGINT)
        await w.finish()

    play(script, {"worker": 2})


def test_a_stop_during_backoff_cancels_the_respawn() -> None:
    async def script(w: World) -> None:
        await w.exit("worker.1#1", 1)  # first crash: back at once
        await w.advance(0)
        await w.exit("worker.1#2", 1)  # second crash in a row: 0.5 s of backoff
        assert w.state("worker.1") == "backoff"
        assert await w.ask(StopRequest(("worker.1",))) == {"stopping": ["worker.1"]}
        assert w.state("worker.1") == "stopped"
        await w.advance(60)
        assert sorted(w.spawner.lives) == ["worker.1#1", "worker.1#2"]
        assert w.state("worker.1") == "stopped"
        await w.signal(signal.SIGINT)
        await w.finish()

    play(script, {"worker": 1})


def test_chaos_during_a_crash_backoff_finds_no_victim_and_the_backoff_runs_on() -> None:
    async def script(w: World) -> None:
        assert await w.ask(ChaosRequest("on", "every=1h,seed=1")) == {"on": True}
        await w.exit("worker.1#1", 1)
        await w.advance(0)
        await w.exit("worker.1#2", 1)
        assert w.state("worker.1") == "backoff"
        w.queue.put_nowait(ChaosTick())
        await w.settle()
        assert "chaos: no running instance to kill this time" in w.lines
        refused = await w.ask(ChaosRequest("now", target="worker.1"))
        assert isinstance(refused, ProcrunnerError)
        assert "not a running instance" in str(refused)
        await w.advance(0.5)
        assert w.states("worker.1")[-2:] == ["worker.1#2 backoff", "worker.1#3 starting"]
        await w.signal(signal.SIGINT)
        await w.finish()

    play(script, {"worker": 1})


def test_a_second_sigint_kills_at_once() -> None:
    async def script(w: World) -> None:
        await w.ready("web.1#1")
        await w.signal(signal.SIGINT)
        assert w.state("web.1") == "stopping" and w.state("worker.1") == "stopping"
        assert w.life("web.1#1").stop_signal == signal.SIGTERM
        await w.signal(signal.SIGINT)
        assert "second SIGINT: killing all processes now (SIGKILL)" in w.lines
        assert w.running is not None and w.running.done()
        assert w.running.result() == 128 + signal.SIGINT
        assert w.life("web.1#1").status is not None
        assert w.life("web.1#1").status.signal == signal.SIGKILL

    play(script, {"web": 1, "worker": 1})


def test_depends_on_holds_a_type_until_its_dependency_runs() -> None:
    async def script(w: World) -> None:
        assert sorted(w.spawner.lives) == ["db.1#1"]
        assert "web.1 waits for db to be running (depends_on)" in w.lines
        assert w.state("web.1") == "stopped"
        await w.ready("db.1#1")
        assert sorted(w.spawner.lives) == ["db.1#1", "web.1#1"]
        assert w.states("web.1") == ["web.1#1 starting"]
        await w.signal(signal.SIGINT)
        await w.finish()

    play(script, {"db": 1, "web": 1}, DEPENDS)


def test_a_failed_start_while_the_formation_starts_ends_the_run() -> None:
    async def main() -> None:
        world = World({"web": 1, "worker": 1}, ALWAYS)
        world.spawner.failing.add("worker.1")
        await world.begin()
        assert world.states("web.1") == ["web.1#1 starting", "web.1#1 stopping"]
        assert "worker.1#1 failed to start: stopping all processes" in world.lines
        await world.gone("web.1#1")
        assert await world.finish() == 1
        assert "worker.1#1" not in world.spawner.lives

    asyncio.run(asyncio.wait_for(main(), 10))


def test_a_failed_start_after_the_formation_is_up_leaves_the_rest_running() -> None:
    async def script(w: World) -> None:
        await w.ready("worker.1#1")
        w.spawner.failing.add("worker.2")
        reply = await w.ask(ScaleRequest((("worker", 2),)))
        assert reply == {"started": [], "stopping": [], "failed": ["worker.2"]}  # issue 17
        assert w.state("worker.2") == "stopped" and w.state("worker.1") == "running"
        assert "failed to start worker.2#1" in " ".join(w.lines)
        w.spawner.failing.add("worker.1")
        await w.exit("worker.1#1", 1)
        await w.advance(0)  # the respawn fails: it waits its backoff again
        assert w.state("worker.1") == "backoff"
        assert w.lines[-1] == "worker.1 restarting after crash in 500 ms (backoff)"
        w.spawner.failing.clear()
        await w.advance(0.5)
        assert w.state("worker.1") == "starting"
        await w.signal(signal.SIGINT)
        assert await w.finish() == 128 + signal.SIGINT

    play(script, {"worker": 1})


def test_give_up_after_n_crashes_in_the_window_goes_fatal() -> None:
    options = RunOptions(restart=RestartRules(default=Policy.ALWAYS, give_up=GiveUp(3, 60.0)))

    async def script(w: World) -> None:
        await w.ready("web.1#1")
        for number in (1, 2):
            await w.exit(f"worker.1#{number}", 1)
            await w.advance(1)
        await w.exit("worker.1#3", 1)
        assert w.state("worker.1") == "fatal"
        assert w.states("worker.1")[-2:] == ["worker.1#3 stopping", "worker.1#3 fatal"]
        assert any(line.startswith("worker.1 gave up: 3 deaths") for line in w.lines)
        await w.advance(600)
        assert len([label for label in w.spawner.lives if label.startswith("worker")]) == 3
        assert w.state("web.1") == "running"
        await w.signal(signal.SIGINT)
        await w.finish()

    play(script, {"web": 1, "worker": 1}, options)


def test_a_slot_scaled_away_and_added_again_goes_on_counting_its_lives() -> None:
    async def script(w: World) -> None:
        await w.ready("worker.2#1")
        await w.ask(ScaleRequest((("worker", 1),)))
        await w.gone("worker.2#1")
        assert list(w.supervisor.instances) == ["worker.1"]
        await w.ask(ScaleRequest((("worker", 2),)))
        assert "worker.2#2" in w.spawner.lives and "worker.2#1" in w.spawner.lives
        worker = w.supervisor.instances["worker.2"]
        assert [e.label for e in worker.history] == ["worker.2#1"]
        assert worker.history[0].cause.value == "scaled"
        await w.signal(signal.SIGINT)
        await w.finish()
        record = w.ledger.records["worker.2"]
        assert [e.label for e in record.history] == ["worker.2#1", "worker.2#2"]
        assert record.lives == 2 and record.state.value == "stopped"

    play(script, {"worker": 2})


def test_restarting_a_held_instance_does_not_start_it_twice() -> None:
    """Regression: a held instance started on request stayed held, and its dependency
    becoming ready started it again (an illegal starting -> starting)."""

    async def script(w: World) -> None:
        await w.ask(RestartRequest(("web.1",)))
        assert w.states("web.1") == ["web.1#1 starting"]
        await w.ready("db.1#1")
        assert w.states("web.1") == ["web.1#1 starting"]
        await w.signal(signal.SIGINT)
        await w.finish()

    play(script, {"db": 1, "web": 1}, DEPENDS)


def test_stopping_a_held_instance_keeps_it_down_when_its_dependency_runs() -> None:
    async def script(w: World) -> None:
        await w.ask(StopRequest(("web.1",)))
        await w.ready("db.1#1")
        assert w.state("web.1") == "stopped" and "web.1#1" not in w.spawner.lives
        await w.signal(signal.SIGINT)
        await w.finish()

    play(script, {"db": 1, "web": 1}, DEPENDS)


def test_a_stop_while_being_scaled_away_still_removes_the_slot() -> None:
    async def script(w: World) -> None:
        await w.ask(ScaleRequest((("worker", 1),)))
        await w.ask(StopRequest(("worker.2",)))
        await w.gone("worker.2#1")
        assert list(w.supervisor.instances) == ["worker.1"]
        await w.signal(signal.SIGINT)
        await w.finish()

    play(script, {"worker": 2})
