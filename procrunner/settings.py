"""The validated, frozen settings of one command, built once from the command line."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from procrunner.chaos import ChaosSpec
from procrunner.restart import RestartRules

EnvPrecedence = Literal["file", "os"]


@dataclass(frozen=True)
class Style:
    """How output lines look."""

    timestamps: bool = True
    prefix: bool = True
    color: bool = False
    merge_stderr: bool = False


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
    tty_types: frozenset[str] = frozenset()


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
    app: AppOptions = field(default_factory=AppOptions)
    run: RunOptions = field(default_factory=RunOptions)
    style: Style = field(default_factory=Style)
    scratch_root: Path | None = None
    keep_scratch: bool = False
    audit: bool = False
    audit_ignore: tuple[Path, ...] = ()
    summary_json: Path | None = None
    socket: Path | None = None
