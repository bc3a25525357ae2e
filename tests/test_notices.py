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
