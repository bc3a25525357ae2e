"""Settings from every source, merged by precedence and built into the frozen
``StartSettings`` (imported by ``start``, ``check``, ``run`` and ``config`` only).

Precedence: command line > ``PROCRUNNER_<NAME>`` > ``procrunner.yml`` > ``.foreman`` >
defaults. The base port goes on down the chain: ``PORT`` from the env files or the
environment (as ``--env-precedence`` says), then 5000 (``environment.base_port``).
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import sys
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TypeVar, cast

from procrunner.config.app import App, load_app
from procrunner.config.model import BY_FLAG, SETTINGS
from procrunner.config.settings import (
    AppOptions,
    EnvPrecedence,
    OutputFormat,
    RouterOptions,
    RunOptions,
    StartSettings,
    Style,
    TimestampFormat,
)
from procrunner.config.sources import (
    FileLayer,
    Value,
    command_line_layer,
    convert,
    environment_layer,
    foreman_layer,
    settings_file_layer,
    settings_folder,
)
from procrunner.config.types import TypesResult, type_settings
from procrunner.config.values import DEFAULT, Source, blamed
from procrunner.control.socketpath import SOCKET_VARIABLE
from procrunner.errors import ProcrunnerError
from procrunner.supervise.chaos import parse_chaos
from procrunner.supervise.restart import RestartRules, parse_backoff, parse_give_up, parse_policies

T = TypeVar("T")


@dataclass(frozen=True)
class Sources:
    """Every setting's winning value (its default when no source gave one)."""

    values: Mapping[str, Value]
    file: FileLayer  # procrunner.yml: its ``types:`` are read once the Procfile is known
    folder: Path  # where procrunner.yml and .foreman were looked for
    warnings: tuple[str, ...]

    def get(self, name: str, kind: type[T]) -> T | None:
        value = self.values[name].value
        assert value is None or isinstance(value, kind), (name, value)
        return value

    def given(self, name: str) -> bool:
        return self.values[name].origin.source is not Source.DEFAULT

    def blame(self, name: str) -> contextlib.AbstractContextManager[None]:
        return blamed(self.values[name].origin, self.values[name].raw)


@dataclass(frozen=True)
class Loaded:
    """The settings sources as read, and what they make: the app and the start settings."""

    sources: Sources
    app: App
    settings: StartSettings
    types: TypesResult


def read_sources(args: argparse.Namespace, os_env: Mapping[str, str]) -> Sources:
    cli = command_line_layer(args)
    env = environment_layer(os_env)
    folder = settings_folder(cli, env)
    file = settings_file_layer(folder)
    foreman = foreman_layer(folder)
    values: dict[str, Value] = {}
    for setting in SETTINGS:
        given = (layer[setting.name] for layer in (cli, env, file.settings, foreman.settings)
                 if setting.name in layer)
        default = (convert(setting, setting.default, DEFAULT) if setting.default is not None
                   else Value(None, DEFAULT))
        values[setting.name] = next(given, default)
    return Sources(values, file, folder, (*file.warnings, *foreman.warnings))


def app_options(sources: Sources, types: tuple[str, ...] = ()) -> AppOptions:
    router_type = sources.get("router_type", str)
    router_port = sources.get("router_port", int)
    router = None
    if sources.get("router", bool) or router_type or router_port:
        router = RouterOptions(router_type or "web", router_port)
    return AppOptions(
        procfile=sources.get("procfile", Path),
        root=sources.get("root", Path),
        env_files=sources.get("env", tuple),
        formation=sources.get("formation", str),
        port=sources.get("port", int),
        env_precedence=cast(EnvPrecedence, sources.get("env_precedence", str)),
        types=types,
        router=router,
    )


def load(args: argparse.Namespace, os_env: Mapping[str, str]) -> Loaded:
    """Every source read and checked, the app loaded, the settings frozen."""
    sources = read_sources(args, os_env)
    try:
        app = load_app(app_options(sources, tuple(getattr(args, "types", ()))), os_env)
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
    settings = StartSettings(
        app=app.options,
        run=_run_options(sources, app, replace(rules, per_type=types.policies), types),
        style=_style(sources, os_env),
        scratch_root=_absolute(sources.get("scratch_root", Path)),
        keep_scratch=bool(sources.get("keep_scratch", bool)),
        audit=bool(sources.get("audit", bool)),
        audit_ignore=_ignored(sources, types),
        summary_json=_absolute(sources.get("summary_json", Path)),
        socket=_socket(sources, os_env),
        log_dir=_absolute(sources.get("log_dir", Path)),
        dashboard=bool(sources.get("dashboard", bool)),
    )
    return Loaded(sources, app, settings, types)


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


def _run_options(sources: Sources, app: App, rules: RestartRules, types: TypesResult
                 ) -> RunOptions:
    names = [kind.name for kind in app.types]
    chaos = None
    chaos_spec = sources.get("chaos", str)
    if chaos_spec is not None:
        with sources.blame("chaos"):
            chaos = parse_chaos(chaos_spec, names)
    port_ready = RunOptions.port_ready_types
    if app.options.router is not None:
        port_ready |= {app.options.router.type_name}
    return RunOptions(
        stop_timeout=sources.get("timeout", float) or 0.0,
        run_for=sources.get("run_for", float),
        restart=rules,
        chaos=chaos,
        port_ready_types=port_ready,
        types=types.settings,
        watch=bool(sources.get("watch", bool)),
    )


def _style(sources: Sources, os_env: Mapping[str, str]) -> Style:
    color = sources.get("color", bool)
    if color is None:
        color = sys.stdout.isatty() and not os_env.get("NO_COLOR")
    timestamp = sources.get("timestamp", str)
    return Style(
        timestamps=timestamp != "none",
        prefix=bool(sources.get("prefix", bool)),
        color=color,
        merge_stderr=bool(sources.get("merge_stderr", bool)),
        raw_output=bool(sources.get("raw_output", bool)),
        output=cast(OutputFormat, sources.get("output", str)),
        timestamp_format=cast(TimestampFormat, "local" if timestamp == "none" else timestamp),
    )


def _check_type_names(chosen: tuple[str, ...], names: list[str]) -> None:
    unknown = sorted(set(chosen) - set(names))
    if unknown:
        known = ", ".join(names)
        raise ProcrunnerError(f"unknown process type {unknown[0]!r}; known types: {known}", "--tty")


def _ignored(sources: Sources, types: TypesResult) -> tuple[Path, ...]:
    """``audit_ignore`` and every type's ``backing`` paths, each once."""
    given: tuple[Path, ...] = sources.get("audit_ignore", tuple) or ()
    backing = itertools.chain.from_iterable(kind.backing for kind in types.settings.values())
    return tuple(dict.fromkeys([*given, *backing]))


def _socket(sources: Sources, os_env: Mapping[str, str]) -> Path | None:
    """``--socket``, else ``PROCRUNNER_SOCKET`` (the clients' variable, which socketpath
    reads), else procrunner.yml's ``socket``."""
    value = sources.values["socket"]
    if value.origin.source < Source.ENVIRONMENT and os_env.get(SOCKET_VARIABLE):
        return None
    return _absolute(sources.get("socket", Path))


def _absolute(path: Path | None) -> Path | None:
    return path.absolute() if path is not None else None

