"""What every demo process reads from its environment, and how each one starts and stops.

Every setting is an environment variable (twelve-factor config); a bad value is one line on
stderr and exit status 2. SIGTERM and SIGINT end a part cleanly with status 0.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import FrameType
from typing import NoReturn

MANUAL_RUN = "manual"


class DemoError(Exception):
    """Reported as one line on stderr; exit status 2 (bad configuration) unless told."""

    def __init__(self, message: str, status: int = 2) -> None:
        super().__init__(message)
        self.status = status


class Stopped(BaseException):
    """Raised in the main thread by SIGTERM or SIGINT, so cleanup code can run."""


@dataclass(frozen=True)
class Identity:
    """Who this process is: the run it belongs to and its incarnation (``web.1#3``)."""

    run: str
    instance: str
    incarnation: str

    @property
    def label(self) -> str:
        """The incarnation without the run id: ``web.1#3``."""
        return self.incarnation.rpartition("/")[2]


def identity(env: Mapping[str, str], type_name: str) -> Identity:
    """From procrunner's PROCRUNNER_RUN, PS and PROCRUNNER_INCARNATION. Outside procrunner the
    run is ``manual``, the instance is named after the host (``web@3f2a9c1b7d4e``: in Compose,
    each replica is a container with a host name of its own, and its program is pid 7 in every
    one of them) and the incarnation after the pid."""
    run = env.get("PROCRUNNER_RUN") or MANUAL_RUN
    instance = env.get("PS") or f"{type_name}@{socket.gethostname()}"
    incarnation = env.get("PROCRUNNER_INCARNATION") or f"{run}/{instance}-pid{os.getpid()}"
    return Identity(run, instance, incarnation)


def seconds(env: Mapping[str, str], name: str, default: float) -> float:
    """A positive number of seconds (or per second) from the environment."""
    text = env.get(name)
    if text is None or text == "":
        return default
    try:
        value = float(text)
    except ValueError:
        raise DemoError(f"{name} must be a positive number, got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise DemoError(f"{name} must be a positive number, got {text!r}")
    return value


@dataclass(frozen=True)
class JobTiming:
    """How long a job takes and how long a worker's claim on it (its lease) lasts."""

    work: float
    lease: float


def job_timing(env: Mapping[str, str]) -> JobTiming:
    work = seconds(env, "DEMO_JOB_SECONDS", 1.0)
    lease = seconds(env, "DEMO_LEASE_SECONDS", 5.0)
    if lease <= work:
        raise DemoError(
            f"DEMO_LEASE_SECONDS ({lease:g}) must be longer than DEMO_JOB_SECONDS ({work:g}), "
            "or a job would be taken from a worker still doing it"
        )
    return JobTiming(work, lease)


def _stop(signum: int, frame: FrameType | None) -> None:
    raise Stopped


def run_part(name: str, main: Callable[[Mapping[str, str]], None]) -> NoReturn:
    """Run one part of the demo: ``main(os.environ)``, with exit status 0 when it returns or
    is stopped by signal, the error's status (and one line) on a ``DemoError``."""
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    try:
        main(os.environ)
    except DemoError as error:
        print(f"demo {name}: {error}", file=sys.stderr, flush=True)
        sys.exit(error.status)
    except Stopped:
        pass
    sys.exit(0)
