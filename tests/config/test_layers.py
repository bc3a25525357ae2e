"""Arrows point down: config imports nothing above it, and export reads only config. Every
import counts, those inside functions and under TYPE_CHECKING too."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "procrunner"
# modules of procrunner's top level that import nothing of procrunner: below every layer
LEAVES = {"procrunner.errors", "procrunner.markers"}


def procrunner_imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        found |= {name for name in names if name.split(".")[0] == "procrunner"}
    return found


def outside(folder: str, allowed: set[str]) -> dict[str, set[str]]:
    """Each module of ``folder`` with what it imports beyond itself and ``allowed``."""
    own = f"procrunner.{folder}"
    wrong = {}
    for path in sorted((PACKAGE / folder).glob("*.py")):
        beyond = {name for name in procrunner_imports(path)
                  if name != own and not name.startswith(f"{own}.") and name not in allowed}
        if beyond:
            wrong[path.name] = beyond
    return wrong


@pytest.mark.parametrize("leaf", sorted(LEAVES))
def test_the_leaves_import_nothing_of_procrunner(leaf: str) -> None:
    path = PACKAGE / f"{leaf.removeprefix('procrunner.')}.py"
    assert procrunner_imports(path) == set()


def test_config_imports_nothing_above_it() -> None:
    assert outside("config", LEAVES) == {}


def test_export_imports_only_config_errors_and_itself() -> None:
    config = {f"procrunner.config.{path.stem}" for path in (PACKAGE / "config").glob("*.py")}
    assert outside("export", {"procrunner.errors", *config}) == {}


def test_the_walk_sees_imports_in_functions_and_under_type_checking(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text("if TYPE_CHECKING:\n    from procrunner.run import x\n"
                      "def f():\n    import procrunner.cli\n")
    assert procrunner_imports(sample) == {"procrunner.run", "procrunner.cli"}
