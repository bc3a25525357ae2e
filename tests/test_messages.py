"""procrunner's own lines through the real command: true, in the order things happened,
padded like every other line, quiet when asked (issue 18)."""

from __future__ import annotations

import re
import signal

from harness import App, kid

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
