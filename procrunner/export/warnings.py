"""What will not work once the formation runs elsewhere: one line each, printed as warnings.

In a container, 127.0.0.1 is the container's own loopback, and a file is the container's own
copy. Under systemd, a program named without its folder is looked up in systemd's PATH, not
the developer's.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

from procrunner.export.model import ExportModel, ExportType
from procrunner.export.systemd import PRIVATE_TMP_HIDES

_LOOPBACK = re.compile(r"(?<![\w.])(127\.0\.0\.1|localhost)(?![\w.])")
_SQLITE_URL = re.compile(r"sqlite3?(\+\w+)?:", re.IGNORECASE)
_NOT_A_PROGRAM = frozenset({"exec", "env", "nohup", "!"})
_SHELL_BUILTINS = frozenset({"cd", "export", "set", "true", "false", ":", ".", "source", "test",
                             "[", "echo", "printf", "trap", "umask", "ulimit", "wait", "sleep"})
BACKING_REASON = ("a backing service is an attached resource reached by a URL in the config "
                  "(twelve-factor IV): use a database server, not a file")


def container_warnings(model: ExportModel) -> list[str]:
    warnings = [f"{kind.name} binds {match.group(1)}: in a container only that container "
                f"reaches it; bind 0.0.0.0 (the export sets HOST=0.0.0.0)"
                for kind in model.types if (match := _LOOPBACK.search(kind.command))]
    files = [f"{key} (a SQLite URL)" for key, value in model.env.items()
             if _SQLITE_URL.match(value)]
    files += [f"backing path {path}" for kind in model.types
              for path in model.run.for_type(kind.name).backing]
    if files:
        named = list(dict.fromkeys(files))
        verb = "is a local file" if len(named) == 1 else "are local files"
        warnings.append(f"{', '.join(named)} {verb}: each container gets its own copy; "
                        f"{BACKING_REASON}")
    return warnings


def program(kind: ExportType) -> str | None:
    """The program a command runs (past ``exec`` and leading assignments), when it can tell."""
    try:
        words = shlex.split(kind.command)
    except ValueError:
        return None
    for word in words:
        if word not in _NOT_A_PROGRAM and "=" not in word:
            return None if word in _SHELL_BUILTINS else word
    return None


def systemd_warnings(model: ExportModel) -> list[str]:
    warnings = []
    if model.options.path is None:
        relative = [f"{kind.name} ({name})" for kind in model.types
                    if (name := program(kind)) is not None and not Path(name).is_absolute()]
        if relative:
            warnings.append(f"{', '.join(relative)} named without a folder: the unit's PATH is "
                            "systemd's, not yours; give --path (e.g. your virtualenv's bin "
                            "folder first) or an absolute path")
    hiding = [folder for folder in PRIVATE_TMP_HIDES if model.root.is_relative_to(folder)]
    if hiding:
        warnings.append(f"the app root {model.root} is under {hiding[0]}, which PrivateTmp= "
                        "hides from the units: they bind it back in (BindPaths=); install the "
                        "app elsewhere (e.g. /srv) for a server")
    return warnings
