"""The dashboard in a real headless browser (Debian's Chromium, driven by selenium): a
formation under chaos, its kills on the timeline, and a click that scales it up."""

from __future__ import annotations

import signal
from typing import Any

import pytest
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.wait import WebDriverWait

from tests.dashboard_browser import chromium, missing
from tests.harness import App, free_ports, kid, wait_until
from tests.test_control import ps, started

pytestmark = pytest.mark.skipif(missing() is not None, reason=str(missing()))


# Read what the page shows in one script call: it redraws several times a second, so an
# element found in one call may be gone by the next.
READ = """
return [...document.querySelectorAll(arguments[0])].map((node) => ({
  ...node.dataset,
  lane: node.closest(".lane")?.dataset.instance,
  classes: node.className,
  title: node.title,
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
    return {row["instance"] for row in shown(browser, "#formation tr[data-instance]")}


def chaos_row(browser: WebDriver) -> dict[str, Any] | None:
    """The newest ended incarnation that chaos killed, once its recovery is known."""
    for row in shown(browser, "#ended tbody tr"):
        if row["cells"][1].startswith("chaos") and row["cells"][6] != "-":
            return row
    return None


def test_the_page_shows_chaos_kills_and_scales_up(app: App) -> None:
    app.procfile(f'web: echo cached > "$TMPDIR/cache" && exec {kid("serve")}\n')
    formation = started(
        app, "-p", str(free_ports(10)), "-m", "web=2", "--chaos", "every=1s,seed=4", "--dashboard"
    )
    url = formation.wait_for(r"dashboard on (http\S+)")[1]
    browser = chromium()
    try:
        browser.get(url)
        wait = WebDriverWait(browser, 20)
        wait.until(lambda b: instances(b) == {"web.1", "web.2"})

        row = wait.until(chaos_row)  # a chaos kill, with what it destroyed and the recovery
        assert row is not None
        name, number = row["instance"], int(row["incarnation"])
        assert row["cells"][:5] == [f"{name}#{number}", "chaos killed by chaos", row["cells"][2],
                                    "1", "7 B"]
        bars = {int(b["incarnation"]): b for b in shown(browser, "#timeline .bar")
                if b["lane"] == name}
        assert "chaos" in bars[number]["classes"].split()
        assert "destroyed 1 files / 7 B" in bars[number]["title"]
        assert number + 1 in bars  # the next incarnation's bar

        # Found and clicked in one script call: a redraw between the two would make a
        # found element stale.
        wait.until(lambda b: b.execute_script(CLICK, "button[title='scale web up']"))
        assert wait_until(lambda: "web.3" in ps(app))
        wait.until(lambda b: "web.3" in instances(b))
    finally:
        browser.quit()
        formation.signal(signal.SIGINT)
        formation.finish()
