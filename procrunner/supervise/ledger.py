"""The summary's ledger: one record per instance name over the whole run (every life, its
recoveries, its last state), kept by following the supervisor's facts."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from procrunner.config.formation import InstanceSpec
from procrunner.supervise import facts as f
from procrunner.supervise.events import EndedIncarnation
from procrunner.supervise.states import State


@dataclass
class Record:
    """Everything the facts told of one instance name over the run."""

    spec: InstanceSpec
    state: State = State.STOPPED
    lives: int = 0
    history: list[EndedIncarnation] = field(default_factory=list)
    recoveries: list[float] = field(default_factory=list)


class Ledger:
    """The summary's subscription to the facts: one record per instance name."""

    def __init__(self) -> None:
        self.records: dict[str, Record] = {}

    def follow(self, fact: f.Fact) -> None:
        match fact:
            case f.Added(specs):
                for spec in specs:
                    self.records.setdefault(spec.name, Record(spec))
            case f.StateChanged(name, _, number, state):
                self.records[name].state = state
                self.records[name].lives = number
            case f.FailedToStart(name, number):
                self.records[name].lives = number
            case f.Ended(name, ended):
                self.records[name].history.append(ended)
            case f.BecameReady(name, recovered=recovered) if recovered is not None:
                self.records[name].recoveries.append(recovered)

    def in_order(self, type_names: Sequence[str]) -> dict[str, Record]:
        """By Procfile order, then slot."""
        order = sorted(
            self.records.values(),
            key=lambda r: (type_names.index(r.spec.type_name), r.spec.slot),
        )
        return {r.spec.name: r for r in order}
