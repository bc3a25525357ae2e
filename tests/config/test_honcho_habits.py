"""Issue 18: procrunner used as honcho's and foreman's users type it. Options before the
command, ``PROCFILE`` in ``.env`` naming the Procfile, and every app command finding the
Procfile upward from the current folder, as the clients do, saying which one it used."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from harness import PROCRUNNER, App, kid

from procrunner.cli import command_word

# not `web`: a port-ready type, whose port 5000 another program may hold
ECHO = "hello: echo hello from {name}\n"


def cli(app: App, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*PROCRUNNER, *args], cwd=cwd or app.root, env=app.env,
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)


def two_procfiles(app: App) -> None:
    app.procfile(ECHO.format(name="Procfile"))
    app.procfile(ECHO.format(name="Procfile.dev"), "Procfile.dev")


def config_row(result: subprocess.CompletedProcess[str], name: str) -> tuple[str, str]:
    """A setting's (value, source) in ``procrunner config``'s output."""
    assert result.returncode == 0, result.stderr
    line = next(line for line in result.stdout.splitlines() if line.startswith(f"{name} "))
    _, value, where = line.split(maxsplit=2)
    return value, where


# --- options before the command ---------------------------------------------------------------


def test_options_before_the_command_were_unrecognized_arguments(app: App) -> None:
    """`procrunner -f Procfile.dev start` was a usage error: the main parser had no -f."""
    two_procfiles(app)
    started = cli(app, "-f", "Procfile.dev", "--no-colour", "start")
    assert started.returncode == 0, started.stderr
    assert "hello from Procfile.dev" in started.stdout
    assert "\x1b[" not in started.stdout
    app.write(".env.test", "GREETING=from the test env\n")
    ran = cli(app, "-e", ".env.test", "run", "sh", "-c", 'echo "$GREETING"')
    assert (ran.returncode, ran.stdout) == (0, "from the test env\n"), ran.stderr


def test_root_and_no_prefix_before_the_command(app: App) -> None:
    sub = app.root / "sub"
    sub.mkdir()
    (sub / "Procfile").write_text(ECHO.format(name="sub"))
    started = cli(app, "-d", "sub", "--no-prefix", "start", "--no-color")
    assert started.returncode == 0, started.stderr
    assert "hello from sub\n" in started.stdout.splitlines(keepends=True)


@pytest.mark.parametrize(("before", "after", "winner"), [
    (["-f", "Procfile.nope"], ["-f", "Procfile.dev"], "Procfile.dev"),
    (["-f", "Procfile.dev"], ["--procfile", "Procfile"], "Procfile"),
])
def test_given_on_both_sides_the_option_after_the_command_wins(
    app: App, before: list[str], after: list[str], winner: str
) -> None:
    two_procfiles(app)
    result = cli(app, *before, "check", *after)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"valid Procfile: {winner} ")


@pytest.mark.parametrize(("args", "shown"), [
    (["--colour", "config"], "true"),
    (["--no-colour", "config"], "false"),
    (["config", "--no-colour"], "false"),
    (["--colour", "config", "--no-color"], "false"),
    (["--no-colour", "config", "--colour"], "true"),
])
def test_colour_is_spelled_both_ways_on_either_side(
    app: App, args: list[str], shown: str
) -> None:
    app.procfile("web: sleep 1\n")
    assert config_row(cli(app, *args), "color") == (shown, "command line")


def test_a_client_takes_the_root_before_its_command(app: App) -> None:
    elsewhere = app.root / "elsewhere"
    elsewhere.mkdir()
    result = cli(app, "-d", str(elsewhere), "ps")
    assert result.returncode == 1
    assert result.stderr == f"procrunner: no procrunner is running for {elsewhere}\n"


def test_help_lists_the_options_before_the_command_and_start_help_once(app: App) -> None:
    main_help = cli(app, "--help").stdout
    for flag in ("--procfile", "--root", "--env", "--no-colour", "--no-prefix"):
        assert flag in main_help
    start_help = cli(app, "start", "--help").stdout
    assert len(re.findall(r"--procfile FILE\b", start_help)) == 1
    assert "--no-colour" in start_help


@pytest.mark.parametrize(("words", "command"), [
    (["start"], "start"),
    (["-f", "Procfile.dev", "start", "web"], "start"),
    (["--no-colour", "-e", ".env.test", "run", "-f", "x"], "run"),
    (["--procfile=Procfile.dev", "-dapp", "check"], "check"),
    (["--root", "start", "config"], "config"),  # a folder named start
    (["-f"], None),
])
def test_the_command_is_found_past_the_options_before_it(
    words: list[str], command: str | None
) -> None:
    """So that `-f Procfile.dev start` still builds start's parser alone (start-up time)."""
    assert command_word(words) == command


# --- PROCFILE in .env -------------------------------------------------------------------------


def test_procfile_in_the_env_file_names_the_procfile(app: App) -> None:
    two_procfiles(app)
    app.write(".env", "PROCFILE=Procfile.dev\n")
    started = cli(app, "start", "--no-color")
    assert started.returncode == 0, started.stderr
    assert "hello from Procfile.dev" in started.stdout and started.stderr == ""
    assert config_row(cli(app, "config"), "procfile") == ("Procfile.dev", "PROCFILE in .env")
    assert cli(app, "run", "hello").stdout == "hello from Procfile.dev\n"


@pytest.mark.parametrize("beats_it", [
    "command line", "PROCRUNNER_PROCFILE", "procrunner.yml", ".foreman",
])
def test_every_other_source_of_the_procfile_beats_the_env_file(app: App, beats_it: str) -> None:
    two_procfiles(app)
    app.procfile(ECHO.format(name="Procfile.other"), "Procfile.other")
    app.write(".env", "PROCFILE=Procfile.dev\n")
    args = ["config"]
    if beats_it == "command line":
        args.append("-fProcfile.other")
    elif beats_it == "PROCRUNNER_PROCFILE":
        app.env["PROCRUNNER_PROCFILE"] = "Procfile.other"
    else:
        app.write(beats_it, "procfile: Procfile.other\n")
    value, where = config_row(cli(app, *args), "procfile")
    assert value.endswith("Procfile.other") and beats_it in where


def test_procfile_in_the_env_file_of_the_root_is_relative_to_it(app: App) -> None:
    sub = app.root / "sub"
    (sub / "procs").mkdir(parents=True)
    (sub / "procs" / "Procfile.dev").write_text("hello: pwd\n")
    (sub / ".env").write_text("PROCFILE=procs/Procfile.dev\n")
    result = cli(app, "-d", "sub", "check")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("valid Procfile: sub/procs/Procfile.dev ")
    assert f"env files: {sub}/.env" in result.stdout  # the root stays the .env's folder
    started = cli(app, "-d", "sub", "start", "--no-prefix")
    assert started.returncode == 0 and f"{sub}\n" in started.stdout, started.stderr


def test_procfile_in_a_named_env_file_and_an_empty_one(app: App) -> None:
    """As honcho: the `-e` files are the ones read; an empty PROCFILE counts as unset."""
    two_procfiles(app)
    app.write(".env", "PROCFILE=Procfile.nope\n")
    app.write("dev.env", "PROCFILE=Procfile.dev\n")
    app.write("empty.env", "PROCFILE=\n")
    assert cli(app, "-e", "dev.env", "check").stdout.startswith("valid Procfile: Procfile.dev ")
    assert cli(app, "-e", "dev.env,empty.env", "check").stdout.startswith(
        "valid Procfile: Procfile.dev ")
    assert cli(app, "-e", "empty.env", "check").stdout.startswith("valid Procfile: Procfile ")


def test_a_procfile_named_by_the_env_file_that_is_missing_is_one_line(app: App) -> None:
    app.write(".env", "PROCFILE=Procfile.gone\n")
    result = cli(app, "check")
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr == "procrunner: Procfile.gone: file not found\n"


# --- the Procfile found upward ----------------------------------------------------------------


@pytest.fixture
def below(app: App) -> Path:
    """An app with its Procfile, .env and procrunner.yml at the root, and a folder deep in it."""
    app.procfile("hello: echo hello on $PORT with $GREETING in $(pwd)\nworker: sleep 1\n")
    app.write(".env", "GREETING=hello\n")
    app.write("procrunner.yml", "formation: hello=2,worker=0\n")
    folder = app.root / "src" / "deep"
    folder.mkdir(parents=True)
    return folder


def test_check_searches_upward_and_reads_the_settings_there(app: App, below: Path) -> None:
    result = cli(app, "check", cwd=below)
    assert result.returncode == 0, result.stderr
    assert result.stderr == f"procrunner: using the Procfile {app.root}/Procfile\n"
    assert "hello   x2  ports 5000-5001" in result.stdout  # procrunner.yml of the root
    assert f"env files: {app.root}/.env" in result.stdout
    assert cli(app, "check").stderr == ""  # in the Procfile's folder: nothing to say


def test_start_from_a_subfolder_says_which_procfile_in_a_system_line(
    app: App, below: Path
) -> None:
    result = cli(app, "start", "--no-color", "-m", "hello=1", cwd=below)
    assert result.returncode == 0, result.stderr
    first = result.stdout.splitlines()[0]
    assert re.fullmatch(rf"\S+ system +\| using the Procfile {app.root}/Procfile", first), first
    assert f"hello on 5000 with hello in {app.root}\n" in result.stdout  # run in the root


def test_run_and_config_from_a_subfolder(app: App, below: Path) -> None:
    ran = cli(app, "run", "hello", cwd=below)
    assert ran.stdout == f"hello on 5000 with hello in {below}\n"  # run stays here, as honcho
    assert ran.stderr == f"procrunner: using the Procfile {app.root}/Procfile\n"
    shown = cli(app, "config", cwd=below).stdout.splitlines()
    assert shown[:3] == [f"app root: {app.root}", f"Procfile: {app.root}/Procfile",
                         "settings files: procrunner.yml"]


def test_export_from_a_subfolder(app: App, below: Path) -> None:
    result = cli(app, "export", "systemd", str(app.root / "out"), cwd=below)
    assert result.returncode == 0, result.stderr
    assert f"procrunner: using the Procfile {app.root}/Procfile\n" in result.stderr
    assert any(path.name.endswith("-hello@.service") for path in (app.root / "out").iterdir())


def test_a_folder_whose_env_file_names_its_procfile_is_not_passed_over(app: App) -> None:
    """The parent's Procfile is not this app's: PROCFILE in the current .env names it."""
    app.procfile(ECHO.format(name="parent"))
    here = app.root / "service"
    here.mkdir()
    (here / "Procfile.dev").write_text(ECHO.format(name="service"))
    (here / ".env").write_text("PROCFILE=Procfile.dev\n")
    result = cli(app, "check", cwd=here)
    assert result.stdout.startswith("valid Procfile: Procfile.dev "), result.stderr
    assert result.stderr == ""


def test_a_procfile_named_on_the_command_line_elsewhere_is_not_announced(
    app: App, below: Path
) -> None:
    for args in (["-f", f"{app.root}/Procfile"], ["-d", str(app.root)]):
        result = cli(app, "check", *args, cwd=below)
        assert result.returncode == 0 and result.stderr == "", result.stderr
    app.env["PROCRUNNER_ROOT"] = str(app.root)  # a variable may be forgotten: say it
    assert "using the Procfile" in cli(app, "check", cwd=below).stderr


def test_clients_reach_an_app_whose_procfile_only_the_env_file_names(app: App) -> None:
    """They never read .env, so they do not see PROCFILE: `-d .`, as the README says."""
    app.procfile(f"worker: {kid('sleep')}\n", "Procfile.dev")
    app.write(".env", "PROCFILE=Procfile.dev\n")
    run = app.start()
    run.wait_for(r"worker\.1 +\| ready")
    assert "no Procfile here" in cli(app, "ps").stderr
    listed = cli(app, "-d", ".", "ps")
    assert listed.returncode == 0 and "worker.1" in listed.stdout, listed.stderr
    assert cli(app, "stop", "-d", ".").returncode == 0
    assert run.finish() == 0
