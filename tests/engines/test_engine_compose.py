"""The exported Compose file on Debian 12's docker-compose 1.29 and dockerd: ``docker build``
with the exported Dockerfile, then ``up``: the release step first, web replicas answering on
their 127.0.0.1 ports, a killed container back with an empty /scratch, ``down`` in about a
second."""

from __future__ import annotations

import os
import shutil
import signal
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import psutil
import pytest
from engines import APP, Docker, export, get, until

# the first test also waits for the session's base image: debootstrap, once per machine
pytestmark = [pytest.mark.engines, pytest.mark.timeout(900)]

PROJECT = "procrunner-engines"
IMAGE = "procrunner-test/app:1"
GRACE = 10  # --timeout: a stop that waits it out is plainly told from one that does not
DOWN_SECONDS = 4.0


@pytest.fixture
def project(docker: Docker, base: str, tmp_path: Path) -> Iterator[Path]:
    root = tmp_path / "app"
    shutil.copytree(APP, root)
    out = tmp_path / "out"
    export("compose", str(out), "-d", str(root), "-m", "web=2", "--restart", "web=always",
           "-t", f"{GRACE}s", "--image", IMAGE, "--dockerfile", "--base-image", base)
    docker.docker("build", "-q", "-f", str(out / "Dockerfile"), "-t", IMAGE, str(root))
    try:
        yield out
    finally:
        docker.run("docker-compose", "-p", PROJECT, "down", "-t", "1", cwd=out, check=False)


def containers(docker: Docker, service: str) -> list[str]:
    return docker.docker("ps", "-aq", "--filter", f"label=com.docker.compose.project={PROJECT}",
                         "--filter", f"label=com.docker.compose.service={service}").split()


def host_port(docker: Docker, container: str) -> str | None:
    published = docker.docker("port", container, check=False)  # 5100/tcp -> 127.0.0.1:49153
    if not published:
        return None
    address = published.splitlines()[0].rpartition(" -> ")[2]
    assert address.startswith("127.0.0.1:"), published  # not on every interface
    return address.rpartition(":")[2]


def inspect_time(docker: Docker, container: str, field: str) -> datetime:
    text = docker.docker("inspect", "-f", f"{{{{.State.{field}}}}}", container)
    return datetime.fromisoformat(text[:26].rstrip("Z"))


def test_compose_up_runs_release_first_then_replicas_that_restart_with_empty_scratch_and_down_is_quick(  # noqa: E501
    docker: Docker, project: Path
) -> None:
    docker.run("docker-compose", "-p", PROJECT, "up", "-d", cwd=project)
    webs = until("two web containers", lambda: c if len(c := containers(docker, "web")) == 2
                 else None)
    ports = {c: until(f"{c} published", lambda c=c: host_port(docker, c)) for c in webs}
    answers = {c: until(f"{c} answers", lambda p=p: get(p)) for c, p in ports.items()}
    assert len({a["host"] for a in answers.values()}) == 2  # two replicas, one each
    assert all(a["greeting"] == "hello from the env file" for a in answers.values())

    (release,) = containers(docker, "release")
    assert docker.docker("inspect", "-f", "{{.State.ExitCode}}", release) == "0"
    assert "release step done" in docker.docker("logs", release)
    finished = inspect_time(docker, release, "FinishedAt")
    assert all(inspect_time(docker, c, "StartedAt") >= finished for c in webs)

    victim = webs[0]
    assert get(ports[victim], "/mark")["scratch"] == ["mark"]
    leader = int(docker.docker("inspect", "-f", "{{.State.Pid}}", victim))  # docker-init
    (program,) = psutil.Process(leader).children()
    os.kill(program.pid, signal.SIGKILL)
    back = until("the killed web container back", lambda: p if (p := host_port(
        docker, victim)) and get(p)["pid"] is not None and docker.docker(
        "inspect", "-f", "{{.RestartCount}}", victim) == "1" else None)
    assert get(back)["scratch"] == []  # a new tmpfs: the scratch does not outlive a life

    started = time.monotonic()
    docker.run("docker-compose", "-p", PROJECT, "down", cwd=project)
    took = time.monotonic() - started
    assert took < DOWN_SECONDS, f"down took {took:.1f} s (grace {GRACE} s)"
    assert containers(docker, "web") == []
