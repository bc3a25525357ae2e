"""The command line: parse, then wire settings, Procfile, formation, supervisor, exit status.

Only this module prints errors and chooses exit statuses: 2 for bad input, 128+N when a
signal stopped procrunner, otherwise what the supervisor decided.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

from procrunner import __version__
from procrunner.client import NotRunning
from procrunner.commands import add_commands
from procrunner.errors import ProcrunnerError

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


def _router_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--router", action="store_true",
        help="one port in front of the web instances; each connection goes to a random one",
    )
    parser.add_argument(
        "--router-type", metavar="TYPE",
        help="the process type behind the router (default web; implies --router)",
    )
    parser.add_argument(
        "--router-port", metavar="N",
        help="the router's port (default: the type's first port, its instances move up by "
        "one; implies --router)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="procrunner", description="Run a Procfile formation.")
    parser.add_argument("--version", action="version", version=f"procrunner {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    commands.required = True

    start = commands.add_parser("start", help="run the formation in the foreground")
    _app_arguments(start)
    start.add_argument("types", nargs="*", metavar="TYPE", help="run only these process types")
    _router_arguments(start)
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
    start.add_argument(
        "--restart", metavar="POLICY",
        help="stop-all (default), never, on-failure or always; or per type: web=always,...",
    )
    start.add_argument(
        "--backoff", metavar="SPEC",
        help="restart backoff, e.g. first=0.5s,max=30s,reset=10s (the defaults)",
    )
    start.add_argument(
        "--give-up", metavar="N/DURATION",
        help="mark an instance fatal after N crashes within DURATION, e.g. 5/60s",
    )
    start.add_argument(
        "--chaos", metavar="SPEC",
        help="kill running instances on a schedule: every=10s or rate=6/min, types=, signal=, "
        "seed=, after=, max=",
    )
    start.add_argument(
        "--scratch-root", metavar="DIR",
        help="where run scratch dirs go (default: <temp dir>/procrunner-<uid>/<app hash>)",
    )
    start.add_argument(
        "--keep-scratch", action="store_true",
        help="keep ended incarnations' scratch dirs (for debugging) instead of wiping them",
    )
    start.add_argument(
        "--audit", action="store_true",
        help="report files written into the app root during the run (local state)",
    )
    start.add_argument(
        "--audit-ignore", metavar="PATHS",
        help="comma-separated paths the audit ignores, e.g. backing-service data",
    )
    start.add_argument(
        "--summary-json", metavar="FILE", help="also write the exit summary as JSON to FILE"
    )
    start.add_argument(
        "--tty", metavar="TYPES",
        help="comma-separated types whose instances get a terminal (procrunner connect)",
    )
    start.add_argument(
        "--socket", metavar="PATH",
        help="the control socket (default: one per app root, in a private per-user folder)",
    )
    start.set_defaults(handler=_start)

    check = commands.add_parser("check", help="validate the Procfile, env files and formation")
    _app_arguments(check)
    _router_arguments(check)
    check.set_defaults(handler=_check)

    run = commands.add_parser(
        "run", help="run one command (or a Procfile entry) with the app's environment"
    )
    _app_arguments(run, formation=False)
    run.add_argument("argv", nargs=argparse.REMAINDER, metavar="COMMAND")
    run.set_defaults(handler=_run)
    add_commands(commands)
    return parser


# The command functions import what they need: `procrunner ps` must not pay for `start`.


def _start(args: argparse.Namespace) -> int:
    from procrunner.app import load_app
    from procrunner.options import app_options, start_settings

    app = load_app(app_options(args), os.environ)
    settings = start_settings(args, app)
    import asyncio  # the supervisor's machinery: only `start` pays for its imports

    from procrunner.session import run_formation

    return asyncio.run(run_formation(settings, app))


def _check(args: argparse.Namespace) -> int:
    from procrunner.app import load_app
    from procrunner.formation import PORT_STEP
    from procrunner.options import app_options

    app = load_app(app_options(args), os.environ)
    print(f"valid Procfile: {app.procfile} ({len(app.types)} process types)")
    width = max(len(t.name) for t in app.types)
    for index, kind in enumerate(app.types):
        count = app.counts[kind.name]
        ports = sorted(spec.port for spec in app.plan if spec.type_name == kind.name)
        first = ports[0] if ports else app.base_port + PORT_STEP * index
        shown = f"port {first}" if count <= 1 else f"ports {first}-{ports[-1]}"
        print(f"  {kind.name.ljust(width)}  x{count}  {shown:<17} {kind.command}")
    if app.options.router is not None:
        print(f"router: port {app.router_port}, in front of {app.options.router.type_name}")
    sources = ", ".join(str(p) for p in app.env_files) or "none"
    print(f"env files: {sources}")
    return 0


def _run(args: argparse.Namespace) -> int:
    argv: list[str] = args.argv[1:] if args.argv[:1] == ["--"] else args.argv
    if not argv:
        raise ProcrunnerError("no command given", "procrunner run")
    from procrunner.app import load_environment, procfile_and_root
    from procrunner.options import app_options
    from procrunner.procfile import load_procfile

    options = app_options(args)
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
    except NotRunning as exc:
        print(f"procrunner: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return status
