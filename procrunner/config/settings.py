"""The validated, frozen settings of one command, built once at load time; the rest of the
program reads only these."""

from __future__ import annotations

import signal
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Literal

from procrunner.supervise.chaos import ChaosSpec
from procrunner.supervise.restart import RestartRules

EnvPrecedence = Literal["file", "os"]
OutputFormat = Literal["text", "json"]
TimestampFormat = Literal["local", "iso", "relative"]
ReadyKind = Literal["port", "log", "uptime", "none"]


@dataclass(frozen=True)
class Readiness:
    """When an incarnation counts as RUNNING: its PORT accepts connections (``port``), an
    output line matches ``pattern`` (``log``), it has stayed up ``start_seconds``
    (``uptime``), or at once (``none``)."""

    kind: ReadyKind = "uptime"
    pattern: str | None = None  # a regular expression, searched in each output line


@dataclass(frozen=True)
class TypeSettings:
    """Settings of one process type (``types:`` in procrunner.yml, and --tty)."""

    stop_signal: int = signal.SIGTERM
    stop_timeout: float | None = None  # None: the formation's --timeout
    ready: Readiness | None = None  # None: port for web and the router's type, else uptime
    tty: bool = False
    depends_on: tuple[str, ...] = ()  # start only once every instance of these is RUNNING
    watch: tuple[str, ...] = ()  # globs, relative to the app root; empty: every file
    backing: tuple[Path, ...] = ()  # backing-service data: ignored by --audit and --watch


DEFAULT_TYPE = TypeSettings()


@dataclass(frozen=True)
class Style:
    """How output lines look."""

    timestamps: bool = True
    prefix: bool = True
    color: bool = False
    merge_stderr: bool = False
    raw_output: bool = False  # on a terminal, children's control sequences pass unescaped
    output: OutputFormat = "text"
    timestamp_format: TimestampFormat = "local"


@dataclass(frozen=True)
class RunOptions:
    """How the supervisor runs and stops the formation."""

    stop_timeout: float = 5.0
    run_for: float | None = None
    start_seconds: float = 1.0
    memory_interval: float = 5.0
    restart: RestartRules = field(default_factory=RestartRules)
    chaos: ChaosSpec | None = None
    port_ready_types: frozenset[str] = frozenset({"web"})
    types: Mapping[str, TypeSettings] = field(default_factory=lambda: MappingProxyType({}))
    watch: bool = False
    watch_debounce: float = 0.3

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
    """Where the app is and how to read it: shared by start, check and run."""

    procfile: Path | None = None
    root: Path | None = None
    env_files: tuple[Path, ...] | None = None
    formation: str | None = None
    port: int | None = None
    env_precedence: EnvPrecedence = "file"
    types: tuple[str, ...] = ()
    router: RouterOptions | None = None


@dataclass(frozen=True)
class StartSettings:
    """Everything ``procrunner start`` was told, from every source, checked and frozen."""

    app: AppOptions = field(default_factory=AppOptions)
    run: RunOptions = field(default_factory=RunOptions)
    style: Style = field(default_factory=Style)
    scratch_root: Path | None = None
    keep_scratch: bool = False
    audit: bool = False
    audit_ignore: tuple[Path, ...] = ()
    summary_json: Path | None = None
    socket: Path | None = None
    dashboard: bool = False  # --dashboard: serve the live page alongside
    log_dir: Path | None = None
