"""The dashboard's HTTP and event-stream layer, against real formations: refusals (token,
origin, host, bind address), the picture and its live updates, actions, stop and return."""

from __future__ import annotations

import asyncio
import http.client
import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from procrunner.dashboard.link import _cancelled
from procrunner.dashboard.picture import Picture
from tests.harness import App, Run, free_ports, kid
from tests.test_control import ok, ps, started

Picture_ = dict[str, Any]
SCRATCH_WRITER = f'echo cached > "$TMPDIR/cache" && exec {kid("serve")}'  # 1 file, 7 bytes


class Page:
    """Plain HTTP requests to a dashboard, with or without its token and headers."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        assert parts.hostname == "127.0.0.1" and parts.port is not None
        self.port = parts.port
        self.origin = f"http://127.0.0.1:{parts.port}"
        self.token = parse_qs(parts.query)["token"][0]

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        headers: dict[str, str] | None = None,
        token: str | None = "right",
    ) -> tuple[int, http.client.HTTPMessage, bytes]:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=20)
        if token is not None:
            path += f"?token={self.token if token == 'right' else token}"
        sent = {"Content-Type": "application/json"} if body is not None else {}
        data = json.dumps(body).encode() if body is not None else None
        connection.request(method, path, data, {**sent, **(headers or {})})
        response = connection.getresponse()
        result = response.status, response.headers, response.read()
        connection.close()
        return result

    def post(self, path: str, body: Any, **headers: str) -> tuple[int, dict[str, Any]]:
        status, _, data = self.request("POST", path, body, headers)
        return status, json.loads(data) if data.startswith(b"{") else {"text": data.decode()}


class Stream:
    """The page's event stream, read as a browser would."""

    def __init__(self, page: Page) -> None:
        self._connection = http.client.HTTPConnection("127.0.0.1", page.port, timeout=30)
        self._connection.request("GET", f"/events?token={page.token}")
        self._response = self._connection.getresponse()
        assert self._response.status == 200
        assert self._response.headers["Content-Type"] == "text/event-stream"

    def picture(self, wanted: Callable[[Picture_], bool], timeout: float = 20.0) -> Picture_:
        """The first picture (from now on) for which ``wanted`` is true."""
        deadline = time.monotonic() + timeout
        name, data = "", ""
        while time.monotonic() < deadline:
            line = self._response.readline().decode()
            assert line, "the event stream ended"
            if line.startswith("event: "):
                name = line[7:].strip()
            elif line.startswith("data: "):
                data = line[6:]
            elif line == "\n" and name == "picture":
                picture: Picture_ = json.loads(data)
                if wanted(picture):
                    return picture
        pytest.fail("no such picture came")

    def close(self) -> None:
        self._connection.close()


def bars(picture: Picture_, name: str) -> list[dict[str, Any]]:
    timeline: list[dict[str, Any]] = picture["timeline"].get(name, [])
    return timeline


def dashboard(app: App) -> tuple[Run, Page]:
    run = Run(["dashboard"], app.root, app.env)
    app.runs.append(run)
    return run, Page(run.wait_for(r"dashboard on (http\S+)")[1])


def test_a_dashboard_follows_the_formation_acts_on_it_and_outlives_it(app: App) -> None:
    app.procfile(f"web: {SCRATCH_WRITER}\nworker: {kid('sleep')}\n")
    arguments = ("-p", str(free_ports(200)), "-m", "web=1,worker=1")
    formation = started(app, *arguments)
    server, page = dashboard(app)
    stream = Stream(page)

    first = stream.picture(lambda p: len(p["instances"]) == 2 and bool(bars(p, "web.1")))
    assert first["connected"] and first["types"] == ["web", "worker"]
    assert [b["incarnation"] for b in bars(first, "web.1")] == [1]

    ok(app, "restart", "web.1")  # the picture follows what any client does
    after = stream.picture(lambda p: len(bars(p, "web.1")) == 2 and bars(p, "web.1")[0]["recovery"])
    ended, current = bars(after, "web.1")
    assert (ended["cause"], ended["how"]) == ("requested", "stopped on request")
    assert ended["destroyed"]["files"] == 1 and ended["destroyed"]["bytes"] == 7
    assert ended["end"] is not None and current["end"] is None and current["incarnation"] == 2
    assert any(n["event"] == "ended" and n["instance"] == "web.1" for n in after["events"])

    assert page.post("/scale", {"counts": {"worker": 2}}) == (
        200, {"ok": True, "result": {"started": ["worker.2"], "stopping": []}}
    )
    assert "worker.2" in ps(app)
    status, reply = page.post("/chaos", {"action": "now", "target": "worker.1"})
    assert (status, reply["result"]) == (200, {"killed": "worker.1"})
    killed = stream.picture(lambda p: bool(bars(p, "worker.1")) and bars(p, "worker.1")[0]["end"])
    assert bars(killed, "worker.1")[0]["cause"] == "chaos"
    assert page.post("/chaos", {"action": "on", "spec": "every=1h,seed=5"})[0] == 200
    chaos = json.loads(ok(app, "ps", "--json"))["chaos"]
    assert (chaos["on"], chaos["seed"]) == (True, 5)
    assert page.post("/chaos", {"action": "off"})[0] == 200
    status, reply = page.post("/restart", {"targets": ["nope"]})
    assert status == 409 and "no instance or process type 'nope'" in reply["error"]

    ok(app, "stop")
    assert formation.finish() == 0
    down = stream.picture(lambda p: not p["connected"])
    assert down["down_since"] is not None and down["stopping"]  # the last picture stays
    assert len(bars(down, "web.1")) == 2
    assert page.post("/restart", {"targets": ["web.1"]})[0] == 503

    again = started(app, *arguments)  # the dashboard finds it again, a new picture
    back = stream.picture(lambda p: p["connected"] and p["pid"] == again.proc.pid)
    assert [b["incarnation"] for b in bars(back, "web.1")] in ([], [1])
    stream.close()
    again.signal(signal.SIGINT)
    again.finish()
    server.signal(signal.SIGINT)
    server.finish()


def test_requests_without_the_token_or_from_elsewhere_are_refused(app: App) -> None:
    app.procfile(f"worker: {kid('sleep')}\n")
    formation = started(app, "--dashboard")
    page = Page(formation.wait_for(r"dashboard on (http\S+)")[1])

    for token in (None, "wrong", ""):
        assert page.request("GET", "/", token=token)[0] == 403
        assert page.request("GET", "/events", token=token)[0] == 403
    status, headers, body = page.request("GET", "/")
    assert status == 200 and b'<script src="app.js"' in body
    cookie = headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert "Access-Control-Allow-Origin" not in headers
    assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
    with_cookie = {"Cookie": cookie.split(";")[0]}  # the page's own files, by cookie
    for path, kind in (("/app.js", "text/javascript"), ("/dom.js", "text/javascript"),
                       ("/style.css", "text/css")):
        status, headers, _ = page.request("GET", path, headers=with_cookie, token=None)
        assert status == 200 and headers["Content-Type"].startswith(kind)
    assert page.request("GET", "/", headers={"Host": f"evil.example:{page.port}"})[0] == 403

    restart = {"targets": ["worker.1"]}
    elsewhere = [
        {"Origin": "http://evil.example"},
        {"Origin": "http://127.0.0.1:1"},  # another port is another origin
        {"Origin": "null"},
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},
        {"Referer": "http://evil.example/page"},
        {"Content-Type": "text/plain"},  # what a cross-site form can send
    ]
    for sent in elsewhere:
        status, reply = page.post("/restart", restart, **sent)
        assert (status, reply["text"][:13]) == (403, "403 Forbidden"), sent
    assert page.request("POST", "/restart", restart, token=None)[0] == 403
    assert page.request("POST", "/restart", restart, token="wrong")[0] == 403
    assert ps(app)["worker.1"]["incarnation"] == 1  # none of them reached the formation

    own = {"Origin": page.origin, "Sec-Fetch-Site": "same-origin", "Referer": f"{page.origin}/"}
    assert page.post("/restart", restart, **own)[0] == 200
    assert ps(app)["worker.1"]["incarnation"] == 2
    formation.signal(signal.SIGINT)
    formation.finish()


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.10", "example.com"])
def test_the_dashboard_binds_only_to_loopback(app: App, host: str) -> None:
    result = app.cli("dashboard", "--host", host)
    assert result.returncode == 2
    assert f"refusing to listen on {host!r}" in result.stderr
    assert "only listens on loopback" in result.stderr


def test_the_dashboard_needs_a_running_formation(app: App) -> None:
    app.procfile(f"worker: {kid('sleep')}\n")
    result = app.cli("dashboard")
    assert result.returncode == 1 and "no procrunner is running for" in result.stderr


def notice(event: str, when: float, **fields: Any) -> dict[str, Any]:
    return {"event": event, "time": when, "instance": "web.1", **fields}


def test_the_picture_builds_the_timeline_from_notices() -> None:
    picture = Picture()
    picture.came_up({"pid": 10, "app": "/app"})
    destroyed = {"files": 2, "bytes": 9, "memory": 100}
    ended = notice("ended", 50.0, incarnation=1, cause="chaos", how="killed by chaos",
                   uptime=20.0, destroyed=destroyed)
    picture.apply(ended)  # an incarnation that began before the dashboard did
    picture.apply(notice("spawned", 50.1, incarnation=2, pid=5, port=5000, scratch="/s"))
    picture.apply(notice("ready", 50.4, incarnation=2, recovered=0.4))
    picture.apply(notice("output", 50.5, stderr=True, lines=["oops"]))
    first, second = picture.timeline["web.1"]
    assert (first.start, first.end, first.cause) == (30.0, 50.0, "chaos")
    assert first.destroyed == destroyed
    assert first.recovery == 0.4 and second.recovered == 0.4 and second.end is None
    assert [n["event"] for n in picture.events] == ["ended", "spawned", "ready"]
    assert picture.as_dict()["output"]["web.1"][0]["text"] == "oops"

    picture.went_down()
    picture.came_up({"pid": 10, "app": "/app"})  # the same formation: the picture stays
    assert len(picture.timeline["web.1"]) == 2
    picture.came_up({"pid": 11, "app": "/app"})  # another one: a new picture
    assert picture.timeline == {} and picture.events.maxlen is not None



def test_the_picture_keeps_the_end_of_the_run_from_notices_alone() -> None:
    """At the end of a run no ``ps`` answers: state notices stop the rows, ``finished``
    brings the status and the summary, and the last picture says it is the last."""
    picture = Picture()
    picture.came_up({"pid": 10, "app": "/app"})
    row = {"name": "web.1", "type": "web", "state": "starting", "incarnation": 1,
           "uptime": 2.0, "pid": 5, "rss": 100, "ready": {"kind": "port", "port": 5000},
           "retry_at": None, "held": None}
    picture.seed({"instances": [row], "chaos": None})
    picture.apply(notice("state", 51.0, incarnation=1, state="stopping"))
    picture.apply(notice("state", 52.0, incarnation=1, state="stopped"))
    shown = picture.as_dict()
    [stopped] = shown["instances"]
    assert (stopped["state"], stopped["pid"], stopped["uptime"], stopped["ready"]) == (
        "stopped", None, None, None)
    assert shown["finished"] is None and not shown["last"]
    summary = ["summary (...):", "  instance  incarnations", "  web.1     1"]
    picture.apply({"event": "finished", "time": 53.0, "status": 130, "summary": summary})
    picture.closing()
    last = picture.as_dict()
    assert last["finished"] == {"status": 130, "summary": summary} and last["last"]


def test_regression_the_dashboard_stops_while_its_formation_goes_down() -> None:
    """The link waited for its ps poller to end with CancelledError suppressed, so a Ctrl-C
    landing while the formation was going down was swallowed and the dashboard ran on."""

    async def scenario() -> bool:
        async def slow_to_end() -> None:
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                await asyncio.sleep(0.2)  # winding down, as a poller with a request in flight
                raise

        poller = asyncio.create_task(slow_to_end())
        await asyncio.sleep(0)
        waiting = asyncio.create_task(_cancelled(poller))
        await asyncio.sleep(0.05)
        waiting.cancel()  # the dashboard being stopped meanwhile
        await asyncio.wait([waiting])
        return waiting.cancelled()

    assert asyncio.run(scenario())



def test_regression_a_dashboard_started_with_sigint_ignored_still_stops_on_it(app: App) -> None:
    """A shell's background job starts with SIGINT ignored, and the dashboard relied on
    Python's default handler, so it ran on after SIGINT (seen when CI ran as a background
    job). It now handles SIGINT, SIGTERM and SIGHUP itself."""
    app.procfile(f"worker: {kid('sleep')}\n")
    formation = started(app)
    ignoring_sigint = (
        "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_IGN); "
        "os.execv(sys.executable, [sys.executable, '-m', 'procrunner', 'dashboard'])"
    )
    server = subprocess.Popen(
        [sys.executable, "-c", ignoring_sigint],
        cwd=app.root, env=app.env, stdout=subprocess.PIPE, text=True, start_new_session=True,
    )
    try:
        assert server.stdout is not None and "dashboard on" in server.stdout.readline()
        server.send_signal(signal.SIGINT)
        assert server.wait(timeout=10) == 130
    finally:
        server.kill()
        server.wait()
        formation.signal(signal.SIGINT)
        formation.finish()
