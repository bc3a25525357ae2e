"""The backing service: one SQLite database shared by every process of the demo.

``DATABASE_URL`` takes SQLAlchemy's form, ``sqlite:///relative/path`` (relative to the working
directory, the app root) or ``sqlite:////absolute/path``. WAL mode lets readers and one writer
work at once; a busy timeout makes writers wait for each other instead of failing. Every row
carries the run id, so runs never mix.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from procrunner.demo.config import DemoError

DEFAULT_URL = "sqlite:///procrunner-demo.sqlite3"
SQLITE_PREFIX = "sqlite:///"
BUSY_TIMEOUT_SECONDS = 10.0
STALE_RUN_SECONDS = 3600.0

TABLES = (
    """CREATE TABLE IF NOT EXISTS hits (
        run TEXT PRIMARY KEY,
        count INTEGER NOT NULL,
        updated_at REAL NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS sessions (
        token TEXT PRIMARY KEY,
        run TEXT NOT NULL,
        created_by TEXT NOT NULL,
        expires_at REAL NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS jobs (
        run TEXT NOT NULL,
        number INTEGER NOT NULL,
        enqueued_at REAL NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        claimed_by TEXT,
        lease_expires_at REAL,
        done_by TEXT,
        done_at REAL,
        result TEXT,
        PRIMARY KEY (run, number)
    )""",
)


def database_url(env: Mapping[str, str]) -> str:
    return env.get("DATABASE_URL") or DEFAULT_URL


def database_path(url: str) -> Path:
    """The file a ``sqlite:///`` URL names. The error for another scheme never repeats the URL
    (it may hold a password)."""
    if not url.startswith(SQLITE_PREFIX):
        scheme = url.partition("://")[0] if "://" in url else "no scheme"
        raise DemoError(
            "DATABASE_URL must be sqlite:///relative/path or sqlite:////absolute/path "
            f"(the demo speaks SQLite only), got a URL with {scheme!r}"
        )
    path = url.removeprefix(SQLITE_PREFIX)
    if not path or "?" in path:
        raise DemoError(
            f"DATABASE_URL {url!r} must name a database file, without options: "
            "sqlite:///relative/path or sqlite:////absolute/path"
        )
    return Path(path)


def connect(url: str) -> sqlite3.Connection:
    """Open the database (autocommit; use ``transaction``), in WAL mode, with every table."""
    path = database_path(url)
    try:
        conn = sqlite3.connect(
            path, timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None, check_same_thread=False
        )
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        with transaction(conn):
            for table in TABLES:
                conn.execute(table)
    except sqlite3.Error as error:
        raise DemoError(f"cannot open the database {url} ({path.absolute()}): {error}") from None
    return conn


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """A write transaction that takes the write lock at once (no upgrade deadlocks), committed
    at the end of the block and rolled back on any exception."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def delete_old_runs(conn: sqlite3.Connection, run: str) -> None:
    """Forget other runs untouched for an hour, and every expired session."""
    now = time.time()
    stale = now - STALE_RUN_SECONDS
    with transaction(conn):
        conn.execute("DELETE FROM hits WHERE run != ? AND updated_at < ?", (run, stale))
        conn.execute("DELETE FROM sessions WHERE expires_at < ?", (now,))
        conn.execute(
            "DELETE FROM jobs WHERE run != ? AND max(enqueued_at, coalesce(done_at, 0)) < ?",
            (run, stale),
        )
