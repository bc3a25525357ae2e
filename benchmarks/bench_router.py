"""Requests per second and latency through procrunner's router, against one instance direct.

    .venv/bin/python benchmarks/bench_router.py [--quick] [--append benchmarks/RESULTS.md]

Three cases, against the demo's own web server (``python -m procrunner.demo.web``): (a) web=1,
no router, the load on web.1's port; (b) the router in front of web=1 (its own overhead);
(c) the router in front of web=2 (what a user gets). Each run is a new ``procrunner start``
(fresh SQLite database), a warm-up, one measured load run, then SIGINT; the cases take turns.
Load: wrk (Debian package), or a small asyncio client when wrk is missing. Run
``bash benchmarks/install_peers.sh`` first: it installs this tree into .peers, and wrk.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import functools
import json
import platform
import re
import resource
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import procs
import psutil
import report
from bench_restart import ports_free
from peers import HERE, PROCRUNNER

HOST, PORT, PATH = "127.0.0.1", 17400, "/json"
PYTHON = PROCRUNNER.parent / "python"
OUT = HERE / "out"  # procrunner's output of each run, as router-CASE-RUN.log
TITLE, LAST = "## Router throughput (issue 6)", "## Restart latency"  # bench_restart's is last
READY = re.compile(r"web\.\d+#\d+ ready: port \d+")
WRK_SCRIPT = """\
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) bad = 0 end
function response(status, headers, body)
  if status < 200 or status > 299 then bad = bad + 1 end
end
function done(summary, latency, requests)
  local bad, e = 0, summary.errors
  for _, t in ipairs(threads) do bad = bad + t:get("bad") end
  io.write(string.format('@@{"requests": %d, "seconds": %f, "p50": %f, "p99": %f, '
    .. '"connect": %d, "read": %d, "write": %d, "timeout": %d, "non2xx": %d}\\n',
    summary.requests, summary.duration / 1e6, latency:percentile(50) / 1e3,
    latency:percentile(99) / 1e3, e.connect, e.read, e.write, e.timeout, bad))
end
"""
ERRORS = ("connect", "read", "write", "timeout", "non2xx")


ROUTER_LINE = re.compile(r"router: (\d+) connections; (\d+) retried .*?, (\d+) closed")
MEANING = """\
### What the numbers mean

- Every run is a new `procrunner start` with a fresh database, then a warm-up load, then the
  measured load, then SIGINT; the cases take turns (a, b, c, a, b, c, ...). req/s = completed
  responses / window; p50, p99 = wrk's latency percentiles (completed requests only); every
  column is the median of the runs, except `failed` and `SYN drops`, which add them up.
  `failed` = wrk's socket errors (connect, read, write, timeout) plus responses that are not
  2xx. The demo closes the connection after each response, so every request is a new TCP
  connection (wrk reconnects), and through the router a second one, procrunner -> instance.
- `SYN drops` = the kernel's ListenDrops (/proc/net/netstat) over the window: connection
  attempts dropped because a listen queue was full. The demo listens with a backlog of 128
  (socketserver's default of 5 dropped SYNs under this load: a dropped SYN is sent again
  after 1 s, and wrk corrects its percentiles for coordinated omission, so a handful of
  drops put p99 near 1 s, and two in a row passed wrk's 2 s timeout: a failed request).
- CPU: user + system time over the measured window (psutil), in % of one core: procrunner's
  own process (the router runs in it), the web instances together (watchdog excluded), the
  load generator, and `other`: the rest of the machine's busy time (kernel threads such as
  ksoftirqd, and any other work on the machine). `ms per 1000 req` = procrunner's CPU time
  per 1000 requests. All of it shares 2 cores (200 %).
- Scratch: each run has its own `--scratch-root` in the benchmark's temp dir, so nothing else
  on the machine that cleans /tmp/procrunner-UID can remove it mid-run.
"""


@dataclass(frozen=True)
class Case:
    key: str
    what: str
    instances: int
    router: bool  # with the router on PORT, web.1 moves up to PORT + 1; else web.1 is PORT


CASES = (
    Case("a", "direct to web.1 (web=1, no router)", 1, False),
    Case("b", "router in front of web=1", 1, True),
    Case("c", "router in front of web=2", 2, True),
)


@dataclass(frozen=True)
class Settings:
    seconds: float
    warmup: float
    reps: int
    connections: int = 8
    threads: int = 2
    timeout: float = 2.0


@dataclass(frozen=True)
class Load:
    """One load run; CPU seconds over its window."""

    requests: int
    seconds: float
    p50: float  # ms
    p99: float
    errors: dict[str, int]
    runner_cpu: float = 0.0  # procrunner's own process
    web_cpu: float = 0.0  # its descendants but the watchdog: the web instances
    client_cpu: float = 0.0  # wrk, or this script's asyncio client
    other_cpu: float = 0.0  # every other process of the machine (and the kernel's threads)
    syn_drops: int = 0  # connections the kernel dropped: a listen queue was full

    @property
    def rps(self) -> float:
        return self.requests / self.seconds


@dataclass(frozen=True)
class Stop:
    status: int | None
    seconds: float | None  # SIGINT -> exit; None: still running after 15 s
    left: int  # marked processes alive 0.5 s after the exit
    router: tuple[int, ...]  # connections, retried, unrouted (from the summary at exit)


LoadFn = Callable[[float], Load]


def wrk(cfg: Settings, script: Path, seconds: float) -> Load:
    argv = ["wrk", "-t", str(cfg.threads), "-c", str(cfg.connections), "-d", f"{seconds:g}s",
            "--timeout", f"{cfg.timeout:g}s", "-s", str(script), f"http://{HOST}:{PORT}{PATH}"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60)
    found = [ln for ln in done.stdout.splitlines() if ln.startswith("@@")]
    if done.returncode != 0 or not found:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stdout}{done.stderr}")
    got = json.loads(found[-1][2:])
    return Load(got["requests"], got["seconds"], got["p50"], got["p99"],
                {key: got[key] for key in ERRORS})


async def _client(cfg: Settings, until: float, latencies: list[float],
                  errors: dict[str, int]) -> None:
    request = f"GET {PATH} HTTP/1.1\r\nHost: {HOST}:{PORT}\r\n\r\n".encode()
    while (start := time.perf_counter()) < until:
        try:
            async with asyncio.timeout(cfg.timeout):
                reader, writer = await asyncio.open_connection(HOST, PORT)
                writer.write(request)
                reply = await reader.read()  # to EOF: the demo closes after each response
                writer.close()
        except TimeoutError:
            errors["timeout"] += 1
            continue
        except OSError:
            errors["read"] += 1
            continue
        latencies.append((time.perf_counter() - start) * 1e3)
        errors["non2xx"] += reply[9:10] != b"2"  # b"HTTP/1.0 200 OK"


def asyncio_load(cfg: Settings, seconds: float) -> Load:
    """The fallback when wrk is missing: cfg.connections clients in one thread, a new
    connection per request; any socket error counts as a read error."""
    latencies: list[float] = []
    errors = dict.fromkeys(ERRORS, 0)

    async def run() -> None:
        until = time.perf_counter() + seconds
        async with asyncio.TaskGroup() as group:
            for _ in range(cfg.connections):
                group.create_task(_client(cfg, until, latencies, errors))

    start = time.perf_counter()
    asyncio.run(run())
    cuts = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else [0.0] * 99
    return Load(len(latencies), time.perf_counter() - start, cuts[49], cuts[98], errors)


def cpu(proc: psutil.Process) -> float:
    with contextlib.suppress(psutil.NoSuchProcess):
        times = proc.cpu_times()
        return float(times.user + times.system)
    return 0.0


def own_cpu() -> float:
    """This script and its reaped children (wrk, once it has exited)."""
    mine = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return sum(r.ru_utime + r.ru_stime for r in mine)


def machine_cpu() -> float:
    """Busy CPU seconds of the whole machine, all cores."""
    times = psutil.cpu_times()
    return float(sum(times) - times.idle - times.iowait)


def listen_drops() -> int:
    """The kernel's count of connection attempts dropped because a listen queue was full
    (every socket of the machine: here, the benchmark's)."""
    names, values = (ln.split() for ln in Path("/proc/net/netstat").read_text().splitlines()
                     if ln.startswith("TcpExt:"))
    return int(dict(zip(names, values, strict=True))["ListenDrops"])


def measure(runner: psutil.Process, load: Callable[[], Load]) -> Load:
    """The load, with the CPU time procrunner, its instances and the client spent on it."""
    helpers = {p.pid for p in procs.helpers(runner.pid)}
    web = [p for p in runner.children(recursive=True) if p.pid not in helpers]
    before = cpu(runner), sum(map(cpu, web)), own_cpu(), machine_cpu(), listen_drops()
    got = load()
    after = cpu(runner), sum(map(cpu, web)), own_cpu(), machine_cpu(), listen_drops()
    used = [a - b for a, b in zip(after, before, strict=True)]
    return dataclasses.replace(got, runner_cpu=used[0], web_cpu=used[1], client_cpu=used[2],
                               other_cpu=used[3] - sum(used[:3]), syn_drops=int(used[4]))


def start(case: Case, work: Path, token: str,
          rep: int) -> tuple[subprocess.Popen[bytes], list[str]]:
    """procrunner running the case's formation, once every instance says it is ready."""
    ports_free(range(PORT, PORT + case.instances + case.router))
    database = work / f"{case.key}-{rep + 1}.sqlite3"
    env = {**procs.bench_env(token), "DATABASE_URL": f"sqlite:///{database}"}
    argv = [str(PROCRUNNER), "start", "-f", str(work / "Procfile"), "--no-color",
            "-m", f"web={case.instances}", "-p", str(PORT), *(["--router"] * case.router),
            "--scratch-root", str(work / "scratch")]  # its own: see "scratch" in MEANING
    proc = subprocess.Popen(argv, cwd=work, env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)
    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(map(bytes.decode, proc.stdout or ())),
                     daemon=True).start()
    deadline = time.monotonic() + 30
    while sum(bool(READY.search(line)) for line in lines) < case.instances:
        if proc.poll() is not None or time.monotonic() > deadline:
            procs.cleanup(proc, token)
            raise RuntimeError(f"{case.what}: never ready:\n{''.join(lines)}")
        time.sleep(0.05)
    return proc, lines


def stop(proc: subprocess.Popen[bytes], lines: list[str], token: str) -> Stop:
    proc.send_signal(signal.SIGINT)
    seconds = procs.wait_exit(proc, 15)
    time.sleep(0.5)
    left = len(procs.marked(token))
    procs.cleanup(proc, token)
    found = ROUTER_LINE.findall("".join(lines))
    return Stop(proc.returncode, seconds, left, tuple(map(int, found[-1])) if found else ())


def run_case(case: Case, rep: int, cfg: Settings, work: Path, token: str,
             load: LoadFn) -> tuple[Load, Stop]:
    proc, lines = start(case, work, token, rep)
    try:
        load(cfg.warmup)
        got = measure(psutil.Process(proc.pid), lambda: load(cfg.seconds))
        return got, stop(proc, lines, token)
    finally:
        procs.cleanup(proc, token)
        OUT.mkdir(exist_ok=True)
        (OUT / f"router-{case.key}-{rep + 1}.log").write_text("".join(lines))


def rows(results: dict[str, list[Load]]) -> list[list[str]]:
    direct = statistics.median(load.rps for load in results["a"])
    out = []
    for case in CASES:
        loads = results[case.key]
        med = statistics.median
        rps = med(load.rps for load in loads)
        errors = {key: sum(load.errors[key] for load in loads) for key in ERRORS}
        detail = ", ".join(f"{key} {n}" for key, n in errors.items() if n)
        percent = {what: med(getattr(load, what) / load.seconds * 100 for load in loads)
                   for what in ("runner_cpu", "web_cpu", "client_cpu", "other_cpu")}
        out.append([
            f"({case.key}) {case.what}", f"{rps:,.0f}", f"{rps / direct:.2f}",
            f"{med(load.p50 for load in loads):.1f}", f"{med(load.p99 for load in loads):.1f}",
            f"{sum(errors.values())}" + (f" ({detail})" if detail else ""),
            f"{med(load.runner_cpu * 1e6 / load.requests for load in loads):.0f}",
            *(f"{value:.0f} %" for value in percent.values()),
            str(sum(load.syn_drops for load in loads)),
        ])
    return out


def section(results: dict[str, list[Load]], stops: list[Stop], cfg: Settings,
            client: str) -> str:
    rps = {key: statistics.median(load.rps for load in loads) for key, loads in results.items()}
    ratios = {key: rps[key] / rps["a"] for key in "bc"}
    failed = sum(sum(load.errors.values()) for loads in results.values() for load in loads)
    times = [s.seconds for s in stops if s.seconds is not None]
    routed = [sum(s.router[i] for s in stops if s.router) for i in range(3)]
    wrk_version = report.version_of(["wrk", "-v"]).split(" Copyright")[0]
    load = (f"`wrk -t {cfg.threads} -c {cfg.connections} -d {cfg.seconds:g}s --timeout "
            f"{cfg.timeout:g}s -s count.lua http://{HOST}:{PORT}{PATH}` ({wrk_version}; "
            "count.lua counts non-2xx responses)" if client == "wrk" else
            f"this script's asyncio client (wrk is missing), {cfg.connections} connections, "
            f"{cfg.seconds:g} s")
    version = report.version_of([str(PROCRUNNER), "--version"])
    return "\n".join([
        TITLE, "",
        f"- command: `{shlex.join([sys.executable, *sys.argv])}` (in /work/main, after "
        "`bash benchmarks/install_peers.sh`)",
        f"- date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; machine: "
        f"{psutil.cpu_count()} CPUs ({report.cpu_model()}), {report.memory_gib():.0f} GiB, "
        f"{platform.platform()}; python {platform.python_version()}",
        f"- procrunner: `{PROCRUNNER}` ({version}), run as `procrunner start -f P --no-color "
        f"-m web=N -p {PORT} [--router] --scratch-root S`, "
        f"P = `web: {PYTHON} -m procrunner.demo.web`, "
        "`DATABASE_URL=sqlite:////tmp/.../CASE-RUN.sqlite3` (a new database per run)",
        f"- load: {load}, after a {cfg.warmup:g} s warm-up; {cfg.reps} run(s) per case", "",
        report.table(["target", "result", "met"], [
            ["throughput through the router at least 0.5x direct",
             f"(b)/(a) {ratios['b']:.2f}, (c)/(a) {ratios['c']:.2f}",
             "yes" if min(ratios.values()) >= 0.5 else "**no**"],
            ["no failed request (no instance killed)", f"{failed} failed",
             "yes" if failed == 0 else "**no**"],
        ]),
        report.table(["case", "req/s", "x direct", "p50 ms", "p99 ms", "failed",
                      "procrunner CPU ms per 1000 req", "procrunner CPU", "web instances CPU",
                      f"{client} CPU", "other CPU", "SYN drops"], rows(results)),
        f"- stops: {len(stops)} runs, each ended by SIGINT: exit statuses "
        f"{sorted({s.status for s in stops}, key=str)}, SIGINT to exit "
        f"{min(times, default=0):.2f}-{max(times, default=0):.2f} s, "
        f"{len(stops) - len(times)} hung; marked processes alive 0.5 s after the exit: "
        f"{sum(s.left for s in stops)}",
        f"- router counters at exit, (b) and (c) runs added up (warm-ups included): "
        f"{routed[0]} connections, {routed[1]} retried, {routed[2]} unrouted", "",
        MEANING,
    ])


def place(text: str, new: str) -> str:
    """RESULTS.md with this section replaced, or put just before the restart section
    (bench_restart.py keeps that one last), or else at the end."""
    parts = [part for part in re.split(r"\n(?=## )", text) if not part.startswith(TITLE)]
    at = next((i for i, part in enumerate(parts) if part.startswith(LAST)), len(parts))
    parts.insert(at, new.rstrip("\n") + "\n")
    return "\n".join(parts).rstrip("\n") + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 run of 3 s per case")
    parser.add_argument("--append", type=Path, help="(re)write the section in this RESULTS.md")
    args = parser.parse_args()
    if not PROCRUNNER.exists():
        sys.exit(f"{PROCRUNNER} is missing: run bash benchmarks/install_peers.sh first")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    cfg = Settings(3, 1, 1) if args.quick else Settings(10, 2, 3)
    client = "wrk" if shutil.which("wrk") else "asyncio"
    token = procs.new_token()
    results: dict[str, list[Load]] = {case.key: [] for case in CASES}
    stops: list[Stop] = []
    with tempfile.TemporaryDirectory(prefix="bench-router-") as tmp:
        work = Path(tmp)
        (work / "Procfile").write_text(f"web: {PYTHON} -m procrunner.demo.web\n")
        (work / "count.lua").write_text(WRK_SCRIPT)
        load: LoadFn = (functools.partial(wrk, cfg, work / "count.lua") if client == "wrk"
                        else functools.partial(asyncio_load, cfg))
        try:
            for rep in range(cfg.reps):
                for case in CASES:
                    got, stopped = run_case(case, rep, cfg, work, token, load)
                    results[case.key].append(got)
                    stops.append(stopped)
                    report.progress(f"({case.key}) run {rep + 1}", f"{got.rps:,.0f} req/s, "
                                    f"p99 {got.p99:.1f} ms, errors {got.errors}")
        finally:
            procs.kill_marked(token)
    text = section(results, stops, cfg, client)
    print(text)
    if args.append:
        args.append.write_text(place(args.append.read_text(), text))


if __name__ == "__main__":
    main()
