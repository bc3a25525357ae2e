"""Fault injection, black box: the real ``procrunner`` under a broken or stopped reader, an fd
limit, a crash loop, chaos at the instant of Ctrl-C. The ``app`` fixture fails any test that
leaves a marked process behind."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest
from harness import PROCRUNNER, App, kid, wait_until
from matrix import SHAPES_PY

MIB = 1024 * 1024


def ps(app: App) -> dict[str, str]:
    """Instance name to state, through the control socket."""
    result = app.cli("ps", "--json")
    assert result.returncode == 0, result.stderr
    return {row["name"]: row["state"] for row in json.loads(result.stdout)["instances"]}


def socket_ready(app: App) -> bool:
    return app.cli("ps").returncode == 0


def test_broken_stdout_exits_141_promptly_and_leaves_nothing(app: App) -> None:
    app.procfile(
        f"web: {kid('lines', '100000', '80')}\n"
        f"hostile: {sys.executable} {SHAPES_PY} ignore-term\n"
    )
    command = f"{' '.join(PROCRUNNER)} start --no-color -t 1 | head -1; exit ${{PIPESTATUS[0]}}"
    began = time.monotonic()
    done = subprocess.run(
        ["bash", "-c", command], cwd=app.root, env=app.env, capture_output=True, timeout=30
    )
    took = time.monotonic() - began
    assert done.returncode == 141, done.stderr
    assert b"Traceback" not in done.stderr
    assert took < 1.0 + 6.0  # generous: startup, the 1 s timeout for the TERM-ignoring shape
    assert wait_until(lambda: app.census() == [], timeout=2.0)


@pytest.mark.parametrize(
    "window",
    [
        # Default run: 3 s. The printer pauses the child pipes once 4 MiB are queued, which
        # `yes` fills in well under a second, so 3 s already shows the steady state.
        3.0,
        pytest.param(10.0, marks=pytest.mark.slow),  # the 10 s
    ],
)
@pytest.mark.slow
def test_a_stopped_reader_holds_output_back_but_not_the_formation(
    app: App, window: float
) -> None:
    app.procfile("chatty: yes chatty-line\nticker: while :; do echo >> ticks; sleep 0.1; done\n")
    procrunner = subprocess.Popen(
        [*PROCRUNNER, "start", "--no-color", "-t", "1"],
        cwd=app.root, env=app.env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        start_new_session=True,
    )
    reader = subprocess.Popen(["cat"], stdin=procrunner.stdout, stdout=subprocess.DEVNULL)
    assert procrunner.stdout is not None
    procrunner.stdout.close()
    try:
        ticks = app.root / "ticks"
        assert wait_until(lambda: ticks.exists() and socket_ready(app), timeout=15)
        reader.send_signal(signal.SIGSTOP)
        me = psutil.Process(procrunner.pid)
        rss_before = me.memory_info().rss
        lines_before = ticks.read_bytes().count(b"\n")
        # A bounded observation window: what must hold is "for the whole window".
        deadline = time.monotonic() + window
        peak = rss_before
        while time.monotonic() < deadline:
            peak = max(peak, me.memory_info().rss)
            time.sleep(0.1)
        states = ps(app)
        ticked = ticks.read_bytes().count(b"\n") - lines_before
        reader.send_signal(signal.SIGCONT)
        procrunner.send_signal(signal.SIGINT)
        assert procrunner.wait(15) == 130
    finally:
        reader.send_signal(signal.SIGCONT)
        reader.wait(15)
    assert states == {"chatty.1": "running", "ticker.1": "running"}
    assert ticked >= window * 5  # the ticker writes every 0.1 s; half the rate is plenty
    print(f"stopped reader {window} s: procrunner RSS {rss_before / MIB:.1f} -> peak "
          f"{peak / MIB:.1f} MiB")
    assert peak < 64 * MIB + 2 * 2 * MIB  # G6's bound: 64 MiB + 2 MiB per instance


def test_regression_a_failed_start_at_the_fd_limit_neither_ends_the_run_nor_hangs_the_stop(
    app: App,
) -> None:
    """Scaling past the fd limit used to stop the whole formation, and the stop then hung:
    its scans of /proc failed with EMFILE and the stop tasks died without reporting."""
    app.procfile(f"worker: {kid('sleep')}\n")
    app.write("procrunner.yml", "types:\n  worker: {ready: none}\n")
    run = app.start("-t", "1", "-p", "20000")
    run.wait_for(r"worker\.1 +\| ready")
    assert subprocess.run(
        ["prlimit", f"--pid={run.proc.pid}", "--nofile=64"], check=False
    ).returncode == 0
    result = app.cli("scale", "worker=200", timeout=60)
    assert result.returncode == 0, result.stderr
    run.wait_for(r"failed to start worker\.\d+#1: .*Too many open files")
    states = ps(app)
    running = sum(1 for state in states.values() if state == "running")
    failures = run.text().count("failed to start")
    print(f"fd limit 64, scale worker=200: {running} running, {failures} failed starts")
    assert states["worker.1"] == "running"
    assert running + failures == 200
    run.signal(signal.SIGINT)
    assert run.finish() == 130, run.text()[-3000:] + run.stderr[-3000:]
    assert "Traceback" not in run.stderr + run.text()


@pytest.mark.parametrize(
    ("backoff", "window"),
    [
        # Default run: a short cap (1 s), so the window sees many restarts quickly.
        pytest.param("first=0.5s,max=1s", 5.0, marks=pytest.mark.slow),
        pytest.param("first=0.5s,max=30s", 60.0, marks=pytest.mark.slow),  # the defaults
    ],
)
def test_a_crash_loop_costs_under_one_percent_cpu(app: App, backoff: str, window: float) -> None:
    app.procfile("web: exit 1\n")
    run = app.start("--restart", "always", "--backoff", backoff)
    run.wait_for(r"web\.1 restarting after crash in .*backoff", count=2)
    me = psutil.Process(run.proc.pid)
    before = me.cpu_times()
    time.sleep(window)  # a bounded observation window: CPU is measured over it
    after = me.cpu_times()
    used = (after.user + after.system) - (before.user + before.system)
    share = used / window
    restarts = len([1 for line in run.text().splitlines() if "restarting after crash" in line])
    print(f"crash loop ({backoff}): {share:.2%} of a core over {window} s, {restarts} restarts")
    run.signal(signal.SIGINT)
    assert run.finish() == 130
    assert share < 0.01 if window >= 60 else share < 0.05  # the short cap restarts 5x faster


@pytest.mark.parametrize(
    "offset",
    [0.0, *(pytest.param(offset, marks=pytest.mark.slow) for offset in (0.005, 0.02))],
)
def test_chaos_at_the_instant_of_ctrl_c_leaves_nothing(app: App, offset: float) -> None:
    app.procfile(
        f"web: {sys.executable} {SHAPES_PY} setsid\n"
        f"worker: {sys.executable} {SHAPES_PY} ignore-term\n"
    )
    app.write("procrunner.yml", "types:\n  web: {ready: none}\n  worker: {ready: none}\n")
    run = app.start("-t", "1", "--restart", "always")
    run.wait_for(r"web\.1 +\| built")
    run.wait_for(r"worker\.1 +\| built")
    assert wait_until(lambda: socket_ready(app))
    chaos = threading.Thread(target=app.cli, args=("chaos", "now", "web.1"))
    chaos.start()
    time.sleep(offset)  # the fault is the coincidence itself: a few fixed offsets
    run.signal(signal.SIGINT)
    chaos.join()
    assert run.finish() == 130
    text = run.text()
    if "web.1#2 started" in text:  # chaos finished first: a restart before the stop is fine
        assert text.index("web.1#2 started") < text.index("SIGINT received")
    assert wait_until(lambda: app.census() == [], timeout=2.0)


def files_in(path: Path) -> int:
    return sum(1 for _ in path.rglob("*"))


def _incarnations_alive(app: App) -> dict[str, set[str]]:
    """Instance name to the incarnations with a live process (PROCRUNNER_INCARNATION)."""
    alive: dict[str, set[str]] = {}
    for proc in app.census():
        try:
            label = proc.environ().get("PROCRUNNER_INCARNATION", "")
        except psutil.Error:
            continue
        if label:
            name = label.rpartition("/")[2].partition("#")[0]
            alive.setdefault(name, set()).add(label)
    return alive


@pytest.mark.slow
def test_racing_scales_never_leave_two_incarnations_of_one_instance_alive(app: App) -> None:
    app.procfile(f"web: {kid('serve')}\n")
    run = app.start("-t", "1", "-p", "21000", "--restart", "always")
    run.wait_for(r"web\.1#1 ready")
    twins: list[dict[str, set[str]]] = []
    done = threading.Event()

    def watch() -> None:  # samples the census for the whole race
        while not done.is_set():
            alive = _incarnations_alive(app)
            if any(len(labels) > 1 for labels in alive.values()):
                twins.append(alive)

    sampler = threading.Thread(target=watch)
    sampler.start()
    try:
        for _ in range(8):
            clients = [threading.Thread(target=app.cli, args=("scale", f"web={n}")) for n in (0, 5)]
            for client in clients:
                client.start()
            for client in clients:
                client.join()
        assert app.cli("scale", "web=2").returncode == 0  # the last command wins
        result = app.cli("stop", "web.1")  # a stop, then a scale, while instances stop
        assert result.returncode == 0, result.stderr
        assert app.cli("scale", "web=3").returncode == 0
    finally:
        done.set()
        sampler.join()
    run.signal(signal.SIGINT)
    assert run.finish() == 130
    assert twins == []
    assert "Address already in use" not in run.text() + run.stderr


def test_stop_during_backoff_keeps_the_instance_down(app: App) -> None:
    app.procfile(f"web: exit 1\nworker: {kid('sleep')}\n")
    app.write("procrunner.yml", "types:\n  worker: {ready: none}\n")
    run = app.start("--restart", "web=always", "--backoff", "first=60s")
    run.wait_for(r"web\.1 restarting after crash in .*backoff")
    result = app.cli("stop", "web.1")
    assert result.returncode == 0, result.stderr
    assert ps(app)["web.1"] == "stopped"
    result = app.cli("stop")
    assert result.returncode == 0, result.stderr
    assert run.finish() == 0
    assert "web.1#3" not in run.text()

