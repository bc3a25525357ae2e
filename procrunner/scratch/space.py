"""Scratch directories: each incarnation's new, empty, private TMPDIR, wiped when it ends.

Layout: ``BASE/RUN_ID/web.1-3`` where BASE is ``<temp dir>/procrunner-<uid>/<app hash>`` (or
``--scratch-root``). A run holds an exclusive ``flock`` on ``BASE/RUN_ID.lock`` while it runs,
so a later start of the same app can tell a dead run's leftovers (lock free) from a live
run's (lock held) and sweep only the former; a free lock alone proves nothing (a child can
plant one), so ``deadrun`` must prove the run dead first. ``--keep-scratch`` leaves ended
directories in place and marks the run so that no sweep removes it. A default BASE left empty
is removed, by procrunner at exit or by its watchdog after a crash.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import re
import stat
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from procrunner.config.units import format_bytes
from procrunner.errors import MachineLimit, ProcrunnerError
from procrunner.scratch.wipe import Inventory, inventory, inventory_and_wipe

_KEEP_MARKER = ".keep"
_RUN_ID = re.compile(r"\d{8}-\d{6}-[0-9a-f]{6}")  # what config.app.new_run_id makes
# Out of space or inodes, or out of descriptors: the machine's limit, not the user's input.
_LIMITS = (errno.ENOSPC, errno.EDQUOT, errno.EMFILE, errno.ENFILE)


@dataclass(frozen=True)
class Stale:
    """What a dead run left: processes stopped now, and its scratch (None if kept)."""

    run: str
    processes: int
    scratch: Inventory | None

    def lines(self) -> list[str]:
        """What the sweep did, for the log: one line each, what could not go included."""
        said = []
        if self.processes:
            said.append(
                f"stopped {self.processes} processes of run {self.run}, left by a procrunner "
                "that died with its watchdog"
            )
        if self.scratch is not None:
            said.append(
                f"removed the scratch of run {self.run}, left by a procrunner that died: "
                f"{self.scratch.files} files / {format_bytes(self.scratch.bytes)}"
            )
            if self.scratch.problems:
                more = len(self.scratch.problems) - 1
                extra = f" (and {more} more)" if more else ""
                said.append(
                    f"could not remove all of run {self.run}'s scratch: "
                    f"{self.scratch.problems[0]}{extra}"
                )
        return said


def app_digest(app_root: Path) -> str:
    """A short name for an app root: its scratch folder and its control socket use it."""
    import hashlib  # here: `start` imports it without OpenSSL (see cli._lean_imports)

    return hashlib.sha256(os.fsencode(app_root)).hexdigest()[:12]


def default_base(app_root: Path) -> Path:
    return Path(tempfile.gettempdir()) / f"procrunner-{os.getuid()}" / app_digest(app_root)


def private_directory(path: Path) -> None:
    """Create ``path`` (0700) or check that it is a real directory of ours that only we can
    use: a shared temp dir is where another user could plant a trap."""
    with _one_line(path):
        with contextlib.suppress(FileExistsError):
            path.mkdir(mode=0o700, parents=False)
        info = path.lstat()
    if not stat.S_ISDIR(info.st_mode):
        raise ProcrunnerError("is not a directory (a symlink?); refusing to use it", str(path))
    if info.st_uid != os.getuid() or info.st_mode & 0o077:
        raise ProcrunnerError(
            f"must be owned by uid {os.getuid()} with mode 0700; refusing to use it", str(path)
        )


@contextlib.contextmanager
def _one_line(path: Path) -> Iterator[None]:
    """An OSError on ``path`` as the one line the command prints: a machine limit (exit 1)
    or a folder that cannot be used (exit 2)."""
    try:
        yield
    except OSError as exc:
        where = exc.filename if isinstance(exc.filename, str) else str(path)
        reason = exc.strerror or str(exc)
        if exc.errno in _LIMITS:
            raise MachineLimit(f"cannot create scratch space: {reason}", where) from None
        if exc.errno in (errno.EEXIST, errno.ENOTDIR):
            raise ProcrunnerError("is a file, not a folder", where) from None
        tmpdir = os.environ.get("TMPDIR", "")
        if exc.errno == errno.ENOENT and tmpdir and where.startswith(tmpdir):
            reason += f" (TMPDIR is {tmpdir}: a missing folder?)"
        raise ProcrunnerError(f"cannot be used: {reason}", where) from None


class ScratchSpace:
    """The run's scratch root and the directories made in it."""

    def __init__(self, base: Path | None, app_root: Path, run_id: str, keep: bool) -> None:
        self.default = base is None
        if base is None:
            base = default_base(app_root)
            private_directory(base.parent)
        else:
            with _one_line(base):
                base.parent.mkdir(parents=True, exist_ok=True)
        private_directory(base)
        self.base = base
        self.keep = keep
        with _one_line(base):
            self._lock = _lock(base / f"{run_id}.lock")
            if self._lock is None:
                raise ProcrunnerError("is in use by another procrunner", str(base / run_id))
            self.root = base / run_id
            self.root.mkdir(mode=0o700)
            if keep:
                (self.root / _KEEP_MARKER).touch(mode=0o600)

    def sweep_stale(self, stop_processes: Callable[[str, float], int]) -> list[Stale]:
        """Clean up after runs of this app that died: first ``stop_processes(run_id, since)``
        (their watchdog may have died with them; nothing started before ``since`` is
        theirs), then remove their scratch, unless kept. A run counts as dead only when its
        lock is free and ``deadrun`` finds no sign of life: a lock a child planted names a
        live run of another app as easily as a dead one."""
        # psutil only here: the clients import this module for the socket's folder
        from procrunner.scratch.deadrun import CLOCK_SLACK, why_alive

        swept = []
        for run in self._leftover_runs():
            lock_path = self.base / f"{run}.lock"
            fd = _lock(lock_path)
            if fd is None:
                continue
            try:
                if why_alive(run) is not None:
                    continue
                since = os.fstat(fd).st_ctime - CLOCK_SLACK  # the lock predates the run's processes
                stopped = stop_processes(run, since)
                if (self.base / run / _KEEP_MARKER).exists():
                    swept.append(Stale(run, stopped, None))
                    continue
                swept.append(Stale(run, stopped, inventory_and_wipe(self.base / run)))
                lock_path.unlink(missing_ok=True)
            finally:
                os.close(fd)
        return swept

    def _leftover_runs(self) -> list[str]:
        """Runs with a lock or a folder here, this one aside: a folder whose lock went (a
        sweep that could not remove all of it, say) is looked at again."""
        names = {entry.name.removesuffix(".lock") for entry in os.scandir(self.base)}
        return sorted(n for n in names if _RUN_ID.fullmatch(n) and n != self.root.name)

    def make(self, label: str) -> Path:
        """A new, empty directory for an incarnation (``web.1#3`` makes ``web.1-3``)."""
        path = self.root / label.replace("#", "-")
        path.mkdir(mode=0o700)
        return path

    def end(self, path: Path) -> Inventory:
        """The inventory of what dies with an incarnation; then the wipe, unless kept."""
        return inventory(path) if self.keep else inventory_and_wipe(path)

    def close(self) -> None:
        """At exit: remove the run's root (unless kept) and release the lock; a default base
        left empty goes too."""
        if self._lock is None:
            return
        if not self.keep:
            inventory_and_wipe(self.root)
            (self.base / f"{self.root.name}.lock").unlink(missing_ok=True)
        os.close(self._lock)
        self._lock = None
        if self.default:
            _remove_if_empty(self.base)


def remove_run_scratch(root: Path) -> list[str]:
    """The watchdog's clean-up of a dead run's scratch ``root`` (unless kept or locked), its
    lock, and the default base it leaves empty; what could not be removed, one line each."""
    lock_path = root.with_name(f"{root.name}.lock")
    try:
        fd = _lock(lock_path)
    except OSError as exc:
        return [f"{lock_path}: {exc.strerror}"]
    if fd is None:
        return []
    try:
        if (root / _KEEP_MARKER).exists():
            return []
        problems = [f"scratch {root}: {p}" for p in inventory_and_wipe(root).problems]
        lock_path.unlink(missing_ok=True)
    finally:
        os.close(fd)
    if root.parent.parent.name == f"procrunner-{os.getuid()}":
        _remove_if_empty(root.parent)
    return problems


def _remove_if_empty(folder: Path) -> None:
    with contextlib.suppress(OSError):  # not empty: another run's, or what a wipe kept
        folder.rmdir()


def _lock(path: Path) -> int | None:
    """An exclusive lock on ``path`` (created 0600), or None if someone holds it."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd
