"""G7 and the dashboard, from the hostile side: where the control socket lives and who can
reach it, what another local user can plant on its path, and the dashboard's listening
address. Permission cases run the other user as ``nobody`` (root only; skipped otherwise),
with /usr/bin/python3 and the standard library, since the project's venv is not theirs."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from procrunner.control.socketpath import socket_path
from tests.control.formation import formation
from tests.control.test_connection_flood import PS_WITHIN
from tests.harness import App, kid, wait_until
from tests.test_dashboard import Page

AS_ROOT = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("setpriv") is None,
    reason="needs root and setpriv to run the hostile side as another user",
)


def as_nobody(code: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Python code run as ``nobody``; it prints what it saw."""
    return subprocess.run(
        ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
         "/usr/bin/python3", "-I", "-c", code, *args],
        capture_output=True, text=True, timeout=30, env={"PATH": "/usr/bin:/bin"},
    )


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """A private folder with a short path (socket paths are limited to 107 bytes)."""
    path = Path(tempfile.mkdtemp(prefix="pr-sec-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def shared_dir(short_dir: Path) -> Path:
    """A world-writable sticky folder, like /tmp: where another user can plant things."""
    short_dir.chmod(0o1777)
    return short_dir


def socket_inodes(pid: int) -> set[str]:
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        with contextlib.suppress(OSError):
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    return inodes


def unix_paths(inodes: set[str]) -> list[str]:
    """The bound paths of these Unix sockets (``@name`` for an abstract one)."""
    paths = []
    for line in Path("/proc/net/unix").read_text().splitlines()[1:]:
        fields = line.split()
        if len(fields) >= 8 and fields[6] in inodes:
            paths.append(fields[7])
    return paths


def serving(app: App, *args: str) -> None:
    app.procfile(f"worker: {kid('sleep')}\n")
    run = app.start(*args)
    run.wait_for(r"worker\.1 +\| ready")


def stop_all(app: App) -> None:
    for run in app.runs:
        run.signal(signal.SIGINT)
        run.finish()


@pytest.mark.parametrize("where", ["default", "xdg"])
def test_the_socket_is_0600_in_a_0700_folder_and_never_abstract(
    app: App, short_dir: Path, where: str
) -> None:
    app.env.pop("XDG_RUNTIME_DIR", None)
    if where == "xdg":
        app.env["XDG_RUNTIME_DIR"] = str(short_dir)  # ours, 0700: valid
        expected = short_dir / "procrunner"
    else:
        app.env["TMPDIR"] = str(short_dir)
        expected = short_dir / f"procrunner-{os.getuid()}"
    serving(app)
    path = socket_path(app.root.resolve(), None, app.env)
    assert path.parent == expected
    for each, mode in ((path, 0o600), (path.parent, 0o700)):
        info = each.lstat()
        assert (oct(info.st_mode & 0o777), info.st_uid) == (oct(mode), os.getuid())
    bound = unix_paths(socket_inodes(app.runs[0].proc.pid))
    assert str(path) in bound
    assert not [p for p in bound if p.startswith("@")], bound  # no abstract namespace
    stop_all(app)


@pytest.mark.parametrize("kind", ["mode-0755", "symlink", "relative", "file", "other-owner"])
def test_an_unfit_xdg_runtime_dir_is_not_used(short_dir: Path, kind: str) -> None:
    runtime = short_dir / "runtime"
    runtime.mkdir(mode=0o700)
    given = str(runtime)
    if kind == "mode-0755":
        runtime.chmod(0o755)
    elif kind == "symlink":  # regression: a symlinked XDG_RUNTIME_DIR was followed (stat)
        given = str(short_dir / "link")
        os.symlink(runtime, given)
    elif kind == "relative":
        given = os.path.relpath(runtime)
    elif kind == "file":
        runtime.rmdir()
        runtime.write_text("")
        runtime.chmod(0o700)
    elif os.geteuid() == 0:
        os.chown(runtime, 65534, 65534)
    else:
        pytest.skip("needs root to give the folder to another user")
    env = {"XDG_RUNTIME_DIR": given, "TMPDIR": str(short_dir)}
    path = socket_path(Path("/app"), None, env)
    assert path.parent == short_dir / f"procrunner-{os.getuid()}"


@AS_ROOT
def test_another_user_cannot_reach_the_default_socket(app: App, short_dir: Path) -> None:
    app.env.pop("XDG_RUNTIME_DIR", None)
    short_dir.chmod(0o755)  # they may look in, not into procrunner's own 0700 folder
    app.env["TMPDIR"] = str(short_dir)
    serving(app)
    path = socket_path(app.root.resolve(), None, app.env)
    connect = (
        "import socket,sys\ns=socket.socket(socket.AF_UNIX)\n"
        "try:\n s.connect(sys.argv[1]); print('connected', s.recv(100))\n"
        "except OSError as e: print(type(e).__name__)"
    )
    assert as_nobody(connect, str(path)).stdout.strip() == "PermissionError"
    stop_all(app)


PLANT = """
import os, sys
kind, where, target = sys.argv[1:]
os.mkdir(target, 0o777)
if kind == "folder-owned-by-them":
    os.mkdir(where, 0o700)
else:
    os.symlink(target, where)
print("planted")
"""


@AS_ROOT
@pytest.mark.parametrize(
    "kind", ["symlink-at-socket", "symlink-at-folder", "folder-owned-by-them"]
)
def test_what_another_user_plants_on_the_socket_path_is_refused_and_untouched(
    app: App, shared_dir: Path, kind: str
) -> None:
    app.env.pop("XDG_RUNTIME_DIR", None)
    app.env["TMPDIR"] = str(shared_dir)
    target = shared_dir / "theirs"
    args: tuple[str, ...] = ()
    if kind == "symlink-at-socket":
        where = shared_dir / "control.sock"
        args = ("--socket", str(where))
    else:
        where = shared_dir / f"procrunner-{os.getuid()}"
    planted = as_nobody(PLANT, kind, str(where), str(target))
    assert planted.stdout.strip() == "planted", planted.stderr
    app.procfile(f"worker: {kid('sleep')}\n")
    result = app.cli("start", *args)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert re.search(r"refusing to (use|replace) it", result.stderr), result.stderr
    assert os.listdir(target) == []  # nothing created or bound through the trap


def test_a_too_long_default_socket_path_is_a_clear_error_for_start_and_clients(
    app: App, short_dir: Path
) -> None:
    """Regression (client_with_too_long_socket_path): ``ps`` said "cannot connect: None"."""
    runtime = short_dir / ("r" * 100)
    runtime.mkdir(mode=0o700)
    app.env["XDG_RUNTIME_DIR"] = str(runtime)
    app.procfile(f"worker: {kid('sleep')}\n")
    for command in ("start", "ps"):
        result = app.cli(command)
        assert result.returncode == 2, (command, result.stderr)
        assert "over the 107-byte limit of Unix sockets" in result.stderr
        assert len(result.stderr.splitlines()) == 1


NO_TOKEN = """
import sys, urllib.error, urllib.request
for path in ("/", "/events", "/ps"):
    try:
        urllib.request.urlopen(sys.argv[1] + path, timeout=10)
        print(path, "open")
    except urllib.error.HTTPError as e:
        print(path, e.code)
"""


def test_the_dashboard_listens_on_loopback_only(app: App) -> None:
    serving(app, "--dashboard")
    url = app.runs[0].wait_for(r"dashboard on (http://[^/]+)")[1]
    listening = [
        c.laddr for c in psutil.Process(app.runs[0].proc.pid).net_connections("inet")
        if c.status == psutil.CONN_LISTEN
    ]
    assert listening and all(a.ip in ("127.0.0.1", "::1") for a in listening), listening
    for address in _own_addresses():  # and not on another address of this machine
        with socket.socket() as probe:
            probe.settimeout(5)
            assert probe.connect_ex((address, listening[0].port)) != 0, address
    if os.geteuid() == 0 and shutil.which("setpriv"):  # another local user, without the token
        seen = as_nobody(NO_TOKEN, url).stdout.split("\n")
        assert seen[:3] == ["/ 403", "/events 403", "/ps 403"], seen
    stop_all(app)


def _own_addresses() -> list[str]:
    return [
        a.address for addresses in psutil.net_if_addrs().values() for a in addresses
        if a.family == socket.AF_INET and not a.address.startswith("127.")
    ]


# Run as ``nobody``: hold COUNT idle connections to the dashboard (no token needed to connect)
# until told to let go (standard input closes).
HOLD = """
import socket, sys
port, count = int(sys.argv[1]), int(sys.argv[2])
held = [socket.create_connection(("127.0.0.1", port)) for _ in range(count)]
print("holding", len(held), flush=True)
sys.stdin.read()
"""


@pytest.mark.slow
@AS_ROOT
def test_regression_another_users_flood_of_the_dashboard_does_not_lock_the_owner_out(
    app: App,
) -> None:
    """1,100 idle connections from ``nobody`` to a dashboard whose procrunner has 1,024
    descriptors: the owner's page and ``ps`` still answer within PS_WITHIN (about 0.1 s on
    an idle machine; the bound allows for busy cores), and procrunner says nothing."""
    app.procfile(f"worker: {kid('sleep')}\n")
    with formation(app, "--dashboard", files=1024) as running:
        assert wait_until(lambda: "dashboard on" in running.stdout.read_text())
        url = re.search(r"dashboard on (\S+)", running.stdout.read_text())
        assert url is not None
        page = Page(url[1])
        flooder = subprocess.Popen(
            ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
             "/usr/bin/python3", "-I", "-c", HOLD, str(page.port), "1100"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env={"PATH": "/usr/bin:/bin"},
        )
        try:
            assert flooder.stdout is not None
            assert flooder.stdout.readline() == b"holding 1100\n", flooder.stderr
            started = time.monotonic()
            status, _, _ = page.request("GET", "/")
            page_took = time.monotonic() - started
            started = time.monotonic()
            assert "worker.1" in app.cli("ps").stdout
            ps_took = time.monotonic() - started
        finally:
            flooder.communicate(timeout=30)
    assert status == 200
    assert page_took < PS_WITHIN and ps_took < PS_WITHIN, (page_took, ps_took)
    assert running.stderr.read_text() == ""
    assert "Traceback" not in running.output()
