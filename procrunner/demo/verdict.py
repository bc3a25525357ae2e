"""From what the traffic saw to the verdict: facts first (also written as JSON), then words.

Every number is counted from real replies: a counter that did not go up when a new incarnation
of the same instance answered was lost; a session cookie the serving process did not know
was lost, because the request reached another instance (routing) or a new incarnation of the
one that created it (restart).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from procrunner.demo.web import NOT_FOUND, Reply


@dataclass(frozen=True)
class Outcome:
    """One request the traffic sent: its reply (None if it failed), and the login reply whose
    cookies it carried (None for a login)."""

    reply: Reply | None
    logged_in_at: Reply | None


@dataclass
class IncarnationFacts:
    instance: str
    incarnation: str
    requests: int
    first_memory_count: int
    first_scratch_count: int
    last_memory_count: int
    last_scratch_count: int


@dataclass(frozen=True)
class JobFacts:
    enqueued: int
    done: int
    retried: int
    lost: int


@dataclass(frozen=True)
class Facts:
    attempted: int
    succeeded: int
    failed: int
    served_by: dict[str, int]
    incarnations: list[IncarnationFacts]
    memory_counter_resets: int
    scratch_counter_losses: int
    db_hits: int
    memory_sessions_lost: int
    memory_sessions_lost_to_routing: int
    memory_sessions_lost_to_restarts: int
    db_sessions_lost: int
    jobs: JobFacts
    probes: int  # connections before the traffic, until a web instance answered


def gather(
    outcomes: Sequence[Outcome], db_hits: int, jobs: JobFacts, probes: int = 0
) -> Facts:
    """The facts in ``outcomes`` (in the order the requests were sent), after ``probes``."""
    incarnations: dict[str, IncarnationFacts] = {}
    latest: dict[str, IncarnationFacts] = {}
    memory_resets = scratch_losses = 0
    lost_to_routing = lost_to_restarts = memory_lost = db_lost = 0
    for outcome in outcomes:
        reply = outcome.reply
        if reply is None:
            continue
        seen = incarnations.get(reply.incarnation)
        if seen is None:
            seen = IncarnationFacts(
                reply.instance,
                reply.incarnation,
                0,
                reply.memory_count,
                reply.scratch_count,
                reply.memory_count,
                reply.scratch_count,
            )
            before = latest.get(reply.instance)
            if before is not None:
                memory_resets += reply.memory_count <= before.last_memory_count
                scratch_losses += reply.scratch_count <= before.last_scratch_count
            incarnations[reply.incarnation] = latest[reply.instance] = seen
        seen.requests += 1
        seen.last_memory_count = reply.memory_count
        seen.last_scratch_count = reply.scratch_count
        login = outcome.logged_in_at
        if reply.memory_session == NOT_FOUND:
            memory_lost += 1
            if login is not None and login.instance != reply.instance:
                lost_to_routing += 1
            elif login is not None and login.incarnation != reply.incarnation:
                lost_to_restarts += 1
        db_lost += reply.db_session == NOT_FOUND
    served = Counter(o.reply.instance for o in outcomes if o.reply is not None)
    return Facts(
        attempted=len(outcomes),
        succeeded=served.total(),
        failed=len(outcomes) - served.total(),
        served_by=dict(sorted(served.items())),
        incarnations=list(incarnations.values()),
        memory_counter_resets=memory_resets,
        scratch_counter_losses=scratch_losses,
        db_hits=db_hits,
        memory_sessions_lost=memory_lost,
        memory_sessions_lost_to_routing=lost_to_routing,
        memory_sessions_lost_to_restarts=lost_to_restarts,
        db_sessions_lost=db_lost,
        jobs=jobs,
        probes=probes,
    )


def plural(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def times(n: int) -> str:
    return {1: "once", 2: "twice"}.get(n, f"{n} times")


def served_line(facts: Facts) -> str:
    failed = f" ({facts.failed} failed)" if facts.failed else ""
    spread = ", ".join(f"{name} {count}" for name, count in facts.served_by.items())
    if len(facts.served_by) > 1:
        where = f", spread by the router over {spread}"
    else:
        where = "".join(f", all by {name}" for name in facts.served_by)
    return f"verdict: {facts.succeeded} of {facts.attempted} requests served{failed}{where}"


def probes_line(facts: Facts) -> list[str]:
    """Why the router's summary counts more connections than the verdict counts requests."""
    if not facts.probes:
        return []
    them = "it" if facts.probes == 1 else "them"
    return [
        f"  before the traffic: {plural(facts.probes, 'probe')} until a web instance answered "
        f"(the router's summary counts {them} too)"
    ]


def database_counter_line(facts: Facts) -> str:
    extra = facts.db_hits - facts.succeeded
    if extra == 0:
        kept = f"kept all {facts.db_hits} hits"
    elif extra > 0:
        kept = f"kept all {facts.succeeded} hits, and {extra} more whose reply was cut off"
    else:
        kept = f"counted {facts.db_hits} hits for {facts.succeeded} served requests"
    return f"  counter in the database:   {kept} (the backing service outlives every process)"


def counters_in_the_process(facts: Facts) -> list[str]:
    if facts.memory_counter_resets == facts.scratch_counter_losses == 0:
        why = "(no web incarnation was replaced during the traffic: add --chaos to see it)"
        return [f"  counters in memory and in a scratch file: never lost {why}"]
    memory = times(facts.memory_counter_resets)
    scratch = times(facts.scratch_counter_losses)
    return [
        f"  counter in process memory: back to zero {memory} (a new incarnation has new memory)",
        f"  counter in a scratch file: lost {scratch} "
        "(a new incarnation has a new, empty scratch dir)",
    ]


def memory_sessions_line(facts: Facts) -> str:
    lost = facts.memory_sessions_lost
    if lost == 0:
        return "  sessions in process memory: never lost (every request reached the process)"
    routing = facts.memory_sessions_lost_to_routing
    restarts = facts.memory_sessions_lost_to_restarts
    parts = []
    if routing:
        parts.append(f"{routing} on another instance (a sticky router would hide these)")
    if restarts:
        parts.append(f"{restarts} after a restart (nothing hides these)")
    if lost - routing - restarts:
        parts.append(f"{lost - routing - restarts} expired")
    return f"  sessions in process memory: lost {times(lost)}: " + ", ".join(parts)


def database_sessions_line(facts: Facts) -> str:
    if facts.db_sessions_lost:
        lost = f"not found {times(facts.db_sessions_lost)} (expired? see DEMO_SESSION_SECONDS)"
    else:
        lost = "never lost (every instance reads the same database)"
    return f"  sessions in the database:   {lost}"


def jobs_line(jobs: JobFacts) -> str:
    lost = f"{jobs.lost} lost" if jobs.lost == 0 else f"{jobs.lost} not done in time"
    them = "it" if jobs.retried == 1 else "them"
    return (
        f"  jobs: {jobs.enqueued} enqueued by clock, {jobs.done} done, {lost}; "
        f"{jobs.retried} taken over after the worker holding {them} was killed"
    )


def render(facts: Facts) -> str:
    """The verdict: a compact block that reads well between procrunner's prefixed lines."""
    return "\n".join(
        [
            served_line(facts),
            *probes_line(facts),
            *counters_in_the_process(facts),
            database_counter_line(facts),
            memory_sessions_line(facts),
            database_sessions_line(facts),
            jobs_line(facts.jobs),
        ]
    )


def progress(outcomes: Sequence[Outcome], elapsed: float) -> str:
    """A short line while the traffic runs."""
    served = Counter(o.reply.instance for o in outcomes if o.reply is not None)
    spread = ", ".join(f"{name} {count}" for name, count in sorted(served.items()))
    lost = sum(o.reply is not None and o.reply.memory_session == NOT_FOUND for o in outcomes)
    return (
        f"{elapsed:.0f} s: {served.total()} of {len(outcomes)} requests served ({spread}); "
        f"sessions in process memory lost {times(lost)}"
    )
