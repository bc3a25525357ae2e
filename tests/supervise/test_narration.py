"""What the printer says about the supervisor's facts, over scripted histories (issue 18):
true about a second Ctrl-C, quiet at the end, and which lines ``--quiet`` keeps."""

from __future__ import annotations

import signal

from fakes import World
from test_histories import play


def test_a_kill_on_the_second_ctrl_c_is_told_as_asked_not_as_a_missed_timeout() -> None:
    """Regression: a second Ctrl-C killed at once, then the line said the instance "did not
    stop on SIGTERM within 5.0 s"."""

    async def script(w: World) -> None:
        await w.ready("web.1#1")
        await w.signal(signal.SIGINT)
        await w.signal(signal.SIGINT)
        assert "second SIGINT: killing all processes now (SIGKILL)" in w.lines
        said = "web.1#1 killed with SIGKILL on the second Ctrl-C: it had not stopped on SIGTERM yet"
        assert said in w.lines
        assert not [line for line in w.lines if "did not stop" in line]

    play(script, {"web": 1})


def test_ended_lines_are_said_during_the_run_and_left_to_the_summary_at_its_end() -> None:
    async def script(w: World) -> None:
        await w.exit("worker.1#1", 1)
        assert [line for line in w.lines if line.startswith("worker.1#1 ended (exited 1 after")]
        await w.signal(signal.SIGINT)
        await w.finish()
        at_the_end = ("worker.1#2 ended", "web.1#1 ended")
        assert not [line for line in w.lines if line.startswith(at_the_end)]

    play(script, {"web": 1, "worker": 1})


def test_quiet_drops_what_went_as_expected_and_keeps_crashes() -> None:
    async def script(w: World) -> None:
        await w.ready("web.1#1")
        await w.exit("worker.1#1", 3)
        await w.signal(signal.SIGINT)
        await w.finish()
        kept = {line for line, chatter in zip(w.lines, w.chatter, strict=True) if not chatter}
        assert kept == {"worker.1#1 exited 3 (crash, always)"}, w.lines

    play(script, {"web": 1, "worker": 1})
