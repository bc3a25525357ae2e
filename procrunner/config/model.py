"""Every setting and per-type key, read from their declarations on the settings dataclasses
(``settings``), and what is made of them: the command-line flags of each command and the
README's settings reference.

Light on purpose: ``build_parser`` imports it for every command, ``procrunner ps`` too.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Iterator
from dataclasses import replace

from procrunner.config.declare import (
    BUILT_KEY,
    ENV_PREFIX,
    SECTION_KEY,
    SETTINGS_KEY,
    TYPE_KEY,
    Flag,
    Setting,
    TypeKey,
)
from procrunner.config.settings import StartSettings, TypeSettings

# Variables procrunner gives its children (or that point a client at a formation): never
# read as settings, so a procrunner started inside an instance behaves like any other.
SOCKET_VARIABLE = f"{ENV_PREFIX}SOCKET"
RESERVED_VARIABLES = frozenset(
    f"{ENV_PREFIX}{name}" for name in ("SCRATCH", "RUN", "INCARNATION", "ROUTER", "SOCKET")
)


def declared_fields(cls: type, prefix: str = "") -> Iterator[tuple[str, dataclasses.Field[object]]]:
    """Every field of ``cls`` and of the sections nested in it, by its dotted path."""
    for item in dataclasses.fields(cls):
        nested = item.metadata.get(SECTION_KEY)
        if nested is not None:
            yield from declared_fields(nested, f"{prefix}{item.name}.")
        else:
            yield f"{prefix}{item.name}", item


def _settings() -> Iterator[Setting]:
    for path, item in declared_fields(StartSettings):
        for declared in item.metadata.get(SETTINGS_KEY, ()):
            yield replace(declared, name=declared.name or item.name, field=path)


SETTINGS: tuple[Setting, ...] = tuple(_settings())
BY_NAME = {setting.name: setting for setting in SETTINGS}
BY_FLAG = {setting.flag: setting for setting in SETTINGS}
# The fields that builders in load.py make; every other declared field takes its setting's value.
BUILT_FIELDS = frozenset(
    path for path, item in declared_fields(StartSettings) if item.metadata.get(BUILT_KEY)
)

TYPE_KEYS: tuple[TypeKey, ...] = tuple(
    replace(item.metadata[TYPE_KEY], name=item.name)
    for item in dataclasses.fields(TypeSettings) if TYPE_KEY in item.metadata
)
TYPE_KEY_NAMES = tuple(key.name for key in TYPE_KEYS)


# The settings whose flags honcho's users type before the command too (`-f Procfile.dev start`).
BEFORE_COMMAND: tuple[Setting, ...] = tuple(s for s in SETTINGS if s.before_command)
# Where those are kept when given before the command: apart, for the command's own parser
# sets every one of its flags it was not given (to None) over what the main parser read.
_BEFORE = "before_command."
# The flags given before the command that take the next word as their value.
VALUE_FLAGS_BEFORE_COMMAND = frozenset(
    name for s in BEFORE_COMMAND for flag in s.flags if flag.metavar is not None
    for name in flag.names
)


def add_arguments(parser: argparse.ArgumentParser, command: str) -> None:
    """The flags of every setting offered by ``command``; unset flags stay None."""
    for setting in SETTINGS:
        if command in setting.commands:
            _add_flags(parser, setting, setting.name)


def add_before_command_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags that may also come before the command, on the main parser."""
    for setting in BEFORE_COMMAND:
        _add_flags(parser, setting, _BEFORE + setting.name)


def apply_before_command(args: argparse.Namespace) -> None:
    """Settings given before the command count where the command's own flags left them
    unset: given on both sides, the one after the command wins."""
    for setting in BEFORE_COMMAND:
        given = vars(args).pop(_BEFORE + setting.name, None)
        if given is not None and getattr(args, setting.name, None) is None:
            setattr(args, setting.name, given)


def _add_flags(parser: argparse.ArgumentParser, setting: Setting, dest: str) -> None:
    for flag in setting.flags:
        if flag.negatable:
            parser.add_argument(*flag.names, dest=dest, default=None,
                                action=argparse.BooleanOptionalAction, help=_help(setting))
        elif flag.metavar is not None:
            parser.add_argument(*flag.names, dest=dest, metavar=flag.metavar,
                                choices=setting.choices or None, help=_help(setting))
        else:
            parser.add_argument(*flag.names, dest=dest, action="store_const",
                                const=flag.const, help=_help(setting))


def _help(setting: Setting) -> str:
    text = setting.meaning.replace("`", "").replace("%", "%%")
    return text if setting.default is None else f"{text} (default {_shown(setting.default)})"


def _shown(value: object) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def _spellings(flag: Flag) -> tuple[str, ...]:
    if flag.negatable:
        return (*flag.names, *(f"--no-{n.removeprefix('--')}" for n in flag.names))
    return flag.names


def reference_table() -> str:
    """The README's settings reference, one row per setting, then the per-type keys."""
    rows = ["| `procrunner.yml` key | command line | environment | kind | default | meaning |",
            "| --- | --- | --- | --- | --- | --- |"]
    for s in SETTINGS:
        flags = ", ".join(f"`{n}`" for flag in s.flags for n in _spellings(flag))
        variable = f"`{s.variable}`" if s.variable else "(reserved)"
        kind = " \\| ".join(s.choices) if s.choices else s.kind
        default = "" if s.default is None else f"`{_shown(s.default)}`"
        rows.append(f"| `{s.name}` | {flags} | {variable} | {kind} | {default} | {s.meaning} |")
    rows += ["", "| `types.NAME.` key | meaning |", "| --- | --- |"]
    rows += [f"| `{key.name}` | {key.meaning} |" for key in TYPE_KEYS]
    return "\n".join(rows) + "\n"
