"""G9: no env-file value in anything procrunner produces. A unique secret sits in ``.env``;
one run exercises every output (text and JSON lines, log files, the summary JSON, ``ps``,
``events``, ``logs``, ``config``, ``check``, ``export`` to each format, a crash loop, the
dashboard's picture, a bad env file's error) and every byte of it is searched for the secret.

Exports are the one place the value belongs: they carry the app's environment to its next
home, so the secret may appear only in the files that hold it, written mode 0600."""

from __future__ import annotations

import http.client
import os
import signal
import stat
import subprocess
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import psutil
import pytest

from tests.harness import PROCRUNNER, App, kid
from tests.test_control import control_path


def everything_under(folder: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def dashboard_picture(url: str) -> bytes:
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=20)
    connection.request("GET", f"/events?{parts.query}")
    response = connection.getresponse()
    data = b""
    while b"event: picture" not in data:
        data += response.readline()
    data += response.readline() + response.readline()
    connection.close()
    return data


@pytest.mark.slow
def test_no_env_file_value_reaches_any_output(app: App) -> None:
    secret = f"canary-{uuid.uuid4().hex}"
    app.write(".env", f"SECRET={secret}\nPLAIN=visible\n")
    app.procfile(f"worker: {kid('sleep')}\ncrash: exit 3\n")
    seen: dict[str, bytes] = {}

    run = app.start("--output", "json", "--log-dir", "logs", "--summary-json", "s.json",
                    "--restart", "crash=always", "--backoff", "first=0.1s,max=0.2s", "--dashboard")
    run.wait_for(r'worker\.1.*"line":"ready')
    url = run.wait_for(r'dashboard on (http[^"]+)')[1]
    events = subprocess.Popen([*PROCRUNNER, "events", "--output"], cwd=app.root, env=app.env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    run.wait_for(r"crash\.1#3 ", timeout=30)  # a crash loop, with its messages
    commands = [("ps",), ("ps", "--json"), ("logs", "--no-follow"), ("config",), ("check",),
                ("kill", "worker.1", "-s", "CONT"), ("restart", "worker.1")]
    for args in commands:
        result = app.cli(*args)
        seen[" ".join(args)] = (result.stdout + result.stderr).encode()
    seen["dashboard"] = dashboard_picture(url)
    canary_live = False
    for proc in [psutil.Process(run.proc.pid), *psutil.Process(run.proc.pid).children(True)]:
        try:
            seen[f"cmdline of {proc.pid}"] = "\0".join(proc.cmdline()).encode()
            canary_live |= proc.environ().get("SECRET") == secret
        except psutil.NoSuchProcess:  # a child of the crash loop, ended since it was listed
            continue
    assert canary_live  # the worker carries the secret: the canary is live
    run.signal(signal.SIGINT)
    run.finish()
    seen["events"] = events.communicate(timeout=20)[0]
    seen["start stdout"] = run.text().encode()
    seen["start stderr"] = run.stderr.encode()
    assert b'"event"' in seen["events"] and b"crash.1" in seen["start stdout"]
    for path, data in everything_under(app.root / "logs").items():
        seen[str(path)] = data
    seen["summary"] = (app.root / "s.json").read_bytes()

    holders = 0
    # kubernetes writes a Secret's values only when asked (else its keys and a kubectl line)
    for kind, extra in (("kubernetes", ["--image", "x:1", "--include-secrets"]),
                        ("compose", ["--image", "x:1"]),
                        ("systemd", [])):
        out = app.root / f"export-{kind}"
        result = app.cli("export", kind, str(out), *extra)
        assert result.returncode == 0, result.stderr
        seen[f"export {kind}"] = (result.stdout + result.stderr).encode()
        for path, data in everything_under(out).items():
            if secret.encode() in data:  # the app's environment, for its next home
                assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
                holders += 1
            else:
                seen[str(path)] = data

    assert holders == 3  # one file per format carries the environment
    app.write(".env", f"SECRET={secret}\nBROKEN '{secret}\n")  # a bad line holding it
    for args in (("check",), ("start",), ("config",)):
        result = app.cli(*args)
        assert result.returncode == 2 and ".env:2" in result.stderr, result.stderr
        seen[f"bad env {args[0]}"] = (result.stdout + result.stderr).encode()

    leaks = [where for where, data in seen.items() if secret.encode() in data]
    assert leaks == [], leaks
    assert not control_path(app).exists() and os.path.isdir(app.root)
