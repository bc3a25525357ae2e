"""Output formats side by side: procrunner's throughput in text mode, with each time stamp
format, in JSON mode, and with --log-dir, against the raw pipe (issue 8).

    /work/main/.venv/bin/python benchmarks/bench_output.py [--quick] [--reps N] [--before CMD]

Same workloads, reader and line check as bench.py's throughput section (the check reads the
payload out of each JSON object too). ``--before CMD`` adds a text-mode run of another
procrunner command (a snapshot of an earlier commit) to compare the text path.
"""

from __future__ import annotations

import argparse
import dataclasses
import shlex
import shutil
import signal
import sys
from pathlib import Path

import report
from bench import OUT, Config, ThroughputSample, Workload, python_workload, run_throughput
from bench import seq_workload as seq
from peers import PROCRUNNER, Runner, runners

LOGS = OUT / "logs"
VARIANTS: dict[str, tuple[str, ...]] = {
    "text": (),
    "text --timestamp iso": ("--timestamp", "iso"),
    "text --timestamp relative": ("--timestamp", "relative"),
    "json": ("--output", "json"),
    "text --log-dir": ("--log-dir", str(LOGS)),
    "json --log-dir": ("--output", "json", "--log-dir", str(LOGS)),
}


def procrunner(name: str, command: tuple[str, ...], extra: tuple[str, ...]) -> Runner:
    def argv(procfile: Path, ptype: str, count: int | None) -> list[str]:
        return [*command, "start", "-f", str(procfile), "--no-color", *extra]

    return Runner(name, command, argv, ("--version",))


def measure(active: list[Runner], loads: list[Workload], cfg: Config) -> str:
    results = []
    for load in loads:
        per_runner: dict[str, list[ThroughputSample]] = {}
        for rep in range(cfg.reps):
            for runner in active:  # interleaved, so a noisy moment hits every variant
                shutil.rmtree(LOGS, ignore_errors=True)
                sample = run_throughput(runner, load, cfg)
                per_runner.setdefault(runner.name, []).append(sample)
                report.progress(f"{load.name} {runner.name} #{rep + 1}", sample)
        results.append((load, per_runner))
    shutil.rmtree(LOGS, ignore_errors=True)
    return report.throughput_tables(results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, one repetition")
    parser.add_argument("--procrunner", default=str(PROCRUNNER), help="procrunner command")
    parser.add_argument("--before", help="another procrunner command, run in text mode")
    parser.add_argument("--reps", type=int, help="repetitions (default: 3, 1 with --quick)")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    cfg = Config.make(args.quick)
    if args.reps:
        cfg = dataclasses.replace(cfg, reps=args.reps)
    OUT.mkdir(exist_ok=True)
    command = tuple(shlex.split(args.procrunner))
    active = [r for r in runners(command) if r.name == "baseline"]
    if args.before:
        active.append(procrunner("before: text", tuple(shlex.split(args.before)), ()))
    active += [procrunner(name, command, extra) for name, extra in VARIANTS.items()]
    for runner in active:
        runner.check()
    loads = [python_workload(80, cfg.n80), seq(cfg.nseq)]
    print(measure(active, loads, cfg), flush=True)


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:  # every measurement has cleaned up after itself by now
        sys.exit("interrupted")
