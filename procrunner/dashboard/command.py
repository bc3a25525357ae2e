"""``procrunner dashboard``: registered with the other commands, so it imports nothing heavy;
the server is imported only when the command runs."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from procrunner.control.commands import app_root
from procrunner.control.socketpath import is_live, socket_path
from procrunner.errors import NotRunning


def add_dashboard(commands: Any) -> None:
    parser: argparse.ArgumentParser = commands.add_parser(
        "dashboard", help="serve a live web page of the running formation (loopback only)"
    )
    parser.add_argument("-d", "--root", metavar="DIR",
                        help="the app root (default: nearest folder upward with a Procfile)")
    parser.add_argument("-f", "--procfile", metavar="FILE", help="the app's Procfile")
    parser.add_argument("--socket", metavar="PATH", help="the control socket of the formation")
    parser.add_argument("--port", metavar="N", help="the page's port (default: a free one)")
    parser.add_argument("--host", default="127.0.0.1", metavar="ADDRESS",
                        help="a loopback address to listen on (default 127.0.0.1)")
    parser.set_defaults(handler=_dashboard)


def _dashboard(args: argparse.Namespace) -> int:
    import asyncio

    from procrunner.config.options import port_number
    from procrunner.dashboard.guard import loopback_host
    from procrunner.dashboard.server import serve

    host = loopback_host(args.host)
    port = port_number(args.port) or 0
    root = app_root(args)
    path = socket_path(root, Path(args.socket) if args.socket else None, os.environ)
    if not is_live(path):
        raise NotRunning(f"no procrunner is running for {root}")
    return asyncio.run(serve(path, host, port))
