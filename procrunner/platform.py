"""Every Linux-specific call procrunner makes, each with the POSIX fallback used without it.

- pidfd (``os.pidfd_open``): an exit is an event in the loop. Fallback: a thread blocked in
  ``waitpid``-style waiting for our own children, polling with psutil for the others.
- ``/proc/PID/environ``: a process's incarnation marker, read raw. Fallback: psutil's
  ``Process.environ()`` (slower; on macOS it reads the process's arguments area).
- ``/proc/self/fdinfo``: the mount id of an open directory, so a wipe stays on its mount.
  Fallback: st_dev alone (a bind mount of the same filesystem is then not recognised).
- ``O_PATH`` plus ``/proc/self/fd/N``: make an unreadable directory writable by inode.
  Fallback: ``chmod`` by name after an ``lstat`` check (a swap in between is possible).
- ``umount2(MNT_DETACH)``: take a mount a child left in its scratch away. Fallback: the
  mount is reported and kept.
- ``SO_PEERCRED``: the uid of a control socket's peer. Fallback: ``LOCAL_PEERCRED`` where it
  exists, else none: the socket's mode 0600 in a 0700 directory is the only check.
- cgroup v2 (found in ``/proc/self/mountinfo``): one cgroup per incarnation that nothing can
  leave; see ``Cgroup``. Fallback: process group, session and marker (``containment()``).
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

TYPE_CHECKING = False  # the watchdog helper imports this module: typing costs start-up time
if TYPE_CHECKING:
    import asyncio
    import socket
    from collections.abc import Callable

HAVE_PIDFD = hasattr(os, "pidfd_open")
CGROUP_SWITCH = "PROCRUNNER_CGROUP"  # "off": use the fallback containment even where cgroups work
RUN_CGROUP_PREFIX = "procrunner-"
_EMPTY_POLL = 0.01


def open_pidfd(pid: int) -> int | None:
    """A pidfd for ``pid`` (readable once it exits); None where pidfds do not exist.
    Raises OSError (no such process, or no descriptor left)."""
    return os.pidfd_open(pid) if HAVE_PIDFD else None


def exit_status(pid: int) -> tuple[int | None, int | None]:
    """(exit code, None) or (None, signal) of an exited child, leaving it unreaped."""
    result = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)
    assert result is not None
    if result.si_code in (os.CLD_KILLED, os.CLD_DUMPED):
        return None, result.si_status
    return result.si_status, None


def watch_exit(
    pid: int, loop: asyncio.AbstractEventLoop, callback: Callable[[int | None, int | None], None]
) -> None:
    """Call ``callback(code, signal)`` in ``loop`` when child ``pid`` exits, without reaping
    it. With a pidfd the loop waits; else a thread blocks on the child."""
    fd = open_pidfd(pid)
    if fd is not None:

        def readable() -> None:
            loop.remove_reader(fd)
            os.close(fd)
            callback(*exit_status(pid))

        loop.add_reader(fd, readable)
        return

    def wait_in_thread() -> None:
        code, signum = exit_status(pid)
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(callback, code, signum)

    threading.Thread(target=wait_in_thread, name=f"wait-{pid}", daemon=True).start()


def environment_value(pid: int, name: str) -> str:
    """One variable of a process's environment ("" if unset), as the process started."""
    try:
        fd = os.open(f"/proc/{pid}/environ", os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        if os.path.isdir("/proc/self"):
            raise  # Linux: the process is gone
        import psutil

        return str(psutil.Process(pid).environ().get(name, ""))
    try:
        chunks = []
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
    finally:
        os.close(fd)
    block, prefix = b"\0" + b"".join(chunks), f"\0{name}=".encode()
    start = block.find(prefix)
    if start < 0:
        return ""
    start += len(prefix)
    end = block.find(b"\0", start)
    return block[start : end if end >= 0 else None].decode(errors="replace")


def mount_id(fd: int) -> int | None:
    """The mount an open file is on (Linux fdinfo ``mnt_id``); None where unknown."""
    try:
        info = os.open(f"/proc/self/fdinfo/{fd}", os.O_RDONLY | os.O_CLOEXEC)
        try:
            lines = os.read(info, 4096).splitlines()
        finally:
            os.close(info)
    except OSError:
        return None
    return next((int(line[7:]) for line in lines if line.startswith(b"mnt_id:")), None)


def make_dir_writable(parent: int, name: str, ident: tuple[int, int]) -> bool:
    """chmod 0700 directory ``name`` in ``parent`` if it is still the inode ``ident``
    (st_dev, st_ino), even when it cannot be opened (mode 000). True if done."""
    o_path = getattr(os, "O_PATH", 0)
    if not o_path or not os.path.isdir("/proc/self/fd"):
        info = os.stat(name, dir_fd=parent, follow_symlinks=False)
        if (info.st_dev, info.st_ino) != ident:
            return False
        os.chmod(name, 0o700, dir_fd=parent, follow_symlinks=False)
        return True
    fd = os.open(name, o_path | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent)
    try:
        info = os.fstat(fd)
        if (info.st_dev, info.st_ino) != ident:
            return False
        os.chmod(f"/proc/self/fd/{fd}", 0o700)  # the inode checked, not a name
        return True
    finally:
        os.close(fd)


def detach_mount(parent: int, name: str) -> str | None:
    """Lazily unmount what is mounted on ``name`` in directory ``parent`` (not following a
    symlink); None if done, else why not."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        umount2 = libc.umount2
    except (OSError, AttributeError):
        return "cannot unmount here"
    mnt_detach, umount_nofollow = 2, 8
    path = f"/proc/self/fd/{parent}/{name}".encode()
    if umount2(path, mnt_detach | umount_nofollow) != 0:
        return os.strerror(ctypes.get_errno())
    return None


def peer_uid(sock: socket.socket) -> int | None:
    """The uid of a Unix socket's peer; None where the system cannot tell."""
    import socket
    import struct

    if hasattr(socket, "SO_PEERCRED"):
        creds = struct.Struct("3i")
        pid_uid_gid = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, creds.size)
        return int(creds.unpack(pid_uid_gid)[1])
    if hasattr(socket, "LOCAL_PEERCRED"):  # BSD and macOS: struct xucred, uid after version
        xucred = sock.getsockopt(0, socket.LOCAL_PEERCRED, struct.calcsize("2I"))
        return int(struct.unpack("2I", xucred[:8])[1])
    return None


# cgroup v2 -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Cgroup:
    """One cgroup v2 directory: what is in it can leave its group and session, not it."""

    path: Path

    def pids(self) -> list[int]:
        """The processes in this cgroup and every cgroup below it."""
        found: list[int] = []
        for folder, _, files in os.walk(self.path):
            if "cgroup.procs" in files:
                with contextlib.suppress(OSError):
                    found += [int(p) for p in Path(folder, "cgroup.procs").read_text().split()]
        return found

    def shell_enter(self, script: str) -> str:
        """``script`` for ``/bin/sh -c``, run once the shell has moved itself into this
        cgroup: before it can fork, so nothing it starts is ever outside."""
        import shlex

        return f"echo $$ >{shlex.quote(str(self.path / 'cgroup.procs'))}\n{script}"

    def populated(self) -> bool:
        try:
            return "populated 1" in (self.path / "cgroup.events").read_text()
        except FileNotFoundError:
            return False

    def kill(self, timeout: float) -> bool:
        """Freeze (no more forks), SIGKILL everything in it, wait up to ``timeout`` for it
        to empty. True if it is empty."""
        with contextlib.suppress(OSError):
            (self.path / "cgroup.freeze").write_text("1")
        with contextlib.suppress(FileNotFoundError):
            (self.path / "cgroup.kill").write_text("1")
        deadline = time.monotonic() + timeout
        while self.populated():  # cgroup.events has no portable wakeup for a thread: polled
            if time.monotonic() > deadline:
                return False
            time.sleep(_EMPTY_POLL)
        return True

    def remove(self) -> str | None:
        """Remove the (empty) cgroup and the ones below it; None if done, else why not."""
        for folder, _, _ in sorted(os.walk(self.path), key=lambda w: -len(w[0])):
            try:
                os.rmdir(folder)
            except FileNotFoundError:
                continue
            except OSError as exc:
                return f"cgroup {folder}: not removed: {exc.strerror}"
        return None


def _cgroup2_base() -> tuple[Path | None, str]:
    """The cgroup v2 directory this process is in, if procrunner may make cgroups below
    it; else None and why not."""
    if os.environ.get(CGROUP_SWITCH) == "off":
        return None, f"cgroups disabled by {CGROUP_SWITCH}=off"
    try:
        mountinfo = Path("/proc/self/mountinfo").read_text()
        own = Path("/proc/self/cgroup").read_text()
    except OSError:
        return None, "no /proc (not Linux?)"
    relative = next((line[3:] for line in own.splitlines() if line.startswith("0::")), None)
    for line in mountinfo.splitlines():
        fields, _, tail = line.partition(" - ")
        parts = fields.split()
        if tail.split()[:1] != ["cgroup2"] or len(parts) < 5 or relative is None:
            continue
        root, mount = parts[3], parts[4]
        if not (relative + "/").startswith(root.rstrip("/") + "/"):
            continue  # this process's cgroup is outside what this mount shows
        base = Path(mount, relative[len(root.rstrip("/")) :].lstrip("/"))
        if not (base / "cgroup.kill").exists() and base != Path(mount):
            return None, "cgroup v2 without cgroup.kill (Linux < 5.14)"
        if not os.access(base, os.W_OK) or not os.access(base / "cgroup.procs", os.W_OK):
            return None, f"cgroup {base} is not writable (not root, not delegated)"
        return base, str(base)
    return None, "no cgroup v2 mounted"


_BASE: list[tuple[Path | None, str]] = []  # found once per process


def _base() -> tuple[Path | None, str]:
    if not _BASE:
        _BASE.append(_cgroup2_base())
    return _BASE[0]


def containment() -> str:
    """What keeps an incarnation's processes together, in one short line."""
    base, why = _base()
    if base is not None:
        return f"cgroup v2 per incarnation (under {why})"
    return f"process group + session + marker ({why}; an env -i + setsid escapee is not seen)"


def run_cgroup(run_id: str) -> Cgroup | None:
    """The cgroup of a run of procrunner started from this cgroup; None without cgroups."""
    base, _ = _base()
    return None if base is None else Cgroup(base / f"{RUN_CGROUP_PREFIX}{run_id}")


def incarnation_cgroup(run_id: str, label: str) -> Cgroup | None:
    """A new cgroup for one incarnation (``web.1#3`` -> ``procrunner-RUN/web.1-3``); None
    where none can be had (the fallback containment is then in force)."""
    run = run_cgroup(run_id)
    if run is None:
        return None
    path = run.path / label.replace("#", "-")
    try:
        with contextlib.suppress(FileExistsError):
            run.path.mkdir()
        path.mkdir()
    except OSError:
        return None
    return Cgroup(path)


def find_run_cgroups(run_id: str) -> list[Cgroup]:
    """Every cgroup named for ``run_id`` on this machine: where this process would put it,
    else anywhere in the v2 hierarchy (a run started from another session)."""
    own = run_cgroup(run_id)
    if own is not None and own.path.is_dir():
        return [own]
    name = f"{RUN_CGROUP_PREFIX}{run_id}"
    found = []
    for mount in _cgroup2_mounts():
        for folder, dirs, _ in os.walk(mount):
            if name in dirs:
                found.append(Cgroup(Path(folder, name)))
            dirs[:] = [d for d in dirs if not d.startswith(RUN_CGROUP_PREFIX)]
    return found


def _cgroup2_mounts() -> list[str]:
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return []
    return [
        line.split()[4] for line in lines if line.partition(" - ")[2].startswith("cgroup2 ")
    ]
