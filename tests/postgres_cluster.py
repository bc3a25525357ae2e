"""A throwaway PostgreSQL server for the demo's tests: Debian's ``initdb`` and ``pg_ctl`` make a
cluster in a temporary folder, owned by the ``postgres`` user when the tests run as root
(the server refuses to run as root), listening on a free loopback port only, with a password.
``postgres_cluster`` is one per test session; ``new_database()`` gives each test its own, and
a test that takes ``demo_database_url`` runs on SQLite and on PostgreSQL.

Without Debian's ``postgresql`` package or psycopg the tests that need it skip with the reason,
except under ``CI=true``, where that is a failure: CI must test what it claims to.
"""

from __future__ import annotations

import glob
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

SERVER_USER = "postgres"
START_SECONDS = 60
COMMAND_SECONDS = 120.0


def unavailable(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"PostgreSQL unavailable under CI: {reason}")
    pytest.skip(reason)


def free_loopback_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Cluster:
    """A running cluster: ``pg_ctl start`` done, ``stop()`` removes every trace."""

    def __init__(self, bin_dir: Path, folder: Path, owner: pwd.struct_passwd | None) -> None:
        self.bin_dir = bin_dir
        self.folder = folder
        self.owner = owner
        self.data = folder / "data"
        self.port = free_loopback_port()
        self.password = secrets.token_hex(12)
        self.databases = 0

    def _run(self, program: str, *args: str) -> None:
        owner = self.owner
        result = subprocess.run(
            [str(self.bin_dir / program), *args],
            user=owner.pw_uid if owner else None,
            group=owner.pw_gid if owner else None,
            extra_groups=[] if owner else None,
            cwd=self.folder,
            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C.UTF-8"},
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=COMMAND_SECONDS,
        )
        if result.returncode != 0:
            log = self.folder / "server.log"
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise AssertionError(f"{program} {' '.join(args)} -> {result.returncode}\n"
                                 f"{result.stdout}{result.stderr}{tail}")

    def start(self) -> None:
        (self.folder / "password").write_text(self.password + "\n")
        self._run("initdb", "-D", str(self.data), "-U", "demo", "--pwfile=password",
                  "--auth=scram-sha-256", "--encoding=UTF8", "--no-sync")
        options = (f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.folder} "
                   "-c fsync=off -c max_connections=200")
        self._run("pg_ctl", "-D", str(self.data), "-l", "server.log", "-w", "-t",
                  str(START_SECONDS), "-o", options, "start")

    def stop(self) -> None:
        try:
            if (self.data / "postmaster.pid").exists():
                self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)

    def url(self, database: str) -> str:
        return f"postgresql://demo:{self.password}@127.0.0.1:{self.port}/{database}"

    def new_database(self, encoding: str = "UTF8") -> str:
        """A new, empty database; its URL (with the password)."""
        import psycopg

        self.databases += 1
        name = f"demo{self.databases}"
        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name} ENCODING '{encoding}' TEMPLATE template0")
        return self.url(name)


def server_programs() -> Path:
    """The newest installed version's bin folder (``/usr/lib/postgresql/15/bin``)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"),
                   key=lambda path: int(Path(path).parts[-3]))
    if not found:
        unavailable("PostgreSQL is not installed (apt-get install postgresql)")
    return Path(found[-1]).parent


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[Cluster]:
    try:
        import psycopg  # noqa: F401
    except ImportError:
        unavailable("psycopg is not installed (pip install -e '.[postgres]')")
    bin_dir = server_programs()
    owner = None
    if os.geteuid() == 0:
        try:
            owner = pwd.getpwnam(SERVER_USER)
        except KeyError:
            unavailable(f"no {SERVER_USER} user to run the server as (it refuses root)")
    folder = Path(tempfile.mkdtemp(prefix="procrunner-pg-"))
    if owner:
        os.chown(folder, owner.pw_uid, owner.pw_gid)
    cluster = Cluster(bin_dir, folder, owner)
    try:
        cluster.start()
    except BaseException:
        cluster.stop()
        raise
    yield cluster
    cluster.stop()


# PostgreSQL doubles the database tests and starts a server: the slow run (CI) takes it
@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.slow)])
def demo_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A test that takes it runs twice: on a new SQLite file, and on a new PostgreSQL
    database of the session's cluster. Its DATABASE_URL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'demo.sqlite3'}"
    cluster: Cluster = request.getfixturevalue("postgres_cluster")
    return cluster.new_database()
