"""The demo's web process: every hit counted three ways, every login kept two ways.

A hit is counted in process memory, in a file in the scratch dir ($PROCRUNNER_SCRATCH) and in
the database, and each reply shows the three side by side: the first two start again from
nothing in every new incarnation, the third does not. ``/login`` keeps one session in process
memory and one in the database, as two cookies; every reply says which of them this process
found. Each reply closes its connection, so the router places every request anew.

Endpoints: ``/`` (plain text), ``/json`` (the same facts as JSON), ``/login`` (GET or POST;
JSON when the request accepts application/json).
"""

from __future__ import annotations

import json
import math
import os
import secrets
import tempfile
import threading
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from http import HTTPStatus
from http.cookies import CookieError, SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from procrunner.demo.config import DemoError, Identity, identity, run_part, seconds
from procrunner.demo.db import Database, connect, database_url

DEFAULT_HOST = "127.0.0.1"  # HOST=0.0.0.0 in a container (the export sets it)
MEMORY_COOKIE = "memory_session"
DATABASE_COOKIE = "db_session"
FOUND, NOT_FOUND, NO_COOKIE, CREATED = "found", "not found", "no cookie", "created"
MAX_BODY_BYTES = 65536


@dataclass(frozen=True)
class Reply:
    """What one request saw; the JSON body of ``/json``."""

    instance: str
    incarnation: str
    pid: int
    memory_count: int
    scratch_count: int
    db_count: int
    memory_session: str
    db_session: str


@dataclass
class WebProcess:
    """This incarnation. Its memory (the counter, the sessions) dies with it; so does the
    scratch file, because procrunner wipes the scratch dir. Only the database is shared."""

    me: Identity
    db: Database
    scratch_file: Path
    session_seconds: float
    memory_count: int = 0
    memory_sessions: dict[str, float] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def serve(self, cookies: Mapping[str, str], login: bool) -> tuple[Reply, dict[str, str]]:
        """Count the hit, then check (or create, on login) both sessions. Returns the reply
        and the cookies to set. The database hit is committed before the reply is sent."""
        with self.lock:
            self.memory_count += 1
            memory_count = self.memory_count
            scratch_count = self._count_in_scratch_file()
            now = time.time()
            with self.db.transaction():
                db_count = self._count_in_database(now)
                if login:
                    new_cookies = self._log_in(now)
                    memory_session = db_session = CREATED
                else:
                    new_cookies = {}
                    memory_session = self._memory_session(cookies.get(MEMORY_COOKIE), now)
                    db_session = self._database_session(cookies.get(DATABASE_COOKIE), now)
        reply = Reply(
            self.me.instance,
            self.me.incarnation,
            os.getpid(),
            memory_count,
            scratch_count,
            db_count,
            memory_session,
            db_session,
        )
        return reply, new_cookies

    def _count_in_scratch_file(self) -> int:
        try:
            count = int(self.scratch_file.read_text()) + 1
        except FileNotFoundError:
            count = 1
        self.scratch_file.write_text(str(count))
        return count

    def _count_in_database(self, now: float) -> int:
        row = self.db.execute(
            "INSERT INTO hits (run, count, updated_at) VALUES (?, 1, ?) "
            "ON CONFLICT (run) DO UPDATE "
            "SET count = hits.count + 1, updated_at = excluded.updated_at "
            "RETURNING count",
            (self.me.run, now),
        ).fetchone()
        return int(row[0])

    def _log_in(self, now: float) -> dict[str, str]:
        memory_token, db_token = secrets.token_hex(16), secrets.token_hex(16)
        self.memory_sessions[memory_token] = now + self.session_seconds
        self.db.execute(
            "INSERT INTO sessions (token, run, created_by, expires_at) VALUES (?, ?, ?, ?)",
            (db_token, self.me.run, self.me.incarnation, now + self.session_seconds),
        )
        return {MEMORY_COOKIE: memory_token, DATABASE_COOKIE: db_token}

    def _memory_session(self, token: str | None, now: float) -> str:
        if token is None:
            return NO_COOKIE
        return FOUND if self.memory_sessions.get(token, 0.0) > now else NOT_FOUND

    def _database_session(self, token: str | None, now: float) -> str:
        if token is None:
            return NO_COOKIE
        row = self.db.execute(
            "SELECT 1 FROM sessions WHERE token = ? AND run = ? AND expires_at > ?",
            (token, self.me.run, now),
        ).fetchone()
        return FOUND if row is not None else NOT_FOUND


def page(reply: Reply, host: str) -> str:
    """The plain-text page, for people with curl."""
    return (
        f"Served by {reply.incarnation.rpartition('/')[2]} (pid {reply.pid}).\n\n"
        "hits counted\n"
        f"  in process memory {reply.memory_count:>7}   dies with this incarnation\n"
        f"  in a scratch file {reply.scratch_count:>7}   dies with this incarnation "
        "(procrunner wipes its scratch dir)\n"
        f"  in the database   {reply.db_count:>7}   kept: the backing service outlives "
        "every process\n\n"
        f"session kept in process memory: {reply.memory_session}\n"
        f"session kept in the database:   {reply.db_session}\n\n"
        f"log in:  curl -c jar -b jar -d '' http://{host}/login\n"
        f"then:    curl -b jar http://{host}/\n"
    )


class DemoServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # socketserver's 5 drops connections under a router's load

    def __init__(self, host: str, port: int, process: WebProcess) -> None:
        super().__init__((host, port), DemoHandler)
        self.process = process


class DemoHandler(BaseHTTPRequestHandler):
    timeout = 5.0

    def do_GET(self) -> None:
        self._respond()

    def do_POST(self) -> None:
        """Read the body (unread bytes would make the close reset the connection), ignore it."""
        length = self.headers.get("Content-Length", "")
        self.rfile.read(min(int(length), MAX_BODY_BYTES) if length.isdigit() else 0)
        self._respond()

    def _respond(self) -> None:
        assert isinstance(self.server, DemoServer)
        path = self.path.partition("?")[0]
        if path not in ("/", "/json", "/login"):
            self._send(HTTPStatus.NOT_FOUND, "text/plain", "not found: try / or /login\n", {})
            return
        reply, new_cookies = self.server.process.serve(self._cookies(), path == "/login")
        if path == "/json" or "application/json" in self.headers.get("Accept", ""):
            self._send(HTTPStatus.OK, "application/json", json.dumps(asdict(reply)), new_cookies)
        else:
            bound = f"{self.server.server_address[0]!s}:{self.server.server_port}"
            host = self.headers.get("Host") or bound
            text = page(reply, host)
            self._send(HTTPStatus.OK, "text/plain; charset=utf-8", text, new_cookies)

    def _cookies(self) -> dict[str, str]:
        jar: SimpleCookie = SimpleCookie()
        try:
            jar.load(self.headers.get("Cookie", ""))
        except CookieError:
            return {}
        return {name: morsel.value for name, morsel in jar.items()}

    def _send(self, status: HTTPStatus, kind: str, body: str, cookies: dict[str, str]) -> None:
        data = body.encode()
        assert isinstance(self.server, DemoServer)
        max_age = math.ceil(self.server.process.session_seconds)
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Connection", "close")
        for name, value in cookies.items():
            self.send_header(
                "Set-Cookie", f"{name}={value}; Path=/; Max-Age={max_age}; HttpOnly; SameSite=Lax"
            )
        self.end_headers()
        self.wfile.write(data)
        self.close_connection = True

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: no line per request."""


def scratch_dir(env: Mapping[str, str]) -> Path:
    """procrunner's scratch dir for this incarnation; outside procrunner, the temp dir."""
    return Path(env.get("PROCRUNNER_SCRATCH") or tempfile.gettempdir())


def main(env: Mapping[str, str]) -> None:
    port_text = env.get("PORT", "")
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise DemoError(f"PORT must be a port number, got {port_text!r}")
    me = identity(env, "web")
    url = database_url(env)
    session_seconds = seconds(env, "DEMO_SESSION_SECONDS", 1800.0)
    host = env.get("HOST") or DEFAULT_HOST
    process = WebProcess(me, connect(url, env), scratch_dir(env) / "hits", session_seconds)
    try:
        server = DemoServer(host, int(port_text), process)
    except OSError as error:
        raise DemoError(f"cannot listen on {host}:{port_text}: {error.strerror}", 1) from None
    print(
        f"{me.label} listening on {host}:{port_text}: memory and scratch dir start empty",
        flush=True,
    )
    with server:
        server.serve_forever()


if __name__ == "__main__":
    run_part("web", main)
