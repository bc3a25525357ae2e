"""Subscriptions: bounded, a slow reader loses the oldest notices and is told how many."""

from __future__ import annotations

import asyncio

from procrunner.control.history import OutputHistory
from procrunner.control.notices import Notices


def test_a_slow_subscriber_loses_the_oldest_and_is_told() -> None:
    async def scenario() -> list[dict[str, object]]:
        notices = Notices()
        slow = notices.subscribe(limit=5)
        for number in range(12):
            notices.post("state", instance=f"web.{number}")
        return await slow.get()

    got = asyncio.run(scenario())
    assert got[0]["event"] == "dropped" and got[0]["count"] == 7
    assert [n["instance"] for n in got[1:]] == [f"web.{n}" for n in range(7, 12)]


def test_output_reaches_only_subscribers_that_asked_for_it() -> None:
    async def scenario() -> tuple[int, int, bool]:
        notices = Notices()
        plain = notices.subscribe()
        wants = notices.subscribe(output=True)
        assert notices.wants_output
        notices.post("output", instance="web.1", lines=["hi"])
        notices.post("ready", instance="web.1")
        plain_got, wants_got = await plain.get(), await wants.get()
        notices.unsubscribe(wants)
        return len(plain_got), len(wants_got), notices.wants_output

    assert asyncio.run(scenario()) == (1, 2, False)


def test_history_keeps_the_last_lines_within_its_budget() -> None:
    history = OutputHistory(budget=100)
    for number in range(50):
        history.add("web.1", f"line {number:04d}\n".encode(), stderr=False)
    history.add("worker.1", b"other\n", stderr=True)
    lines = history.last(history.names(["web"]), 3)
    assert [text for _, _, text, _ in lines] == ["line 0047", "line 0048", "line 0049"]
    assert len(history.last(history.names(["web.1"]), 100)) <= 100 // 10
    assert history.names([]) == ["web.1", "worker.1"]


def test_a_subscriber_is_bounded_in_bytes_and_told_how_many_it_lost() -> None:
    async def scenario() -> list[dict[str, object]]:
        notices = Notices()
        slow = notices.subscribe(output=True, budget=4 << 20)
        for number in range(20):  # 20 MiB of 1 MiB lines for a 4 MiB queue
            line = f"{number:02d}".ljust(1 << 20, "x")
            notices.post("output", instance="big.1", stderr=False, lines=[line])
        return await slow.get()

    got = asyncio.run(scenario())
    assert got[0]["event"] == "dropped" and got[0]["count"] == 17
    assert [n["lines"][0][:2] for n in got[1:]] == ["17", "18", "19"]  # type: ignore[index]


def test_one_notice_over_the_budget_is_still_delivered() -> None:
    async def scenario() -> list[dict[str, object]]:
        notices = Notices()
        subscription = notices.subscribe(output=True, budget=100)
        notices.post("output", instance="big.1", stderr=False, lines=["x" * 1000])
        return await subscription.get()

    assert [n["event"] for n in asyncio.run(scenario())] == ["output"]


def test_a_subscriber_full_for_its_whole_patience_is_given_up_on_once_reading_stops() -> None:
    async def scenario() -> tuple[list[str], float]:
        notices = Notices()
        reading = notices.subscribe(limit=2, patience=0.2)
        stopped = notices.subscribe(limit=2, patience=0.2)
        given_up: list[str] = []
        reading.on_stall = lambda: given_up.append("reading")
        stopped.on_stall = lambda: given_up.append("stopped")
        loop = asyncio.get_running_loop()
        started = loop.time()
        while not given_up and loop.time() - started < 10:
            for _ in range(3):  # over the limit: something is lost on every round
                notices.post("state", instance="web.1")
            await reading.get()
            await asyncio.sleep(0.02)
        return given_up, loop.time() - started

    given_up, waited = asyncio.run(scenario())
    assert given_up == ["stopped"] and waited >= 0.2


def test_history_is_bounded_over_all_instances_the_oldest_going_first() -> None:
    history = OutputHistory(budget=1000, total=3000)
    for number in range(10):
        history.add(f"web.{number}", f"line of web.{number}\n".ljust(1000, "x").encode(), False)
    assert history.names([]) == ["web.7", "web.8", "web.9"]
    history.add("big.1", b"y" * 5000 + b"\n", stderr=False)  # one long line is kept whole
    assert history.names([]) == ["big.1"]
    assert len(history.last(["big.1"], 10)[0][2]) == 5000
