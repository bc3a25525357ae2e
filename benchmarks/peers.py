"""How each runner (and the two raw baselines) is invoked.

A runner gets a Procfile and, optionally, a count of instances for its one process type;
without a count every type runs once (the default formation of every runner here).
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
PEERS = HERE / ".peers"
PROCRUNNER = HERE / ".peers" / "procrunner-venv" / "bin" / "procrunner"  # install_peers.sh

Argv = Callable[[Path, str, int | None], list[str]]


@dataclass(frozen=True)
class Runner:
    name: str
    command: tuple[str, ...]  # the executable (and any fixed leading arguments)
    argv: Argv  # (procfile, process type, count or None) -> command line
    version: tuple[str, ...]  # arguments that print the version
    reference: bool = False  # a baseline: throughput only, no supervisor to measure

    def check(self) -> str:
        """The runner's version line; RuntimeError says why it cannot run here."""
        if self.reference:
            return ""
        if not shutil.which(self.command[0]):
            raise RuntimeError(f"{self.command[0]} not found")
        probe = [*self.command, *self.version]
        try:
            done = subprocess.run(probe, capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise RuntimeError(f"`{shlex.join(probe)}`: {exc}") from exc
        lines = (done.stdout + done.stderr).strip().splitlines() or ["?"]
        if done.returncode != 0:
            raise RuntimeError(f"`{shlex.join(probe)}` failed: {lines[-1]}")
        return lines[0]


def procfile_commands(procfile: Path) -> list[str]:
    """The commands of a Procfile, in order (for the baselines)."""
    lines = procfile.read_text().splitlines()
    return [ln.split(":", 1)[1].strip() for ln in lines if ln and not ln.startswith("#")]


def shell_argv(procfile: Path, count: int | None, relay: str) -> list[str]:
    """Every Procfile command once, in one shell, each piped through relay (if any)."""
    if count is not None:
        raise ValueError("a baseline runs each Procfile command once")
    jobs = " & ".join(f"( {cmd} ){relay}" for cmd in procfile_commands(procfile))
    return ["sh", "-c", f"{jobs} & wait"]


def baseline_argv(procfile: Path, ptype: str, count: int | None) -> list[str]:
    """No runner at all: the writers share the reader's pipe."""
    return shell_argv(procfile, count, "")


def cat_relay_argv(procfile: Path, ptype: str, count: int | None) -> list[str]:
    """The cheapest possible relay: one cat per writer, copying its pipe to the reader's."""
    return shell_argv(procfile, count, " | cat")


def honcho_exe() -> str:
    return str(PEERS / "honcho-venv" / "bin" / "honcho")


def nf_exe() -> str:
    return str(PEERS / "node" / "node_modules" / ".bin" / "nf")


def runners(procrunner: tuple[str, ...] = (str(PROCRUNNER),)) -> list[Runner]:
    """The baselines, then procrunner (its command can be overridden), then the peers."""
    honcho, nf = honcho_exe(), nf_exe()
    return [
        Runner("baseline", ("sh",), baseline_argv, (), reference=True),
        Runner("cat-relay", ("sh",), cat_relay_argv, (), reference=True),
        Runner(
            "procrunner",
            procrunner,
            lambda pf, t, n: [
                *procrunner, "start", "-f", str(pf), "--no-color",
                *(["-m", f"all={n}"] if n else []),
            ],
            ("--version",),
        ),
        Runner(
            "honcho",
            (honcho,),
            lambda pf, t, n: [
                honcho, "start", "-f", str(pf), "--no-colour", *(["-c", f"{t}={n}"] if n else []),
            ],
            ("--version",),
        ),
        Runner(
            "foreman",
            ("foreman",),
            lambda pf, t, n: [
                "foreman", "start", "-f", str(pf), "--no-color", *(["-m", f"{t}={n}"] if n else []),
            ],
            ("version",),
        ),
        Runner(
            "node-foreman",
            (nf,),
            lambda pf, t, n: [nf, "start", "-j", str(pf), *([f"{t}={n}"] if n else [])],
            ("--version",),
        ),
    ]  # fmt: skip
