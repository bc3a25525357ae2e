"""``depends_on``: what a held instance still waits for. A type it needs is met when each of
its instances is: ``ready`` when RUNNING (or completed: a one-shot step that finished
cleanly was ready), ``completed`` when its life exited 0 and it stays down. An instance
that stays down after a failure (exited non-zero, or fatal) fails its dependants' wait:
they stay held, and say why. A type with no instances is met."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from procrunner.config.settings import Condition
from procrunner.supervise.instance import Held, Instance
from procrunner.supervise.states import State


def holding(instances: Iterable[Instance], needed: Mapping[str, Condition]) -> Held | None:
    """What ``needed`` still lacks among ``instances``, or None when every condition holds."""
    by_type: dict[str, list[Instance]] = {}
    for instance in instances:
        by_type.setdefault(instance.spec.type_name, []).append(instance)
    waiting: list[tuple[str, Condition]] = []
    failed: str | None = None
    for type_name, condition in needed.items():
        members = by_type.get(type_name, [])
        if all(_met(member, condition) for member in members):
            continue
        waiting.append((type_name, condition))
        failure = next((_failure(m) for m in members if _failure(m) is not None), None)
        failed = failed or failure
    return Held(tuple(waiting), failed) if waiting else None


def _met(instance: Instance, condition: Condition) -> bool:
    if instance.completed:
        return True
    return condition == "ready" and instance.state is State.RUNNING


def _failure(instance: Instance) -> str | None:
    """``migrate.1#1 exited 1`` for an instance that failed and stays down."""
    down = instance.state is State.FATAL or (
        instance.state is State.EXITED and not instance.completed)
    if not down:
        return None
    how = instance.history[-1].how if instance.history else instance.state.value
    return f"{instance.label} {how}"
