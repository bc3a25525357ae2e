"""What a client of the supervisor (the control socket, the dashboard through it) may see
and ask, as a Protocol the ``Supervisor`` satisfies, and ``Ask``: a client's request,
carried out inside the supervisor's loop in order with every event. The core never imports
its clients; they import this."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from procrunner.config.chaos_spec import ChaosSpec
from procrunner.config.settings import RunOptions
from procrunner.supervise.chaos import ChaosSchedule
from procrunner.supervise.events import Event
from procrunner.supervise.instance import Instance


@dataclass(frozen=True)
class Scaled:
    """What a scale did: instances started (or held for their dependencies), instances
    being stopped, and instances whose start failed."""

    started: tuple[str, ...]
    stopping: tuple[str, ...]
    failed: tuple[str, ...]


class Handle(Protocol):
    """A read-only view of the formation, and every verb that changes it. Each verb takes
    instance names and raises ``ProcrunnerError`` when it cannot be done."""

    @property
    def stopping(self) -> bool: ...

    @property
    def instances(self) -> Mapping[str, Instance]: ...

    @property
    def type_names(self) -> Sequence[str]: ...

    @property
    def options(self) -> RunOptions: ...

    @property
    def chaos(self) -> ChaosSchedule: ...

    def restart(self, name: str) -> None: ...

    def stop(self, name: str) -> None: ...

    def stop_all(self, reason: str) -> None: ...

    def scale(self, counts: Mapping[str, int]) -> Scaled: ...

    def kill(self, name: str, signum: int) -> None: ...

    def chaos_kill(self, name: str, signum: int) -> None: ...

    def chaos_on(self, spec: ChaosSpec) -> None: ...

    def chaos_off(self) -> None: ...


@dataclass(frozen=True)
class Ask:
    """A client's request: ``act`` runs inside the loop against the supervisor; its result,
    or the ``ProcrunnerError`` it raised, answers ``reply`` (unless the client left)."""

    act: Callable[[Handle], Any]
    reply: asyncio.Future[Any]


Incoming = Event | Ask  # what the supervisor's queue carries
