"""Recent output of each instance, for ``procrunner logs --lines N`` and the dashboard."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterable

PER_INSTANCE = 64 * 1024  # bytes of recent output kept per instance

Line = tuple[float, str, str, bool]  # time, instance, text, from stderr


class OutputHistory:
    def __init__(self, budget: int = PER_INSTANCE) -> None:
        self._budget = budget
        self._blocks: dict[str, deque[tuple[float, bytes, bool]]] = {}
        self._sizes: dict[str, int] = {}

    def add(self, name: str, body: bytes, stderr: bool) -> None:
        """``body``: whole lines, each ending in a newline."""
        blocks = self._blocks.setdefault(name, deque())
        blocks.append((time.time(), body, stderr))
        size = self._sizes.get(name, 0) + len(body)
        while size > self._budget and len(blocks) > 1:
            size -= len(blocks.popleft()[1])
        self._sizes[name] = size

    def last(self, names: Iterable[str], count: int) -> list[Line]:
        """The last ``count`` lines of the named instances together, oldest first."""
        lines: list[Line] = []
        for name in names:
            for when, body, stderr in self._blocks.get(name, ()):
                text = body.decode(errors="replace")
                lines += [(when, name, line, stderr) for line in text.splitlines()]
        lines.sort(key=lambda line: line[0])
        return lines[-count:] if count > 0 else []

    def names(self, targets: Iterable[str]) -> list[str]:
        """The instances with output that ``targets`` (instance or type names) select; all of
        them for no target."""
        wanted = tuple(targets)
        return [name for name in self._blocks if not wanted or selects(wanted, name)]


def selects(targets: Iterable[str], name: str) -> bool:
    """Whether an instance name (``web.2``) is one of the targets, or of a target type."""
    return any(name == t or name.rsplit(".", 1)[0] == t for t in targets)
