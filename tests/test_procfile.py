"""Table and property tests for the Procfile parser."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from procrunner.config.procfile import ProcessType, load_procfile, parse_procfile
from procrunner.config.quoting import quote
from procrunner.errors import ProcrunnerError

PROPERTY = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def pairs(types: tuple[ProcessType, ...]) -> list[tuple[str, str, int]]:
    return [(t.name, t.command, t.line) for t in types]


def assert_one_line(error: ProcrunnerError) -> None:
    text = str(error)
    assert text
    assert len(text.splitlines()) == 1, text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("web: gunicorn app:app", [("web", "gunicorn app:app", 1)]),
        ("web:gunicorn", [("web", "gunicorn", 1)]),
        ("  web:   python -m http.server  \t", [("web", "python -m http.server", 1)]),
        ("web: a\nworker: b\n", [("web", "a", 1), ("worker", "b", 2)]),
        ("web: a\r\nworker: b\r\n", [("web", "a", 1), ("worker", "b", 2)]),
        ("\n\n# a comment\n   # indented comment\nweb: a\n\n", [("web", "a", 5)]),
        ("#web: commented out\nworker: b", [("worker", "b", 2)]),
        ("Web_2-x: a", [("Web_2-x", "a", 1)]),
        ("123: a", [("123", "a", 1)]),
        ("web: echo a:b # not a comment", [("web", "echo a:b # not a comment", 1)]),
        ("web: #starts with a hash", [("web", "#starts with a hash", 1)]),
        ("web: sh -c 'echo \"$PORT\"'", [("web", "sh -c 'echo \"$PORT\"'", 1)]),
        ("web: caf\u00e9 \u2603", [("web", "caf\u00e9 \u2603", 1)]),
    ],
)
def test_valid(text: str, expected: list[tuple[str, str, int]]) -> None:
    assert pairs(parse_procfile(text, "Procfile")) == expected


@pytest.mark.parametrize(
    ("text", "line", "fragments"),
    [
        ("web gunicorn", 1, ["malformed line", "'web gunicorn'", "name: command"]),
        ("web : gunicorn", 1, ["malformed line", "'web : gunicorn'"]),
        ("web.1: gunicorn", 1, ["'web.1: gunicorn'", "letters, digits"]),
        (": gunicorn", 1, ["malformed line", "': gunicorn'"]),
        ("w\u00e9b: a", 1, ["malformed line"]),
        # A BOM is dropped when a file is read (test_load_procfile), not from text.
        ("\ufeffweb: a", 1, ["malformed line"]),
        ("web: a\n  -- stray text\n", 2, ["'-- stray text'"]),
        ("web:", 1, ["'web' has an empty command"]),
        ("web:   \t", 1, ["'web' has an empty command"]),
        ("web: a\x00b", 1, ["NUL"]),
        ("web: a\nworker: b\nweb: c", 3, ["duplicate process type 'web'", "lines 1 and 3"]),
        ("", None, ["no process types"]),
        ("\n  \n# only comments\n", None, ["no process types"]),
    ],
)
def test_errors(text: str, line: int | None, fragments: list[str]) -> None:
    with pytest.raises(ProcrunnerError) as info:
        parse_procfile(text, "Procfile")
    error = info.value
    assert error.source == "Procfile"
    assert error.line == line
    for fragment in fragments:
        assert fragment in error.message
    assert_one_line(error)
    assert str(error).startswith("Procfile:" if line is None else f"Procfile:{line}:")


def test_several_problems_report_the_first_and_count_the_rest() -> None:
    text = "web: a\nbad line\nworker:\nweb: b\n"
    with pytest.raises(ProcrunnerError) as info:
        parse_procfile(text, "Procfile")
    assert info.value.line == 2
    assert "'bad line'" in info.value.message
    assert info.value.message.endswith(" (and 2 more problems)")
    assert_one_line(info.value)


def test_one_more_problem_is_singular() -> None:
    with pytest.raises(ProcrunnerError, match=r"\(and 1 more problem\)$"):
        parse_procfile("x\ny\nweb: a", "Procfile")


def test_long_malformed_line_is_truncated() -> None:
    with pytest.raises(ProcrunnerError) as info:
        parse_procfile("x" * 5000, "Procfile")
    assert len(info.value.message) < 200
    assert "…' (5000 characters)" in info.value.message


@pytest.mark.parametrize("text", ["", "a", "x" * 79, "x" * 80, "x" * 81, "\x00" * 100, "é" * 300])
def test_quote_is_short_and_one_line(text: str) -> None:
    shown = quote(text)
    value, _, count = shown.partition(" (")
    assert len(value) <= 82  # 80 characters of the value, and its quotes
    assert "\n" not in shown
    if len(repr(text)) <= 82:
        assert shown == repr(text)
    else:
        assert value.endswith("…'") and count == f"{len(text)} characters)"


def test_process_type_is_frozen() -> None:
    (web,) = parse_procfile("web: a", "Procfile")
    with pytest.raises(AttributeError):
        web.name = "other"  # type: ignore[misc]


# --- files ---


def test_load_procfile(tmp_path: Path) -> None:
    path = tmp_path / "Procfile"
    path.write_bytes(b"\xef\xbb\xbfweb: a\r\nworker: b\r\n")
    assert pairs(load_procfile(path)) == [("web", "a", 1), ("worker", "b", 2)]


def test_load_procfile_error_names_the_path(tmp_path: Path) -> None:
    path = tmp_path / "Procfile"
    path.write_text("web: a\nnonsense\n")
    with pytest.raises(ProcrunnerError) as info:
        load_procfile(path)
    assert str(info.value).startswith(f"{path}:2: ")


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "Procfile"
    with pytest.raises(ProcrunnerError) as info:
        load_procfile(path)
    assert info.value.source == str(path)
    assert "not found" in info.value.message


def test_directory(tmp_path: Path) -> None:
    with pytest.raises(ProcrunnerError) as info:
        load_procfile(tmp_path)
    assert info.value.source == str(tmp_path)
    assert "directory" in info.value.message


@pytest.mark.skipif(os.geteuid() == 0, reason="root can read anything")
def test_unreadable(tmp_path: Path) -> None:
    path = tmp_path / "Procfile"
    path.write_text("web: a\n")
    path.chmod(0)
    try:
        with pytest.raises(ProcrunnerError) as info:
            load_procfile(path)
    finally:
        path.chmod(0o600)
    assert info.value.source == str(path)
    assert "permission denied" in info.value.message


@pytest.mark.parametrize(
    ("raised", "fragment"),
    [(PermissionError(13, "Permission denied"), "permission denied"), (OSError(5, "I/O"), "I/O")],
)
def test_read_failures_become_procrunner_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, raised: OSError, fragment: str
) -> None:
    # Works as root too, where chmod 0 does not stop reading.
    path = tmp_path / "Procfile"
    path.write_text("web: a\n")

    def fail(self: Path) -> bytes:
        raise raised

    monkeypatch.setattr(Path, "read_bytes", fail)
    with pytest.raises(ProcrunnerError) as info:
        load_procfile(path)
    assert info.value.source == str(path)
    assert fragment in info.value.message


@pytest.mark.parametrize(
    ("data", "line"),
    [
        (b"\xffweb: a\n", 1),
        (b"web: a\nworker: b \xc3\x28\n", 2),
        (b"web: a\n\n\n# \xe2\x82\n", 4),
    ],
)
def test_invalid_utf8(tmp_path: Path, data: bytes, line: int) -> None:
    path = tmp_path / "Procfile"
    path.write_bytes(data)
    with pytest.raises(ProcrunnerError) as info:
        load_procfile(path)
    assert info.value.source == str(path)
    assert info.value.line == line
    assert "UTF-8" in info.value.message
    assert_one_line(info.value)


# --- properties ---

NAMES = st.from_regex(r"[A-Za-z0-9_-]{1,12}", fullmatch=True)
COMMANDS = (
    st.text(st.characters(blacklist_characters="\n\r\x00"), min_size=1, max_size=40)
    .map(lambda s: s.strip(" \t\f\v"))
    .filter(bool)
)
SPACE = st.sampled_from(["", " ", "  ", "\t"])


@PROPERTY
@given(st.text(max_size=300))
def test_any_text_parses_or_raises_one_line_error(text: str) -> None:
    try:
        result = parse_procfile(text, "Procfile")
    except ProcrunnerError as error:
        assert error.source == "Procfile"
        assert_one_line(error)
    else:
        assert result
        assert len({t.name for t in result}) == len(result)


@PROPERTY
@given(st.lists(st.sampled_from(["web", "w", ":", " ", "#", "\n", "\r\n", "a b", "\t", "x:"])))
def test_procfile_like_fragments(fragments: list[str]) -> None:
    try:
        parse_procfile("".join(fragments), "Procfile")
    except ProcrunnerError as error:
        assert_one_line(error)


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("procfile")


@PROPERTY
@given(st.binary(max_size=300))
def test_any_bytes_load_or_raise(scratch: Path, data: bytes) -> None:
    path = scratch / "Procfile"
    path.write_bytes(data)
    try:
        load_procfile(path)
    except ProcrunnerError as error:
        assert error.source == str(path)
        assert_one_line(error)


@PROPERTY
@given(
    entries=st.lists(st.tuples(NAMES, COMMANDS), min_size=1, max_size=8, unique_by=lambda e: e[0]),
    layout=st.data(),
)
def test_valid_procfile_round_trips(entries: list[tuple[str, str]], layout: st.DataObject) -> None:
    newline = layout.draw(st.sampled_from(["\n", "\r\n"]))
    lines: list[str] = []
    expected: list[tuple[str, str, int]] = []
    for name, command in entries:
        for _ in range(layout.draw(st.integers(0, 2))):
            lines.append(layout.draw(st.sampled_from(["", "   ", "# comment", "  #web: x"])))
        before, after, trailing = (layout.draw(SPACE) for _ in range(3))
        lines.append(f"{before}{name}:{after}{command}{trailing}")
        expected.append((name, command, len(lines)))
    text = newline.join(lines) + layout.draw(st.sampled_from(["", newline]))
    assert pairs(parse_procfile(text, "Procfile")) == expected
