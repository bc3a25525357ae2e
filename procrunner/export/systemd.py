"""systemd: a template unit per process type (``APP-web@.service``, one instance per slot of
the formation, named by its port as foreman does: ``APP-web@5000.service``), ``APP.target``
that wants them all, the release step as one ``Type=oneshot`` unit ordered before them, and
the environment in ``APP.env`` (mode 0600), never in a unit.

The units name where they are installed (``--install-dir``), not the folder the export was
written to, and take PATH only from ``--path``: the developer's own PATH is not the server's.
"""

from __future__ import annotations

import re
from pathlib import Path

from procrunner.export.files import ExportFile
from procrunner.export.model import ExportModel, ExportType, Platform, duration_text

# PrivateTmp=yes gives every unit instance its own /tmp, removed when the instance stops.
SCRATCH = "/tmp"
# the folders PrivateTmp=yes replaces with empty ones
PRIVATE_TMP_HIDES = (Path("/tmp"), Path("/var/tmp"))
PLATFORM = Platform(
    name="systemd",
    chaos_tools="a timer that runs systemctl kill --signal=KILL",
    tty=False,
    depends_on=False,
    give_up=True,
    stop_command=True,
)
_ENV_FILE_ESCAPE = re.compile(r'([\\"`$])')


def hidden_by_private_tmp(root: Path) -> bool:
    return any(root.is_relative_to(folder) for folder in PRIVATE_TMP_HIDES)


def render(model: ExportModel) -> tuple[ExportFile, ...]:
    files = [ExportFile(_unit_name(model, kind), _unit(model, kind)) for kind in model.types]
    instances = [_unit_name(model, kind, port)
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


def _unit_name(model: ExportModel, kind: ExportType, port: int | None = None) -> str:
    if kind.once:  # one unit, not a template: it runs once per start of the target
        return f"{model.app}-{kind.label}.service"
    return f"{model.app}-{kind.label}@{'' if port is None else port}.service"


def _section(name: str, entries: list[tuple[str, str]]) -> str:
    return f"[{name}]\n" + "".join(f"{key}={value}\n" for key, value in entries)


def _unit(model: ExportModel, kind: ExportType) -> str:
    rules = model.run.restart
    limits = ([("StartLimitIntervalSec", duration_text(rules.give_up.window)),
               ("StartLimitBurst", str(rules.give_up.deaths))] if rules.give_up is not None
              else [("StartLimitIntervalSec", "0")])  # procrunner never gives up by default
    steps = [f"{model.app}-{label}.service" for label, condition in kind.depends_on
             if condition == "completed"]
    unit = _section("Unit", [
        ("Description", f"{model.app} {kind.name}"
         f"{'' if kind.once else ' on port %i'} (procrunner export)"),
        ("PartOf", f"{model.app}.target"),
        # a failed step keeps its dependants down; a successful one is not re-run by their
        # restarts (RemainAfterExit)
        *(("Requires", step) for step in steps),
        *(("After", step) for step in steps),
        *limits,
    ])
    options = model.options
    env = model.instance_env(str(kind.port) if kind.once else "%i", SCRATCH)
    if options.path is not None:
        env["PATH"] = _literal(options.path)
    user = [("User", options.user.partition(":")[0]),
            ("Group", options.user.partition(":")[2] or options.user)] if options.user else []
    root = _literal(str(model.root))
    service = _section("Service", [
        *((("Type", "oneshot"), ("RemainAfterExit", "yes")) if kind.once
          else (("Type", "simple"),)),
        *user,
        ("WorkingDirectory", root),
        *((("EnvironmentFile", _literal(str(options.install_dir / f"{model.app}.env"))),)
          if model.env else ()),
        *(("Environment", f"{key}={value}") for key, value in env.items()),
        ("ExecStart", f'/bin/sh -c "{_exec_quoted(kind.command)}"'),
        # systemd runs it, then sends KillSignal to what is left
        *((("ExecStop", f'/bin/sh -c "{_exec_quoted(kind.stop_command)}"'),)
          if kind.stop_command else ()),
        *(() if kind.once else (("Restart", PLATFORM.restart[kind.policy]),
                                ("RestartSec", duration_text(rules.backoff.first)))),
        ("PrivateTmp", "yes"),
        # the app root is under a folder PrivateTmp hides: bound back in, the scratch
        # stays private
        *((("BindPaths", root),) if hidden_by_private_tmp(model.root) else ()),
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
