"""``procrunner config``: every effective setting, per-type ones included, and where each
came from. Values read from env files are never shown (they may be secrets)."""

from __future__ import annotations

import signal

from procrunner.config.load import Loaded
from procrunner.config.model import SETTINGS, TYPE_KEY_NAMES
from procrunner.config.settings import Dependencies, Health, Readiness
from procrunner.config.values import DEFAULT, Origin


def shown(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:g}s"
    if isinstance(value, tuple):
        return ",".join(shown(item) for item in value) or "-"
    if isinstance(value, Readiness):
        if value.any_listener:
            return "port: any"
        if value.kind == "log":
            return f"log: {value.pattern}"
        return f"{value.kind}: {value.target}" if value.target is not None else value.kind
    if isinstance(value, Health):
        check = value.kind if value.target is None else f"{value.kind}: {value.target}"
        return (f"{check}, every {value.every:g}s, timeout {value.timeout:g}s, failures "
                f"{value.failures}, grace {value.grace:g}s")
    if isinstance(value, Dependencies):
        return ",".join(f"{name}={condition}" for name, condition in value.items()) or "-"
    return str(value)


def config_lines(loaded: Loaded) -> list[str]:
    rows = [(s.name, *_setting(loaded, s.name)) for s in SETTINGS]
    for kind in loaded.app.types:
        rows += [(f"types.{kind.name}.{key}", *_type_key(loaded, kind.name, key))
                 for key in TYPE_KEY_NAMES]
    width = max(len(name) for name, _, _ in rows)
    value_width = min(max(len(value) for _, value, _ in rows), 40)
    read = [p.name for p in (loaded.sources.folder / "procrunner.yml",
                             loaded.sources.folder / ".foreman") if p.is_file()]
    head = [f"app root: {loaded.app.root}", f"Procfile: {loaded.app.procfile}",
            f"settings files: {', '.join(read) or 'none'}"]
    return head + [f"{name.ljust(width)}  {value.ljust(value_width)}  {where}"
                   for name, value, where in rows]


def _setting(loaded: Loaded, name: str) -> tuple[str, str]:
    value = loaded.sources.values[name]
    if name == "port" and value.value is None:
        if "PORT" in loaded.app.env:
            return "$PORT", "PORT from the env files or the environment"
        return str(loaded.app.base_port), "default"
    if name == "color" and value.value is None:
        return "auto", value.origin.describe()
    return shown(value.value), value.origin.describe()


def _type_key(loaded: Loaded, type_name: str, key: str) -> tuple[str, str]:
    run = loaded.settings.run
    origin: Origin = loaded.types.origins.get((type_name, key), DEFAULT)
    kind = run.for_type(type_name)
    value: object
    if key == "restart":
        value = run.restart.policy(type_name).value
    elif key == "stop_signal":
        value = signal.Signals(kind.stop_signal).name
    elif key == "stop_timeout":
        value = run.stop_timeout_of(type_name)
    elif key == "ready":
        value = run.readiness(type_name)
    else:
        value = getattr(kind, key)
    return shown(value), origin.describe()
