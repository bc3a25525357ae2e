"""One run of ``procrunner start``: opens the front doors (control socket, router), wires the
printer, scratch space, watchdog, audit and supervisor together, then prints the summary.
Returns the exit status."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import sys
from collections.abc import AsyncIterator

from procrunner.app import App, instance_environment, new_run_id
from procrunner.control import ControlServer
from procrunner.events import Event, OutputBroken
from procrunner.history import OutputHistory
from procrunner.notices import Notices
from procrunner.output import Printer, Sink
from procrunner.router import HOST, ROUTER_VARIABLE, Router
from procrunner.scratch import ScratchSpace
from procrunner.settings import StartSettings
from procrunner.socketpath import socket_path
from procrunner.supervisor import Supervisor
from procrunner.units import format_bytes
from procrunner.watchdog import Watchdog


async def run_formation(settings: StartSettings, app: App) -> int:
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[Event] = asyncio.Queue()

    def sink(printer: Printer) -> Sink:
        return Sink(
            sys.stdout.fileno(),
            loop,
            printer.congestion_changed,
            lambda: queue.put_nowait(OutputBroken()),
        )

    notices = Notices()
    history = OutputHistory()
    async with _router(app) as router, _control(settings, app, queue, notices, history, router):
        printer = Printer(settings.style, sink)
        printer.observe = functools.partial(_observe, history, notices)
        run_id = new_run_id()
        scratch = ScratchSpace(settings.scratch_root, app.root, run_id, settings.keep_scratch)
        try:
            if settings.keep_scratch:
                printer.system(f"--keep-scratch: scratch kept in {scratch.root}")
            for run, swept in await asyncio.to_thread(scratch.sweep_stale):
                printer.system(
                    f"removed the scratch of run {run}, left by a procrunner that died: "
                    f"{swept.files} files / {format_bytes(swept.bytes)}"
                )
            if router is not None:
                printer.system(
                    f"router on {HOST}:{router.port}: each connection goes to a random ready "
                    f"{router.type_name} instance (no sticky sessions)"
                )
            supervisor = Supervisor(
                app.plan,
                app.make_spec,
                app.root,
                _env_for(app, run_id, router),
                printer,
                queue,
                settings.run,
                scratch,
                listeners=[router.follow] if router is not None else [],
                notices=notices,
            )
            return await _supervise(settings, app, run_id, supervisor, scratch, router)
        finally:
            await asyncio.to_thread(scratch.close)
            await asyncio.to_thread(printer.sink.close)


@contextlib.asynccontextmanager
async def _router(app: App) -> AsyncIterator[Router | None]:
    if app.options.router is None or app.router_port is None:
        yield None
        return
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
    queue: asyncio.Queue[Event],
    notices: Notices,
    history: OutputHistory,
    router: Router | None,
) -> AsyncIterator[ControlServer]:
    path = socket_path(app.root, settings.socket, os.environ)
    server = ControlServer(path, app.root, queue, notices, history, router)
    chosen = settings.socket is not None or bool(os.environ.get("PROCRUNNER_SOCKET"))
    await server.open(private_parent=not chosen)
    try:
        yield server
    finally:
        await server.close()


def _observe(history: OutputHistory, notices: Notices, name: str, body: bytes, err: bool) -> None:
    history.add(name, body, err)
    if notices.wants_output:
        lines = body.decode(errors="replace").splitlines()
        notices.post("output", instance=name, stderr=err, lines=lines)


def _env_for(app: App, run_id: str, router: Router | None) -> functools.partial[dict[str, str]]:
    env = dict(app.env)
    if router is not None:
        env[ROUTER_VARIABLE] = f"{HOST}:{router.port}"
    return functools.partial(instance_environment, env, run_id=run_id)


async def _supervise(
    settings: StartSettings,
    app: App,
    run_id: str,
    supervisor: Supervisor,
    scratch: ScratchSpace,
    router: Router | None,
) -> int:
    own_files = [scratch.base, *settings.audit_ignore]
    if settings.summary_json is not None:
        own_files.append(settings.summary_json)
    audit = None
    if settings.audit:  # watchfiles is a heavy import: only with --audit
        from procrunner.audit import Audit
        from procrunner.ignore import app_filter

        audit = Audit(app.root, app_filter(own_files), supervisor.printer)
    stop_audit = asyncio.Event()
    watching = asyncio.create_task(audit.watch(stop_audit)) if audit else None
    with Watchdog(run_id, settings.run.stop_timeout) as watchdog:
        supervisor.watchdog = watchdog
        status = await supervisor.run()
        watchdog.release()
    if watching is not None and audit is not None:
        stop_audit.set()
        await watching
        audit.finish()
    from procrunner.summary import summary_data, summary_lines, write_summary_json

    connections = router.stats if router is not None else None
    order = app.make_spec.type_names
    every = {
        i.spec.name: i
        for i in sorted(
            [*supervisor.retired, *supervisor.instances.values()],
            key=lambda i: (order.index(i.spec.type_name), i.spec.number),
        )
    }
    for line in summary_lines(every, connections):
        supervisor.printer.system(line)
    if settings.summary_json is not None:
        data = summary_data(every, run_id, app.root, status, connections)
        write_summary_json(settings.summary_json, data)
    return status
