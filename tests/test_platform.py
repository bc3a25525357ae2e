"""One seam for the platform: no Linux-only call lives outside ``procrunner/platform.py``."""

from __future__ import annotations

import ast
from pathlib import Path

import procrunner

PACKAGE = Path(procrunner.__file__).parent
SEAM = PACKAGE / "platform.py"
LINUX_NAMES = {"pidfd_open", "pidfd_send_signal", "waitid", "O_PATH", "SO_PEERCRED", "prctl"}
LINUX_TEXT = ("/proc/", "/sys/fs/cgroup", "cgroup.procs", "cgroup.kill", "mountinfo", "umount")


def linux_calls(path: Path) -> list[str]:
    """Names and string literals (docstrings aside) that only Linux has, with their lines."""
    tree = ast.parse(path.read_text())
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    found = []
    for node in ast.walk(tree):
        name = node.attr if isinstance(node, ast.Attribute) else getattr(node, "id", None)
        if name in LINUX_NAMES or (isinstance(name, str) and name.startswith("PR_SET")):
            found.append(f"{path.name}:{node.lineno}: {name}")
        if isinstance(node, ast.Constant) and isinstance(node.value, str | bytes):
            value = node.value
            text = value if isinstance(value, str) else value.decode(errors="replace")
            linux = text in LINUX_NAMES or any(word in text for word in LINUX_TEXT)  # getattr
            if id(node) not in docstrings and linux:
                found.append(f"{path.name}:{node.lineno}: {text!r}")
    return found


def test_no_linux_only_call_lives_outside_the_platform_module() -> None:
    outside = [
        hit for path in sorted(PACKAGE.rglob("*.py")) if path != SEAM for hit in linux_calls(path)
    ]
    assert outside == []


def test_the_check_finds_the_calls_the_platform_module_makes() -> None:
    """The check can fail: it sees what platform.py itself does."""
    hits = "\n".join(linux_calls(SEAM))
    for expected in ("pidfd_open", "waitid", "O_PATH", "SO_PEERCRED", "/proc/", "cgroup.kill"):
        assert expected in hits
