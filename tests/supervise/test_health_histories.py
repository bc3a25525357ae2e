"""Scripted histories for liveness restarts, one-shot steps, dependency conditions, the
release phase and stop commands: the real supervisor loop among fakes, in virtual time."""

from __future__ import annotations

import signal
import time

from fakes import World, play

from procrunner.config.restart_rules import GiveUp, Policy, RestartRules
from procrunner.config.settings import Dependencies, Health, RunOptions, TypeSettings
from procrunner.control.asks import ChaosRequest, PsRequest, RestartRequest, ScaleRequest
from procrunner.errors import ProcrunnerError
from procrunner.supervise.facts import Completed, DependencyFailed, ReleaseFailed

LIVENESS = Health("http", "/live")
MIGRATE_FIRST = {"web": TypeSettings(depends_on=Dependencies((("migrate", "completed"),))),
                 "migrate": TypeSettings(once=True)}


def test_an_unhealthy_instance_restarts_whatever_its_policy_and_counts_toward_give_up() -> None:
    options = RunOptions(restart=RestartRules(default=Policy.STOP_ALL, give_up=GiveUp(2, 60.0)),
                         types={"web": TypeSettings(health=LIVENESS)})

    async def script(w: World) -> None:
        assert w.readiness.health == []  # liveness starts only once it is ready
        await w.ready("web.1#1")
        assert [(name, number) for name, number, _ in w.readiness.health] == [("web.1", 1)]
        await w.unhealthy("web.1#1")
        assert "web.1#1 is unhealthy: 3 checks failed in a row (last: timed out after 2s)" \
            in w.lines
        assert w.readiness.health[0][2].cancelled  # its check stops with it
        await w.gone("web.1#1")
        assert w.lines[-1] == "web.1 restarting after unhealthy now"
        await w.advance(0)
        assert w.state("web.1") == "starting" and w.supervisor.status is None  # not stop-all
        rows = (await w.ask(PsRequest()))["instances"]
        assert rows[0]["restarts"] == {"unhealthy": 1}
        await w.ready("web.1#2")
        await w.unhealthy("web.1#2")  # the second death within the window: give up
        await w.gone("web.1#2")
        assert w.state("web.1") == "fatal"
        assert w.supervisor.crashed
        await w.signal(signal.SIGINT)
        await w.finish()

    play(script, {"web": 1}, options)


def test_a_stale_unhealthy_report_is_dropped() -> None:
    options = RunOptions(types={"web": TypeSettings(health=LIVENESS)})

    async def script(w: World) -> None:
        await w.unhealthy("web.1#1")  # still starting: no liveness check runs yet
        assert w.state("web.1") == "starting"
        await w.signal(signal.SIGINT)
        await w.finish()

    play(script, {"web": 1}, options)


def test_a_one_shot_clean_exit_does_not_stop_the_formation_and_is_never_restarted() -> None:
    options = RunOptions(restart=RestartRules(default=Policy.ALWAYS),
                         types={"migrate": TypeSettings(once=True)})

    async def script(w: World) -> None:
        await w.exit("migrate.1#1", 0)
        assert w.state("migrate.1") == "exited" and w.supervisor.status is None
        assert "migrate.1 completed (once): it stays down, the rest keeps running" in w.lines
        await w.advance(60)
        assert "migrate.1#2" not in w.spawner.lives
        await w.signal(signal.SIGINT)
        assert await w.finish() == 128 + signal.SIGINT

    play(script, {"migrate": 1, "web": 1}, options)


def test_a_one_shot_failure_follows_its_policy_stop_all_by_default() -> None:
    options = RunOptions(types={"migrate": TypeSettings(once=True)})

    async def script(w: World) -> None:
        await w.exit("migrate.1#1", 3)
        assert "migrate.1#1 exited 3: stopping all processes" in w.lines
        assert await w.finish() == 3

    play(script, {"migrate": 1, "web": 1}, options)


def test_depends_on_completed_starts_web_after_migrate_exits_0() -> None:
    async def script(w: World) -> None:
        await w.ready("migrate.1#1")  # running is not completed
        assert "web.1#1" not in w.spawner.lives
        rows = {row["name"]: row for row in (await w.ask(PsRequest()))["instances"]}
        assert rows["web.1"]["held"] == "waits for migrate to complete"
        assert "web.1 waits for migrate to complete (depends_on)" in w.lines
        await w.exit("migrate.1#1", 0)
        assert w.states("web.1") == ["web.1#1 starting"]
        await w.signal(signal.SIGINT)
        await w.finish()

    play(script, {"migrate": 1, "web": 1}, RunOptions(types=MIGRATE_FIRST))


def test_a_failed_migrate_leaves_web_held_and_says_why() -> None:
    never = RestartRules(default=Policy.NEVER)

    async def script(w: World) -> None:
        await w.exit("migrate.1#1", 1)
        assert w.state("migrate.1") == "exited" and w.state("web.1") == "stopped"
        assert "web.1#1" not in w.spawner.lives
        reason = "waits for migrate to complete, but migrate.1#1 exited 1"
        assert [f for f in w.facts if isinstance(f, DependencyFailed)] == [
            DependencyFailed("web.1", reason)]
        assert f"web.1 stays held: it {reason} (depends_on)" in w.lines
        rows = {row["name"]: row for row in (await w.ask(PsRequest()))["instances"]}
        assert rows["web.1"]["held"] == reason
        await w.signal(signal.SIGINT)
        await w.finish()

    # redis keeps the run going: with nothing left running, the run would end
    play(script, {"migrate": 1, "web": 1, "redis": 1},
         RunOptions(restart=never, types=MIGRATE_FIRST))


def test_a_ready_dependency_is_met_by_a_completed_one_shot() -> None:
    types = {"web": TypeSettings(depends_on=Dependencies((("migrate", "ready"),))),
             "migrate": TypeSettings(once=True)}

    async def script(w: World) -> None:
        await w.exit("migrate.1#1", 0)
        assert w.states("web.1") == ["web.1#1 starting"]
        await w.signal(signal.SIGINT)
        await w.finish()

    play(script, {"migrate": 1, "web": 1}, RunOptions(types=types))


def test_the_release_runs_first_whatever_the_formation_says_then_the_formation_starts() -> None:
    async def script(w: World) -> None:
        assert sorted(w.spawner.lives) == ["release.1#1"]  # -m gave release 0
        rows = {row["name"]: row for row in (await w.ask(PsRequest()))["instances"]}
        assert rows["release.1"]["port"] == 5000  # foreman's numbering: its position
        await w.exit("release.1#1", 0)
        assert sorted(w.spawner.lives) == ["release.1#1", "web.1#1"]
        assert w.state("release.1") == "exited"
        assert Completed("release.1", release=True) in w.facts
        reply = await w.ask(ScaleRequest((("release", 2),)))
        assert isinstance(reply, ProcrunnerError)
        reply = await w.ask(RestartRequest(("release.1",)))
        assert isinstance(reply, ProcrunnerError)
        await w.advance(60)
        assert "release.1#2" not in w.spawner.lives
        await w.signal(signal.SIGINT)
        await w.finish()

    play(script, {"release": 0, "web": 1}, RunOptions())


def test_a_failed_release_ends_the_run_with_its_status_and_never_starts_the_formation() -> None:
    async def script(w: World) -> None:
        await w.exit("release.1#1", 4)
        assert "the release phase failed (release.1#1 exited 4): stopping all processes" \
            in w.lines
        assert ReleaseFailed("release.1#1", "exited 4", 4) in w.facts
        assert await w.finish() == 4
        assert sorted(w.spawner.lives) == ["release.1#1"]

    play(script, {"release": 1, "web": 1}, RunOptions(restart=RestartRules(Policy.ALWAYS)))


def test_no_release_skips_it_and_it_is_not_part_of_the_formation() -> None:
    async def script(w: World) -> None:
        assert sorted(w.spawner.lives) == ["web.1#1"]
        await w.signal(signal.SIGINT)
        await w.finish()

    play(script, {"release": 1, "web": 1}, RunOptions(release=False))


def test_a_stop_command_is_used_for_graceful_stops_but_not_for_chaos_kills() -> None:
    options = RunOptions(restart=RestartRules(default=Policy.ALWAYS),
                         types={"redis": TypeSettings(stop_command="redis-cli shutdown")})

    async def script(w: World) -> None:
        await w.ready("redis.1#1")
        await w.ask(ChaosRequest("now", None, "redis.1"))
        assert w.life("redis.1#1").stop_command is None
        await w.gone("redis.1#1")
        await w.advance(0)
        await w.ready("redis.1#2")
        await w.signal(signal.SIGTERM)
        assert w.life("redis.1#2").stop_command == "redis-cli shutdown"
        await w.finish()

    play(script, {"redis": 1}, options)


def test_ps_says_what_a_starting_instance_waits_for_and_when_a_backoff_ends() -> None:
    async def script(w: World) -> None:
        rows = {row["name"]: row for row in (await w.ask(PsRequest()))["instances"]}
        assert rows["web.1"]["ready"] == {"kind": "port", "port": 5000, "any": False}
        assert rows["worker.1"]["ready"] == {"kind": "uptime", "seconds": 1.0}
        assert rows["web.1"]["retry_at"] is None and rows["web.1"]["held"] is None
        await w.exit("worker.1#1", 1)
        await w.advance(0)  # the first crash restarts at once, the second backs off
        await w.exit("worker.1#2", 1)
        before = time.time()
        rows = {row["name"]: row for row in (await w.ask(PsRequest()))["instances"]}
        assert rows["worker.1"]["state"] == "backoff" and rows["worker.1"]["ready"] is None
        assert before - 1 < rows["worker.1"]["retry_at"] <= before + 0.5 + 1
        await w.signal(signal.SIGINT)
        await w.finish()

    play(script, {"web": 1, "worker": 1}, RunOptions(restart=RestartRules(Policy.ALWAYS)))
