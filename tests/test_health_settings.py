"""The configuration of health checks, the release phase, one-shot steps, dependency
conditions and stop commands: what each key reads as, and one line for each bad value."""

from __future__ import annotations

from pathlib import Path

import pytest

from procrunner.cli import build_parser
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
