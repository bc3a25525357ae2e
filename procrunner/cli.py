"""The command line: parse, then wire settings, Procfile, formation, supervisor, exit status.

Only this module prints errors and chooses exit statuses: 2 for bad input, 128+N when a
signal stopped procrunner, otherwise what the supervisor decided.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import gc
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, NoReturn

from procrunner import __version__
from procrunner.config.model import (
    VALUE_FLAGS_BEFORE_COMMAND,
    add_arguments,
    add_before_command_arguments,
    apply_before_command,
)
from procrunner.errors import MachineLimit, NotRunning, ProcrunnerError

if TYPE_CHECKING:
    from procrunner.config.load import Loaded

BAD_INPUT = 2
_OPENSSL_MODULES = ("ssl", "_hashlib")


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line, like every other bad input."""

    def error(self, message: str) -> NoReturn:
        self.exit(BAD_INPUT, f"{self.prog}: {message} (see '{self.prog} --help')\n")


def _app_arguments(parser: argparse.ArgumentParser) -> None:
    add_arguments(parser, "export")


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """Every command's parser; or, for one of the app commands (``start``, ``check``, ``run``,
    ``config``), that command's alone: the others' flags take longer to build (~4 ms) than
    ``start`` takes to parse, and are never used once the command is known."""
    parser = _Parser(prog="procrunner", description="Run a Procfile formation.")
    parser.add_argument("--version", action="version", version=f"procrunner {__version__}")
    add_before_command_arguments(parser)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    commands.required = True
    if command in _APP_COMMANDS:
        _APP_COMMANDS[command](commands)
        return parser
    for add_app_command in _APP_COMMANDS.values():
        add_app_command(commands)
    from procrunner.control.commands import add_commands
    from procrunner.dashboard.command import add_dashboard
    from procrunner.export.command import add_export_command

    add_commands(commands)
    add_export_command(commands, _app_arguments)
    add_dashboard(commands)
    return parser


def _add_start(commands: Any) -> None:
    start = commands.add_parser("start", help="run the formation in the foreground")
    add_arguments(start, "start")
    start.add_argument("types", nargs="*", metavar="TYPE", help="run only these process types")
    start.set_defaults(handler=_start)


def _add_check(commands: Any) -> None:
    check = commands.add_parser("check", help="validate the Procfile, env files and formation")
    add_arguments(check, "check")
    check.set_defaults(handler=_check)


def _add_run(commands: Any) -> None:
    run = commands.add_parser(
        "run", help="run one command (or a Procfile entry) with the app's environment"
    )
    add_arguments(run, "run")
    run.add_argument("argv", nargs=argparse.REMAINDER, metavar="COMMAND")
    run.set_defaults(handler=_run)


def _add_config(commands: Any) -> None:
    config = commands.add_parser(
        "config", help="print every effective setting and where its value came from"
    )
    add_arguments(config, "config")
    config.set_defaults(handler=_config)


# The command functions import what they need: `procrunner ps` must not pay for `start`.


def _loaded(args: argparse.Namespace) -> Loaded:
    """Every settings source read, checked and frozen, with the app; warnings printed."""
    from procrunner.config.load import load

    loaded = load(args, os.environ)
    _warn(loaded.sources.warnings)
    return loaded


def _warn(warnings: Sequence[str]) -> None:
    for warning in warnings:
        print(f"procrunner: warning: {warning}", file=sys.stderr)


def _note(notice: str | None) -> None:
    if notice:
        print(f"procrunner: {notice}", file=sys.stderr)


def _start(args: argparse.Namespace) -> int:
    with _lean_imports():
        loaded = _loaded(args)
    settings, listening = loaded.settings, None
    if settings.detach:
        from procrunner.control.detach import detach

        named = ["-d", str(loaded.app.root)] if args.root or args.procfile else []
        named += ["--socket", str(settings.socket)] if args.socket else []
        forked = detach(settings, loaded.app.root, named)
        if isinstance(forked, int):  # the starter: the run listens, or has ended
            return forked
        settings, listening = forked.settings, forked.listening
    from procrunner.config.app import new_run_id
    from procrunner.supervise.watchdog import Watchdog

    run_id = new_run_id()
    timeout = settings.run.longest_stop_timeout(loaded.app.make_spec.type_names)
    # The watchdog (a small shell until it is needed) starts before the imports below, rather
    # than competing for the CPU with the instances it is there for.
    with Watchdog(run_id, timeout) as watchdog:
        with _lean_imports():  # the supervisor's machinery: only `start` pays for its imports
            import asyncio
            import hashlib  # noqa: F401  (imported here, it keeps its builtin sha256)

            from procrunner.run import run_formation

        opening = [loaded.notice] if loaded.notice else []
        return asyncio.run(
            run_formation(settings, loaded.app, run_id, watchdog, opening, listening)
        )


@contextlib.contextmanager
def _lean_imports() -> Iterator[None]:
    """Imports in this block run without garbage collection (they allocate much and free
    little), and what they made is then frozen out of it: else the first collection walks
    every one of those objects (~12 ms at startup). They find no OpenSSL either: asyncio
    imports ssl and hashlib imports _hashlib when they can, which maps OpenSSL: about 4.5 MiB
    of RSS and 7 ms of startup, for TLS that procrunner never speaks and a sha256 that
    hashlib's builtin one computes the same."""
    absent = [name for name in _OPENSSL_MODULES if name not in sys.modules]
    for name in absent:
        sys.modules[name] = None  # type: ignore[assignment]  # importing it raises ImportError
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        gc.enable()
        for name in absent:
            del sys.modules[name]


def _config(args: argparse.Namespace) -> int:
    from procrunner.config.report import config_lines

    print("\n".join(config_lines(_loaded(args))))
    return 0


def _check(args: argparse.Namespace) -> int:
    from procrunner.config.formation import PORT_STEP
    from procrunner.config.settings import RELEASE_TYPE

    loaded = _loaded(args)
    _note(loaded.notice)
    app = loaded.app
    print(f"valid Procfile: {app.procfile} ({len(app.types)} process types)")
    # the release type runs once before the formation (unless --no-release), never in it
    release = next((kind for kind in app.types if kind.name == RELEASE_TYPE), None)
    width = max((len(t.name) for t in app.types if t is not release), default=0)
    for index, kind in enumerate(app.types):
        if kind is release:
            continue
        count = app.counts[kind.name]
        ports = sorted(spec.port for spec in app.plan if spec.type_name == kind.name)
        first = ports[0] if ports else app.base_port + PORT_STEP * index
        shown = f"port {first}" if count <= 1 else f"ports {first}-{ports[-1]}"
        print(f"  {kind.name.ljust(width)}  x{count}  {shown:<17} {kind.command}")
    if release is not None:
        when = "runs once, before the formation" if loaded.settings.run.release else (
            "skipped (the release setting is off)")
        print(f"release step: {when}: {release.command}")
    if app.options.router is not None:
        print(f"router: port {app.router_port}, in front of {app.options.router.type_name}")
    sources = ", ".join(str(p) for p in app.env_files) or "none"
    print(f"env files: {sources}")
    from procrunner.platform import containment

    print(f"containment: {containment()}")
    return 0


def _run(args: argparse.Namespace) -> int:
    argv: list[str] = args.argv[1:] if args.argv[:1] == ["--"] else args.argv
    if not argv:
        raise ProcrunnerError("no command given", "procrunner run")
    from procrunner.config.app import load_environment, procfile_and_root
    from procrunner.config.formation import PORT_STEP
    from procrunner.config.load import app_options, load_from, procfile_notice, read_sources

    sources = read_sources(args, os.environ)
    _warn(sources.warnings)
    options = app_options(sources)
    procfile, root = procfile_and_root(options)
    if procfile.is_file():
        _note(procfile_notice(sources, procfile))
    if len(argv) == 1 and procfile.is_file():  # maybe a Procfile entry: load the app as check
        app = load_from(sources, os.environ).app
        env = dict(app.env)
        for index, kind in enumerate(app.types):
            if kind.name == argv[0]:
                argv = ["/bin/sh", "-c", kind.command]
                env["PORT"] = str(app.base_port + PORT_STEP * index)
    else:
        env, _ = load_environment(options, root, os.environ)
    try:
        os.execvpe(argv[0], argv, env)
    except FileNotFoundError:
        print(f"procrunner run: command not found: {argv[0]}", file=sys.stderr)
        return 127
    except PermissionError:
        print(f"procrunner run: permission denied: {argv[0]}", file=sys.stderr)
        return 126


_APP_COMMANDS: dict[str, Callable[[Any], None]] = {
    "start": _add_start,
    "check": _add_check,
    "run": _add_run,
    "config": _add_config,
}


def command_word(words: Sequence[str]) -> str | None:
    """The command, past the options given before it (``-f Procfile.dev start``)."""
    index = 0
    while index < len(words):
        word = words[index]
        if not word.startswith("-"):
            return word
        index += 2 if word in VALUE_FLAGS_BEFORE_COMMAND else 1
    return None


def main(argv: Sequence[str] | None = None) -> int:
    words = sys.argv[1:] if argv is None else list(argv)
    args = build_parser(command_word(words)).parse_args(words)
    apply_before_command(args)
    try:
        status: int = args.handler(args)
        sys.stdout.flush()
    except BrokenPipeError:
        # Whoever read the output (``| head``) has had enough: a quiet, successful end; what
        # is still buffered goes nowhere, so that the interpreter's exit cannot fail on it.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except MachineLimit as exc:
        print(f"procrunner: {exc}", file=sys.stderr)
        return 1
    except RuntimeError as exc:
        if "can't start new thread" not in str(exc):
            raise
        print("procrunner: cannot start a thread (the process limit, ulimit -u?)", file=sys.stderr)
        return 1
    except OSError as exc:
        if exc.errno not in (errno.EMFILE, errno.ENFILE):
            raise
        print(f"procrunner: {exc.strerror} (the descriptor limit, ulimit -n?)", file=sys.stderr)
        return 1
    except ProcrunnerError as exc:
        print(f"procrunner: {exc}", file=sys.stderr)
        return BAD_INPUT
    except NotRunning as exc:
        print(f"procrunner: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return status
