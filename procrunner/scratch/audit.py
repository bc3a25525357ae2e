"""``--audit``: files written into the app root while the formation runs.

Local state outside any scratch directory is what twelve-factor apps must not keep: it does
not survive a deploy and is not shared between instances. The audit reports each such file
live (watchfiles, as it happens) and at the end (a snapshot of the app root taken before
the first spawn compared with one taken after the last exit, so nothing written before the
watcher was ready is missed).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from pathlib import Path

from watchfiles import Change, awatch

from procrunner.config.units import format_bytes
from procrunner.output.printer import Printer

Accept = Callable[[Change, str], bool]
Snapshot = dict[str, tuple[int, int]]
WHY = (
    "local state outside any scratch dir will not survive a deploy "
    "and is not shared between instances"
)


class Audit:
    def __init__(self, root: Path, accept: Accept, printer: Printer) -> None:
        self._root = root
        self._accept = accept
        self._printer = printer
        self._before = snapshot(root, accept)
        self._reported: set[str] = set()

    async def watch(self, stop: asyncio.Event) -> None:
        """Report each file once, live, until ``stop`` is set."""
        async for changes in awatch(self._root, watch_filter=self._accept, stop_event=stop):
            for change, path in sorted(changes, key=lambda c: c[1]):
                if change is not Change.deleted and os.path.isfile(path):
                    self._report(os.path.relpath(path, self._root))

    def _report(self, relative: str) -> None:
        if relative not in self._reported:
            self._reported.add(relative)
            self._printer.system(f"audit: {relative} written during the run: {WHY}")

    def finish(self) -> list[tuple[str, int]]:
        """Every file created or changed since the start, with its size; reported once more
        as a summary."""
        after = snapshot(self._root, self._accept)
        written = sorted(
            (path, size)
            for path, (mtime, size) in after.items()
            if self._before.get(path, (None, None))[0] != mtime
        )
        for path, _ in written:
            self._report(path)
        if written:
            self._printer.system(f"audit: {len(written)} files written in the app root: {WHY}")
            for path, size in written:
                self._printer.system(f"audit:   {path} ({format_bytes(size)})")
        else:
            self._printer.system("audit: no file written in the app root outside scratch dirs")
        return written


def snapshot(root: Path, accept: Accept) -> Snapshot:
    """mtime and size of every accepted file under ``root``, without following symlinks."""
    found: Snapshot = {}
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if accept(Change.added, os.path.join(folder, d))]
        for name in files:
            path = os.path.join(folder, name)
            if not accept(Change.added, path):
                continue
            try:
                info = os.lstat(path)
            except OSError:
                continue
            found[os.path.relpath(path, root)] = (info.st_mtime_ns, info.st_size)
    return found
