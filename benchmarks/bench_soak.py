"""Soak: procrunner's health across 1,000 chaos restarts of 20 instances, then idle.

Usage: python benchmarks/bench_soak.py [--restarts 1000] [--instances 20] [--idle 20]

Runs ``procrunner start -m s=N --chaos every=20ms`` on instances that only sleep, samples
procrunner's open descriptors and RSS after the first tenth of the restarts (early) and at the
end (late), watches its children for zombies (the oldest one's age), then turns chaos off and
reads procrunner's CPU time over an idle window. Targets (G11): fd and RSS within 10 %, no
zombie older than 1 s, idle CPU under 0.5 % of a core.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import psutil

PROCRUNNER = [sys.executable, "-m", "procrunner"]


@dataclass(frozen=True)
class Soak:
    restarts: int
    seconds: float
    fds: tuple[int, int]  # early, late
    rss: tuple[int, int]
    oldest_zombie: float  # seconds
    idle_cpu: float  # percent of one core


def _restarts(root: Path, env: dict[str, str]) -> int:
    result = subprocess.run([*PROCRUNNER, "ps", "--json"], cwd=root, env=env,
                            capture_output=True, text=True, timeout=30)
    if result.returncode != 0:
        return -1
    return sum(sum(r["restarts"].values()) for r in json.loads(result.stdout)["instances"])


def _zombie_ages(runner: psutil.Process, first_seen: dict[int, float]) -> float:
    """Note when each zombie child was first seen; the age of the oldest one alive."""
    now = time.monotonic()
    zombies = set()
    for child in runner.children():
        try:
            if child.status() == psutil.STATUS_ZOMBIE:
                zombies.add(child.pid)
                first_seen.setdefault(child.pid, now)
        except psutil.NoSuchProcess:
            continue
    for pid in list(first_seen):
        if pid not in zombies:
            del first_seen[pid]
    return max((now - t for t in first_seen.values()), default=0.0)


def soak(restarts: int, instances: int, idle: float, env: dict[str, str] | None = None) -> Soak:
    env = dict(os.environ if env is None else env)
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        (root / "Procfile").write_text("s: exec sleep 3600\n")
        runner = subprocess.Popen(
            [*PROCRUNNER, "start", "--no-color", "-m", f"s={instances}", "--chaos", "every=20ms"],
            cwd=root, env=env, stdout=subprocess.DEVNULL, start_new_session=True,
        )
        try:
            proc = psutil.Process(runner.pid)
            began = time.monotonic()
            early: tuple[int, int] | None = None
            first_seen: dict[int, float] = {}
            oldest = 0.0
            done = 0
            while done < restarts and runner.poll() is None:
                oldest = max(oldest, _zombie_ages(proc, first_seen))
                done = _restarts(root, env)
                if early is None and done >= restarts // 10:
                    early = (proc.num_fds(), proc.memory_info().rss)
            elapsed = time.monotonic() - began
            late = (proc.num_fds(), proc.memory_info().rss)
            subprocess.run([*PROCRUNNER, "chaos", "off"], cwd=root, env=env, timeout=30,
                           capture_output=True, check=True)
            time.sleep(5)  # settle: the last restarts finish, readiness timers fire
            before = sum(proc.cpu_times()[:2])
            time.sleep(idle)  # the observation window itself
            used = sum(proc.cpu_times()[:2]) - before
        finally:
            os.killpg(runner.pid, signal.SIGINT)
            runner.wait(60)
    assert early is not None, "procrunner ended before the soak did"
    return Soak(done, elapsed, (early[0], late[0]), (early[1], late[1]), oldest,
                100 * used / idle)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--restarts", type=int, default=1000)
    parser.add_argument("--instances", type=int, default=20)
    parser.add_argument("--idle", type=float, default=20.0)
    args = parser.parse_args()
    result = soak(args.restarts, args.instances, args.idle)
    print(json.dumps(asdict(result)))
    mib = [r / 2**20 for r in result.rss]
    print(f"| {result.restarts} restarts in {result.seconds:.0f} s | fds {result.fds[0]} → "
          f"{result.fds[1]} | RSS {mib[0]:.1f} → {mib[1]:.1f} MiB | oldest zombie "
          f"{result.oldest_zombie:.2f} s | idle CPU {result.idle_cpu:.2f} % |")


if __name__ == "__main__":
    main()
