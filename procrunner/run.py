"""One run of ``procrunner start``: opens the front doors (control socket, router), wires the
printer, scratch space, watchdog, audit and supervisor together, then prints the summary.
Returns the exit status."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import signal
import sys
import time
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from procrunner.config.app import App, instance_environment
from procrunner.config.settings import StartSettings
from procrunner.control.detach import RUN_LOG
from procrunner.control.history import OutputHistory
from procrunner.control.notices import Notices
from procrunner.control.server import ControlServer
from procrunner.control.socketpath import socket_path
from procrunner.output.logfiles import RotatingSink
from procrunner.output.printer import CHAOS_NAME, Printer
from procrunner.output.sink import Sink
from procrunner.scratch.space import ScratchSpace
from procrunner.supervise.events import OutputBroken
from procrunner.supervise.facts import Facts
from procrunner.supervise.handle import Incoming
from procrunner.supervise.ledger import Ledger
from procrunner.supervise.messages import Narration, print_fact
from procrunner.supervise.readiness import ReadinessChecks
from procrunner.supervise.spawner import LoopClock, ProcessSpawner
from procrunner.supervise.supervisor import Supervisor
from procrunner.supervise.watch import WatchRule, watch, watch_rules
from procrunner.supervise.watchdog import Watchdog, take_down

if TYPE_CHECKING:
    from procrunner.router import Router


async def run_formation(
    settings: StartSettings,
    app: App,
    run_id: str,
    watchdog: Watchdog,
    opening: Sequence[str] = (),
    listening: Callable[[], None] | None = None,
) -> int:
    """``opening``: system lines to print first (which Procfile, when found elsewhere);
    ``listening``: called once the control socket (and the dashboard) answer."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[Incoming] = asyncio.Queue()

    def sink(printer: Printer) -> Sink:
        def broken(_error: OSError) -> None:
            queue.put_nowait(OutputBroken())

        if settings.detach and settings.log_dir is not None:  # stdout is the run's log file
            path = settings.log_dir / RUN_LOG
            return RotatingSink(path, sys.stdout.fileno(), loop, printer.congestion_changed,
                                broken, mirrors=(sys.stderr.fileno(),))  # fmt: skip
        return Sink(sys.stdout.fileno(), loop, printer.congestion_changed, broken)

    notices = Notices()
    history = OutputHistory()
    readiness = ReadinessChecks(queue.put_nowait, settings.run.start_seconds)
    async with (
        _router(app) as router,
        _control(settings, app, queue, notices, history, router) as control,
        _dashboard(settings.dashboard, control.path) as dashboard,
    ):
        printer = Printer(settings.style, sink, settings.log_dir)
        # Names are padded to the longest in the formation from the first line on.
        printer.add_names([*(spec.name for spec in app.plan), CHAOS_NAME])
        for line in opening:
            printer.system(line)
        if dashboard is not None:
            printer.system(f"dashboard on {dashboard}", chatter=True)
        if listening is not None:
            listening()
        printer.observe = functools.partial(_observe, history, notices, readiness)
        scratch = ScratchSpace(settings.scratch_root, app.root, run_id, settings.keep_scratch)
        try:
            if settings.keep_scratch:
                printer.system(f"--keep-scratch: scratch kept in {scratch.root}", chatter=True)
            watchdog.leaves(scratch.root, control.path)
            timeout = settings.run.stop_timeout
            stop_leftovers = functools.partial(take_down, groups={}, timeout=timeout)
            for stale in await asyncio.to_thread(scratch.sweep_stale, stop_leftovers):
                for line in stale.lines():
                    printer.system(line)
            if router is not None:
                printer.system(
                    f"router on {router.address}: each connection goes to a random ready "
                    f"{router.type_name} instance (no sticky sessions)",
                    chatter=True,
                )
            env_for = _env_for(app, run_id, router)
            spawner = ProcessSpawner(app.root, env_for, printer, scratch, watchdog)
            ledger = Ledger()
            tell = functools.partial(print_fact, printer, Narration())
            facts = Facts((tell, notices.follow, ledger.follow))
            if router is not None:
                facts.subscribe(router.follow)
            supervisor = Supervisor(
                app.plan, app.make_spec, settings.run, spawner, LoopClock(), readiness, queue,
                facts,
            )  # fmt: skip
            began = time.monotonic()
            status = await _supervise(settings, app, supervisor, printer, scratch, watchdog,
                                      queue)  # fmt: skip
            elapsed = time.monotonic() - began
            summary = _summarize(settings, app, run_id, status, ledger, printer, router, elapsed)
            # the last notice, before the front doors close: followers (the dashboard among
            # them) see how the run ended
            notices.post("finished", status=status, summary=summary)
            return status
        finally:
            await asyncio.to_thread(scratch.close)
            await printer.close()


def _dashboard(enabled: bool, path: Path) -> contextlib.AbstractAsyncContextManager[str | None]:
    """``--dashboard``'s URL while it runs; its server is imported only when asked for."""
    if not enabled:
        return contextlib.nullcontext()
    from procrunner.dashboard.server import alongside

    return alongside(path)


@contextlib.asynccontextmanager
async def _router(app: App) -> AsyncIterator[Router | None]:
    if app.options.router is None or app.router_port is None:
        yield None
        return
    from procrunner.router import Router  # only a run with --router pays for its import

    router = Router(app.options.router.type_name, app.router_port)
    await router.open()
    try:
        yield router
    finally:
        await router.close()


@contextlib.asynccontextmanager
async def _control(
    settings: StartSettings,
    app: App,
    queue: asyncio.Queue[Incoming],
    notices: Notices,
    history: OutputHistory,
    router: Router | None,
) -> AsyncIterator[ControlServer]:
    path = socket_path(app.root, settings.socket, os.environ)
    server = ControlServer(path, app.root, queue.put_nowait, notices, history, router)
    chosen = settings.socket is not None or bool(os.environ.get("PROCRUNNER_SOCKET"))
    await server.open(private_parent=not chosen)
    try:
        yield server
    finally:
        await server.close()


def _observe(
    history: OutputHistory,
    notices: Notices,
    readiness: ReadinessChecks,
    name: str,
    body: bytes,
    err: bool,
) -> None:
    history.add(name, body, err)
    readiness.saw_output(name, body)
    if notices.wants_output:
        lines = body.decode(errors="replace").splitlines()
        notices.post("output", instance=name, stderr=err, lines=lines)


def _env_for(app: App, run_id: str, router: Router | None) -> functools.partial[dict[str, str]]:
    env = dict(app.env)
    if router is not None:
        env.update(router.variables())
    return functools.partial(instance_environment, env, run_id=run_id)


def _own_files(settings: StartSettings, scratch: ScratchSpace) -> list[Path]:
    """What procrunner itself writes, and the declared backing-service data: never local
    state for --audit, never a reason to reload for --watch."""
    own = [scratch.base, *settings.audit_ignore]
    own += [path for t in settings.run.types.values() for path in t.backing]
    own += [p for p in (settings.summary_json, settings.log_dir) if p is not None]
    return own


def _watch_rules(settings: StartSettings, app: App) -> list[WatchRule]:
    globs = {name: t.watch for name, t in settings.run.types.items()}
    return watch_rules(app.make_spec.type_names, globs, settings.run.watch)


async def _supervise(
    settings: StartSettings,
    app: App,
    supervisor: Supervisor,
    printer: Printer,
    scratch: ScratchSpace,
    watchdog: Watchdog,
    queue: asyncio.Queue[Incoming],
) -> int:
    audit = None
    stop_watching = asyncio.Event()
    watching: list[asyncio.Task[None]] = []
    rules = _watch_rules(settings, app)
    if settings.audit or rules:  # watchfiles is a heavy import: only when asked for
        from procrunner.scratch.audit import Audit
        from procrunner.scratch.ignore import app_filter

        accept = app_filter(_own_files(settings, scratch))
        if settings.audit:
            audit = Audit(app.root, accept, printer)
            watching.append(asyncio.create_task(audit.watch(stop_watching)))
        if rules:
            reloads = watch(
                app.root, rules, accept, queue.put_nowait, stop_watching,
                settings.run.watch_debounce,
            )
            watching.append(asyncio.create_task(reloads))
    watchdog.armed = True
    status = await supervisor.run()
    # The formation is down; a late Ctrl-C (the second of two quick ones) must not cut the
    # summary short or make the exit status a death by SIGINT.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    watchdog.release()
    stop_watching.set()
    await asyncio.gather(*watching)
    if audit is not None:
        audit.finish()
    return status


def _summarize(
    settings: StartSettings,
    app: App,
    run_id: str,
    status: int,
    ledger: Ledger,
    printer: Printer,
    router: Router | None,
    elapsed: float,
) -> list[str]:
    """Prints the summary; its lines."""
    from procrunner.supervise.summary import summary_data, summary_lines, write_summary_json

    connections = router.stats if router is not None else None
    every = ledger.in_order(app.make_spec.type_names)
    lines = summary_lines(every, elapsed, connections, settings.keep_scratch)
    for line in lines:
        printer.system(line, chatter=True)
    if settings.summary_json is not None:
        data = summary_data(every, run_id, app.root, status, connections)
        write_summary_json(settings.summary_json, data)
    return lines
