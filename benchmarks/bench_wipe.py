"""Time the scratch wipe against shutil.rmtree on the same trees.

    .venv/bin/python benchmarks/bench_wipe.py [--dir DIR] [--repeat 3] [--per-dir 1000]

For 0, 1,000 and 100,000 small files (64 bytes, ``--per-dir`` to a subdirectory), each
timing is the median of ``--repeat`` runs on a fresh tree; building the tree is not timed.
``inventory`` (read only, for --keep-scratch) is timed on the tree that ``inventory_and_wipe``
then removes. DIR defaults to the temp dir, where procrunner puts scratch directories.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from procrunner.scratch.wipe import inventory, inventory_and_wipe

COUNTS = (0, 1_000, 100_000)


def build(root: Path, count: int, per_dir: int) -> None:
    root.mkdir()
    data = b"x" * 64
    for start in range(0, count, per_dir):
        folder = root / f"d{start // per_dir}"
        folder.mkdir()
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
        try:
            for i in range(start, min(count, start + per_dir)):
                out = os.open(f"f{i}", os.O_WRONLY | os.O_CREAT, 0o600, dir_fd=fd)
                os.write(out, data)
                os.close(out)
        finally:
            os.close(fd)


def timed(action: Callable[[Path], object], path: Path) -> float:
    start = time.perf_counter()
    action(path)
    return (time.perf_counter() - start) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, default=None, help="where to build the trees")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--per-dir", type=int, default=1_000, help="files per subdirectory")
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="bench-wipe-", dir=args.dir))
    rows = []
    try:
        for count in COUNTS:
            times: dict[str, list[float]] = {"wipe": [], "rmtree": [], "inventory": []}
            for run in range(args.repeat):
                # alternate which goes first: a disk may still be busy with the last tree
                for which in ("wipe", "rmtree") if run % 2 == 0 else ("rmtree", "wipe"):
                    tree = base / f"{which}-{count}-{run}"
                    build(tree, count, args.per_dir)
                    if which == "rmtree":
                        times["rmtree"].append(timed(shutil.rmtree, tree))
                        continue
                    times["inventory"].append(timed(inventory, tree))
                    times["wipe"].append(timed(inventory_and_wipe, tree))
                    assert not tree.exists()
            rows.append((count, {k: statistics.median(v) for k, v in times.items()}))
            print(f"done: {count:,} files", file=sys.stderr)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    print(f"wipe benchmark: {base.parent} ({args.per_dir:,} files per directory), ", end="")
    print(f"median of {args.repeat}, ms")
    print(f"{'files':>9} | {'inventory_and_wipe':>18} | {'shutil.rmtree':>13} | ratio | inventory")
    print(f"{'-' * 9}-+-{'-' * 18}-+-{'-' * 13}-+-------+----------")
    for count, median in rows:
        ratio = median["wipe"] / median["rmtree"] if median["rmtree"] else float("nan")
        print(
            f"{count:>9,} | {median['wipe']:>18.2f} | {median['rmtree']:>13.2f} | "
            f"{ratio:>5.2f} | {median['inventory']:>9.2f}"
        )


if __name__ == "__main__":
    main()
