"""Table and property tests for duration parsing and formatting."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from procrunner.config.durations import format_duration, parse_duration
from procrunner.errors import ProcrunnerError


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("0", 0.0),
        ("5", 5.0),
        ("1.5", 1.5),
        (".5", 0.5),
        ("2.", 2.0),
        ("500ms", 0.5),
        ("0ms", 0.0),
        ("15s", 15.0),
        ("1.5s", 1.5),
        ("2m", 120.0),
        ("1h", 3600.0),
        ("1m30s", 90.0),
        ("1h2m3s4ms", 3723.004),
        ("1h30m", 5400.0),
        ("2s500ms", 2.5),
        ("  10s  ", 10.0),
        ("15 s", 15.0),
        ("1m 30s", 90.0),
        ("007s", 7.0),
    ],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text, "--timeout") == pytest.approx(seconds)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "invalid duration ''"),
        ("   ", "invalid duration '   '"),
        ("s", "invalid duration 's'"),
        ("abc", "invalid duration 'abc'"),
        ("-1", "negative"),
        ("-5s", "negative"),
        ("1d", "invalid duration '1d'"),
        ("5 seconds", "invalid duration"),
        ("1e3", "invalid duration"),
        ("nan", "invalid duration"),
        ("inf", "invalid duration"),
        ("1,5s", "invalid duration"),
        ("30s1m", "invalid duration"),
        ("1s1s", "invalid duration"),
        ("1.2.3s", "invalid duration"),
        ("\u0665s", "invalid duration"),  # an Arabic-Indic digit
        ("9" * 400, "too large"),
        ("9" * 400 + "h", "too large"),
    ],
)
def test_parse_duration_errors(text: str, fragment: str) -> None:
    with pytest.raises(ProcrunnerError) as info:
        parse_duration(text, "--timeout")
    error = info.value
    assert error.source == "--timeout"
    assert fragment in error.message
    assert len(str(error).splitlines()) == 1
    assert len(str(error)) < 250
    if "invalid" in fragment or "negative" in fragment:
        assert "500ms, 15s, 2m, 1h, 1m30s" in error.message


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.0, "0 ms"),
        (0.34, "340 ms"),
        (0.9994, "999 ms"),
        (0.9996, "1.0 s"),
        (12.4, "12.4 s"),
        (59.94, "59.9 s"),
        (59.96, "1 min 0 s"),
        (125, "2 min 5 s"),
        (3599.4, "59 min 59 s"),
        (3600, "1 h 0 min"),
        (11220, "3 h 7 min"),
        (-2.5, "-2.5 s"),
        (math.inf, "inf s"),
    ],
)
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


def check_any(text: str) -> None:
    try:
        seconds = parse_duration(text, "setting")
    except ProcrunnerError as error:
        assert error.source == "setting"
        assert len(str(error).splitlines()) == 1
    else:
        assert math.isfinite(seconds)
        assert seconds >= 0


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=40))
def test_any_text_parses_or_raises(text: str) -> None:
    check_any(text)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(["1", "0", ".", "5", "ms", "s", "m", "h", " ", "-", "e"])))
def test_duration_like_text(pieces: list[str]) -> None:
    check_any("".join(pieces))


@settings(max_examples=300, deadline=None)
@given(st.floats(min_value=0, max_value=1e7), st.sampled_from(["", "s", "ms", "m", "h"]))
def test_fixed_point_numbers_round_trip(number: float, unit: str) -> None:
    scale = {"": 1.0, "s": 1.0, "ms": 0.001, "m": 60.0, "h": 3600.0}[unit]
    text = f"{number:.6f}{unit}"
    assert parse_duration(text, "s") == pytest.approx(float(f"{number:.6f}") * scale)
    assert format_duration(number * scale)
