"""Tables and text for bench.py: the terminal and RESULTS.md get the same Markdown."""

from __future__ import annotations

import os
import platform
import shlex
import statistics
import subprocess
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from operator import attrgetter
from pathlib import Path
from typing import Any

from peers import PROCRUNNER, Runner

MIB = 1 << 20

NOTES = """
## How to read this

- Every runner and the baseline get `PYTHONUNBUFFERED=1` in their environment, and every Python
  writer command also sets it explicitly (`env PYTHONUNBUFFERED=1 python writer.py ...`), so a
  writer costs the same everywhere: one `write()` for the text and one for the newline per line.
- Throughput: 4 writers (one Procfile type each); the runner's stdout goes to `reader.py`,
  which reads 1 MiB chunks, saves them and counts writer lines. Time = launch of the runner to
  the arrival of the last writer line (writers then stay alive, so that a runner that stops the
  formation when one child exits does not cut the others short). `baseline` = the same 4
  commands in one `sh -c 'a & b & c & d & wait'` piped straight into the same reader;
  `cat-relay` = the same, each command piped through its own `cat` (the cheapest relay: a
  process per writer, no line handling). Both share one pipe between writers, so their lines
  interleave (print() makes two write()s per line; seq writes 4 KiB blocks): not checked.
  `x baseline` = runner time / baseline time, `x cat relay` = runner time / cat-relay time;
  MB/s = writer payload bytes / time. `print()` writers flush every line (PYTHONUNBUFFERED);
  `block-buffered` writers write 8 KiB blocks (no flush per line): the relay's heaviest
  load, and the case where a runner's cost per byte shows.
  `lines` checks every writer's numbered sequence: complete, in order, each line ending in
  exactly one exact payload. `broken` = output lines with writer data that are split, merged
  or altered; `missing` = lines that never arrived (the run ends after 10 s without output;
  its time is then `incomplete`).
- Startup: launch to the moment the runner's stdout has shown `@@up` from every instance
  (instances run `echo @@up; sleep 3600`: a shell with a child, like most real commands).
- Stop: 32 such instances, 1 s after startup. SIGINT/SIGTERM go to the runner's PID only;
  Ctrl-C sends SIGINT to the runner's whole process group, as a terminal does. Time = signal
  to the runner's exit; `hung` = still running after the stop timeout (then killed).
  `left behind` = processes still alive 0.5 s after the runner exited (found by a marker
  variable in their environment), median per run; all are killed afterwards.
- Memory: RSS of the runner's own process (node, ruby, python) with 32 idle instances,
  instances excluded. Helpers are reported apart: procrunner's watchdog (a child whose command
  line contains `procrunner.supervise.watchdog`) and honcho's forked worker per instance
  (descendants with honcho's own command line). USS = private memory of runner + helpers,
  which is the fair total for honcho (its 32 workers share most pages, so their RSS sum
  overstates it). PSS (`/proc/PID/smaps_rollup`) = each page divided among the processes
  that map it, summed over runner + helpers: what the runner costs the machine, shared
  libraries included.
- Slow reader: 4 endless writers of 80 B lines; the reader takes 4 KiB every 10 ms. Peak RSS
  of the runner's own process, and of runner + helpers, sampled every 0.1 s over the window
  (from 0.5 s after launch); then SIGTERM, and the time until the runner exits.
"""


def median_text(values: Sequence[float | None], fmt: str = "{:.3f}", bad: str = "hung") -> str:
    good = [v for v in values if v is not None]
    if not good:
        return bad
    text = fmt.format(statistics.median(good))
    missing = len(values) - len(good)
    return f"{text} ({missing}/{len(values)} {bad})" if missing else text


def median_of(values: Sequence[float | None]) -> float | None:
    good = [v for v in values if v is not None]
    return statistics.median(good) if good else None


def ratio(num: float | None, den: float | None) -> str:
    return f"{num / den:.2f}" if num and den else "—"


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def progress(label: str, sample: Any) -> None:
    print(f"  {label}: {sample}", file=sys.stderr, flush=True)


def version_of(argv: list[str]) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    return ((done.stdout or done.stderr).strip().splitlines() or ["?"])[0]


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "?"


def memory_gib() -> float:
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / (1 << 30)


def source_state() -> str:
    """Which procrunner the default command runs: the repository's commit, and whether the
    package has uncommitted changes (read-only git commands)."""
    repo = Path(__file__).resolve().parent.parent
    sha = version_of(["git", "-C", str(repo), "rev-parse", "--short", "HEAD"])
    git = ["git", "-C", str(repo)]
    diff = subprocess.run([*git, "diff", "--quiet", "HEAD", "--", "procrunner"])
    new = version_of([*git, "ls-files", "--others", "--exclude-standard", "procrunner"])
    dirty = diff.returncode != 0 or new.endswith(".py")
    return f"{repo} at {sha}" + (" with uncommitted changes" if dirty else "")


def header(active: list[Runner], versions: dict[str, str], cfg: Any, note: str) -> str:
    command = shlex.join([sys.executable, *sys.argv])
    commands = {r.name: r.command for r in active}
    default = commands.get("procrunner") == (str(PROCRUNNER),)
    source = source_state() if default else "custom command (see the invocation below)"
    rows = [
        [r.name, versions[r.name], f"`{shlex.join(r.argv(Path('P'), 's', 32))}`"]
        for r in active
        if not r.reference
    ]
    return (
        "# procrunner benchmark results\n\n"
        f"- command: `{command}`\n"
        f"- date: {datetime.now(UTC):%Y-%m-%d %H:%M UTC}\n"
        f"- machine: {os.cpu_count()} CPUs ({cpu_model()}), {memory_gib():.0f} GiB, "
        f"{platform.platform()}\n"
        f"- procrunner source: {source}\n"
        f"- python {platform.python_version()}, node {version_of(['node', '--version'])}, "
        f"{version_of(['ruby', '--version'])}\n"
        f"- settings: {cfg}\n"
        + (f"- note: {note}\n" if note else "")
        + "\n"
        + table(["runner", "version", "invocation (Procfile P, 32 instances of type s)"], rows)
    )


def throughput_tables(results: list[tuple[Any, dict[str, list[Any]]]]) -> str:
    parts = ["## Output throughput (median of the repetitions)\n"]
    for load, per_runner in results:
        base = median_of([s.seconds for s in per_runner.get("baseline", [])])
        cat = median_of([s.seconds for s in per_runner.get("cat-relay", [])])
        total = load.count * len(load.ids) * load.size
        rows = []
        for name, samples in per_runner.items():
            secs = median_of([s.seconds for s in samples])
            bad = [s.verdict.summary() for s in samples if not s.verdict.intact]
            first_bad = bad[0] if bad else "intact"
            lines = f"{first_bad} ({len(samples) - len(bad)}/{len(samples)} intact)"
            if name in ("baseline", "cat-relay"):
                lines = "n/a: one shared pipe, lines interleave"
            rows.append(
                [
                    name,
                    median_text([s.seconds for s in samples], bad="incomplete"),
                    ratio(secs, base),
                    ratio(secs, cat),
                    f"{total / secs / 1e6:.0f}" if secs else "—",
                    lines,
                ]
            )
        title = f"### {load.name}: 4 writers x {load.count} lines ({total / MIB:.0f} MiB)\n"
        head = ["runner", "s", "x baseline", "x cat relay", "MB/s", "lines"]
        parts.append(title + "\n" + table(head, rows))
    return "\n".join(parts)


BIG = ("SIGINT", "SIGTERM", "Ctrl-C")


def idle_tables(results: dict[str, dict[str, list[Any]]]) -> str:
    def med(name: str, get: Any, scenarios: Sequence[str] = BIG) -> float | None:
        if name not in results:
            return None
        return median_of([get(s) for sc in scenarios for s in results[name][sc]])

    startup, stop = attrgetter("startup"), attrgetter("stop")
    rss, uss, pss = (attrgetter(f"memory.{what}") for what in ("rss", "uss", "pss"))
    pr = "procrunner"
    up_rows, stop_rows, mem_rows = [], [], []
    for name, res in results.items():
        up_rows.append(
            [
                name,
                median_text([s.startup for s in res["up4"]], bad="timeout"),
                median_text([s.startup for sc in BIG for s in res[sc]], bad="timeout"),
                ratio(med(pr, startup, ["up4"]), med(name, startup, ["up4"])),
                ratio(med(pr, startup), med(name, startup)),
            ]
        )
        stop_rows.append(
            [
                name,
                *(median_text([s.stop for s in res[mode]]) for mode in BIG),
                "/".join(median_text([s.leftovers for s in res[mode]], "{:.0f}") for mode in BIG),
                ratio(med(pr, stop, ["SIGINT"]), med(name, stop, ["SIGINT"])),
            ]
        )
        last = res["SIGINT"][-1].memory
        mem_rows.append(
            [
                name,
                f"{(med(name, rss) or 0) / MIB:.1f}",
                f"{last.helpers}: {last.helper_rss / MIB:.1f}",
                f"{(med(name, uss) or 0) / MIB:.1f}",
                f"{(med(name, pss) or 0) / MIB:.1f}",
                ratio(med(pr, rss), med(name, rss)),
                ratio(med(pr, uss), med(name, uss)),
                ratio(med(pr, pss), med(name, pss)),
            ]
        )
    stop_head = ["runner", *BIG, "left behind (INT/TERM/C)", "procrunner ÷ (SIGINT)"]
    mem_head = [
        "runner",
        "runner RSS",
        "helpers: RSS",
        "runner+helpers USS",
        "runner+helpers PSS",
        "procrunner ÷ (RSS)",
        "(USS)",
        "(PSS)",
    ]
    return (
        "## Startup (s, launch until every instance's first line is out)\n\n"
        + table(["runner", "4 instances", "32 instances", "procrunner ÷ (4)", "(32)"], up_rows)
        + "\n## Stop, 32 instances (s, signal until the runner exits)\n\n"
        + table(stop_head, stop_rows)
        + "\n## Supervisor memory, 32 idle instances (MiB)\n\n"
        + table(mem_head, mem_rows)
    )


def slow_table(results: dict[str, Any], seconds: float) -> str:
    pr = results.get("procrunner")
    rows = [
        [
            name,
            f"{s.peak_rss / MIB:.1f}",
            f"{s.peak_total / MIB:.1f}",
            f"{s.bytes_read / MIB:.1f}",
            median_text([s.stop]),
            ratio(pr.peak_total if pr else None, s.peak_total),
        ]
        for name, s in results.items()
    ]
    head = [
        "runner",
        "peak RSS (runner)",
        "peak RSS (+ helpers)",
        "read MiB",
        "stop after SIGTERM (s)",
        "procrunner ÷",
    ]
    return f"\n## Slow reader ({seconds:.0f} s, 4 KiB every 10 ms; MiB)\n\n" + table(head, rows)
