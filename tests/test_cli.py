"""The command line: bad input is one line and status 2; check, run, --version, --help."""

from __future__ import annotations

import os
import subprocess

import pytest
from harness import PROCRUNNER, App

from procrunner import __version__


def one_error_line(app: App, *args: str) -> str:
    result = app.cli(*args)
    assert result.returncode == 2, result
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert result.stdout == ""
    return lines[0]


@pytest.mark.parametrize(
    ("procfile", "expected"),
    [
        ("web: ok\nweb gunicorn app\n", "Procfile:2: malformed line 'web gunicorn app'"),
        ("web: a\nweb: b\n", "Procfile:2: duplicate process type 'web'"),
        ("web:\n", "Procfile:1: process type 'web' has an empty command"),
        ("# only a comment\n\n", "Procfile: no process types"),
        ("we b: x\n", "Procfile:1: malformed line"),
    ],
)
def test_a_broken_procfile_is_named_by_file_line_and_text(
    app: App, procfile: str, expected: str
) -> None:
    app.procfile(procfile)
    for command in ("start", "check"):
        assert expected in one_error_line(app, command)


def test_a_missing_procfile(app: App) -> None:
    assert "Procfile" in one_error_line(app, "start")
    assert "elsewhere.proc" in one_error_line(app, "start", "-f", "elsewhere.proc")


def test_a_broken_env_file_names_the_key_never_the_value(app: App) -> None:
    app.procfile("web: sleep 1\n")
    app.write(".env", 'OK=1\nSECRET_TOKEN="hunter2-unterminated\n')
    line = one_error_line(app, "start")
    assert ".env:2" in line and "SECRET_TOKEN" in line
    assert "hunter2" not in line


def test_a_named_env_file_that_is_missing(app: App) -> None:
    app.procfile("web: sleep 1\n")
    assert "missing.env" in one_error_line(app, "start", "-e", "missing.env")


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["-m", "wbe=1"], "unknown process type 'wbe'"),
        (["-m", "web=x"], "--formation"),
        (["-m", "web=-1"], "--formation"),
        (["-c", "web"], "--formation"),
        (["nosuch"], "nosuch"),
        (["-p", "70000"], "--port"),
        (["-p", "abc"], "--port"),
        (["-t", "soon"], "--timeout"),
        (["--run-for", "5 parsecs"], "--run-for"),
        (["--env-precedence", "neither"], "invalid choice"),
        (["--no-such-option"], "unrecognized arguments"),
    ],
)
def test_bad_options_are_one_line(app: App, args: list[str], expected: str) -> None:
    app.procfile("web: sleep 1\nworker: sleep 1\n")
    assert expected in one_error_line(app, "start", *args)


def test_a_bad_port_in_the_env_file_is_named_without_its_value(app: App) -> None:
    app.procfile("web: sleep 1\n")
    app.write(".env", "PORT=eighty\n")
    line = one_error_line(app, "start")
    assert "PORT" in line and "eighty" not in line


def test_a_port_beyond_65535_after_offsets_is_an_error(app: App) -> None:
    app.procfile("web: sleep 1\nworker: sleep 1\n")
    assert "65535" in one_error_line(app, "start", "-p", "65500", "-m", "all=1")


def test_check_lists_types_with_ports(app: App) -> None:
    app.procfile("web: gunicorn app\nworker: python worker.py\nclock: python clock.py\n")
    app.write(".env", "A=1\n")
    result = app.cli("check", "-m", "web=2,worker=1")
    assert result.returncode == 0, result.stderr
    assert "3 process types" in result.stdout
    assert "web     x2  ports 5000-5001" in result.stdout
    assert "worker  x1  port 5100" in result.stdout
    assert "clock   x0  port 5200" in result.stdout
    assert ".env" in result.stdout


def test_check_shows_release_as_the_step_before_the_formation_not_in_it(app: App) -> None:
    app.procfile("web: gunicorn app\nrelease: ./migrate\n")
    result = app.cli("check", "-m", "all=1")
    assert result.returncode == 0, result.stderr
    assert "web  x1  port 5000" in result.stdout
    assert "x1  port 5100" not in result.stdout  # release is not one of the formation's rows
    assert "release step: runs once, before the formation: ./migrate" in result.stdout
    app.write("procrunner.yml", "release: false\n")
    off = app.cli("check").stdout
    assert "release step: skipped (the release setting is off): ./migrate" in off


def test_run_uses_the_app_environment_and_passes_the_status(app: App) -> None:
    app.write(".env", "GREETING=hello there\n")
    result = app.cli("run", "sh", "-c", 'echo "$GREETING"; exit 7')
    assert result.returncode == 7
    assert result.stdout == "hello there\n"


def test_run_a_procfile_entry_by_name(app: App) -> None:
    app.procfile("web: echo web on $PORT\nworker: echo worker on $PORT\n")
    result = app.cli("run", "worker")
    assert result.returncode == 0
    assert result.stdout == "worker on 5100\n"


def test_run_a_missing_command(app: App) -> None:
    result = app.cli("run", "no-such-command-xyz")
    assert result.returncode == 127
    assert "command not found: no-such-command-xyz" in result.stderr


def test_version_and_help(app: App) -> None:
    assert app.cli("--version").stdout.strip() == f"procrunner {__version__}"
    for command in ("start", "check", "run"):
        result = app.cli(command, "--help")
        assert result.returncode == 0 and "usage: procrunner" in result.stdout
    assert app.cli().returncode == 2


def test_run_a_procfile_entry_with_a_bad_port_in_env_is_one_line_as_check(app: App) -> None:
    """Issue 16, bug 2: `run` read the base port itself, and PORT=abc ended in a traceback."""
    app.procfile("web: echo web on $PORT\n")
    app.write(".env", "PORT=abc\n")
    line = one_error_line(app, "run", "web")
    assert line == one_error_line(app, "check")
    assert "PORT must be a whole number" in line and "abc" not in line


def test_run_a_procfile_entry_takes_the_base_port_from_the_settings_file(app: App) -> None:
    app.procfile("web: echo web on $PORT\nworker: echo worker on $PORT\n")
    app.write("procrunner.yml", "port: 7000\n")
    result = app.cli("run", "worker")
    assert (result.returncode, result.stdout) == (0, "worker on 7100\n"), result.stderr


@pytest.mark.parametrize("command", ["check", "config"])
def test_check_and_config_piped_into_a_reader_that_left_end_quietly(
    app: App, command: str
) -> None:
    """`procrunner check | head -1` ended in a BrokenPipeError traceback. Here the reader has
    left before procrunner writes at all."""
    app.procfile("web: sleep 1\nworker: sleep 1\n")
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        result = subprocess.run(
            [*PROCRUNNER, command], cwd=app.root, env=app.env, stdout=write_end,
            stderr=subprocess.PIPE, text=True, timeout=30,
        )
    finally:
        os.close(write_end)
    assert (result.returncode, result.stderr) == (0, "")
