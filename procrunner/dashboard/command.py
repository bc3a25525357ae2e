"""``procrunner dashboard``: registered with the other commands, so it imports nothing heavy;
the server is imported only when the command runs."""

from __future__ import annotations

import argparse
from typing import Any

from procrunner.control.commands import add_client_arguments, formation_socket
from procrunner.control.socketpath import is_live
from procrunner.errors import NotRunning


def add_dashboard(commands: Any) -> None:
    parser: argparse.ArgumentParser = commands.add_parser(
        "dashboard", help="serve a live web page of the running formation (loopback only)"
    )
    add_client_arguments(parser)
    parser.add_argument("--port", metavar="N", help="the page's port (default: a free one)")
    parser.add_argument("--host", default="127.0.0.1", metavar="ADDRESS",
                        help="a loopback address to listen on (default 127.0.0.1)")
    parser.set_defaults(handler=_dashboard)


def _dashboard(args: argparse.Namespace) -> int:
    import asyncio

    from procrunner.config.values import Convert, to_port
    from procrunner.dashboard.guard import loopback_host
    from procrunner.dashboard.server import serve

    host = loopback_host(args.host)
    port = to_port(args.port, Convert("--port")) if args.port is not None else 0
    root, path = formation_socket(args)
    if not is_live(path):
        raise NotRunning(f"no procrunner is running for {root}")
    return asyncio.run(serve(path, host, port))
