"""The job queue, a table in the backing service: enqueue, claim under a lease, complete.

A claim is a lease: the worker's incarnation and an expiry time, written in one transaction.
A job whose lease ran out (its worker was killed) can be claimed again, with the next attempt
number. Completing is conditional on still holding that very claim, so a job is never
completed twice, and a job is never lost: it stays in the table until it is done. Two workers
never take the same job: on SQLite the claim's transaction holds the one write lock; on
PostgreSQL its SELECT locks the row it picks and passes over rows another claim holds (``FOR
UPDATE SKIP LOCKED``), so claims run side by side.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from procrunner.demo.db import Database


@dataclass(frozen=True)
class Claim:
    number: int
    attempt: int
    previous_holder: str | None


@dataclass(frozen=True)
class JobTally:
    """The jobs in a range of numbers: how many exist, are done, needed a new attempt."""

    enqueued: int
    done: int
    retried: int


def enqueue(db: Database, run: str) -> int:
    """Add the run's next job; returns its number (1, 2, 3 ... per run)."""
    with db.transaction():
        db.queue_writers("procrunner-demo enqueue")  # two clocks would take the same number
        row = db.execute(
            "INSERT INTO jobs (run, number, enqueued_at) "
            "SELECT ?, coalesce(max(number), 0) + 1, ? FROM jobs WHERE run = ? "
            "RETURNING number",
            (run, time.time(), run),
        ).fetchone()
    return int(row[0])


def claim(db: Database, run: str, worker: str, lease: float) -> Claim | None:
    """Take the oldest job that is not done and not under a live lease, or None."""
    now = time.time()
    with db.transaction():
        row = db.execute(
            "SELECT number, attempts, claimed_by FROM jobs "
            "WHERE run = ? AND done_at IS NULL "
            "AND (claimed_by IS NULL OR lease_expires_at < ?) "
            f"ORDER BY number LIMIT 1{db.lock_rows}",
            (run, now),
        ).fetchone()
        if row is None:
            return None
        number, attempts, holder = row
        db.execute(
            "UPDATE jobs SET claimed_by = ?, lease_expires_at = ?, attempts = ? "
            "WHERE run = ? AND number = ?",
            (worker, now + lease, attempts + 1, run, number),
        )
    return Claim(number, attempts + 1, holder)


HELD_AND_NOT_DONE = "run = ? AND number = ? AND claimed_by = ? AND attempts = ? AND done_at IS NULL"


def complete(db: Database, run: str, job: Claim, worker: str, result: str) -> bool:
    """Record the result if ``worker`` still holds this claim; False if it lost it."""
    with db.transaction():
        cursor = db.execute(
            "UPDATE jobs SET done_by = claimed_by, done_at = ?, result = ? "
            f"WHERE {HELD_AND_NOT_DONE}",
            (time.time(), result, run, job.number, worker, job.attempt),
        )
    return cursor.rowcount == 1


def release(db: Database, run: str, job: Claim, worker: str) -> None:
    """End the lease now, so that another worker takes the job at once (a clean stop)."""
    with db.transaction():
        db.execute(
            f"UPDATE jobs SET lease_expires_at = 0 WHERE {HELD_AND_NOT_DONE}",
            (run, job.number, worker, job.attempt),
        )


def last_number(db: Database, run: str) -> int:
    row = db.execute("SELECT coalesce(max(number), 0) FROM jobs WHERE run = ?", (run,))
    return int(row.fetchone()[0])


def tally(db: Database, run: str, up_to: int, after: int = 0) -> JobTally:
    """The run's jobs numbered ``after`` + 1 to ``up_to``."""
    row = db.execute(
        "SELECT count(*), count(done_at), count(CASE WHEN attempts > 1 THEN 1 END) "
        "FROM jobs WHERE run = ? AND number > ? AND number <= ?",
        (run, after, up_to),
    ).fetchone()
    return JobTally(int(row[0]), int(row[1]), int(row[2]))
