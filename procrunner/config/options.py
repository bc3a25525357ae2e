"""For commands that take a few of ``start``'s settings (``export``, ``dashboard``): their
app options from every settings source, through the model-driven loader
(``settings_load``), and a port check for their own port options."""

from __future__ import annotations

import argparse
import os

from procrunner.config.settings import AppOptions
from procrunner.config.values import Convert, to_port


def port_number(value: str | None, option: str = "--port") -> int | None:
    return None if value is None else to_port(value, Convert(option))


def app_options(args: argparse.Namespace) -> AppOptions:
    """The app options: command line > PROCRUNNER_<NAME> > procrunner.yml > .foreman."""
    from procrunner.config.load import app_options as options_of
    from procrunner.config.load import read_sources

    return options_of(read_sources(args, os.environ))
