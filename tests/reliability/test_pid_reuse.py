"""G8 PID-reuse safety: procrunner never signals a process that is not the formation's, even
one that holds a pid (and a process group id) that an incarnation of the formation had.

The reuse is forced, not hoped for: in a new PID namespace (as root), ``ns_last_pid`` makes
the next fork get the stopped incarnation's pid. ``pid_reuse_probe.py`` runs there as PID 1,
so everything in the namespace dies with it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.harness import App, kid

PROBE = Path(__file__).with_name("pid_reuse_probe.py")


@pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("unshare") is None,
    reason="forcing a pid needs root (ns_last_pid in a new PID namespace) and unshare",
)
def test_a_reused_pid_and_group_are_never_signalled(app: App) -> None:
    app.procfile(f"worker: {kid('sleep')}\n")
    result = subprocess.run(
        ["unshare", "--pid", "--fork", "--mount-proc", sys.executable, str(PROBE),
         str(app.root)],
        capture_output=True, text=True, timeout=120, env=app.env, cwd=Path(__file__).parents[2],
    )
    if "Operation not permitted" in result.stderr and not result.stdout:
        pytest.skip(f"no new PID namespace here: {result.stderr.strip()}")
    outcome = json.loads(result.stdout.splitlines()[-1])
    assert outcome["reused"], "the decoy never got the old pid"
    assert outcome["refused"] == [2, 2]  # kill and chaos on a stopped instance are refused
    assert outcome["decoy_alive"], result.stderr
