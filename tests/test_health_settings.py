"""The configuration of health checks, the release phase, one-shot steps, dependency
conditions and stop commands: what each key reads as, and one line for each bad value."""

from __future__ import annotations

from pathlib import Path

import pytest

from procrunner.cli import build_parser, main
from procrunner.config.load import Loaded, load
from procrunner.config.report import config_lines
from procrunner.config.settings import Dependencies, Health, Readiness

PROCFILE = "release: true\nmigrate: true\nweb: sleep 1\nredis: sleep 1\n"


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "Procfile").write_text(PROCFILE)
    return tmp_path


def loaded(root: Path, *args: str) -> Loaded:
    return load(build_parser().parse_args(["config", "-d", str(root), *args]), {})


def test_the_new_keys_read_as_their_values(root: Path) -> None:
    (root / "procrunner.yml").write_text(
        "types:\n"
        "  web:\n"
        "    ready: {http: /healthz}\n"
        "    health: {http: /live, every: 1s, failures: 2, grace: 0}\n"
        "    depends_on: {migrate: completed, redis: ready}\n"
        "  redis:\n"
        "    ready: {exec: redis-cli ping}\n"
        "    health: {exec: redis-cli ping}\n"
        "    stop_command: redis-cli shutdown\n"
        "  migrate:\n"
        "    once: true\n"
    )
    run = loaded(root).settings.run
    web, redis = run.for_type("web"), run.for_type("redis")
    assert web.ready == Readiness("http", target="/healthz")
    assert web.health == Health("http", "/live", every=1.0, failures=2, grace=0.0)
    assert web.depends_on == {"migrate": "completed", "redis": "ready"}
    assert list(web.depends_on) == ["migrate", "redis"]
    assert hash(web.depends_on) == hash(Dependencies((("redis", "ready"),
                                                       ("migrate", "completed"))))
    assert redis.ready == Readiness("exec", target="redis-cli ping")
    assert redis.health == Health("exec", "redis-cli ping", 10.0, 2.0, 3, 30.0)
    assert redis.stop_command == "redis-cli shutdown"
    assert run.for_type("migrate").once and not web.once
    assert run.release
    lines = "\n".join(config_lines(loaded(root)))
    assert "migrate=completed,redis=ready" in lines
    assert "http: /live, every 1s, timeout 2s, failures 2, grace 0s" in lines


def test_no_release_turns_the_release_phase_off(root: Path) -> None:
    assert not loaded(root, "--no-release").settings.run.release
    (root / "procrunner.yml").write_text("release: false\n")
    assert not loaded(root).settings.run.release


BAD = [
    ("types:\n  web:\n    ready: {http: ''}\n",
     "procrunner.yml:3: types.web.ready: expected a non-empty string"),
    ("types:\n  web:\n    ready: {exec: [1]}\n",
     "procrunner.yml:3: types.web.ready: expected a non-empty string, got [1]"),
    ("types:\n  web:\n    ready: {htp: /}\n",
     "procrunner.yml:3: types.web.ready: expected port, {port: any}, uptime, none"),
    ("types:\n  web:\n    health: yes please\n",
     "procrunner.yml:3: types.web.health: expected {http: PATH}, {exec: COMMAND} or "
     "{port: true}"),
    ("types:\n  web:\n    health: {http: /, exec: 'true'}\n",
     "procrunner.yml:3: types.web.health: expected {http: PATH}"),
    ("types:\n  web:\n    health: {http: /, evry: 1s}\n",
     "procrunner.yml:3: types.web.health: unknown key 'evry'; did you mean 'every'?"),
    ("types:\n  web:\n    health: {http: /, every: soon}\n",
     "procrunner.yml:3: types.web.health: invalid duration 'soon'"),
    ("types:\n  web:\n    health: {port: true, every: 0}\n",
     "procrunner.yml:3: types.web.health: every: expected a duration above 0, got 0"),
    ("types:\n  web:\n    health: {port: true, failures: 0}\n",
     "procrunner.yml:3: types.web.health: expected failures: a whole number of at least 1, "
     "got 0"),
    ("types:\n  web:\n    health: {port: yes please}\n",
     "procrunner.yml:3: types.web.health: expected port: true, got 'yes please'"),
    ("types:\n  web:\n    once: sometimes\n",
     "procrunner.yml:3: types.web.once: expected true or false, got 'sometimes'"),
    ("types:\n  web:\n    depends_on: {migrate: done}\n",
     "procrunner.yml:3: types.web.depends_on: expected ready or completed, got 'done'"),
    ("types:\n  web:\n    depends_on: {migrat: completed}\n",
     "procrunner.yml:3: types.web.depends_on: unknown process type 'migrat'; did you mean "
     "'migrate'?"),
    ("types:\n  web:\n    depends_on: {redis: completed}\n  redis:\n    depends_on: [web]\n",
     "procrunner.yml:3: types.web.depends_on: dependency cycle web -> redis -> web"),
    ("types:\n  web:\n    stop_command: ''\n",
     "procrunner.yml:3: types.web.stop_command: expected a non-empty string, got ''"),
    ("release: later\n", "procrunner.yml:1: release: expected true or false, got 'later'"),
]


@pytest.mark.parametrize(("text", "expected"), BAD)
def test_a_bad_value_is_one_line_naming_file_line_and_value(
    root: Path, capsys: pytest.CaptureFixture[str], text: str, expected: str
) -> None:
    (root / "procrunner.yml").write_text(text)
    assert main(["check", "-d", str(root)]) == 2
    out, err = capsys.readouterr()
    assert out == "" and len(err.splitlines()) == 1, err
    assert expected in err

