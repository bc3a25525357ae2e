"""Make docs/dashboard.png: the dashboard of the demo formation during a chaos run.

Prerequisite: Debian's ``chromium`` and ``chromium-driver`` (``apt-get install chromium
chromium-driver``) and the test extras (``pip install -e '.[test]'``, for selenium). Run it
from the repository with the project's virtualenv:

    .venv/bin/python docs/screenshot.py

It runs ``Procfile.example`` (in a temporary app root, so no file of the repository but the
picture changes) with the router, chaos every 3 s and ``--dashboard``, waits until the page
shows a few chaos kills, saves the picture and stops the formation.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

from selenium.webdriver.common.by import By
from selenium.webdriver.support.wait import WebDriverWait

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.dashboard_browser import chromium, missing  # noqa: E402
from tests.harness import free_ports  # noqa: E402

PICTURE = ROOT / "docs" / "dashboard.png"
KILLS = 6  # chaos kills on the page before the picture is taken


def main() -> int:
    reason = missing()
    if reason:
        print(f"screenshot: {reason}", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory(prefix="procrunner-shot-") as app:
        venv = Path(sys.executable).parent  # the demo's Procfile runs `python -m ...`
        env = dict(os.environ, PATH=f"{venv}{os.pathsep}{os.environ['PATH']}")
        formation = subprocess.Popen(
            [sys.executable, "-m", "procrunner", "start", "--no-color",
             "-f", str(ROOT / "Procfile.example"), "-d", app, "--socket", f"{app}/control.sock",
             "-p", str(free_ports(400)), "-m", "all=1,web=2", "--router",
             "--chaos", "every=3s,types=web+worker,seed=7", "--dashboard"],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        try:
            assert formation.stdout is not None
            url = next(m[1] for line in formation.stdout
                       if (m := re.search(r"dashboard on (\S+)", line)))
            # keep reading its output, or backpressure would pause the children
            threading.Thread(target=formation.stdout.read, daemon=True).start()
            browser = chromium(1400, 1750)
            try:
                browser.get(url)
                WebDriverWait(browser, 60).until(
                    lambda b: len(b.find_elements(By.CSS_SELECTOR, "#ended .cause.chaos")) >= KILLS
                )
                browser.save_screenshot(str(PICTURE))
            finally:
                browser.quit()
        finally:
            formation.terminate()
            formation.communicate(timeout=30)
    print(f"wrote {PICTURE.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
