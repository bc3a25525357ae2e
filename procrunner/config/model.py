"""Every setting of ``start``, declared once: its command-line flags, its
``PROCRUNNER_<NAME>`` environment variable, its ``procrunner.yml`` key, its kind, its default
and its meaning. The argument parser, the loader, ``procrunner config`` and the README's
settings reference all come from this table.

Standard library only: ``build_parser`` imports it for every command, ``procrunner ps`` too.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Literal

# raw text a converter accepts; see settings_values.py for each one's rules
Kind = Literal[
    "text", "spec", "bool", "auto-bool", "port", "duration", "choice", "path", "paths", "types"
]

ENV_PREFIX = "PROCRUNNER_"
# Variables procrunner gives its children (or that point a client at a formation): never
# read as settings, so a procrunner started inside an instance behaves like any other.
RESERVED_VARIABLES = frozenset(
    f"{ENV_PREFIX}{name}" for name in ("SCRATCH", "RUN", "INCARNATION", "ROUTER", "SOCKET")
)

APP_COMMANDS = frozenset({"start", "check", "run", "config", "export"})
FORMATION_COMMANDS = frozenset({"start", "check", "config", "export"})
ROUTER_COMMANDS = frozenset({"start", "check", "config"})
START_COMMANDS = frozenset({"start", "config"})


@dataclass(frozen=True)
class Flag:
    """One command-line spelling: it takes a value (``metavar``), stores ``const``, or is
    a ``--x/--no-x`` pair (``negatable``)."""

    names: tuple[str, ...]
    metavar: str | None = None
    const: object = True
    negatable: bool = False


@dataclass(frozen=True)
class Setting:
    """One setting, declared once: its key, kind, meaning, flags, default and commands."""

    name: str  # the procrunner.yml key; PROCRUNNER_<NAME> in the environment
    kind: Kind
    meaning: str
    flags: tuple[Flag, ...]
    default: object = None  # as a user would write it; None: not set
    commands: frozenset[str] = START_COMMANDS  # where the flags are offered
    choices: tuple[str, ...] = ()
    has_variable: bool = True  # False where PROCRUNNER_<NAME> is reserved

    @property
    def flag(self) -> str:
        """The flag that names this setting in errors: the first long one."""
        return next(n for n in self.flags[0].names if n.startswith("--"))

    @property
    def variable(self) -> str | None:
        return f"{ENV_PREFIX}{self.name.upper()}" if self.has_variable else None


def _value(*names: str, metavar: str) -> tuple[Flag, ...]:
    return (Flag(names, metavar),)


def _switch(*names: str, const: object = True) -> tuple[Flag, ...]:
    return (Flag(names, const=const),)


SETTINGS: tuple[Setting, ...] = (
    Setting("procfile", "path", "the Procfile (default `ROOT/Procfile`, else `./Procfile`)",
            _value("-f", "--procfile", metavar="FILE"), commands=APP_COMMANDS),
    Setting("root", "path", "the app root: children run there; `.env`, `procrunner.yml` and "
            "`.foreman` are read there (default: the Procfile's folder)",
            _value("-d", "--root", metavar="DIR"), commands=APP_COMMANDS),
    Setting("env", "paths", "env files, instead of `ROOT/.env`; later files win",
            _value("-e", "--env", metavar="FILES"), commands=APP_COMMANDS),
    Setting("env_precedence", "choice", "which wins when a variable is both in an env file "
            "and in procrunner's environment", _value("--env-precedence", metavar="WHICH"),
            default="file", commands=APP_COMMANDS, choices=("file", "os")),
    Setting("port", "port", "the base port (default: `PORT` from the env files or the "
            "environment, else 5000)", _value("-p", "--port", metavar="N"),
            commands=APP_COMMANDS),
    Setting("formation", "spec", "instances per type: `web=2,worker=1`, `all=2`; types not "
            "named get 0", _value("-m", "-c", "--formation", "--concurrency", metavar="SPEC"),
            default="all=1", commands=FORMATION_COMMANDS),
    Setting("router", "bool", "one port in front of the web instances; each connection goes "
            "to a random ready one", _switch("--router"), default=False,
            commands=ROUTER_COMMANDS, has_variable=False),
    Setting("router_type", "text", "the process type behind the router (default `web`; "
            "implies router)", _value("--router-type", metavar="TYPE"),
            commands=ROUTER_COMMANDS),
    Setting("router_port", "port", "the router's port (default: the type's first port, its "
            "instances move up by one; implies router)", _value("--router-port", metavar="N"),
            commands=ROUTER_COMMANDS),
    Setting("timeout", "duration", "how long to wait after SIGTERM before SIGKILL",
            _value("-t", "--timeout", metavar="DURATION"), default="5s"),
    Setting("run_for", "duration", "stop the formation gracefully after this long",
            _value("--run-for", metavar="DURATION")),
    Setting("color", "auto-bool", "colour the prefixes (`auto`: when stdout is a terminal "
            "and `NO_COLOR` is unset)", (Flag(("--color",), negatable=True),), default="auto"),
    Setting("timestamp", "choice", "the time in prefixes: local `HH:MM:SS`, ISO 8601, "
            "seconds since the start, or none (`--no-timestamp`)",
            (Flag(("--timestamp",), "FORMAT"), Flag(("--no-timestamp",), const="none")),
            default="local", choices=("local", "iso", "relative", "none")),
    Setting("prefix", "bool", "prefix each output line with time and instance name "
            "(`--no-prefix`: bare lines)", _switch("--no-prefix", const=False), default=True),
    Setting("merge_stderr", "bool", "show stderr lines like stdout lines",
            _switch("--merge-stderr"), default=False),
    Setting("raw_output", "bool", "on a terminal, pass the children's control sequences as they "
            "are (by default all but colours are shown escaped)", _switch("--raw-output"),
            default=False),
    Setting("output", "choice", "`text` lines, or one JSON object per line",
            _value("--output", metavar="FORMAT"), default="text", choices=("text", "json")),
    Setting("log_dir", "path", "also write each instance's output to `DIR/web.1.log`",
            _value("--log-dir", metavar="DIR")),
    Setting("restart", "spec", "when an instance exits on its own: `stop-all`, `never`, "
            "`on-failure` or `always`; per type: `web=always,worker=on-failure`",
            _value("--restart", metavar="POLICY"), default="stop-all"),
    Setting("backoff", "spec", "restart backoff (any subset)",
            _value("--backoff", metavar="SPEC"), default="first=0.5s,max=30s,reset=10s"),
    Setting("give_up", "spec", "mark an instance fatal after N crashes within DURATION, "
            "e.g. `5/60s` (default: never give up)", _value("--give-up", metavar="N/DURATION")),
    Setting("chaos", "spec", "kill running instances on a schedule: `every=10s` or "
            "`rate=6/min`, `types=`, `signal=`, `seed=`, `after=`, `max=`",
            _value("--chaos", metavar="SPEC")),
    Setting("watch", "bool", "restart the types whose files change (per-type globs: "
            "`types.NAME.watch`)", _switch("--watch"), default=False),
    Setting("audit", "bool", "report files written into the app root during the run",
            _switch("--audit"), default=False),
    Setting("audit_ignore", "paths", "paths the audit and the watcher ignore (backing-service "
            "data)", _value("--audit-ignore", metavar="PATHS")),
    Setting("scratch_root", "path", "where run scratch dirs go (default: "
            "`<temp dir>/procrunner-<uid>/<app hash>`)", _value("--scratch-root", metavar="DIR")),
    Setting("keep_scratch", "bool", "keep ended incarnations' scratch dirs instead of wiping "
            "them", _switch("--keep-scratch"), default=False),
    Setting("summary_json", "path", "also write the exit summary as JSON to this file",
            _value("--summary-json", metavar="FILE")),
    Setting("tty", "types", "types whose instances get a terminal (`procrunner connect`)",
            _value("--tty", metavar="TYPES")),
    Setting("dashboard", "bool", "also serve the live dashboard on 127.0.0.1 (prints its URL)",
            _switch("--dashboard"), default=False),
    Setting("socket", "path", "the control socket (default: one per app root, in a private "
            "per-user folder); `PROCRUNNER_SOCKET`, the clients' variable, beats procrunner.yml",
            _value("--socket", metavar="PATH"), has_variable=False),
)

BY_NAME = {setting.name: setting for setting in SETTINGS}
BY_FLAG = {setting.flag: setting for setting in SETTINGS}


@dataclass(frozen=True)
class TypeKey:
    """A key of ``types: {NAME: {...}}`` in procrunner.yml."""

    name: str
    meaning: str


TYPE_KEYS: tuple[TypeKey, ...] = (
    TypeKey("restart", "this type's restart policy (beats `restart` from the same source)"),
    TypeKey("stop_signal", "the signal that asks it to stop: a name (`INT`, `SIGQUIT`) or "
            "number (default `TERM`)"),
    TypeKey("stop_timeout", "its wait between the stop signal and SIGKILL (default `timeout`)"),
    TypeKey("watch", "globs, relative to the app root, whose changes restart it (default: "
            "every file)"),
    TypeKey("ready", "when it counts as running: `port`, `uptime`, `none` or `{log: REGEX}` "
            "(default: `port` for web and the router's type, else `uptime`)"),
    TypeKey("tty", "`true`: its instances get a terminal (as `--tty`)"),
    TypeKey("depends_on", "types whose instances must all be running before it starts"),
    TypeKey("backing", "backing-service data paths, ignored by the audit and the watcher"),
)
TYPE_KEY_NAMES = tuple(key.name for key in TYPE_KEYS)


def add_arguments(parser: argparse.ArgumentParser, command: str) -> None:
    """The flags of every setting offered by ``command``; unset flags stay None."""
    for setting in SETTINGS:
        if command not in setting.commands:
            continue
        for flag in setting.flags:
            if flag.negatable:
                parser.add_argument(*flag.names, dest=setting.name, default=None,
                                    action=argparse.BooleanOptionalAction, help=_help(setting))
            elif flag.metavar is not None:
                parser.add_argument(*flag.names, dest=setting.name, metavar=flag.metavar,
                                    choices=setting.choices or None, help=_help(setting))
            else:
                parser.add_argument(*flag.names, dest=setting.name, action="store_const",
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
