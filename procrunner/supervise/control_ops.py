"""What the supervisor's clients ask for (the control socket's ps, scale, restart, stop, kill
and chaos; the chaos schedule's ticks; watch's reloads), carried out inside the supervisor's
loop with its own operations, so that requests are ordered with every other event and no
client ever touches an instance."""

from __future__ import annotations

import asyncio
import os
import random
import signal
from typing import TYPE_CHECKING, Any

from procrunner.config.durations import format_duration
from procrunner.errors import ProcrunnerError
from procrunner.output.printer import CHAOS_NAME
from procrunner.output.terminal import Terminal
from procrunner.supervise.chaos import parse_chaos
from procrunner.supervise.events import (
    AttachRequest,
    ChaosRequest,
    Command,
    KillRequest,
    PsRequest,
    RestartRequest,
    ScaleRequest,
    StopRequest,
    WatchTriggered,
)
from procrunner.supervise.instance import Instance, Remove, ps_row
from procrunner.supervise.restart import Restart
from procrunner.supervise.states import Cause, State
from procrunner.supervise.tree import signal_name

if TYPE_CHECKING:
    from procrunner.supervise.supervisor import Supervisor

SOURCE = "control"
UP = (State.STARTING, State.RUNNING)
DOWN = (State.STOPPED, State.EXITED, State.FATAL)
SHOWN_FILES = 5  # changed files named in a watch line


def perform(supervisor: Supervisor, command: Command, reply: asyncio.Future[Any]) -> None:
    """Carry out ``command`` and answer through ``reply`` (gone if the client left)."""
    try:
        result = _perform(supervisor, command)
    except ProcrunnerError as exc:
        if not reply.done():
            reply.set_exception(exc)
        return
    if not reply.done():
        reply.set_result(result)


def _perform(supervisor: Supervisor, command: Command) -> dict[str, Any]:
    if isinstance(command, PsRequest):
        return ps(supervisor)
    if isinstance(command, AttachRequest):
        return {"terminal": terminal(supervisor, command.target)}
    if supervisor.status is not None:
        raise ProcrunnerError("the formation is stopping", SOURCE)
    match command:
        case ScaleRequest(counts):
            return scale(supervisor, dict(counts))
        case RestartRequest(targets):
            return {"restarting": [restart(supervisor, i) for i in resolve(supervisor, targets)]}
        case StopRequest(()):
            supervisor.begin_shutdown(0, "stop requested through the control socket")
            return {"stopping": sorted(supervisor.instances)}
        case StopRequest(targets):
            return {"stopping": [stop(supervisor, i) for i in resolve(supervisor, targets)]}
        case KillRequest(targets, signum):
            return {"signalled": [kill(i, signum) for i in resolve(supervisor, targets)]}
        case ChaosRequest(action, spec, target):
            return chaos(supervisor, action, spec, target)
    raise ProcrunnerError(f"unknown command {command!r}", SOURCE)


def ps(supervisor: Supervisor) -> dict[str, Any]:
    schedule = supervisor.chaos
    planner = schedule.planner
    return {
        "pid": os.getpid(),
        "stopping": supervisor.status is not None,
        "instances": [ps_row(i) for i in supervisor.instances.values()],
        "chaos": {
            "on": schedule.on,
            "spec": planner.spec.describe(planner.seed) if planner else None,
            "seed": planner.seed if planner else None,
            "next_at": planner.next_at if planner and schedule.on else None,
            "kills": schedule.kills,
        },
    }


def terminal(supervisor: Supervisor, target: str) -> Terminal:
    instance = supervisor.instances.get(target)
    if instance is None:
        raise ProcrunnerError(f"no instance {target!r}", SOURCE)
    incarnation = instance.incarnation
    if not supervisor.options.for_type(instance.spec.type_name).tty:
        raise ProcrunnerError(
            f"{target} has no terminal: start its type with --tty {instance.spec.type_name}",
            SOURCE,
        )
    if incarnation is None or incarnation.terminal is None or instance.state not in UP:
        raise ProcrunnerError(f"{target} is {instance.state.value}", SOURCE)
    return incarnation.terminal


def resolve(supervisor: Supervisor, targets: tuple[str, ...]) -> list[Instance]:
    """Instance names (``web.1``) and type names (``web``, all its instances), in order."""
    found: list[Instance] = []
    instances = supervisor.instances
    for target in targets:
        if target in instances:
            matched = [instances[target]]
        else:
            matched = [i for i in instances.values() if i.spec.type_name == target]
            if not matched and target not in supervisor.make_spec.type_names:
                known = ", ".join(instances) or "none"
                raise ProcrunnerError(
                    f"no instance or process type {target!r} (instances: {known})", SOURCE
                )
        found += [i for i in matched if i not in found]
    return found


def scale(supervisor: Supervisor, counts: dict[str, int]) -> dict[str, Any]:
    """Add instances up to the count (next names, foreman's ports); stop the highest-numbered
    ones beyond it, gracefully, and drop their slots once stopped."""
    for type_name, count in counts.items():
        if count < 0:
            raise ProcrunnerError(f"count {count} for {type_name!r} is negative", SOURCE)
        supervisor.make_spec(type_name, max(count, 1))  # unknown type, port range, router
    started: list[str] = []
    stopping: list[str] = []
    for type_name, count in counts.items():
        slots = {
            i.spec.number: i for i in supervisor.instances.values() if i.spec.type_name == type_name
        }
        before = sum(1 for i in slots.values() if not isinstance(i.fate, Remove))
        for number in range(1, count + 1):
            instance = slots.get(number)
            if instance is None:
                instance = supervisor.add(supervisor.make_spec(type_name, number))
                supervisor.start_when_free(instance)
                started.append(instance.spec.name)
            elif isinstance(instance.fate, Remove):  # scaled down and up before it stopped
                instance.fate = Restart(0.0)
                started.append(instance.spec.name)
        for number in sorted(n for n in slots if n > count):
            instance = slots[number]
            if not isinstance(instance.fate, Remove):
                stopping.append(instance.spec.name)
                _remove(supervisor, instance)
        if before != count:
            supervisor.printer.system(f"scaled {type_name} from {before} to {count} (requested)")
            supervisor.notices.post("scaled", type=type_name, before=before, after=count)
    return {"started": started, "stopping": stopping}


def _remove(supervisor: Supervisor, instance: Instance) -> None:
    if instance.state in UP:
        instance.fate = Remove()
        instance.cause = Cause.SCALED
        supervisor.stop(instance)
        return
    if instance.state is State.STOPPING:
        instance.fate = Remove()
        return
    if instance.state is State.BACKOFF:
        supervisor.cancel_backoff(instance)
        supervisor.transition(instance, State.STOPPED)
    supervisor.retire(instance)


def restart(supervisor: Supervisor, instance: Instance, cause: Cause = Cause.REQUESTED) -> str:
    """Graceful restart of a live instance; a start for one that is down or waiting."""
    if instance.state in UP:
        instance.cause = cause
        instance.fate = Restart(0.0)
        instance.down_since = supervisor.clock.now()
        supervisor.stop(instance)
    elif instance.state is State.STOPPING:
        instance.fate = Restart(0.0)
    else:
        if instance.state is State.BACKOFF:
            supervisor.cancel_backoff(instance)
        instance.streak = 0
        supervisor.start(instance)
    return instance.spec.name


def stop(supervisor: Supervisor, instance: Instance) -> str:
    """Stop one instance; it stays STOPPED until restarted."""
    if instance.state in UP:
        instance.cause = Cause.REQUESTED
        instance.fate = None
        supervisor.stop(instance)
    elif instance.state is State.BACKOFF:
        supervisor.cancel_backoff(instance)
        supervisor.transition(instance, State.STOPPED)
    elif not isinstance(instance.fate, Remove):  # stopping: stays down; held: waits no more
        instance.fate = None
    return instance.spec.name


def kill(instance: Instance, signum: int) -> str:
    """Send a signal to the instance's process group (an app reloads on HUP, say)."""
    incarnation = instance.incarnation
    if incarnation is None or instance.state in DOWN or instance.state is State.BACKOFF:
        raise ProcrunnerError(f"{instance.spec.name} is {instance.state.value}", SOURCE)
    incarnation.send_signal(signum)
    return instance.spec.name


def chaos(
    supervisor: Supervisor, action: str, spec: str | None, target: str | None
) -> dict[str, Any]:
    schedule = supervisor.chaos
    if action == "on":
        if not spec:
            raise ProcrunnerError("chaos on needs a SPEC, e.g. every=10s", SOURCE)
        supervisor.start_chaos(parse_chaos(spec, supervisor.make_spec.type_names))
    elif action == "off":
        schedule.stop()
        supervisor.printer.system("chaos off (requested)", CHAOS_NAME)
        supervisor.notices.post("chaos", action="off")
    elif action == "now":
        victim = _victim(supervisor, target)
        planner = schedule.planner
        chaos_kill(supervisor, victim, planner.spec.signal if planner else signal.SIGKILL)
        return {"killed": victim.spec.name}
    else:
        raise ProcrunnerError(f"unknown chaos action {action!r}: on, off or now", SOURCE)
    return {"on": schedule.on}


def _victim(supervisor: Supervisor, target: str | None) -> Instance:
    """The named instance, else one chosen as the schedule would (its types), else any."""
    if target is not None:
        instance = supervisor.instances.get(target)
        if instance is None or instance.state not in UP:
            raise ProcrunnerError(f"{target!r} is not a running instance", SOURCE)
        return instance
    running = {n: i for n, i in supervisor.instances.items() if i.state is State.RUNNING}
    if not running:
        raise ProcrunnerError("no running instance to kill", SOURCE)
    planner = supervisor.chaos.planner
    types = {n: i.spec.type_name for n, i in running.items()}
    name = planner.choose(list(running), types) if planner is not None else None
    return running[name] if name is not None else random.choice(list(running.values()))


def reload(supervisor: Supervisor, event: WatchTriggered) -> None:
    """Files changed: restart the matching types' instances (cause ``watch``), start again
    those that had crashed or given up (the fix may be in), leave stopped ones alone."""
    if supervisor.status is not None:
        return
    if event.failure is not None:
        why = f"the watcher failed ({event.failure}); changes may have been missed"
    else:
        more = len(event.files) - SHOWN_FILES
        shown = ", ".join(event.files[:SHOWN_FILES]) + (f" and {more} more" if more > 0 else "")
        why = f"{len(event.files)} changed: {shown}"
    affected = [
        i
        for i in supervisor.instances.values()
        if i.spec.type_name in event.types
        and i.state is not State.STOPPED
        and not (i.state is State.STOPPING and i.cause is Cause.WATCH)
    ]
    if not affected:
        return
    supervisor.printer.system(f"watch: {why}: restarting {', '.join(event.types)}")
    supervisor.notices.post("watch", files=list(event.files), types=list(event.types))
    for instance in affected:
        restart(supervisor, instance, Cause.WATCH)


def chaos_tick(supervisor: Supervisor) -> None:
    """The schedule says kill: a victim among the RUNNING instances of its types."""
    schedule = supervisor.chaos
    planner = schedule.planner
    if supervisor.status is not None or planner is None or not schedule.on:
        return
    instances = supervisor.instances
    running = [n for n, i in instances.items() if i.state is State.RUNNING]
    victim = planner.choose(running, {n: i.spec.type_name for n, i in instances.items()})
    if victim is None:
        supervisor.printer.system("no running instance to kill this time", CHAOS_NAME)
        return
    chaos_kill(supervisor, instances[victim], planner.spec.signal)
    if schedule.count_kill():
        limit = planner.spec.max_kills
        supervisor.printer.system(f"done: {limit} kills (max={limit})", CHAOS_NAME)


def chaos_kill(supervisor: Supervisor, victim: Instance, sig: int) -> None:
    """Kill the victim's tree; it restarts at once, outside the backoff, cause ``chaos``."""
    assert victim.incarnation is not None
    uptime = format_duration(victim.incarnation.uptime)
    supervisor.printer.system(
        f"killing {victim.label} (up {uptime}) with {signal_name(sig)}", CHAOS_NAME
    )
    supervisor.notices.post(
        "chaos", action="kill", instance=victim.spec.name, incarnation=victim.count
    )
    victim.cause = Cause.CHAOS
    victim.fate = Restart(0.0)
    victim.down_since = supervisor.clock.now()
    supervisor.stop(victim, sig)
