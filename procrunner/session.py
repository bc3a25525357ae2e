"""One run of ``procrunner start``: wires the printer, scratch space, watchdog, audit and
supervisor together, then prints the summary. Returns the exit status."""

from __future__ import annotations

import asyncio
import functools
import sys

from procrunner.app import App, instance_environment, new_run_id
from procrunner.events import Event, OutputBroken
from procrunner.output import Printer, Sink
from procrunner.router import HOST, ROUTER_VARIABLE, Router
from procrunner.scratch import ScratchSpace
from procrunner.settings import StartSettings
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

    printer = Printer(settings.style, sink)
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
        return await _supervise(settings, app, run_id, printer, queue, scratch)
    finally:
        await asyncio.to_thread(scratch.close)
        await asyncio.to_thread(printer.sink.close)


async def _supervise(
    settings: StartSettings,
    app: App,
    run_id: str,
    printer: Printer,
    queue: asyncio.Queue[Event],
    scratch: ScratchSpace,
) -> int:
    own_files = [scratch.base, *settings.audit_ignore]
    if settings.summary_json is not None:
        own_files.append(settings.summary_json)
    audit = None
    if settings.audit:  # watchfiles is a heavy import: only with --audit
        from procrunner.audit import Audit
        from procrunner.ignore import app_filter

        audit = Audit(app.root, app_filter(own_files), printer)
    stop_audit = asyncio.Event()
    watching = asyncio.create_task(audit.watch(stop_audit)) if audit else None
    env = dict(app.env)
    router = None
    if app.options.router is not None and app.router_port is not None:
        router = Router(app.options.router.type_name, app.router_port)
        await router.open()
        env[ROUTER_VARIABLE] = f"{HOST}:{router.port}"
        printer.system(
            f"router on {HOST}:{router.port}: each connection goes to a random ready "
            f"{router.type_name} instance (no sticky sessions)"
        )
    env_for = functools.partial(instance_environment, env, run_id=run_id)
    listeners = [router.follow] if router is not None else []
    try:
        with Watchdog(run_id, settings.run.stop_timeout) as watchdog:
            supervisor = Supervisor(
                app.plan,
                app.root,
                env_for,
                printer,
                queue,
                settings.run,
                scratch,
                watchdog,
                listeners,
            )
            status = await supervisor.run()
            watchdog.release()
    finally:
        if router is not None:
            await router.close()
    if watching is not None and audit is not None:
        stop_audit.set()
        await watching
        audit.finish()
    from procrunner.summary import summary_data, summary_lines, write_summary_json

    connections = router.stats if router is not None else None
    for line in summary_lines(supervisor.instances, connections):
        printer.system(line)
    if settings.summary_json is not None:
        data = summary_data(supervisor.instances, run_id, app.root, status, connections)
        write_summary_json(settings.summary_json, data)
    return status
