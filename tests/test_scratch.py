"""Scratch directories end to end: private, fresh, inventoried and wiped; nothing local survives."""

from __future__ import annotations

import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import psutil
import pytest
from harness import App, kid, wait_until

WRITE_FILES = (
    "import os, sys\n"
    "d = os.environ['TMPDIR']\n"
    "for i, size in enumerate([10, 2000, 300000]):\n"
    "    open(os.path.join(d, f'f{i}.bin'), 'wb').write(b'x' * size)\n"
    "os.makedirs(os.path.join(d, 'sub'))\n"
    "open(os.path.join(d, 'sub', 'big.bin'), 'wb').write(b'y' * 700000)\n"
    "print('wrote', d, flush=True)\n"
    "import time; time.sleep(3600)\n"
)


def summary(app: App) -> dict[str, dict[str, object]]:
    data = json.loads((app.root / "summary.json").read_text())
    return {i["name"]: i for i in data["instances"]}


def test_each_incarnation_gets_a_private_empty_tmpdir(app: App) -> None:
    probe = (
        "import os, stat\n"
        "d = os.environ['TMPDIR']\n"
        "same = {os.environ[k] for k in ('TMPDIR', 'TMP', 'TEMP', 'PROCRUNNER_SCRATCH')}\n"
        "mode = stat.S_IMODE(os.stat(d).st_mode)\n"
        "print('scratch', d, len(same), oct(mode), os.listdir(d), flush=True)\n"
        "import time; time.sleep(3600)\n"
    )
    app.write("probe.py", probe)
    app.procfile(f"web: {sys.executable} probe.py\n")
    run = app.start("-m", "web=2", "--summary-json", "summary.json")
    first = run.wait_for(r"web\.1 +\| scratch (\S+) 1 0o700 \[\]$").group(1)
    second = run.wait_for(r"web\.2 +\| scratch (\S+) 1 0o700 \[\]$").group(1)
    assert first != second
    assert Path(first).parent == Path(second).parent
    run.signal(signal.SIGINT)
    run.finish()
    assert not Path(first).exists() and not Path(second).exists()
    assert not Path(first).parent.exists(), "the run's scratch root is removed at exit"


def test_the_inventory_counts_exactly_what_the_child_wrote(app: App) -> None:
    app.write("writer.py", WRITE_FILES)
    app.procfile(f"web: {sys.executable} writer.py\n")
    run = app.start("--summary-json", "summary.json")
    scratch = run.wait_for(r"wrote (\S+)").group(1)
    run.signal(signal.SIGTERM)
    assert run.finish() == 143
    assert "summary: 1 instance, " in run.text()
    assert "destroyed 4 files / 1.0 MB of scratch" in run.text()
    destroyed = summary(app)["web.1"]["incarnations"][0]["scratch"]  # type: ignore[index]
    assert destroyed["files"] == 4
    assert destroyed["bytes"] == 10 + 2000 + 300000 + 700000
    assert destroyed["largest"][:2] == [["sub/big.bin", 700000], ["f2.bin", 300000]]
    assert not Path(scratch).exists()


def test_process_memory_is_measured_within_20_percent(app: App) -> None:
    hold = (
        "import time\n"
        "block = bytearray(b'm') * (200 * 1024 * 1024)\n"
        "print('holding', flush=True)\n"
        "time.sleep(3600)\n"
    )
    app.write("hold.py", hold)
    app.procfile(f"web: {sys.executable} hold.py\n")
    run = app.start("--summary-json", "summary.json")
    run.wait_for("holding")
    run.signal(signal.SIGINT)
    run.finish()
    memory = summary(app)["web.1"]["incarnations"][0]["memory"]  # type: ignore[index]
    measured = memory["uss"] if memory["uss"] is not None else memory["rss"]
    assert 0.8 * 200 * 2**20 <= measured <= 1.2 * 200 * 2**20, memory


def test_keep_scratch_keeps_and_says_where(app: App) -> None:
    app.write("writer.py", WRITE_FILES)
    app.procfile(f"web: {sys.executable} writer.py\n")
    run = app.start("--keep-scratch", "--scratch-root", str(app.root / "scratch"))
    scratch = run.wait_for(r"wrote (\S+)").group(1)
    run.signal(signal.SIGINT)
    run.finish()
    assert "kept 4 files / 1.0 MB of scratch" in run.text()
    assert f"scratch kept in {Path(scratch).parent}" in run.text()
    assert (Path(scratch) / "sub" / "big.bin").stat().st_size == 700000


def test_the_scratch_of_a_sigkilled_procrunner_is_removed_by_the_next_start(app: App) -> None:
    app.write("writer.py", WRITE_FILES)
    app.procfile(f"web: {sys.executable} writer.py\n")
    base = app.root / "scratch"
    run = app.start("--scratch-root", str(base))
    scratch = Path(run.wait_for(r"wrote (\S+)").group(1))
    next(p for p in app.census() if "procrunner.supervise.watchdog" in p.cmdline()).kill()
    run.signal(signal.SIGKILL)
    run.finish()
    assert scratch.exists(), "with its watchdog dead, a run's scratch stays until the next start"
    again = app.start("--scratch-root", str(base), "--run-for", "0.2s")
    assert again.finish() == 0
    assert f"removed the scratch of run {scratch.parent.name}, left by a procrunner" in again.text()
    assert not scratch.parent.exists()
    assert sorted(p.name for p in base.iterdir()) == []


def test_audit_reports_a_file_written_into_the_app_root(app: App) -> None:
    app.procfile("web: mkdir -p uploads && echo data > uploads/a.png && exec sleep 3600\n")
    (app.root / ".git").mkdir()
    run = app.start("--audit", "--run-for", "1s", "--summary-json", "summary.json")
    assert run.finish() == 0
    text = run.text()
    assert "audit: uploads/a.png written during the run: local state outside any scratch" in text
    assert "audit:   uploads/a.png (5 B)" in text
    assert "summary.json" not in text.split("summary (")[0].split("audit:", 1)[1]


def test_the_summary_table_and_json_count_every_incarnation(app: App) -> None:
    app.procfile(f"web: {kid('sleep')}\nworker: {kid('sleep')}\n")
    run = app.start("-m", "web=2,worker=1", "--run-for", "1s", "--summary-json", "summary.json")
    assert run.finish() == 0
    assert "summary: 3 instances, " in run.text()
    data = summary(app)
    assert sorted(data) == ["web.1", "web.2", "worker.1"]
    for record in data.values():
        assert len(record["incarnations"]) == 1  # type: ignore[arg-type]
        assert record["state"] == "stopped"


UNPRIVILEGED = "setpriv --reuid=65534 --regid=65534 --clear-groups"


@pytest.mark.skipif(
    os.getuid() != 0 or not shutil.which("setpriv") or not Path("/usr/bin/python3").exists(),
    reason="needs root, setpriv and /usr/bin/python3 to run the child as an unprivileged user",
)
def test_a_hostile_child_cannot_make_the_wipe_escape_or_fail(app: App) -> None:
    """procrunner runs as root (the dangerous case for symlink tricks); the child, as nobody,
    plants symlinks to a canary, a hard link into it, and unreadable directories."""
    outer = Path(tempfile.mkdtemp(prefix="procrunner-test-"))
    outer.chmod(0o711)  # the child may pass through, not list
    try:
        canary = outer / "canary"
        (canary / "deep").mkdir(parents=True)
        (canary / "keep.txt").write_text("precious")
        (canary / "deep" / "also.txt").write_text("precious too")
        (canary / "keep.txt").chmod(0o666)  # so the unprivileged child may hard-link it
        before = _snapshot(canary)
        hostile = (
            "import os, time\n"
            "d = os.environ['TMPDIR']\n"
            f"os.symlink({str(canary)!r}, os.path.join(d, 'to-canary'))\n"
            f"os.symlink({str(canary / 'keep.txt')!r}, os.path.join(d, 'to-file'))\n"
            "os.symlink('/', os.path.join(d, 'to-root'))\n"
            f"os.link({str(canary / 'keep.txt')!r}, os.path.join(d, 'hardlink'))\n"
            "os.makedirs(os.path.join(d, 'locked', 'inner'))\n"
            "open(os.path.join(d, 'locked', 'inner', 'f'), 'w').write('x')\n"
            "os.chmod(os.path.join(d, 'locked', 'inner'), 0)\n"
            "os.chmod(os.path.join(d, 'locked'), 0o500)\n"
            "os.chmod(d, 0o500)\n"
            "print('planted', os.getuid(), flush=True)\n"
            "time.sleep(3600)\n"
        )
        app.write("hostile.py", hostile)
        # The scratch root is 0700 (procrunner's own); let the unprivileged child reach its dir.
        reach = "chmod 711 $TMPDIR/../.. $TMPDIR/.. && chown 65534:65534 $TMPDIR"
        drop = f'{UNPRIVILEGED} /usr/bin/python3 -c "$(cat hostile.py)"'
        app.procfile(f"web: {reach} && exec {drop}\n")
        run = app.start("--summary-json", "summary.json", "--scratch-root", str(outer / "s"))
        run.wait_for(r"planted 65534")
        run.signal(signal.SIGINT)
        assert run.finish() == 130
        assert list((outer / "s").iterdir()) == []
        assert _snapshot(canary) == before
    finally:
        shutil.rmtree(outer)
    destroyed = summary(app)["web.1"]["incarnations"][0]["scratch"]  # type: ignore[index]
    assert destroyed["files"] == 5
    assert destroyed["problems"] == []


def _snapshot(root: Path) -> dict[str, tuple[bytes, int, int]]:
    found = {}
    for path in sorted(root.rglob("*")):
        info = path.lstat()
        content = path.read_bytes() if path.is_file() else b""
        found[str(path)] = (content, stat.S_IMODE(info.st_mode), info.st_mtime_ns)
    return found


def test_audit_ignores_declared_backing_service_paths(app: App) -> None:
    app.procfile("web: mkdir -p data && echo row > data/db.sqlite3 && echo x > cache.txt\n")
    run = app.start("--audit", "--audit-ignore", str(app.root / "data" / "db.sqlite3"))
    assert run.finish() == 0
    text = run.text()
    assert "audit: cache.txt written during the run" in text
    assert "db.sqlite3" not in text


def _private_tmp(app: App) -> Path:
    """A temp dir of the test's own for procrunner's default scratch base and socket."""
    tmp = app.root / "tmp"
    tmp.mkdir()
    app.env["TMPDIR"] = str(tmp)
    app.env.pop("XDG_RUNTIME_DIR", None)
    return tmp / f"procrunner-{os.getuid()}"


def test_a_clean_exit_leaves_no_empty_folder_in_the_temp_dir(app: App) -> None:
    user_dir = _private_tmp(app)
    app.procfile(f"web: {kid('sleep')}\n")
    assert app.start("--run-for", "0.3s").finish() == 0
    assert list(user_dir.iterdir()) == []


def test_the_watchdog_removes_a_sigkilled_runs_scratch_and_socket(app: App) -> None:
    user_dir = _private_tmp(app)
    app.write("writer.py", WRITE_FILES)
    app.procfile(f"web: {sys.executable} writer.py\n")
    run = app.start()
    scratch = Path(run.wait_for(r"wrote (\S+)").group(1))
    assert any(p.suffix == ".sock" for p in user_dir.iterdir())
    run.signal(signal.SIGKILL)
    run.finish()
    assert wait_until(lambda: app.census() == [])
    assert wait_until(lambda: list(user_dir.iterdir()) == []), list(user_dir.iterdir())
    assert not scratch.exists()


def test_a_mount_left_in_scratch_is_detached_and_the_scratch_removed(app: App) -> None:
    if os.geteuid() != 0 and os.environ.get("CI") != "true":
        pytest.skip("only root can mount in a test and detach a mount")
    script = (
        'mkdir "$TMPDIR/m" && mount -t tmpfs -o size=1m none "$TMPDIR/m" && echo x >"$TMPDIR/m/f"'
    )
    app.procfile(f"web: {script} && echo mounted $TMPDIR && exec {kid('sleep')}\n")
    run = app.start()
    scratch = Path(run.wait_for(r"mounted (\S+)").group(1))
    run.signal(signal.SIGINT)
    assert run.finish() == 130
    assert not scratch.exists(), run.text()
    assert str(scratch) not in Path("/proc/self/mountinfo").read_text()


def test_what_the_sweep_cannot_remove_is_one_line(app: App) -> None:
    chattr = shutil.which("chattr")
    if chattr is None or os.geteuid() != 0:
        pytest.skip("needs chattr and root to make a file that cannot be removed")
    app.procfile(f"web: {kid('sleep')}\n")
    base = app.root / "scratch"
    run = app.start("--scratch-root", str(base))
    run.wait_for(r"web\.1 +\| ready")
    stuck = next(base.glob("*/web.1-1")) / "stuck"
    stuck.write_text("x")
    if subprocess.run([chattr, "+i", str(stuck)], capture_output=True).returncode != 0:
        run.signal(signal.SIGINT)
        run.finish()
        pytest.skip("this filesystem has no immutable flag")
    try:
        next(p for p in app.census() if "procrunner.supervise.watchdog" in p.cmdline()).kill()
        run.signal(signal.SIGKILL)
        run.finish()
        again = app.start("--scratch-root", str(base), "--run-for", "0.3s")
        assert again.finish() == 0
        lines = [line for line in again.text().splitlines() if "could not remove" in line]
        assert len(lines) == 1, again.text()
        assert "web.1-1/stuck: cannot remove: Operation not permitted" in lines[0]
    finally:
        subprocess.run([chattr, "-i", str(stuck)], check=True)


@pytest.mark.parametrize("watchdog", ["alive", "killed"])
def test_a_planted_lock_never_takes_down_a_live_run(app: App, watchdog: str) -> None:
    """A child writes ``<run id>.lock`` for a live run of another app into its own app's
    scratch base: the next start of its app must leave that run alone."""
    victim = app.root / "victim"
    victim.mkdir()
    (victim / "Procfile").write_text(f"web: {kid('env', 'PROCRUNNER_RUN')}\n")
    live = app.start("-d", str(victim))
    run_id = live.wait_for(r"PROCRUNNER_RUN='([^']+)'").group(1)
    if watchdog == "killed":
        helper = next(p for p in app.census() if run_id in p.cmdline())
        helper.kill()  # its parent, procrunner, reaps it only at exit
        assert wait_until(lambda: helper.status() == psutil.STATUS_ZOMBIE)
    leader = next(p for p in app.census() if p.ppid() == live.proc.pid and "env" in p.cmdline())
    app.procfile(f"web: {kid('sleep')}\n")
    base = app.root / "scratch"
    base.mkdir(mode=0o700)
    (base / f"{run_id}.lock").touch()  # what a child of this app could write
    again = app.start("--scratch-root", str(base), "--run-for", "0.3s")
    assert again.finish() == 0
    assert run_id not in again.text()
    assert live.proc.poll() is None and leader.is_running()
    live.signal(signal.SIGINT)
    assert live.finish() == 130
