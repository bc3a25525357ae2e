"""Headless Chromium for the dashboard's browser tests and ``docs/screenshot.py``: Debian's
``chromium`` and ``chromium-driver`` packages, driven by selenium (which must not try to
download a browser or a driver: the network is closed)."""

from __future__ import annotations

import os
import shutil

from selenium import webdriver
from selenium.webdriver.chrome.service import Service

CHROMIUM = shutil.which("chromium")
DRIVER = shutil.which("chromedriver")


def missing() -> str | None:
    """Why the browser cannot run here (None if it can)."""
    if CHROMIUM is None or DRIVER is None:
        return "needs Debian's chromium and chromium-driver (apt-get install chromium " \
            "chromium-driver; .ci/run installs them as root)"
    return None


def chromium(width: int = 1400, height: int = 1100) -> webdriver.Chrome:
    assert CHROMIUM is not None and DRIVER is not None, missing()
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in (
        "--headless=new",
        f"--window-size={width},{height}",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-default-apps",
        "--disable-sync",
        "--no-first-run",
        "--disable-dev-shm-usage",
    ):
        options.add_argument(argument)
    if os.geteuid() == 0:
        options.add_argument("--no-sandbox")  # Chromium's sandbox refuses to run as root
    return webdriver.Chrome(options=options, service=Service(executable_path=DRIVER))
