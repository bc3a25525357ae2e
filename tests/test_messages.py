"""procrunner's own lines through the real command: true, in the order things happened,
padded like every other line, quiet when asked (issue 18)."""

from __future__ import annotations

import re
import signal
from collections.abc import Mapping
from dataclasses import dataclass

from harness import App, free_ports, kid

from procrunner.config.formation import InstanceSpec
from procrunner.scratch.wipe import Inventory
from procrunner.supervise.events import EndedIncarnation
from procrunner.supervise.ledger import Record
from procrunner.supervise.memory import Memory
from procrunner.supervise.states import Cause, State
from procrunner.supervise.summary import summary_lines

QUICK_EXITS = 8


def test_an_instance_that_ends_at_once_has_its_last_output_before_its_end_line(
    app: App,
) -> None:
    """Regression: the pidfd woke the loop before the pipes did (or before they were even
    connected), so "exited 3" often came before the shell's last line."""
    app.procfile(f"web: {kid('sleep')}\nquick: echo last words of $PS >&2; exit 3\n")
    run = app.start("-m", f"web=1,quick={QUICK_EXITS}", "--restart", "quick=never")
    run.wait_for(r"quick\.\d+#1 exited 3", count=QUICK_EXITS)
    run.signal(signal.SIGINT)
    assert run.finish() == 130
    lines = run.text().splitlines()
    for slot in range(1, QUICK_EXITS + 1):
        said = _index(lines, rf"quick\.{slot} +! last words of quick\.{slot}$")
        ended = _index(lines, rf"\| quick\.{slot}#1 exited 3 ")
        assert said < ended, "\n".join(lines)


def _index(lines: list[str], pattern: str) -> int:
    regex = re.compile(pattern)
    return next(i for i, line in enumerate(lines) if regex.search(line))


def test_the_first_line_is_padded_like_every_later_line(app: App) -> None:
    """Regression: ``system | router on ...`` came before the formation's names were known,
    so it was padded to ``system`` and every later line to the longest instance name."""
    port = free_ports(2)
    app.procfile(f"web: {kid('serve')}\nlongworker: {kid('sleep')}\n")
    run = app.start("--router", "-p", str(port))
    run.wait_for(r"web\.1 +\| serving")
    run.signal(signal.SIGINT)
    assert run.finish() == 130
    lines = run.text().splitlines()
    assert "router on" in lines[0]
    widths = {line.index("|") for line in lines if " system " in line}
    assert widths == {len("HH:MM:SS longworker.1 ")}, lines


def test_ctrl_c_on_two_instances_prints_one_compact_summary(app: App) -> None:
    app.procfile(f"web: {kid('sleep')}\nworker: {kid('sleep')}\n")
    run = app.start()
    run.wait_for(r"worker\.1 +\| ready")
    run.signal(signal.SIGINT)
    assert run.finish() == 130
    lines = run.text().splitlines()
    stopping = _index(lines, r"SIGINT received: stopping all processes")
    after = [line for line in lines[stopping + 1 :] if " system " in line]  # web's may be late
    assert len(after) == 1, lines
    assert re.search(
        r"system   \| summary: 2 instances, [\d.]+ m?s, no restarts; destroyed 0 files / 0 B "
        r"of scratch and [\d.]+ [kM]B of process memory$",
        after[0],
    ), after


def test_a_second_ctrl_c_is_told_as_the_kill_it_asked_for(app: App) -> None:
    """Regression: the kill on the second Ctrl-C was followed by "did not stop on SIGTERM
    within 60.0 s", a timeout that never ran out."""
    app.procfile(f"web: {kid('ignore-term')}\n")
    run = app.start("-t", "60")
    run.wait_for("ignoring TERM")
    run.signal(signal.SIGINT)
    run.wait_for("SIGINT received")
    run.signal(signal.SIGINT)
    assert run.finish() == 130
    text = run.text()
    said = "web.1#1 killed with SIGKILL on the second Ctrl-C: it had not stopped on SIGTERM yet"
    assert said in text
    assert "did not stop" not in text


def test_quiet_keeps_the_childrens_output_and_the_crash_only(app: App) -> None:
    app.procfile("web: sleep 30\nbad: echo about to fail; exit 3\n")
    for quiet in (["-q"], ["--quiet"], []):
        app.env["PROCRUNNER_QUIET"] = "true" if not quiet else "false"
        run = app.start(*quiet)
        assert run.finish() == 3
        lines = [re.sub(r"^\S+ ", "", line) for line in run.text().splitlines()]
        assert sorted(lines) == [
            "bad.1  | about to fail",
            "system | bad.1#1 exited 3: stopping all processes",
        ], quiet


def test_stderr_is_told_by_a_faint_prefix_with_colour_and_by_a_mark_without(app: App) -> None:
    app.procfile("web: echo out; echo err >&2; sleep 30\n")
    coloured = app.start("--color", "--no-timestamp")
    coloured.wait_for("err")
    coloured.signal(signal.SIGTERM)
    plain = app.start("--no-timestamp")
    plain.wait_for("err")
    plain.signal(signal.SIGTERM)
    merged = app.start("--color", "--no-timestamp", "--merge-stderr")
    merged.wait_for("err")
    merged.signal(signal.SIGTERM)
    for run in (coloured, plain, merged):
        assert run.finish() == 143
    web = "\x1b[36mweb.1  |\x1b[0m"
    assert f"{web} out\n" in coloured.text()
    assert f"\x1b[2m{web} err\n" in coloured.text()
    assert "web.1  ! err\n" in plain.text() and "web.1  | out\n" in plain.text()
    assert f"{web} err\n" in merged.text()


# --- the summary's words ------------------------------------------------------------------


def _ended(name: str, number: int, cause: Cause, memory: Memory | None) -> EndedIncarnation:
    scratch = Inventory(files=1, bytes=3)
    return EndedIncarnation(f"{name}#{number}", number, 100, 0.0, 2.0, cause, "", scratch, memory)


@dataclass(frozen=True)
class _Counts:
    type_name: str
    connections: Mapping[str, int]
    retried: int = 0
    unrouted: int = 1


def test_the_summary_counts_in_words_and_says_not_sampled_instead_of_0_b() -> None:
    """Regression: "over 1 restarts", "1 connections" and memory "0 B" for incarnations whose
    memory was never sampled."""
    web = Record(InstanceSpec("web.1", "web", 1, 5000, "serve"), State.STOPPED, 2)
    web.history += [_ended("web.1", 1, Cause.CHAOS, None), _ended("web.1", 2, Cause.SHUTDOWN, None)]
    web.recoveries.append(0.3)
    clock = Record(InstanceSpec("clock.1", "clock", 1, 5100, "tick"), State.STOPPED, 1)
    clock.history.append(_ended("clock.1", 1, Cause.SHUTDOWN, Memory(rss=2000, uss=1000)))
    lines = summary_lines({"web.1": web, "clock.1": clock}, 12.0, _Counts("web", {"web.1": 1}))
    assert lines[0] == (
        "summary: 2 instances, 12.0 s, 1 restart (chaos 1); destroyed 3 files / 9 B of scratch "
        "and 1.0 kB of process memory (2 incarnations not sampled)"
    )
    assert lines[1].split() == [
        "instance", "incarnations", "restarts", "uptime", "files", "scratch", "memory",
        "connections",
    ]
    assert lines[2].split() == ["web.1", "2", "chaos", "1", "4.0", "s", "2", "6", "B", "not",
                                "sampled", "1"]  # fmt: skip
    assert lines[4].endswith("median 300 ms, max 300 ms over 1 restart")
    assert lines[5] == (
        "router: 1 connection; 0 retried on another instance after a refused connect, "
        "1 closed with no instance to take it"
    )


def test_a_run_without_restarts_is_one_line() -> None:
    clock = Record(InstanceSpec("clock.1", "clock", 1, 5100, "tick"), State.STOPPED, 1)
    clock.history.append(_ended("clock.1", 1, Cause.SHUTDOWN, None))
    assert summary_lines({"clock.1": clock}, 0.5, kept=True) == [
        "summary: 1 instance, 500 ms, no restarts; kept 1 file / 3 B of scratch and process "
        "memory not sampled"
    ]
