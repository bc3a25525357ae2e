"""The summary at exit: one line of totals (instances, time, restarts by cause, what the
ended incarnations destroyed), then, when something restarted, a row per instance. Text for
people, JSON (``--summary-json``) for CI; both are built from the ``Ledger``'s records, which
follow the supervisor's facts."""

from __future__ import annotations

import json
import statistics
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any, Protocol

from procrunner.config.durations import format_duration
from procrunner.config.units import format_bytes
from procrunner.errors import ProcrunnerError
from procrunner.supervise.events import EndedIncarnation
from procrunner.supervise.instance import restarts_by_cause
from procrunner.supervise.ledger import Record
from procrunner.supervise.messages import plural


class RouterStats(Protocol):
    """What the router counted (``router.RouterStats``): the summary reads it, the core
    never imports the router."""

    @property
    def type_name(self) -> str: ...
    @property
    def connections(self) -> Mapping[str, int]: ...
    @property
    def retried(self) -> int: ...
    @property
    def unrouted(self) -> int: ...


_HEADINGS = ("instance", "incarnations", "restarts", "uptime", "files", "scratch", "memory")


def summary_lines(
    instances: Mapping[str, Record],
    elapsed: float,
    router: RouterStats | None = None,
    kept: bool = False,
) -> list[str]:
    """One line for a run where nothing restarted; a table per instance when something did
    (or connections were routed), then the recoveries and the router's counts."""
    ended = [e for instance in instances.values() for e in instance.history]
    restarts: Counter[str] = Counter()
    for instance in instances.values():
        restarts += restarts_by_cause(instance.history, instance.lives)
    lines = [
        f"summary: {plural(len(instances), 'instance')}, {format_duration(elapsed)}, "
        f"{_restarts(restarts)}; {'kept' if kept else 'destroyed'} "
        f"{plural(sum(e.scratch.files for e in ended), 'file')} / "
        f"{format_bytes(sum(e.scratch.bytes for e in ended))} of scratch and {_memory(ended)}"
    ]
    if restarts or router is not None:
        lines += _table(instances, router)
    for type_name, times in recoveries_by_type(instances).items():
        lines.append(
            f"recovery of {type_name} (crash, exit or chaos kill to the successor ready): "
            f"median {format_duration(statistics.median(times))}, "
            f"max {format_duration(max(times))} over {plural(len(times), 'restart')}"
        )
    if router is not None:
        total = sum(router.connections.values())
        lines.append(
            f"router: {plural(total, 'connection')}; {router.retried} retried on another "
            f"instance after a refused connect, {router.unrouted} closed with no "
            f"instance to take {'it' if router.unrouted == 1 else 'them'}"
        )
    return lines


def _restarts(by_cause: Counter[str]) -> str:
    if not by_cause:
        return "no restarts"
    causes = ", ".join(f"{cause} {n}" for cause, n in sorted(by_cause.items()))
    return f"{plural(by_cause.total(), 'restart')} ({causes})"


def _memory(ended: Sequence[EndedIncarnation]) -> str:
    """What the ended incarnations' trees held, and how many ended before a sample."""
    sampled = [e.memory.best for e in ended if e.memory is not None]
    if not sampled:
        return "process memory not sampled"
    missed = len(ended) - len(sampled)
    unknown = f" ({plural(missed, 'incarnation')} not sampled)" if missed else ""
    return f"{format_bytes(sum(sampled))} of process memory{unknown}"


def _table(instances: Mapping[str, Record], router: RouterStats | None) -> list[str]:
    headings = _HEADINGS if router is None else (*_HEADINGS, "connections")
    rows: list[tuple[str, ...]] = [headings]
    for instance in instances.values():
        history = instance.history
        restarts = restarts_by_cause(history, instance.lives)
        sampled = [e.memory.best for e in history if e.memory is not None]
        rows.append(
            (
                instance.spec.name,
                str(instance.lives),
                ", ".join(f"{cause} {n}" for cause, n in sorted(restarts.items())) or "0",
                format_duration(sum(e.uptime for e in history)),
                str(sum(e.scratch.files for e in history)),
                format_bytes(sum(e.scratch.bytes for e in history)),
                format_bytes(sum(sampled)) if sampled else "not sampled",
                *_connections(router, instance),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(headings))]
    return ["  " + "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
            for row in rows]


def _connections(router: RouterStats | None, instance: Record) -> tuple[str, ...]:
    if router is None:
        return ()
    if instance.spec.type_name != router.type_name:
        return ("-",)
    return (str(router.connections[instance.spec.name]),)


def recoveries_by_type(instances: Mapping[str, Record]) -> dict[str, list[float]]:
    found: dict[str, list[float]] = {}
    for instance in instances.values():
        if instance.recoveries:
            found.setdefault(instance.spec.type_name, []).extend(instance.recoveries)
    return found


def summary_data(
    instances: Mapping[str, Record],
    run_id: str,
    app_root: Path,
    status: int,
    router: RouterStats | None = None,
) -> dict[str, Any]:
    data: list[dict[str, Any]] = []
    for instance in instances.values():
        incarnations = [{**asdict(e), "cause": e.cause.value} for e in instance.history]
        data.append(
            {
                "name": instance.spec.name,
                "type": instance.spec.type_name,
                "port": instance.spec.port,
                "state": instance.state.value,
                "incarnations": incarnations,
                "restarts": dict(restarts_by_cause(instance.history, instance.lives)),
                "recoveries": instance.recoveries,
                "connections": (
                    router.connections[instance.spec.name]
                    if router and instance.spec.type_name == router.type_name
                    else None
                ),
                "destroyed": {
                    "files": sum(e.scratch.files for e in instance.history),
                    "bytes": sum(e.scratch.bytes for e in instance.history),
                    "memory": sum(e.memory.best for e in instance.history if e.memory),
                },
            }
        )
    summary = {"run_id": run_id, "app_root": str(app_root), "exit_status": status}
    if router is not None:
        summary["router"] = {"retried": router.retried, "unrouted": router.unrouted}
    return {**summary, "instances": data}


def write_summary_json(path: Path, data: dict[str, Any]) -> None:
    try:
        path.write_text(json.dumps(data, indent=2) + "\n")
    except OSError as exc:
        raise ProcrunnerError(f"cannot write the summary: {exc.strerror}", str(path)) from exc
