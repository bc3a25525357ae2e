"""Procfile parsing: text in, a tuple of frozen ``ProcessType`` out; and how an entry's command
becomes what ``/bin/sh -c`` runs (``shell_command``), for ``start``, ``run`` and ``export``.

The rules are foreman's (``name: command``, names ``[A-Za-z0-9_-]+``, ``#`` comments and blank
lines skipped), except that a line that does not match is an error instead of being skipped.
Every problem is collected; the first one is raised as a single ``ProcrunnerError`` with
file and line, and the count of the others.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from procrunner.config.quoting import quote
from procrunner.errors import ProcrunnerError

__all__ = [
    "ProcessType",
    "load_procfile",
    "parse_procfile",
    "raise_first",
    "read_text",
    "shell_command",
]

# shell_command: what keeps a command from being run with exec
_CONTROL = re.compile(r"[;&|<>()`\n]")
# Reserved words, and builtins that exist only inside the shell: exec cannot run them.
_NOT_EXECABLE = frozenset(
    """
    if then else elif fi do done case esac while until for in { } ! [[ ]] function select time
    exec exit return break continue cd export unset set readonly local source . : eval trap wait
    read shift alias unalias ulimit umask times getopts hash jobs fg bg type command
    """.split()  # noqa: SIM905  (a list of words reads better as words)
)
_LINE = re.compile(r"([A-Za-z0-9_-]+):(.*)", re.ASCII | re.DOTALL)
# Only ASCII whitespace is stripped, so a command keeps any Unicode space it really ends with.
_WHITESPACE = " \t\r\n\f\v"


@dataclass(frozen=True)
class ProcessType:
    """One Procfile entry, e.g. ``web: gunicorn app:app`` on line 3."""

    name: str
    command: str
    line: int


def raise_first(problems: Sequence[tuple[str, int | None]], source: str | None) -> None:
    """Raise the first ``(message, line)`` problem, mentioning how many others there are."""
    if not problems:
        return
    message, line = problems[0]
    others = len(problems) - 1
    if others:
        message += f" (and {others} more problem{'s' if others > 1 else ''})"
    raise ProcrunnerError(message, source=source, line=line)


def read_text(path: Path) -> str:
    """Read a UTF-8 text file (a leading BOM is dropped); any failure is a ProcrunnerError."""
    source = str(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ProcrunnerError("file not found", source=source) from None
    except IsADirectoryError:
        raise ProcrunnerError("is a directory, expected a file", source=source) from None
    except PermissionError:
        raise ProcrunnerError("permission denied", source=source) from None
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ProcrunnerError(f"cannot read file: {reason}", source=source) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        bad = data[exc.start]
        raise ProcrunnerError(
            f"not valid UTF-8: byte 0x{bad:02x} at offset {exc.start}", source=source, line=line
        ) from None
    return text.removeprefix("\ufeff")


def parse_procfile(text: str, source: str) -> tuple[ProcessType, ...]:
    """Parse Procfile text; ``source`` names it in errors (usually the file path)."""
    types: list[ProcessType] = []
    first_line: dict[str, int] = {}
    problems: list[tuple[str, int | None]] = []
    # Split on "\n" only, so line numbers match what editors show; "\r" of CRLF is stripped.
    for number, raw in enumerate(text.split("\n"), start=1):
        line = raw.strip(_WHITESPACE)
        if not line or line.startswith("#"):
            continue
        match = _LINE.fullmatch(line)
        if match is None:
            problems.append(
                (
                    f"malformed line {quote(line)}: expected 'name: command' where name "
                    "is letters, digits, '_' or '-'",
                    number,
                )
            )
            continue
        name = match.group(1)
        command = match.group(2).strip(_WHITESPACE)
        if not command:
            problems.append((f"process type {quote(name)} has an empty command", number))
        elif "\x00" in command:
            problems.append((f"command of {quote(name)} contains a NUL character", number))
        elif name in first_line:
            problems.append(
                (
                    f"duplicate process type {quote(name)}: defined on lines "
                    f"{first_line[name]} and {number}",
                    number,
                )
            )
        else:
            first_line[name] = number
            types.append(ProcessType(name=name, command=command, line=number))
    raise_first(problems, source)
    if not types:
        raise ProcrunnerError(
            "no process types defined; expected lines like 'web: command'", source=source
        )
    return tuple(types)


def load_procfile(path: Path) -> tuple[ProcessType, ...]:
    """Read and parse the Procfile at ``path``."""
    return parse_procfile(read_text(path), str(path))


def shell_command(command: str) -> str:
    """``exec COMMAND`` for a simple command, so the shell does not stay as a middleman
    between procrunner's signals and the program (as foreman does); the command as it is
    otherwise (lists, pipes, redirections, compound commands, leading assignments)."""
    words = command.split()
    if not words or _CONTROL.search(command) or words[0] in _NOT_EXECABLE or "=" in words[0]:
        return command
    return f"exec {command}"
