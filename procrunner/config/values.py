"""Where a setting's value came from, and the checks that turn a raw value (command-line or
environment text, or what YAML gave) into its typed value.

A converter raises ``ProcrunnerError`` with the setting's flag as its source, as for the
command line; ``Origin.blame`` re-points such an error at the variable or the file, key path
and line the value really came from.
"""

from __future__ import annotations

import contextlib
import difflib
import enum
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from procrunner.config.declare import Kind
from procrunner.config.durations import parse_duration
from procrunner.config.quoting import quote
from procrunner.errors import ProcrunnerError


class Source(enum.IntEnum):
    """Where a value came from; a higher one wins."""

    DEFAULT = 0
    ENV_FILE = 1  # honcho's PROCFILE in .env: the only setting an env file gives
    FOREMAN = 2
    FILE = 3
    ENVIRONMENT = 4
    COMMAND_LINE = 5


@dataclass(frozen=True)
class Origin:
    """Where a value came from: a source, and the variable or file, line and key there."""

    source: Source
    where: str = ""  # the variable, or the file as shown
    line: int | None = None
    key: str = ""  # the key path inside a file: types.worker.tty

    def describe(self) -> str:
        if self.source is Source.DEFAULT:
            return "default"
        if self.source is Source.COMMAND_LINE:
            return "command line"
        if self.source is Source.ENVIRONMENT:
            return f"environment {self.where}"
        if self.source is Source.ENV_FILE:
            return f"{self.key} in {self.where}"
        return self.where if self.line is None else f"{self.where}:{self.line}"

    def blame(self, error: ProcrunnerError, raw: object) -> ProcrunnerError:
        """``error`` (raised against a flag) re-pointed at this origin, naming the value."""
        if self.source in (Source.COMMAND_LINE, Source.DEFAULT):
            return error
        message = error.message
        shown = quote(raw)
        if shown not in message:
            message = f"{message} (value {shown})"
        if self.key:
            message = f"{self.key}: {message}"
        return ProcrunnerError(message, self.where, self.line)


COMMAND_LINE = Origin(Source.COMMAND_LINE)
DEFAULT = Origin(Source.DEFAULT)


@contextlib.contextmanager
def blamed(origin: Origin, raw: object) -> Iterator[None]:
    try:
        yield
    except ProcrunnerError as error:
        raise origin.blame(error, raw) from None


def suggestion(word: str, known: Sequence[str]) -> str:
    close = difflib.get_close_matches(word, known, n=1)
    return f"; did you mean {quote(close[0])}?" if close else ""


@dataclass(frozen=True)
class Convert:
    """What a converter needs besides the raw value."""

    flag: str
    choices: tuple[str, ...] = ()
    base: Path | None = None  # relative paths in a settings file are relative to its folder

    def wrong(self, expected: str, raw: object) -> ProcrunnerError:
        return ProcrunnerError(f"expected {expected}, got {quote(raw)}", self.flag)


_TRUE = ("true", "yes", "on", "1")
_FALSE = ("false", "no", "off", "0")


def to_bool(raw: object, how: Convert) -> bool:
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower() if isinstance(raw, str | int) else None
    if text in _TRUE or text in _FALSE:
        return text in _TRUE
    raise how.wrong("true or false", raw)


def _auto_bool(raw: object, how: Convert) -> bool | None:
    if isinstance(raw, str) and raw.strip().lower() == "auto":
        return None
    try:
        return to_bool(raw, how)
    except ProcrunnerError:
        raise how.wrong("auto, true or false", raw) from None


def to_port(raw: object, how: Convert) -> int:
    text = str(raw).strip() if isinstance(raw, str | int) and not isinstance(raw, bool) else ""
    if not (text.isascii() and text.isdigit() and len(text) <= 5 and 1 <= int(text) <= 65535):
        raise ProcrunnerError(f"{quote(raw)} is not a port number (1-65535)", how.flag)
    return int(text)


def to_duration(raw: object, how: Convert) -> float:
    if isinstance(raw, bool) or not isinstance(raw, str | int | float):
        raise how.wrong("a duration such as 500ms, 5s or 2m", raw)
    return parse_duration(str(raw), how.flag)


def choice(raw: object, how: Convert) -> str:
    if not isinstance(raw, str) or raw not in how.choices:
        hint = suggestion(raw, how.choices) if isinstance(raw, str) else ""
        raise ProcrunnerError(
            f"expected one of {', '.join(how.choices)}, got {quote(raw)}{hint}", how.flag
        )
    return raw


def text(raw: object, how: Convert) -> str:
    if not isinstance(raw, str) or not raw.strip():
        raise how.wrong("a non-empty string", raw)
    return raw.strip()


def _spec(raw: object, how: Convert) -> str:
    """``KEY=VALUE,...`` text; in a settings file also a mapping (lists joined with ``+``)."""
    if isinstance(raw, Mapping) and raw:
        return ",".join(f"{key}={_spec_part(value)}" for key, value in raw.items())
    if isinstance(raw, int | float) and not isinstance(raw, bool):
        return str(raw)
    return text(raw, how)


def _spec_part(value: object) -> str:
    if isinstance(value, list):
        return "+".join(str(item) for item in value)
    return str(value).lower() if isinstance(value, bool) else str(value)


def to_path(raw: object, how: Convert) -> Path:
    path = Path(text(raw, how))
    return how.base / path if how.base is not None else path


def to_words(raw: object, how: Convert) -> tuple[str, ...]:
    """A comma-separated string, or a list of strings."""
    if isinstance(raw, str):
        return tuple(part.strip() for part in raw.split(",") if part.strip())
    if isinstance(raw, list) and all(isinstance(item, str) and item.strip() for item in raw):
        return tuple(item.strip() for item in raw)
    raise how.wrong("a list of names, or one string of names separated by commas", raw)


def to_paths(raw: object, how: Convert) -> tuple[Path, ...]:
    return tuple(to_path(word, how) for word in to_words(raw, how))


CONVERTERS: dict[Kind, Callable[[object, Convert], object]] = {
    "text": text,
    "spec": _spec,
    "bool": to_bool,
    "auto-bool": _auto_bool,
    "port": to_port,
    "duration": to_duration,
    "choice": choice,
    "path": to_path,
    "paths": to_paths,
    "types": to_words,
}
