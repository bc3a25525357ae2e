"""Settings: one model for the command line, PROCRUNNER_* variables, procrunner.yml and
.foreman; precedence, bad values, the README reference, and end to end effects."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path
from types import MappingProxyType

import pytest
from harness import App

from procrunner.cli import build_parser, main
from procrunner.config.load import Loaded, load
from procrunner.config.model import RESERVED_VARIABLES, SETTINGS, TYPE_KEYS, reference_table
from procrunner.config.report import config_lines
from procrunner.config.restart_rules import Backoff, Policy, RestartRules
from procrunner.config.settings import Readiness, RunOptions, Style, TypeSettings
from procrunner.errors import ProcrunnerError

README = Path(__file__).resolve().parent.parent / "README.md"
PROCFILE = "web: sleep 1\nworker: sleep 1\n"


def loaded(root: Path, *args: str, env: dict[str, str] | None = None,
           command: str = "config") -> Loaded:
    return load(build_parser().parse_args([command, "-d", str(root), *args]), env or {})


def config(root: Path, *args: str, env: dict[str, str] | None = None) -> dict[str, tuple[str, str]]:
    """``procrunner config`` as {setting: (value, where it came from)}."""
    rows = {}
    for line in config_lines(loaded(root, *args, env=env))[3:]:
        name, value, where = line.split(maxsplit=2)
        rows[name] = (value, where.removeprefix(f"{root}/"))
    return rows


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "Procfile").write_text(PROCFILE)
    return tmp_path


# --- the model, the README and the defaults -------------------------------------------------


def test_the_readme_reference_is_the_models() -> None:
    text = README.read_text()
    start = text.index("<!-- settings reference:")
    body = text[text.index("\n", start) + 1 : text.index("<!-- end of settings reference -->")]
    assert body == reference_table(), "regenerate with settings_model.reference_table()"


def test_no_setting_reads_a_reserved_variable() -> None:
    assert not {s.variable for s in SETTINGS} & RESERVED_VARIABLES
    assert len({s.name for s in SETTINGS}) == len(SETTINGS)


def test_the_model_defaults_are_the_dataclass_defaults(root: Path) -> None:
    settings = loaded(root).settings
    assert settings.style == Style()
    assert settings.run.restart.backoff == Backoff()
    assert set(settings.run.types.values()) == {TypeSettings()}
    assert replace(settings.run, restart=RestartRules(), types=MappingProxyType({})) == RunOptions()
    assert settings.app.env_precedence == "file" and settings.app.router is None
    assert not (settings.audit or settings.keep_scratch or settings.dashboard)


def test_the_new_options_reach_the_settings(root: Path) -> None:
    settings = loaded(root, "--watch", "--output", "json", "--log-dir", "logs",
                      "--timestamp", "iso", command="start").settings
    assert settings.run.watch and settings.style.output == "json"
    assert settings.style.timestamp_format == "iso" and settings.style.timestamps
    assert settings.log_dir == Path("logs").absolute()
    no_time = loaded(root, "--no-timestamp", command="start").settings.style
    assert not no_time.timestamps


# --- precedence -----------------------------------------------------------------------------

LEVELS = [
    ((".foreman", "timeout: 1\n"), None, "1s", ".foreman:1"),
    (("procrunner.yml", "timeout: 2s\n"), None, "2s", "procrunner.yml:1"),
    (None, ("PROCRUNNER_TIMEOUT", "3s"), "3s", "environment PROCRUNNER_TIMEOUT"),
    (None, None, "4s", "command line"),
]


@pytest.mark.parametrize("top", range(len(LEVELS)))
def test_each_source_beats_the_ones_below(root: Path, top: int) -> None:
    env: dict[str, str] = {}
    for file, variable, _, _ in LEVELS[: top + 1]:
        if file is not None:
            (root / file[0]).write_text(file[1])
        if variable is not None:
            env[variable[0]] = variable[1]
    args = ["-t", "4s"] if top == 3 else []
    assert config(root, *args, env=env)["timeout"] == LEVELS[top][2:]


def test_nothing_given_is_the_default(root: Path) -> None:
    rows = config(root)
    assert rows["timeout"] == ("5s", "default")
    assert rows["color"] == ("auto", "default")
    assert rows["types.worker.restart"] == ("stop-all", "default")


PORT_CHAIN = [
    ({}, {}, [], 5000),
    ({".env": "PORT=5500\n"}, {}, [], 5500),
    ({".env": "PORT=5500\n"}, {"PORT": "5600"}, [], 5500),
    ({".env": "PORT=5500\n"}, {"PORT": "5600"}, ["--env-precedence", "os"], 5600),
    ({".env": "PORT=5500\n", ".foreman": "port: 5700\n"}, {"PORT": "5600"}, [], 5700),
    ({".foreman": "port: 5700\n", "procrunner.yml": "port: 5800\n"}, {}, [], 5800),
    ({"procrunner.yml": "port: 5800\n"}, {"PROCRUNNER_PORT": "5900"}, [], 5900),
    ({"procrunner.yml": "port: 5800\n"}, {"PROCRUNNER_PORT": "5900"}, ["-p", "6000"], 6000),
]


@pytest.mark.parametrize(("files", "env", "args", "port"), PORT_CHAIN)
def test_the_base_port_chain(
    root: Path, files: dict[str, str], env: dict[str, str], args: list[str], port: int
) -> None:
    for name, text in files.items():
        (root / name).write_text(text)
    assert loaded(root, *args, env=env).app.base_port == port


def test_per_type_restart_beats_its_file_but_not_higher_sources(root: Path) -> None:
    (root / "procrunner.yml").write_text(
        "restart: always\ntypes:\n  worker:\n    restart: never\n"
    )
    rules = loaded(root).settings.run.restart
    assert (rules.policy("web"), rules.policy("worker")) == (Policy.ALWAYS, Policy.NEVER)
    env = {"PROCRUNNER_RESTART": "on-failure"}
    rules = loaded(root, env=env).settings.run.restart
    assert {rules.policy("web"), rules.policy("worker")} == {Policy.ON_FAILURE}
    # a setting's value comes whole from one source: this one names worker only
    rules = loaded(root, "--restart", "worker=always", env=env).settings.run.restart
    assert (rules.policy("web"), rules.policy("worker")) == (Policy.STOP_ALL, Policy.ALWAYS)
    rows = config(root, "--restart", "worker=always", env=env)
    assert rows["types.worker.restart"] == ("always", "command line")
    assert rows["types.web.restart"] == ("stop-all", "default")


def test_per_type_settings_from_the_file(root: Path) -> None:
    (root / "procrunner.yml").write_text(
        "types:\n"
        "  worker:\n"
        "    stop_signal: INT\n"
        "    stop_timeout: 30s\n"
        "    ready: {log: 'worker (up|ready)'}\n"
        "    depends_on: [web]\n"
        "    watch: ['*.py']\n"
        "    backing: [db.sqlite3]\n"
        "  web:\n"
        "    ready: none\n"
    )
    settings = loaded(root, "--tty", "web").settings
    worker = settings.run.for_type("worker")
    assert worker.stop_signal == 2 and settings.run.stop_timeout_of("worker") == 30.0
    assert worker.ready == Readiness("log", "worker (up|ready)")
    assert worker.depends_on == {"web": "ready"} and worker.watch == ("*.py",)
    assert settings.audit_ignore == (root / "db.sqlite3",)
    assert settings.run.readiness("web") == Readiness("none")
    assert settings.run.for_type("web").tty and not worker.tty
    assert config(root)["types.worker.stop_signal"] == ("SIGINT", "procrunner.yml:3")


def test_foreman_options_are_imported_and_the_rest_warned_about(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (root / "extra.env").write_text("A=1\n")
    (root / ".foreman").write_text(
        "concurrency: web=2,worker=0\nport: 7000\ntimeout: 9\nenv: extra.env\napp: mine\n"
    )
    assert main(["check", "-d", str(root)]) == 0
    out, err = capsys.readouterr()
    assert "web     x2  ports 7000-7001" in out and "worker  x0" in out
    assert "extra.env" in out
    assert err == (
        f"procrunner: warning: {root}/.foreman:5: ignoring 'app': procrunner has no such option\n"
    )
    assert config(root)["timeout"] == ("9s", ".foreman:3")


def test_a_formation_mapping_and_relative_paths_in_the_file(root: Path) -> None:
    (root / "procrunner.yml").write_text(
        "formation: {web: 3, worker: 0}\nsummary_json: out/summary.json\n"
    )
    result = loaded(root)
    assert result.app.counts == {"web": 3, "worker": 0}
    assert result.settings.summary_json == root / "out/summary.json"


def test_config_never_shows_env_file_values(root: Path) -> None:
    (root / ".env").write_text("SECRET=hunter2\nPORT=5432\n")
    text = "\n".join(config_lines(loaded(root)))
    assert "hunter2" not in text and "5432" not in text
    assert "PORT from the env files" in text


# --- bad settings ---------------------------------------------------------------------------

BAD = [
    ("restrat: always\n", "procrunner.yml:1: unknown key 'restrat'; did you mean 'restart'?"),
    ("types:\n  worker:\n    restrat: never\n",
     "procrunner.yml:3: unknown key 'types.worker.restrat'; did you mean 'restart'?"),
    ("timeout: soon\n", "procrunner.yml:1: timeout: invalid duration 'soon'"),
    ("timeout: [1, 2]\n", "procrunner.yml:1: timeout: expected a duration"),
    ("audit: maybe\n", "procrunner.yml:1: audit: expected true or false, got 'maybe'"),
    ("output: jsn\n", "output: expected one of text, json, got 'jsn'; did you mean 'json'?"),
    ("port: 70000\n", "procrunner.yml:1: port: 70000 is not a port number"),
    ("formation: web=-1\n", "procrunner.yml:1: formation: count '-1'"),
    ("formation: wbe=1\n", "procrunner.yml:1: formation: unknown process type 'wbe'"),
    ("types:\n  wrker:\n    tty: true\n",
     "procrunner.yml:2: types.wrker: unknown process type 'wrker'; did you mean 'worker'?"),
    ("types:\n  worker:\n    ready: {log: '(('}\n",
     "procrunner.yml:3: types.worker.ready: invalid regular expression '(('"),
    ("types:\n  web:\n    stop_signal: SIGFOO\n",
     "procrunner.yml:3: types.web.stop_signal: expected a signal name"),
    ("types:\n  web:\n    depends_on: [wrker]\n",
     "procrunner.yml:3: types.web.depends_on: unknown process type 'wrker'; did you mean"),
    ("types:\n  web:\n    depends_on: [worker]\n  worker:\n    depends_on: web\n",
     "procrunner.yml:3: types.web.depends_on: dependency cycle web -> worker -> web"),
    ("types:\n  web:\n    depends_on: [web]\n",
     "types.web.depends_on: dependency cycle web -> web"),
    ("chaos: every=1s,types=wbe\n", "procrunner.yml:1: chaos: unknown process type 'wbe'"),
    ("tty: [nosuch]\n", "procrunner.yml:1: tty: unknown process type 'nosuch'"),
    ("router_type: api\n", "procrunner.yml:1: router_type: unknown process type 'api'"),
    ("timeout: 5s\nformation: [\n", "procrunner.yml:3: malformed YAML"),
    ("- just a list\n", "procrunner.yml: expected a mapping"),
]


@pytest.mark.parametrize(("text", "expected"), BAD)
def test_a_bad_settings_file_is_one_line_naming_file_key_and_value(
    root: Path, capsys: pytest.CaptureFixture[str], text: str, expected: str
) -> None:
    (root / "procrunner.yml").write_text(text)
    assert main(["check", "-d", str(root)]) == 2
    out, err = capsys.readouterr()
    assert out == "" and len(err.splitlines()) == 1, err
    assert expected in err


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("PROCRUNNER_TIMEOUT", "soon", "PROCRUNNER_TIMEOUT: invalid duration 'soon'"),
        ("PROCRUNNER_PORT", "0", "PROCRUNNER_PORT: '0' is not a port number"),
        ("PROCRUNNER_AUDIT", "sometimes", "PROCRUNNER_AUDIT: expected true or false"),
        ("PROCRUNNER_RESTART", "alway", "PROCRUNNER_RESTART: unknown restart policy 'alway'"),
    ],
)
def test_a_bad_variable_is_named(root: Path, variable: str, value: str, expected: str) -> None:
    with pytest.raises(ProcrunnerError) as raised:
        loaded(root, env={variable: value})
    assert expected in str(raised.value)


def test_a_bad_foreman_value_names_the_file(root: Path) -> None:
    (root / ".foreman").write_text("port: abc\n")
    with pytest.raises(ProcrunnerError) as raised:
        loaded(root)
    assert str(raised.value).startswith(f"{root}/.foreman:1: port: 'abc' is not a port")


def test_every_type_key_is_documented() -> None:
    text = README.read_text()
    assert all(f"`{key.name}`" in text for key in TYPE_KEYS)


# --- end to end -----------------------------------------------------------------------------


def test_a_bad_settings_file_from_the_real_command(app: App) -> None:
    app.procfile(PROCFILE)
    app.write("procrunner.yml", "restrat: always\n")
    result = app.cli("start")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr == (
        "procrunner: procrunner.yml:1: unknown key 'restrat'; did you mean 'restart'?\n"
    )


def test_reserved_variables_do_not_break_start(app: App) -> None:
    app.procfile(f"web: {sys.executable} -c \"print('up')\"\n")
    app.env.update({
        "PROCRUNNER_SCRATCH": "/nonexistent/scratch", "PROCRUNNER_RUN": "not-a-run",
        "PROCRUNNER_INCARNATION": "x", "PROCRUNNER_ROUTER": "nonsense",
    })
    run = app.start("--restart", "never", "--run-for", "5s")
    run.wait_for(r"web\.1 +\| up")
    assert run.finish() == 0, run.stderr


def test_a_tty_type_from_the_settings_file_gets_a_terminal(app: App) -> None:
    check = "import sys; print('stdin is a tty:', sys.stdin.isatty())"
    app.procfile(f'worker: {sys.executable} -c "{check}"\n')
    app.write("procrunner.yml", "types:\n  worker:\n    tty: true\n")
    run = app.start()
    run.wait_for("stdin is a tty: True")
    assert run.finish() == 0, run.stderr


def test_config_shows_each_source(app: App) -> None:
    app.procfile(PROCFILE)
    app.write(".foreman", "concurrency: web=2\n")
    app.write("procrunner.yml", "chaos: every=5s\ntypes:\n  worker:\n    tty: true\n")
    app.env["PROCRUNNER_GIVE_UP"] = "3/10s"
    result = app.cli("config", "--audit")
    assert result.returncode == 0, result.stderr
    lines = {line.split()[0]: line for line in result.stdout.splitlines()[3:]}
    assert lines["formation"].endswith(".foreman:1")
    assert lines["chaos"].endswith("procrunner.yml:1")
    assert lines["give_up"].endswith("environment PROCRUNNER_GIVE_UP")
    assert lines["audit"].split()[1:] == ["true", "command", "line"]
    assert lines["types.worker.tty"].endswith("procrunner.yml:4")
    assert lines["timeout"].split()[1:] == ["5s", "default"]
