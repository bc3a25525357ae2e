"""Startup and memory against their floor: how much of procrunner's startup time and RSS is
the price of asyncio and psutil, which the lightest peer (honcho) does not pay.

    /work/main/.venv/bin/python benchmarks/bench_floor.py [--reps 30] [--append RESULTS.md]

1. Imports, in fresh interpreters (median of --reps): bare Python; asyncio (without OpenSSL,
   as procrunner imports it); asyncio + psutil; everything ``procrunner start`` imports; and
   honcho's ``start`` imports in its own venv. Time and RSS.
2. Startup of 4 and 32 instances (``echo @@up; sleep 3600``), runs interleaved: launch until
   every ``@@up`` is out, for honcho, procrunner and ``floor_runner.py`` (asyncio + psutil +
   a bare spawn-and-relay loop, nothing of procrunner's own); and each one's RSS with 32 idle
   instances, 1 s after they are up.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import procs
from peers import HERE, PROCRUNNER, honcho_exe

PROCRUNNER_PYTHON = PROCRUNNER.parent / "python"
FLOOR = HERE / "floor_runner.py"
SIZES = (4, 32)
_RSS = "print(int(open('/proc/self/statm').read().split()[1]) * 4096)"
_LEAN = "import sys; sys.modules['ssl'] = sys.modules['_hashlib'] = None; "
IMPORTS = {
    "bare Python": (PROCRUNNER_PYTHON, ""),
    "asyncio (no OpenSSL)": (PROCRUNNER_PYTHON, _LEAN + "import asyncio"),
    "asyncio + psutil": (PROCRUNNER_PYTHON, _LEAN + "import asyncio, psutil"),
    "procrunner start's imports": (
        PROCRUNNER_PYTHON,
        "from procrunner.cli import _lean_imports, build_parser\n"
        "build_parser('start')\n"
        "with _lean_imports():\n"
        "    import asyncio, hashlib, procrunner.run, procrunner.config.load\n",
    ),
    "honcho start's imports": (
        Path(honcho_exe()).parent / "python",
        "import honcho.command, honcho.manager",
    ),
}


def time_import(python: Path, code: str, cwd: Path) -> tuple[float, int]:
    """Seconds for a fresh interpreter to run ``code`` and exit; its RSS at the end. (In
    ``cwd``: ``-c`` imports from the current folder first, which must not be a checkout.)"""
    began = time.perf_counter()
    done = subprocess.run(
        [str(python), "-c", f"{code}\n{_RSS}"], cwd=cwd, capture_output=True, text=True,
        check=True,
    )
    return time.perf_counter() - began, int(done.stdout.split()[-1])


def startup(
    argv: list[str],
    count: int,
    app: Path,
    rss_after: float | None,
    size_of: Callable[[int], int] = procs.rss,
) -> tuple[float, int]:
    """Launch until ``count`` ``@@up`` lines are out; ``size_of`` the runner's PID (its RSS)
    ``rss_after`` s later (0 if None)."""
    token = procs.new_token()
    began = time.monotonic()
    runner = subprocess.Popen(
        argv, cwd=app, env=procs.bench_env(token), stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL, start_new_session=True,
    )
    assert runner.stdout is not None
    seen, output = 0, b""
    try:
        while seen < count:
            chunk = os.read(runner.stdout.fileno(), 65536)
            if not chunk:
                raise RuntimeError(f"{argv[0]} ended before {count} instances were up")
            output += chunk
            seen = output.count(b"@@up")
        took = time.monotonic() - began
        rss = 0
        if rss_after is not None:
            time.sleep(rss_after)
            rss = size_of(runner.pid)
        return took, rss
    finally:
        os.killpg(runner.pid, signal.SIGTERM)
        try:
            runner.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(runner.pid, signal.SIGKILL)
            runner.wait()
        procs.kill_marked(token)


def runners(procfile: Path) -> dict[str, Callable[[int], list[str]]]:
    honcho = honcho_exe()
    return {
        "honcho": lambda n: [honcho, "start", "-f", str(procfile), "--no-colour", "-c", f"s={n}"],
        "procrunner": lambda n: [
            str(PROCRUNNER), "start", "-f", str(procfile), "--no-color", "-m", f"all={n}"
        ],
        "floor (asyncio + psutil, bare loop)": lambda n: [
            str(PROCRUNNER_PYTHON), str(FLOOR), "start", "-f", str(procfile), "-m", f"all={n}"
        ],
    }


def mib(value: float) -> str:
    return f"{value / 2**20:.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=30)
    parser.add_argument("--append", type=Path, help="append the tables to this file")
    args = parser.parse_args()
    lines = [
        "",
        "## Startup and memory against their floor (issue 3)",
        "",
        f"- command: `{sys.executable} benchmarks/bench_floor.py --reps {args.reps}`",
        f"- date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; "
        f"{os.cpu_count()} CPUs; medians of {args.reps} runs, interleaved",
        "",
        "| imports, fresh interpreter | time (ms) | RSS at the end (MiB) |",
        "|---|---|---|",
    ]
    with tempfile.TemporaryDirectory() as app:
        samples: dict[str, list[tuple[float, int]]] = {name: [] for name in IMPORTS}
        for _ in range(args.reps):
            for name, (python, code) in IMPORTS.items():
                samples[name].append(time_import(python, code, Path(app)))
        for name, values in samples.items():
            took = statistics.median(t for t, _ in values)
            rss = statistics.median(r for _, r in values)
            lines.append(f"| {name} | {took * 1000:.1f} | {mib(rss)} |")
        procfile = Path(app, "Procfile")
        procfile.write_text("s: echo @@up; sleep 3600\n")
        argvs = runners(procfile)
        times: dict[tuple[str, int], list[float]] = {}
        for _ in range(args.reps):
            for count in SIZES:
                for name, argv in argvs.items():
                    took, _ = startup(argv(count), count, Path(app), None)
                    times.setdefault((name, count), []).append(took)
        memory = {name: startup(argv(32), 32, Path(app), 1.0)[1] for name, argv in argvs.items()}
    lines += [
        "",
        "| runner | startup, 4 instances (s) | 32 instances (s) | own RSS, 32 idle (MiB) |",
        "|---|---|---|---|",
    ]
    for name in argvs:
        four, many = (statistics.median(times[(name, n)]) for n in SIZES)
        lines.append(f"| {name} | {four:.3f} | {many:.3f} | {mib(memory[name])} |")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.append is not None:
        with args.append.open("a") as results:
            results.write(text)


if __name__ == "__main__":
    main()
