"""The backing service: one database shared by every process of the demo, named by DATABASE_URL.

``sqlite:///relative/path`` (relative to the working directory, the app root) or
``sqlite:////absolute/path``: SQLite, the default, nothing to install; it is a file, so every
process must share one machine. ``postgresql://user:password@host:port/database`` (or
``postgres://``): a PostgreSQL server, through psycopg (``pip install 'procrunner[postgres]'``),
which processes on any machine can share.

Every query is written once, in the SQL both speak, with ``?`` placeholders; a ``Database``
gives each backend what it needs: SQLite's ``BEGIN IMMEDIATE`` (the one write lock, taken at
once, so no upgrade deadlock) in WAL mode with a busy timeout, PostgreSQL's ``%s``
placeholders, row locks that skip rows another transaction holds, and advisory locks where
writers must queue. Every row carries the run id, so runs never mix.
"""

from __future__ import annotations

import sqlite3
import time
import urllib.parse
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import TYPE_CHECKING, Any, Protocol

from procrunner.demo.config import DemoError, seconds

if TYPE_CHECKING:
    import psycopg

DEFAULT_URL = "sqlite:///procrunner-demo.sqlite3"
SQLITE_PREFIX = "sqlite:///"
POSTGRES_SCHEMES = ("postgresql", "postgres")
BUSY_TIMEOUT_SECONDS = 10.0
CONNECT_RETRY_SECONDS = 0.5
STALE_RUN_SECONDS = 3600.0
URL_FORMS = "sqlite:///path or postgresql://user:password@host:port/database"

TABLES = (
    """CREATE TABLE IF NOT EXISTS hits (
        run TEXT PRIMARY KEY,
        count INTEGER NOT NULL,
        updated_at DOUBLE PRECISION NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS sessions (
        token TEXT PRIMARY KEY,
        run TEXT NOT NULL,
        created_by TEXT NOT NULL,
        expires_at DOUBLE PRECISION NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS jobs (
        run TEXT NOT NULL,
        number INTEGER NOT NULL,
        enqueued_at DOUBLE PRECISION NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        claimed_by TEXT,
        lease_expires_at DOUBLE PRECISION,
        done_by TEXT,
        done_at DOUBLE PRECISION,
        result TEXT,
        PRIMARY KEY (run, number)
    )""",
)


class Rows(Protocol):
    """What a query gives back, from either backend's cursor."""

    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...


class Database(Protocol):
    """One connection, in autocommit mode outside ``transaction()``."""

    shown_url: str  # the URL without its password, for messages
    lock_rows: str  # appended to a SELECT whose rows the transaction is about to update

    def execute(self, sql: str, params: Sequence[object] = ()) -> Rows: ...

    def transaction(self) -> AbstractContextManager[None]:
        """Committed at the end of the block, rolled back on any exception."""

    def queue_writers(self, name: str) -> None:
        """In a transaction: make every other transaction that queues on ``name`` wait for
        this one to end (where the backend's transactions do not already do so)."""


class SqliteDatabase:
    lock_rows = ""  # BEGIN IMMEDIATE already holds the one write lock

    def __init__(self, conn: sqlite3.Connection, shown_url: str) -> None:
        self.conn = conn
        self.shown_url = shown_url

    def execute(self, sql: str, params: Sequence[object] = ()) -> Rows:
        return self.conn.execute(sql, params)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    def queue_writers(self, name: str) -> None:
        """Nothing to do: SQLite has one writer at a time."""


class PostgresDatabase:
    lock_rows = " FOR UPDATE SKIP LOCKED"

    def __init__(self, conn: psycopg.Connection[Any], shown_url: str) -> None:
        self.conn = conn
        self.shown_url = shown_url

    def execute(self, sql: str, params: Sequence[object] = ()) -> Rows:
        return self.conn.execute(sql.replace("?", "%s"), params)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        with self.conn.transaction():
            yield

    def queue_writers(self, name: str) -> None:
        self.execute("SELECT pg_advisory_xact_lock(hashtext(?))", (name,))


def database_url(env: Mapping[str, str]) -> str:
    return env.get("DATABASE_URL") or DEFAULT_URL


def passwords(url: str) -> list[str]:
    """The secrets a URL holds: its password, and the values of ``?password=`` options."""
    parts = urllib.parse.urlsplit(url)
    found = [parts.password] if parts.password else []
    options = urllib.parse.parse_qsl(parts.query)
    return found + [value for key, value in options if "password" in key.lower() and value]


def shown(url: str) -> str:
    """The URL with every password replaced by ``***``: safe to print."""
    if not passwords(url):
        return url
    parts = urllib.parse.urlsplit(url)
    if parts.password is not None:
        host = parts.netloc.rpartition("@")[2]
        parts = parts._replace(netloc=f"{parts.username or ''}:***@{host}")
    options = [
        (key, "***" if "password" in key.lower() else value)
        for key, value in urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    ]
    query = urllib.parse.urlencode(options, safe="*") if options else parts.query
    return urllib.parse.urlunsplit(parts._replace(query=query))


def connect(url: str, env: Mapping[str, str] | None = None) -> Database:
    """Open the database that ``url`` names and make its tables. A server that does not
    answer is tried again for DEMO_DB_WAIT_SECONDS (30) from ``env``: a backing service may
    start after the app. Errors never repeat a password."""
    scheme = url.partition("://")[0] if "://" in url else ""
    if url.startswith(SQLITE_PREFIX):
        db: Database = _open_sqlite(url)
    elif scheme in POSTGRES_SCHEMES:
        db = _open_postgres(url, seconds(env or {}, "DEMO_DB_WAIT_SECONDS", 30.0))
    else:
        raise DemoError(
            f"DATABASE_URL must be {URL_FORMS}, got a URL with "
            f"{repr(scheme) if scheme else 'no scheme'}"
        )
    try:
        with db.transaction():
            db.queue_writers("procrunner-demo tables")  # two CREATEs at once fail on PostgreSQL
            for table in TABLES:
                db.execute(table)
    except Exception as error:  # either backend's own error class
        raise DemoError(f"cannot make the tables in {db.shown_url}: {error}") from None
    return db


def _open_sqlite(url: str) -> SqliteDatabase:
    path = url.removeprefix(SQLITE_PREFIX)
    if not path or "?" in path:
        raise DemoError(
            f"DATABASE_URL {url!r} must name a database file, without options: "
            "sqlite:///relative/path or sqlite:////absolute/path"
        )
    try:
        conn = sqlite3.connect(
            path, timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None, check_same_thread=False
        )
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
    except sqlite3.Error as error:
        raise DemoError(f"cannot open the database {url}: {error}") from None
    return SqliteDatabase(conn, url)


def _open_postgres(url: str, wait: float) -> PostgresDatabase:
    safe = shown(url)
    if not _port_is_valid(url):
        raise DemoError(f"DATABASE_URL {safe} has a port that is not a port number")
    try:
        import psycopg
    except ImportError:
        raise DemoError(
            "DATABASE_URL names a PostgreSQL server, but psycopg is not installed: "
            "pip install 'procrunner[postgres]'"
        ) from None
    deadline = time.monotonic() + wait
    while True:
        try:
            # a cluster made without a locale is SQL_ASCII, where psycopg returns bytes for
            # text unless the client asks for UTF-8
            conn = psycopg.connect(url, autocommit=True, client_encoding="UTF8")
            return PostgresDatabase(conn, safe)
        except psycopg.ProgrammingError as error:  # the URL itself: options libpq refuses
            raise DemoError(f"DATABASE_URL {safe}: {_one_line(error, url)}") from None
        except psycopg.OperationalError as error:
            if time.monotonic() >= deadline:
                raise DemoError(
                    f"cannot open the database {safe} (tried for {wait:g} s): "
                    f"{_one_line(error, url)}",
                    1,
                ) from None
        time.sleep(CONNECT_RETRY_SECONDS)


def _port_is_valid(url: str) -> bool:
    try:
        urllib.parse.urlsplit(url).port  # noqa: B018 (the property checks the port)
    except ValueError:
        return False
    return True


def _one_line(error: Exception, url: str) -> str:
    """libpq's message, on one line, with the URL's passwords taken out wherever they appear."""
    text = " ".join(str(error).split())
    for password in passwords(url):
        text = text.replace(password, "***")
    return text


def delete_old_runs(db: Database, run: str) -> None:
    """Forget other runs untouched for an hour, and every expired session."""
    now = time.time()
    stale = now - STALE_RUN_SECONDS
    with db.transaction():
        db.execute("DELETE FROM hits WHERE run != ? AND updated_at < ?", (run, stale))
        db.execute("DELETE FROM sessions WHERE expires_at < ?", (now,))
        db.execute(
            "DELETE FROM jobs WHERE run != ? AND enqueued_at < ? AND coalesce(done_at, 0) < ?",
            (run, stale, stale),
        )
