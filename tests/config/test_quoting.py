"""Issue 16, bug 3: an error quotes at most 80 characters of a value, cut visibly, whatever
the source of the value."""

from __future__ import annotations

from pathlib import Path

import pytest
from harness import App

from procrunner.cli import build_parser
from procrunner.config.load import load
from procrunner.config.quoting import QUOTE_LIMIT, quote
from procrunner.errors import ProcrunnerError

SIZE = 1_000_000
HUGE = "a" * SIZE
CUT = f"…' ({SIZE} characters)"
LONGEST_LINE = 300  # the message around the value, and the quoted value


def load_error(root: Path, *args: str, env: dict[str, str] | None = None) -> str:
    parsed = build_parser().parse_args(["config", "-d", str(root), *args])
    with pytest.raises(ProcrunnerError) as raised:
        load(parsed, env or {})
    return str(raised.value)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "Procfile").write_text("web: sleep 1\n")
    return tmp_path


SOURCES = {
    "flag": lambda root: load_error(root, "-t", HUGE),
    "variable": lambda root: load_error(root, env={"PROCRUNNER_TIMEOUT": HUGE}),
    "procrunner.yml": lambda root: (
        (root / "procrunner.yml").write_text(f"timeout: {HUGE}\n"), load_error(root))[1],
    ".foreman": lambda root: (
        (root / ".foreman").write_text(f"timeout: {HUGE}\n"), load_error(root))[1],
    "Procfile": lambda root: (
        (root / "Procfile").write_text(f"{HUGE}\n"), load_error(root))[1],
    "formation": lambda root: load_error(root, "-m", f"web={HUGE}"),
    "a yml key": lambda root: (
        (root / "procrunner.yml").write_text(f"? {HUGE}\n: 1\n"), load_error(root))[1],
}


@pytest.mark.parametrize("source", SOURCES)
def test_a_huge_value_is_quoted_cut_to_80_characters(root: Path, source: str) -> None:
    message = SOURCES[source](root)
    assert len(message) < LONGEST_LINE, message[:LONGEST_LINE]
    assert CUT in message


def test_a_huge_procrunner_yml_scalar_is_a_short_line_from_the_real_command(app: App) -> None:
    app.procfile("web: sleep 1\n")
    app.write("procrunner.yml", f"chaos: {HUGE}\n")
    result = app.cli("check")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert len(result.stderr) < LONGEST_LINE and result.stderr.count("\n") == 1
    assert result.stderr.startswith("procrunner: procrunner.yml:1: chaos: ")
    assert CUT in result.stderr


@pytest.mark.parametrize("value", ["", "x" * QUOTE_LIMIT, "x" * 78, "it's", "é" * 80, 7, True])
def test_a_short_value_is_quoted_whole(value: object) -> None:
    expected = "true" if value is True else repr(value)
    assert quote(value) == expected


@pytest.mark.parametrize("value", ["x" * 81, "'" * 200, "\x00" * 30, "é\n" * 300])
def test_the_cut_keeps_at_most_80_characters_and_one_line(value: str) -> None:
    shown, _, count = quote(value).partition(" (")
    assert len(shown) <= QUOTE_LIMIT + 2 and "…" in shown and "\n" not in shown
    assert count == f"{len(value)} characters)"


def test_a_huge_yaml_list_is_cut_too() -> None:
    shown = quote(["a"] * 100_000)
    assert len(shown) < 120 and shown.endswith("(500000 characters)")
