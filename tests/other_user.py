"""What a test runs as another user (``nobody``) must be readable by that user wherever the
repository was cloned: in a home folder of mode 0700, or under /root, it is not. Such a test
runs a copy, in a temporary folder that every user may read."""

from __future__ import annotations

import shutil
from pathlib import Path

import procrunner

PACKAGE = Path(procrunner.__file__).parent


def readable_copy(into: Path, *sources: Path) -> None:
    """Copy each file or folder of ``sources`` into ``into`` (made if missing, bytecode left
    out), then let every user read all of ``into``: folders 0755, files 0644."""
    into.mkdir(parents=True, exist_ok=True)
    for source in sources:
        if source.is_dir():
            ignored = shutil.ignore_patterns("__pycache__")
            shutil.copytree(source, into / source.name, ignore=ignored)
        else:
            shutil.copy(source, into / source.name)
    for path in [into, *into.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
