"""Per-type settings: ``types: {NAME: {...}}`` in procrunner.yml, checked against the
Procfile's types, merged with the formation-wide ``tty`` and ``restart`` settings.

Across sources the higher one wins (``--tty`` or ``--restart`` on the command line beat the
file); within procrunner.yml a type's own key beats the file's formation-wide setting.
"""

from __future__ import annotations

import re
import signal
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from procrunner.config.declare import TypeKind
from procrunner.config.model import TYPE_KEYS
from procrunner.config.quoting import quote
from procrunner.config.restart_rules import Policy, RestartRules
from procrunner.config.settings import Condition, Dependencies, Health, Readiness, TypeSettings
from procrunner.config.sources import FileLayer, Value
from procrunner.config.values import (
    Convert,
    Origin,
    Source,
    blamed,
    choice,
    suggestion,
    text,
    to_bool,
    to_duration,
    to_paths,
    to_words,
)
from procrunner.errors import ProcrunnerError

OWN_KEY_RANK = Source.FILE + 0.5  # a type's own key beats its file's formation-wide setting
POLICIES = tuple(policy.value for policy in Policy)
READY_WORDS = ("port", "uptime", "none")
CONDITIONS = ("ready", "completed")
HEALTH_CHECKS = ("http", "exec", "port")
HEALTH_TIMINGS = ("every", "timeout", "grace")
HEALTH_EXPECTED = "{http: PATH}, {exec: COMMAND} or {port: true}, with every, timeout, " \
    "failures, grace"


@dataclass(frozen=True)
class TypesResult:
    """The per-type settings, with where each value came from."""

    settings: Mapping[str, TypeSettings]
    origins: Mapping[tuple[str, str], Origin]  # (type, key): where the value came from

    @property
    def policies(self) -> dict[str, Policy]:
        """The types' own restart policies, for ``RestartRules.per_type``."""
        return {name: kind.restart for name, kind in self.settings.items()
                if kind.restart is not None}


def _policy(raw: object, how: Convert) -> Policy:
    return Policy(choice(raw, Convert(how.flag, POLICIES)))


def _signal(raw: object, how: Convert) -> int:
    if isinstance(raw, int) and not isinstance(raw, bool):
        if raw in signal.valid_signals():
            return raw
    elif isinstance(raw, str):
        name = raw.strip().upper()
        name = name if name.startswith("SIG") else f"SIG{name}"
        if name in signal.Signals.__members__:
            return int(signal.Signals[name])
    raise how.wrong("a signal name (TERM, INT, QUIT, HUP...) or number", raw)


def _ready(raw: object, how: Convert) -> Readiness:
    if isinstance(raw, str) and raw in READY_WORDS:
        return Readiness(kind=raw)  # type: ignore[arg-type]  # checked just above
    if raw == {"port": "any"}:
        return Readiness(kind="port", any_listener=True)
    if isinstance(raw, dict) and list(raw) == ["log"] and isinstance(raw["log"], str):
        try:
            re.compile(raw["log"])
        except re.error as exc:
            raise ProcrunnerError(
                f"invalid regular expression {quote(raw['log'])}: {exc}", how.flag
            ) from None
        return Readiness(kind="log", pattern=raw["log"])
    if isinstance(raw, dict) and list(raw) in (["http"], ["exec"]):
        kind = next(iter(raw))
        return Readiness(kind=kind, target=text(raw[kind], how))
    raise how.wrong("port, {port: any}, uptime, none, {log: REGEX}, {http: PATH} or "
                    "{exec: COMMAND}", raw)


def _health(raw: object, how: Convert) -> Health:
    if not isinstance(raw, dict):
        raise how.wrong(HEALTH_EXPECTED, raw)
    known = (*HEALTH_CHECKS, *HEALTH_TIMINGS, "failures")
    for key in raw:
        if key not in known:
            name = str(key)
            raise ProcrunnerError(f"unknown key {quote(name)}{suggestion(name, known)}",
                                  how.flag)
    checks = [key for key in raw if key in HEALTH_CHECKS]
    if len(checks) != 1:
        raise how.wrong(HEALTH_EXPECTED, raw)
    kind = checks[0]
    if kind == "port" and raw[kind] is not True:
        raise how.wrong("port: true", raw[kind])
    timings = {key: to_duration(raw[key], how) for key in HEALTH_TIMINGS if key in raw}
    for key in ("every", "timeout"):
        if timings.get(key) == 0:
            raise ProcrunnerError(f"{key}: expected a duration above 0, got {quote(raw[key])}",
                                  how.flag)
    failures = raw.get("failures", 3)
    if isinstance(failures, bool) or not isinstance(failures, int) or failures < 1:
        raise how.wrong("failures: a whole number of at least 1", failures)
    target = None if kind == "port" else text(raw[kind], how)
    return Health(kind, target, failures=failures, **timings)


def _dependencies(raw: object, how: Convert) -> Dependencies:
    """A list of process types (each ``ready``), or a mapping of type to condition;
    ``how.choices`` are the Procfile's types."""
    pairs: list[tuple[str, Condition]]
    if isinstance(raw, dict):
        pairs = [(str(needed), _condition(condition, how)) for needed, condition in raw.items()]
    else:
        pairs = [(needed, "ready") for needed in to_words(raw, how)]
    for needed, _ in pairs:
        if needed not in how.choices:
            raise ProcrunnerError(
                f"unknown process type {quote(needed)}{suggestion(needed, how.choices)}",
                how.flag)
    return Dependencies(tuple(pairs))


def _condition(raw: object, how: Convert) -> Condition:
    if raw == "completed":
        return "completed"
    if raw == "ready":
        return "ready"
    hint = suggestion(raw, CONDITIONS) if isinstance(raw, str) else ""
    raise ProcrunnerError(f"expected ready or completed, got {quote(raw)}{hint}", how.flag)


_PARSERS: dict[TypeKind, Callable[[object, Convert], object]] = {
    "policy": _policy,
    "signal": _signal,
    "duration": to_duration,
    "words": to_words,
    "ready": _ready,
    "health": _health,
    "bool": to_bool,
    "dependencies": _dependencies,
    "paths": to_paths,
    "command": text,
}
_KINDS = {key.name: key.kind for key in TYPE_KEYS}


def _pick(candidates: Sequence[tuple[float, object, Origin]]) -> tuple[object, Origin] | None:
    """The value from the highest-ranked source, if any."""
    if not candidates:
        return None
    _, value, origin = max(candidates, key=lambda c: c[0])
    return value, origin


def type_settings(
    layer: FileLayer,
    names: Sequence[str],
    tty: Value,
    restart: Value,
    rules: RestartRules,
    folder: Path,
) -> TypesResult:
    """Every Procfile type's settings; ``tty`` and ``restart`` are the formation-wide values
    (``rules`` is ``restart`` parsed)."""
    for name, origin in layer.type_origins.items():
        if name not in names:
            raise ProcrunnerError(
                f"{origin.key}: unknown process type {quote(name)}{suggestion(name, names)} "
                f"(the Procfile has: {', '.join(names)})", origin.where, origin.line)
    settings: dict[str, TypeSettings] = {}
    origins: dict[tuple[str, str], Origin] = {}
    tty_types = tty.value if isinstance(tty.value, tuple) else ()
    for name in names:
        own = _own_values(layer.types.get(name, {}), names, folder)
        origins.update({(name, key): origin for key, (_, origin) in own.items()})
        tty_candidates = [(OWN_KEY_RANK, *own["tty"])] if "tty" in own else []
        if name in tty_types:
            tty_candidates.append((tty.origin.source, True, tty.origin))
        restart_candidates = [(OWN_KEY_RANK, *own["restart"])] if "restart" in own else []
        if restart.origin.source is not Source.DEFAULT and (
                "=" not in str(restart.value) or name in rules.per_type):
            restart_candidates.append((restart.origin.source, rules.policy(name), restart.origin))
        for key, candidates in (("tty", tty_candidates), ("restart", restart_candidates)):
            picked = _pick(candidates)
            if picked is not None:
                own[key] = picked
                origins[(name, key)] = picked[1]
        fields: dict[str, Any] = {key: value for key, (value, _) in own.items()}
        settings[name] = TypeSettings(**fields)
    _check_cycles(settings, origins)
    return TypesResult(MappingProxyType(settings), origins)


def _own_values(
    raw: Mapping[str, Value], names: Sequence[str], folder: Path
) -> dict[str, tuple[object, Origin]]:
    values: dict[str, tuple[object, Origin]] = {}
    for key, value in raw.items():
        how = Convert(value.origin.key, tuple(names), folder)
        with blamed(value.origin, value.raw):
            values[key] = (_PARSERS[_KINDS[key]](value.raw, how), value.origin)
    return values


def _check_cycles(
    settings: Mapping[str, TypeSettings], origins: Mapping[tuple[str, str], Origin]
) -> None:
    cycle = _find_cycle({name: kind.depends_on for name, kind in settings.items()})
    if cycle is not None:
        origin = origins[(cycle[0], "depends_on")]
        raise ProcrunnerError(
            f"{origin.key}: dependency cycle {' -> '.join(cycle)}", origin.where, origin.line
        )


def _find_cycle(graph: Mapping[str, Iterable[str]]) -> list[str] | None:
    """A path ``a -> b -> a`` if the graph has a cycle (depth first, in Procfile order)."""
    done: set[str] = set()

    def visit(name: str, path: list[str]) -> list[str] | None:
        if name in path:
            return [*path[path.index(name):], name]
        if name in done:
            return None
        for needed in graph.get(name, ()):
            found = visit(needed, [*path, name])
            if found is not None:
                return found
        done.add(name)
        return None

    for name in graph:
        found = visit(name, [])
        if found is not None:
            return found
    return None
