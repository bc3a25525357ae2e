"""Recent output of each instance, for ``procrunner logs --lines N`` and the dashboard.

Bounded twice: each instance keeps about ``PER_INSTANCE`` bytes (at least its last block, so
a long line is kept whole), and all instances together at most ``TOTAL`` bytes, the oldest
blocks of any instance going first."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterable

PER_INSTANCE = 64 * 1024  # bytes of recent output kept per instance
TOTAL = 4 << 20  # bytes of recent output kept for all instances together

Line = tuple[float, str, str, bool]  # time, instance, text, from stderr


class OutputHistory:
    def __init__(self, budget: int = PER_INSTANCE, total: int = TOTAL) -> None:
        self._budget = budget
        self._total_budget = total
        self._blocks: dict[str, deque[tuple[float, bytes, bool]]] = {}
        self._sizes: dict[str, int] = {}
        self._total = 0

    def add(self, name: str, body: bytes, stderr: bool) -> None:
        """``body``: whole lines, each ending in a newline."""
        blocks = self._blocks.setdefault(name, deque())
        blocks.append((time.time(), body, stderr))
        self._sizes[name] = self._sizes.get(name, 0) + len(body)
        self._total += len(body)
        while self._sizes[name] > self._budget and len(blocks) > 1:
            self._drop_oldest(name)
        while self._total > self._total_budget and len(self._blocks) > 1:
            self._drop_oldest(min(self._blocks, key=lambda n: self._blocks[n][0][0]))

    def _drop_oldest(self, name: str) -> None:
        blocks = self._blocks[name]
        size = len(blocks.popleft()[1])
        self._sizes[name] -= size
        self._total -= size
        if not blocks:
            del self._blocks[name], self._sizes[name]

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
