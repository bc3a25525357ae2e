"""The base environment: ``.env`` files, their precedence over the OS environment, and PORT.

``.env`` files are read with python-dotenv's own parser, so quoting, ``export`` and multi-line
values mean what they mean for dotenv. There is no ``${VAR}`` interpolation. Error messages
name the file, the line and at most the key: never a value, which may be a secret.
"""

from __future__ import annotations

import io
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from procrunner.config.procfile import raise_first, read_text
from procrunner.config.quoting import quote
from procrunner.errors import ProcrunnerError

if TYPE_CHECKING:
    from dotenv.parser import Binding

__all__ = [
    "DEFAULT_PORT",
    "Precedence",
    "base_port",
    "load_env_files",
    "merge_environment",
    "parse_env_file",
]

Precedence = Literal["file", "os"]

DEFAULT_PORT = 5000
MAX_PORT = 65535
# The kernel's limit on one argv or environment string, its NUL included (MAX_ARG_STRLEN,
# 32 pages): a longer KEY=VALUE makes every exec of a child fail with E2BIG.
MAX_ARG_STRLEN = 32 * 4096

_KEY_AT_START = re.compile(r"\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_.-]*)([^\S\r\n]*=)?")
# A word alone on a line may be a pasted secret (say the second line of an unquoted value),
# so without an "=" after it, it is named only if it looks like a conventional variable name.
_CONVENTIONAL_NAME = re.compile(r"[A-Z_][A-Z0-9_]{0,63}", re.ASCII)
_VALID_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*", re.ASCII)
_LEADING_SPACE = re.compile(r"\s*")
# dotenv counts lines with this same pattern, so our numbers agree with Original.line.
_NEWLINE = re.compile(r"\r\n|\n|\r")


def _line_of(binding: Binding) -> int:
    """The line the binding's text starts on.

    dotenv's ``Original.line`` is where the reader stood before it skipped blank lines, so
    add the newlines in the skipped whitespace.
    """
    string = binding.original.string
    leading = _LEADING_SPACE.match(string)
    skipped = leading.group() if leading else ""
    return binding.original.line + len(_NEWLINE.findall(skipped))


def _problem(binding: Binding) -> str | None:
    """What is wrong with one binding, without quoting its value, or None if nothing is."""
    if binding.error:
        match = _KEY_AT_START.match(binding.original.string)
        if match and (match.group(2) or _CONVENTIONAL_NAME.fullmatch(match.group(1))):
            return (
                f"cannot parse the entry for {match.group(1)}; expected KEY=VALUE "
                "(is a quote left open, or is there text after a closing quote?)"
            )
        return "cannot parse this line; expected KEY=VALUE"
    key = binding.key
    if key is None:
        return None
    if binding.value is None:
        if _CONVENTIONAL_NAME.fullmatch(key):
            return f"{key} has no value; expected {key}=VALUE"
        return "a word alone on a line, with no '='; expected KEY=VALUE"
    if not _VALID_KEY.fullmatch(key):
        return (
            f"invalid key {quote(key)}; expected letters, digits, '_', '.' or '-', "
            "not starting with a digit"
        )
    if "\x00" in binding.value:
        return f"the value of {key} contains a NUL character"
    size = len(f"{key}={binding.value}".encode(errors="surrogateescape")) + 1
    if size > MAX_ARG_STRLEN:
        return (f"{key} is too large to pass to a process: {size} bytes with its name, over "
                f"the kernel's {MAX_ARG_STRLEN // 1024} KiB limit (MAX_ARG_STRLEN)")
    return None


def parse_env_file(path: Path) -> dict[str, str]:
    """Read one ``.env`` file into a dict; a key given twice keeps its last value."""
    from dotenv.parser import parse_stream  # a heavy import (all of dotenv): only if needed

    text = read_text(path)
    result: dict[str, str] = {}
    problems: list[tuple[str, int | None]] = []
    for binding in parse_stream(io.StringIO(text)):
        problem = _problem(binding)
        if problem is not None:
            problems.append((problem, _line_of(binding)))
        elif binding.key is not None and binding.value is not None:
            result[binding.key] = binding.value
    raise_first(problems, str(path))
    return result


def load_env_files(paths: Sequence[Path]) -> dict[str, str]:
    """Read several ``.env`` files in order; a later file wins over an earlier one."""
    merged: dict[str, str] = {}
    for path in paths:
        merged.update(parse_env_file(path))
    return merged


def merge_environment(
    os_env: Mapping[str, str], file_env: Mapping[str, str], precedence: Precedence = "file"
) -> dict[str, str]:
    """Combine the OS environment and the env files into a new dict.

    ``"file"`` (foreman's and honcho's rule) lets env-file values win; ``"os"`` lets the OS
    environment win.
    """
    if precedence == "file":
        return {**os_env, **file_env}
    if precedence == "os":
        return {**file_env, **os_env}
    raise ProcrunnerError(
        f"unknown env precedence {quote(str(precedence))}; expected 'file' or 'os'",
        source="env precedence",
    )


def base_port(cli_port: int | None, env: Mapping[str, str], env_source: str = "environment") -> int:
    """The first PORT: ``--port`` if given, else ``PORT`` from ``env``, else 5000."""
    if cli_port is not None:
        if not 1 <= cli_port <= MAX_PORT:
            raise ProcrunnerError(
                f"port {cli_port} is out of range; expected 1 to {MAX_PORT}", source="--port"
            )
        return cli_port
    text = env.get("PORT")
    if text is None:
        return DEFAULT_PORT
    digits = text.strip()
    # The length check keeps int() away from absurdly long strings (it refuses > 4300 digits).
    if digits.isascii() and digits.isdigit() and len(digits) <= 20:
        port = int(digits)
        if 1 <= port <= MAX_PORT:
            return port
    raise ProcrunnerError(f"PORT must be a whole number from 1 to {MAX_PORT}", source=env_source)
