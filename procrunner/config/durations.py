"""Durations: ``500ms``, ``15s``, ``2m``, ``1h``, ``1m30s`` or bare seconds, and back for people."""

from __future__ import annotations

import math
import re

from procrunner.config.quoting import quote
from procrunner.errors import ProcrunnerError

__all__ = ["format_duration", "parse_duration"]

_NUMBER = r"(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)"
_BARE = re.compile(_NUMBER, re.ASCII)
# "ms" before "m", so that "500ms" is not read as 500 minutes followed by junk.
_PART = re.compile(rf"\s*({_NUMBER})\s*(ms|h|m|s)", re.ASCII)
_UNIT_SECONDS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
# Units must come largest first, each at most once: "1m30s", not "30s1m" or "1s1s".
_UNIT_RANK = {"h": 0, "m": 1, "s": 2, "ms": 3}
_ACCEPTED = "expected seconds (5, 1.5) or a duration like 500ms, 15s, 2m, 1h, 1m30s"


def parse_duration(text: str, source: str) -> float:
    """Parse a duration into seconds; ``source`` names the setting in errors."""
    stripped = text.strip()
    if _BARE.fullmatch(stripped):
        return _finite(float(stripped), text, source)
    if stripped.startswith("-"):
        raise ProcrunnerError(f"duration {quote(text)} is negative; {_ACCEPTED}", source=source)
    total = 0.0
    position = 0
    last_rank = -1
    while position < len(stripped):
        match = _PART.match(stripped, position)
        if match is None or _UNIT_RANK[match.group(2)] <= last_rank:
            raise ProcrunnerError(f"invalid duration {quote(text)}; {_ACCEPTED}", source=source)
        last_rank = _UNIT_RANK[match.group(2)]
        total += float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        position = match.end()
    if position == 0:
        raise ProcrunnerError(f"invalid duration {quote(text)}; {_ACCEPTED}", source=source)
    return _finite(total, text, source)


def _finite(seconds: float, text: str, source: str) -> float:
    if not math.isfinite(seconds):
        raise ProcrunnerError(f"duration {quote(text)} is too large", source=source)
    return seconds


def format_duration(seconds: float) -> str:
    """``340 ms``, ``12.4 s``, ``2 min 5 s`` or ``3 h 7 min``."""
    if not math.isfinite(seconds):
        return f"{seconds} s"
    if seconds < 0:
        return "-" + format_duration(-seconds)
    # The thresholds sit where rounding would carry over ("1000 ms", "60.0 s").
    if seconds < 0.9995:
        return f"{round(seconds * 1000)} ms"
    if seconds < 59.95:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"
