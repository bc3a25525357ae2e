"""The formation as every exporter sees it, and what a platform cannot express.

``build_model`` takes the loaded app and the frozen ``RunOptions``, loaded from every source
as for ``start``, and makes one ``ExportModel``. The exporters render it; none of them reads
the settings itself.
"""

from __future__ import annotations

import re
import signal
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from procrunner.config.app import App
from procrunner.config.environment import load_env_files
from procrunner.config.formation import PORT_STEP
from procrunner.config.procfile import shell_command
from procrunner.config.restart_rules import Backoff, Policy
from procrunner.config.settings import (
    RELEASE_TYPE,
    Condition,
    Health,
    Readiness,
    ReadyKind,
    RunOptions,
)
from procrunner.errors import ProcrunnerError

# What procrunner sets per instance: never taken from the env files into an export.
SCRATCH_VARIABLES = ("TMPDIR", "TMP", "TEMP", "PROCRUNNER_SCRATCH")
INSTANCE_VARIABLES = frozenset({"PORT", "PS", "DYNO", *SCRATCH_VARIABLES})

# The secret rule: a key containing one of these words (any case), or a value that is a URL
# with a password in it (scheme://user:password@host).
SECRET_WORDS = ("SECRET", "PASSWORD", "PASSWD", "PASSPHRASE", "TOKEN", "KEY", "CREDENTIAL",
                "PRIVATE")
_SECRET_KEY = re.compile("|".join(SECRET_WORDS), re.IGNORECASE)
_URL_WITH_PASSWORD = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^/?#@\s:]*:[^@\s]+@")

_LABEL = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?", re.ASCII)
_NOT_LABEL = re.compile(r"[^a-z0-9]+", re.ASCII)
MAX_LABEL = 63


def looks_secret(key: str, value: str) -> bool:
    return bool(_SECRET_KEY.search(key) or _URL_WITH_PASSWORD.match(value))


SYSTEMD_INSTALL_DIR = Path("/etc/systemd/system")


@dataclass(frozen=True)
class ExportOptions:
    """What ``export`` adds to the app's settings."""

    outdir: Path
    app_name: str
    image: str | None = None
    namespace: str | None = None  # kubernetes
    publish_all: bool = False  # compose: publish ports on every interface, not 127.0.0.1
    include_secrets: bool = False  # kubernetes: the Secret with its values
    user: str | None = None  # systemd: User= (and Group=, from USER:GROUP or the user's name)
    path: str | None = None  # systemd: Environment=PATH=
    install_dir: Path = SYSTEMD_INSTALL_DIR  # systemd: where the unit and env files go


@dataclass(frozen=True)
class ExportType:
    """One process type as exported: a Deployment, a Compose service, a systemd template."""

    name: str  # as in the Procfile
    label: str  # a DNS-1123 label: the name lowercased, "_" as "-"
    command: str  # what /bin/sh -c runs ("exec COMMAND" for a simple command)
    port: int  # PORT of the type's first instance (foreman's: base + 100 per type)
    slot_ports: tuple[int, ...]  # one per instance of the formation: its length is replicas
    listens: bool  # gets a container port and a Service: a port or http check reaches it
    readiness: Readiness
    health: Health | None
    stop_command: str | None
    policy: Policy
    stop_timeout: float
    stop_signal: int
    tty: bool
    depends_on: tuple[tuple[str, Condition], ...]  # (label, condition)
    once: bool  # runs to completion and is never restarted: the release step, a one-shot

    @property
    def release(self) -> bool:
        return self.name == RELEASE_TYPE

    @property
    def ready(self) -> ReadyKind:
        return self.readiness.kind

    @property
    def replicas(self) -> int:
        return len(self.slot_ports)

    @property
    def stop_signal_name(self) -> str:
        return signal.Signals(self.stop_signal).name


@dataclass(frozen=True)
class ExportModel:
    app: str
    options: ExportOptions
    root: Path
    outdir: Path
    types: tuple[ExportType, ...]
    env: Mapping[str, str]  # env-file values only, in key order; never the OS environment
    run: RunOptions

    @property
    def image(self) -> str | None:
        return self.options.image

    @property
    def services(self) -> tuple[ExportType, ...]:
        """The types that keep running (not the release step or one-shots)."""
        return tuple(t for t in self.types if not t.once)

    @property
    def secret_keys(self) -> tuple[str, ...]:
        return tuple(k for k, v in self.env.items() if looks_secret(k, v))

    def split_env(self) -> tuple[dict[str, str], dict[str, str]]:
        """(plain, secret) by the secret rule."""
        secret = set(self.secret_keys)
        plain = {k: v for k, v in self.env.items() if k not in secret}
        return plain, {k: v for k, v in self.env.items() if k in secret}

    def instance_env(self, port: str, scratch: str, container: bool = False) -> dict[str, str]:
        """What procrunner itself gives each instance, in the platform's terms; in a container
        also ``HOST=0.0.0.0`` (unless the env files set it), as 127.0.0.1 there is reachable
        from that container alone."""
        env = {"PORT": port, **dict.fromkeys(SCRATCH_VARIABLES, scratch)}
        if "PYTHONUNBUFFERED" not in self.env:
            env["PYTHONUNBUFFERED"] = "1"
        if container and "HOST" not in self.env:
            env["HOST"] = "0.0.0.0"
        return dict(sorted(env.items()))


def app_label(text: str, given: bool) -> str:
    """``--app`` must be a DNS-1123 label starting with a letter; the folder's name is made
    into one (lowercased, other characters as "-")."""
    if given:
        if not _LABEL.fullmatch(text) or len(text) > MAX_LABEL:
            raise ProcrunnerError(
                f"bad app name {text!r}: expected lowercase letters, digits and '-', starting "
                "with a letter (a DNS-1123 label)", "--app")
        return text
    label = _NOT_LABEL.sub("-", text.lower()).strip("-").lstrip("0123456789-")[:40].rstrip("-")
    if not label:
        raise ProcrunnerError(f"cannot make an app name of the folder name {text!r}; "
                              "give one with --app NAME", "--app")
    return label


def _type_label(name: str) -> str:
    return _NOT_LABEL.sub("-", name.lower()).strip("-") or "x"


def build_model(app: App, run: RunOptions, options: ExportOptions) -> ExportModel:
    names = [t.name for t in app.types]
    labels = {t.name: _type_label(t.name) for t in app.types}
    if len(set(labels.values())) < len(labels):
        raise ProcrunnerError("process type names must stay distinct once lowercased with "
                              "'_' as '-': " + ", ".join(names), str(app.procfile))
    types = []
    for index, kind in enumerate(app.types):
        full = f"{options.app_name}-{labels[kind.name]}"
        if len(full) > MAX_LABEL:
            raise ProcrunnerError(f"{full!r} is longer than {MAX_LABEL} characters; "
                                  "choose a shorter --app", "--app")
        release = kind.name == RELEASE_TYPE
        if release and not run.release:
            continue
        settings = run.for_type(kind.name)
        readiness = run.readiness(kind.name)
        port = app.base_port + PORT_STEP * index
        depends_on = [(labels[d], condition) for d, condition in settings.depends_on.items()]
        if not release and RELEASE_TYPE in labels and run.release:
            depends_on.insert(0, (labels[RELEASE_TYPE], "completed"))
        health = settings.health
        types.append(ExportType(
            name=kind.name,
            label=labels[kind.name],
            command=shell_command(kind.command),
            port=port,
            # the release step runs once per deploy, whatever the formation says
            slot_ports=(port,) if release else tuple(
                s.port for s in app.plan if s.type_name == kind.name),
            listens=not release and (readiness.kind in ("port", "http") or (
                health is not None and health.kind in ("port", "http"))),
            readiness=readiness,
            health=health,
            stop_command=settings.stop_command,
            policy=Policy.NEVER if release or settings.once else run.restart.policy(kind.name),
            stop_timeout=run.stop_timeout_of(kind.name),
            stop_signal=settings.stop_signal,
            tty=settings.tty,
            depends_on=tuple(depends_on),
            once=release or settings.once,
        ))
    file_env = load_env_files(app.env_files)
    env = {k: file_env[k] for k in sorted(file_env) if k not in INSTANCE_VARIABLES}
    return ExportModel(options.app_name, options, app.root, options.outdir.absolute(),
                       tuple(types), env, run)


def duration_text(seconds: float) -> str:
    """``5s`` or ``2500ms``: read alike by Compose and systemd."""
    millis = round(seconds * 1000)
    return f"{millis // 1000}s" if millis % 1000 == 0 else f"{millis}ms"


# Restart= in systemd and restart: in Compose take the same words.
SERVICE_RESTART = {Policy.STOP_ALL: "always", Policy.NEVER: "no", Policy.ON_FAILURE: "on-failure",
                   Policy.ALWAYS: "always"}


@dataclass(frozen=True)
class Platform:
    """What one target can express of procrunner's settings; the rest is named in one
    warning line by ``unmapped``."""

    name: str
    chaos_tools: str
    restart: Mapping[Policy, str] = field(default_factory=lambda: SERVICE_RESTART)
    # the policies that do not map exactly, and why
    approximated: Mapping[Policy, str] = field(
        default_factory=lambda: {Policy.STOP_ALL: "no equivalent, exported as always"})
    stop_signal: bool = True
    tty: bool = True
    depends_on: bool = True
    give_up: bool = False
    readiness: frozenset[ReadyKind] = frozenset({"none", "uptime"})  # checked by the platform
    health: frozenset[str] = frozenset()  # liveness kinds it maps
    health_restarts: bool = True  # an unhealthy instance is restarted
    stop_command: bool = False


def unmapped(model: ExportModel, platform: Platform) -> tuple[str, ...]:
    """What the export cannot say, in a stable order (empty when everything maps)."""
    notes: list[str] = []
    for policy, why in platform.approximated.items():
        kinds = [t.name for t in model.services if t.policy is policy]
        if kinds:
            notes.append(f"restart {policy.value} ({', '.join(kinds)}): {why}")

    def named(what: str, kinds: list[str], why: str) -> None:
        if kinds:
            notes.append(f"{what} ({', '.join(kinds)}): {why}")

    if not platform.stop_signal:
        named("stop signal", [f"{t.name}={t.stop_signal_name}" for t in model.types
                              if t.stop_signal != signal.SIGTERM],
              f"{platform.name} always sends SIGTERM")
    if not platform.tty:
        named("tty", [t.name for t in model.types if t.tty], "no terminal to attach to")
    if not platform.depends_on:
        named("depends_on", [t.name for t in model.services
                             if any(c == "ready" for _, c in t.depends_on)],
              "no start order: make the app retry its dependencies")
    named("readiness", [f"{t.name}={t.ready}" for t in model.services
                        if t.ready not in platform.readiness],
          f"not checked by {platform.name}")
    named("health", [f"{t.name}={t.health.kind}" for t in model.services
                     if t.health is not None and t.health.kind not in platform.health],
          f"not checked by {platform.name}")
    if not platform.health_restarts:
        named("health", [t.name for t in model.services
                         if t.health is not None and t.health.kind in platform.health],
              f"{platform.name} marks it unhealthy but does not restart it")
    if not platform.stop_command:
        named("stop_command", [t.name for t in model.types if t.stop_command],
              f"{platform.name} only sends the stop signal")
    rules = model.run.restart
    if rules.give_up is not None and not platform.give_up:
        notes.append(f"give-up {rules.give_up.deaths}/{rules.give_up.window:g}s: "
                     f"{platform.name} never gives up")
    if rules.backoff != Backoff():
        notes.append(f"backoff: {platform.name} uses its own")
    if model.run.chaos is not None:
        notes.append(f"chaos: use {platform.chaos_tools}")
    return tuple(notes)
