"""The demo's own load: requests through procrunner's router, then the verdict.

It waits for the formation to answer, logs in, sends DEMO_RATE requests per second (one at a
time) for DEMO_SECONDS with both session cookies, logs in again whenever a session was not
found, waits for the jobs enqueued since it started to be done, prints the verdict and exits
0, which ends the formation (procrunner's default policy stops all when one instance exits).
"""

from __future__ import annotations

import http.client
import json
import time
import urllib.parse
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from http.cookies import SimpleCookie
from pathlib import Path

from procrunner.demo import jobs
from procrunner.demo.config import DemoError, JobTiming, identity, job_timing, run_part, seconds
from procrunner.demo.db import Database, connect, database_url
from procrunner.demo.verdict import JobFacts, Outcome, gather, plural, progress, render
from procrunner.demo.web import NOT_FOUND, Reply

REQUEST_TIMEOUT_SECONDS = 2.0
STARTUP_SECONDS = 30.0
STARTUP_RETRY_SECONDS = 0.2
PROGRESS_SECONDS = 5.0
JOB_WAIT_MARGIN_SECONDS = 5.0
JOB_POLL_SECONDS = 0.25
REQUEST_FAILED = (OSError, http.client.HTTPException, ValueError, TypeError)


@dataclass(frozen=True)
class Router:
    host: str
    port: int

    def request(self, path: str, cookies: Mapping[str, str]) -> tuple[Reply, dict[str, str]]:
        """One request on a new connection: the reply and the cookies it set. Raises one of
        ``REQUEST_FAILED`` when it fails."""
        conn = http.client.HTTPConnection(self.host, self.port, timeout=REQUEST_TIMEOUT_SECONDS)
        try:
            headers = {"Accept": "application/json", "Connection": "close"}
            if cookies:
                headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in cookies.items())
            conn.request("POST" if path == "/login" else "GET", path, headers=headers)
            response = conn.getresponse()
            body = response.read()
            if response.status != 200:
                raise ValueError(f"status {response.status}")
            jar: SimpleCookie = SimpleCookie()
            for header in response.headers.get_all("Set-Cookie") or []:
                jar.load(header)
            return Reply(**json.loads(body)), {k: m.value for k, m in jar.items()}
        finally:
            conn.close()


def router_address(env: Mapping[str, str]) -> Router:
    """procrunner's router (``PROCRUNNER_ROUTER``, HOST:PORT); without one, as exported,
    ``DEMO_TARGET_URL`` (``http://web:5000``: Compose's name for every web replica)."""
    address = env.get("PROCRUNNER_ROUTER")
    if address:
        host, _, port_text = address.rpartition(":")
        if not host or not port_text.isdigit():
            raise DemoError(f"PROCRUNNER_ROUTER must be HOST:PORT, got {address!r}")
        return Router(host, int(port_text))
    url = env.get("DEMO_TARGET_URL")
    if not url:
        raise DemoError(
            "neither PROCRUNNER_ROUTER nor DEMO_TARGET_URL is set: run the demo with "
            "procrunner start --router (see Procfile.example), or set DEMO_TARGET_URL"
        )
    parts = urllib.parse.urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = None
    if parts.scheme != "http" or not parts.hostname or port is None or parts.path not in ("", "/"):
        raise DemoError(f"DEMO_TARGET_URL must be http://HOST:PORT, got {url!r}")
    return Router(parts.hostname, port)


def wait_for_formation(router: Router) -> tuple[Reply, int]:
    """Retry until a web instance answers through the router (bounded): its reply, and how
    many probes that took (the router counts them all, the verdict says so)."""
    deadline = time.monotonic() + STARTUP_SECONDS
    probes = 0
    while True:
        probes += 1
        try:
            return router.request("/json", {})[0], probes
        except REQUEST_FAILED as error:
            if time.monotonic() > deadline:
                raise DemoError(
                    f"no web instance answered at {router.host}:{router.port} within "
                    f"{STARTUP_SECONDS:g} s ({error})",
                    1,
                ) from None
        time.sleep(STARTUP_RETRY_SECONDS)


@dataclass
class Visitor:
    """A browser of sorts: its cookies, the login they came from, and what it saw."""

    router: Router
    cookies: dict[str, str] = field(default_factory=dict)
    logged_in_at: Reply | None = None
    outcomes: list[Outcome] = field(default_factory=list)

    def visit(self) -> None:
        """Log in if there is no live session, else fetch /json with both cookies."""
        logging_in = self.logged_in_at is None
        try:
            reply, new_cookies = self.router.request(
                "/login" if logging_in else "/json", self.cookies
            )
        except REQUEST_FAILED:
            self.outcomes.append(Outcome(None, self.logged_in_at))
            return
        self.outcomes.append(Outcome(reply, None if logging_in else self.logged_in_at))
        if logging_in:
            self.cookies, self.logged_in_at = new_cookies, reply
        elif NOT_FOUND in (reply.memory_session, reply.db_session):
            self.logged_in_at = None


def send_traffic(visitor: Visitor, duration: float, rate: float) -> None:
    """Sequential requests at ``rate`` per second for ``duration``; a slow request delays the
    next ones instead of causing a burst."""
    start = time.monotonic()
    next_request = start
    next_progress = start + PROGRESS_SECONDS
    while (now := time.monotonic()) < start + duration:
        time.sleep(max(0.0, next_request - now))
        visitor.visit()
        next_request = max(next_request + 1 / rate, time.monotonic())
        if time.monotonic() >= next_progress:
            print(progress(visitor.outcomes, time.monotonic() - start), flush=True)
            next_progress += PROGRESS_SECONDS


def wait_for_jobs(db: Database, run: str, timing: JobTiming, after: int) -> JobFacts:
    """Wait (bounded) until every job enqueued so far, after job number ``after``, is done.
    (Exported, every deployment is the run ``manual``: earlier ones left their jobs.)"""
    up_to = jobs.last_number(db, run)
    tally = jobs.tally(db, run, up_to, after)
    pending = tally.enqueued - tally.done
    wait = timing.lease + timing.work * (pending + 1) + JOB_WAIT_MARGIN_SECONDS
    if pending:
        print(f"waiting up to {wait:.0f} s for {plural(pending, 'job')} not done yet", flush=True)
    deadline = time.monotonic() + wait
    while tally.done < tally.enqueued and time.monotonic() < deadline:
        time.sleep(JOB_POLL_SECONDS)
        tally = jobs.tally(db, run, up_to, after)
    return JobFacts(tally.enqueued, tally.done, tally.retried, tally.enqueued - tally.done)


def database_hits(db: Database, run: str) -> int:
    row = db.execute("SELECT count FROM hits WHERE run = ?", (run,)).fetchone()
    return int(row[0]) if row is not None else 0


def main(env: Mapping[str, str]) -> None:
    router = router_address(env)
    me = identity(env, "traffic")
    duration = seconds(env, "DEMO_SECONDS", 20.0)
    rate = seconds(env, "DEMO_RATE", 20.0)
    timing = job_timing(env)
    verdict_path = env.get("DEMO_VERDICT_JSON")
    db = connect(database_url(env), env)
    jobs_before = jobs.last_number(db, me.run)
    print(f"waiting for a web instance to answer at {router.host}:{router.port}", flush=True)
    first, probes = wait_for_formation(router)
    print(
        f"{first.incarnation.rpartition('/')[2]} answered; sending {rate:g} requests/s "
        f"for {duration:g} s",
        flush=True,
    )
    visitor = Visitor(router)
    send_traffic(visitor, duration, rate)
    job_facts = wait_for_jobs(db, me.run, timing, jobs_before)
    hits = database_hits(db, me.run) - first.db_count
    facts = gather(visitor.outcomes, hits, job_facts, probes)
    print(render(facts), flush=True)
    if verdict_path:
        Path(verdict_path).write_text(json.dumps(asdict(facts), indent=2) + "\n")


if __name__ == "__main__":
    run_part("traffic", main)
