"""The app model: Procfile, environment and formation, loaded and validated before anything runs."""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from procrunner.config.environment import base_port, load_env_files, merge_environment
from procrunner.config.formation import (
    PORT_STEP,
    InstanceMaker,
    InstanceSpec,
    parse_formation,
    plan_instances,
    select_types,
)
from procrunner.config.procfile import ProcessType, load_procfile
from procrunner.config.quoting import quote
from procrunner.config.settings import AppOptions
from procrunner.errors import ProcrunnerError
from procrunner.markers import INCARNATION_MARKER, RUN_MARKER, incarnation_marker


@dataclass(frozen=True)
class App:
    """A checked app: its Procfile's types, environment, formation and port plan."""

    options: AppOptions
    root: Path
    procfile: Path
    types: tuple[ProcessType, ...]
    env: Mapping[str, str]
    env_files: tuple[Path, ...]
    counts: Mapping[str, int]
    base_port: int
    plan: tuple[InstanceSpec, ...]
    make_spec: InstanceMaker
    router_port: int | None = None


def procfile_and_root(options: AppOptions) -> tuple[Path, Path]:
    """``-f`` else ROOT/Procfile else ./Procfile; the root defaults to the Procfile's folder."""
    if options.procfile is not None:
        procfile = options.procfile
    elif options.root is not None:
        procfile = options.root / "Procfile"
    else:
        procfile = Path("Procfile")
    root = options.root if options.root is not None else procfile.parent
    return procfile, root.resolve()


def load_environment(
    options: AppOptions, root: Path, os_env: Mapping[str, str]
) -> tuple[dict[str, str], tuple[Path, ...]]:
    """The base environment of every child: ROOT/.env if present, or the ``-e`` files."""
    if options.env_files is not None:
        files = options.env_files
    else:
        default = root / ".env"
        files = (default,) if default.is_file() else ()
    merged = merge_environment(os_env, load_env_files(files), options.env_precedence)
    return merged, files


def load_app(options: AppOptions, os_env: Mapping[str, str]) -> App:
    procfile, root = procfile_and_root(options)
    types = load_procfile(procfile)
    env, files = load_environment(options, root, os_env)
    names = [t.name for t in types]
    counts = parse_formation(options.formation, names)
    if options.types:
        counts = select_types(counts, options.types)
    port = base_port(options.port, env)
    router = options.router
    if router is not None and router.type_name not in names:
        raise ProcrunnerError(
            f"unknown process type {quote(router.type_name)}; known types: {', '.join(names)}",
            "--router-type",
        )
    shifted = router.type_name if router is not None and router.port is None else None
    maker = InstanceMaker(types, port, shifted)
    plan = plan_instances(types, counts, port, shifted)
    router_port = None
    if router is not None:
        router_port = router.port or port + PORT_STEP * names.index(router.type_name)
        clash = next((spec.name for spec in plan if spec.port == router_port), None)
        if clash is not None:
            raise ProcrunnerError(f"port {router_port} is also {clash}'s port", "--router-port")
    return App(options, root, procfile, types, env, files, counts, port, plan, maker, router_port)


def new_run_id() -> str:
    return f"{time.strftime('%Y%m%d-%H%M%S')}-{os.urandom(3).hex()}"


def instance_environment(
    base: Mapping[str, str], spec: InstanceSpec, label: str, scratch: Path, run_id: str
) -> dict[str, str]:
    """A new dict per incarnation: procrunner's own environment is never changed."""
    env = dict(base)
    for name in ("TMPDIR", "TMP", "TEMP", "PROCRUNNER_SCRATCH"):
        env[name] = str(scratch)
    env["PORT"] = str(spec.port)
    env["PS"] = env["DYNO"] = spec.name
    env.setdefault("PYTHONUNBUFFERED", "1")
    env[RUN_MARKER] = run_id
    env[INCARNATION_MARKER] = incarnation_marker(run_id, label)
    return env
