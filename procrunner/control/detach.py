"""``procrunner start --detach``: the formation runs on in the background, in its own session.

The settings are loaded first, so bad input is exit 2 before anything detaches. Then the
process forks: the child makes a session of its own (no terminal: no SIGHUP when the window
closes), reads /dev/null and writes its stdout and stderr to ``LOG_DIR/procrunner.log``
(rotated like the instances' files), and runs ``start`` as usual, the watchdog and cgroups
included. The starter waits on a pipe: the run writes to it once its control socket listens;
if the run ends before that, the starter prints what it wrote to its log (the one-line error)
and exits with its status.
"""

from __future__ import annotations

import dataclasses
import os
import shlex
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from procrunner.config.settings import StartSettings
from procrunner.errors import ProcrunnerError
from procrunner.scratch.space import app_digest, private_directory

RUN_LOG = "procrunner.log"  # what `start` prints, in the log folder of a detached run
READY = b"listening\n"


@dataclass(frozen=True)
class Detached:
    """In the detached run: its settings (with its log folder, no colour) and what it calls
    once its control socket listens."""

    settings: StartSettings
    listening: Callable[[], None]


def default_log_dir(root: Path, env: Mapping[str, str]) -> Path:
    """``$XDG_STATE_HOME/procrunner/logs/<app hash>``, else the same under
    ``~/.local/state`` (the XDG default): logs outlive the run, unlike the scratch."""
    state = env.get("XDG_STATE_HOME", "")
    base = Path(state) if os.path.isabs(state) else Path.home() / ".local" / "state"
    return base / "procrunner" / "logs" / app_digest(root)


def detach(settings: StartSettings, root: Path, client_flags: list[str]) -> Detached | int:
    """Fork: in the child, what it needs to run detached; in the starter, its exit status
    once the child listens (0) or has ended (its status). ``client_flags``: how the hints
    name this formation (``-d ROOT``, ``--socket PATH``)."""
    log_dir = settings.log_dir or default_log_dir(root, os.environ)
    log_path = log_dir / RUN_LOG
    try:
        log_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        if settings.log_dir is None:
            private_directory(log_dir)  # a folder of ours that only we can read
        log = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        raise ProcrunnerError(f"cannot open the log: {exc.strerror}", str(log_path)) from None
    started_at = os.fstat(log).st_size
    ready_read, ready_write = os.pipe()
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid:
        os.close(ready_write)
        os.close(log)
        return _starter(pid, ready_read, log_path, started_at, client_flags)
    os.close(ready_read)
    os.setsid()
    stdin = os.open(os.devnull, os.O_RDONLY)
    os.dup2(stdin, 0)
    os.close(stdin)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.close(log)
    style = dataclasses.replace(settings.style, color=False)  # a file, whatever the terminal
    detached = dataclasses.replace(settings, log_dir=log_dir, style=style)
    return Detached(detached, lambda: _say_listening(ready_write))


def _say_listening(ready: int) -> None:
    os.write(ready, READY)
    os.close(ready)


def _starter(pid: int, ready: int, log_path: Path, started_at: int, flags: list[str]) -> int:
    with os.fdopen(ready, "rb") as said:
        listening = said.read() == READY  # end of file first: the run has ended
    if not listening:
        _, status = os.waitpid(pid, 0)
        with log_path.open("rb") as log:
            log.seek(started_at)
            sys.stderr.write(log.read().decode(errors="replace"))
        code = os.waitstatus_to_exitcode(status)
        return 128 - code if code < 0 else code
    from procrunner.output.logfiles import KEEP, ROTATE_AT

    named = " ".join(shlex.quote(flag) for flag in flags)
    client = f"procrunner {{}}{' ' + named if named else ''}"
    print(f"procrunner: running in the background (pid {pid}); its output goes to "
          f"{log_path.parent}/ ({RUN_LOG} and one file per instance, each rotated at "
          f"{ROTATE_AT >> 20} MiB, {KEEP} kept)")
    print(f"  {client.format('attach')}: follow it (Ctrl-C detaches)   "
          f"{client.format('wait')}: until it is ready   {client.format('stop')}: end it")
    return 0
