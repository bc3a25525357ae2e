"""The commands that drive a running formation through its control socket: ps, scale,
restart, stop, kill, logs, chaos, events, attach and wait. Each is a thin client; the
supervisor acts."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from procrunner.config.discovery import app_root, configured_socket
from procrunner.config.durations import format_duration
from procrunner.config.units import format_bytes
from procrunner.control.client import Connection
from procrunner.control.socketpath import socket_path
from procrunner.errors import ProcrunnerError

Handler = Callable[[argparse.Namespace, Connection], int]


def add_commands(commands: Any) -> None:
    """Register the client commands on the ``procrunner`` subcommand parser."""
    ps = _command(commands, "ps", "list the instances of the running formation", _ps)
    ps.add_argument("--json", action="store_true", help="print the table as JSON")
    scale = _command(commands, "scale", "change the formation live: web=3 worker=0", _scale)
    scale.add_argument("counts", nargs="+", metavar="TYPE=N")
    restart = _command(commands, "restart", "restart instances or types gracefully", _restart)
    restart.add_argument("targets", nargs="+", metavar="INSTANCE|TYPE")
    stop = _command(commands, "stop", "stop instances, or the whole formation", _stop)
    stop.add_argument("targets", nargs="*", metavar="INSTANCE|TYPE")
    kill = _command(commands, "kill", "send a signal to instances' process groups", _kill)
    kill.add_argument("targets", nargs="+", metavar="INSTANCE|TYPE")
    kill.add_argument("-s", "--signal", default="TERM", help="signal name or number (TERM)")
    logs = _command(commands, "logs", "follow the formation's output", _logs)
    logs.add_argument("targets", nargs="*", metavar="INSTANCE|TYPE")
    logs.add_argument("-n", "--lines", type=int, default=10, metavar="N",
                      help="lines of recent output to show first (default 10)")
    logs.add_argument("--no-follow", action="store_true", help="print the recent lines, exit")
    logs.add_argument("--raw-output", action="store_true",
                      help="pass children's control sequences to the terminal as they are "
                      "(by default, on a terminal, all but colours are shown escaped)")
    chaos = _command(commands, "chaos", "chaos on SPEC | off | now [INSTANCE]", _chaos)
    chaos.add_argument("action", choices=("on", "off", "now"))
    chaos.add_argument("argument", nargs="?", metavar="SPEC|INSTANCE")
    connect = _command(
        commands, "connect", "attach to an instance of a --tty type (Ctrl-] detaches)", _connect
    )
    connect.add_argument("target", metavar="INSTANCE")
    events = _command(commands, "events", "stream the supervisor's events as JSON lines",
                      _events)
    events.add_argument("--output", action="store_true", help="include output lines")
    _command(commands, "attach", "follow the formation's output as start prints it (Ctrl-C "
             "detaches, the formation goes on)", _attach)
    wait = commands.add_parser(
        "wait", help="until the instances of these types (default all) are running and ready")
    add_client_arguments(wait)
    wait.add_argument("types", nargs="*", metavar="TYPE|INSTANCE")
    wait.add_argument("--timeout", metavar="DURATION",
                      help="give up after this long: exit 1 (default: no limit)")
    wait.set_defaults(handler=_wait)


def _command(commands: Any, name: str, summary: str, handler: Handler) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = commands.add_parser(name, help=summary)
    add_client_arguments(parser)
    parser.set_defaults(handler=lambda args: _connect_and_run(args, handler))
    return parser


def add_client_arguments(parser: argparse.ArgumentParser) -> None:
    """How a client names the formation it drives."""
    parser.add_argument("-d", "--root", metavar="DIR",
                        help="the app root (default: nearest folder upward with a Procfile)")
    parser.add_argument("-f", "--procfile", metavar="FILE", help="the app's Procfile")
    parser.add_argument("--socket", metavar="PATH", help="the control socket of the formation")


def _connect_and_run(args: argparse.Namespace, handler: Handler) -> int:
    root, path = formation_socket(args)
    with Connection(path, root) as connection:  # a reader that left: cli.main ends quietly
        return handler(args, connection)


def formation_socket(args: argparse.Namespace) -> tuple[Path, Path]:
    """The app root and the control socket of its formation, from the client's sources."""
    root = app_root(args.root, args.procfile)
    explicit = configured_socket(args.socket, root, os.environ)
    return root, socket_path(root, explicit, os.environ)


def _ps(args: argparse.Namespace, connection: Connection) -> int:
    result = connection.request("ps")
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    rows = [_ps_row(row) for row in result["instances"]]
    router = any(row["connections"] is not None for row in result["instances"])
    headings = ["instance", "state", "pid", "inc", "uptime", "restarts", "rss", "scratch",
                "port"] + (["conns"] if router else [])
    table = [headings] + [row[: len(headings)] for row in rows]
    widths = [max(len(r[i]) for r in table) for i in range(len(headings))]
    for row in table:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    if kinds := sorted({row["containment"] for row in result["instances"] if row["containment"]}):
        print(f"containment: {', '.join(kinds)}")
    chaos = result["chaos"]
    if chaos["on"]:
        due = f", next kill in {format_duration(max(chaos['next_at'] - time.time(), 0))}" if (
            chaos["next_at"]) else ""
        print(f"{chaos['spec']}; {chaos['kills']} kills so far{due}")
    return 0


def _ps_row(row: dict[str, Any]) -> list[str]:
    def shown(value: Any, show: Callable[[Any], str] = str) -> str:
        return "-" if value is None else show(value)

    restarts = ", ".join(f"{c} {n}" for c, n in sorted(row["restarts"].items())) or "0"
    scratch = "-"
    if row["scratch_files"] is not None:
        scratch = f"{row['scratch_files']} / {format_bytes(row['scratch_bytes'])}"
    return [
        row["name"], row["state"], shown(row["pid"]), f"#{row['incarnation']}",
        shown(row["uptime"], format_duration), restarts, shown(row["rss"], format_bytes),
        scratch, str(row["port"]), shown(row["connections"]),
    ]


def _scale(args: argparse.Namespace, connection: Connection) -> int:
    counts: dict[str, int] = {}
    for entry in args.counts:
        name, _, count = entry.partition("=")
        if not name or not count.isdigit():
            raise ProcrunnerError(f"expected TYPE=N, got {entry!r}", "scale")
        counts[name] = int(count)
    result = connection.request("scale", counts=counts)
    _say("started", result["started"])
    _say("stopping", result["stopping"])
    if result.get("failed"):
        _say("failed to start", result["failed"])
    return 0


def _restart(args: argparse.Namespace, connection: Connection) -> int:
    _say("restarting", connection.request("restart", targets=args.targets)["restarting"])
    return 0


def _stop(args: argparse.Namespace, connection: Connection) -> int:
    _say("stopping", connection.request("stop", targets=args.targets)["stopping"])
    return 0


def _kill(args: argparse.Namespace, connection: Connection) -> int:
    sent = connection.request("kill", targets=args.targets, signal=args.signal)["signalled"]
    _say(f"sent SIG{args.signal.upper().removeprefix('SIG')} to", sent)
    return 0


def _chaos(args: argparse.Namespace, connection: Connection) -> int:
    argument = args.argument
    if args.action == "on":
        if not argument:
            raise ProcrunnerError("chaos on needs a SPEC, e.g. every=10s", "chaos")
        connection.request("chaos", action="on", spec=argument)
        print("chaos on")
    elif args.action == "off":
        connection.request("chaos", action="off")
        print("chaos off")
    else:
        killed = connection.request("chaos", action="now", target=argument)["killed"]
        print(f"chaos: killed {killed}")
    return 0


def _logs(args: argparse.Namespace, connection: Connection) -> int:
    follow = not args.no_follow
    shown = _shown_text(escape=sys.stdout.isatty() and not args.raw_output)
    result = connection.request("logs", targets=args.targets, lines=args.lines, follow=follow)
    for line in result["lines"]:
        _print_line(line["time"], line["instance"], shown(line["text"]), line["stderr"])
    if follow:
        for notice in connection.notices():
            if notice["event"] == "dropped":
                print(f"({notice['count']} notices dropped: this reader was too slow)",
                      file=sys.stderr)
                continue
            for text in notice["lines"]:
                _print_line(notice["time"], notice["instance"], shown(text), notice["stderr"])
    return 0


def _shown_text(escape: bool) -> Callable[[str], str]:
    """How ``logs`` shows a child's line: on a terminal as ``start`` does (colours kept, every
    other control sequence shown as text, so none acts on the user's screen), else as is."""
    if not escape:
        return str
    from procrunner.output.controls import escape_line  # a terminal's reader pays for it

    return lambda text: escape_line(text.encode()).decode()


def _connect(args: argparse.Namespace, connection: Connection) -> int:
    from procrunner.control.attach import attach

    return attach(connection, args.target)


def _attach(_args: argparse.Namespace, connection: Connection) -> int:
    from procrunner.control.follow_formation import attach_formation

    return attach_formation(connection)


def _wait(args: argparse.Namespace) -> int:
    from procrunner.config.durations import parse_duration
    from procrunner.control.wait import wait_until_ready

    timeout = None if args.timeout is None else parse_duration(args.timeout, "--timeout")
    root, path = formation_socket(args)
    return wait_until_ready(root, path, args.types, timeout)


def _events(args: argparse.Namespace, connection: Connection) -> int:
    connection.request("events", output=args.output)
    for notice in connection.notices():
        print(json.dumps(notice), flush=True)
    return 0


def _print_line(when: float, name: str, text: str, stderr: bool) -> None:
    stamp = time.strftime("%H:%M:%S", time.localtime(when))
    print(f"{stamp} {name} {'!' if stderr else '|'} {text}", flush=True)


def _say(what: str, names: list[str]) -> None:
    print(f"{what}: {', '.join(names)}" if names else f"{what}: none")
