"""Docker Compose: a service per process type in ``compose.yaml``, the environment in an env
file beside it (mode 0600) that every service reads through ``env_file:``.

The file is read alike by docker-compose 1.29 (Debian 12's) and the Compose specification:
no top-level ``name:`` (1.29 rejects it; the project name is ``-p NAME``). ``init: true``
puts Docker's init in front of ``/bin/sh`` as PID 1, which would ignore SIGTERM and make
every stop wait out the grace period. The release step and one-shots are ``restart: "no"``
services that the others wait for (``service_completed_successfully``)."""

from __future__ import annotations

import re
from typing import Any

from procrunner.errors import ProcrunnerError
from procrunner.export.files import ExportFile, yaml_text
from procrunner.export.model import ExportModel, ExportType, Platform, duration_text

SCRATCH = "/scratch"
PLATFORM = Platform(
    name="compose",
    chaos_tools="Pumba",
    # a healthcheck runs a command in the container: no curl or nc can be assumed there
    readiness=frozenset({"none", "uptime", "exec"}),
    health=frozenset({"exec"}),
    health_restarts=False,
)
# Compose's env-file keys; a value in single quotes is taken literally (no ${} expansion).
_KEY = re.compile(r"[A-Za-z0-9_.]+", re.ASCII)
_PLAIN_IN_DOUBLE_QUOTES = re.compile(r"[^\\\"$\n\r]*")
_CONDITIONS = {"ready": "service_started", "completed": "service_completed_successfully"}


def render(model: ExportModel) -> tuple[ExportFile, ...]:
    env_name = f"{model.app}.env"
    checks = {kind.label: check for kind in model.types
              if (check := _healthcheck(kind)) is not None}
    services = {kind.label: _service(model, kind, env_name if model.env else None, checks)
                for kind in model.types}
    files = [ExportFile("compose.yaml", yaml_text({"services": services}))]
    if model.env:
        text = "".join(f"{key}={_quoted(key, value)}\n" for key, value in model.env.items())
        files.append(ExportFile(env_name, text, private=True))
    return tuple(files)


def _quoted(key: str, value: str) -> str:
    if not _KEY.fullmatch(key):
        raise ProcrunnerError(f"Compose env files cannot hold the key {key!r}", "compose")
    if "'" not in value and not value.endswith("\\"):
        return f"'{value}'"
    if _PLAIN_IN_DOUBLE_QUOTES.fullmatch(value):
        return f'"{value}"'
    raise ProcrunnerError(f"the value of {key} has a single quote and one of \\ \" $ or a "
                          "newline: a Compose env file cannot hold it literally", "compose")


def _healthcheck(kind: ExportType) -> dict[str, Any] | None:
    """``health: {exec: ...}`` as it is; else ``ready: {exec: ...}``, checked until healthy
    (what ``depends_on`` a ready type waits for)."""
    health, readiness = kind.health, kind.readiness
    if health is not None and health.kind == "exec" and health.target:
        return {"test": ["CMD-SHELL", health.target.replace("$", "$$")],
                "interval": duration_text(health.every), "timeout": duration_text(health.timeout),
                "retries": health.failures, "start_period": duration_text(health.grace)}
    if readiness.kind == "exec" and readiness.target:
        return {"test": ["CMD-SHELL", readiness.target.replace("$", "$$")], "interval": "1s"}
    return None


def _service(model: ExportModel, kind: ExportType, env_file: str | None,
             checks: dict[str, dict[str, Any]]) -> dict[str, Any]:
    service: dict[str, Any] = {
        "image": model.image,
        "entrypoint": ["/bin/sh", "-c", kind.command.replace("$", "$$")],  # no interpolation
        "environment": model.instance_env(str(kind.port), SCRATCH, container=True),
        "init": True,
        "restart": "no" if kind.once else PLATFORM.restart[kind.policy],
        "stop_grace_period": duration_text(kind.stop_timeout),
        "stop_signal": kind.stop_signal_name,
        "tmpfs": [SCRATCH],
    }
    if env_file is not None:
        service["env_file"] = [env_file]
    if not kind.once:
        service["deploy"] = {"replicas": kind.replicas}
    if kind.listens:
        # the container port only: Docker picks a host port for each replica
        interface = "" if model.options.publish_all else "127.0.0.1::"
        service["ports"] = [f"{interface}{kind.port}"]
    if kind.depends_on:
        service["depends_on"] = {label: {"condition": "service_healthy" if (
            condition == "ready" and label in checks) else _CONDITIONS[condition]}
            for label, condition in kind.depends_on}
    if kind.label in checks:
        service["healthcheck"] = checks[kind.label]
    if kind.tty:
        service.update(tty=True, stdin_open=True)
    return service
