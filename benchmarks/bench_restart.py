"""Restart latency of procrunner under --chaos, against doing the same by hand.

    .venv/bin/python benchmarks/bench_restart.py [--kills 25] [--append benchmarks/RESULTS.md]

Run ``bash benchmarks/install_peers.sh`` first (it installs this tree into .peers). Every run
has a timeout; every process started carries a marker variable and is killed at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import platform
import random
import re
import select
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

HERE = Path(__file__).resolve().parent
PROCRUNNER = HERE / ".peers" / "procrunner-venv" / "bin" / "procrunner"
COMMAND = "python3 -m http.server $PORT --bind 127.0.0.1"
MARKER, TOKEN = "BENCH_RESTART_MARKER", os.urandom(6).hex()
PR_PORT, DIRECT_PORT = 17000, 17200
LINE = re.compile(r"killing (web\.\d+#\d+) |(web\.\d+#\d+) started with pid")
Samples = dict[str, list[float]]
MEANING = """\
### What the numbers mean

- (a) from --summary-json: `started_at` of incarnation k+1 minus (`started_at` + `uptime`) of
  k. `uptime` ends when procrunner's pidfd watcher saw the leader exit (`Incarnation.ended`),
  so (a) = leader exit seen -> next `Popen()` returned, that Popen included, the SIGKILL and
  the scan before it not. (a') = when this script read procrunner's `killing web.X#k` and
  `web.X#k+1 started` lines: chaos tick -> respawn, everything included.
- (b) `recoveries` from the JSON: for a chaos kill procrunner starts that clock at the tick
  (`down_since` in `_on_chaos`, before the kill), not at the exit, and probes every 50 ms (the
  direct runs poll every 5 ms), so up to ~50 ms of (b) is probe grain.
- direct `cold` (the baseline asked for): n servers Popen'd at once (`sh -c 'exec ...'`, as
  procrunner runs it), K times for n=1, `--cold-reps-32` times for n=32 (32 startups at once
  on 2 cores: far heavier than one restart among 31 idle servers). Direct `restart`: n up;
  every 0.3 s SIGKILL a random one's group, wait for its exit (pidfd), reap, Popen, poll the
  port; K times. Ratio, difference: of medians. Target: (a) - `restart: exit` < 20 ms.
"""
ROWS = (  # (procrunner samples, what they are, direct samples, what they are)
    ("exit_spawn", "(a) exit seen -> spawned [JSON]", "popen", "cold: the Popen() call"),
    ("exit_spawn", "(a) exit seen -> spawned [JSON]", "exit_spawn", "restart: exit -> spawned"),
    ("tick_spawn", "(a') chaos tick -> spawned [stdout]", "kill_spawn", "restart: kill -> spawned"),
    ("recovery", "(b) chaos tick -> ready [JSON]", "cold_ready", "cold: Popen -> port accepts"),
    ("recovery", "(b) chaos tick -> ready [JSON]", "kill_ready", "restart: kill -> port accepts"),
)


def sweep() -> int:
    """Kill every process carrying this run's marker; returns how many there were."""
    found = []
    for proc in psutil.process_iter():
        with contextlib.suppress(psutil.Error, OSError):
            if proc.pid != os.getpid() and proc.environ().get(MARKER) == TOKEN:
                found.append(proc)
                proc.kill()
    psutil.wait_procs(found, timeout=5)
    return len(found)


def ports_free(ports: range) -> list[int]:
    for port in ports:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            sys.exit(f"port {port} is already in use: free {ports.start}-{ports.stop - 1}")
    return list(ports)


def run_procrunner(n: int, kills: int, work: Path) -> tuple[Samples, str]:
    procfile, out, run_for = work / "Procfile", work / f"summary-{n}.json", kills + 4
    procfile.write_text(f"web: {COMMAND}\n")
    cmd = [str(PROCRUNNER), "start", "-f", str(procfile), "-m", f"web={n}", "--no-color",
           "--chaos", f"every=1s,seed=1,after=2s,max={kills}", "--run-for", f"{run_for}s",
           "--summary-json", str(out), "-p", str(PR_PORT)]
    ports_free(range(PR_PORT, PR_PORT + n))
    seen: dict[tuple[int, str], float] = {}  # (1 = killing, 2 = started, label): time read
    proc = subprocess.Popen(cmd, env={**os.environ, MARKER: TOKEN}, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)

    def read() -> None:
        for line in proc.stdout or ():
            if (m := LINE.search(line)) and m.lastindex:
                seen[(m.lastindex, m.group(m.lastindex))] = time.time()

    (reader := threading.Thread(target=read, daemon=True)).start()
    try:
        status = proc.wait(timeout=run_for + 60)
        left = sweep()
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        sweep()
    reader.join(timeout=5)
    got: Samples = {row[0]: [] for row in ROWS}
    for inst in json.loads(out.read_text())["instances"]:
        got["recovery"] += inst["recoveries"]
        for prev, nxt in itertools.pairwise(inst["incarnations"]):
            if prev["cause"] == "chaos":
                got["exit_spawn"].append(nxt["started_at"] - prev["started_at"] - prev["uptime"])
                if (1, prev["label"]) in seen and (2, nxt["label"]) in seen:
                    got["tick_spawn"].append(seen[(2, nxt["label"])] - seen[(1, prev["label"])])
    note = (f"{n} instance(s): exit status {status}, {len(got['exit_spawn'])} chaos restarts "
            f"(of {kills}), {len(got['recovery'])} recoveries, {left} marked processes at exit")
    return got, note


def spawn(port: int) -> tuple[subprocess.Popen[bytes], float, float]:
    env, null = {**os.environ, "PORT": str(port), MARKER: TOKEN}, subprocess.DEVNULL
    t0 = time.perf_counter()
    proc = subprocess.Popen(["/bin/sh", "-c", f"exec {COMMAND}"], env=env, stdin=null,
                            stdout=null, stderr=null, start_new_session=True)
    return proc, t0, time.perf_counter()


def wait_ready(ports: list[int], timeout: float = 15.0) -> dict[int, float]:
    """perf_counter() at which each port first accepted a TCP connection (polled every 5 ms)."""
    ready: dict[int, float] = {}
    deadline = time.perf_counter() + timeout
    while waiting := [port for port in ports if port not in ready]:
        if time.perf_counter() > deadline:
            raise TimeoutError(f"ports never ready: {waiting}")
        for port in waiting:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
                ready[port] = time.perf_counter()
        time.sleep(0.005 if len(ready) < len(ports) else 0)
    return ready


def kill(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL the group, wait (pidfd, 10 s at most) for the exit, reap."""
    fd = os.pidfd_open(proc.pid)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    select.select([fd], [], [], 10)
    os.close(fd)
    proc.wait(timeout=10)


def run_direct(n: int, kills: int, cold_reps: int) -> Samples:
    ports = ports_free(range(DIRECT_PORT, DIRECT_PORT + n))
    got: Samples = {row[2]: [] for row in ROWS}
    procs: dict[int, subprocess.Popen[bytes]] = {}
    starts: dict[int, float] = {}
    try:
        for _ in range(cold_reps):  # the baseline asked for: n ports at once, from nothing
            for port in ports:
                procs[port], starts[port], spawned = spawn(port)
                got["popen"].append(spawned - starts[port])
            ready = wait_ready(ports)
            got["cold_ready"] += [ready[p] - starts[p] for p in ports]
            while procs:
                kill(procs.popitem()[1])
        for port in ports:  # a hand-made restart: SIGKILL one of n running, reap, Popen
            procs[port] = spawn(port)[0]
        wait_ready(ports)
        rng = random.Random(1)
        for _ in range(kills):
            time.sleep(0.3)
            port = rng.choice(ports)
            t_kill = time.perf_counter()
            kill(procs[port])
            t_exit = time.perf_counter()
            procs[port], _, spawned = spawn(port)
            got["kill_ready"].append(wait_ready([port])[port] - t_kill)
            got["exit_spawn"].append(spawned - t_exit)
            got["kill_spawn"].append(spawned - t_kill)
    finally:
        for proc in procs.values():
            kill(proc)
        sweep()
    return got


def table(results: dict[int, tuple[Samples, Samples]]) -> list[str]:
    lines = ["| n | procrunner | median ms | max ms | direct | median ms | max ms | ratio "
             "| difference ms |", "|---" * 9 + "|"]
    for n, (pr, direct) in results.items():
        for pkey, pwhat, dkey, dwhat in ROWS:
            p, d = (statistics.median(v or [float("nan")]) for v in (pr[pkey], direct[dkey]))
            lines.append(f"| {n} | {pwhat} | {p * 1e3:.1f} | {max(pr[pkey] or [0]) * 1e3:.1f} "
                         f"| {dwhat} | {d * 1e3:.1f} | {max(direct[dkey] or [0]) * 1e3:.1f} "
                         f"| {p / d:.2f} | {(p - d) * 1e3:+.1f} |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=25, help="chaos kills per run (K)")
    parser.add_argument("--cold-reps-32", type=int, default=5, help="cold starts of 32 at once")
    parser.add_argument("--append", type=Path, help="(re)write the section in this RESULTS.md")
    args = parser.parse_args()
    if not PROCRUNNER.exists():
        sys.exit(f"{PROCRUNNER} is missing: run bash benchmarks/install_peers.sh first")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    version = subprocess.check_output([PROCRUNNER, "--version"], text=True, timeout=30).strip()
    date = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    results: dict[int, tuple[Samples, Samples]] = {}
    notes: list[str] = []
    try:
        with tempfile.TemporaryDirectory(prefix="bench-restart-") as tmp:
            for n in (1, 32):
                pr, note = run_procrunner(n, args.kills, Path(tmp))
                notes.append(note)
                cold = args.cold_reps_32 if n > 1 else args.kills
                results[n] = (pr, run_direct(n, args.kills, cold))
    finally:
        survivors = sweep()
    command = " ".join([Path(sys.executable).name, *sys.argv])
    python = shutil.which("python3") or "python3"
    if Path(python).read_bytes()[:2] == b"#!":
        python += " (a `#!` script, e.g. a pyenv shim: it adds its own startup to (b))"
    section = "\n".join([
        "## Restart latency", "",
        f"- command: `{command}` (in /work/main, after `bash benchmarks/install_peers.sh`)",
        f"- date: {date}; machine: {os.cpu_count()} CPUs, {platform.platform()}; "
        f"python {platform.python_version()}; child python3 = {python}",
        f"- procrunner: `{PROCRUNNER}` ({version}), run as `procrunner start -f P -m web=N "
        f"--no-color --chaos every=1s,seed=1,after=2s,max={args.kills} --run-for "
        f"{args.kills + 4}s --summary-json OUT.json -p {PR_PORT}`, P = `web: {COMMAND}`",
        *(f"- {note}" for note in notes),
        f"- marked processes left at the very end: {survivors}", "",
        *table(results), "", MEANING,
    ])
    print(section)
    if args.append:  # this section is the file's last: replace it if there, else add it
        old = args.append.read_text().split("\n## Restart latency\n")[0].rstrip("\n")
        args.append.write_text(old + "\n\n" + section)


if __name__ == "__main__":
    main()
