"""The scratch wipe: exact inventories, and nothing outside the scratch directory changes
(content, mode, mtime of a canary tree) whatever the child planted.

As root, the hostile child (tests/hostile.py) runs as ``nobody``, like a child under a root
procrunner; the permission cases also run the wipe itself as ``nobody``, since root ignores
modes. Without root, both already run unprivileged as the current user; only the cases that
need a second user or a mount are skipped.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import hashlib
import json
import os
import pwd
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from other_user import PACKAGE, readable_copy

from procrunner.scratch.wipe import Inventory, inventory, inventory_and_wipe

ROOT = Path(__file__).resolve().parent.parent
HOSTILE = Path(__file__).with_name("hostile.py")
IS_ROOT = os.geteuid() == 0
NEEDS_ROOT = pytest.mark.skipif(not IS_ROOT, reason="needs root: a second user or a mount")
RACE_ROUNDS = int(os.environ.get("WIPE_RACE_ROUNDS", "20"))
# tmpfs when there is one: creating 10^5 files on a disk can take seconds; WIPE_TEST_DIR=/tmp
# runs the cases on the disk instead.
FAST_TMP = os.environ.get("WIPE_TEST_DIR") or (
    "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None
)
# What hostile.py build plants, counted: 7 symlinks, 2 hard links, 4 mode dirs x (2 files, a
# symlink, a hard link), a fifo, a socket, 5 odd names, an odd dir with a file and a symlink.
PLANTED_FILES = 34
ODD_NAMES = [b"\n", b"\xff\xfe", b"-rf", b" space ", b"n" * 255]


def child_user() -> dict[str, Any]:
    if not IS_ROOT:
        return {}
    return {"user": "nobody", "group": "nogroup", "extra_groups": []}


@functools.cache
def child_python() -> str:
    """A Python >= 3.11 that the child's user may run (the venv's may sit under /root)."""
    for candidate in (sys.executable, shutil.which("python3"), "/usr/bin/python3"):
        if candidate is None:
            continue
        with contextlib.suppress(OSError):
            probe = [candidate, "-c", "import sys; assert sys.version_info >= (3, 11)"]
            if subprocess.run(probe, cwd="/", check=False, **child_user()).returncode == 0:
                return candidate
    pytest.skip("no Python >= 3.11 that user nobody can run")


@functools.cache
def child_files() -> Path:
    """tests/hostile.py and the package it imports, copied where the child's user can read
    them (a clone in a 0700 home folder or in /root is out of its reach)."""
    folder = Path(tempfile.mkdtemp(prefix="wipe-child-"))
    atexit.register(shutil.rmtree, folder, True)
    readable_copy(folder, HOSTILE, PACKAGE)
    return folder


def hostile_process(*args: object, as_child: bool = True) -> dict[str, Any]:
    """The subprocess arguments that run tests/hostile.py ARGS: as the child's user (nobody
    when root) from its copy, or as ourselves from the repository."""
    if not as_child:
        command = [sys.executable, str(HOSTILE), *map(str, args)]
        return {"args": command, "cwd": ROOT, "env": {**os.environ, "PYTHONPATH": str(ROOT)}}
    copy = child_files()
    command = [child_python(), str(copy / HOSTILE.name), *map(str, args)]
    env = {**os.environ, "PYTHONPATH": str(copy)}
    return {"args": command, "cwd": copy, "env": env, **child_user()}


def hostile(*args: object, as_child: bool = True) -> str:
    """Run tests/hostile.py (as nobody when root); its stdout."""
    result = subprocess.run(
        **hostile_process(*args, as_child=as_child),
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def wiped_by_child(
    path: Path, mode: str, nofile: int | None = None, as_child: bool = True
) -> list[Inventory]:
    """Inventories from tests/hostile.py wipe (run as nobody when root and as_child)."""
    out = hostile("wipe", path, mode, *([] if nofile is None else [nofile]), as_child=as_child)
    return [
        Inventory(d["files"], d["bytes"], tuple(map(tuple, d["largest"])), tuple(d["problems"]))
        for d in json.loads(out)
    ]


def snapshot(top: Path) -> dict[str, tuple[object, ...]]:
    """Type, mode, owner, size, mtime and content (or link target) of everything under top."""
    seen: dict[str, tuple[object, ...]] = {}
    for dirpath, dirnames, filenames in os.walk(top):
        for name in ["", *dirnames, *filenames]:
            path = os.path.join(dirpath, name) if name else dirpath
            info = os.lstat(path)
            data: object = None
            if stat.S_ISLNK(info.st_mode):
                data = os.readlink(path)
            elif stat.S_ISREG(info.st_mode):
                data = hashlib.sha256(Path(path).read_bytes()).hexdigest()
            seen[os.path.relpath(path, top)] = (
                stat.S_IFMT(info.st_mode),
                stat.S_IMODE(info.st_mode),
                info.st_uid,
                info.st_gid,
                info.st_size,
                info.st_mtime_ns,
                data,
            )
    return seen


@dataclass
class Area:
    """/tmp/wipe-test-*/ with a canary tree, the scratch directory and the racer's outside."""

    top: Path
    canary: Path
    scratch: Path
    out: Path
    before: dict[str, tuple[object, ...]]

    def canary_intact(self) -> None:
        assert snapshot(self.canary) == self.before


def give_to_child(*paths: Path) -> None:
    if not IS_ROOT:
        return
    nobody = pwd.getpwnam("nobody")
    for path in paths:
        for dirpath, dirnames, filenames in os.walk(path):
            for name in ["", *dirnames, *filenames]:
                target = os.path.join(dirpath, name) if name else dirpath
                os.chown(target, nobody.pw_uid, nobody.pw_gid, follow_symlinks=False)


def remove(top: Path) -> None:
    if not IS_ROOT:
        subprocess.run(["chmod", "-R", "u+rwx", str(top)], check=False)
    subprocess.run(["rm", "-rf", "--one-file-system", str(top)], check=True)


@pytest.fixture
def area() -> Iterator[Area]:
    top = Path(tempfile.mkdtemp(prefix="wipe-test-", dir=FAST_TMP))
    top.chmod(0o755)
    canary, scratch, out = top / "canary", top / "scratch", top / "out"
    (canary / "sub" / "more").mkdir(parents=True)
    (canary / "file").write_bytes(b"canary data\n")
    (canary / "file").chmod(0o644)
    (canary / "sub" / "deep").write_bytes(b"deeper canary\n" * 100)
    (canary / "sub" / "deep").chmod(0o600)
    (canary / "sub" / "more" / "exec").write_bytes(b"#!/bin/sh\n")
    (canary / "sub" / "more" / "exec").chmod(0o755)
    os.symlink("file", canary / "link")
    scratch.mkdir(mode=0o700)
    out.mkdir()
    # All of it belongs to the child's user, so a wipe that strayed could change the canary.
    give_to_child(top)
    for path in [*sorted(canary.rglob("*"), reverse=True), canary]:
        os.utime(path, ns=(10**18, 10**18), follow_symlinks=False)
    try:
        yield Area(top, canary, scratch, out, snapshot(canary))
    finally:
        remove(top)


def make(root: Path, layout: list[tuple[Any, ...]]) -> None:
    root.mkdir()
    for kind, rel, *rest in layout:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if kind == "file":
            path.write_bytes(b"x" * rest[0])
        elif kind == "dir":
            path.mkdir()
        elif kind == "symlink":
            os.symlink(rest[0], path)
        elif kind == "fifo":
            os.mkfifo(path)


LAYOUTS = {
    "empty": ([], 5, Inventory()),
    "flat": (
        [("file", "a", 3), ("file", "b", 10), ("file", "c", 7)],
        2,
        Inventory(3, 20, (("b", 10), ("c", 7))),
    ),
    "nested": (
        [
            ("file", "x/y/z", 30),
            ("file", "x/w", 20),
            ("file", "v", 10),
            ("dir", "x/e/f"),
            ("symlink", "link", "v"),
            ("symlink", "x/dangling", "/nonexistent"),
            ("fifo", "x/y/fifo"),
        ],
        5,
        Inventory(6, 60, (("x/y/z", 30), ("x/w", 20), ("v", 10))),
    ),
    "largest-0": ([("file", "a", 1), ("file", "b/c", 2)], 0, Inventory(2, 3)),
    "empty-files": ([("file", f"d{i % 3}/f{i}", 0) for i in range(50)], 1, Inventory(50, 0)),
    "odd-names": (
        [("file", os.fsdecode(n), size) for size, n in enumerate(ODD_NAMES, 1)]
        + [("file", os.fsdecode(b"-rf dir\n\xff/\xfe"), 9)],
        3,
        Inventory(6, 24, (("-rf dir\n\ufffd/\ufffd", 9), ("n" * 255, 5), (" space ", 4))),
    ),
}


@pytest.mark.parametrize("name", LAYOUTS)
def test_inventory_counts_exactly(tmp_path: Path, name: str) -> None:
    layout, largest, expected = LAYOUTS[name]
    scratch = tmp_path / "scratch"
    make(scratch, layout)
    before = snapshot(scratch)
    assert inventory(scratch, largest) == expected
    assert snapshot(scratch) == before
    assert inventory_and_wipe(scratch, largest) == expected
    assert not scratch.exists() and list(tmp_path.iterdir()) == []


def test_missing_path_is_an_empty_inventory(tmp_path: Path) -> None:
    assert inventory_and_wipe(tmp_path / "gone") == Inventory()
    assert inventory(tmp_path / "no" / "parent") == Inventory()


def test_scratch_path_that_is_a_symlink_is_not_followed(area: Area) -> None:
    link = area.top / "scratch-link"
    os.symlink(area.canary, link)
    for walk in (inventory, inventory_and_wipe):
        result = walk(link)
        assert (result.files, result.bytes) == (0, 0)
        assert result.problems == (".: is a symlink; not followed, nothing removed",)
    assert link.is_symlink()
    area.canary_intact()


def test_scratch_path_that_is_a_file_is_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "file"
    path.write_bytes(b"data")
    assert inventory_and_wipe(path).problems == (
        ".: is not a directory; not followed, nothing removed",
    )
    assert path.read_bytes() == b"data"


def planted_bytes(area: Area) -> int:
    file = (area.canary / "file").stat().st_size
    deep = (area.canary / "sub" / "deep").stat().st_size
    return file + deep + 4 * (10 + 20 + file) + len(ODD_NAMES) + 1


def mode_dirs(area: Area) -> dict[str, int]:
    return {p.name: stat.S_IMODE(p.lstat().st_mode) for p in area.scratch.glob("mode-*")}


def test_planted_tree_is_wiped_and_canary_intact(area: Area) -> None:
    hostile("build", area.scratch, area.canary)
    kept = inventory(area.scratch)
    wiped = inventory_and_wipe(area.scratch)
    assert not area.scratch.exists()
    area.canary_intact()
    assert wiped.problems == ()
    assert (wiped.files, wiped.bytes) == (PLANTED_FILES, planted_bytes(area))
    if IS_ROOT:  # root reads the mode-000 directories too
        assert kept == wiped


def test_planted_tree_wiped_by_an_unprivileged_user(area: Area) -> None:
    hostile("build", area.scratch, area.canary)
    [kept] = wiped_by_child(area.scratch, "inventory")
    # inventory changes nothing: the unreadable directories are reported, not opened up
    assert mode_dirs(area) == {"mode-0": 0, "mode-100": 0o100, "mode-300": 0o300, "mode-500": 0o500}
    assert sorted(kept.problems) == [
        f"mode-{m}: cannot read: Permission denied" for m in (0, 100, 300)
    ]
    [wiped] = wiped_by_child(area.scratch, "wipe")
    assert wiped.problems == ()
    assert (wiped.files, wiped.bytes) == (PLANTED_FILES, planted_bytes(area))
    assert not area.scratch.exists()
    area.canary_intact()


def test_ten_thousand_deep_tree_with_few_fds(area: Area) -> None:
    depth = 10_000
    hostile("deep", area.scratch, area.canary, depth)
    # an fd per level would hit the limit of 16 at once; recursion would hit Python's limit
    kept, wiped = wiped_by_child(area.scratch, "both", nofile=16, as_child=False)
    expected = Inventory(2, 42, (("d/" * depth + "f", 42),))
    assert kept == expected and wiped == expected
    assert not area.scratch.exists()
    area.canary_intact()


@pytest.mark.parametrize(
    ("count", "per_dir"),
    [
        (100_000, 100_000),
        pytest.param(
            1_000_000,
            10_000,
            marks=[
                pytest.mark.slow,
                pytest.mark.skipif(
                    not os.environ.get("WIPE_MILLION"), reason="~20 s: set WIPE_MILLION=1"
                ),
            ],
        ),
    ],
)
def test_many_files(area: Area, count: int, per_dir: int) -> None:
    hostile("many", area.scratch, area.canary, count, per_dir)
    assert inventory_and_wipe(area.scratch) == Inventory(count + 1, 0, (), ())
    assert not area.scratch.exists()
    area.canary_intact()


def test_racer_swapping_directories_and_symlinks(area: Area) -> None:
    """An escaped process keeps moving directories away (inside scratch, one level up, out of
    it) and putting symlinks to the canary in their place while the wipe runs."""
    outcomes: dict[str, int] = {}
    for _ in range(RACE_ROUNDS):
        area.scratch.mkdir(mode=0o700, exist_ok=True)
        give_to_child(area.scratch)
        racer = subprocess.Popen(
            **hostile_process("race", area.scratch, area.canary, area.out),
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert racer.stdout is not None and racer.stdout.readline() == "ready\n"
            first = inventory_and_wipe(area.scratch)
        finally:
            racer.kill()
            racer.wait(10)
            assert racer.stdout is not None
            racer.stdout.close()
        area.canary_intact()
        for problem in first.problems:
            outcomes[problem.split(": ")[-1]] = outcomes.get(problem.split(": ")[-1], 0) + 1
        assert inventory_and_wipe(area.scratch).problems == ()  # the racer is gone: all goes
        assert not area.scratch.exists()
    print("race outcomes:", outcomes)


@NEEDS_ROOT
def test_root_never_enters_directories_the_child_could_not_empty(area: Area) -> None:
    """A child that moves a directory of its own holding root's files into its scratch must
    not get root to delete them."""
    app = area.scratch / "app"
    app.mkdir()
    (app / "childs-file").write_bytes(b"c")
    give_to_child(app)
    roots = app / "root\nowned"
    roots.mkdir()
    (roots / "precious").write_bytes(b"root data")
    result = inventory_and_wipe(area.scratch)
    assert (roots / "precious").read_bytes() == b"root data"
    assert not (app / "childs-file").exists()
    assert result.files == 1
    assert result.problems == (
        "app/root\\nowned: owned by uid 0, not 65534; not entered",
        ".: not removed: it still holds what is listed above",
    )


@NEEDS_ROOT
def test_problems_are_bounded(area: Area) -> None:
    for i in range(30):
        (area.scratch / f"r{i:02}").mkdir()
    result = inventory_and_wipe(area.scratch)
    assert len(result.problems) == 11
    assert result.problems[-1] == "... and 21 more"
    assert all("owned by uid 0" in line for line in result.problems[:10])


@NEEDS_ROOT
@pytest.mark.parametrize("how", [["-t", "tmpfs", "none"], ["--bind", "CANARY"]])
def test_another_mount_is_not_entered_and_the_wipe_detaches_it(
    area: Area, how: list[str]
) -> None:
    """A tmpfs has its own st_dev; a bind mount of the canary has the same st_dev. The
    inventory reports it; the wipe detaches it (never entering it) and removes the rest."""
    mount = area.scratch / "mnt"
    mount.mkdir()
    owner = area.scratch.stat()
    os.chown(mount, owner.st_uid, owner.st_gid)  # the child's own folder, as a child makes it
    source = [str(area.canary) if arg == "CANARY" else arg for arg in how]
    if subprocess.run(["mount", *source, str(mount)], check=False).returncode:
        pytest.skip("cannot mount here")
    try:
        (area.scratch / "file").write_bytes(b"goes")
        result = inventory(area.scratch)
        assert (result.files, result.bytes) == (1, 4)
        assert result.problems[0] == "mnt: another filesystem is mounted here; not entered"
        result = inventory_and_wipe(area.scratch)
        assert (result.files, result.bytes, result.problems) == (1, 4, ())
        assert not area.scratch.exists()
    finally:
        if mount.is_mount():
            subprocess.run(["umount", str(mount)], check=True)
    area.canary_intact()
