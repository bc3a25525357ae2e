"""How a setting is declared: once, on the field of the frozen settings dataclass it fills.

``setting(...)`` makes a ``dataclasses.field`` whose metadata is the ``Setting``: its
``procrunner.yml`` key (the field's name unless given), hence its ``PROCRUNNER_<NAME>``
variable, its flags, kind, default and meaning, and the commands that offer it. A field that
several settings make together (the router, the restart rules) is ``built(...)``: it
declares those settings, and the loader has one builder for it. ``type_key(...)`` declares a
key of ``types: {NAME: {...}}`` on a field of ``TypeSettings``. ``section(...)`` nests one
settings dataclass in another.

Standard library only: ``build_parser`` reads these declarations for every command.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

# raw text a converter accepts; see values.py for each one's rules
Kind = Literal[
    "text", "spec", "bool", "auto-bool", "port", "duration", "choice", "path", "paths", "types"
]
# what a per-type key accepts; see types.py for each one's rules
TypeKind = Literal[
    "policy", "signal", "duration", "words", "ready", "health", "bool", "dependencies", "paths",
    "command",
]

ENV_PREFIX = "PROCRUNNER_"
APP_COMMANDS = frozenset({"start", "check", "run", "config", "export"})
FORMATION_COMMANDS = frozenset({"start", "check", "config", "export"})
ROUTER_COMMANDS = frozenset({"start", "check", "config"})
START_COMMANDS = frozenset({"start", "config"})
EXPORTED_COMMANDS = START_COMMANDS | {"export"}  # what an export maps to its platform

SETTINGS_KEY = "procrunner.settings"  # the settings a field declares
BUILT_KEY = "procrunner.built"  # the field is made by a builder in load.py
SECTION_KEY = "procrunner.section"  # the field is a nested settings dataclass
TYPE_KEY = "procrunner.type_key"


@dataclass(frozen=True)
class Flag:
    """One command-line spelling: it takes a value (``metavar``), stores ``const``, or is
    a ``--x/--no-x`` pair (``negatable``)."""

    names: tuple[str, ...]
    metavar: str | None = None
    const: object = True
    negatable: bool = False


def takes(*names: str, metavar: str) -> Flag:
    return Flag(names, metavar)


def switch(*names: str, const: object = True) -> Flag:
    return Flag(names, const=const)


def negatable(name: str) -> Flag:
    return Flag((name,), negatable=True)


@dataclass(frozen=True)
class Setting:
    """One setting: its key, kind, meaning, flags, default and commands, and the field it
    fills (``run.stop_timeout``), set when the declarations are read."""

    kind: Kind
    meaning: str
    flags: tuple[Flag, ...]
    name: str = ""  # the procrunner.yml key; PROCRUNNER_<NAME> in the environment
    default: object = None  # as a user would write it; None: not set
    commands: frozenset[str] = START_COMMANDS  # where the flags are offered
    choices: tuple[str, ...] = ()
    has_variable: bool = True  # False where PROCRUNNER_<NAME> is reserved
    absolute: bool = False  # a path made absolute against the current folder
    field: str = ""

    @property
    def flag(self) -> str:
        """The flag that names this setting in errors: the first long one."""
        return next(n for n in self.flags[0].names if n.startswith("--"))

    @property
    def variable(self) -> str | None:
        return f"{ENV_PREFIX}{self.name.upper()}" if self.has_variable else None


def declare(kind: Kind, meaning: str, *flags: Flag, name: str = "", default: object = None,
            commands: frozenset[str] = START_COMMANDS, choices: tuple[str, ...] = (),
            has_variable: bool = True, absolute: bool = False) -> Setting:
    return Setting(kind, meaning, flags, name, default, commands, choices, has_variable, absolute)


def setting(kind: Kind, meaning: str, *flags: Flag, value: object = None, name: str = "",
            default: object = None, commands: frozenset[str] = START_COMMANDS,
            choices: tuple[str, ...] = (), has_variable: bool = True,
            absolute: bool = False) -> Any:
    """A field that one setting fills with its converted value; ``value`` is the field's
    default, ``default`` the same as a user would write it."""
    declared = declare(kind, meaning, *flags, name=name, default=default, commands=commands,
                       choices=choices, has_variable=has_variable, absolute=absolute)
    return dataclasses.field(default=value, metadata={SETTINGS_KEY: (declared,)})


def built(*declared: Setting, value: object = None,
          factory: Callable[[], object] | None = None) -> Any:
    """A field made by its builder in load.py, from the settings it declares (maybe none)."""
    metadata = {SETTINGS_KEY: declared, BUILT_KEY: True}
    if factory is not None:
        return dataclasses.field(default_factory=factory, metadata=metadata)
    return dataclasses.field(default=value, metadata=metadata)


def section(factory: Callable[[], object]) -> Any:
    return dataclasses.field(default_factory=factory, metadata={SECTION_KEY: factory})


@dataclass(frozen=True)
class TypeKey:
    """A key of ``types: {NAME: {...}}`` in procrunner.yml: the ``TypeSettings`` field."""

    kind: TypeKind
    meaning: str
    name: str = ""


def type_key(kind: TypeKind, meaning: str, value: object = None) -> Any:
    return dataclasses.field(default=value, metadata={TYPE_KEY: TypeKey(kind, meaning)})
