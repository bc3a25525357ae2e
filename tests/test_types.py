"""Per-type settings from procrunner.yml, end to end: stop signal and timeout, readiness on
a log line, start order, and reload on file changes."""

from __future__ import annotations

import re
import signal

from tests.harness import App, kid


def test_a_types_own_stop_signal_and_timeout(app: App) -> None:
    app.procfile(f"worker: {kid('signals')}\nother: {kid('sleep')}\n")
    app.write(
        "procrunner.yml", "types:\n  worker:\n    stop_signal: USR1\n    stop_timeout: 300ms\n"
    )
    run = app.start("-t", "20s")
    run.wait_for(r"worker\.1 +\| ready")
    run.wait_for(r"other\.1 +\| ready")
    run.signal(signal.SIGINT)
    assert run.finish() == 130  # well before the formation's 20 s timeout
    text = run.text()
    assert re.search(r"worker\.1 +\| got SIGUSR1", text)
    assert "worker.1#1 did not stop on SIGUSR1 within 300 ms: SIGKILL sent" in text
    assert "other.1#1 did not stop" not in text


def test_ready_on_a_log_line_and_depends_on_orders_the_start(app: App) -> None:
    app.procfile(f"db: {kid('sleep')}\napi: {kid('sleep')}\n")
    app.write(
        "procrunner.yml",
        "types:\n  db:\n    ready: {log: '^ready$'}\n  api:\n    depends_on: [db]\n",
    )
    run = app.start("-m", "db=2,api=1")
    run.wait_for(r"api\.1#1 started with pid")
    text = run.text()
    waits = text.index("api.1 waits for db to be running (depends_on)")
    ready = [text.index(f"db.{n}#1 ready: its output matched /^ready$/") for n in (1, 2)]
    assert waits < max(ready) < text.index("api.1#1 started with pid")
    run.signal(signal.SIGINT)
    run.finish()


def test_watch_restarts_only_the_types_whose_globs_match_once_per_save(app: App) -> None:
    (app.root / "src").mkdir()
    app.procfile(f"web: {kid('sleep')}\nworker: {kid('sleep')}\n")
    app.write("procrunner.yml", "types:\n  web:\n    watch: ['src/*.py']\n")
    run = app.start()
    run.wait_for(r"web\.1 +\| ready")
    run.wait_for(r"worker\.1 +\| ready")
    for number in range(50):
        (app.root / "src" / f"m{number}.py").write_text("x = 1\n")
    run.wait_for(r"watch: 50 changed: src/\S+, .* and 45 more: restarting web$")
    run.wait_for(r"web\.1#2 started with pid .*replacing web\.1#1 \(watch\)")
    (app.root / "src" / "after.py").write_text("y = 2\n")  # a later save: a second restart
    run.wait_for(r"web\.1#3 started with pid")
    run.signal(signal.SIGINT)
    run.finish()
    text = run.text()
    assert text.count("watch: ") == 2 and "worker.1#2" not in text


def test_writes_to_scratch_never_trigger_a_reload(app: App) -> None:
    writer = "for i in 1 2 3 4 5 6 7 8; do echo x > $TMPDIR/f$i; done; echo wrote; exec sleep 3600"
    app.procfile(f"web: sh -c '{writer}'\n")
    run = app.start("--watch", "--scratch-root", str(app.root / "scratch"))
    run.wait_for(r"web\.1 +\| wrote")
    (app.root / "app.py").write_text("changed\n")
    run.wait_for(r"watch: 1 changed: app\.py: restarting web")
    run.wait_for(r"web\.1 +\| wrote", count=2)
    (app.root / "app.py").write_text("changed again\n")
    run.wait_for(r"watch: 1 changed: app\.py: restarting web", count=2)
    run.signal(signal.SIGINT)
    run.finish()
    assert run.text().count("watch: ") == 2
