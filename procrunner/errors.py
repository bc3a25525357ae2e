"""The error types the command line turns into one line: bad input (exit 2), a machine limit
and no formation running (exit 1)."""

from __future__ import annotations


class ProcrunnerError(Exception):
    """A user error: bad input, named by where it came from.

    ``source`` is a file path or a setting name (``--formation``), ``line`` the 1-based line
    number when there is one. ``str()`` gives the one line the CLI prints.
    """

    def __init__(self, message: str, source: str | None = None, line: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.source = source
        self.line = line

    def __str__(self) -> str:
        if self.source is None:
            return self.message
        where = self.source if self.line is None else f"{self.source}:{self.line}"
        return f"{where}: {self.message}"


class NotRunning(Exception):
    """No formation answers at the socket: the one-line message says which app."""


class MachineLimit(ProcrunnerError):
    """The machine, not the input, stops procrunner: out of inodes, processes or
    descriptors (exit 1)."""
