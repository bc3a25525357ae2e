"""Headless Chromium for the dashboard's browser tests and ``docs/screenshot.py``: Debian's
``chromium`` and ``chromium-driver`` packages, driven by selenium (which must not try to
download a browser or a driver: the network is closed). Also what the tests read from the
page, and axe-core, the accessibility checker that they inject into it."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.remote.webdriver import WebDriver

CHROMIUM = shutil.which("chromium")
DRIVER = shutil.which("chromedriver")
# axe-core from npm, in a test-only folder (gitignored); .ci/run installs the same version.
AXE_PACKAGE = "axe-core@4.14.1"
AXE_PREFIX = Path(__file__).resolve().parent / ".node"
AXE = AXE_PREFIX / "node_modules" / "axe-core" / "axe.min.js"


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


def narrow(browser: WebDriver, width: int, height: int = 900) -> None:
    """A viewport narrower than headless Chromium's smallest window (500 px), as a phone's."""
    metrics = {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False}
    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)


def install_axe() -> str | None:
    """The text of axe.min.js, installed with npm if it is not there yet; None if npm is
    missing or could not install it."""
    if not AXE.exists() and shutil.which("npm") is not None:
        subprocess.run(
            ["npm", "install", "--prefix", str(AXE_PREFIX), "--no-save", "--no-audit",
             "--no-fund", AXE_PACKAGE],
            check=False, capture_output=True, timeout=300,
        )
    return AXE.read_text() if AXE.exists() else None


# Read what the page shows in one script call: it updates several times a second, so an
# element found in one call may have changed by the next.
READ = """
return [...document.querySelectorAll(arguments[0])].map((node) => ({
  ...node.dataset,
  lane: node.closest(".lane")?.dataset.instance,
  classes: node.className,
  title: node.title,
  hidden: node.hidden,
  cells: [...(node.cells || [])].map((cell) => cell.textContent),
}));
"""

CLICK = """
const button = document.querySelector(arguments[0]);
if (button) { button.click(); }
return Boolean(button);
"""


def shown(browser: WebDriver, selector: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = browser.execute_script(READ, selector)
    return found


def instances(browser: WebDriver) -> set[str]:
    """The instances in the formation table (those a filter hides too)."""
    return {row["instance"] for row in shown(browser, "#formation tr[data-instance]")}


def visible(browser: WebDriver, selector: str) -> list[dict[str, Any]]:
    return [node for node in shown(browser, selector) if not node["hidden"]]


def click(browser: WebDriver, selector: str) -> bool:
    clicked: bool = browser.execute_script(CLICK, selector)
    return clicked


def text(browser: WebDriver, selector: str) -> str:
    found: str = browser.execute_script(
        "return document.querySelector(arguments[0])?.textContent ?? ''", selector
    )
    return found


def pictures(browser: WebDriver) -> int:
    """How many pictures the page has received and drawn."""
    count: str | None = browser.execute_script("return document.body.dataset.pictures")
    return int(count or 0)
