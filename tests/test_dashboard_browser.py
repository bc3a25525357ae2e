"""The dashboard in a real headless browser (Debian's Chromium, driven by selenium): a
formation under chaos, its kills on the timeline, a page that keeps keyboard focus, scale
clicks that add up, a 400 px screen, axe-core's accessibility rules, 30 instances, why an
instance is not running, and the end of the run."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
from collections.abc import Iterator
from typing import Any

import pytest
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.wait import WebDriverWait

from tests.dashboard_browser import (
    AXE_PACKAGE,
    chromium,
    click,
    install_axe,
    instances,
    missing,
    narrow,
    pictures,
    shown,
    text,
    visible,
)
from tests.harness import App, free_ports, kid, wait_until
from tests.test_control import ps, started

pytestmark = pytest.mark.skipif(missing() is not None, reason=str(missing()))

# Crashes at once, so it lives in a crash loop under --restart on-failure.
CRASHY = "crashy: echo crashing; exit 1\n"
# Its type waits for its PORT (procrunner.yml), which it never opens: it stays starting.
STUCK = "stuck: exec sleep 600\n"
STUCK_SETTINGS = "types:\n  stuck:\n    ready: port\n"


@contextlib.contextmanager
def dashboard(app: App, *args: str, width: int | None = None) -> Iterator[WebDriver]:
    """The formation started with ``args`` and ``--dashboard``, its page open in Chromium
    (``width``: a viewport that narrow); both stopped at the end."""
    formation = started(app, "-p", str(free_ports(100)), *args, "--dashboard")
    url = formation.wait_for(r"dashboard on (http\S+)")[1]
    browser = chromium()
    try:
        if width is not None:
            narrow(browser, width)
        browser.get(url)
        yield browser
    finally:
        browser.quit()
        formation.signal(signal.SIGINT)
        formation.finish()


def waiting(browser: WebDriver, seconds: float = 20) -> WebDriverWait[WebDriver]:
    return WebDriverWait(browser, seconds)


def chaos_row(browser: WebDriver) -> dict[str, Any] | None:
    """The newest ended incarnation that chaos killed, once its recovery is known."""
    for row in shown(browser, "#ended tbody tr"):
        if row["cells"][1].startswith("chaos") and row["cells"][6] != "-":
            return row
    return None


def state(browser: WebDriver, name: str) -> str:
    return text(browser, f"#formation tr[data-instance='{name}'] .state")


def test_the_page_shows_chaos_kills_and_scales_up(app: App) -> None:
    app.procfile(f'web: echo cached > "$TMPDIR/cache" && exec {kid("serve")}\n')
    with dashboard(app, "-m", "web=2", "--chaos", "every=1s,seed=4") as browser:
        wait = waiting(browser)
        wait.until(lambda b: instances(b) == {"web.1", "web.2"})

        row = wait.until(chaos_row)  # a chaos kill, with what it destroyed and the recovery
        assert row is not None
        name, number = row["instance"], int(row["incarnation"])
        assert row["cells"][:5] == [f"{name}#{number}", "chaos killed by chaos", row["cells"][2],
                                    "1", "7 B"]
        bars = {int(b["incarnation"]): b for b in shown(browser, "#timeline .bar")
                if b["lane"] == name}
        assert "chaos" in bars[number]["classes"].split()
        assert "destroyed 1 file / 7 B" in bars[number]["title"]
        assert number + 1 in bars  # the next incarnation's bar

        # Found and clicked in one script call: an update between the two could change it.
        wait.until(lambda b: click(b, "button[aria-label='scale web up']"))
        assert wait_until(lambda: "web.3" in ps(app))
        wait.until(lambda b: "web.3" in instances(b))


FOCUS_AND_SELECT = """
const row = document.querySelector("#formation tr[data-instance='web.1']");
if (!row) return false;
getSelection().selectAllChildren(row.cells[0]);
row.querySelector("button[data-action=restart]").focus();
return true;
"""


@pytest.mark.slow
def test_focus_and_selection_survive_updates_so_enter_restarts(app: App) -> None:
    app.procfile(f"web: exec {kid('serve')}\n")
    with dashboard(app, "-m", "web=2") as browser:
        wait = waiting(browser)
        wait.until(lambda b: state(b, "web.1") == "running")
        assert browser.execute_script(FOCUS_AND_SELECT)
        uptime = text(browser, "#formation tr[data-instance='web.1'] td:nth-child(4)")
        seen = pictures(browser)
        # two pictures later, and the row itself was updated (its uptime, from a newer ps)
        wait.until(lambda b: pictures(b) >= seen + 2 and text(
            b, "#formation tr[data-instance='web.1'] td:nth-child(4)") != uptime)
        focused = browser.execute_script("return document.activeElement.getAttribute('aria-label')")
        assert focused == "restart web.1"
        assert browser.execute_script("return String(getSelection())") == "web.1"
        browser.switch_to.active_element.send_keys(Keys.ENTER)
        assert wait_until(lambda: ps(app)["web.1"]["incarnation"] == 2, timeout=20)
        assert ps(app)["web.2"]["incarnation"] == 1


# Clicks a button `count` times, `gap` ms apart (0: all in one go, before any reply).
CLICKS = """
const [selector, count, gap, done] = arguments;
const button = document.querySelector(selector);
let left = count;
const next = () => {
  button.click();
  if (--left > 0) setTimeout(next, gap); else done(true);
};
if (gap === 0) { for (; left > 0; left--) button.click(); done(true); } else next();
"""


@pytest.mark.slow
def test_five_quick_scale_clicks_add_five_not_one(app: App) -> None:
    app.procfile("worker: exec sleep 600\n")
    with dashboard(app, "-m", "worker=2") as browser:
        wait = waiting(browser)
        wait.until(lambda b: instances(b) == {"worker.1", "worker.2"})
        browser.execute_async_script(CLICKS, "button[aria-label='scale worker up']", 5, 0)
        assert wait_until(lambda: len(ps(app)) == 7, timeout=20)
        wait.until(lambda b: text(b, "#formation tr.type .count") == "worker \u00d77")
        assert len(ps(app)) == 7
        # five more, each while the one before may still be in flight
        browser.execute_async_script(CLICKS, "button[aria-label='scale worker down']", 5, 40)
        assert wait_until(lambda: sorted(ps(app)) == ["worker.1", "worker.2"], timeout=30)
        wait.until(lambda b: instances(b) == {"worker.1", "worker.2"})
        assert text(browser, "#formation tr.type .count") == "worker \u00d72"


# What sticks out of a 400 px page: the document's width, and every cell, button and the
# status badge that is not wholly inside the viewport or whose content is cut.
OVERFLOW = """
const width = document.documentElement.clientWidth;
const out = [];
const nodes = document.querySelectorAll(
  "#status, header > *, #formation td, #ended td, button, select, input, .lane, #events li");
for (const node of nodes) {
  if (node.closest("[hidden]")) continue;
  const box = node.getBoundingClientRect();
  if (box.width === 0 || box.left < 0 || box.right > width + 0.5 ||
      node.scrollWidth > node.clientWidth + 1) {
    out.push(`${node.tagName} ${node.textContent.slice(0, 40)}: ${box.left}..${box.right}`);
  }
}
return [innerWidth, document.documentElement.scrollWidth, out];
"""


@pytest.mark.slow
def test_the_page_fits_400_px_without_scrolling_sideways(app: App) -> None:
    app.procfile(f"web: exec {kid('serve')}\n{STUCK}{CRASHY}")
    app.write("procrunner.yml", STUCK_SETTINGS)
    args = ("-m", "web=2,stuck=1,crashy=1", "--restart", "on-failure", "--chaos", "every=1s,max=1")
    with dashboard(app, *args, width=400) as browser:
        wait = waiting(browser)
        wait.until(chaos_row)
        wait.until(lambda b: state(b, "crashy.1") == "backoff")
        width, scroll_width, cut = browser.execute_script(OVERFLOW)
        assert width == 400
        assert scroll_width <= 400
        assert cut == []


@pytest.fixture(scope="module")
def axe() -> str:
    source = install_axe()
    if source is None:
        reason = f"needs {AXE_PACKAGE} from npm (npm install --prefix tests/.node {AXE_PACKAGE})"
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI: {reason}")
        pytest.skip(reason)
    return source


RUN_AXE = """
const done = arguments[arguments.length - 1];
axe.run(document).then((result) => done(result.violations.map((v) => ({
  id: v.id, impact: v.impact, nodes: v.nodes.map((n) => n.target.join(" ")).slice(0, 5),
}))));
"""


@pytest.mark.slow
@pytest.mark.parametrize("width", [1400, 400])
def test_axe_finds_no_serious_or_critical_violation(app: App, axe: str, width: int) -> None:
    app.procfile(f"web: echo up && exec {kid('serve')}\n{STUCK}{CRASHY}")
    app.write("procrunner.yml", STUCK_SETTINGS)
    args = ("-m", "web=2,stuck=1,crashy=1", "--restart", "on-failure", "--chaos", "every=1s,max=1")
    with dashboard(app, *args, width=None if width == 1400 else width) as browser:
        wait = waiting(browser)
        wait.until(chaos_row)
        wait.until(lambda b: state(b, "crashy.1") == "backoff")
        browser.set_script_timeout(60)
        browser.execute_script(axe)
        violations = browser.execute_async_script(RUN_AXE)
        serious = [v for v in violations if v["impact"] in ("serious", "critical")]
        assert serious == [], json.dumps(serious, indent=1)


@pytest.mark.slow
def test_thirty_instances_collapse_filter_and_say_why(app: App) -> None:
    app.procfile(f"web: exec {kid('serve')}\n{STUCK}{CRASHY}"
                 "worker: echo hello from $PS && exec sleep 600\n")
    app.write("procrunner.yml", STUCK_SETTINGS)
    args = ("-m", "web=1,stuck=1,crashy=1,worker=27", "--restart", "on-failure")
    with dashboard(app, *args) as browser:
        wait = waiting(browser, 30)
        wait.until(lambda b: len(instances(b)) == 30)

        # So many output panes start collapsed; expand all and collapse all reach each one.
        wait.until(lambda b: len(shown(b, "#output details")) >= 27)
        is_open = "return [...document.querySelectorAll('#output details')].map((d) => d.open)"
        assert not any(browser.execute_script(is_open))
        assert browser.execute_script("return document.documentElement.scrollHeight") < 4000
        click(browser, "#expand-all")
        assert all(browser.execute_script(is_open))
        click(browser, "#collapse-all")
        assert not any(browser.execute_script(is_open))

        # Why an instance is not running: a start waiting for readiness, a crash loop.
        stuck = ps(app)["stuck.1"]
        wait.until(lambda b: text(b, "#formation tr[data-instance='stuck.1'] .why") ==
                   f"waiting for port {stuck['port']}")
        wait.until(lambda b: state(b, "crashy.1") == "backoff")
        reason = text(browser, "#formation tr[data-instance='crashy.1'] .why")
        assert re.fullmatch(r"exited 1; (next retry in \d+ s|retrying now)", reason), reason

        # Filtering by type hides the other types' rows, lanes and panes.
        browser.execute_script("""
            const filter = document.getElementById("type-filter");
            filter.value = "crashy";
            filter.dispatchEvent(new Event("change"));""")
        assert [r["instance"] for r in visible(browser, "#formation tr[data-instance]")] == \
            ["crashy.1"]
        assert [lane["instance"] for lane in visible(browser, ".lane")] == ["crashy.1"]
        assert [pane["instance"] for pane in visible(browser, "#output details")] == ["crashy.1"]


@pytest.mark.slow
def test_a_stopped_instance_has_a_start_button(app: App) -> None:
    app.procfile("worker: exec sleep 600\n")
    with dashboard(app, "-m", "worker=2") as browser:
        wait = waiting(browser)
        wait.until(lambda b: state(b, "worker.1") == "running")
        assert app.cli("stop", "worker.1").returncode == 0
        start = "#formation tr[data-instance='worker.1'] button[aria-label='start worker.1']"
        wait.until(lambda b: click(b, start))
        assert wait_until(lambda: ps(app)["worker.1"]["state"] == "running", timeout=20)
        assert ps(app)["worker.1"]["incarnation"] == 2
        wait.until(lambda b: text(b, "#formation tr[data-instance='worker.1'] button") == "restart")


EVENTS = "return [...document.querySelectorAll('#events li')].map((li) => ({text: li.textContent}))"


@pytest.mark.slow
def test_chaos_on_is_said_once_in_the_events(app: App) -> None:
    app.procfile("worker: exec sleep 600\n")
    with dashboard(app, "-m", "worker=1") as browser:
        wait = waiting(browser)
        wait.until(lambda b: state(b, "worker.1") == "running")
        browser.find_element("id", "chaos-spec").send_keys("every=1h")
        click(browser, "#chaos-form button[type=submit]")
        line = wait.until(lambda b: next(
            (e["text"] for e in b.execute_script(EVENTS) if "chaos on" in e["text"]), None))
        assert line.count("chaos on") == 1, line


@pytest.mark.slow
def test_stop_and_kill_buttons_stop_and_kill_their_instance(app: App) -> None:
    app.procfile("worker: exec sleep 600\n")
    with dashboard(app, "-m", "worker=2", "--restart", "on-failure") as browser:
        wait = waiting(browser)
        wait.until(lambda b: state(b, "worker.2") == "running")
        click(browser, "button[aria-label='stop worker.1']")
        wait.until(lambda b: state(b, "worker.1") == "stopped" or text(b, "#problem"))
        assert text(browser, "#problem") == ""
        click(browser, "button[aria-label='kill worker.2']")
        assert wait_until(lambda: ps(app)["worker.2"]["incarnation"] == 2, timeout=20)
        assert ps(app)["worker.1"]["state"] == "stopped"


WHY = "#formation tr[data-instance='{}'] .why"
# A crash loop that waits 6 s before each retry: long enough to see the countdown move on a
# loaded machine.
SLOW_RETRY = ("--backoff", "first=6s,max=6s")


def retry_left(browser: WebDriver) -> int | None:
    found = re.search(r"next retry in (\d+) s", text(browser, WHY.format("crashy.1")))
    return int(found[1]) if found else None


def test_the_page_says_what_holds_an_instance_and_counts_down_its_retry(app: App) -> None:
    app.procfile(f"{CRASHY}migrate: exit 1\nweb: exec sleep 600\n")
    app.write("procrunner.yml", "types:\n  migrate:\n    once: true\n    restart: never\n"
              "  web:\n    depends_on: {migrate: completed}\n    ready: uptime\n"
              "  crashy:\n    restart: on-failure\n")
    with dashboard(app, "-m", "crashy=1,migrate=1,web=1", *SLOW_RETRY) as browser:
        wait = waiting(browser, 60)
        wait.until(lambda b: text(b, WHY.format("web.1")) ==
                   "held: waits for migrate to complete, but migrate.1#1 exited 1")
        # the countdown: a number of seconds that goes down between two pictures of one backoff
        first = wait.until(lambda b: (left := retry_left(b)) is not None and left >= 2 and left)
        wait.until(lambda b: (left := retry_left(b)) is not None and left < first)


@pytest.mark.slow
def test_a_start_waiting_for_its_http_check_says_so(app: App) -> None:
    app.procfile("web: exec sleep 600\n")
    app.write("procrunner.yml", "types:\n  web:\n    ready: {http: /ready}\n")
    with dashboard(app, "-m", "web=1") as browser:
        port = ps(app)["web.1"]["port"]
        waiting(browser).until(lambda b: text(b, WHY.format("web.1")) ==
                               f"waiting for GET /ready on port {port}")


SHUTDOWN_READING = """
return {
  banner: document.getElementById("banner").textContent,
  status: document.getElementById("status").textContent,
  summary: document.getElementById("summary").textContent,
  summaryShown: !document.getElementById("summary").closest("section").hidden,
  states: Object.fromEntries([...document.querySelectorAll("#formation tr[data-instance]")]
    .map((row) => [row.dataset.instance, row.querySelector(".state").textContent])),
  enabled: [...document.querySelectorAll("#formation button, #chaos-form button")]
    .filter((button) => !button.disabled).map((button) => button.textContent),
};
"""


def test_regression_the_end_of_the_run_reaches_the_page_before_its_server_closes(
    app: App,
) -> None:
    app.procfile(f"web: exec {kid('serve')}\nworker: exec sleep 600\n")
    with dashboard(app, "-m", "web=1,worker=2") as browser:
        wait = waiting(browser, 30)
        names = {"web.1", "worker.1", "worker.2"}
        wait.until(lambda b: all(state(b, name) == "running" for name in names))
        formation = app.runs[-1]
        formation.signal(signal.SIGINT)
        assert formation.finish(timeout=60) == 130
        # the server is gone by now: what the page shows is what it got before it closed
        seen = browser.execute_script(SHUTDOWN_READING)
        assert seen["banner"].startswith("The run ended: SIGINT received (exit status 130)")
        assert seen["status"] == "ended"
        assert seen["states"] == dict.fromkeys(names, "stopped")
        assert seen["summaryShown"] and seen["summary"].startswith("summary: 3 instances, ")
        assert seen["enabled"] == []
        assert any("the run ended (exit status 130)" in e["text"]
                   for e in browser.execute_script(EVENTS))
