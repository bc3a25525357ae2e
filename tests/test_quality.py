"""The code stays ruff and mypy --strict clean, and the README documents every option."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from procrunner.cli import build_parser

ROOT = Path(__file__).resolve().parent.parent


def test_ruff_is_clean() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "."], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_strict_is_clean() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "procrunner"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def _options(parser: argparse.ArgumentParser) -> set[str]:
    found: set[str] = set()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                found |= _options(sub)
        else:
            found |= {s for s in action.option_strings if s not in ("-h", "--help")}
    return found


def test_every_command_line_option_is_in_the_readme() -> None:
    readme = (ROOT / "README.md").read_text()
    missing = sorted(o for o in _options(build_parser()) if f"`{o}" not in readme)
    assert not missing, f"options missing from README.md: {missing}"


def test_every_setting_key_and_variable_is_in_the_readme() -> None:
    from procrunner.config.model import SETTINGS

    readme = (ROOT / "README.md").read_text()
    names = [f"`{s.name}`" for s in SETTINGS] + [f"`{s.variable}`" for s in SETTINGS if s.variable]
    missing = [name for name in names if name not in readme]
    assert not missing, f"settings missing from README.md: {missing}"
