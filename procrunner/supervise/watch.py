"""``--watch``: a change under the app root restarts the process types it concerns.

A small client of the supervisor: it watches (watchfiles, with the ignore list it shares with
``--audit``), groups a burst of changes into one batch, works out which types' globs match,
and posts one ``WatchTriggered`` event. The supervisor does the restarts. If the watcher
fails (the kernel's event queue overflowed, say), changes may have been missed: every watched
type is restarted and watching starts again.
"""

from __future__ import annotations

import asyncio
import fnmatch
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from procrunner.supervise.events import WatchTriggered

if TYPE_CHECKING:
    from watchfiles import DefaultFilter

LONGEST_BATCH_MS = 1600  # a burst that never pauses is still cut into batches this long
RETRY_SECONDS = 0.5  # before watching again after the watcher failed


@dataclass(frozen=True)
class WatchRule:
    """A watched type and its globs (relative to the app root; none: every file)."""

    type_name: str
    globs: tuple[str, ...] = ()

    def matches(self, relative: str) -> bool:
        return not self.globs or any(fnmatch.fnmatchcase(relative, g) for g in self.globs)


def watch_rules(
    type_names: Sequence[str], globs: Mapping[str, tuple[str, ...]], everything: bool
) -> list[WatchRule]:
    """With ``--watch`` every type is watched (its globs, else every file); without it, only
    the types that declare globs."""
    return [
        WatchRule(name, globs.get(name, ()))
        for name in type_names
        if everything or globs.get(name)
    ]


def triggered(rules: Sequence[WatchRule], changed: Sequence[str]) -> WatchTriggered | None:
    types = tuple(r.type_name for r in rules if any(r.matches(path) for path in changed))
    return WatchTriggered(types, tuple(changed)) if types else None


async def watch(
    root: Path,
    rules: Sequence[WatchRule],
    accept: DefaultFilter,
    post: Callable[[WatchTriggered], None],
    stop: asyncio.Event,
    quiet: float,
) -> None:
    """Post a ``WatchTriggered`` for each batch of changes that matches a rule, until
    ``stop`` is set. A batch ends once no change has come for ``quiet`` seconds, so saving
    many files at once restarts each type once."""
    from watchfiles import awatch  # a heavy import, paid only when watching

    while not stop.is_set():
        try:
            async for changes in awatch(
                root,
                watch_filter=accept,
                stop_event=stop,
                debounce=LONGEST_BATCH_MS,
                step=max(int(quiet * 1000), 1),
            ):
                changed = sorted({os.path.relpath(path, root) for _, path in changes})
                event = triggered(rules, changed)
                if event is not None:
                    post(event)
        except Exception as exc:  # watchfiles' internal errors share no narrower base
            post(WatchTriggered(tuple(r.type_name for r in rules), (), failure=str(exc)))
            await asyncio.sleep(RETRY_SECONDS)
