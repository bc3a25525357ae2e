"""Round-trip latency of the control socket: ``ps`` of a 32-instance formation.

    .venv/bin/python benchmarks/bench_control.py [--instances 32] [--reps 200] [--append FILE]

Two figures, each against its target: the server's answer (one persistent connection,
request written -> reply read; target under 10 ms) and the whole ``procrunner ps`` command,
Python start-up included (target under 150 ms). Uses the non-editable install that
``benchmarks/install_peers.sh`` makes, as a user's would be.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
BIN = HERE / ".peers" / "procrunner-venv" / "bin"
SECTION = "\n## Control socket latency\n"


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def wait_for_socket(path: Path, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists():
            return
        time.sleep(0.02)
    raise SystemExit(f"no control socket at {path} after {timeout} s")


def server_round_trips(path: Path, reps: int, instances: int) -> list[float]:
    with socket.socket(socket.AF_UNIX) as sock:
        sock.connect(str(path))
        reader = sock.makefile("rb")
        reader.readline()  # greeting
        times = []
        for number in range(reps):
            start = time.perf_counter()
            sock.sendall(json.dumps({"id": number, "command": "ps"}).encode() + b"\n")
            reply = json.loads(reader.readline())
            times.append(time.perf_counter() - start)
            assert reply["ok"] and len(reply["result"]["instances"]) == instances
        return times


def command_times(root: Path, reps: int) -> list[float]:
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        subprocess.run([str(BIN / "procrunner"), "ps", "-d", str(root)], check=True,
                       stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    return times


def measure(instances: int, reps: int) -> tuple[list[float], list[float]]:
    with tempfile.TemporaryDirectory() as work:
        root = Path(work)
        (root / "Procfile").write_text("s: sleep 3600\n")
        env = {**os.environ, "PROCRUNNER_SOCKET": str(root / "control.sock")}
        proc = subprocess.Popen(
            [str(BIN / "procrunner"), "start", "-m", f"s={instances}", "--no-color"],
            cwd=root, env=env, stdout=subprocess.DEVNULL, start_new_session=True,
        )
        try:
            wait_for_socket(root / "control.sock")
            time.sleep(2.0)  # past start-up and the first memory sample: a settled formation
            os.environ["PROCRUNNER_SOCKET"] = str(root / "control.sock")
            server = server_round_trips(root / "control.sock", reps, instances)
            whole = command_times(root, max(reps // 10, 10))
        finally:
            proc.send_signal(signal.SIGINT)
            proc.wait(30)
    return server, whole


def report(server: list[float], whole: list[float], instances: int, command: str) -> str:
    def row(name: str, samples: list[float], target: float) -> str:
        median, p99 = statistics.median(samples) * 1e3, percentile(samples, 0.99) * 1e3
        met = "yes" if median < target else "**no**"
        return f"| {name} | {median:.2f} | {p99:.2f} | {len(samples)} | < {target:.0f} | {met} |"

    return "\n".join(
        [
            SECTION.strip(),
            "",
            f"- command: `{command}`",
            f"- {time.strftime('%Y-%m-%d')}, {platform.platform()}, {os.cpu_count()} cores, "
            f"Python {platform.python_version()}; a formation of {instances} idle instances",
            "",
            "| measured | median ms | p99 ms | samples | target ms | met |",
            "|---|---|---|---|---|---|",
            row("server answer to `ps` (request written -> reply read)", server, 10),
            row("whole `procrunner ps` command, Python start-up included", whole, 150),
            "",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=32)
    parser.add_argument("--reps", type=int, default=200)
    parser.add_argument("--append", type=Path, help="(re)write this section in RESULTS.md")
    args = parser.parse_args()
    if not (BIN / "procrunner").exists():
        raise SystemExit("run `bash benchmarks/install_peers.sh` first")
    server, whole = measure(args.instances, args.reps)
    command = "python benchmarks/bench_control.py " + " ".join(sys.argv[1:])
    section = report(server, whole, args.instances, command.strip())
    print(section)
    if args.append:  # replace the section where it is, else add it before the restart one
        text = args.append.read_text()
        if SECTION in text:
            head, _, rest = text.partition(SECTION)
            tail = rest[rest.find("\n## "):] if "\n## " in rest else "\n"
        else:
            head, mark, restart = text.partition("\n## Restart latency\n")
            tail = "\n" + mark + restart if mark else "\n"
        args.append.write_text(head.rstrip("\n") + "\n\n" + section + tail)


if __name__ == "__main__":
    main()
