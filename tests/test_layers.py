"""Arrows point down: config at the bottom, the core (supervise) above output and scratch, control
and the front doors above the core, run and cli on top; no import cycle. Every import counts,
those inside functions and under TYPE_CHECKING too."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "procrunner"
# modules of procrunner's top level that import nothing of procrunner: below every layer
LEAVES = {"procrunner.errors", "procrunner.markers", "procrunner.platform"}
# what each layer may import beyond itself, the leaves and config
ABOVE_THE_CORE = ("procrunner.control", "procrunner.run", "procrunner.cli", "procrunner.router",
                  "procrunner.export", "procrunner.dashboard", "procrunner.demo")


def procrunner_imports(path: Path) -> set[str]:
    """The procrunner modules ``path`` imports (``from procrunner.x import y`` counts as
    ``procrunner.x.y`` where y is a module)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
            names += [f"{node.module}.{alias.name}" for alias in node.names
                      if _is_module(f"{node.module}.{alias.name}")]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        found |= {name for name in names if name.split(".")[0] == "procrunner"}
    return found


def _is_module(name: str) -> bool:
    relative = Path(*name.split(".")[1:])
    return (PACKAGE / relative).with_suffix(".py").is_file() or (PACKAGE / relative).is_dir()


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    return {module_name(path): procrunner_imports(path) for path in PACKAGE.rglob("*.py")}


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


@pytest.mark.parametrize("layer", ["supervise", "output", "scratch"])
def test_the_core_imports_neither_control_nor_the_front_doors(layer: str) -> None:
    wrong = {name: {i for i in imports if i.startswith(ABOVE_THE_CORE)}
             for name, imports in import_graph().items() if name.startswith(f"procrunner.{layer}")}
    assert {name: found for name, found in wrong.items() if found} == {}


def test_output_and_scratch_are_below_the_core() -> None:
    graph = import_graph()
    upward = {name: {i for i in imports if i.startswith("procrunner.supervise")}
              for name, imports in graph.items()
              if name.startswith(("procrunner.output", "procrunner.scratch"))}
    assert {name: found for name, found in upward.items() if found} == {}


def test_the_front_doors_use_config_and_the_event_types_not_the_core() -> None:
    event_types = {"procrunner.supervise", "procrunner.supervise.facts",
                   "procrunner.supervise.states"}
    graph = import_graph()
    wrong = {name: {i for i in imports if i.startswith("procrunner.supervise")} - event_types
             for name, imports in graph.items()
             if name.startswith(("procrunner.router", "procrunner.export", "procrunner.dashboard"))}
    assert {name: found for name, found in wrong.items() if found} == {}


def test_no_import_cycle() -> None:
    graph = import_graph()
    done: set[str] = set()

    def visit(name: str, path: list[str]) -> None:
        if name in path:
            raise AssertionError("import cycle: " + " -> ".join([*path[path.index(name):], name]))
        if name in done:
            return
        for imported in sorted(graph.get(name, ())):
            visit(imported, [*path, name])
        done.add(name)

    for name in sorted(graph):
        visit(name, [])


def test_export_imports_only_config_errors_and_itself() -> None:
    config = {f"procrunner.config.{path.stem}" for path in (PACKAGE / "config").glob("*.py")}
    assert outside("export", {"procrunner.errors", *config}) == {}


def test_the_walk_sees_imports_in_functions_and_under_type_checking(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text("if TYPE_CHECKING:\n    from procrunner.run import x\n"
                      "def f():\n    import procrunner.cli\n")
    assert procrunner_imports(sample) == {"procrunner.run", "procrunner.cli"}
