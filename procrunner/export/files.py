"""Writing an export: each file atomically, env and secret files 0600, and a manifest of
what the export owns, so that a second export replaces its own files (and removes those it no
longer writes) but never overwrites a file someone else put in OUTDIR without ``--force``."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

from procrunner.errors import ProcrunnerError

MANIFEST = ".procrunner-export"
PRIVATE_MODE = 0o600
PUBLIC_MODE = 0o644


@dataclass(frozen=True)
class ExportFile:
    name: str  # inside OUTDIR
    text: str
    private: bool = False  # holds environment values: mode 0600


def _owned(outdir: Path) -> set[str]:
    manifest = outdir / MANIFEST
    if not manifest.is_file():
        return set()
    names = manifest.read_text(encoding="utf-8").split("\n")[1:]
    return {n for n in names if n and "/" not in n and n not in (".", "..")}


def write_files(outdir: Path, files: Sequence[ExportFile], force: bool,
                kept: frozenset[str] = frozenset()) -> None:
    """``kept``: files the user keeps in OUTDIR (values the export names but never writes):
    never a reason to refuse, never removed."""
    try:
        _write_files(outdir, files, force, kept)
    except OSError as exc:
        raise ProcrunnerError(f"cannot write the export: {exc.strerror or exc}",
                              exc.filename or str(outdir)) from None


def _write_files(outdir: Path, files: Sequence[ExportFile], force: bool,
                 kept: frozenset[str]) -> None:
    if outdir.exists() and not outdir.is_dir():
        raise ProcrunnerError("exists and is not a folder", str(outdir))
    owned = _owned(outdir) if outdir.exists() else set()
    if outdir.exists() and not force:
        ours = owned | kept | {MANIFEST}
        foreign = sorted(p.name for p in outdir.iterdir() if p.name not in ours)
        if foreign:
            more = f" and {len(foreign) - 1} more" if len(foreign) > 1 else ""
            raise ProcrunnerError(
                f"holds files this export did not write ({foreign[0]}{more}); "
                "use --force to write into it anyway", str(outdir))
    outdir.mkdir(parents=True, exist_ok=True)
    for file in files:
        _write_atomically(outdir / file.name, file.text,
                          PRIVATE_MODE if file.private else PUBLIC_MODE)
    names = sorted(f.name for f in files)
    for stale in sorted(owned - set(names) - kept):
        (outdir / stale).unlink(missing_ok=True)
    listing = "# files written by procrunner export; it may replace or remove them\n"
    _write_atomically(outdir / MANIFEST, listing + "".join(f"{n}\n" for n in names), PUBLIC_MODE)


def _write_atomically(path: Path, text: str, mode: int) -> None:
    """A temporary file in the same folder, given its mode before any byte is written, then
    renamed over the target: a reader sees the old file or the new one, never a part."""
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            os.fchmod(handle.fileno(), mode)
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


def yaml_text(*documents: object) -> str:
    """YAML documents with sorted keys and no line folding: the same input, the same bytes."""
    return yaml.safe_dump_all(documents, sort_keys=True, default_flow_style=False,
                              allow_unicode=True, width=1_000_000)
