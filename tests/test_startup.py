"""Startup cost: each command imports only what it uses (see ``cli._lean_imports``)."""

from __future__ import annotations

import subprocess
import sys


def _modules_after(code: str) -> set[str]:
    """The modules a fresh interpreter holds after running ``code``."""
    probe = f"{code}\nimport sys\nprint(' '.join(sys.modules))"
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )
    return set(result.stdout.split())


def test_the_command_line_imports_no_supervisor_machinery() -> None:
    loaded = _modules_after("import procrunner.cli")
    assert not loaded & {"asyncio", "dotenv", "psutil", "procrunner.session"}


_LEAN_START = (
    "from procrunner.cli import _lean_imports\n"
    "with _lean_imports():\n"
    "    import procrunner.session\n"
)


def test_start_imports_its_machinery_without_openssl() -> None:
    loaded = _modules_after(_LEAN_START)
    assert "procrunner.session" in loaded
    assert not loaded & {"ssl", "_ssl", "_hashlib"}


def test_ssl_stays_importable_after_startup() -> None:
    """For whoever needs it later in the run (watchfiles, with --audit)."""
    assert "_ssl" in _modules_after(_LEAN_START + "import ssl")


def test_the_watchdog_helper_imports_little() -> None:
    loaded = _modules_after("import procrunner.watchdog")
    assert not loaded & {"subprocess", "typing", "asyncio", "psutil"}
