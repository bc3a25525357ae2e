"""The one ignore list for everything that watches the app root (``--audit``, and later
``--watch``): watchfiles' default filter (VCS folders, virtualenvs, caches, editor files),
procrunner's own files, and paths the user declared (backing-service data)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from watchfiles import DefaultFilter

OWN_DIRS = (".procrunner",)


def app_filter(extra_paths: Iterable[Path]) -> DefaultFilter:
    """A filter that rejects the default ignores and any path starting with an extra one
    (so a SQLite file's ``-journal`` and ``-wal`` companions are ignored with it)."""
    return DefaultFilter(
        ignore_dirs=(*DefaultFilter.ignore_dirs, *OWN_DIRS),
        ignore_paths=[str(path.resolve()) for path in extra_paths],
    )
