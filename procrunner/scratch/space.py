"""Scratch directories: each incarnation's new, empty, private TMPDIR, wiped when it ends.

Layout: ``BASE/RUN_ID/web.1-3`` where BASE is ``<temp dir>/procrunner-<uid>/<app hash>`` (or
``--scratch-root``). A run holds an exclusive ``flock`` on ``BASE/RUN_ID.lock`` while it runs,
so a later start of the same app can tell a dead run's leftovers (lock free) from a live
run's (lock held) and sweep only the former. ``--keep-scratch`` leaves ended directories in
place and marks the run so that no sweep removes it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import stat
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from procrunner.errors import ProcrunnerError
from procrunner.scratch.wipe import Inventory, inventory, inventory_and_wipe

_KEEP_MARKER = ".keep"


@dataclass(frozen=True)
class Stale:
    """What a dead run left: processes stopped now, and its scratch (None if kept)."""

    run: str
    processes: int
    scratch: Inventory | None


def app_digest(app_root: Path) -> str:
    """A short name for an app root: its scratch folder and its control socket use it."""
    import hashlib  # here: `start` imports it without OpenSSL (see cli._lean_imports)

    return hashlib.sha256(os.fsencode(app_root)).hexdigest()[:12]


def default_base(app_root: Path) -> Path:
    return Path(tempfile.gettempdir()) / f"procrunner-{os.getuid()}" / app_digest(app_root)


def private_directory(path: Path) -> None:
    """Create ``path`` (0700) or check that it is a real directory of ours that only we can
    use: a shared temp dir is where another user could plant a trap."""
    with contextlib.suppress(FileExistsError):
        path.mkdir(mode=0o700, parents=False)
    info = path.lstat()
    if not stat.S_ISDIR(info.st_mode):
        raise ProcrunnerError("is not a directory (a symlink?); refusing to use it", str(path))
    if info.st_uid != os.getuid() or info.st_mode & 0o077:
        raise ProcrunnerError(
            f"must be owned by uid {os.getuid()} with mode 0700; refusing to use it", str(path)
        )


class ScratchSpace:
    """The run's scratch root and the directories made in it."""

    def __init__(self, base: Path | None, app_root: Path, run_id: str, keep: bool) -> None:
        if base is None:
            base = default_base(app_root)
            private_directory(base.parent)
        else:
            base.parent.mkdir(parents=True, exist_ok=True)
        private_directory(base)
        self.base = base
        self.keep = keep
        self._lock = _lock(base / f"{run_id}.lock")
        if self._lock is None:
            raise ProcrunnerError("is in use by another procrunner", str(base / run_id))
        self.root = base / run_id
        self.root.mkdir(mode=0o700)
        if keep:
            (self.root / _KEEP_MARKER).touch(mode=0o600)

    def sweep_stale(self, stop_processes: Callable[[str], int]) -> list[Stale]:
        """Clean up after runs of this app that died (their lock is free): first
        ``stop_processes(run_id)`` (their watchdog may have died with them), then remove their
        scratch, unless kept."""
        swept = []
        for lock_path in sorted(self.base.glob("*.lock")):
            run = lock_path.with_suffix("")
            if run == self.root:
                continue
            fd = _lock(lock_path)
            if fd is None:
                continue
            try:
                stopped = stop_processes(run.name)
                if (run / _KEEP_MARKER).exists():
                    swept.append(Stale(run.name, stopped, None))
                    continue
                swept.append(Stale(run.name, stopped, inventory_and_wipe(run)))
                lock_path.unlink(missing_ok=True)
            finally:
                os.close(fd)
        return swept

    def make(self, label: str) -> Path:
        """A new, empty directory for an incarnation (``web.1#3`` makes ``web.1-3``)."""
        path = self.root / label.replace("#", "-")
        path.mkdir(mode=0o700)
        return path

    def end(self, path: Path) -> Inventory:
        """The inventory of what dies with an incarnation; then the wipe, unless kept."""
        return inventory(path) if self.keep else inventory_and_wipe(path)

    def close(self) -> None:
        """At exit: remove the run's root (unless kept) and release the lock."""
        if self._lock is None:
            return
        if not self.keep:
            inventory_and_wipe(self.root)
            (self.base / f"{self.root.name}.lock").unlink(missing_ok=True)
        os.close(self._lock)
        self._lock = None


def _lock(path: Path) -> int | None:
    """An exclusive lock on ``path`` (created 0600), or None if someone holds it."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd
