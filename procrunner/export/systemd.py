"""systemd: a template unit per process type (``APP-web@.service``, one instance per slot of
the formation, named by its port as foreman does: ``APP-web@5000.service``), ``APP.target``
that wants them all, and the environment in ``APP.env`` (mode 0600), never in a unit."""

from __future__ import annotations

import re

from procrunner.export.files import ExportFile
from procrunner.export.model import ExportModel, ExportType, Platform, duration_text

# PrivateTmp=yes gives every unit instance its own /tmp, removed when the instance stops.
SCRATCH = "/tmp"
PLATFORM = Platform(
    name="systemd",
    chaos_tools="a timer that runs systemctl kill --signal=KILL",
    tty=False,
    depends_on=False,
    give_up=True,
)
_ENV_FILE_ESCAPE = re.compile(r'([\\"`$])')


def render(model: ExportModel) -> tuple[ExportFile, ...]:
    files = [ExportFile(f"{model.app}-{kind.label}@.service", _unit(model, kind))
             for kind in model.types]
    instances = [f"{model.app}-{kind.label}@{port}.service"
                 for kind in model.types for port in kind.slot_ports]
    files.append(ExportFile(f"{model.app}.target", _section("Unit", [
        ("Description", f"{model.app} (procrunner export)"),
        *(("Wants", name) for name in instances),
    ]) + "\n" + _section("Install", [("WantedBy", "multi-user.target")])))
    if model.env:
        files.append(ExportFile(f"{model.app}.env", "".join(
            f'{key}="{_env_file_quoted(value)}"\n' for key, value in model.env.items()),
            private=True))
    return tuple(files)


def _section(name: str, entries: list[tuple[str, str]]) -> str:
    return f"[{name}]\n" + "".join(f"{key}={value}\n" for key, value in entries)


def _unit(model: ExportModel, kind: ExportType) -> str:
    rules = model.run.restart
    limits = ([("StartLimitIntervalSec", duration_text(rules.give_up.window)),
               ("StartLimitBurst", str(rules.give_up.deaths))] if rules.give_up is not None
              else [("StartLimitIntervalSec", "0")])  # procrunner never gives up by default
    unit = _section("Unit", [
        ("Description", f"{model.app} {kind.name} on port %i (procrunner export)"),
        ("PartOf", f"{model.app}.target"),
        *limits,
    ])
    env = model.instance_env("%i", SCRATCH)
    service = _section("Service", [
        ("Type", "simple"),
        ("WorkingDirectory", _literal(str(model.root))),
        *((("EnvironmentFile", _literal(str(model.outdir / f"{model.app}.env"))),)
          if model.env else ()),
        *(("Environment", f"{key}={value}") for key, value in env.items()),
        ("ExecStart", f'/bin/sh -c "{_exec_quoted(kind.command)}"'),
        ("Restart", PLATFORM.restart[kind.policy]),
        ("RestartSec", duration_text(rules.backoff.first)),
        ("PrivateTmp", "yes"),
        ("KillMode", "control-group"),
        ("KillSignal", kind.stop_signal_name),
        ("TimeoutStopSec", duration_text(kind.stop_timeout)),
        ("StandardInput", "null"),
    ])
    return unit + "\n" + service


def _env_file_quoted(value: str) -> str:
    """Inside double quotes in an EnvironmentFile, a backslash makes \\ " ` $ literal; a
    newline stays part of the value."""
    return _ENV_FILE_ESCAPE.sub(r"\\\1", value)


def _exec_quoted(command: str) -> str:
    """The command inside ExecStart's double quotes: systemd's own escapes and specifiers
    undone (``%%``, ``$$``), so /bin/sh gets it as written."""
    escaped = command.replace("\\", "\\\\").replace('"', '\\"')
    return _literal(escaped).replace("$", "$$")


def _literal(text: str) -> str:
    """No systemd specifiers (``%i``...) in text that is not ours."""
    return text.replace("%", "%%")
