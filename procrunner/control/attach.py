"""``procrunner connect``: this terminal, attached to an instance's PTY through the control
socket. Ctrl-] detaches and leaves the instance running."""

from __future__ import annotations

import contextlib
import os
import selectors
import shutil
import socket
import sys
import termios
import tty
from collections.abc import Iterator
from typing import BinaryIO

from procrunner.control.client import Connection

DETACH = b"\x1d"  # Ctrl-], as telnet


def attach(connection: Connection, target: str) -> int:
    interactive = sys.stdin.isatty()
    columns, rows = shutil.get_terminal_size() if interactive else (0, 0)
    connection.request("connect", target=target, rows=rows, columns=columns)
    sock, early = connection.take_raw()
    print(f"attached to {target}; Ctrl-] detaches", file=sys.stderr, flush=True)
    out = sys.stdout.buffer
    out.write(early)
    out.flush()
    with _raw(sys.stdin.fileno()) if interactive else contextlib.nullcontext():
        detached = _pump(sock, sys.stdin.fileno(), out)
    print("\r\ndetached" if detached else f"\r\n{target} ended", file=sys.stderr)
    return 0


def _pump(sock: socket.socket, keys: int, out: BinaryIO) -> bool:
    """Copy keys to the socket and the socket to stdout; True when the user detached."""
    with selectors.DefaultSelector() as selector:
        selector.register(sock, selectors.EVENT_READ)
        selector.register(keys, selectors.EVENT_READ)
        while True:
            for key, _ in selector.select():
                if key.fileobj is sock:
                    data = sock.recv(65536)
                    if not data:
                        return False
                    out.write(data)
                    out.flush()
                    continue
                typed = os.read(keys, 4096)
                if not typed:
                    selector.unregister(keys)  # input ended: keep showing output
                    continue
                before, detach, _ = typed.partition(DETACH)
                if before:
                    sock.sendall(before)
                if detach:
                    return True


@contextlib.contextmanager
def _raw(fd: int) -> Iterator[None]:
    saved = termios.tcgetattr(fd)
    tty.setraw(fd)
    try:
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)
