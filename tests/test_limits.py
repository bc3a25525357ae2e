"""Bad scratch places and machine limits: one line each, never a traceback; exit 2 for bad
input, 1 for a machine limit. Limits on processes apply only to an unprivileged user, so
those cases run as ``nobody`` with a copy of what it needs in a folder it can read."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from harness import PROCRUNNER, App
from other_user import PACKAGE, readable_copy

SYSTEM_PYTHON = "/usr/bin/python3"  # outside /root, so nobody can run it


def one_line(result: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in result.stdout + result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def start(
    app: App, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*PROCRUNNER, "start", "--run-for", "0.3s", *args],
        cwd=app.root, env=env or app.env, capture_output=True, text=True, timeout=60,
    )


def test_a_scratch_root_under_a_file_is_one_line(app: App) -> None:
    app.procfile("web: sleep 1\n")
    app.write("afile", "")
    result = start(app, "--scratch-root", str(app.root / "afile" / "scratch"))
    assert result.returncode == 2
    assert one_line(result) == f"procrunner: {app.root / 'afile'}: is a file, not a folder"


@pytest.mark.parametrize("where", ["/proc/scratch", "/proc/self/scratch"])
def test_a_scratch_root_under_proc_is_one_line(app: App, where: str) -> None:
    app.procfile("web: sleep 1\n")
    result = start(app, "--scratch-root", where)
    assert result.returncode == 2
    assert "/proc/" in one_line(result)


def test_tmpdir_naming_a_missing_folder_is_one_line(app: App) -> None:
    app.procfile("web: sleep 1\n")
    env = {**app.env, "TMPDIR": str(app.root / "missing")}
    env.pop("XDG_RUNTIME_DIR", None)
    result = start(app, env=env)
    assert result.returncode == 2
    line = one_line(result)
    assert str(app.root / "missing") in line and "TMPDIR" in line


def test_a_scratch_root_without_free_inodes_is_a_machine_limit(app: App) -> None:
    full = app.root / "full"
    full.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m,nr_inodes=8", "none", str(full)],
        capture_output=True, text=True,
    )
    if mounted.returncode != 0:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI must be able to mount a tmpfs: {mounted.stderr}")
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        with pytest.raises(OSError):
            for number in range(100):
                (full / f"f{number}").touch()
        app.procfile("web: sleep 1\n")
        result = start(app, "--scratch-root", str(full / "scratch"))
        assert result.returncode == 1
        assert "No space left on device" in one_line(result)
    finally:
        subprocess.run(["umount", str(full)], check=True)


@pytest.fixture
def nobody_app() -> Iterator[Path]:
    """An app folder and a copy of procrunner and its third-party imports, readable by
    nobody."""
    if os.geteuid() != 0 or shutil.which("setpriv") is None or not Path(SYSTEM_PYTHON).exists():
        if os.environ.get("CI") == "true":
            pytest.fail("CI runs as root with setpriv and a system Python")
        pytest.skip("needs root, setpriv and a system Python to run as nobody")
    shared = Path(tempfile.mkdtemp(prefix="procrunner-limits-"))
    (shared / "app").mkdir()
    (shared / "app" / "Procfile").write_text("web: sleep 1\n")
    imports = [Path(module.__file__ or "").parent for module in (psutil, __import__("dotenv"))]
    readable_copy(shared / "lib", *imports, PACKAGE)  # the clone may be out of nobody's reach
    readable_copy(shared)
    yield shared
    shutil.rmtree(shared)


def as_nobody(shared: Path, limit: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(shared / "lib")}
    return subprocess.run(
        ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "prlimit", limit,
         SYSTEM_PYTHON, "-m", "procrunner", "start", "--run-for", "0.3s", *args],
        cwd=shared / "app", env=env, capture_output=True, text=True, timeout=60,
    )


def test_an_unwritable_scratch_root_is_one_line(nobody_app: Path) -> None:
    root = nobody_app / "root-only"
    root.mkdir(mode=0o755)
    result = as_nobody(nobody_app, "--nofile=1024", "--scratch-root", str(root / "scratch"))
    assert result.returncode == 2
    assert "Permission denied" in one_line(result)


@pytest.mark.parametrize("processes", ["1", "2"])
def test_a_process_limit_too_low_for_the_watchdog_or_a_thread_is_one_line(
    nobody_app: Path, processes: str
) -> None:
    """1: the watchdog cannot be forked; 2: it can, but no thread can start (if other
    processes of nobody's run meanwhile, the watchdog fails instead: either is the limit)."""
    result = as_nobody(nobody_app, f"--nproc={processes}", "--scratch-root", str(nobody_app / "s"))
    assert result.returncode == 1
    assert "ulimit -u" in one_line(result)


@pytest.mark.parametrize("descriptors", ["6", "9", "12"])
def test_a_descriptor_limit_too_low_to_start_is_no_traceback(
    app: App, descriptors: str
) -> None:
    app.procfile("web: sleep 1\n")
    result = subprocess.run(
        ["prlimit", f"--nofile={descriptors}", *PROCRUNNER, "start", "--run-for", "0.3s",
         "--scratch-root", str(app.root / "scratch")],
        cwd=app.root, env=app.env, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stdout + result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) <= 1, result.stderr
