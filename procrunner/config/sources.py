"""The places settings come from, each read into ``Value`` records that know their origin:
the command line, ``PROCRUNNER_<NAME>`` variables, ``procrunner.yml`` and ``.foreman`` (both
in the app root), and honcho's ``PROCFILE`` in the env files. Values are checked here, as
they are read; merging them is ``load``'s job."""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from procrunner.config.declare import Setting
from procrunner.config.model import BY_NAME, SETTINGS, TYPE_KEY_NAMES
from procrunner.config.procfile import read_text
from procrunner.config.quoting import quote
from procrunner.config.values import (
    COMMAND_LINE,
    CONVERTERS,
    Convert,
    Origin,
    Source,
    blamed,
    suggestion,
)
from procrunner.errors import ProcrunnerError

SETTINGS_FILE = "procrunner.yml"
FOREMAN_FILE = ".foreman"
PROCFILE_VARIABLE = "PROCFILE"  # honcho's: names the Procfile in an env file
# foreman's option names, and what they are called here
FOREMAN_KEYS = {
    "formation": "formation",
    "concurrency": "formation",
    "port": "port",
    "timeout": "timeout",
    "env": "env",
    "procfile": "procfile",
    "root": "root",
    "color": "color",
    "timestamp": "timestamp",
}


@dataclass(frozen=True)
class Value:
    """A setting's value from one source, and where it came from."""

    value: object
    origin: Origin
    raw: object = None  # as written, for messages


Layer = dict[str, Value]


@dataclass
class FileLayer:
    """What one settings file gave: settings, per-type raw values, and warnings."""

    settings: Layer = field(default_factory=dict)
    types: dict[str, dict[str, Value]] = field(default_factory=dict)
    type_origins: dict[str, Origin] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def convert(setting: Setting, raw: object, origin: Origin, base: Path | None = None) -> Value:
    how = Convert(setting.flag, setting.choices, base)
    with blamed(origin, raw):
        return Value(CONVERTERS[setting.kind](raw, how), origin, raw)


def command_line_layer(args: argparse.Namespace) -> Layer:
    return {
        s.name: convert(s, getattr(args, s.name), COMMAND_LINE)
        for s in SETTINGS
        if getattr(args, s.name, None) is not None
    }


def environment_layer(env: Mapping[str, str]) -> Layer:
    """Only the documented ``PROCRUNNER_<NAME>`` variables; an empty one counts as unset."""
    layer: Layer = {}
    for setting in SETTINGS:
        name = setting.variable
        text = env.get(name, "") if name else ""
        if name and text.strip():
            layer[setting.name] = convert(setting, text, Origin(Source.ENVIRONMENT, name))
    return layer


def named_folder(*layers: Layer) -> Path | None:
    """The app's folder as these layers name it: the root, else the Procfile's folder."""
    for layer in layers:
        if "root" in layer:
            return _as_path(layer["root"])
    for layer in layers:
        if "procfile" in layer:
            return _as_path(layer["procfile"]).parent
    return None


def _as_path(value: Value) -> Path:
    assert isinstance(value.value, Path)
    return value.value


def shown_path(path: Path) -> str:
    """A path as messages show it: relative to the current folder when inside it."""
    absolute = path.absolute()
    try:
        return str(absolute.relative_to(Path.cwd()))
    except ValueError:
        return str(absolute)


def read_yaml(path: Path) -> tuple[object, dict[tuple[str, ...], int]]:
    """The document, and the line of each mapping key by its key path."""
    from procrunner.config import safe_yaml  # pyyaml: imported only when a settings file exists

    return safe_yaml.read_yaml(read_text(path), shown_path(path))


def _mapping(data: object, where: str, line: int | None, key: str) -> dict[object, object]:
    if data is None:
        return {}
    if not isinstance(data, dict):
        what = f"{key}: " if key else ""
        raise ProcrunnerError(f"{what}expected a mapping of keys to values", where, line)
    return data


@dataclass(frozen=True)
class _Document:
    """A settings file's top-level mapping, with the line of each key."""

    items: dict[object, object]  # the top-level mapping
    lines: dict[tuple[str, ...], int]
    where: str  # the file as messages show it


def _document(path: Path) -> _Document | None:
    if not path.is_file():
        return None
    data, lines = read_yaml(path)
    where = shown_path(path)
    return _Document(_mapping(data, where, None, ""), lines, where)


def settings_file_layer(folder: Path) -> FileLayer:
    """``procrunner.yml``: every setting by its name, and ``types: {NAME: {KEY: VALUE}}``."""
    layer = FileLayer()
    document = _document(folder / SETTINGS_FILE)
    if document is None:
        return layer
    where, lines = document.where, document.lines
    for key, raw in document.items.items():
        name = str(key)
        origin = Origin(Source.FILE, where, lines.get((name,)), name)
        if name == "types":
            _read_types(raw, origin, lines, layer)
        elif name in BY_NAME:
            layer.settings[name] = convert(BY_NAME[name], raw, origin, folder)
        else:
            known = [*BY_NAME, "types"]
            raise ProcrunnerError(f"unknown key {quote(name)}{suggestion(name, known)}", where,
                                  origin.line)
    return layer


def file_setting(folder: Path, name: str) -> Value | None:
    """One setting from ``procrunner.yml``, the file's other keys unread (a client needs
    its ``socket`` only)."""
    document = _document(folder / SETTINGS_FILE)
    if document is None or name not in document.items:
        return None
    origin = Origin(Source.FILE, document.where, document.lines.get((name,)), name)
    return convert(BY_NAME[name], document.items[name], origin, folder)


def _read_types(raw: object, origin: Origin, lines: dict[tuple[str, ...], int],
                layer: FileLayer) -> None:
    for type_key, settings in _mapping(raw, origin.where, origin.line, "types").items():
        name = str(type_key)
        type_origin = Origin(Source.FILE, origin.where, lines.get(("types", name)),
                             f"types.{name}")
        layer.type_origins[name] = type_origin
        values = layer.types.setdefault(name, {})
        for key, value in _mapping(settings, origin.where, type_origin.line,
                                   type_origin.key).items():
            path = f"types.{name}.{key}"
            line = lines.get(("types", name, str(key)))
            if key not in TYPE_KEY_NAMES:
                hint = suggestion(str(key), TYPE_KEY_NAMES)
                raise ProcrunnerError(f"unknown key {quote(path)}{hint}", origin.where, line)
            values[str(key)] = Value(value, Origin(Source.FILE, origin.where, line, path), value)


def foreman_layer(folder: Path) -> FileLayer:
    """foreman's ``.foreman`` (YAML too): the options that have a meaning here; a line of
    warning for each one that has not."""
    layer = FileLayer()
    document = _document(folder / FOREMAN_FILE)
    if document is None:
        return layer
    where = document.where
    for key, raw in document.items.items():
        line = document.lines.get((str(key),))
        name = FOREMAN_KEYS.get(str(key))
        if name is None:
            shown = where if line is None else f"{where}:{line}"
            layer.warnings.append(
                f"{shown}: ignoring {quote(str(key))}: procrunner has no such option")
            continue
        if name == "timestamp" and isinstance(raw, bool):  # foreman's is on/off
            raw = "local" if raw else "none"
        origin = Origin(Source.FOREMAN, where, line, str(key))
        layer.settings[name] = convert(BY_NAME[name], raw, origin, folder)
    return layer



def env_file_layer(files: Sequence[Path], root: Path) -> Layer:
    """honcho's ``PROCFILE`` in the env files (a later file wins), relative to the app root;
    an empty one counts as unset."""
    from procrunner.config.environment import parse_env_file  # dotenv: only when needed

    layer: Layer = {}
    for path in files:
        text = parse_env_file(path).get(PROCFILE_VARIABLE, "")
        if text.strip():
            origin = Origin(Source.ENV_FILE, shown_path(path), key=PROCFILE_VARIABLE)
            layer["procfile"] = convert(BY_NAME["procfile"], text, origin, root)
    return layer
