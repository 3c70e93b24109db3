"""Engines and sessions: SQLite in WAL mode with a busy timeout, PostgreSQL through the same code.

On SQLite a transaction that will write starts with `BEGIN IMMEDIATE`: it takes the write lock up
front (waiting up to the busy timeout) instead of failing when a read turns into a write while
another connection writes. Read-only sessions use a plain deferred `BEGIN` and never block writers.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import cached_property
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.orm import Session, sessionmaker

WRITE_OPTION = "descent_write"


def make_engine(url: str, *, busy_timeout_ms: int = 30_000) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)

    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event below emit BEGIN, not the sqlite3 module.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        immediate = conn.get_execution_options().get(WRITE_OPTION, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


class Database:
    """One engine and its two session factories: `read()` and `write()`."""

    def __init__(self, url: str, *, busy_timeout_ms: int = 30_000) -> None:
        self.url = url
        self.busy_timeout_ms = busy_timeout_ms
        self.engine = make_engine(url, busy_timeout_ms=busy_timeout_ms)
        writer = self.engine.execution_options(**{WRITE_OPTION: True})
        self._read = sessionmaker(self.engine, expire_on_commit=False)
        self._write = sessionmaker(writer, expire_on_commit=False)

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    @cached_property
    def in_memory(self) -> bool:
        """An SQLite database in this process's memory, which no other process can open."""
        parsed = make_url(self.url)
        return self.is_sqlite and (
            parsed.database in (None, "", ":memory:") or parsed.query.get("mode") == "memory"
        )

    @contextmanager
    def read(self) -> Iterator[Session]:
        with self._read() as session:
            yield session

    @contextmanager
    def write(self) -> Iterator[Session]:
        """A session for writing; the caller commits. Uncommitted work is rolled back on exit."""
        with self._write() as session:
            yield session

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A write session whose transaction commits on success and rolls back on error."""
        with self._write() as session, session.begin():
            yield session

    def dispose(self) -> None:
        self.engine.dispose()
