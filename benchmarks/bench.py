"""Side-by-side benchmark: procrunner against honcho, foreman and node-foreman.

    /work/main/.venv/bin/python benchmarks/bench.py [--quick]

Measures output throughput (with line-integrity checks), startup, stop, supervisor memory and
memory under a slow reader; prints tables and writes benchmarks/RESULTS.md.
See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import select
import shlex
import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from subprocess import DEVNULL, PIPE, STDOUT, Popen
from typing import IO

import procs
import report
from peers import HERE, PROCRUNNER, Runner, runners
from verify import Verdict, verify
from writer import payload_parts

OUT = HERE / "out"
WRITER = HERE / "writer.py"
READER = HERE / "reader.py"
PY = sys.executable
STOP_MODES = {"SIGINT": signal.SIGINT, "SIGTERM": signal.SIGTERM, "Ctrl-C": signal.SIGINT}
UP = b"@@up"


@dataclass(frozen=True)
class Config:
    quick: bool
    n80: int = 200_000  # lines per writer: the raw baseline takes ~1.3 s here
    n4096: int = 50_000
    block80: int = 1_000_000  # block-buffered writers: ~0.7 M lines/s each, raw
    block4096: int = 100_000
    nseq: int = 1_000_000
    reps: int = 3
    slow_seconds: float = 10.0
    run_timeout: float = 300.0  # one throughput run
    stall: float = 10.0  # no output for this long: the run is over, lines were lost
    stop_timeout: float = 10.0

    @classmethod
    def make(cls, quick: bool) -> Config:
        if not quick:
            return cls(quick)
        return cls(
            quick,
            n80=20_000,
            n4096=2_500,
            block80=100_000,
            block4096=10_000,
            nseq=100_000,
            reps=1,
            slow_seconds=3.0,
            run_timeout=60.0,
            stall=3.0,
        )


@dataclass(frozen=True)
class Workload:
    name: str
    slug: str  # names the saved output
    lines: dict[str, str]  # process type -> command
    ids: list[str]  # writer ids, in the payloads
    count: int  # lines per writer
    size: int  # bytes per line, newline included


def python_workload(size: int, count: int, block: bool = False) -> Workload:
    """Writers that flush every line (print() with PYTHONUNBUFFERED), or with ``block`` that
    write through an 8 KiB buffer: the relay's heaviest case, 8 KiB of whole and cut lines
    per read."""
    writer = f"env PYTHONUNBUFFERED=1 {PY} {WRITER}"
    ids = ["1", "2", "3", "4"]
    flag = " --block" if block else ""
    lines = {f"w{i}": f"{writer} {count} {size} {i} --hold{flag}" for i in ids}
    if block:
        name, slug = f"python block-buffered, {size} B lines", f"block{size}"
    else:
        name, slug = f"python print(), {size} B lines", f"py{size}"
    return Workload(name, slug, lines, ids, count, size)


def seq_workload(count: int) -> Workload:
    ids = ["c1", "c2", "c3", "c4"]
    lines = {}
    for i in ids:
        head, tail = payload_parts(80, i)
        lines[i] = f"seq -f '{head}%010.0f{tail}' 1 {count}; sleep 3600"
    return Workload("C-speed (seq), 80 B lines", "seq80", lines, ids, count, 80)


def write_procfile(path: Path, lines: dict[str, str]) -> Path:
    path.write_text("".join(f"{ptype}: {cmd}\n" for ptype, cmd in lines.items()))
    return path


def read_json_line(stream: IO[bytes] | None, timeout: float) -> dict[str, float]:
    assert stream is not None
    ready, _, _ = select.select([stream], [], [], timeout)
    line = stream.readline() if ready else b""
    return dict(json.loads(line)) if line.strip() else {}


@contextmanager
def launch(argv: list[str], token: str, stderr: int | IO[bytes]) -> Iterator[Popen[bytes]]:
    """Run a runner in its own session with the marker; at the end kill its group and every
    marked process, whatever happened."""
    proc = Popen(
        argv,
        cwd=OUT,
        env=procs.bench_env(token),
        stdout=PIPE,
        stderr=stderr,
        start_new_session=True,
    )
    try:
        yield proc
    finally:
        procs.cleanup(proc, token)


def attach_reader(proc: Popen[bytes], *args: str) -> Popen[bytes]:
    """reader.py reading the runner's stdout (it gets EOF when the runner's tree is gone)."""
    assert proc.stdout is not None
    reader = Popen([PY, str(READER), *args], stdin=proc.stdout, stdout=PIPE)
    proc.stdout.close()
    return reader


def finish_reader(reader: Popen[bytes]) -> dict[str, float]:
    """The reader's last report, after the runner is gone; then it is killed if need be."""
    try:
        return read_json_line(reader.stdout, 30)
    finally:
        reader.kill()
        reader.wait()


@dataclass(frozen=True)
class ThroughputSample:
    seconds: float | None  # None: not every line arrived before the stall/timeout
    verdict: Verdict


def run_throughput(runner: Runner, load: Workload, cfg: Config) -> ThroughputSample:
    """Launch the runner; time until the reader has seen every writer line."""
    token = procs.new_token()
    procfile = write_procfile(OUT / "Procfile.throughput", load.lines)
    saved = OUT / f"{runner.name}-{load.slug}.stdout"
    expected = load.count * len(load.ids)
    argv = runner.argv(procfile, "", None)
    args = ("save", str(saved), str(expected), str(cfg.stall))
    start = time.monotonic()
    err_log = OUT / f"{runner.name}.stderr"
    with err_log.open("wb") as err, launch(argv, token, err) as proc:
        reader = attach_reader(proc, *args)
        first = read_json_line(reader.stdout, cfg.run_timeout)
    finish_reader(reader)
    seconds = first["done"] - start if "done" in first else None
    verdict = verify(saved, load.ids, load.count, load.size)
    if runner.reference or verdict.intact:
        if not cfg.quick:
            saved.unlink()
    else:  # a broken output stays in out/ for inspection, with the runner's stderr
        saved.rename(saved.with_suffix(".broken"))
        err_log.rename(saved.with_suffix(".broken-stderr"))
    return ThroughputSample(seconds, verdict)


class UpWatcher(threading.Thread):
    """Drains a runner's stdout into a log, noting when the n-th ``@@up`` line arrives."""

    def __init__(self, stream: IO[bytes], n: int, log: Path) -> None:
        super().__init__(daemon=True)
        self.stream, self.n, self.log = stream, n, log
        self.all_up = threading.Event()
        self.up_at = 0.0

    def run(self) -> None:
        seen = 0
        with self.log.open("wb") as log:
            for line in self.stream:
                log.write(line)
                if UP in line:
                    seen += 1
                    if seen == self.n:
                        self.up_at = time.monotonic()
                        self.all_up.set()


@dataclass(frozen=True)
class IdleSample:
    startup: float | None
    memory: procs.Memory
    stop: float | None  # None: still running stop_timeout after the signal
    leftovers: int  # marked processes alive 0.5 s after the runner's exit


def send_stop(proc: Popen[bytes], mode: str) -> None:
    if mode == "Ctrl-C":  # a terminal's Ctrl-C reaches the whole foreground group
        os.killpg(proc.pid, STOP_MODES[mode])
    else:
        proc.send_signal(STOP_MODES[mode])


def run_idle(runner: Runner, n: int, mode: str, cfg: Config) -> IdleSample:
    """n sleeping instances: time to all up, supervisor RSS, time to stop, leftovers."""
    token = procs.new_token()
    procfile = write_procfile(OUT / "Procfile.idle", {"s": "echo @@up; sleep 3600"})
    start = time.monotonic()
    with launch(runner.argv(procfile, "s", n), token, STDOUT) as proc:
        assert proc.stdout is not None
        watcher = UpWatcher(proc.stdout, n, OUT / f"{runner.name}-idle{n}-{mode}.log")
        watcher.start()
        if not watcher.all_up.wait(cfg.run_timeout / 4):
            return IdleSample(None, procs.Memory(0, 0, 0, 0, 0), None, 0)
        startup = watcher.up_at - start
        time.sleep(1.0)  # let the supervisor settle before measuring it
        memory = procs.memory(proc.pid)
        send_stop(proc, mode)
        stop = procs.wait_exit(proc, cfg.stop_timeout)
        time.sleep(0.5)
        left = [p for p in procs.marked(token) if p.pid != proc.pid]
        return IdleSample(startup, memory, stop, len(left))


@dataclass(frozen=True)
class SlowSample:
    peak_rss: int  # the runner's own process
    peak_total: int  # runner + helpers
    bytes_read: int
    stop: float | None


def run_slow(runner: Runner, cfg: Config) -> SlowSample:
    """4 endless writers, a reader taking 4 KiB every 10 ms: the supervisor's peak RSS."""
    token = procs.new_token()
    writer = f"env PYTHONUNBUFFERED=1 {PY} {WRITER}"
    lines = {f"w{i}": f"{writer} 0 80 {i}" for i in range(1, 5)}
    procfile = write_procfile(OUT / "Procfile.slow", lines)
    with launch(runner.argv(procfile, "", None), token, DEVNULL) as proc:
        reader = attach_reader(proc, "slow", "4096", "0.01")
        peak = peak_total = 0
        time.sleep(0.5)  # past startup: a fork about to exec an instance is not a helper
        deadline = time.monotonic() + cfg.slow_seconds
        while time.monotonic() < deadline and proc.poll() is None:
            peak = max(peak, procs.rss(proc.pid))
            peak_total = max(peak_total, procs.total_rss(proc.pid))
            time.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        stop = procs.wait_exit(proc, cfg.stop_timeout)
    result = finish_reader(reader)
    return SlowSample(peak, peak_total, int(result.get("bytes", 0)), stop)


def throughput(
    active: list[Runner], cfg: Config
) -> list[tuple[Workload, dict[str, list[ThroughputSample]]]]:
    loads = [
        python_workload(80, cfg.n80),
        python_workload(4096, cfg.n4096),
        python_workload(80, cfg.block80, block=True),
        python_workload(4096, cfg.block4096, block=True),
        seq_workload(cfg.nseq),
    ]
    results = []
    for load in loads:
        per_runner: dict[str, list[ThroughputSample]] = {}
        for runner in active:
            per_runner[runner.name] = []
            for rep in range(cfg.reps):
                sample = run_throughput(runner, load, cfg)
                per_runner[runner.name].append(sample)
                report.progress(f"{load.name} {runner.name} #{rep + 1}", sample)
        results.append((load, per_runner))
    return results


def idle(active: list[Runner], cfg: Config) -> dict[str, dict[str, list[IdleSample]]]:
    """Per runner, per scenario ('up4', or a stop mode with 32 instances): the samples."""
    results: dict[str, dict[str, list[IdleSample]]] = {}
    for runner in active:
        if runner.reference:
            continue
        results[runner.name] = {"up4": [], **{mode: [] for mode in STOP_MODES}}
        for rep in range(cfg.reps):
            for scenario in results[runner.name]:
                n, mode = (4, "SIGINT") if scenario == "up4" else (32, scenario)
                sample = run_idle(runner, n, mode, cfg)
                results[runner.name][scenario].append(sample)
                report.progress(f"idle {runner.name} {scenario} #{rep + 1}", sample)
    return results


def slow(active: list[Runner], cfg: Config) -> dict[str, SlowSample]:
    results = {}
    for runner in active:
        if not runner.reference:
            results[runner.name] = run_slow(runner, cfg)
            report.progress(f"slow reader {runner.name}", results[runner.name])
    return results


def select_runners(procrunner: tuple[str, ...]) -> tuple[list[Runner], dict[str, str]]:
    """The runners that work here, and their versions; a note for each one skipped."""
    active, versions = [], {}
    for runner in runners(procrunner):
        try:
            versions[runner.name] = runner.check()
        except RuntimeError as why:
            print(f"note: skipping {runner.name}: {why}", flush=True)
        else:
            active.append(runner)
    return active, versions


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, one repetition")
    parser.add_argument(
        "--procrunner",
        default=str(PROCRUNNER),
        help="procrunner command to benchmark (default: %(default)s)",
    )
    parser.add_argument("--note", default="", help="a line for RESULTS.md, e.g. what was run")
    args = parser.parse_args()
    # Stop cleanly (killing what we started) on Ctrl-C or SIGTERM, and make sure that the
    # runners do not inherit an ignored SIGINT (as from `cmd &` in a non-interactive shell).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    cfg = Config.make(args.quick)
    OUT.mkdir(exist_ok=True)
    active, versions = select_runners(tuple(shlex.split(args.procrunner)))
    header = report.header(active, versions, cfg, args.note)
    print(header, flush=True)
    sections = [
        report.throughput_tables(throughput(active, cfg)),
        report.idle_tables(idle(active, cfg)),
        report.slow_table(slow(active, cfg), cfg.slow_seconds),
    ]
    text = header + "\n" + "\n".join(sections) + report.NOTES
    print("\n".join(sections), flush=True)
    (HERE / "RESULTS.md").write_text(text)
    print(f"written: {HERE / 'RESULTS.md'}")


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:  # every measurement has cleaned up after itself by now
        sys.exit("interrupted")
