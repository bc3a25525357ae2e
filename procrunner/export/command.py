"""``procrunner export FORMAT OUTDIR``: the command line. Light on purpose: the exporters,
the app loader and yaml are imported only when the command runs."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from procrunner.export.model import ExportModel

FORMAT_NAMES = ("kubernetes", "compose", "systemd")


def add_export_command(
    commands: Any, app_arguments: Callable[[argparse.ArgumentParser], None]
) -> None:
    """Register ``export`` with the settings it shares with ``start`` (``app_arguments``:
    the app, the formation, ``--restart``, ``--timeout``, ``--chaos``) and its own."""
    export: argparse.ArgumentParser = commands.add_parser(
        "export", help="write the formation as Kubernetes, Compose or systemd configuration"
    )
    export.add_argument("format", choices=FORMAT_NAMES, metavar="FORMAT",
                        help="kubernetes, compose or systemd")
    export.add_argument("outdir", metavar="OUTDIR", help="the folder to write into")
    app_arguments(export)
    export.add_argument("--image", metavar="IMAGE",
                        help="the container image (required for kubernetes and compose)")
    export.add_argument("--app", metavar="NAME",
                        help="the app's name in the export (default: the app root's folder "
                        "name as a DNS label)")
    export.add_argument("--force", action="store_true",
                        help="write into OUTDIR even if it holds files this export did not write")
    export.add_argument("--dockerfile", action="store_true",
                        help="kubernetes, compose: also write OUTDIR/Dockerfile for the app "
                        "(docker build -f OUTDIR/Dockerfile -t IMAGE APP_ROOT)")
    export.add_argument("--base-image", metavar="IMAGE",
                        help="the Dockerfile's FROM (default: python:3.12-slim, node:22-slim "
                        "or debian:bookworm-slim, from the app's files)")
    export.add_argument("--publish-all", action="store_true",
                        help="compose: publish ports on every interface (default 127.0.0.1)")
    export.add_argument("--namespace", metavar="NAME", help="kubernetes: the objects' namespace")
    export.add_argument("--include-secrets", action="store_true",
                        help="kubernetes: write the Secret with its values (mode 0600); by "
                        "default only its keys, and the kubectl line that makes it")
    export.add_argument("--user", metavar="USER[:GROUP]",
                        help="systemd: run the units as this user (User=, Group=)")
    export.add_argument("--path", metavar="PATH",
                        help="systemd: the units' PATH (e.g. the virtualenv's bin folder "
                        "first); default systemd's own")
    export.add_argument("--install-dir", metavar="DIR", default="/etc/systemd/system",
                        help="systemd: where the files will be installed, named by "
                        "EnvironmentFile= (default /etc/systemd/system)")
    export.set_defaults(handler=_export)


_FLAGS_OF = {
    "kubernetes": ("--image", "--dockerfile", "--base-image", "--namespace",
                   "--include-secrets"),
    "compose": ("--image", "--dockerfile", "--base-image", "--publish-all"),
    "systemd": ("--user", "--path", "--install-dir"),
}


def _check_flags(args: argparse.Namespace) -> None:
    from procrunner.errors import ProcrunnerError

    given = {"--image": args.image, "--dockerfile": args.dockerfile,
             "--base-image": args.base_image, "--publish-all": args.publish_all,
             "--namespace": args.namespace, "--include-secrets": args.include_secrets,
             "--user": args.user, "--path": args.path,
             "--install-dir": args.install_dir != "/etc/systemd/system"}
    for flag, value in given.items():
        if value and flag not in _FLAGS_OF[args.format]:
            what = ("systemd runs the commands on this host" if args.format == "systemd"
                    else f"{args.format} runs containers")
            raise ProcrunnerError(f"{what}: {flag} does not apply", flag)
    if args.format != "systemd" and not args.image:
        raise ProcrunnerError(f"{args.format} runs containers: give the image", "--image")
    if args.base_image and not args.dockerfile:
        raise ProcrunnerError("goes with --dockerfile", "--base-image")
    if args.install_dir and not args.install_dir.startswith("/"):
        raise ProcrunnerError(f"must be an absolute path, got {args.install_dir!r}",
                              "--install-dir")
    if args.path is not None and (not args.path or any(c.isspace() or c in "\"'\\"
                                                       for c in args.path)):
        raise ProcrunnerError("must be folders separated by ':', without spaces or quotes",
                              "--path")


def _export(args: argparse.Namespace) -> int:
    import importlib
    import os
    from pathlib import Path

    from procrunner.config.load import load
    from procrunner.export import dockerfile, warnings
    from procrunner.export.files import ExportFile, write_files
    from procrunner.export.model import (
        ExportOptions,
        Platform,
        app_label,
        build_model,
        unmapped,
    )

    _check_flags(args)
    loaded = load(args, os.environ)  # the same settings as start, from every source
    for warning in loaded.sources.warnings:
        print(f"procrunner: warning: {warning}", file=sys.stderr)
    if loaded.notice:
        print(f"procrunner: {loaded.notice}", file=sys.stderr)
    app = loaded.app
    name = app_label(args.app, given=True) if args.app else app_label(app.root.name, given=False)
    namespace = app_label(args.namespace, given=True) if args.namespace else None
    outdir = Path(args.outdir)
    options = ExportOptions(outdir, name, args.image, namespace=namespace,
                            publish_all=args.publish_all, include_secrets=args.include_secrets,
                            user=args.user, path=args.path, install_dir=Path(args.install_dir))
    model = build_model(app, loaded.settings.run, options)
    exporter = importlib.import_module(f"procrunner.export.{args.format}")
    render: Callable[[ExportModel], Sequence[ExportFile]] = exporter.render
    files = list(render(model))
    if args.dockerfile:
        files.append(dockerfile.render(app.root, args.base_image))
    kept = _user_files(model, args.format)
    ignored = sorted({f.name for f in files if f.private} | kept)
    if ignored:  # the files that hold values stay out of version control
        files.append(ExportFile(".gitignore", "# values: never commit them\n"
                                + "".join(f"/{n}\n" for n in ignored)))
    write_files(outdir, files, args.force, frozenset(kept))
    shown = (f"{f.name} (mode 0600)" if f.private else f.name for f in files)
    print(f"wrote {', '.join(shown)} to {outdir}")
    _print_next_steps(model, args.format)
    lines = (warnings.systemd_warnings(model) if args.format == "systemd"
             else warnings.container_warnings(model))
    platform: Platform = exporter.PLATFORM
    notes = unmapped(model, platform)
    if notes:
        lines.append(f"not exported to {args.format}: {'; '.join(notes)}")
    for line in lines:
        print(f"procrunner: warning: {line}", file=sys.stderr)
    return 0


def _user_files(model: ExportModel, fmt: str) -> set[str]:
    from procrunner.export import kubernetes

    if fmt == "kubernetes" and model.secret_keys and not model.options.include_secrets:
        return {kubernetes.secret_values_file(model)}
    return set()


def _print_next_steps(model: ExportModel, fmt: str) -> None:
    from procrunner.export import kubernetes

    if not model.secret_keys or fmt != "kubernetes":
        return
    keys = ", ".join(model.secret_keys)
    if model.options.include_secrets:
        print(f"values that look secret ({keys}) are in {model.app}.secret.yaml (mode 0600), "
              "not in the ConfigMap")
    else:
        print(f"values that look secret ({keys}) are not written: put them in "
              f"{kubernetes.secret_values_file(model)} (see "
              f"{kubernetes.secret_keys_file(model)}), then: "
              f"{kubernetes.create_secret_command(model)}")
