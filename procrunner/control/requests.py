"""Control requests as they arrive: one JSON line, checked and turned into the frozen command
the supervisor carries out (or a ``Follow`` that the server serves itself)."""

from __future__ import annotations

import json
import signal
from dataclasses import dataclass
from typing import Any

from procrunner.control.asks import (
    AttachRequest,
    ChaosRequest,
    Command,
    KillRequest,
    PsRequest,
    RestartRequest,
    ScaleRequest,
    StopRequest,
)


class BadRequest(ValueError):
    """A request the server answers with an error (the connection stays usable)."""


@dataclass(frozen=True)
class Follow:
    """``events`` (every notice) or ``logs`` (output of some instances, with history)."""

    output: bool
    targets: tuple[str, ...] = ()
    lines: int = 0
    logs: bool = False
    follow: bool = True


def parse_request(line: bytes) -> tuple[Any, Command | Follow]:
    """The request's id and what it asks; raises ``BadRequest`` (with the id, if readable)."""
    try:
        request = json.loads(line)
    except (ValueError, RecursionError) as exc:
        raise BadRequest(f"not a JSON object: {exc}") from None
    if not isinstance(request, dict):
        raise BadRequest("a request must be a JSON object")
    request_id = request.get("id")
    try:
        return request_id, _command(request)
    except BadRequest as exc:
        exc.args = (str(exc), request_id)
        raise


def _command(request: dict[str, Any]) -> Command | Follow:
    name = request.get("command")
    if name == "ps":
        return PsRequest()
    if name == "connect":
        target = request.get("target")
        rows, columns = request.get("rows", 0), request.get("columns", 0)
        if not isinstance(target, str):
            raise BadRequest("connect needs target: an instance name")
        if not all(type(n) is int and 0 <= n < 65536 for n in (rows, columns)):
            raise BadRequest("rows and columns must be whole numbers")
        return AttachRequest(target, rows, columns)
    if name == "scale":
        counts = request.get("counts")
        if not isinstance(counts, dict) or not all(
            isinstance(k, str) and type(v) is int for k, v in counts.items()
        ):
            raise BadRequest("scale needs counts: {TYPE: N, ...}")
        return ScaleRequest(tuple(counts.items()))
    if name == "restart":
        return RestartRequest(_targets(request, required=True))
    if name == "stop":
        return StopRequest(_targets(request, required=False))
    if name == "kill":
        return KillRequest(_targets(request, required=True), _signal(request.get("signal")))
    if name == "chaos":
        action, spec, target = (request.get(k) for k in ("action", "spec", "target"))
        if action not in ("on", "off", "now"):
            raise BadRequest("chaos needs action: on, off or now")
        if not all(v is None or isinstance(v, str) for v in (spec, target)):
            raise BadRequest("chaos spec and target must be strings")
        return ChaosRequest(action, spec, target)
    if name in ("events", "logs"):
        lines = request.get("lines", 0)
        if type(lines) is not int or lines < 0:
            raise BadRequest("lines must be a whole number")
        logs = name == "logs"
        output = logs or request.get("output") is True
        follow = request.get("follow", True) is not False
        return Follow(output, _targets(request, required=False), lines, logs, follow)
    known = "ps, scale, restart, stop, kill, chaos, events, logs, connect"
    raise BadRequest(f"unknown command {name!r} (known: {known})")


def _targets(request: dict[str, Any], required: bool) -> tuple[str, ...]:
    targets = request.get("targets", [])
    if not isinstance(targets, list) or not all(isinstance(t, str) for t in targets):
        raise BadRequest("targets must be a list of instance or type names")
    if required and not targets:
        raise BadRequest(f"{request.get('command')} needs at least one instance or type")
    return tuple(targets)


def _signal(value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and 0 < value < signal.NSIG:
        return value
    if isinstance(value, str):
        name = value.upper()
        name = name if name.startswith("SIG") else f"SIG{name}"
        if name in signal.Signals.__members__:
            return int(signal.Signals[name])
    raise BadRequest(f"unknown signal {value!r}; e.g. HUP, USR1, TERM or a number")
