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
    assert not loaded & {"asyncio", "dotenv", "psutil", "procrunner.run"}


def test_start_builds_only_its_own_parser() -> None:
    """The client commands, the dashboard and export are not even imported by ``start``."""
    loaded = _modules_after("from procrunner.cli import build_parser\nbuild_parser('start')")
    others = {
        "procrunner.control.client", "procrunner.control.commands", "procrunner.dashboard.command"
    }
    assert not loaded & {*others, "procrunner.export.command"}
    assert others <= _modules_after("from procrunner.cli import build_parser\nbuild_parser()")


_LEAN_START = (
    "from procrunner.cli import _lean_imports\n"
    "with _lean_imports():\n"
    "    import procrunner.run\n"
)


def test_start_imports_its_machinery_without_openssl() -> None:
    loaded = _modules_after(_LEAN_START)
    assert "procrunner.run" in loaded
    assert not loaded & {"ssl", "_ssl", "_hashlib"}


def test_start_imports_the_router_only_when_asked_for() -> None:
    assert "procrunner.router" not in _modules_after(_LEAN_START)


def test_the_imported_objects_are_frozen_out_of_garbage_collection() -> None:
    """Else the first collection after the imports walks every object they made (~12 ms)."""
    probe = _LEAN_START + "import gc\nprint(gc.get_freeze_count(), gc.isenabled())"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    frozen, enabled = result.stdout.split()
    assert int(frozen) > 10_000 and enabled == "True"


def test_ssl_stays_importable_after_startup() -> None:
    """For whoever needs it later in the run (watchfiles, with --audit)."""
    assert "_ssl" in _modules_after(_LEAN_START + "import ssl")


def test_the_watchdog_helper_imports_little() -> None:
    loaded = _modules_after("import procrunner.supervise.watchdog")
    assert not loaded & {"subprocess", "typing", "asyncio", "psutil"}


def test_a_client_command_imports_neither_asyncio_nor_psutil() -> None:
    """``procrunner ps`` finds its socket (through the scratch module) without loading the
    supervisor's machinery: a client should start in tens of milliseconds."""
    loaded = _modules_after(
        "import contextlib, sys\nsys.argv = ['procrunner', 'ps', '-d', '/nonexistent']\n"
        "from procrunner.cli import main\n"
        "with contextlib.suppress(SystemExit):\n    main()\n"
    )
    assert "procrunner.control.client" in loaded
    assert not loaded & {"asyncio", "psutil", "dotenv", "yaml"}
