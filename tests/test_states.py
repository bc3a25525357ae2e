"""The transition table, and exit statuses decoded for people."""

from __future__ import annotations

import itertools
import signal

import pytest

from procrunner.supervise.incarnation import ExitStatus
from procrunner.supervise.states import ALLOWED, IllegalTransition, State, check_transition

LEGAL = {
    (State.STOPPED, State.STARTING),
    (State.STARTING, State.RUNNING),
    (State.STARTING, State.STOPPING),
    (State.RUNNING, State.STOPPING),
    (State.STOPPING, State.STOPPED),
    (State.STOPPING, State.EXITED),
    (State.STOPPING, State.BACKOFF),
    (State.STOPPING, State.FATAL),
    (State.BACKOFF, State.STARTING),
    (State.BACKOFF, State.STOPPED),
    (State.EXITED, State.STARTING),
    (State.FATAL, State.STARTING),
}


@pytest.mark.parametrize(("old", "new"), list(itertools.product(State, State)))
def test_only_the_arrows_in_the_table_are_allowed(old: State, new: State) -> None:
    if (old, new) in LEGAL:
        check_transition("web.1", old, new)
    else:
        with pytest.raises(IllegalTransition, match=f"web.1: {old.value} -> {new.value}"):
            check_transition("web.1", old, new)


def test_every_state_has_a_row() -> None:
    assert set(ALLOWED) == set(State)


@pytest.mark.parametrize(
    ("status", "shell_code", "text"),
    [
        (ExitStatus(code=0), 0, "exited 0"),
        (ExitStatus(code=1), 1, "exited 1"),
        (ExitStatus(code=127), 127, "exited 127 (command not found)"),
        (ExitStatus(code=126), 126, "exited 126 (command not executable)"),
        (ExitStatus(signal=signal.SIGKILL), 137, "killed by SIGKILL (out of memory?)"),
        (ExitStatus(signal=signal.SIGSEGV), 139, "killed by SIGSEGV"),
    ],
)
def test_exit_statuses_are_decoded(status: ExitStatus, shell_code: int, text: str) -> None:
    assert status.shell_code == shell_code
    assert status.describe() == text
