"""Formations: how many instances of each process type run, and the instances they make.

``parse_formation`` reads foreman's ``-m`` syntax (``web=2,worker=1,clock=0``, ``all=N``),
``select_types`` narrows it to the types named on the command line, and ``plan_instances``
turns it into named instances with foreman's ports (base + 100 per type + 1 per instance).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from procrunner.config.procfile import ProcessType, raise_first
from procrunner.config.quoting import quote
from procrunner.errors import ProcrunnerError

__all__ = [
    "MAX_COUNT",
    "MAX_PORT",
    "PORT_STEP",
    "InstanceMaker",
    "InstanceSpec",
    "parse_formation",
    "plan_instances",
    "select_types",
]

MAX_COUNT = 1000
MAX_PORT = 65535
ALL = "all"
PORT_STEP = 100

_DIGITS = re.compile(r"[0-9]+", re.ASCII)


@dataclass(frozen=True)
class InstanceSpec:
    """One slot of the formation: ``web.1`` with its PORT and command."""

    name: str  # "web.1"
    type_name: str
    slot: int  # 1-based: the 3 of web.3
    port: int
    command: str


def _known(type_names: Sequence[str]) -> str:
    return ", ".join(type_names) if type_names else "none"


def _parse_count(name: str, text: str) -> tuple[int | None, str | None]:
    """Return ``(count, None)`` or ``(None, problem)``."""
    if not _DIGITS.fullmatch(text):
        return None, (
            f"count {quote(text)} for {quote(name)} is not a whole number; expected e.g. {name}=2"
        )
    # Checked on the digits first: int() refuses strings of more than 4300 digits.
    significant = text.lstrip("0")
    if len(significant) > len(str(MAX_COUNT)) or int(text) > MAX_COUNT:
        return None, f"count {quote(text)} for {quote(name)} is above the maximum {MAX_COUNT}"
    return int(text), None


def parse_formation(
    spec: str | None, type_names: Sequence[str], source: str = "--formation"
) -> dict[str, int]:
    """Parse ``web=2,worker=1`` into a count for every type, in ``type_names`` order.

    No spec (or a blank one) means ``all=1``. Otherwise unnamed types get the ``all=N``
    count if there is one, else 0.
    """
    if spec is None or not spec.strip():
        return dict.fromkeys(type_names, 1)
    known = set(type_names)
    named: dict[str, int] = {}
    default = 0
    seen: set[str] = set()
    problems: list[tuple[str, int | None]] = []
    for raw in spec.split(","):
        entry = raw.strip()
        if not entry:
            problems.append(
                (f"empty entry in {quote(spec)}; expected name=count separated by commas", None)
            )
            continue
        name, equals, count_text = entry.partition("=")
        name, count_text = name.strip(), count_text.strip()
        if not equals or not name:
            problems.append((f"malformed entry {quote(entry)}; expected name=count", None))
            continue
        if name != ALL and name not in known:
            problems.append(
                (
                    f"unknown process type {quote(name)}; known types: {_known(type_names)}",
                    None,
                )
            )
            continue
        if name in seen:
            problems.append((f"{quote(name)} is given more than once", None))
            continue
        seen.add(name)
        count, problem = _parse_count(name, count_text)
        if count is None:
            problems.append((problem or "bad count", None))
        elif name == ALL:
            default = count
        else:
            named[name] = count
    raise_first(problems, source)
    return {name: named.get(name, default) for name in type_names}


def select_types(counts: Mapping[str, int], selected: Sequence[str]) -> dict[str, int]:
    """Keep the counts of the ``selected`` types only; the others get 0.

    An empty selection selects every type (``procrunner start`` with no names).
    """
    problems = [
        (f"unknown process type {quote(name)}; known types: {_known(list(counts))}", None)
        for name in selected
        if name not in counts
    ]
    raise_first(problems, "process type")
    if not selected:
        return dict(counts)
    wanted = set(selected)
    return {name: count if name in wanted else 0 for name, count in counts.items()}


def plan_instances(
    types: Sequence[ProcessType],
    counts: Mapping[str, int],
    base_port: int,
    shifted: str | None = None,
) -> tuple[InstanceSpec, ...]:
    """Make the instances, in Procfile order then number, each with foreman's PORT."""
    make = InstanceMaker(types, base_port, shifted)
    unknown = [name for name in counts if name not in make.type_names]
    if unknown:
        raise ProcrunnerError(
            f"unknown process type {quote(unknown[0])}; known types: {_known(make.type_names)}",
            source="formation",
        )
    instances: list[InstanceSpec] = []
    for process_type in types:
        count = counts.get(process_type.name, 0)
        if count < 0:
            raise ProcrunnerError(
                f"count {count} for {quote(process_type.name)} is negative", source="formation"
            )
        instances += [make(process_type.name, number) for number in range(1, count + 1)]
    return tuple(instances)


class InstanceMaker:
    """Names and ports instances: ``web.3`` gets base + 100 per type + 2, as in foreman.

    The ``shifted`` type's instances move up by one port: its first port is the router's.
    """

    def __init__(
        self, types: Sequence[ProcessType], base_port: int, shifted: str | None = None
    ) -> None:
        if not 1 <= base_port <= MAX_PORT:
            raise ProcrunnerError(
                f"base port {base_port} is out of range; expected 1 to {MAX_PORT}", source="port"
            )
        self._types = {t.name: (index, t) for index, t in enumerate(types)}
        self.type_names = [t.name for t in types]
        self._base_port = base_port
        self._shifted = shifted

    def __call__(self, type_name: str, number: int) -> InstanceSpec:
        if type_name not in self._types:
            raise ProcrunnerError(
                f"unknown process type {quote(type_name)}; known types: "
                f"{_known(self.type_names)}",
                source="formation",
            )
        index, process_type = self._types[type_name]
        shift = 1 if type_name == self._shifted else 0
        if shift and number > PORT_STEP - 1:
            raise ProcrunnerError(
                f"at most {PORT_STEP - 1} {type_name} instances while the router takes "
                f"their first port (asked for {number}); use --router-port to put it elsewhere",
                source="formation",
            )
        name = f"{type_name}.{number}"
        port = self._base_port + PORT_STEP * index + (number - 1) + shift
        if port > MAX_PORT:
            raise ProcrunnerError(
                f"instance {name} would get port {port}, above {MAX_PORT} "
                f"(base port {self._base_port}); choose a lower base port",
                source="port",
            )
        return InstanceSpec(name, type_name, number, port, process_type.command)
