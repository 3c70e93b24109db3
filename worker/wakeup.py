"""How an idle worker waits for work: LISTEN on PostgreSQL, a plain sleep on SQLite.

Either way the wait is bounded by the poll interval, so a missed notification costs at most one
interval, never a stuck worker.
"""

from __future__ import annotations

import logging
import threading
from typing import Protocol

import psycopg
from sqlalchemy.engine import make_url

from service.db.notify import CHANNEL

log = logging.getLogger("descent.wakeup")


class Waiter(Protocol):
    def wait(self, timeout: float) -> None: ...

    def close(self) -> None: ...


class SleepWaiter:
    def __init__(self, stopping: threading.Event) -> None:
        self.stopping = stopping

    def wait(self, timeout: float) -> None:
        self.stopping.wait(timeout)

    def close(self) -> None:
        return None


class ListenWaiter:
    """Waits for NOTIFY descent_jobs on a dedicated autocommit connection."""

    def __init__(self, database_url: str, stopping: threading.Event) -> None:
        url = make_url(database_url).set(drivername="postgresql")
        self.dsn = url.render_as_string(hide_password=False)
        self.stopping = stopping
        self.connection: psycopg.Connection[tuple[object, ...]] | None = None

    def _connect(self) -> psycopg.Connection[tuple[object, ...]]:
        if self.connection is None or self.connection.closed:
            self.connection = psycopg.connect(self.dsn, autocommit=True)
            self.connection.execute(f"LISTEN {CHANNEL}")
        return self.connection

    def wait(self, timeout: float) -> None:
        if self.stopping.is_set():
            return
        try:
            # Short slices keep a stop request (SIGTERM) answered promptly.
            slice_ = min(timeout, 0.5)
            waited = 0.0
            connection = self._connect()
            while waited < timeout and not self.stopping.is_set():
                for _ in connection.notifies(timeout=slice_, stop_after=1):
                    return
                waited += slice_
        except psycopg.Error as exc:
            log.warning("LISTEN connection failed (%s): falling back to a sleep", exc)
            self.close()
            self.stopping.wait(timeout)

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()
            self.connection = None


def make_waiter(database_url: str, stopping: threading.Event) -> Waiter:
    if make_url(database_url).get_backend_name() == "postgresql":
        return ListenWaiter(database_url, stopping)
    return SleepWaiter(stopping)
