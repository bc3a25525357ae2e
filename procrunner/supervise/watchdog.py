"""The watchdog: takes a run's processes down if procrunner itself dies, even by SIGKILL.

procrunner starts the watchdog in a session of its own (so terminal signals do not reach it)
and holds the write end of a pipe to its stdin. It tells the watchdog each process group it
starts (``+ PGID CREATE_TIME``) and ends (``- PGID``), what to clean up after it (``scratch
DIR`` and ``socket PATH``), and writes ``done`` before a clean exit. While procrunner lives,
the watchdog is a ``/bin/sh`` loop (``_KEEPER``) that keeps what it was told: a few hundred KiB
where a Python process costs megabytes, and no Python start competing with the instances'.
End of file without ``done`` means procrunner died: the shell then execs
``python -m procrunner.supervise.watchdog RUN_ID TIMEOUT`` (this module's ``main``) with what
it kept as input, which stops every process in the run's cgroups, carrying the run's marker,
or in a group it was told of (leader still alive with the same create time), with TERM, the
timeout, then the cgroups frozen and killed and KILL for the rest; it then removes the run's
cgroups, scratch and socket.
A parent-death signal alone would not do: it reaches only the direct child, not its tree.
"""

from __future__ import annotations

import os
import signal
import sys

from procrunner.markers import WATCHDOG_MODULE

# The helper process runs this module too, and starts faster without importing typing and
# subprocess: the latter is imported where procrunner's side uses it.
TYPE_CHECKING = False
if TYPE_CHECKING:
    import subprocess
    from collections.abc import Mapping
    from pathlib import Path
    from types import TracebackType

    import psutil


# The watchdog while procrunner lives: keeps the live groups (a ``- PGID`` removes its
# ``+ PGID`` line) and the paths; at end of file without ``done`` it hands them to ``main``.
# $0 names the module (how tests and the dead-run proof recognise a watchdog); $1 is the
# Python, $2 the run id, $3 the stop timeout.
_KEEPER = """trap '' INT HUP
nl='
'
told=$nl
while IFS= read -r line; do
    case $line in
    done) exit 0 ;;
    '+ '*) told=$told$line$nl ;;
    '- '*)
        group="$nl+ ${line#- } "
        case $told in *"$group"*)
            after=${told#*"$group"}
            told=${told%%"$group"*}$nl${after#*"$nl"} ;;
        esac ;;
    'scratch '*) scratch=$line ;;
    'socket '*) socket=$line ;;
    esac
done
exec "$1" -m "$0" "$2" "$3" <<TOLD
${told#"$nl"}${scratch:+$scratch$nl}${socket:+$socket$nl}
TOLD
"""


class Watchdog:
    """procrunner's side: start the helper, keep it informed, release it on a clean exit."""

    def __init__(self, run_id: str, stop_timeout: float) -> None:
        import subprocess

        # Set once the first instance may be spawned: from then on, leaving without release()
        # means something went wrong, and the helper takes the run down.
        self.armed = False
        self._run_id = run_id
        read_end, self._write_end = os.pipe()
        try:
            self._proc: subprocess.Popen[bytes] = subprocess.Popen(
                [
                    "/bin/sh",
                    "-c",
                    _KEEPER,
                    WATCHDOG_MODULE,
                    sys.executable,
                    run_id,
                    str(stop_timeout),
                ],
                stdin=read_end,
                stdout=subprocess.DEVNULL,
                start_new_session=True,
            )
        except OSError as exc:  # EAGAIN: at the process limit (ulimit -u); EMFILE...
            from procrunner.errors import MachineLimit

            os.close(self._write_end)
            raise MachineLimit(f"cannot start the watchdog: {exc.strerror}{_hint(exc)}") from None
        finally:
            os.close(read_end)

    @property
    def pid(self) -> int:
        return self._proc.pid

    def track(self, pgid: int, create_time: float) -> None:
        self._send(f"+ {pgid} {create_time!r}\n")

    def untrack(self, pgid: int) -> None:
        self._send(f"- {pgid}\n")

    def leaves(self, scratch: Path, socket: Path) -> None:
        """What a dead procrunner leaves behind for the watchdog to remove: the run's scratch
        directory (its lock beside it) and its control socket."""
        self._send(f"scratch {os.fsencode(scratch).hex()}\nsocket {os.fsencode(socket).hex()}\n")

    def release(self) -> None:
        """A clean exit: everything is stopped, the watchdog has nothing to do but remove
        the run's (empty) cgroups."""
        from procrunner import platform

        self._send("done\n")
        self.close()
        run_cgroup = platform.run_cgroup(self._run_id)
        if run_cgroup is not None:
            run_cgroup.remove()

    def close(self) -> None:
        import subprocess

        if self._write_end >= 0:
            os.close(self._write_end)
            self._write_end = -1
            try:
                self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()

    def __enter__(self) -> Watchdog:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.armed:
            self.close()
        else:  # nothing was ever started: no reason to sweep the machine for the run's marker
            self.release()

    def _send(self, text: str) -> None:
        if self._write_end < 0:
            return
        try:
            os.write(self._write_end, text.encode())
        except BrokenPipeError:  # the watchdog is gone; procrunner still cleans up itself
            os.close(self._write_end)
            self._write_end = -1


def _hint(exc: OSError) -> str:
    import errno

    if exc.errno == errno.EAGAIN:
        return " (the process limit, ulimit -u?)"
    return " (the descriptor limit, ulimit -n?)" if exc.errno == errno.EMFILE else ""


class _Told:
    """What procrunner told the helper: its groups, and what to remove if it dies."""

    def __init__(self) -> None:
        self.groups: dict[int, float] = {}
        self.paths: dict[bytes, str] = {}
        self.clean = False


def _listen() -> _Told:
    told = _Told()
    for raw in sys.stdin.buffer:
        fields = raw.split()
        if fields[:1] == [b"+"] and len(fields) == 3:
            told.groups[int(fields[1])] = float(fields[2])
        elif fields[:1] == [b"-"] and len(fields) == 2:
            told.groups.pop(int(fields[1]), None)
        elif fields[:1] in ([b"scratch"], [b"socket"]) and len(fields) == 2:
            told.paths[fields[0]] = os.fsdecode(bytes.fromhex(fields[1].decode()))
        elif fields == [b"done"]:
            told.clean = True
            break
    return told


def take_down(
    run_id: str, since: float = 0.0, *, groups: Mapping[int, float], timeout: float
) -> int:
    """Stop the run's processes (in its cgroups, or started at ``since`` or later with its
    marker) and the members of its known groups: TERM and CONT, ``timeout``, then the
    cgroups frozen and killed and KILL for the rest; the cgroups are then removed. Also what
    the next start does for a run whose watchdog died."""
    import psutil

    from procrunner import platform
    from procrunner.supervise import tree

    cgroups = platform.find_run_cgroups(run_id)
    found = {p.pid: p for p in tree.run_members(run_id, since, cgroups)}
    for pgid, create_time in groups.items():
        try:
            leader_alive = psutil.Process(pgid).create_time() == create_time
        except psutil.Error:
            leader_alive = False
        if not leader_alive:  # the group id may have been reused: trust only the marker
            continue
        for proc in tree.members(pgid, marker="", since=create_time):
            found.setdefault(proc.pid, proc)
    procs = list(found.values())
    for sig in (signal.SIGTERM, signal.SIGCONT):
        tree.send(procs, sig)
    alive = _wait_gone(procs, timeout)
    for cgroup in cgroups:
        cgroup.kill(2.0)
    tree.send(alive, signal.SIGKILL)
    _wait_gone(alive, 2.0)
    for cgroup in cgroups:
        if (trouble := cgroup.remove()) is not None:
            sys.stderr.write(f"procrunner watchdog: {trouble}\n")
    return len(procs)


def _wait_gone(procs: list[psutil.Process], timeout: float) -> list[psutil.Process]:
    """``tree.wait_gone`` outside an event loop; polled when there is no descriptor left
    for a loop (procrunner may have died at its descriptor limit, which this inherits)."""
    import asyncio
    import time

    from procrunner.supervise import tree

    if not procs:
        return []
    try:
        return asyncio.run(tree.wait_gone(procs, timeout))
    except OSError:
        deadline = time.monotonic() + timeout
        while (alive := [p for p in procs if tree.alive(p)]) and time.monotonic() < deadline:
            time.sleep(0.05)
        return alive


def _remove_leftovers(paths: Mapping[bytes, str]) -> list[str]:
    """The dead run's scratch (and lock) and its socket, if still the dead run's; the
    problems, one line each."""
    from pathlib import Path

    from procrunner.scratch.space import remove_run_scratch

    problems = []
    if b"scratch" in paths:
        problems += remove_run_scratch(Path(paths[b"scratch"]))
    if b"socket" in paths:
        problems += _remove_stale_socket(Path(paths[b"socket"]))
    return problems


def _remove_stale_socket(path: Path) -> list[str]:
    """Unlink a control socket nobody answers on any more (a successor's is left alone)."""
    import socket
    import stat

    try:
        if not stat.S_ISSOCK(path.lstat().st_mode):
            return []
        with socket.socket(socket.AF_UNIX) as probe:
            probe.connect(str(path))
        return []  # someone listens there now
    except FileNotFoundError:
        return []
    except ConnectionRefusedError:
        pass
    except OSError as exc:
        return [f"{path}: socket not removed: {exc.strerror}"]
    try:
        path.unlink()
    except OSError as exc:
        return [f"{path}: socket not removed: {exc.strerror}"]
    return []


def main(argv: list[str]) -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    run_id, timeout = argv[0], float(argv[1])
    told = _listen()
    if told.clean:
        return 0
    count = take_down(run_id, groups=told.groups, timeout=timeout)
    if count:
        sys.stderr.write(
            f"procrunner watchdog: procrunner died; stopped its {count} remaining processes\n"
        )
    for problem in _remove_leftovers(told.paths):
        sys.stderr.write(f"procrunner watchdog: {problem}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
