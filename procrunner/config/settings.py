"""The validated, frozen settings of one command, built once at load time; the rest of the
program reads only these.

Each setting is declared here, once, on the field it fills (see ``declare``): its flags,
``PROCRUNNER_<NAME>`` variable, ``procrunner.yml`` key, kind, default and meaning. The
argument parser, the loader, ``procrunner config`` and the README's settings reference all
read these declarations (``model``).
"""

from __future__ import annotations

import signal
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Literal

from procrunner.config.chaos_spec import ChaosSpec
from procrunner.config.declare import (
    APP_COMMANDS,
    EXPORTED_COMMANDS,
    FORMATION_COMMANDS,
    ROUTER_COMMANDS,
    built,
    declare,
    negatable,
    section,
    setting,
    switch,
    takes,
    type_key,
)
from procrunner.config.restart_rules import Policy, RestartRules

EnvPrecedence = Literal["file", "os"]
OutputFormat = Literal["text", "json"]
TimestampFormat = Literal["local", "iso", "relative"]
ReadyKind = Literal["port", "log", "uptime", "none", "http", "exec"]
HealthKind = Literal["http", "exec", "port"]
Condition = Literal["ready", "completed"]
RELEASE_TYPE = "release"  # the Procfile type run once before the formation (Heroku's)


@dataclass(frozen=True)
class Readiness:
    """When an incarnation counts as RUNNING: its PORT accepts connections (``port``), an
    output line matches ``pattern`` (``log``), a GET of ``target`` on its PORT answers 2xx or
    3xx (``http``), the command ``target`` exits 0 (``exec``), it has stayed up
    ``start_seconds`` (``uptime``), or at once (``none``)."""

    kind: ReadyKind = "uptime"
    pattern: str | None = None  # a regular expression, searched in each output line
    any_listener: bool = False  # port: a listener outside its tree will do (docker's proxy)
    target: str | None = None  # http: the path; exec: the command


@dataclass(frozen=True)
class Health:
    """A liveness check (``health:``): once RUNNING and ``grace`` seconds on, every ``every``
    seconds a check bounded by ``timeout``; ``failures`` in a row restart the instance."""

    kind: HealthKind
    target: str | None = None  # http: the path; exec: the command; port: none
    every: float = 10.0
    timeout: float = 2.0
    failures: int = 3
    grace: float = 30.0


@dataclass(frozen=True, eq=False)
class Dependencies(Mapping[str, Condition]):
    """``depends_on``: the types a type waits for, each with its condition: ``ready`` (every
    instance RUNNING) or ``completed`` (every instance exited 0). Frozen and hashable."""

    pairs: tuple[tuple[str, Condition], ...] = ()

    def __getitem__(self, name: str) -> Condition:
        for needed, condition in self.pairs:
            if needed == name:
                return condition
        raise KeyError(name)

    def __iter__(self) -> Iterator[str]:
        return (needed for needed, _ in self.pairs)

    def __len__(self) -> int:
        return len(self.pairs)

    def __hash__(self) -> int:
        return hash(frozenset(self.pairs))


@dataclass(frozen=True)
class TypeSettings:
    """Settings of one process type: the keys of ``types: {NAME: {...}}`` in procrunner.yml
    (and ``--tty``, ``--restart`` for the formation-wide ones)."""

    restart: Policy | None = type_key(
        "policy", "this type's restart policy (beats `restart` from the same source)")
    stop_signal: int = type_key(
        "signal", "the signal that asks it to stop: a name (`INT`, `SIGQUIT`) or number "
        "(default `TERM`)", signal.SIGTERM)
    stop_timeout: float | None = type_key(  # None: the formation's --timeout
        "duration", "its wait between the stop signal and SIGKILL (default `timeout`)")
    watch: tuple[str, ...] = type_key(  # empty: every file
        "words", "globs, relative to the app root, whose changes restart it (default: every "
        "file)", ())
    ready: Readiness | None = type_key(  # None: port for web and the router's type, else uptime
        "ready", "when it counts as running: `port`, `{port: any}`, `uptime`, `none`, "
        "`{log: REGEX}`, `{http: PATH}` (a GET on its port answers 2xx/3xx) or "
        "`{exec: COMMAND}` (exits 0) (default: `port` for web and the router's type, else "
        "`uptime`)")
    health: Health | None = type_key(
        "health", "a liveness check, `{http: PATH}`, `{exec: COMMAND}` or `{port: true}`, "
        "with `every` (10s), `timeout` (2s), `failures` (3) and `grace` (30s): that many "
        "failures in a row restart it (cause `unhealthy`)")
    once: bool = type_key(
        "bool", "`true`: a one-shot step, run to completion and never restarted; its clean "
        "exit does not stop the formation", False)
    tty: bool = type_key("bool", "`true`: its instances get a terminal (as `--tty`)", False)
    depends_on: Dependencies = type_key(
        "dependencies", "types it waits for: a list (each must be `ready`: every instance "
        "running) or a mapping `{migrate: completed, redis: ready}` (`completed`: every "
        "instance exited 0)", Dependencies())
    stop_command: str | None = type_key(
        "command", "a command (with the instance's environment) that asks it to stop, "
        "instead of the stop signal; the signal follows if it is still there when the "
        "command has ended and half its stop timeout has passed")
    backing: tuple[Path, ...] = type_key(  # ignored by --audit and --watch
        "paths", "backing-service data paths, ignored by the audit and the watcher", ())


DEFAULT_TYPE = TypeSettings()


@dataclass(frozen=True)
class Style:
    """How output lines look."""

    timestamps: bool = built(value=True)  # false: --no-timestamp
    color: bool = setting(
        "auto-bool", "colour the prefixes (`auto`: when stdout is a terminal and `NO_COLOR` is "
        "unset)", negatable("--color", "--colour"), value=False, default="auto",
        before_command=True)
    timestamp_format: TimestampFormat = built(declare(
        "choice", "the time in prefixes: local `HH:MM:SS`, ISO 8601, seconds since the start, "
        "or none (`--no-timestamp`)",
        takes("--timestamp", metavar="FORMAT"), switch("--no-timestamp", const="none"),
        name="timestamp", default="local", choices=("local", "iso", "relative", "none"),
    ), value="local")
    prefix: bool = setting(
        "bool", "prefix each output line with time and instance name (`--no-prefix`: bare "
        "lines)", switch("--no-prefix", const=False), value=True, default=True,
        before_command=True)
    merge_stderr: bool = setting(
        "bool", "show stderr lines like stdout lines", switch("--merge-stderr"), value=False,
        default=False)
    raw_output: bool = setting(
        "bool", "on a terminal, pass the children's control sequences as they are (by default "
        "all but colours are shown escaped)", switch("--raw-output"), value=False, default=False)
    quiet: bool = setting(
        "bool", "print only the children's output and procrunner's errors and warnings (no "
        "start, ready, restart or stop lines, no summary)", switch("-q", "--quiet"),
        value=False, default=False)
    output: OutputFormat = setting(
        "choice", "`text` lines, or one JSON object per line",
        takes("--output", metavar="FORMAT"), value="text", default="text",
        choices=("text", "json"))


@dataclass(frozen=True)
class RunOptions:
    """How the supervisor runs and stops the formation."""

    stop_timeout: float = setting(
        "duration", "how long to wait after SIGTERM before SIGKILL",
        takes("-t", "--timeout", metavar="DURATION"), name="timeout", value=5.0, default="5s",
        commands=EXPORTED_COMMANDS)
    run_for: float | None = setting(
        "duration", "stop the formation gracefully after this long",
        takes("--run-for", metavar="DURATION"))
    start_seconds: float = 1.0
    memory_interval: float = 5.0
    restart: RestartRules = built(
        declare("spec", "when an instance exits on its own: `stop-all`, `never`, `on-failure` "
                "or `always`; per type: `web=always,worker=on-failure`",
                takes("--restart", metavar="POLICY"), name="restart", default="stop-all",
                commands=EXPORTED_COMMANDS),
        declare("spec", "restart backoff (any subset)", takes("--backoff", metavar="SPEC"),
                name="backoff", default="first=0.5s,max=30s,reset=10s"),
        declare("spec", "mark an instance fatal after N crashes within DURATION, e.g. `5/60s` "
                "(default: never give up)", takes("--give-up", metavar="N/DURATION"),
                name="give_up"),
        factory=RestartRules)
    chaos: ChaosSpec | None = built(declare(
        "spec", "kill running instances on a schedule: `every=10s` or `rate=6/min`, `types=`, "
        "`signal=`, `seed=`, `after=`, `max=`", takes("--chaos", metavar="SPEC"),
        name="chaos", commands=EXPORTED_COMMANDS))
    port_ready_types: frozenset[str] = built(value=frozenset({"web"}))
    watch: bool = setting(
        "bool", "restart the types whose files change (per-type globs: `types.NAME.watch`)",
        switch("--watch"), value=False, default=False)
    types: Mapping[str, TypeSettings] = built(declare(
        "types", "types whose instances get a terminal (`procrunner connect`)",
        takes("--tty", metavar="TYPES"), name="tty",
    ), factory=lambda: MappingProxyType({}))
    watch_debounce: float = 0.3
    release: bool = setting(
        "bool", "run the Procfile's `release` type once, before the formation starts; a "
        "failure ends the run (`--no-release`: skip it)", switch("--no-release", const=False),
        value=True, default=True)

    def for_type(self, type_name: str) -> TypeSettings:
        return self.types.get(type_name, DEFAULT_TYPE)

    def readiness(self, type_name: str) -> Readiness:
        chosen = self.for_type(type_name).ready
        if chosen is not None:
            return chosen
        return Readiness("port" if type_name in self.port_ready_types else "uptime")

    def stop_timeout_of(self, type_name: str) -> float:
        timeout = self.for_type(type_name).stop_timeout
        return self.stop_timeout if timeout is None else timeout

    def longest_stop_timeout(self, type_names: Sequence[str]) -> float:
        """What the watchdog waits between SIGTERM and SIGKILL: the longest any type gets."""
        return max((self.stop_timeout_of(name) for name in type_names), default=self.stop_timeout)


@dataclass(frozen=True)
class RouterOptions:
    """``--router``: which type it fronts, and its port (None: that type's first port, and
    the type's instances move up by one)."""

    type_name: str = "web"
    port: int | None = None


@dataclass(frozen=True)
class AppOptions:
    """Where the app is and how to read it: shared by every command that loads the app."""

    procfile: Path | None = setting(
        "path", "the Procfile (default: `PROCFILE` from the env files, relative to the root, "
        "else `ROOT/Procfile`)",
        takes("-f", "--procfile", metavar="FILE"), commands=APP_COMMANDS, before_command=True)
    root: Path | None = setting(
        "path", "the app root: children run there; `.env`, `procrunner.yml` and `.foreman` are "
        "read there (default: the folder of a Procfile named by `-f` or a settings file; else "
        "the current folder, or the nearest one upward that holds a `Procfile`)",
        takes("-d", "--root", metavar="DIR"),
        commands=APP_COMMANDS, before_command=True)
    env_files: tuple[Path, ...] | None = setting(
        "paths", "env files, instead of `ROOT/.env`; later files win",
        takes("-e", "--env", metavar="FILES"), name="env", commands=APP_COMMANDS,
        before_command=True)
    env_precedence: EnvPrecedence = setting(
        "choice", "which wins when a variable is both in an env file and in procrunner's "
        "environment", takes("--env-precedence", metavar="WHICH"), value="file",
        default="file", commands=APP_COMMANDS, choices=("file", "os"))
    port: int | None = setting(
        "port", "the base port (default: `PORT` from the env files or the environment, else "
        "5000)", takes("-p", "--port", metavar="N"), commands=APP_COMMANDS)
    formation: str | None = setting(
        "spec", "instances per type: `web=2,worker=1`, `all=2`; types not named get 0",
        takes("-m", "-c", "--formation", "--concurrency", metavar="SPEC"), default="all=1",
        commands=FORMATION_COMMANDS)
    router: RouterOptions | None = built(
        declare("bool", "one port in front of the web instances; each connection goes to a "
                "random ready one", switch("--router"), name="router", default=False,
                commands=ROUTER_COMMANDS, has_variable=False),
        declare("text", "the process type behind the router (default `web`; implies router)",
                takes("--router-type", metavar="TYPE"), name="router_type",
                commands=ROUTER_COMMANDS),
        declare("port", "the router's port (default: the type's first port, its instances move "
                "up by one; implies router)", takes("--router-port", metavar="N"),
                name="router_port", commands=ROUTER_COMMANDS))
    types: tuple[str, ...] = ()  # start's TYPE arguments: run only these


@dataclass(frozen=True)
class StartSettings:
    """Everything ``procrunner start`` was told, from every source, checked and frozen."""

    app: AppOptions = section(AppOptions)
    run: RunOptions = section(RunOptions)
    style: Style = section(Style)
    log_dir: Path | None = setting(
        "path", "also write each instance's output to `DIR/web.1.log`, each file rotated at "
        "10 MiB, 3 kept (with `--detach`, by default a private per-app folder under "
        "`$XDG_STATE_HOME/procrunner`)", takes("--log-dir", metavar="DIR"), absolute=True)
    detach: bool = setting(
        "bool", "run the formation in the background: return once its control socket "
        "answers; its output goes to the log files of `--log-dir`", switch("-D", "--detach"),
        value=False, default=False)
    audit: bool = setting(
        "bool", "report files written into the app root during the run", switch("--audit"),
        value=False, default=False)
    audit_ignore: tuple[Path, ...] = built(declare(  # and every type's backing paths
        "paths", "paths the audit and the watcher ignore (backing-service data)",
        takes("--audit-ignore", metavar="PATHS"), name="audit_ignore"), value=())
    scratch_root: Path | None = setting(
        "path", "where run scratch dirs go (default: `<temp dir>/procrunner-<uid>/<app hash>`)",
        takes("--scratch-root", metavar="DIR"), absolute=True)
    keep_scratch: bool = setting(
        "bool", "keep ended incarnations' scratch dirs instead of wiping them",
        switch("--keep-scratch"), value=False, default=False)
    summary_json: Path | None = setting(
        "path", "also write the exit summary as JSON to this file",
        takes("--summary-json", metavar="FILE"), absolute=True)
    dashboard: bool = setting(  # serve the live page alongside
        "bool", "also serve the live dashboard on 127.0.0.1 (prints its URL)",
        switch("--dashboard"), value=False, default=False)
    socket: Path | None = built(declare(
        "path", "the control socket (default: one per app root, in a private per-user "
        "folder); `PROCRUNNER_SOCKET`, the clients' variable, beats procrunner.yml",
        takes("--socket", metavar="PATH"), name="socket", has_variable=False))
