"""The demo's clock: enqueues a job every CLOCK_SECONDS (default 2) for the workers.

The first job comes half an interval after start-up. With the README's chaos schedule (a kill
every 4 s from the start) the ticks then fall between the kills, so a killed worker is usually
in the middle of a job, and the demo shows the lease at work. At start-up the clock also
deletes the rows of old runs from the database.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

from procrunner.demo import jobs
from procrunner.demo.config import identity, run_part, seconds
from procrunner.demo.db import connect, database_url, delete_old_runs


def main(env: Mapping[str, str]) -> None:
    me = identity(env, "clock")
    interval = seconds(env, "CLOCK_SECONDS", 2.0)
    db = connect(database_url(env), env)
    delete_old_runs(db, me.run)
    next_tick = time.monotonic() + interval / 2
    while True:
        time.sleep(max(0.0, next_tick - time.monotonic()))
        next_tick = max(next_tick + interval, time.monotonic())
        print(f"enqueued job {jobs.enqueue(db, me.run)}", flush=True)


if __name__ == "__main__":
    run_part("clock", main)
