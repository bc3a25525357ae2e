"""``procrunner export FORMAT OUTDIR``: the command line. Light on purpose: the exporters,
the app loader and yaml are imported only when the command runs."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import Any

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
    export.set_defaults(handler=_export)


def _export(args: argparse.Namespace) -> int:
    import importlib
    import os
    from pathlib import Path

    from procrunner.config.load import load
    from procrunner.errors import ProcrunnerError
    from procrunner.export.files import ExportFile, write_files
    from procrunner.export.model import (
        ExportModel,
        ExportOptions,
        Platform,
        app_label,
        build_model,
        unmapped,
    )

    if args.format == "systemd" and args.image:
        raise ProcrunnerError("systemd runs the commands on this host: no image", "--image")
    if args.format != "systemd" and not args.image:
        raise ProcrunnerError(f"{args.format} runs containers: give the image", "--image")
    loaded = load(args, os.environ)  # the same settings as start, from every source
    for warning in loaded.sources.warnings:
        print(f"procrunner: warning: {warning}", file=sys.stderr)
    if loaded.notice:
        print(f"procrunner: {loaded.notice}", file=sys.stderr)
    app = loaded.app
    name = app_label(args.app, given=True) if args.app else app_label(app.root.name, given=False)
    outdir = Path(args.outdir)
    options = ExportOptions(outdir, name, args.image)
    model = build_model(app, loaded.settings.run, options)
    exporter = importlib.import_module(f"procrunner.export.{args.format}")
    render: Callable[[ExportModel], Sequence[ExportFile]] = exporter.render
    files = render(model)
    write_files(outdir, files, args.force)
    shown = (f"{f.name} (mode 0600)" if f.private else f.name for f in files)
    print(f"wrote {', '.join(shown)} to {outdir}")
    if model.secret_keys and args.format == "kubernetes":
        print(f"values that look secret ({', '.join(model.secret_keys)}) are in "
              f"{name}.secret.yaml (mode 0600), not in the ConfigMap")
    platform: Platform = exporter.PLATFORM
    notes = unmapped(model, platform)
    if notes:
        print(f"procrunner: warning: not exported to {args.format}: {'; '.join(notes)}",
              file=sys.stderr)
    return 0
