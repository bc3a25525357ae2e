"""``--chaos``: the schedule a user asks for, parsed and checked.

``every=10s`` or ``rate=6/min``, with ``types=web+worker``, ``signal=KILL|TERM``, ``seed=N``,
``after=DURATION`` (grace at start) and ``max=N``. ``supervise.chaos`` plans and runs it.
"""

from __future__ import annotations

import signal
from collections.abc import Sequence
from dataclasses import dataclass

from procrunner.config.durations import format_duration, parse_duration
from procrunner.config.quoting import quote
from procrunner.errors import ProcrunnerError

SIGNALS = {"KILL": signal.SIGKILL, "TERM": signal.SIGTERM}
SOURCE = "--chaos"


@dataclass(frozen=True)
class ChaosSpec:
    """A parsed ``--chaos`` schedule: when, how often, which types, which signal, which seed."""

    every: float | None = None
    rate_per_min: float | None = None
    after: float = 0.0
    max_kills: int | None = None
    types: tuple[str, ...] | None = None
    signal: int = signal.SIGKILL
    seed: int | None = None

    def describe(self, seed: int) -> str:
        when = (
            f"every {format_duration(self.every)}"
            if self.every is not None
            else f"{self.rate_per_min:g} kills a minute at random (Poisson)"
        )
        among = "+".join(self.types) if self.types else "all types"
        name = "SIGKILL" if self.signal == signal.SIGKILL else "SIGTERM then SIGKILL"
        extra = f", after {format_duration(self.after)}" if self.after else ""
        extra += f", at most {self.max_kills}" if self.max_kills is not None else ""
        return f"chaos on: {when} among {among} with {name}{extra}; seed {seed}"


def parse_chaos(text: str, type_names: Sequence[str]) -> ChaosSpec:
    fields: dict[str, str] = {}
    for entry in text.split(","):
        key, eq, value = (part.strip() for part in entry.partition("="))
        if not eq or not value:
            raise ProcrunnerError(f"expected KEY=VALUE, got {quote(entry.strip())}", SOURCE)
        if key in fields:
            raise ProcrunnerError(f"{quote(key)} given twice", SOURCE)
        fields[key] = value
    unknown = set(fields) - {"every", "rate", "after", "max", "types", "signal", "seed"}
    if unknown:
        raise ProcrunnerError(f"unknown key {quote(sorted(unknown)[0])}", SOURCE)
    if ("every" in fields) == ("rate" in fields):
        raise ProcrunnerError("give exactly one of every=DURATION or rate=N/min", SOURCE)
    every = parse_duration(fields["every"], SOURCE) if "every" in fields else None
    if every is not None and every <= 0:
        raise ProcrunnerError("every= must be more than 0", SOURCE)
    return ChaosSpec(
        every=every,
        rate_per_min=_rate(fields["rate"]) if "rate" in fields else None,
        after=parse_duration(fields.get("after", "0"), SOURCE),
        max_kills=_count(fields["max"], "max") if "max" in fields else None,
        types=_types(fields["types"], type_names) if "types" in fields else None,
        signal=_signal(fields.get("signal", "KILL")),
        seed=_count(fields["seed"], "seed") if "seed" in fields else None,
    )


def _rate(value: str) -> float:
    number, slash, unit = value.partition("/")
    try:
        rate = float(number)
    except ValueError:
        rate = -1.0
    if slash and unit.strip() == "min" and 0 < rate < 10_000:
        return rate
    raise ProcrunnerError(f"rate must look like 6/min, got {quote(value)}", SOURCE)


def _count(value: str, key: str) -> int:
    if not value.isdigit():
        raise ProcrunnerError(f"{key} must be a whole number, got {quote(value)}", SOURCE)
    return int(value)


def _types(value: str, type_names: Sequence[str]) -> tuple[str, ...]:
    chosen = tuple(t.strip() for t in value.split("+"))
    for name in chosen:
        if name not in type_names:
            raise ProcrunnerError(f"unknown process type {quote(name)} in types=", SOURCE)
    return chosen


def _signal(value: str) -> int:
    name = value.upper().removeprefix("SIG")
    if name not in SIGNALS:
        raise ProcrunnerError(f"signal must be KILL or TERM, got {quote(value)}", SOURCE)
    return SIGNALS[name]
