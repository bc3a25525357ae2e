"""--watch: which types a change concerns, and the real watcher batching a burst into one."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from pathlib import Path

import pytest

from procrunner.scratch.ignore import app_filter
from procrunner.supervise.events import WatchTriggered
from procrunner.supervise.watch import WatchRule, triggered, watch, watch_rules

QUIET = 0.2
SILENCE = 1.0  # after the batch, how long no second batch must come
PROBE = WatchRule("probe", ("probe-*",))


def test_rules_watch_every_type_with_watch_and_only_globbed_types_without() -> None:
    globs = {"web": ("*.py",), "worker": ()}
    assert watch_rules(["web", "worker", "clock"], globs, everything=True) == [
        WatchRule("web", ("*.py",)), WatchRule("worker"), WatchRule("clock")
    ]
    assert watch_rules(["web", "worker", "clock"], globs, everything=False) == [
        WatchRule("web", ("*.py",))
    ]


def test_globs_match_paths_relative_to_the_root() -> None:
    rules = [WatchRule("web", ("*.py", "templates/*")), WatchRule("worker", ("jobs/*.py",))]
    both = WatchTriggered(("web", "worker"), ("jobs/mail.py",))
    assert triggered(rules, ["app/views.py"]) == WatchTriggered(("web",), ("app/views.py",))
    assert triggered(rules, ["jobs/mail.py"]) == both
    assert triggered(rules, ["templates/a.html"]) == WatchTriggered(("web",), ("templates/a.html",))
    assert triggered(rules, ["README.md"]) is None


async def _batches(
    root: Path, rules: list[WatchRule], write: Callable[[], None], ignored: list[Path]
) -> list[WatchTriggered]:
    """The batches that follow ``write``: the watcher is first proven live with probe files
    (it gives no other sign that its watches are in place)."""
    got: list[WatchTriggered] = []
    arrived = asyncio.Event()

    def post(event: WatchTriggered) -> None:
        got.append(event)
        arrived.set()

    stop = asyncio.Event()
    task = asyncio.create_task(watch(root, [PROBE, *rules], app_filter(ignored), post, stop, QUIET))
    for number in range(100):
        (root / f"probe-{number}").write_text("")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(arrived.wait(), 0.2)
            break
    while arrived.is_set():  # until the probes' batches have all come
        arrived.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(arrived.wait(), SILENCE)
    got.clear()
    write()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(arrived.wait(), 10)
    await asyncio.sleep(SILENCE)  # a second batch would come within this window
    stop.set()
    await task
    return got


def test_a_save_of_50_files_is_one_batch_for_the_matching_types(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    rules = [WatchRule("web", ("src/*.py",)), WatchRule("worker", ("jobs/*",))]

    def save() -> None:
        for number in range(50):
            (tmp_path / "src" / f"m{number}.py").write_text("x = 1\n")

    got = asyncio.run(_batches(tmp_path, rules, save, []))
    assert len(got) == 1, got
    assert got[0].types == ("web",) and len(got[0].files) == 50


@pytest.mark.slow
def test_procrunners_own_files_and_backing_data_never_trigger(tmp_path: Path) -> None:
    scratch, database = tmp_path / "scratch", tmp_path / "app.sqlite3"
    scratch.mkdir()

    def write_own_then_a_real_change() -> None:
        for number in range(20):
            (scratch / f"tmp{number}").write_text("scratch\n")
        database.write_text("data")
        (tmp_path / "app.sqlite3-journal").write_text("journal")
        (tmp_path / "app.py").write_text("changed\n")

    got = asyncio.run(
        _batches(tmp_path, [WatchRule("web")], write_own_then_a_real_change, [scratch, database])
    )
    assert [event.files for event in got] == [("app.py",)]
