"""The environment variables that mark every descendant of a run and of an incarnation, so
that procrunner (and its watchdog) can find processes that left their process group, and the
watchdog helper's module, whose command line names the run it guards."""

RUN_MARKER = "PROCRUNNER_RUN"
INCARNATION_MARKER = "PROCRUNNER_INCARNATION"
WATCHDOG_MODULE = "procrunner.supervise.watchdog"


def incarnation_marker(run_id: str, label: str) -> str:
    return f"{run_id}/{label}"
