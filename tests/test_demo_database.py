"""The demo's database layer (``procrunner/demo/db.py``) on both backends: the queue under
concurrent clients, and the errors of a PostgreSQL URL (one line, never the password)."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Callable

from harness import App, wait_until
from postgres_cluster import Cluster
from test_demo_parts import RUN, free_port

from procrunner.demo import jobs
from procrunner.demo.db import connect, shown


def test_workers_claiming_at_once_take_each_job_exactly_once(demo_database_url: str) -> None:
    """Enqueued by two clocks at once, claimed by four workers at once: each connection is
    another client of the backing service, as separate processes would be."""
    connect(demo_database_url)  # the tables, once
    claimed: list[int] = []
    failures: list[BaseException] = []
    start = threading.Barrier(6)

    def clock() -> None:
        db = connect(demo_database_url)
        start.wait()
        for _ in range(30):
            jobs.enqueue(db, RUN)

    def worker(name: str) -> None:
        db = connect(demo_database_url)
        start.wait()
        idle_since = time.monotonic()
        while time.monotonic() - idle_since < 2.0:  # the clocks may still be enqueueing
            job = jobs.claim(db, RUN, name, lease=60)
            if job is None:
                time.sleep(0.01)
                continue
            idle_since = time.monotonic()
            claimed.append(job.number)
            assert jobs.complete(db, RUN, job, name, f"done by {name}")

    def guarded(target: Callable[..., None], *args: str) -> threading.Thread:
        def run() -> None:
            try:
                target(*args)
            except BaseException as error:
                failures.append(error)
                start.abort()
        return threading.Thread(target=run)

    threads = [guarded(clock), guarded(clock)]
    threads += [guarded(worker, f"worker.{n}") for n in range(1, 5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not failures, failures
    assert sorted(claimed) == list(range(1, 61))
    assert jobs.tally(connect(demo_database_url), RUN, 60) == jobs.JobTally(60, 60, 0)


def test_a_database_server_that_never_answers_is_one_line_and_exit_1(app: App) -> None:
    url = f"postgresql://demo:secret@127.0.0.1:{free_port()}/demo"
    env = dict(app.env, DATABASE_URL=url, DEMO_DB_WAIT_SECONDS="1")
    result = subprocess.run([sys.executable, "-m", "procrunner.demo.worker"], cwd=app.root,
                            env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1, result.stderr
    (line,) = result.stderr.splitlines()
    assert line.startswith("demo worker: cannot open the database postgresql://demo:***@127.0.0.1:")
    assert "(tried for 1 s)" in line and "secret" not in line


def test_a_sql_ascii_database_gives_text_not_bytes(postgres_cluster: Cluster) -> None:
    """A server made by initdb without a locale (as in a bare container) is SQL_ASCII; the
    worker that took over a job got its previous holder as bytes and crashed."""
    url = postgres_cluster.new_database("SQL_ASCII")
    db = connect(url)
    jobs.enqueue(db, RUN)
    jobs.claim(db, RUN, "worker.1#1", lease=0.001)
    claims: list[jobs.Claim | None] = []
    assert wait_until(lambda: claims.append(jobs.claim(db, RUN, "worker.1#2", 60)) or claims[-1])
    assert claims[-1] == jobs.Claim(1, 2, "worker.1#1")
    assert db.execute("SELECT claimed_by FROM jobs").fetchall() == [("worker.1#2",)]


def test_a_shown_url_hides_the_password_and_keeps_the_rest() -> None:
    assert shown("postgresql://demo:s3cret@db:5432/demo") == "postgresql://demo:***@db:5432/demo"
    assert shown("postgres://demo@db/demo") == "postgres://demo@db/demo"
    assert shown("postgres://demo@db/demo?sslmode=require&password=s3cret") == (
        "postgres://demo@db/demo?sslmode=require&password=***")
    assert shown("sqlite:///demo.sqlite3") == "sqlite:///demo.sqlite3"
