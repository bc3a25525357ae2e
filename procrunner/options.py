"""Command-line values turned into the validated, frozen settings of ``start``, ``check`` and
``run`` (imported only by those commands: it pulls in the parsers)."""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import replace
from pathlib import Path

from procrunner.app import App
from procrunner.chaos import parse_chaos
from procrunner.durations import parse_duration
from procrunner.errors import ProcrunnerError
from procrunner.restart import (
    RestartRules,
    parse_backoff,
    parse_give_up,
    parse_policies,
)
from procrunner.settings import AppOptions, RouterOptions, RunOptions, StartSettings, Style


def port_number(value: str | None, option: str = "--port") -> int | None:
    if value is None:
        return None
    if not value.isdigit() or not 1 <= int(value) <= 65535:
        raise ProcrunnerError(f"{value!r} is not a port number (1-65535)", option)
    return int(value)


def _router_options(args: argparse.Namespace) -> RouterOptions | None:
    router_type = getattr(args, "router_type", None)
    router_port = getattr(args, "router_port", None)
    if not (getattr(args, "router", False) or router_type or router_port):
        return None
    return RouterOptions(router_type or "web", port_number(router_port, "--router-port"))


def _path(value: str | None) -> Path | None:
    return Path(value).absolute() if value else None


def _paths(value: str | None) -> tuple[Path, ...] | None:
    if value is None:
        return None
    return tuple(Path(p.strip()) for p in value.split(",") if p.strip())


def app_options(args: argparse.Namespace) -> AppOptions:
    return AppOptions(
        procfile=Path(args.procfile) if args.procfile else None,
        root=Path(args.root) if args.root else None,
        env_files=_paths(args.env),
        formation=getattr(args, "formation", None),
        port=port_number(args.port),
        env_precedence=args.env_precedence,
        types=tuple(getattr(args, "types", ())),
        router=_router_options(args),
    )


def _restart_rules(args: argparse.Namespace, type_names: list[str]) -> RestartRules:
    rules = RestartRules()
    if args.restart is not None:
        rules = parse_policies(args.restart, type_names)
    if args.backoff is not None:
        rules = replace(rules, backoff=parse_backoff(args.backoff))
    if args.give_up is not None:
        rules = replace(rules, give_up=parse_give_up(args.give_up))
    return rules


def start_settings(args: argparse.Namespace, app: App) -> StartSettings:
    names = [t.name for t in app.types]
    port_ready = RunOptions.port_ready_types
    if app.options.router is not None:
        port_ready |= {app.options.router.type_name}
    color = args.color
    if color is None:
        color = sys.stdout.isatty() and not os.environ.get("NO_COLOR")
    run_for = None if args.run_for is None else parse_duration(args.run_for, "--run-for")
    return StartSettings(
        app=app.options,
        run=RunOptions(
            stop_timeout=parse_duration(args.timeout, "--timeout"),
            run_for=run_for,
            restart=_restart_rules(args, names),
            chaos=parse_chaos(args.chaos, names) if args.chaos else None,
            port_ready_types=port_ready,
            tty_types=_tty_types(args.tty, names),
        ),
        style=Style(
            timestamps=not args.no_timestamp,
            prefix=not args.no_prefix,
            color=color,
            merge_stderr=args.merge_stderr,
        ),
        scratch_root=_path(args.scratch_root),
        keep_scratch=args.keep_scratch,
        audit=args.audit,
        audit_ignore=_paths(args.audit_ignore) or (),
        summary_json=_path(args.summary_json),
        socket=_path(args.socket),
    )


def _tty_types(value: str | None, names: list[str]) -> frozenset[str]:
    chosen = frozenset(t.strip() for t in (value or "").split(",") if t.strip())
    unknown = sorted(chosen - set(names))
    if unknown:
        known = ", ".join(names)
        raise ProcrunnerError(f"unknown process type {unknown[0]!r}; known types: {known}", "--tty")
    return chosen
