"""Inventory and wipe an incarnation's scratch directory without trusting anything in it.

The child that filled it may be hostile and may still run (an escaped grandchild).

- Nothing is looked up by path. A directory is opened from its parent's fd with
  ``O_NOFOLLOW | O_DIRECTORY``, and its ``fstat`` must match the ``lstat`` that queued it:
  no symlink is followed, a swap is seen (reported, left to the next scan). Other entries are
  only ``lstat``-ed and unlinked, never opened: a hard link loses the link, the file keeps its
  data and mode. A directory on another st_dev or mount (a bind mount shares st_dev; see
  ``platform.mount_id``) is not entered: wiping, the mount is detached (where procrunner may,
  as root) and what was under it wiped; else it is reported and kept.
- A loop, not recursion, with O(1) fds: descend by opening the child and closing the parent;
  climb with ``openat(fd, "..")``, whose (st_dev, st_ino) must be the recorded parent's. If
  not, a directory moved under us: ``..`` is left alone and the walk restarts from the root
  (a bounded number of times).
- A directory is entered only if it has its parent's owner (or its parent is root's: the
  layers procrunner made). Each subtree the child controls then belongs to one user, who could
  read and remove all of it, so a root procrunner lends the child no power (as it would if the
  child moved its own directory, holding root's files, into its scratch).
- Wiping, a directory of ours without rwx for us is made 0700 by ``fchmod`` on the opened fd,
  or, if it cannot be opened (mode 000), by ``platform.make_dir_writable``: the change lands on
  the inode checked. ``inventory`` changes nothing.
- One pass: each entry is counted as met (a heap keeps the largest), then unlinked. A
  directory is scanned again until a scan finds nothing (at most ``_MAX_SCANS`` times), so a
  racer's additions are caught, and removed on the way up.

Only programming errors raise; whatever the child did ends up in ``Inventory.problems``.
"""

from __future__ import annotations

import errno
import heapq
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from procrunner import platform

_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_MAX_PROBLEMS = 10
_MAX_SCANS = 8  # of one directory in a wipe, before a racer is given up on
_MAX_RESTARTS = 16  # walks restarted from the root after a directory moved under us
_SHOW = 100  # characters of a path in a problem line
_TAMPERED = "changed while being walked (tampering?); skipped"
_MOUNTED = "another filesystem is mounted here; not entered"

Ident = tuple[int, int]


@dataclass(frozen=True)
class Inventory:
    """What died with an incarnation's scratch directory."""

    files: int = 0  # non-directories: files, symlinks, fifos, sockets...
    bytes: int = 0  # of the regular files
    largest: tuple[tuple[str, int], ...] = ()  # (path in scratch, size > 0), biggest first
    problems: tuple[str, ...] = ()  # what was kept or skipped, one line each, bounded


def inventory_and_wipe(path: Path, largest: int = 5) -> Inventory:
    """Count what is in ``path``, then remove all of it, ``path`` included."""
    return _Walk(largest, wipe=True).run(path)


def inventory(path: Path, largest: int = 5) -> Inventory:
    """Count what is in ``path`` and change nothing (for ``--keep-scratch``)."""
    return _Walk(largest, wipe=False).run(path)


@dataclass
class _Level:
    """One directory being wiped: its identity and owner, the subdirectories still to do."""

    ident: Ident
    owner: int
    pending: list[tuple[str, Ident, int]] = field(default_factory=list)  # subdirectories
    dirty: bool = True  # (re)scan before leaving


def _ident(info: os.stat_result) -> Ident:
    return (info.st_dev, info.st_ino)


class _Walk:
    def __init__(self, largest: int, wipe: bool) -> None:
        self.keep, self.wipe, self.euid = max(largest, 0), wipe, os.geteuid()
        self.dev = -1  # the scratch directory's st_dev and mount id, set in top()
        self.mount: int | None = None
        self.files = self.bytes = self.more = 0
        self.heap: list[tuple[int, int, str]] = []  # (size, sequence, path), smallest on top
        self.problems: dict[str, None] = {}
        self.scans: dict[Ident, int] = {}
        self.failed: set[tuple[Ident, str]] = set()  # (directory, name): counted, reported
        self.holding: set[Ident] = set()  # directories that keep a failed entry
        self.names: list[str] = []  # the current directory, below the root

    def run(self, path: Path) -> Inventory:
        if path.name in ("", ".", ".."):
            raise ValueError(f"not a path to a scratch directory: {path}")
        try:
            parent = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except FileNotFoundError:
            return self.result()
        except OSError as exc:
            self.note(f"{path.parent}: cannot open: {exc.strerror}")
            return self.result()
        try:
            self.top(parent, path.name)
        except FileNotFoundError:
            pass
        except OSError as exc:
            self.note(f".: cannot {'remove' if self.wipe else 'inspect'}: {exc.strerror}")
        finally:
            os.close(parent)
        return self.result()

    def top(self, parent: int, name: str) -> None:
        info = os.stat(name, dir_fd=parent, follow_symlinks=False)
        if not stat.S_ISDIR(info.st_mode):
            kind = "a symlink" if stat.S_ISLNK(info.st_mode) else "not a directory"
            self.note(f".: is {kind}; not followed, nothing removed")
            return
        self.dev, first = info.st_dev, _Level(_ident(info), info.st_uid)
        root = self.open(parent, name, first.ident, first.owner, None)
        if root is None:
            return
        try:
            self.mount = platform.mount_id(root)
            self.walk(root, first)
        finally:
            os.close(root)
        if not self.wipe:
            return
        if first.ident in self.holding:
            self.note(".: not removed: it still holds what is listed above")
        elif _ident(os.stat(name, dir_fd=parent, follow_symlinks=False)) != first.ident:
            self.note(".: replaced during the wipe (tampering?); not removed")
        else:
            os.rmdir(name, dir_fd=parent)

    def walk(self, root: int, first: _Level) -> None:
        cur, levels, restarts = os.dup(root), [first], 0
        try:
            while True:
                level = levels[-1]
                if level.pending:
                    name, ident, owner = level.pending.pop()
                    child = self.open(cur, name, ident, owner, level)
                    if child is not None:
                        os.close(cur)
                        cur = child
                        levels.append(_Level(ident, owner))
                        self.names.append(name)
                    continue
                scans = self.scans.get(level.ident, 0)
                if level.dirty and scans < (_MAX_SCANS if self.wipe else 1):
                    self.scans[level.ident] = scans + 1
                    level.dirty = self.scan(cur, level) and self.wipe
                    continue
                if level.dirty:
                    self.holding.add(level.ident)
                    self.note(f"{self.show()}: kept changing during the wipe; gave up")
                if len(levels) == 1:
                    return
                done = levels.pop()
                up, why = self.climb(cur, levels[-1].ident)
                os.close(cur)
                cur, name = up, self.names.pop()
                if up >= 0:
                    self.remove_dir(cur, levels[-1], name, done)
                    continue
                restarts += 1
                if why is None:
                    self.note(f"{self.show(name)}: moved during the walk (tampering?); restarted")
                else:  # no search permission, say: leave it out of the next walk
                    self.fail(levels[-1], name, f"cannot walk: {why}")
                if restarts > _MAX_RESTARTS:
                    self.note(f"gave up after {_MAX_RESTARTS} restarts")
                    return
                if not self.wipe:  # nothing was removed: count everything again
                    self.files, self.bytes, self.heap, self.scans = 0, 0, [], {}
                cur, levels, self.names = os.dup(root), [first], []
                first.pending, first.dirty = [], True
        finally:
            if cur >= 0:
                os.close(cur)

    def climb(self, fd: int, expected: Ident) -> tuple[int, str | None]:
        """``..`` of ``fd`` if it is the directory we came from, else -1 and why not (None:
        it is another directory)."""
        try:
            up = os.open("..", _DIR, dir_fd=fd)
        except OSError as exc:
            return -1, exc.strerror
        if _ident(os.fstat(up)) == expected:
            return up, None
        os.close(up)
        return -1, None

    def remove_dir(self, fd: int, level: _Level, name: str, done: _Level) -> None:
        if not self.wipe:
            return
        if done.ident in self.holding:  # what it keeps was reported already
            self.holding.add(level.ident)
            self.failed.add((level.ident, name))
            return
        try:
            os.rmdir(name, dir_fd=fd)
        except FileNotFoundError:
            pass
        except OSError as exc:
            level.dirty = True  # not empty, or swapped: the next scan sees what is there now
            if exc.errno not in (errno.ENOTDIR, errno.ENOTEMPTY, errno.EEXIST):
                self.fail(level, name, f"cannot remove: {exc.strerror}")

    def open(
        self, parent: int, name: str, ident: Ident, owner: int, level: _Level | None
    ) -> int | None:
        """Directory ``name`` in ``parent`` (``level``; None for the root), if it still is
        the one seen as ``ident``."""
        try:
            fd = os.open(name, _DIR, dir_fd=parent)
        except FileNotFoundError:
            return None
        except PermissionError as exc:
            if self.wipe and self.unlock(parent, name, ident, owner):
                return self.open(parent, name, ident, -1, level)  # -1: no second unlock
            self.fail(level, name, f"cannot read: {exc.strerror}")
            return None
        except OSError:  # ELOOP, ENOTDIR: swapped for a symlink or a file
            self.note(f"{self.where(level, name)}: {_TAMPERED}")
            return None
        info = os.fstat(fd)
        if _ident(info) != ident:
            os.close(fd)
            self.note(f"{self.where(level, name)}: {_TAMPERED}")
            return None
        if level is not None and self.mount is not None and platform.mount_id(fd) != self.mount:
            os.close(fd)
            self.mounted(parent, level, name)
            return None
        mine = self.euid != 0 and info.st_uid == self.euid
        if self.wipe and mine and info.st_mode & 0o700 != 0o700:
            try:
                os.fchmod(fd, 0o700)
            except OSError as exc:
                self.note(f"{self.where(level, name)}: cannot make writable: {exc.strerror}")
        return fd

    def unlock(self, parent: int, name: str, ident: Ident, owner: int) -> bool:
        """Make an unreadable directory of ours 0700: the inode checked, not a name."""
        if self.euid == 0 or owner != self.euid:
            return False
        try:
            return platform.make_dir_writable(parent, name, ident)
        except OSError:
            return False

    def scan(self, fd: int, level: _Level) -> bool:
        """Count (and when wiping unlink) each non-directory, queue each subdirectory.
        True if anything was found."""
        found = False
        try:
            with os.scandir(fd) as entries:
                for entry in entries:
                    name = entry.name
                    if (level.ident, name) in self.failed:
                        continue
                    try:
                        info = os.stat(name, dir_fd=fd, follow_symlinks=False)
                    except FileNotFoundError:
                        continue
                    except OSError as exc:
                        self.fail(level, name, f"cannot inspect: {exc.strerror}")
                        continue
                    found = True
                    if stat.S_ISDIR(info.st_mode):
                        if info.st_dev != self.dev:
                            self.mounted(fd, level, name)
                        elif info.st_uid != level.owner and level.owner != 0:
                            owners = f"owned by uid {info.st_uid}, not {level.owner}"
                            self.fail(level, name, f"{owners}; not entered")
                        else:
                            level.pending.append((name, _ident(info), info.st_uid))
                        continue
                    self.files += 1
                    if stat.S_ISREG(info.st_mode):
                        self.bytes += info.st_size
                        self.consider(name, info.st_size)
                    if self.wipe:
                        self.unlink(fd, level, name)
        except OSError as exc:
            self.holding.add(level.ident)
            self.note(f"{self.show()}: cannot list: {exc.strerror}")
        return found

    def mounted(self, fd: int, level: _Level, name: str) -> None:
        """A filesystem is mounted on ``name``: wiping, detach it (what was under it is seen
        by the next scan); else, or if that fails, keep it and report it."""
        if self.wipe and self.euid == 0 and platform.detach_mount(fd, name) is None:
            level.dirty = True
            return
        self.fail(level, name, _MOUNTED)

    def unlink(self, fd: int, level: _Level, name: str) -> None:
        try:
            os.unlink(name, dir_fd=fd)
        except (FileNotFoundError, IsADirectoryError):
            pass  # gone, or swapped for a directory, which the next scan will see
        except OSError as exc:
            self.fail(level, name, f"cannot remove: {exc.strerror}")

    def consider(self, name: str, size: int) -> None:
        if size and self.keep and (len(self.heap) < self.keep or size > self.heap[0][0]):
            raw = b"/".join(os.fsencode(part) for part in [*self.names, name])
            item = (size, self.files, raw.decode("utf-8", "replace"))
            if len(self.heap) < self.keep:
                heapq.heappush(self.heap, item)
            else:
                heapq.heapreplace(self.heap, item)

    def fail(self, level: _Level | None, name: str, why: str) -> None:
        """Report an entry that stays: later scans skip it, its directories are kept."""
        if level is not None:
            self.failed.add((level.ident, name))
            self.holding.add(level.ident)
        self.note(f"{self.where(level, name)}: {why}")

    def where(self, level: _Level | None, name: str) -> str:
        return self.show(name) if level is not None else "."

    def show(self, name: str | None = None) -> str:
        parts = self.names if name is None else [*self.names, name]
        text = b"/".join(os.fsencode(p) for p in parts).decode("utf-8", "replace") or "."
        text = "".join(c if c.isprintable() else ascii(c)[1:-1] for c in text)
        return text if len(text) <= _SHOW else "..." + text[-_SHOW:]

    def note(self, line: str) -> None:
        if line not in self.problems:
            if len(self.problems) < _MAX_PROBLEMS:
                self.problems[line] = None
            else:
                self.more += 1

    def result(self) -> Inventory:
        largest = tuple((p, s) for s, _, p in sorted(self.heap, key=lambda i: (-i[0], i[2])))
        more = [f"... and {self.more} more"] if self.more else []
        return Inventory(self.files, self.bytes, largest, (*self.problems, *more))
