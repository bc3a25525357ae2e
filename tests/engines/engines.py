"""The real engines for the ``engines`` tests: Debian's dockerd with its own data root and
socket, and a base image made without any registry (``debootstrap`` from Debian's mirror,
then ``docker import``), cached between runs.

Where an engine cannot start the tests skip with the reason, except under ``CI=true``, where
that is a failure: CI must test what it claims to.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest

DATA_ROOT = Path("/var/lib/procrunner-docker")
EXEC_ROOT = Path("/run/procrunner-docker-exec")
SOCKET = Path("/run/procrunner-docker.sock")
CACHE = Path("/var/cache/procrunner-engines")
MIRROR = "http://deb.debian.org/debian"
# python (as the official python image has it: `python`, pip, no PEP 668 marker) and systemd
PACKAGES = ("python3", "python3-pip", "python-is-python3", "systemd", "systemd-sysv")
BASE_IMAGE = "procrunner-test/base:" + hashlib.sha256(
    " ".join(PACKAGES).encode()).hexdigest()[:12]
DAEMON_START_SECONDS = 60.0
COMMAND_SECONDS = 300.0
T = TypeVar("T")


def unavailable(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"engine unavailable under CI: {reason}")
    pytest.skip(reason)


@dataclass(frozen=True)
class Docker:
    """A client of the tests' own dockerd."""

    env: dict[str, str]

    def run(self, *args: str, check: bool = True, timeout: float = COMMAND_SECONDS,
            cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(list(args), env=self.env, cwd=cwd, capture_output=True,
                                text=True, timeout=timeout, stdin=subprocess.DEVNULL)
        if check and result.returncode != 0:
            raise AssertionError(f"{' '.join(args)} -> {result.returncode}\n"
                                 f"{result.stdout}{result.stderr}")
        return result

    def docker(self, *args: str, check: bool = True) -> str:
        return self.run("docker", *args, check=check).stdout.strip()


def _answers(env: dict[str, str]) -> bool:
    return subprocess.run(["docker", "version"], env=env, capture_output=True,
                          timeout=30).returncode == 0


def _missing(programs: Sequence[str]) -> list[str]:
    return [p for p in programs if shutil.which(p) is None]


@contextlib.contextmanager
def dockerd() -> Iterator[Docker]:
    if os.geteuid() != 0:
        unavailable("dockerd needs root")
    missing = _missing(("dockerd", "docker", "docker-compose", "debootstrap"))
    if missing:
        unavailable(f"not installed: {', '.join(missing)} (apt-get install docker.io "
                    "docker-compose debootstrap)")
    env = {**os.environ, "DOCKER_HOST": f"unix://{SOCKET}"}
    env.pop("DOCKER_CONTEXT", None)
    DATA_ROOT.mkdir(parents=True, exist_ok=True)
    log = (CACHE / "dockerd.log")
    CACHE.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as out:
        daemon = subprocess.Popen(
            ["dockerd", "--data-root", str(DATA_ROOT), "--exec-root", str(EXEC_ROOT),
             "--pidfile", "/run/procrunner-docker.pid", "--host", f"unix://{SOCKET}"],
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True)
    try:
        deadline = time.monotonic() + DAEMON_START_SECONDS
        while not _answers(env):
            if daemon.poll() is not None or time.monotonic() > deadline:
                tail = log.read_text(errors="replace").strip().splitlines()[-3:]
                unavailable(f"dockerd did not start: {' / '.join(tail)}")
            time.sleep(0.2)
        yield Docker(env)
    finally:
        if daemon.poll() is None:
            daemon.send_signal(signal.SIGTERM)
            try:
                daemon.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(daemon.pid, signal.SIGKILL)
                daemon.wait(10)


def _remove_root(root: Path) -> None:
    """A debootstrap stopped midway leaves /proc mounted in its root: unmount, then remove."""
    prefix = f"{root}/"
    with open("/proc/self/mounts", encoding="utf-8") as mounts:
        inside = [line.split()[1] for line in mounts if line.split()[1].startswith(prefix)]
    for mount_point in sorted(inside, reverse=True):
        subprocess.run(["umount", "--lazy", mount_point], check=False, timeout=60)
    shutil.rmtree(root, ignore_errors=True)


def base_image(docker: Docker) -> str:
    """Debian 12 with python and systemd, as a local image: built once, then cached as a
    tarball (for a new data root) and in the data root."""
    if docker.docker("images", "-q", BASE_IMAGE):
        return BASE_IMAGE
    tarball = CACHE / f"{BASE_IMAGE.rpartition(':')[2]}.tar"
    if not tarball.exists():
        root = CACHE / "rootfs"
        try:
            _remove_root(root)  # what an interrupted build left
            result = docker.run("debootstrap", "--variant=minbase",
                                f"--include={','.join(PACKAGES)}", "bookworm", str(root), MIRROR,
                                check=False, timeout=900)
            if result.returncode != 0:
                last = (result.stdout + result.stderr).strip().splitlines()[-1:]
                unavailable(f"debootstrap failed: {' '.join(last)}")
            for marker in root.glob("usr/lib/python3*/EXTERNALLY-MANAGED"):
                marker.unlink()  # pip installs into the image's python, as in python:3-slim
            partial = tarball.with_suffix(".partial")
            docker.run("tar", "-C", str(root), "-cf", str(partial), ".")
            partial.rename(tarball)
        finally:
            _remove_root(root)
    docker.run("docker", "import", "--change", 'CMD ["/bin/bash"]', str(tarball), BASE_IMAGE)
    return BASE_IMAGE


APP = Path(__file__).parent / "app"
UP_SECONDS = 60.0


def export(*args: str) -> str:
    """``procrunner export ARGS``; its stderr (the warnings)."""
    result = subprocess.run([sys.executable, "-m", "procrunner", "export", *args],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stderr


def get(port: str | int, path: str = "/", host: str = "127.0.0.1") -> dict[str, Any]:
    with urllib.request.urlopen(f"http://{host}:{port}{path}", timeout=5) as response:
        answer: dict[str, Any] = json.loads(response.read())
    return answer


def until(what: str, attempt: Callable[[], T | None], seconds: float = UP_SECONDS) -> T:
    """Poll ``attempt`` until it gives a value (an OSError counts as not yet), bounded."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            value = attempt()
        except OSError:
            value = None
        if value is not None:
            return value
        assert time.monotonic() < deadline, f"not within {seconds:g} s: {what}"
        time.sleep(0.2)
