"""The watchdog: takes a run's processes down if procrunner itself dies, even by SIGKILL.

procrunner starts ``python -m procrunner.supervise.watchdog RUN_ID TIMEOUT`` in a session of its own
(so terminal signals do not reach it) and holds the write end of a pipe to its stdin. It tells
the watchdog each process group it starts (``+ PGID CREATE_TIME``) and ends (``- PGID``), and
writes ``done`` before a clean exit. End of file without ``done`` means procrunner died: the
watchdog then stops every process that carries the run's marker or belongs to a group it was
told of (leader still alive with the same create time), with TERM, the timeout, then KILL.
A parent-death signal alone would not do: it reaches only the direct child, not its tree.
"""

from __future__ import annotations

import os
import signal
import sys

# The helper process runs this module too, and starts faster without importing typing and
# subprocess: the latter is imported where procrunner's side uses it.
TYPE_CHECKING = False
if TYPE_CHECKING:
    import subprocess
    from collections.abc import Mapping
    from types import TracebackType


class Watchdog:
    """procrunner's side: start the helper, keep it informed, release it on a clean exit."""

    def __init__(self, run_id: str, stop_timeout: float) -> None:
        import subprocess

        # Set once the first instance may be spawned: from then on, leaving without release()
        # means something went wrong, and the helper takes the run down.
        self.armed = False
        read_end, self._write_end = os.pipe()
        try:
            self._proc: subprocess.Popen[bytes] = subprocess.Popen(
                [sys.executable, "-m", "procrunner.supervise.watchdog", run_id, str(stop_timeout)],
                stdin=read_end,
                stdout=subprocess.DEVNULL,
                start_new_session=True,
            )
        finally:
            os.close(read_end)

    @property
    def pid(self) -> int:
        return self._proc.pid

    def track(self, pgid: int, create_time: float) -> None:
        self._send(f"+ {pgid} {create_time!r}\n")

    def untrack(self, pgid: int) -> None:
        self._send(f"- {pgid}\n")

    def release(self) -> None:
        """A clean exit: everything is stopped, the watchdog has nothing to do."""
        self._send("done\n")
        self.close()

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


def _listen() -> tuple[dict[int, float], bool]:
    groups: dict[int, float] = {}
    for raw in sys.stdin.buffer:
        fields = raw.split()
        if fields[:1] == [b"+"] and len(fields) == 3:
            groups[int(fields[1])] = float(fields[2])
        elif fields[:1] == [b"-"] and len(fields) == 2:
            groups.pop(int(fields[1]), None)
        elif fields == [b"done"]:
            return groups, True
    return groups, False


def take_down(run_id: str, groups: Mapping[int, float], timeout: float) -> int:
    """Stop the run's marked processes and the members of its known groups: TERM and CONT,
    ``timeout``, then KILL. Also what the next start does for a run whose watchdog died."""
    import asyncio

    import psutil

    from procrunner.supervise import tree

    found = {p.pid: p for p in tree.run_members(run_id)}
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
    alive = asyncio.run(tree.wait_gone(procs, timeout))
    tree.send(alive, signal.SIGKILL)
    asyncio.run(tree.wait_gone(alive, 2.0))
    return len(procs)


def main(argv: list[str]) -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    run_id, timeout = argv[0], float(argv[1])
    groups, clean = _listen()
    if clean:
        return 0
    count = take_down(run_id, groups, timeout)
    if count:
        sys.stderr.write(
            f"procrunner watchdog: procrunner died; stopped its {count} remaining processes\n"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
