"""Settings from every source, merged by precedence and built into the frozen
``StartSettings``: the one loader of ``start``, ``check``, ``run``, ``config`` and ``export``.

A declared field takes its setting's value (``declare.setting``); a built field
(``declare.built``) is made by its builder in ``BUILDERS``, from its settings and the app.

Precedence: command line > ``PROCRUNNER_<NAME>`` > ``procrunner.yml`` > ``.foreman`` >
defaults; the Procfile also comes from honcho's ``PROCFILE`` in the env files, below
``.foreman``. Unless the first two name the app's folder (``-d``, ``-f``), it is the current
one, or, when that neither holds a Procfile nor names one, the nearest folder upward that
holds a Procfile (as the clients find it); its settings files are the ones read. The base
port goes on down the chain: ``PORT`` from the env files or the environment (as
``--env-precedence`` says), then 5000 (``environment.base_port``).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import itertools
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

from procrunner.config.app import App, load_app
from procrunner.config.chaos_spec import parse_chaos
from procrunner.config.declare import BUILT_KEY, SECTION_KEY, Setting
from procrunner.config.discovery import find_root
from procrunner.config.model import BY_FLAG, SETTINGS, SOCKET_VARIABLE
from procrunner.config.quoting import quote
from procrunner.config.restart_rules import (
    RestartRules,
    parse_backoff,
    parse_give_up,
    parse_policies,
)
from procrunner.config.settings import AppOptions, RouterOptions, RunOptions, StartSettings
from procrunner.config.sources import (
    FileLayer,
    Layer,
    Value,
    command_line_layer,
    convert,
    env_file_layer,
    environment_layer,
    foreman_layer,
    named_folder,
    settings_file_layer,
)
from procrunner.config.types import TypesResult, type_settings
from procrunner.config.values import DEFAULT, Source, blamed
from procrunner.errors import ProcrunnerError

T = TypeVar("T")


@dataclass(frozen=True)
class Sources:
    """Every setting's winning value (its default when no source gave one)."""

    values: Mapping[str, Value]
    file: FileLayer  # procrunner.yml: its ``types:`` are read once the Procfile is known
    folder: Path  # the app's folder: where procrunner.yml and .foreman were looked for
    warnings: tuple[str, ...]

    def get(self, name: str, kind: type[T]) -> T | None:
        value = self.values[name].value
        assert value is None or isinstance(value, kind), (name, value)
        return value

    def blame(self, name: str) -> contextlib.AbstractContextManager[None]:
        return blamed(self.values[name].origin, self.values[name].raw)


@dataclass(frozen=True)
class Loaded:
    """The settings sources as read, and what they make: the app and the start settings."""

    sources: Sources
    app: App
    settings: StartSettings
    types: TypesResult

    @property
    def notice(self) -> str | None:
        return procfile_notice(self.sources, self.app.procfile)


@dataclass(frozen=True)
class _Folder:
    """One candidate app folder and the settings read there."""

    path: Path
    layers: tuple[Layer, ...]  # by precedence: command line ... PROCFILE in the env files
    file: FileLayer
    foreman: FileLayer

    @property
    def holds_app(self) -> bool:
        """A Procfile is named, or is there."""
        return any("procfile" in layer for layer in self.layers) or (
            self.path / "Procfile").is_file()


def _read_folder(path: Path, cli: Layer, env: Layer) -> _Folder:
    file = settings_file_layer(path)
    foreman = foreman_layer(path)
    layers: tuple[Layer, ...] = (cli, env, file.settings, foreman.settings)
    if not any("procfile" in layer for layer in layers):
        layers += (env_file_layer(_env_files(layers, path), path),)
    return _Folder(path, layers, file, foreman)


def _env_files(layers: tuple[Layer, ...], root: Path) -> tuple[Path, ...]:
    """The env files the app will read: ``env`` from its first source, else ROOT/.env."""
    named = next((layer["env"].value for layer in layers if "env" in layer), None)
    if named is not None:
        assert isinstance(named, tuple)
        return named
    default = root / ".env"
    return (default,) if default.is_file() else ()


def read_sources(args: argparse.Namespace, os_env: Mapping[str, str]) -> Sources:
    cli = command_line_layer(args)
    env = environment_layer(os_env)
    named = named_folder(cli, env)
    folder = _read_folder(named or Path(), cli, env)
    if named is None and not folder.holds_app:
        found = find_root(Path.cwd())
        if found is not None:
            folder = _read_folder(found, cli, env)
    values: dict[str, Value] = {}
    for setting in SETTINGS:
        given = (layer[setting.name] for layer in folder.layers if setting.name in layer)
        default = (convert(setting, setting.default, DEFAULT) if setting.default is not None
                   else Value(None, DEFAULT))
        values[setting.name] = next(given, default)
    return Sources(values, folder.file, folder.path,
                   (*folder.file.warnings, *folder.foreman.warnings))


def procfile_notice(sources: Sources, procfile: Path) -> str | None:
    """Which Procfile is used, when it is not in the current folder and the command line
    did not name it (found upward, or named by a variable or a settings file)."""
    typed = any(sources.values[name].origin.source is Source.COMMAND_LINE
                for name in ("procfile", "root"))
    used = procfile.absolute()
    if typed or used.parent.resolve() == Path.cwd().resolve():
        return None
    return f"using the Procfile {used}"


def app_options(sources: Sources, types: tuple[str, ...] = ()) -> AppOptions:
    """Where the app is and how to read it, from every source."""
    return _fill(AppOptions, "app.", _Context(sources, {}), types=types, **_found_root(sources))


def _found_root(sources: Sources) -> dict[str, Path]:
    """The root, when no source names it and the Procfile is not named either, or is named
    by an env file (as honcho, relative to the root): the app's folder. Else, as ever, the
    Procfile's folder."""
    values = sources.values
    named_by = values["procfile"].origin.source
    if values["root"].value is None and named_by in (Source.DEFAULT, Source.ENV_FILE):
        return {"root": sources.folder}
    return {}


def load(args: argparse.Namespace, os_env: Mapping[str, str]) -> Loaded:
    """Every source read and checked, the app loaded, the settings frozen."""
    return load_from(read_sources(args, os_env), os_env, tuple(getattr(args, "types", ())))


def load_from(sources: Sources, os_env: Mapping[str, str], only: tuple[str, ...] = ()
              ) -> Loaded:
    """The app loaded and the settings frozen, from sources already read; ``only``: the
    process types named on start's command line."""
    try:
        app = load_app(app_options(sources, only), os_env)
    except ProcrunnerError as error:  # a formation or router value: blame its real source
        setting = BY_FLAG.get(error.source or "")
        if setting is None:
            raise
        value = sources.values[setting.name]
        raise value.origin.blame(error, value.raw) from None
    names = [kind.name for kind in app.types]
    rules = _restart_rules(sources, names)
    with sources.blame("tty"):
        _check_type_names(sources.get("tty", tuple) or (), names)
    types = type_settings(sources.file, names, sources.values["tty"],
                          sources.values["restart"], rules, sources.folder)
    context = _Context(sources, os_env, app, rules, types)
    return Loaded(sources, app, _fill(StartSettings, "", context, app=app.options), types)


@dataclass(frozen=True)
class _Context:
    """What builders build from: the sources, and once it is loaded, the app."""

    sources: Sources
    os_env: Mapping[str, str]
    loaded_app: App | None = None
    rules: RestartRules = dataclasses.field(default_factory=RestartRules)
    types: TypesResult | None = None

    @property
    def app(self) -> App:
        assert self.loaded_app is not None, "built before the app was loaded"
        return self.loaded_app

    @property
    def type_names(self) -> list[str]:
        return [kind.name for kind in self.app.types]

    @property
    def per_type(self) -> TypesResult:
        assert self.types is not None, "built before the types were read"
        return self.types


_BY_FIELD = {setting.field: setting for setting in SETTINGS}


def _fill(cls: type[T], prefix: str, context: _Context, **given: object) -> T:
    """``cls`` made from its declared fields; ``given`` fields are already made."""
    values: dict[str, Any] = dict(given)
    for item in dataclasses.fields(cls):  # type: ignore[arg-type]  # cls is a dataclass
        path = prefix + item.name
        section = item.metadata.get(SECTION_KEY)
        if item.name in given:
            continue
        if section is not None:
            values[item.name] = _fill(section, f"{path}.", context)
        elif item.metadata.get(BUILT_KEY):
            values[item.name] = BUILDERS[path](context)
        elif path in _BY_FIELD:
            values[item.name] = _value(_BY_FIELD[path], context)
    return cls(**values)


def _value(setting: Setting, context: _Context) -> object:
    value = context.sources.values[setting.name].value
    if setting.kind == "auto-bool" and value is None:
        return sys.stdout.isatty() and not context.os_env.get("NO_COLOR")
    if setting.absolute and isinstance(value, Path):
        return value.absolute()
    return value


def _router(context: _Context) -> RouterOptions | None:
    sources = context.sources
    router_type = sources.get("router_type", str)
    router_port = sources.get("router_port", int)
    if sources.get("router", bool) or router_type or router_port:
        return RouterOptions(router_type or "web", router_port)
    return None


def _restart_rules(sources: Sources, names: list[str]) -> RestartRules:
    with sources.blame("restart"):
        rules = parse_policies(sources.get("restart", str) or "stop-all", names)
    with sources.blame("backoff"):
        rules = replace(rules, backoff=parse_backoff(sources.get("backoff", str) or ""))
    give_up = sources.get("give_up", str)
    if give_up is not None:
        with sources.blame("give_up"):
            rules = replace(rules, give_up=parse_give_up(give_up))
    return rules


def _chaos(context: _Context) -> object:
    spec = context.sources.get("chaos", str)
    if spec is None:
        return None
    with context.sources.blame("chaos"):
        return parse_chaos(spec, context.type_names)


def _port_ready_types(context: _Context) -> frozenset[str]:
    router = context.app.options.router
    return RunOptions.port_ready_types | ({router.type_name} if router is not None else set())


def _timestamp(context: _Context) -> str:
    """``none`` is no time stamps, in the local format should they be turned back on."""
    chosen = context.sources.get("timestamp", str)
    return "local" if chosen in (None, "none") else chosen


def _check_type_names(chosen: tuple[str, ...], names: list[str]) -> None:
    unknown = sorted(set(chosen) - set(names))
    if unknown:
        known = ", ".join(names)
        raise ProcrunnerError(
            f"unknown process type {quote(unknown[0])}; known types: {known}", "--tty")


def _ignored(context: _Context) -> tuple[Path, ...]:
    """``audit_ignore`` and every type's ``backing`` paths, each once."""
    given: tuple[Path, ...] = context.sources.get("audit_ignore", tuple) or ()
    settings = context.per_type.settings.values()
    backing = itertools.chain.from_iterable(kind.backing for kind in settings)
    return tuple(dict.fromkeys([*given, *backing]))


def _socket(context: _Context) -> Path | None:
    """``--socket``, else ``PROCRUNNER_SOCKET`` (the clients' variable, which socketpath
    reads), else procrunner.yml's ``socket``."""
    value = context.sources.values["socket"]
    if value.origin.source < Source.ENVIRONMENT and context.os_env.get(SOCKET_VARIABLE):
        return None
    path = context.sources.get("socket", Path)
    return path.absolute() if path is not None else None


# The builder of each built field, by its path in StartSettings.
BUILDERS: dict[str, Callable[[_Context], object]] = {
    "app.router": _router,
    "run.restart": lambda context: replace(context.rules, per_type=context.per_type.policies),
    "run.chaos": _chaos,
    "run.port_ready_types": _port_ready_types,
    "run.types": lambda context: context.per_type.settings,
    "style.timestamps": lambda context: context.sources.get("timestamp", str) != "none",
    "style.timestamp_format": _timestamp,
    "audit_ignore": _ignored,
    "socket": _socket,
}
