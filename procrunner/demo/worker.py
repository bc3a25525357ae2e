"""The demo's worker: takes jobs from the queue table under a lease and records the results.

Killed while holding a job, it leaves the job claimed until the lease runs out; then any worker
picks it up again, and says so. Stopped by SIGTERM, it gives the job back at once.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

from procrunner.demo import jobs
from procrunner.demo.config import Identity, JobTiming, Stopped, identity, job_timing, run_part
from procrunner.demo.db import Database, connect, database_url

POLL_SECONDS = 0.2


def work(number: int, seconds: float) -> str:
    """The job itself: a pause standing for real work, and a small result."""
    time.sleep(seconds)
    return f"{number} squared is {number * number}"


def do_one(db: Database, me: Identity, timing: JobTiming) -> bool:
    """Claim, do and complete one job; False when the queue has none for now."""
    job = jobs.claim(db, me.run, me.incarnation, timing.lease)
    if job is None:
        return False
    if job.previous_holder is not None:
        held_by = job.previous_holder.rpartition("/")[2]
        print(
            f"picked up job {job.number} again (attempt {job.attempt}): "
            f"{held_by} took it and never finished it",
            flush=True,
        )
    try:
        result = work(job.number, timing.work)
    except Stopped:
        jobs.release(db, me.run, job, me.incarnation)
        print(f"stopping: gave job {job.number} back to the queue", flush=True)
        raise
    if jobs.complete(db, me.run, job, me.incarnation, result):
        print(f"job {job.number} done (attempt {job.attempt}): {result}", flush=True)
    else:
        print(f"job {job.number}: lease lost before the end, result dropped", flush=True)
    return True


def main(env: Mapping[str, str]) -> None:
    me = identity(env, "worker")
    timing = job_timing(env)
    db = connect(database_url(env), env)
    print(f"{me.label} taking jobs from the queue in {db.shown_url}", flush=True)
    while True:
        if not do_one(db, me, timing):
            time.sleep(POLL_SECONDS)


if __name__ == "__main__":
    run_part("worker", main)
