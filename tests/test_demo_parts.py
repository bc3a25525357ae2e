"""The demo app's parts as real processes, on real sockets and a real database: each test that
takes ``database_url`` runs twice, on a SQLite file and on a throwaway PostgreSQL server
(``postgres_cluster.py``).

The router does not take part here: the web tests talk to one instance directly, and the
whole-formation test points PROCRUNNER_ROUTER straight at web.1 (a sticky connection).
"""

from __future__ import annotations

import http.client
import json
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from harness import App, wait_until

from procrunner.demo import jobs
from procrunner.demo.db import Database, connect
from procrunner.demo.verdict import JobFacts, Outcome, gather, render
from procrunner.demo.web import CREATED, FOUND, NOT_FOUND, Reply

RUN = "test-run"
START_TIMEOUT = 30.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def accepts(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


class Parts:
    """Starts demo parts (``python -m procrunner.demo.X``) with the test's marker; output goes
    to a file per process. Whatever is still running at the end is killed."""

    def __init__(self, app: App, url: str) -> None:
        self.app = app
        self.url = url
        self.procs: list[subprocess.Popen[bytes]] = []

    def env(self, instance: str, number: int, **extra: str) -> dict[str, str]:
        scratch = self.app.root / f"scratch-{instance}-{number}"
        scratch.mkdir()
        env = dict(self.app.env)
        env.update(
            DATABASE_URL=self.url,
            PS=instance,
            PROCRUNNER_RUN=RUN,
            PROCRUNNER_INCARNATION=f"{RUN}/{instance}#{number}",
            PROCRUNNER_SCRATCH=str(scratch),
            TMPDIR=str(scratch),
        )
        env.update(extra)
        return env

    def start(self, part: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
        name = env["PROCRUNNER_INCARNATION"].rpartition("/")[2]
        with (self.app.root / f"{name}.out").open("wb") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", f"procrunner.demo.{part}"],
                cwd=self.app.root,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        self.procs.append(proc)
        return proc

    def output(self, name: str) -> str:
        return (self.app.root / f"{name}.out").read_text()

    def web(self, port: int, number: int, **extra: str) -> subprocess.Popen[bytes]:
        proc = self.start("web", self.env("web.1", number, PORT=str(port), **extra))
        assert wait_until(lambda: accepts(port) or proc.poll() is not None, START_TIMEOUT)
        assert proc.poll() is None, self.output(f"web.1#{number}")
        return proc

    def db(self) -> Database:
        return connect(self.url)

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait(10)


@pytest.fixture
def parts(app: App, demo_database_url: str) -> Iterator[Parts]:
    started = Parts(app, demo_database_url)
    yield started
    started.stop_all()


def fetch(port: int, path: str, cookies: dict[str, str]) -> tuple[dict[str, Any], dict[str, str]]:
    """One request, as the traffic client sends it: JSON reply and the cookies it set."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        headers = {"Accept": "application/json"}
        if cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in cookies.items())
        conn.request("POST" if path == "/login" else "GET", path, headers=headers)
        response = conn.getresponse()
        assert response.status == 200
        assert response.getheader("Connection") == "close"
        set_cookies = response.headers.get_all("Set-Cookie") or []
        new = dict(header.split(";")[0].split("=", 1) for header in set_cookies)
        return json.loads(response.read()), new
    finally:
        conn.close()


def fetch_text(port: int, path: str) -> str:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path)
        return conn.getresponse().read().decode()
    finally:
        conn.close()


def stop(proc: subprocess.Popen[bytes]) -> int:
    proc.send_signal(signal.SIGTERM)
    return proc.wait(20)


# --- web -----------------------------------------------------------------------------------


def test_web_memory_and_scratch_start_over_in_a_new_incarnation_the_database_does_not(
    parts: Parts,
) -> None:
    port = free_port()
    first = parts.web(port, 1)
    counts = [fetch(port, "/json", {})[0] for _ in range(3)]
    assert [c["memory_count"] for c in counts] == [1, 2, 3]
    assert [c["scratch_count"] for c in counts] == [1, 2, 3]
    assert [c["db_count"] for c in counts] == [1, 2, 3]
    assert {(c["instance"], c["incarnation"]) for c in counts} == {("web.1", f"{RUN}/web.1#1")}

    login, cookies = fetch(port, "/login", {})
    assert (login["memory_session"], login["db_session"]) == (CREATED, CREATED)
    assert set(cookies) == {"memory_session", "db_session"}
    seen = fetch(port, "/json", cookies)[0]
    assert (seen["memory_session"], seen["db_session"]) == (FOUND, FOUND)
    assert stop(first) == 0

    parts.web(port, 2)
    after = fetch(port, "/json", cookies)[0]
    assert after["incarnation"] == f"{RUN}/web.1#2"
    assert (after["memory_count"], after["scratch_count"]) == (1, 1)
    assert after["db_count"] == seen["db_count"] + 1
    assert (after["memory_session"], after["db_session"]) == (NOT_FOUND, FOUND)
    page = fetch_text(port, "/")
    assert "Served by web.1#2" in page
    assert "in the database" in page
    assert "404" not in page


def test_web_sessions_expire_and_unknown_paths_count_nothing(parts: Parts) -> None:
    port = free_port()
    parts.web(port, 1, DEMO_SESSION_SECONDS="1")
    _, cookies = fetch(port, "/login", {})
    assert wait_until(lambda: fetch(port, "/json", cookies)[0]["db_session"] == NOT_FOUND, 20, 0.2)
    assert fetch(port, "/json", cookies)[0]["memory_session"] == NOT_FOUND
    before = fetch(port, "/json", {})[0]["db_count"]
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", "/favicon.ico")
    assert conn.getresponse().status == 404
    conn.close()
    assert fetch(port, "/json", {})[0]["db_count"] == before + 1


# --- worker and the queue ------------------------------------------------------------------


def job_row(db: Database, number: int) -> tuple[Any, ...]:
    row = db.execute(
        "SELECT claimed_by, attempts, done_by, done_at FROM jobs WHERE run = ? AND number = ?",
        (RUN, number),
    ).fetchone()
    assert row is not None
    return tuple(row)


@pytest.mark.slow
def test_a_job_held_by_a_killed_worker_is_done_once_after_its_lease(parts: Parts) -> None:
    db = parts.db()
    for _ in range(3):
        jobs.enqueue(db, RUN)
    timing = {"DEMO_JOB_SECONDS": "5", "DEMO_LEASE_SECONDS": "6"}
    doomed = parts.start("worker", parts.env("worker.1", 1, **timing))
    assert wait_until(lambda: job_row(db, 1)[0] == f"{RUN}/worker.1#1", START_TIMEOUT)
    doomed.send_signal(signal.SIGKILL)
    doomed.wait(10)
    assert job_row(db, 1)[3] is None

    fast = {"DEMO_JOB_SECONDS": "0.1", "DEMO_LEASE_SECONDS": "6"}
    successor = parts.start("worker", parts.env("worker.1", 2, **fast))
    assert wait_until(lambda: all(job_row(db, n)[3] is not None for n in (1, 2, 3)), 60)
    assert stop(successor) == 0
    assert job_row(db, 1)[1:3] == (2, f"{RUN}/worker.1#2")
    assert [job_row(db, n)[1] for n in (2, 3)] == [1, 1]
    assert jobs.tally(db, RUN, 3) == jobs.JobTally(enqueued=3, done=3, retried=1)
    assert "picked up job 1 again (attempt 2): worker.1#1" in parts.output("worker.1#2")


def test_a_worker_stopped_by_sigterm_gives_its_job_back_at_once(parts: Parts) -> None:
    db = parts.db()
    jobs.enqueue(db, RUN)
    slow = {"DEMO_JOB_SECONDS": "60", "DEMO_LEASE_SECONDS": "600"}
    first = parts.start("worker", parts.env("worker.1", 1, **slow))
    assert wait_until(lambda: job_row(db, 1)[0] is not None, START_TIMEOUT)
    assert stop(first) == 0
    assert "gave job 1 back to the queue" in parts.output("worker.1#1")
    second = parts.start("worker", parts.env("worker.1", 2, DEMO_JOB_SECONDS="0.1"))
    assert wait_until(lambda: job_row(db, 1)[3] is not None, START_TIMEOUT)
    assert stop(second) == 0
    assert job_row(db, 1)[1:3] == (2, f"{RUN}/worker.1#2")


def test_only_the_current_holder_of_a_claim_can_complete_the_job(
    demo_database_url: str,
) -> None:
    db = connect(demo_database_url)
    jobs.enqueue(db, RUN)
    late = jobs.claim(db, RUN, "a", lease=0.05)
    assert late == jobs.Claim(1, 1, None)
    current = None

    def taken_over() -> bool:
        nonlocal current
        current = current or jobs.claim(db, RUN, "b", lease=60)
        return current is not None

    assert wait_until(taken_over, 10)
    assert current == jobs.Claim(1, 2, "a")
    assert not jobs.complete(db, RUN, late, "a", "late result")
    assert jobs.complete(db, RUN, current, "b", "result")
    assert not jobs.complete(db, RUN, current, "b", "again")
    assert jobs.claim(db, RUN, "c", lease=60) is None
    assert db.execute("SELECT done_by, result FROM jobs").fetchall() == [("b", "result")]


# --- bad configuration ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("part", "url"),
    [
        ("web", "postgresql://user:secret@127.0.0.1:notaport/app"),
        ("clock", "postgres://user@127.0.0.1:1/app?password=secret&no_such_option=1"),
        ("worker", "sqlite://"),
        ("clock", "sqlite:///demo.sqlite3?mode=ro"),
        ("traffic", "mysql://user:secret@db.example/app"),
        ("worker", "sqlite:////no/such/directory/demo.sqlite3"),
    ],
)
def test_a_bad_database_url_is_one_line_and_exit_2(app: App, part: str, url: str) -> None:
    env = dict(app.env, DATABASE_URL=url, PORT=str(free_port()))
    env["PROCRUNNER_ROUTER"] = "127.0.0.1:1"
    result = subprocess.run(
        [sys.executable, "-m", f"procrunner.demo.{part}"],
        cwd=app.root,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"demo {part}: ")
    assert "DATABASE_URL" in lines[0] or "cannot open the database" in lines[0]
    assert "secret" not in lines[0]


def test_traffic_without_the_router_says_so_and_exits_2(app: App) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "procrunner.demo.traffic"],
        cwd=app.root,
        env=app.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert "--router" in result.stderr


# --- the verdict ---------------------------------------------------------------------------


def reply(incarnation: str, count: int, memory: str = FOUND, db: str = FOUND) -> Reply:
    instance = incarnation.partition("#")[0]
    return Reply(instance, f"{RUN}/{incarnation}", 1, count, count, 100 + count, memory, db)


def test_the_verdict_counts_losses_from_what_the_replies_show() -> None:
    login = reply("web.1#1", 1, CREATED, CREATED)
    outcomes = [
        Outcome(login, None),
        Outcome(reply("web.1#1", 2), login),
        Outcome(reply("web.2#1", 1, NOT_FOUND), login),  # another instance
        Outcome(None, login),  # failed
        Outcome(reply("web.1#2", 1, NOT_FOUND), login),  # web.1 restarted
        Outcome(reply("web.1#2", 2), login),
    ]
    facts = gather(outcomes, db_hits=6, jobs=JobFacts(4, 4, 1, 0))
    assert (facts.attempted, facts.succeeded, facts.failed) == (6, 5, 1)
    assert facts.served_by == {"web.1": 4, "web.2": 1}
    assert (facts.memory_counter_resets, facts.scratch_counter_losses) == (1, 1)
    assert facts.memory_sessions_lost == 2
    assert facts.memory_sessions_lost_to_routing == 1
    assert facts.memory_sessions_lost_to_restarts == 1
    assert [(i.incarnation, i.requests) for i in facts.incarnations] == [
        (f"{RUN}/web.1#1", 2),
        (f"{RUN}/web.2#1", 1),
        (f"{RUN}/web.1#2", 2),
    ]
    text = render(facts)
    assert text.startswith("verdict: 5 of 6 requests served (1 failed), spread by the router")
    assert "back to zero once" in text
    assert "kept all 5 hits, and 1 more whose reply was cut off" in text
    assert "1 taken over after the worker holding it was killed" in text
