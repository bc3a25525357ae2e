"""Where a running formation's control socket lives, and the checks made before binding it.

``$XDG_RUNTIME_DIR/procrunner/`` when that directory is the user's own with mode 0700, else
``<system temp dir>/procrunner-<uid>/``; the file is named after a hash of the app root, so
``procrunner ps`` in the app's folder finds the formation that ``start`` runs there.
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import stat
from collections.abc import Mapping
from pathlib import Path

from procrunner.config.model import SOCKET_VARIABLE
from procrunner.errors import ProcrunnerError
from procrunner.scratch.space import app_digest, private_directory

MAX_PATH_BYTES = 107  # sun_path holds 108 bytes, the last a NUL


def socket_path(root: Path, explicit: Path | None, env: Mapping[str, str]) -> Path:
    """``--socket``, else ``$PROCRUNNER_SOCKET``, else the per-user default for ``root``."""
    if explicit is not None:
        return explicit.absolute()
    if env.get(SOCKET_VARIABLE):
        return Path(env[SOCKET_VARIABLE]).absolute()
    return _socket_dir(env) / f"{app_digest(root)}.sock"


def _socket_dir(env: Mapping[str, str]) -> Path:
    runtime = env.get("XDG_RUNTIME_DIR")
    if runtime and os.path.isabs(runtime):  # the XDG spec: absolute, ours, 0700 (lstat, as chg)
        with contextlib.suppress(OSError):
            info = os.lstat(runtime)
            if (stat.S_ISDIR(info.st_mode) and info.st_uid == os.getuid()
                    and stat.S_IMODE(info.st_mode) == 0o700):
                return Path(runtime) / "procrunner"
    # Inside an instance, TMPDIR is that instance's scratch dir: not where procrunner lives.
    tmpdir = env.get("TMPDIR")
    if not tmpdir or tmpdir == env.get("PROCRUNNER_SCRATCH"):
        tmpdir = "/tmp"
    return Path(tmpdir) / f"procrunner-{os.getuid()}"


def check_length(path: Path) -> None:
    size = len(os.fsencode(path))
    if size > MAX_PATH_BYTES:
        raise ProcrunnerError(
            f"the socket path is {size} bytes, over the {MAX_PATH_BYTES}-byte limit of Unix "
            "sockets; choose a shorter one with --socket",
            str(path),
        )


def bind(path: Path, root: Path, private_parent: bool) -> socket.socket:
    """A listening socket at ``path``, mode 0600 (its default folder is created 0700, or
    checked to be). A socket left by a dead procrunner is replaced; a live one is an error."""
    check_length(path)
    if private_parent:
        private_directory(path.parent)
    _clear_stale(path, root)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    previous = os.umask(0o177)  # born 0600: no moment when others could connect
    try:
        sock.bind(os.fsencode(path))
    except OSError as exc:
        sock.close()
        raise ProcrunnerError(
            f"cannot create the control socket: {exc.strerror}", str(path)
        ) from exc
    finally:
        os.umask(previous)
    sock.listen(16)
    return sock


def _clear_stale(path: Path, root: Path) -> None:
    try:
        info = path.lstat()
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(info.st_mode):
        raise ProcrunnerError(
            "exists and is not a socket (a symlink or a file?); refusing to replace it",
            str(path),
        )
    if is_live(path):
        raise ProcrunnerError(
            f"a procrunner is already running for {root} (its control socket is {path}); "
            "to run a second, independent formation, give it its own socket: "
            "--socket PATH",
            str(path),
        )
    path.unlink(missing_ok=True)


def is_live(path: Path) -> bool:
    """Whether something accepts connections at ``path`` (a dead procrunner's refuses)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        try:
            probe.connect(os.fsencode(path))
        except OSError as exc:
            if exc.errno in (errno.ECONNREFUSED, errno.ENOENT):
                return False
            raise
        return True
