"""``start --detach``, ``attach`` and the rotated logs, end to end: the detached run is a real
procrunner in its own session, attached from other processes, and nothing outlives it."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import pty
import re
import select
import signal
import stat
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import psutil

from procrunner.control.detach import RUN_LOG, default_log_dir
from procrunner.output.logfiles import KEEP, RotatingSink
from tests.harness import PROCRUNNER, App, Run, free_ports, kid, wait_until

TICKER = "i=0; while true; do i=$((i+1)); echo tick $i; sleep 0.2; done"
BACKGROUND = re.compile(r"running in the background \(pid (\d+)\)")


def state_home(app: App) -> Path:
    """Each test's own XDG_STATE_HOME: the default log folder is under it."""
    home = app.root.parent / f"{app.root.name}-state"
    app.env["XDG_STATE_HOME"] = str(home)
    return home


@contextlib.contextmanager
def detached(app: App, *args: str) -> Iterator[int]:
    """A detached run (its pid); stopped at the end, however the test went, and gone."""
    state_home(app)
    started = app.cli("start", "-D", *args)
    assert started.returncode == 0, started.stderr
    found = BACKGROUND.search(started.stdout)
    assert found, started.stdout
    pid = int(found.group(1))
    try:
        yield pid
    finally:
        app.cli("stop")
        assert wait_until(lambda: not psutil.pid_exists(pid) or _zombie(pid), timeout=30)
        assert wait_until(lambda: not app.census(), timeout=30), app.census()


def _zombie(pid: int) -> bool:
    with contextlib.suppress(psutil.Error):
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    return True


def attach(app: App) -> Run:
    run = Run(["attach"], app.root, app.env)
    app.runs.append(run)
    return run


def ps(app: App) -> dict[str, dict[str, object]]:
    result = app.cli("ps", "--json")
    assert result.returncode == 0, result.stderr
    return {row["name"]: row for row in json.loads(result.stdout)["instances"]}


def test_a_detached_run_is_attached_detached_reattached_and_stopped_leaving_nothing(
    app: App,
) -> None:
    app.procfile(f"worker: echo worker up; exec {kid('sleep')}\nclock: {TICKER}\n")
    with detached(app, "-p", str(free_ports(2))) as pid:
        procrunner = psutil.Process(pid)
        assert procrunner.environ().get("PROCRUNNER_TEST_MARK") == app.mark  # in the census
        assert os.getsid(pid) == pid and os.getsid(pid) != os.getsid(0)  # its own session
        log_dir = default_log_dir(app.root.resolve(), app.env)
        assert stat.S_IMODE(log_dir.stat().st_mode) == 0o700
        assert wait_until(lambda: "worker up" in _log(app, "worker.1.log"), timeout=30)
        first = attach(app)
        first.wait_for(r"clock\.1  \| tick \d+")  # as start prints it: padded names
        # worker.1 said it once, before anyone attached: the history shows it
        assert re.search(r"(?m)^\d\d:\d\d:\d\d worker\.1 \| worker up$", first.text())
        seen = int(first.wait_for(r"clock\.1 +\| tick (\d+)", count=3).group(1))
        first.signal(signal.SIGINT)  # Ctrl-C
        assert first.finish() == 0
        assert "detached: the formation goes on" in first.stderr
        assert ps(app)["clock.1"]["state"] in ("starting", "running") and procrunner.is_running()
        again = attach(app)
        # at most 10 lines of history each: the 12th tick is one printed after it attached
        later = int(again.wait_for(r"clock\.1 +\| tick (\d+)", count=12).group(1))
        assert later > seen + 1  # the run went on while nobody watched
        assert app.cli("wait", "clock", "--timeout", "60s").returncode == 0
        assert app.cli("stop").returncode == 0
        assert again.finish() == 0
        assert "the formation has stopped" in again.stderr
    text = (log_dir / RUN_LOG).read_text()
    assert "stop requested through the control socket" in text and "\033[" not in text
    assert f"tick {later}" in (log_dir / "clock.1.log").read_text()


def test_the_detached_run_survives_its_terminal_closing_and_a_sighup_to_the_starter(
    app: App,
) -> None:
    app.procfile(f"web: {kid('sleep')}\n")
    state_home(app)
    command = " ".join([*PROCRUNNER, "start", "-D", "-p", str(free_ports(1))])
    starter, terminal = pty.fork()  # a session leader on a terminal of its own, like a shell
    if starter == 0:
        try:
            os.chdir(app.root)
            os.execve("/bin/sh", ["/bin/sh", "-c", f"{command}; exec sleep 600"], app.env)
        finally:
            os._exit(127)
    said = b""
    deadline = time.monotonic() + 30
    while not BACKGROUND.search(said.decode(errors="replace")) and time.monotonic() < deadline:
        if select.select([terminal], [], [], 1)[0]:
            said += os.read(terminal, 4096)
    found = BACKGROUND.search(said.decode(errors="replace"))
    assert found, said
    pid = int(found.group(1))
    try:
        before = ps(app)["web.1"]["pid"]
        os.killpg(starter, signal.SIGHUP)  # the starter's process group
        os.close(terminal)  # the window closes: the terminal hangs up
        os.waitpid(starter, 0)
        assert ps(app)["web.1"]["pid"] == before and psutil.Process(pid).is_running()
    finally:
        app.cli("stop")
        assert wait_until(lambda: not app.census(), timeout=30), app.census()


def test_bad_input_fails_before_detaching_with_one_line_and_status_2(app: App) -> None:
    app.procfile("web: \n")
    state_home(app)
    result = app.cli("start", "-D")
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "running in the background" not in result.stdout
    assert not app.census()


def test_a_busy_socket_is_the_runs_one_line_error_and_its_status(app: App) -> None:
    app.procfile(f"web: {kid('sleep')}\n")
    foreground = app.start("-p", str(free_ports(1)))
    foreground.wait_for(r"web\.1 +\| ready")
    state_home(app)
    result = app.cli("start", "-D", "-p", str(free_ports(1)))
    assert result.returncode == 2, result
    assert "a procrunner is already running for" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    foreground.signal(signal.SIGINT)
    assert foreground.finish() == 130


def test_a_log_file_is_rotated_between_writes_and_keeps_three(tmp_path: Path) -> None:
    path = tmp_path / "web.1.log"
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    mirror = os.dup(fd)  # a detached run's stderr follows its stdout into the new file
    lines = [f"line {n:04d} ".ljust(99, "x") + "\n" for n in range(100)]

    async def write_all() -> None:
        loop = asyncio.get_running_loop()
        sink = RotatingSink(path, fd, loop, lambda: None, lambda exc: None, (mirror,), 1000)
        for line in lines:
            sink.write(line.encode())
            sink.flush()
            await asyncio.sleep(0)
            while sink.written < (lines.index(line) + 1) * 100:  # one write per batch
                await asyncio.sleep(0.001)
        await asyncio.to_thread(sink.close)

    asyncio.run(write_all())
    os.write(mirror, b"from the mirror\n")
    os.close(fd)
    os.close(mirror)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert KEEP == 3 and names == ["web.1.log", "web.1.log.1", "web.1.log.2"]
    kept = "".join((tmp_path / name).read_text() for name in reversed(names))
    assert kept.endswith(lines[-1] + "from the mirror\n")
    assert kept.count("\n") == len(kept.splitlines())
    for name in names:
        text = (tmp_path / name).read_text()
        assert len(text.encode()) <= 1000 + 100 and all(
            line.startswith(("line ", "from the mirror")) for line in text.splitlines())
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_attach_says_how_many_lines_a_slow_reader_lost(app: App) -> None:
    """The subscription drops the oldest notices of a reader that does not keep up; attach
    names the lines lost, while start itself drops nothing."""
    from procrunner.control.follow_formation import describe

    said = describe({"event": "dropped", "time": 0.0, "count": 3, "output_lines": 250})
    assert said == "250 lines (3 notices) dropped here: this attach was slower than the formation"
    app.procfile(f"flood: read go < go.fifo && {kid('lines', '6000', '2000', 'done')}\n")
    os.mkfifo(app.root / "go.fifo")
    with detached(app, "-p", str(free_ports(1))):
        slow = subprocess.Popen(
            [*PROCRUNNER, "attach"], cwd=app.root, env=app.env, stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
        )
        try:
            assert slow.stderr is not None
            assert b"attached" in slow.stderr.readline()  # it follows; now it reads no more
            (app.root / "go.fifo").write_text("go\n")
            assert wait_until((app.root / "done.flood.1").exists, timeout=60)
            text = _drain(slow)
        finally:
            slow.kill()
            slow.communicate()
        assert re.search(rb"system +\| \d+ lines \(\d+ notices\) dropped here", text), text[-500:]
        # start itself dropped nothing; its file passed 10 MiB and was rotated once
        kept = _log(app, "flood.1.log.1") + _log(app, "flood.1.log")
        assert sum(f"flood.1 {n:09d} " in kept for n in (0, 3_000, 5_999)) == 3


def _log(app: App, name: str) -> str:
    """A file of the default log folder (empty if there is none yet)."""
    path = default_log_dir(app.root.resolve(), app.env) / name
    return path.read_text() if path.exists() else ""


def _drain(proc: subprocess.Popen[bytes]) -> bytes:
    """What the attach printed once it reads again, up to its 'lines done'."""
    assert proc.stdout is not None
    text = b""
    for line in proc.stdout:
        text += line
        if b"lines done" in line:
            break
    return text


def test_a_detached_run_killed_with_sigkill_leaves_no_orphans(app: App) -> None:
    app.procfile(f"web: {kid('escape', 'setsid')}\nworker: {kid('sleep')}\n")
    with detached(app, "-p", str(free_ports(2))) as pid:
        # procrunner, its watchdog, web.1, its escaped child and worker.1
        assert wait_until(lambda: len(app.census()) >= 5, timeout=30), app.census()
        os.kill(pid, signal.SIGKILL)  # its watchdog takes the formation down
        assert wait_until(lambda: not app.census(), timeout=30), app.census()
