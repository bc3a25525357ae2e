"""The validated, frozen settings of one command, built once from the command line."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from procrunner.output import Style
from procrunner.supervisor import RunOptions

EnvPrecedence = Literal["file", "os"]


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
