"""Did a change make procrunner slower? Two commits side by side, runs interleaved.

    /work/main/.venv/bin/python benchmarks/bench_change.py BEFORE [AFTER] [--reps 15]

BEFORE and AFTER are git revisions (AFTER defaults to the work tree as it is). Each is
unpacked into a temporary folder and run as ``python -m procrunner`` from there, with the same
interpreter and libraries. Measured, alternating BEFORE and AFTER on every repetition so that
the machine's drift hits both alike: start-up of 4 and of 32 instances (launch until every
``@@up`` line is out), the RSS of the runner and the PSS of runner + watchdog 1 s after 32
idle instances are up, and the time four writers take through the runner (every line
checked): 80 B lines flushed one by one, and 80 B and 4 KiB lines block-buffered. Medians,
and AFTER as a ratio of BEFORE (1.10 is 10% slower or bigger).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import procs
from bench import OUT, Config, Workload, python_workload, run_throughput
from bench_floor import startup
from peers import Runner

ROOT = Path(__file__).resolve().parent.parent


def snapshot(revision: str | None, into: Path) -> Path:
    """The package at ``revision`` (None: the work tree) in a folder of its own."""
    folder = into / (revision or "worktree")
    folder.mkdir()
    if revision is None:
        subprocess.run(["cp", "-r", str(ROOT / "procrunner"), str(folder)], check=True)
    else:
        archive = subprocess.run(
            ["git", "archive", revision, "procrunner"], cwd=ROOT, capture_output=True, check=True
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    # Compiled now, as an installed package is: else, under PYTHONDONTWRITEBYTECODE, every
    # start would compile the whole package from source and the start-up would measure that.
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(folder)], check=True,
                   stdout=subprocess.DEVNULL)  # fmt: skip
    wrapper = folder / "procrunner-cmd"
    wrapper.write_text(f'#!/bin/sh\nPYTHONPATH={folder} exec {sys.executable} -m procrunner "$@"\n')
    wrapper.chmod(0o755)
    return wrapper


def as_runner(name: str, command: Path) -> Runner:
    return Runner(
        name,
        (str(command),),
        lambda pf, t, n: [str(command), "start", "-f", str(pf), "--no-color",
                          *(["-m", f"all={n}"] if n else [])],
        ("--version",),
    )


def measures(cfg: Config, app: Path) -> dict[str, Callable[[Runner], float]]:
    procfile = app / "Procfile"
    procfile.write_text("s: echo @@up; exec sleep 3600\n")

    def up(count: int, size_of: Callable[[int], int] | None = None) -> Callable[[Runner], float]:
        def measure(runner: Runner) -> float:
            argv = runner.argv(procfile, "s", count)
            if size_of is None:
                return startup(argv, count, app, None)[0] * 1000
            return startup(argv, count, app, 1.0, size_of)[1] / 2**20

        return measure

    def relay(load: Workload) -> Callable[[Runner], float]:
        def measure(runner: Runner) -> float:
            sample = run_throughput(runner, load, cfg)
            if sample.seconds is None or not sample.verdict.intact:
                raise RuntimeError(f"{runner.name}: lines lost or broken: {sample.verdict}")
            return sample.seconds * 1000

        return measure

    return {
        "start-up, 4 instances (ms)": up(4),
        "start-up, 32 instances (ms)": up(32),
        "RSS, 32 idle instances (MiB)": up(32, procs.rss),
        "PSS + watchdog, 32 idle instances (MiB)": up(32, lambda pid: procs.memory(pid).pss),
        f"4 writers x {cfg.n80:,} lines of 80 B (ms)": relay(python_workload(80, cfg.n80)),
        f"4 block-buffered writers x {cfg.block80:,} lines of 80 B (ms)": relay(
            python_workload(80, cfg.block80, block=True)
        ),
        f"4 block-buffered writers x {cfg.block4096:,} lines of 4 KiB (ms)": relay(
            python_workload(4096, cfg.block4096, block=True)
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("before")
    parser.add_argument("after", nargs="?")
    parser.add_argument("--reps", type=int, default=15)
    args = parser.parse_args()
    OUT.mkdir(exist_ok=True)
    cfg = Config.make(quick=False)
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        pair = (as_runner(f"before ({args.before})", snapshot(args.before, base)),
                as_runner(f"after ({args.after or 'work tree'})", snapshot(args.after, base)))
        app = base / "app"
        app.mkdir()
        rows = []
        for what, measure in measures(cfg, app).items():
            samples: dict[str, list[float]] = {runner.name: [] for runner in pair}
            for _ in range(args.reps):
                for runner in pair:
                    samples[runner.name].append(measure(runner))
            before, after = (statistics.median(samples[r.name]) for r in pair)
            rows.append(f"| {what} | {before:.1f} | {after:.1f} | {after / before:.2f} |")
            print(rows[-1], file=sys.stderr, flush=True)
    print(f"| median of {args.reps} interleaved runs | {pair[0].name} | {pair[1].name} "
          "| after / before |")
    print("| --- | --- | --- | --- |")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
