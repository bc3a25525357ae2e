"""What an incarnation's process tree holds in memory: RSS and, where readable, USS.

USS (memory unique to the tree) is what really dies with it; RSS counts shared libraries
too. psutil reads USS from /proc/PID/smaps_rollup, which costs a fraction of a millisecond
per process, so sampling every few seconds stays cheap.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import psutil

from procrunner.supervise import tree

Key = tuple[str, int]
Samples = tuple[tuple[str, int, "Memory"], ...]


@dataclass(frozen=True)
class Memory:
    """An incarnation tree's memory in bytes; USS is None where it could not be read."""

    rss: int
    uss: int | None

    @property
    def best(self) -> int:
        """USS where it could be read for every process, else RSS."""
        return self.uss if self.uss is not None else self.rss


def measure(procs: list[psutil.Process]) -> Memory | None:
    """The sum over a tree's processes; None when none could be read."""
    rss = uss = 0
    read = uss_missing = False
    for proc in procs:
        try:
            rss += proc.memory_info().rss
        except (psutil.Error, OSError):
            continue
        read = True
        try:
            uss += proc.memory_full_info().uss
        except (psutil.Error, OSError):
            uss_missing = True
    if not read:
        return None
    return Memory(rss, None if uss_missing else uss)


def measure_all(targets: Mapping[Key, tree.Target]) -> Samples:
    """The memory of several incarnations' trees, in one pass over the process table."""
    samples = []
    for (name, number), procs in tree.members_of(targets).items():
        memory = measure(procs)
        if memory is not None:
            samples.append((name, number, memory))
    return tuple(samples)

