"""Control requests carried out: each command becomes an ``Ask`` that runs inside the
supervisor's loop against its ``Handle``, so requests are ordered with every other event,
and the answer is built here. Only the supervisor's verbs change an instance."""

from __future__ import annotations

import asyncio
import functools
import os
import random
import signal
from collections.abc import Callable
from typing import Any

from procrunner.config.chaos_spec import parse_chaos
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
from procrunner.errors import ProcrunnerError
from procrunner.output.terminal import Terminal
from procrunner.supervise.handle import Ask, Handle
from procrunner.supervise.instance import ps_row
from procrunner.supervise.states import State

SOURCE = "control"
UP = (State.STARTING, State.RUNNING)


def ask(command: Command, reply: asyncio.Future[Any]) -> Ask:
    """The request to put on the supervisor's queue; ``reply`` gets the JSON-ready result
    (a ``Terminal`` for ``connect``) or the ``ProcrunnerError`` saying why not."""
    return Ask(functools.partial(perform, command), reply)


def perform(command: Command, handle: Handle) -> dict[str, Any]:
    if isinstance(command, PsRequest):
        return ps(handle)
    if isinstance(command, AttachRequest):
        return {"terminal": terminal(handle, command.target)}
    if handle.stopping:
        raise ProcrunnerError("the formation is stopping", SOURCE)
    match command:
        case ScaleRequest(counts):
            scaled = handle.scale(dict(counts))
            result = {"started": list(scaled.started), "stopping": list(scaled.stopping)}
            return {**result, "failed": list(scaled.failed)} if scaled.failed else result
        case RestartRequest(targets):
            return {"restarting": _each(handle, targets, handle.restart)}
        case StopRequest(()):
            stopping = sorted(handle.instances)
            handle.stop_all("stop requested through the control socket")
            return {"stopping": stopping}
        case StopRequest(targets):
            return {"stopping": _each(handle, targets, handle.stop)}
        case KillRequest(targets, signum):
            return {"signalled": _each(handle, targets, lambda n: handle.kill(n, signum))}
        case ChaosRequest(action, spec, target):
            return chaos(handle, action, spec, target)
    raise ProcrunnerError(f"unknown command {command!r}", SOURCE)


def ps(handle: Handle) -> dict[str, Any]:
    schedule = handle.chaos
    planner = schedule.planner
    return {
        "pid": os.getpid(),
        "stopping": handle.stopping,
        "instances": [ps_row(i, handle.options.readiness(i.spec.type_name),
                             handle.options.start_seconds) for i in handle.instances.values()],
        "chaos": {
            "on": schedule.on,
            "spec": planner.spec.describe(planner.seed) if planner else None,
            "seed": planner.seed if planner else None,
            "next_at": planner.next_at if planner and schedule.on else None,
            "kills": schedule.kills,
        },
    }


def terminal(handle: Handle, target: str) -> Terminal:
    instance = handle.instances.get(target)
    if instance is None:
        raise ProcrunnerError(f"no instance {target!r}", SOURCE)
    life = instance.incarnation
    if not handle.options.for_type(instance.spec.type_name).tty:
        raise ProcrunnerError(
            f"{target} has no terminal: start its type with --tty {instance.spec.type_name}",
            SOURCE,
        )
    if life is None or life.terminal is None or instance.state not in UP:
        raise ProcrunnerError(f"{target} is {instance.state.value}", SOURCE)
    return life.terminal


def resolve(handle: Handle, targets: tuple[str, ...]) -> list[str]:
    """Instance names (``web.1``) and type names (``web``, all its instances), in order."""
    found: list[str] = []
    instances = handle.instances
    for target in targets:
        if target in instances:
            matched = [target]
        else:
            matched = [n for n, i in instances.items() if i.spec.type_name == target]
            if not matched and target not in handle.type_names:
                known = ", ".join(instances) or "none"
                raise ProcrunnerError(
                    f"no instance or process type {target!r} (instances: {known})", SOURCE
                )
        found += [name for name in matched if name not in found]
    return found


def _each(handle: Handle, targets: tuple[str, ...], verb: Callable[[str], object]) -> list[str]:
    """Resolve every target first (a typo changes nothing), then apply ``verb`` to each."""
    names = resolve(handle, targets)
    for name in names:
        verb(name)
    return names


def chaos(handle: Handle, action: str, spec: str | None, target: str | None) -> dict[str, Any]:
    schedule = handle.chaos
    if action == "on":
        if not spec:
            raise ProcrunnerError("chaos on needs a SPEC, e.g. every=10s", SOURCE)
        handle.chaos_on(parse_chaos(spec, handle.type_names))
    elif action == "off":
        handle.chaos_off()
    elif action == "now":
        victim = _victim(handle, target)
        planner = schedule.planner
        handle.chaos_kill(victim, planner.spec.signal if planner else signal.SIGKILL)
        return {"killed": victim}
    else:
        raise ProcrunnerError(f"unknown chaos action {action!r}: on, off or now", SOURCE)
    return {"on": schedule.on}


def _victim(handle: Handle, target: str | None) -> str:
    """The named instance, else one chosen as the schedule would (its types), else any."""
    if target is not None:
        instance = handle.instances.get(target)
        if instance is None or instance.state not in UP:
            raise ProcrunnerError(f"{target!r} is not a running instance", SOURCE)
        return target
    running = {n: i for n, i in handle.instances.items() if i.state is State.RUNNING}
    if not running:
        raise ProcrunnerError("no running instance to kill", SOURCE)
    planner = handle.chaos.planner
    types = {n: i.spec.type_name for n, i in running.items()}
    name = planner.choose(list(running), types) if planner is not None else None
    return name if name is not None else random.choice(list(running))
