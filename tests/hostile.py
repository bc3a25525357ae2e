"""A hostile child for the wipe tests, run as an unprivileged user (``nobody``) when tests are
root. Standard library only, plus ``procrunner.scratch.wipe`` for the ``wipe`` command.

    hostile.py build SCRATCH CANARY      plant symlinks, links, odd modes, fifo, socket
    hostile.py deep SCRATCH CANARY N     a chain of N directories, a file and a symlink below
    hostile.py many SCRATCH CANARY N K   N empty files, K to a directory, and a symlink
    hostile.py race SCRATCH CANARY OUT   build a tree, print "ready", then swap directories
                                         and symlinks to CANARY until killed (bounded)
    hostile.py wipe PATH MODE [NOFILE]   MODE: inventory, wipe or both; prints JSON
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import resource
import socket
import sys
import time
from pathlib import Path

RACE_SECONDS = 20.0  # a racer left behind stops by itself
RACE_DEPTH = 6


def build(scratch: Path, canary: Path) -> None:
    os.chdir(scratch)
    os.symlink(canary, "to-canary")
    os.symlink(canary / "file", "to-canary-file")
    os.symlink("/", "to-root")
    os.symlink(scratch.parent, "to-parent")
    os.symlink("loop-b", "loop-a")
    os.symlink("loop-a", "loop-b")
    os.symlink(".", "self")
    os.link(canary / "file", "hard-link")
    os.link(canary / "sub" / "deep", "hard-link-2")
    for mode in (0o000, 0o500, 0o100, 0o300):
        top = Path(f"mode-{mode:o}")
        (top / "inner").mkdir(parents=True)
        (top / "file").write_bytes(b"x" * 10)
        (top / "inner" / "file").write_bytes(b"y" * 20)
        os.symlink(canary, top / "inner" / "to-canary")
        os.link(canary / "file", top / "inner" / "hard-link")  # CVE-2023-6597's shape
        (top / "inner").chmod(mode)
        top.chmod(mode)
    os.mkfifo("fifo")
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind("socket")
    for name in (b"\n", b"\xff\xfe", b"-rf", b" space ", b"n" * 255):
        Path(os.fsdecode(name)).write_bytes(b"z")
    odd = Path(os.fsdecode(b"-rf dir\n\xff"))
    odd.mkdir()
    (odd / "file").write_bytes(b"w")
    os.symlink(canary, odd / os.fsdecode(b"\xfe-link"))


def deep(scratch: Path, canary: Path, depth: int) -> None:
    fd = os.open(scratch, os.O_RDONLY | os.O_DIRECTORY)
    for _ in range(depth):  # by fd: the path is far longer than PATH_MAX
        os.mkdir("d", dir_fd=fd)
        child = os.open("d", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
        os.close(fd)
        fd = child
    leaf = os.open("f", os.O_WRONLY | os.O_CREAT, 0o600, dir_fd=fd)
    os.write(leaf, b"x" * 42)
    os.close(leaf)
    os.symlink(canary, "to-canary", dir_fd=fd)
    os.close(fd)


def many(scratch: Path, canary: Path, count: int, per_dir: int) -> None:
    os.symlink(canary, scratch / "to-canary")
    for start in range(0, count, per_dir):
        folder = scratch / f"d{start // per_dir}"
        folder.mkdir()
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
        for i in range(start, min(count, start + per_dir)):
            os.close(os.open(f"f{i}", os.O_WRONLY | os.O_CREAT, 0o600, dir_fd=fd))
        os.close(fd)


def grow(scratch: Path, files: int) -> None:
    """A tree to race on: a/b/c/... with ``files`` files per level."""
    level = scratch / "a"
    for depth in range(RACE_DEPTH):
        level.mkdir(exist_ok=True)
        for i in range(files):
            (level / f"f{i}").write_bytes(b"r" * depth)
        level = level / chr(ord("b") + depth)


def race(scratch: Path, canary: Path, out: Path) -> None:
    grow(scratch, 100)
    print("ready", flush=True)
    a, b, c = scratch / "a", scratch / "a" / "b", scratch / "a" / "b" / "c"
    swaps = [  # (directory, where it goes meanwhile): inside scratch, up a level, outside
        (a, scratch / "a-away"),
        (b, scratch / "b-away"),
        (c, out / "c-away"),
        (c, scratch / "a" / "c-away"),
    ]
    deadline = time.monotonic() + RACE_SECONDS
    turn = 0
    while time.monotonic() < deadline:
        turn += 1
        place, away = swaps[turn % len(swaps)]
        with contextlib.suppress(OSError):
            os.rename(place, away)
            with contextlib.suppress(OSError):
                os.symlink(canary, place)
            with contextlib.suppress(OSError):
                os.unlink(place)
            os.rename(away, place)
        if turn % 64 == 0:
            with contextlib.suppress(OSError):
                grow(scratch, 2)


def wipe(path: Path, mode: str, nofile: int | None) -> None:
    from procrunner.scratch.wipe import inventory, inventory_and_wipe

    if nofile is not None:
        hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, hard))
    results = []
    if mode in ("inventory", "both"):
        results.append(inventory(path))
    if mode in ("wipe", "both"):
        results.append(inventory_and_wipe(path))
    print(json.dumps([dataclasses.asdict(result) for result in results]))


def main(argv: list[str]) -> None:
    command, args = argv[0], argv[1:]
    if command == "build":
        build(Path(args[0]), Path(args[1]))
    elif command == "deep":
        deep(Path(args[0]), Path(args[1]), int(args[2]))
    elif command == "many":
        many(Path(args[0]), Path(args[1]), int(args[2]), int(args[3]))
    elif command == "race":
        race(Path(args[0]), Path(args[1]), Path(args[2]))
    elif command == "wipe":
        wipe(Path(args[0]), args[1], int(args[2]) if len(args) > 2 else None)
    else:
        raise SystemExit(f"unknown command {command!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
