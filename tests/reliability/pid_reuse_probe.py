"""Run inside a new PID namespace (``unshare --pid --fork --mount-proc``, as PID 1): a formation
whose stopped instance's pid is then handed, through ``ns_last_pid``, to a decoy that leads
its own session (so its pid is also a process group id). procrunner's kill, chaos, stop and
the watchdog (after procrunner is SIGKILLed) must leave the decoy alone. Prints one JSON line.

Usage: python pid_reuse_probe.py APP_ROOT
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time

PROCRUNNER = [sys.executable, "-m", "procrunner"]


def cli(root: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*PROCRUNNER, *args], cwd=root, capture_output=True, text=True,
                          timeout=30, stdin=subprocess.DEVNULL)


def rows(root: str) -> dict[str, dict[str, object]]:
    result = cli(root, "ps", "--json")
    return {r["name"]: r for r in json.loads(result.stdout)["instances"]} if result.stdout else {}


def until(predicate: object, timeout: float = 20.0) -> bool:
    assert callable(predicate)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def decoy_at(pid: int) -> subprocess.Popen[bytes] | None:
    """A process that gets ``pid`` (and leads a session, so it is pgid ``pid`` too)."""
    for _ in range(20):
        with open("/proc/sys/kernel/ns_last_pid", "w") as last:
            last.write(str(pid - 1))
        decoy = subprocess.Popen(["sleep", "3600"], start_new_session=True)
        if decoy.pid == pid:
            return decoy
        decoy.kill()
        decoy.wait()
    return None


def marked(pid: str) -> bool:
    """Whether ``pid`` carries a procrunner run's marker (a process of the formation)."""
    with contextlib.suppress(OSError), open(f"/proc/{pid}/environ", "rb") as environ:
        return b"PROCRUNNER_RUN=" in environ.read()
    return False


def reap_orphans() -> None:
    """As PID 1, reap what is re-parented to us (procrunner's watchdog, once done)."""
    while True:
        try:
            if os.waitpid(-1, os.WNOHANG)[0] == 0:
                return
        except ChildProcessError:
            return


def main() -> None:
    root = sys.argv[1]
    runner = subprocess.Popen([*PROCRUNNER, "start", "--no-color", "-m", "worker=2",
                               "--restart", "always"], cwd=root, stdin=subprocess.DEVNULL,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    until(lambda: all(r.get("state") == "running" for r in rows(root).values()) and rows(root))
    old = int(str(rows(root)["worker.1"]["pid"]))
    cli(root, "stop", "worker.1")
    until(lambda: rows(root)["worker.1"]["state"] == "stopped")
    until(lambda: not os.path.exists(f"/proc/{old}"))
    decoy = decoy_at(old)
    result: dict[str, object] = {"reused": decoy is not None}
    if decoy is not None:
        refused = [cli(root, *a).returncode for a in
                   (("kill", "worker.1", "-s", "KILL"), ("chaos", "now", "worker.1"))]
        cli(root, "chaos", "now", "worker.2")  # a real kill, beside the reused pid
        until(lambda: rows(root)["worker.2"]["incarnation"] == 2)
        runner.send_signal(signal.SIGKILL)  # the watchdog's sweep takes the rest down
        runner.wait()
        until(lambda: not any(map(marked, os.listdir("/proc"))))
        reap_orphans()
        result.update(refused=refused, decoy_alive=decoy.poll() is None)
        decoy.kill()
        decoy.wait()
    else:
        runner.send_signal(signal.SIGINT)
        runner.wait(30)
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
