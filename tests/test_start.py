"""``procrunner start`` end to end: environment, ports, formation and exit statuses."""

from __future__ import annotations

import signal

import pytest
from harness import App, kid

from procrunner.supervise.incarnation import shell_command


def test_each_instance_gets_port_ps_and_dyno_by_foreman_rules(app: App) -> None:
    app.procfile(f"web: {kid('env', 'PORT', 'PS', 'DYNO')}\nworker: {kid('env', 'PORT', 'PS')}\n")
    run = app.start("-m", "web=2,worker=1")
    run.wait_for(r"web\.1 +\| PORT='5000'")
    run.wait_for(r"web\.2 +\| PORT='5001'")
    run.wait_for(r"worker\.1 +\| PORT='5100'")
    run.wait_for(r"web\.2 +\| DYNO='web\.2'")
    run.wait_for(r"worker\.1 +\| PS='worker\.1'")
    run.signal(signal.SIGTERM)
    assert run.finish() == 143


def test_base_port_from_option_and_types_at_zero_keep_their_slot(app: App) -> None:
    app.procfile(f"clock: {kid('sleep')}\nweb: {kid('env', 'PORT')}\n")
    run = app.start("-m", "clock=0,web=1", "-p", "7000")
    run.wait_for(r"web\.1 +\| PORT='7100'")
    assert "clock.1" not in run.text()
    run.signal(signal.SIGINT)
    assert run.finish() == 130


def test_base_port_from_env_file(app: App) -> None:
    app.procfile(f"web: {kid('env', 'PORT')}\n")
    app.write(".env", "PORT=6000\n")
    run = app.start()
    run.wait_for(r"PORT='6000'")
    run.signal(signal.SIGINT)
    assert run.finish() == 130


def test_env_file_values_come_through_intact_and_win_over_os(app: App) -> None:
    app.procfile(f"web: {kid('env', 'GREETING', 'QUOTED', 'MULTI', 'FROM_OS')}\n")
    app.write(
        ".env",
        'GREETING=hello world  # a comment\nQUOTED="a # not a comment"\n'
        'MULTI="line one\nline two"\nFROM_OS=file\n',
    )
    app.env["FROM_OS"] = "os"
    run = app.start()
    run.wait_for(r"GREETING='hello world'")
    run.wait_for(r"QUOTED='a # not a comment'")
    run.wait_for(r"MULTI='line one\\nline two'")
    run.wait_for(r"FROM_OS='file'")
    run.signal(signal.SIGINT)
    run.finish()


def test_env_precedence_os_lets_the_os_environment_win(app: App) -> None:
    app.procfile(f"web: {kid('env', 'FROM_OS')}\n")
    app.write(".env", "FROM_OS=file\n")
    app.env["FROM_OS"] = "os"
    run = app.start("--env-precedence", "os")
    run.wait_for(r"FROM_OS='os'")
    run.signal(signal.SIGINT)
    run.finish()


def test_named_env_files_replace_dot_env_and_later_files_win(app: App) -> None:
    app.procfile(f"web: {kid('env', 'A', 'B', 'C')}\n")
    app.write(".env", "C=from-dot-env\n")
    app.write("one.env", "A=one\nB=one\n")
    app.write("two.env", "B=two\n")
    run = app.start("-e", "one.env,two.env")
    run.wait_for(r"A='one'")
    run.wait_for(r"B='two'")
    run.wait_for(r"C='<unset>'")
    run.signal(signal.SIGINT)
    run.finish()


def test_pythonunbuffered_is_set_unless_the_environment_sets_it(app: App) -> None:
    app.procfile(f"web: {kid('env', 'PYTHONUNBUFFERED')}\n")
    run = app.start()
    run.wait_for(r"PYTHONUNBUFFERED='1'")
    run.signal(signal.SIGINT)
    run.finish()
    app.env["PYTHONUNBUFFERED"] = "0"
    run = app.start()
    run.wait_for(r"PYTHONUNBUFFERED='0'")
    run.signal(signal.SIGINT)
    run.finish()


def test_an_unflushed_python_print_shows_while_the_child_runs(app: App) -> None:
    app.procfile(f"web: {kid('unflushed')}\n")
    run = app.start()
    run.wait_for(r"web\.1 +\| said without flush")
    assert run.proc.poll() is None
    run.signal(signal.SIGINT)
    run.finish()


def test_children_run_in_the_app_root_with_stdin_from_dev_null(app: App) -> None:
    app.procfile("web: pwd; cat; echo stdin-closed; sleep 60\n")
    (app.root / "sub").mkdir()
    run = app.start("-f", "Procfile", "-d", str(app.root))
    run.wait_for(rf"web\.1 +\| {app.root}$")
    run.wait_for(r"stdin-closed")
    run.signal(signal.SIGINT)
    run.finish()


def test_only_the_named_types_run(app: App) -> None:
    app.procfile(f"web: {kid('sleep')}\nworker: {kid('sleep')}\nclock: {kid('sleep')}\n")
    run = app.start("worker")
    run.wait_for(r"worker\.1 +\| ready")
    run.signal(signal.SIGINT)
    run.finish()
    assert "web.1" not in run.text() and "clock.1" not in run.text()


@pytest.mark.parametrize(
    ("command", "status", "said"),
    [
        ("exit 3", 3, "exited 3"),
        ("exit 0", 0, "exited 0"),
        ("kill -USR1 $$", 128 + signal.SIGUSR1, "killed by SIGUSR1"),
        ("no-such-command-xyz", 127, "exited 127 (command not found)"),
    ],
)
def test_the_first_instance_to_end_stops_the_formation_and_passes_its_status(
    app: App, command: str, status: int, said: str
) -> None:
    app.procfile(f"web: {kid('sleep')}\nshort: {command}\n")
    run = app.start()
    assert run.finish() == status
    text = run.text()
    assert f"short.1#1 {said}: stopping all processes" in text
    assert " ended (" not in text  # at the end, the summary tells what each destroyed
    assert "summary: 2 instances, " in text


def test_run_for_stops_gracefully_and_exits_zero(app: App) -> None:
    app.procfile(f"web: {kid('sleep')}\nworker: {kid('sleep')}\n")
    run = app.start("--run-for", "1s")
    assert run.finish() == 0
    assert "--run-for elapsed: stopping all processes" in run.text()


@pytest.mark.parametrize(
    ("sig", "status"),
    [(signal.SIGINT, 130), (signal.SIGTERM, 143), (signal.SIGHUP, 129)],
)
def test_stopped_by_a_signal_exits_128_plus_n(app: App, sig: int, status: int) -> None:
    app.procfile(f"web: {kid('sleep')}\n")
    run = app.start()
    run.wait_for(r"web\.1 +\| ready")
    run.signal(sig)
    assert run.finish() == status
    assert f"{signal.Signals(sig).name} received: stopping all processes" in run.text()


def test_no_env_file_value_appears_in_procrunners_own_output(app: App) -> None:
    app.procfile("web: exit 4\n")
    app.write(".env", "API_TOKEN=s3cr3t-value-123\n")
    run = app.start()
    assert run.finish() == 4
    assert "s3cr3t" not in run.text() and "s3cr3t" not in run.stderr


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ("python app.py --port $PORT", "exec python app.py --port $PORT"),
        ("gunicorn 'app:create()'", "gunicorn 'app:create()'"),
        ("a && b", "a && b"),
        ("a | b", "a | b"),
        ("FOO=1 python app.py", "FOO=1 python app.py"),
        ("if true; then x; fi", "if true; then x; fi"),
        ("echo hi > log", "echo hi > log"),
        ("exec python app.py", "exec python app.py"),
        ("exit 3", "exit 3"),
        ("cd sub", "cd sub"),
    ],
)
def test_simple_commands_are_execed_so_no_shell_sits_between(command: str, expected: str) -> None:
    assert shell_command(command) == expected
