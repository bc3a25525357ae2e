"""The exported systemd units under a real systemd (252, PID 1 of a container made from the
base image): the release unit first, instances as the given user with the installed env file,
an app root under /tmp (pytest's) bound back in past PrivateTmp=, a killed instance restarted
with an empty /tmp, and the target's restart and stop."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from engines import APP, Docker, export, until

pytestmark = [pytest.mark.engines, pytest.mark.timeout(900)]

CONTAINER = "procrunner-engines-systemd"
UNIT_DIR = "/etc/systemd/system"
WEB_PORTS = (5100, 5101)  # release is first in the Procfile: web gets base + 100
STOP_SECONDS = 4.0
GRACE = 10
# systemd as PID 1 in a container; not --privileged, which asks for capabilities a sandboxed
# dockerd may not have
SYSTEMD_OPTIONS = ("--cap-add", "SYS_ADMIN", "--security-opt", "seccomp=unconfined",
                   "--security-opt", "apparmor=unconfined", "--tmpfs", "/run",
                   "--tmpfs", "/run/lock", "-v", "/sys/fs/cgroup:/sys/fs/cgroup:rw")


class Machine:
    """The container that runs systemd."""

    def __init__(self, docker: Docker) -> None:
        self.docker = docker

    def run(self, *command: str, check: bool = True) -> str:
        return self.docker.docker("exec", CONTAINER, *command, check=check)

    def show(self, unit: str, *properties: str) -> dict[str, str]:
        text = self.run("systemctl", "show", unit, *(f"-p{p}" for p in properties))
        return dict(line.split("=", 1) for line in text.splitlines())

    def get(self, port: int, path: str = "/") -> dict[str, Any] | None:
        code = ("import urllib.request, sys; sys.stdout.write(urllib.request.urlopen("
                f"'http://127.0.0.1:{port}{path}', timeout=5).read().decode())")
        text = self.run("python", "-c", code, check=False)
        return json.loads(text) if text.startswith("{") else None


@pytest.fixture
def machine(docker: Docker, base: str) -> Iterator[Machine]:
    docker.docker("rm", "-f", CONTAINER, check=False)
    docker.docker("run", "-d", "--name", CONTAINER, *SYSTEMD_OPTIONS, base,
                  "/lib/systemd/systemd")
    try:
        box = Machine(docker)
        until("systemd running", lambda: True if box.run(
            "systemctl", "is-system-running", check=False) in ("running", "degraded") else None)
        yield box
    finally:
        docker.docker("rm", "-f", CONTAINER, check=False)


def install(machine: Machine, tmp_path: Path) -> Path:
    """The app at the same absolute path inside (under /tmp), the export in UNIT_DIR."""
    root = tmp_path / "app"
    shutil.copytree(APP, root)
    out = tmp_path / "out"
    warnings = export("systemd", str(out), "-d", str(root), "--app", "shop", "-m", "web=2",
                      "--restart", "web=always", "-t", f"{GRACE}s", "--user", "app",
                      "--path", "/usr/local/bin:/usr/bin:/bin")
    assert "PrivateTmp" in warnings and "named without a folder" not in warnings
    machine.run("useradd", "--system", "app")
    machine.run("mkdir", "-p", str(root.parent))
    machine.docker.docker("cp", str(root), f"{CONTAINER}:{root}")
    for unit in out.iterdir():
        if not unit.name.startswith("."):
            machine.docker.docker("cp", str(unit), f"{CONTAINER}:{UNIT_DIR}/{unit.name}")
    machine.run("systemctl", "daemon-reload")
    return root


def web_pids(machine: Machine) -> list[str]:
    return [machine.show(f"shop-web@{p}.service", "MainPID")["MainPID"] for p in WEB_PORTS]


def test_systemd_runs_the_release_unit_then_the_instances_restarts_them_and_stops_the_target(
    machine: Machine, tmp_path: Path
) -> None:
    install(machine, tmp_path)
    machine.run("systemctl", "start", "shop.target")
    answers = [until(f"web on {p}", lambda p=p: machine.get(p)) for p in WEB_PORTS]
    uid = machine.run("id", "-u", "app")
    for answer in answers:
        assert (str(answer["user"]), answer["greeting"]) == (uid, "hello from the env file")

    release = machine.show("shop-release.service", "ActiveState", "SubState",
                           "ExecMainStatus", "ExecMainExitTimestampMonotonic")
    assert (release["SubState"], release["ExecMainStatus"]) == ("exited", "0")
    assert "release step done" in machine.run("journalctl", "-u", "shop-release", "-o", "cat")
    for port in WEB_PORTS:
        started = machine.show(f"shop-web@{port}.service", "ExecMainStartTimestampMonotonic")
        assert int(started["ExecMainStartTimestampMonotonic"]) >= int(
            release["ExecMainExitTimestampMonotonic"])

    marked = machine.get(WEB_PORTS[0], "/mark")
    assert marked is not None and "mark" in marked["scratch"]
    machine.run("systemctl", "kill", "-s", "KILL", f"shop-web@{WEB_PORTS[0]}.service")
    until("the killed instance restarted", lambda: True if machine.show(
        f"shop-web@{WEB_PORTS[0]}.service", "NRestarts")["NRestarts"] == "1" else None)
    again = until("the restarted instance answers", lambda: machine.get(WEB_PORTS[0]))
    assert "mark" not in again["scratch"]  # a new private /tmp for the new life

    before = web_pids(machine)
    machine.run("systemctl", "restart", "shop.target")
    until("new instances after the target's restart",
          lambda: True if all(p not in ("0", *before) for p in web_pids(machine)) else None)
    assert all(until(f"web on {p}", lambda p=p: machine.get(p)) for p in WEB_PORTS)

    started = time.monotonic()
    machine.run("systemctl", "stop", "shop.target")
    took = time.monotonic() - started
    assert took < STOP_SECONDS, f"stop took {took:.1f} s (grace {GRACE} s)"
    states = [machine.show(f"shop-web@{p}.service", "ActiveState")["ActiveState"]
              for p in WEB_PORTS]
    assert states == ["inactive", "inactive"]
