"""What a client command (``ps``, ``stop``, ``logs``, ``dashboard``...) reads to find a running
formation: the app root, and the control socket that ``start`` chose there.

Only the sources a client needs: its own ``-d``, ``-f`` and ``--socket``, the
``PROCRUNNER_SOCKET`` variable and the ``socket`` key of ``procrunner.yml``. Never ``.env``
nor the Procfile's content: a client must reach a formation whatever else is wrong with the
app (a broken ``.env`` must not keep ``procrunner stop`` from stopping it).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from procrunner.config.model import SOCKET_VARIABLE
from procrunner.config.sources import file_setting
from procrunner.errors import ProcrunnerError


def find_root(start: Path) -> Path | None:
    """The nearest folder, upward from ``start``, that holds a Procfile."""
    for folder in (start, *start.parents):
        if (folder / "Procfile").is_file():
            return folder
    return None


def app_root(root: str | None, procfile: str | None) -> Path:
    """``-d``, else the folder of ``-f``, else the nearest folder upward with a Procfile."""
    if root:
        return Path(root).resolve()
    if procfile:
        return Path(procfile).resolve().parent
    here = Path.cwd()
    found = find_root(here)
    if found is None:
        raise ProcrunnerError(
            "no Procfile here or in any parent folder; give the app root with -d", str(here)
        )
    return found


def configured_socket(explicit: str | None, root: Path, os_env: Mapping[str, str]
                      ) -> Path | None:
    """``--socket``, else ``PROCRUNNER_SOCKET``, else ``socket:`` in the app's procrunner.yml
    (relative to its folder), as ``start`` chose; None: the per-user default for the root."""
    if explicit:
        return Path(explicit).absolute()
    if os_env.get(SOCKET_VARIABLE):
        return Path(os_env[SOCKET_VARIABLE]).absolute()
    value = file_setting(root, "socket")
    if value is None:
        return None
    assert isinstance(value.value, Path)
    return value.value.absolute()
