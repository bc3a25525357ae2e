"""Restart policies, backoff, give-up, chaos and recovery time with real processes."""

from __future__ import annotations

import json
import re
import signal
import sys

import pytest
from harness import App, kid

# Exits 1 (or 0, by argv) on its first N runs, counted in a file in the app root (the test's
# backing service), then stays up. Prints its scratch dir and what it finds there.
FLAKY = (
    "import os, sys, time\n"
    "fails, code = int(sys.argv[1]), int(sys.argv[2])\n"
    "with open('runs', 'a+') as f:\n"
    "    f.write('x'); f.seek(0); run = len(f.read())\n"
    "d = os.environ['TMPDIR']\n"
    "print('run', run, 'scratch', d, 'holds', sorted(os.listdir(d)), flush=True)\n"
    "open(os.path.join(d, 'left-by-run-%d' % run), 'w').write('state')\n"
    "if run <= fails:\n"
    "    sys.exit(code)\n"
    "print('stable', flush=True)\n"
    "time.sleep(3600)\n"
)


def flaky(app: App, fails: int, code: int) -> str:
    app.write("flaky.py", FLAKY)
    return f"{sys.executable} flaky.py {fails} {code}"


def test_on_failure_restarts_crashes_and_nothing_local_survives(app: App) -> None:
    app.procfile(f"web: {kid('sleep')}\nworker: {flaky(app, 2, 1)}\n")
    run = app.start("--restart", "worker=on-failure", "--summary-json", "s.json")
    run.wait_for(r"worker\.1 +\| stable")
    run.signal(signal.SIGINT)
    assert run.finish() == 130
    text = run.text()
    scratches = re.findall(r"run (\d) scratch (\S+) holds (\[.*\])", text)
    assert [r for r, _, _ in scratches] == ["1", "2", "3"]
    assert len({d for _, d, _ in scratches}) == 3, "each incarnation has its own scratch"
    assert all(holds == "[]" for _, _, holds in scratches), "a file of run N is gone for run N+1"
    assert "worker.1#1 exited 1 (crash, on-failure)" in text
    assert "worker.1 restarting after crash now" in text
    assert "worker.1 restarting after crash in 500 ms (backoff)" in text
    assert "worker.1#3 started with pid" in text and "replacing worker.1#2 (crash)" in text
    record = {i["name"]: i for i in json.loads((app.root / "s.json").read_text())["instances"]}
    assert record["worker.1"]["restarts"] == {"crash": 2}
    assert record["web.1"]["restarts"] == {}


def test_on_failure_leaves_a_clean_exit_down_and_the_rest_running(app: App) -> None:
    app.procfile(f"web: {kid('sleep')}\nassets: echo built\n")
    run = app.start("--restart", "on-failure")
    run.wait_for(r"assets\.1 stays down \(exited\); the rest keeps running")
    assert run.proc.poll() is None
    run.signal(signal.SIGTERM)
    assert run.finish() == 143


def test_always_restarts_clean_exits_too(app: App) -> None:
    app.procfile(f"worker: {flaky(app, 1, 0)}\n")
    run = app.start("--restart", "always")
    run.wait_for(r"worker\.1 +\| stable")
    run.signal(signal.SIGINT)
    run.finish()
    assert "worker.1#1 exited 0 (exited, always)" in run.text()
    assert "worker.1 restarting after exited now" in run.text()


def test_never_keeps_it_down_and_procrunner_ends_when_nothing_is_left(app: App) -> None:
    app.procfile("one: exit 1\ntwo: exit 0\n")
    run = app.start("--restart", "never")
    assert run.finish() == 1
    assert "no instance is left running: stopping all processes" in run.text()


def test_give_up_marks_a_crash_loop_fatal_and_the_rest_keeps_running(app: App) -> None:
    app.procfile(f"web: {kid('sleep')}\nbroken: exit 3\n")
    run = app.start(
        "--restart", "broken=always", "--backoff", "first=50ms", "--give-up", "3/1m"
    )
    run.wait_for(r"broken\.1 gave up: 3 deaths within 1 min 0 s .*fatal")
    assert run.proc.poll() is None
    run.signal(signal.SIGINT)
    assert run.finish() == 130
    assert run.text().count("broken.1#") >= 3 and "broken.1#4" not in run.text()


@pytest.mark.slow
def test_a_chaos_run_restarts_real_processes_and_the_summary_matches(app: App) -> None:
    app.procfile(f"worker: {kid('env', 'TMPDIR')}\n")
    run = app.start(
        "-m", "worker=2", "--chaos", "every=0.2s,seed=3,max=3", "--summary-json", "s.json"
    )
    run.wait_for(r"chaos +\| chaos on: every 200 ms among all types with SIGKILL.*seed 3")
    run.wait_for(r"chaos +\| done: 3 kills", timeout=20)
    run.wait_for(r"ready: recovered in", timeout=20, count=3)
    run.signal(signal.SIGINT)
    run.finish()
    text = run.text()
    kills = re.findall(r"chaos +\| killing (worker\.\d#\d) \(up [^)]*\) with SIGKILL", text)
    assert len(kills) == 3
    for victim in kills:
        assert f"{victim} ended (killed by chaos after" in text
    dirs = re.findall(r"worker\.\d +\| TMPDIR='(\S+)'", text)
    assert len(dirs) == 2 + 3 and len(set(dirs)) == 5
    data = json.loads((app.root / "s.json").read_text())["instances"]
    assert sum(i["restarts"].get("chaos", 0) for i in data) == 3
    assert sum(len(i["recoveries"]) for i in data) == 3


def test_recovery_is_measured_against_a_real_listening_child(app: App) -> None:
    app.procfile(f"web: {sys.executable} -m http.server $PORT --bind 127.0.0.1\n")
    port = 20000 + int(app.mark[:4], 16) % 20000
    run = app.start("-p", str(port), "--chaos", "every=0.5s,max=1", "--summary-json", "s.json")
    match = run.wait_for(r"web\.1#2 ready: recovered in (\d+) ms")
    assert 0 < int(match.group(1)) < 5000
    run.signal(signal.SIGINT)
    run.finish()
    assert "recovery of web (crash, exit or chaos kill to the successor ready): median" in (
        run.text()
    )
