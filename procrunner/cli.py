"""The command line: parse, then wire settings, Procfile, formation, supervisor, exit status.

Only this module prints errors and chooses exit statuses: 2 for bad input, 128+N when a
signal stopped procrunner, otherwise what the supervisor decided.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from procrunner import __version__
from procrunner.app import (
    App,
    instance_environment,
    load_app,
    load_environment,
    new_run_id,
    procfile_and_root,
)
from procrunner.durations import parse_duration
from procrunner.errors import ProcrunnerError
from procrunner.events import Event, OutputBroken
from procrunner.output import Printer, Sink, Style
from procrunner.procfile import load_procfile
from procrunner.settings import AppOptions, StartSettings
from procrunner.supervisor import RunOptions, Supervisor
from procrunner.watchdog import Watchdog

BAD_INPUT = 2


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line, like every other bad input."""

    def error(self, message: str) -> NoReturn:
        self.exit(BAD_INPUT, f"{self.prog}: {message} (see '{self.prog} --help')\n")


def _app_arguments(parser: argparse.ArgumentParser, formation: bool = True) -> None:
    parser.add_argument("-f", "--procfile", metavar="FILE", help="Procfile (default ./Procfile)")
    parser.add_argument(
        "-d", "--root", metavar="DIR", help="app root (default: the Procfile's folder)"
    )
    parser.add_argument(
        "-e",
        "--env",
        metavar="FILES",
        help="comma-separated env files, later ones win (default: ROOT/.env if present)",
    )
    parser.add_argument(
        "--env-precedence",
        choices=("file", "os"),
        default="file",
        help="which wins when a variable is in both: env files (default) or the OS environment",
    )
    parser.add_argument("-p", "--port", metavar="N", help="base port (default: $PORT or 5000)")
    if formation:
        parser.add_argument(
            "-m",
            "-c",
            "--formation",
            "--concurrency",
            dest="formation",
            metavar="SPEC",
            help="instances per type, e.g. web=2,worker=1 or all=2 (default all=1)",
        )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="procrunner", description="Run a Procfile formation.")
    parser.add_argument("--version", action="version", version=f"procrunner {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    commands.required = True

    start = commands.add_parser("start", help="run the formation in the foreground")
    _app_arguments(start)
    start.add_argument("types", nargs="*", metavar="TYPE", help="run only these process types")
    start.add_argument(
        "-t", "--timeout", default="5", metavar="DURATION",
        help="how long to wait after SIGTERM before SIGKILL (default 5s)",
    )
    start.add_argument(
        "--run-for", metavar="DURATION", help="stop the formation gracefully after DURATION"
    )
    start.add_argument(
        "--color", action=argparse.BooleanOptionalAction, default=None,
        help="colour the prefixes (default: when stdout is a terminal and NO_COLOR is unset)",
    )
    start.add_argument("--no-timestamp", action="store_true", help="omit the time in prefixes")
    start.add_argument("--no-prefix", action="store_true", help="print output lines bare")
    start.add_argument(
        "--merge-stderr", action="store_true", help="show stderr lines like stdout lines"
    )
    start.set_defaults(handler=_start)

    check = commands.add_parser("check", help="validate the Procfile, env files and formation")
    _app_arguments(check)
    check.set_defaults(handler=_check)

    run = commands.add_parser(
        "run", help="run one command (or a Procfile entry) with the app's environment"
    )
    _app_arguments(run, formation=False)
    run.add_argument("argv", nargs=argparse.REMAINDER, metavar="COMMAND")
    run.set_defaults(handler=_run)
    return parser


def _port(value: str | None) -> int | None:
    if value is None:
        return None
    if not value.isdigit() or not 1 <= int(value) <= 65535:
        raise ProcrunnerError(f"{value!r} is not a port number (1-65535)", "--port")
    return int(value)


def _app_options(args: argparse.Namespace) -> AppOptions:
    env_files = None
    if args.env is not None:
        env_files = tuple(Path(p.strip()) for p in args.env.split(",") if p.strip())
    return AppOptions(
        procfile=Path(args.procfile) if args.procfile else None,
        root=Path(args.root) if args.root else None,
        env_files=env_files,
        formation=getattr(args, "formation", None),
        port=_port(args.port),
        env_precedence=args.env_precedence,
        types=tuple(getattr(args, "types", ())),
    )


def _start_settings(args: argparse.Namespace) -> StartSettings:
    color = args.color
    if color is None:
        color = sys.stdout.isatty() and not os.environ.get("NO_COLOR")
    run_for = None if args.run_for is None else parse_duration(args.run_for, "--run-for")
    return StartSettings(
        app=_app_options(args),
        run=RunOptions(stop_timeout=parse_duration(args.timeout, "--timeout"), run_for=run_for),
        style=Style(
            timestamps=not args.no_timestamp,
            prefix=not args.no_prefix,
            color=color,
            merge_stderr=args.merge_stderr,
        ),
    )


def _start(args: argparse.Namespace) -> int:
    settings = _start_settings(args)
    app = load_app(settings.app, os.environ)
    return asyncio.run(_run_formation(settings, app))


async def _run_formation(settings: StartSettings, app: App) -> int:
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
    env_for = functools.partial(instance_environment, app.env, run_id=run_id)
    with Watchdog(run_id, settings.run.stop_timeout) as watchdog:
        supervisor = Supervisor(
            app.plan, app.root, env_for, printer, queue, settings.run, watchdog
        )
        try:
            status = await supervisor.run()
        finally:
            await asyncio.to_thread(printer.sink.close)
        watchdog.release()
    return status


def _check(args: argparse.Namespace) -> int:
    app = load_app(_app_options(args), os.environ)
    print(f"valid Procfile: {app.procfile} ({len(app.types)} process types)")
    width = max(len(t.name) for t in app.types)
    for index, kind in enumerate(app.types):
        count = app.counts[kind.name]
        first = app.base_port + 100 * index
        ports = f"port {first}" if count <= 1 else f"ports {first}-{first + count - 1}"
        print(f"  {kind.name.ljust(width)}  x{count}  {ports:<17} {kind.command}")
    sources = ", ".join(str(p) for p in app.env_files) or "none"
    print(f"env files: {sources}")
    return 0


def _run(args: argparse.Namespace) -> int:
    argv: list[str] = args.argv[1:] if args.argv[:1] == ["--"] else args.argv
    if not argv:
        raise ProcrunnerError("no command given", "procrunner run")
    options = _app_options(args)
    procfile, root = procfile_and_root(options)
    env, _ = load_environment(options, root, os.environ)
    if len(argv) == 1 and procfile.is_file():
        for index, kind in enumerate(load_procfile(procfile)):
            if kind.name == argv[0]:
                argv = ["/bin/sh", "-c", kind.command]
                port = options.port or int(env.get("PORT", "5000"))
                env["PORT"] = str(port + 100 * index)
    try:
        os.execvpe(argv[0], argv, env)
    except FileNotFoundError:
        print(f"procrunner run: command not found: {argv[0]}", file=sys.stderr)
        return 127
    except PermissionError:
        print(f"procrunner run: permission denied: {argv[0]}", file=sys.stderr)
        return 126


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        status: int = args.handler(args)
    except ProcrunnerError as exc:
        print(f"procrunner: {exc}", file=sys.stderr)
        return BAD_INPUT
    except KeyboardInterrupt:
        return 130
    return status
