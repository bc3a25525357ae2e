"""Children's control sequences on procrunner's terminal: shown, not obeyed (colours excepted),
unless --raw-output; pipes, JSON and log files keep the exact bytes."""

from __future__ import annotations

import json
import re
import signal

import pytest
from harness import App
from screen import Screen, scribbler
from scribbler import CONTROLS

from procrunner.output.controls import escape_block, escape_line

SHOWN = [
    rb"title \x1b]0;pwned\x07 end",
    rb"clipboard \x1b]52;c;aGVsbG8=\x07 end",
    rb"\rafter",
    rb"move \x1b[2A\x1b[10C up",
    rb"erase \x1b[2K\x1b[1G gone",
    b"colour \x1b[31mred\x1b[0m plain\x1b[0m",
    rb"c1 \xc2\x9b31m csi",
    rb"bell \x07 backspace \x08 delete \x7f",
    b"crlf line",
]


@pytest.mark.parametrize(("raw", "shown"), list(zip(CONTROLS, SHOWN, strict=True)))
def test_each_control_sequence_is_shown_as_text_and_colours_are_kept(
    raw: bytes, shown: bytes
) -> None:
    assert escape_line(raw) == shown
    assert escape_block(raw + b"\n" + raw + b"\n") == shown + b"\n" + shown + b"\n"


def test_a_redrawn_line_shows_its_latest_state() -> None:
    assert escape_line(b"\r 10%\r 11%\r 12%") == rb"\r 12%"
    assert escape_line(b"10%\r11%\r") == rb"\r11%"


def test_a_clean_block_is_passed_on_as_it_is() -> None:
    clean = "tab\tand ünïcode and \\ backslash\n".encode() * 1000
    assert escape_block(clean) is clean


def _check_nothing_obeyed(screen: bytes) -> None:
    """Only SGR colour sequences and newlines reach the terminal."""
    without_colours = re.sub(rb"\x1b\[[0-9;]*m", b"", screen)
    assert not re.search(rb"[\x00-\x08\x0b-\x1f\x7f]|\xc2[\x80-\x9f]", without_colours), screen


def test_a_terminal_shows_the_childrens_control_sequences_escaped(app: App) -> None:
    app.procfile(f"web: {scribbler('controls')}\n")
    screen = Screen(app)
    screen.wait_for(rb"web\.1 +\| done\n")
    shown = screen.finish(signal.SIGINT)
    _check_nothing_obeyed(shown)
    for line in SHOWN:
        assert re.search(rb"\nweb\.1 +\| " + re.escape(line) + rb"\n", shown), line


def test_raw_output_passes_the_bytes_to_the_terminal(app: App) -> None:
    app.procfile(f"web: {scribbler('controls')}\n")
    screen = Screen(app, "--raw-output")
    screen.wait_for(rb"web\.1 +\| done\n")
    shown = screen.finish(signal.SIGINT)
    for line in CONTROLS:
        assert re.search(rb"\nweb\.1 +\| " + re.escape(line) + rb"\n", shown), line


def test_pipes_json_and_log_files_keep_the_exact_bytes(app: App) -> None:
    app.procfile(f"web: {scribbler('controls')}\n")
    exact = b"".join(line + b"\n" for line in CONTROLS)
    piped = app.start("--no-timestamp", "--no-prefix")
    piped.wait_for(r"^done$")
    piped.signal(signal.SIGINT)
    piped.finish()
    assert exact in b"".join(piped.lines)

    logging = Screen(app, "--log-dir", "logs")
    logging.wait_for(rb"web\.1 +\| done\n")
    logging.finish(signal.SIGINT)
    logged = (app.root / "logs" / "web.1.log").read_bytes().split(b"\n")
    shown_in_file = [row.split(b" | ", 1)[1] + b"\n" for row in logged if b" | " in row]
    assert b"".join(shown_in_file) == exact + b"done\n"

    screen = Screen(app, "--output", "json")
    screen.wait_for(rb'"line":"done"')
    shown = screen.finish(signal.SIGINT)
    lines = [json.loads(row) for row in shown.split(b"\n") if b'"stream":"stdout"' in row]
    assert [row["line"].encode() for row in lines] == [*CONTROLS, b"done"]


def test_a_progress_bar_shows_its_latest_state_while_it_is_drawn(app: App) -> None:
    app.procfile(f"bar: {scribbler('bar', '0.01')}\n")
    screen = Screen(app)
    # Redrawn every 10 ms, it is never quiet: still its state shows, one state a line.
    screen.wait_for(rb"(?s)bar\.1 +\|\+\\rprogress \d+%\n.*bar\.1 +\|\+\\rprogress \d+%\n", 20)
    shown = screen.finish(signal.SIGINT)
    _check_nothing_obeyed(shown)
    states = re.findall(rb"bar\.1 +\|[ +](.*)\n", shown)
    assert all(re.fullmatch(rb"\\rprogress \d+%", state) for state in states), states


def _logs_on_a_terminal(app: App, *args: str) -> bytes:
    """What ``procrunner logs --no-follow`` writes to a terminal about a running scribbler."""
    app.procfile(f"web: {scribbler('controls')}\n")
    run = app.start("--no-timestamp")
    run.wait_for(r"web\.1 +\| done$")
    logs = Screen(app, "--no-follow", "--lines", "20", *args, command=("logs",))
    assert logs.proc.wait(timeout=30) == 0
    shown = logs.finish(signal.SIGTERM)
    run.signal(signal.SIGINT)
    run.finish()
    return shown


# The control socket's output history splits a line at a lone \r, so ``logs`` receives the
# overwritten line as two lines; and the crlf line's \r is its line end, not text.
LOGGED = [i for i, line in enumerate(CONTROLS) if line.count(b"\r") != 1]


def test_logs_on_a_terminal_shows_the_control_sequences_escaped(app: App) -> None:
    shown = _logs_on_a_terminal(app)
    _check_nothing_obeyed(shown)
    for line in [SHOWN[i] for i in LOGGED]:
        assert re.search(rb" web\.1 \| " + re.escape(line) + rb"\n", shown), line


def test_logs_raw_output_passes_the_bytes_to_the_terminal(app: App) -> None:
    shown = _logs_on_a_terminal(app, "--raw-output")
    for line in [CONTROLS[i] for i in LOGGED]:
        assert re.search(rb" web\.1 \| " + re.escape(line) + rb"\n", shown), line
