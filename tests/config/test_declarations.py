"""Each setting and per-type key is declared once, on its field: walking the fields finds
every one, and the flags, variables, procrunner.yml keys, `procrunner config` and the README
all follow from the declaration with no other edit."""

from __future__ import annotations

import dataclasses
import signal
from pathlib import Path
from typing import Any

import pytest

from procrunner.cli import build_parser
from procrunner.config.declare import BUILT_KEY, SETTINGS_KEY, TYPE_KEY, Setting
from procrunner.config.load import BUILDERS, Loaded, load
from procrunner.config.model import (
    BUILT_FIELDS,
    SETTINGS,
    TYPE_KEYS,
    declared_fields,
    reference_table,
)
from procrunner.config.report import config_lines
from procrunner.config.restart_rules import Policy
from procrunner.config.settings import (
    Dependencies,
    Health,
    Readiness,
    StartSettings,
    TypeSettings,
)

# fields that are the program's own, not a user's setting
INTERNAL = {"app.types", "run.start_seconds", "run.memory_interval", "run.watch_debounce"}
PLAIN = [s for s in SETTINGS if s.field not in BUILT_FIELDS]


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "Procfile").write_text("web: sleep 1\nworker: sleep 1\n")
    return tmp_path


def test_every_field_is_a_declared_setting_a_built_one_or_internal() -> None:
    paths = {path for path, _ in declared_fields(StartSettings)}
    declared = {s.field for s in SETTINGS}
    assert paths == declared | BUILT_FIELDS | INTERNAL
    assert set(BUILDERS) == BUILT_FIELDS, "a built field needs its builder, and only those"


def test_a_field_declares_its_setting_once() -> None:
    names = [s.name for s in SETTINGS]
    assert len(names) == len(set(names))
    flags = [name for s in SETTINGS for flag in s.flags for name in flag.names]
    assert len(flags) == len(set(flags))
    for _, item in declared_fields(StartSettings):
        plain = not item.metadata.get(BUILT_KEY)
        assert not plain or len(item.metadata.get(SETTINGS_KEY, ())) <= 1, item.name


def _sample(setting: Setting, root: Path) -> tuple[str, object]:
    """A value other than the default, as text, and what the field must then hold."""
    if setting.choices:
        chosen = next(c for c in reversed(setting.choices) if c != setting.default)
        return chosen, chosen
    path = root / "given"
    samples: dict[str, tuple[str, object]] = {
        "bool": ("false" if setting.default else "true", not setting.default),
        "auto-bool": ("true", True),
        "duration": ("7s", 7.0),
        "port": ("6000", 6000),
        "path": (str(path), path),
        "paths": (str(path), (path,)),
        "spec": ("all=2", "all=2"),
    }
    return samples[setting.kind]


def _field(settings: StartSettings, path: str) -> Any:
    value: Any = settings
    for part in path.split("."):
        value = getattr(value, part)
    return value


def _loaded(root: Path, args: list[str], env: dict[str, str]) -> Loaded:
    return load(build_parser().parse_args(["config", "-d", str(root), *args]), env)


@pytest.mark.parametrize("setting", PLAIN, ids=lambda s: s.name)
def test_a_declared_setting_reaches_its_field_from_every_source(
    root: Path, setting: Setting
) -> None:
    """The generic loader fills a plain declared field: no per-setting wiring exists."""
    text, expected = _sample(setting, root)
    if setting.name == "root":  # the settings files are read in the root: give it as -d
        text, expected = str(root), root
    readable = {"procfile": "web: sleep 1\n", "env": "A=1\n"}  # files the app reads
    if setting.name in readable:
        (root / "given").write_text(readable[setting.name])
    long_flag = setting.flags[0]
    for_flag = [setting.flag, text] if long_flag.metavar else [setting.flag]
    if long_flag.negatable:
        for_flag = [f"--{'' if expected else 'no-'}{setting.flag.removeprefix('--')}"]
    if not long_flag.metavar and long_flag.const != expected:
        for_flag = []  # a switch that only turns it the other way; the file and variable do
    sources = {
        "flag": (for_flag, {}, None),
        "variable": ([], {setting.variable or "": text}, None),
        "file": ([], {}, f"{setting.name}: '{text}'\n"),
    }
    for where, (args, env, file) in sources.items():
        if (where == "flag" and not args) or (where == "variable" and not setting.variable):
            continue
        (root / "procrunner.yml").unlink(missing_ok=True)
        if file is not None:
            (root / "procrunner.yml").write_text(file)
        loaded = _loaded(root, args, env)
        assert _field(loaded.settings, setting.field) == expected, where
        assert any(line.startswith(f"{setting.name} ") for line in config_lines(loaded))
    assert f"| `{setting.name}` |" in reference_table()


TYPE_SAMPLES: dict[str, tuple[object, object]] = {
    "policy": ("always", Policy.ALWAYS),
    "signal": ("INT", signal.SIGINT),
    "duration": ("7s", 7.0),
    "words": (["*.py"], ("*.py",)),
    "ready": ("none", Readiness("none")),
    "health": ({"port": True}, Health("port")),
    "bool": (True, True),
    "dependencies": (["web"], Dependencies((("web", "ready"),))),
    "paths": (["db"], None),  # relative to the file's folder
    "command": ("redis-cli shutdown", "redis-cli shutdown"),
}


def test_every_type_key_is_a_declared_field_of_type_settings() -> None:
    keys = [item.name for item in dataclasses.fields(TypeSettings) if TYPE_KEY in item.metadata]
    assert keys == [key.name for key in TYPE_KEYS]
    assert {key.kind for key in TYPE_KEYS} <= set(TYPE_SAMPLES)


@pytest.mark.parametrize("key", TYPE_KEYS, ids=lambda k: k.name)
def test_a_type_key_reaches_its_field_and_the_config_listing(root: Path, key: Any) -> None:
    raw, expected = TYPE_SAMPLES[key.kind]
    if expected is None:
        expected = (root / "db",)
    import yaml

    (root / "procrunner.yml").write_text(yaml.safe_dump({"types": {"worker": {key.name: raw}}}))
    loaded = _loaded(root, [], {})
    assert getattr(loaded.settings.run.for_type("worker"), key.name) == expected
    assert getattr(loaded.settings.run.for_type("web"), key.name) == getattr(
        TypeSettings(), key.name)
    row = next(line for line in config_lines(loaded)
               if line.startswith(f"types.worker.{key.name} "))
    assert row.endswith("procrunner.yml:3")
    assert f"| `{key.name}` |" in reference_table()
