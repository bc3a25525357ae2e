"""A child program for tests: ``python kid.py BEHAVIOUR [ARGS]``.

Each behaviour prints a line that tests wait for (``ready``), so no test sleeps blindly.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import threading
import time


def ready(text: str = "ready") -> None:
    print(text, flush=True)


def forever() -> None:
    while True:
        time.sleep(3600)


def env(*names: str) -> None:
    for name in names:
        print(f"{name}={os.environ.get(name, '<unset>')!r}", flush=True)
    forever()


def ignore_term() -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    ready("ignoring TERM")
    forever()


def escape(how: str) -> None:
    """Leave a descendant behind that procrunner must still find and stop."""
    if how == "double-fork":
        if os.fork() == 0:
            os.setsid()
            if os.fork() == 0:
                forever()
            os._exit(0)
        os.wait()
    elif os.fork() == 0:
        if how != "group":
            os.setsid()
        if how == "ignore-term-setsid":
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
        forever()
    ready(f"escaped {how}")
    forever()


def leave(how: str) -> None:
    """Exit at once, leaving a descendant behind (same group, or setsid)."""
    if os.fork() == 0:
        if how == "setsid":
            os.setsid()
        forever()
    ready("leaving")


def lines(count: str, size: str, done_file: str = "") -> None:
    width = int(size) - 1
    out = sys.stdout.buffer
    for i in range(int(count)):
        out.write(f"{os.environ.get('PS', '?')} {i:09d} ".encode().ljust(width, b"x") + b"\n")
    out.flush()
    ready("lines done")
    if done_file:
        open(f"{done_file}.{os.environ['PS']}", "w").close()
    forever()


def unflushed() -> None:
    print("said without flush")
    forever()


def signals() -> None:
    """Report each HUP, USR1 or USR2 received."""
    for sig in (signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2):
        signal.signal(sig, lambda number, _: print(f"got {signal.Signals(number).name}"))
    ready()
    forever()


def serve() -> None:
    """A TCP server on $PORT; each connection sends one command line:
    ``who`` (reply PS), ``echo`` (echo until EOF), ``stream N`` (send N bytes, close)."""
    server = socket.create_server(("127.0.0.1", int(os.environ["PORT"])))
    ready("serving")
    while True:
        conn, _ = server.accept()
        threading.Thread(target=_serve_one, args=(conn,), daemon=True).start()


def _serve_one(conn: socket.socket) -> None:
    with conn, conn.makefile("rb") as reader:
        command = reader.readline().split()
        if command == [b"who"]:
            conn.sendall(os.environ["PS"].encode() + b"\n")
        elif command == [b"echo"]:
            while chunk := reader.read1(65536):
                conn.sendall(chunk)
        elif command[:1] == [b"stream"]:
            block = bytes(range(256)) * 256
            left = int(command[1])
            while left > 0:
                left -= conn.send(block[: min(left, len(block))])


BEHAVIOURS = {
    "env": env,
    "ignore-term": ignore_term,
    "escape": escape,
    "leave": leave,
    "lines": lines,
    "unflushed": unflushed,
    "serve": serve,
    "signals": signals,
    "sleep": lambda: (ready(), forever()),
}

if __name__ == "__main__":
    BEHAVIOURS[sys.argv[1]](*sys.argv[2:])
