"""When what the API has read may be out of date: a generation that moves with the database.

The live reads (service.jobs.live_reads) keep answers and tails for many clients; each is tagged
with the generation it was read in and is good only while that generation lasts. The generation
moves:
- when a watcher sees the database's fingerprint change. It reads the fingerprint every
  `max_staleness / 2` seconds, in a worker thread, on a connection of its own: `PRAGMA
  data_version` on SQLite (it changes when any other connection commits), `pg_current_snapshot()`
  on PostgreSQL (it changes whenever a write transaction starts or ends, in any database of the
  cluster);
- at once when this process commits a write (`moved`, called from the committing thread), so the
  API's own writes (submit, cancel, delete, sweeps, uploads) are seen by the next read.

Kept answers may be served only while the last completed check started less than `max_staleness`
ago (`fresh`), so an answer never misses a commit older than that; when the checks fall behind,
the reads go to the database instead of waiting. The watcher rests while nobody reads (after
IDLE_SECONDS without a poll) and wakes on the next poll, which the database answers meanwhile.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import anyio
import anyio.to_thread

from service.db.session import Database

log = logging.getLogger("descent.live_reads")

IDLE_SECONDS = 10.0  # the watcher rests after this long without a poll


def fingerprint_reader(
    database: Database,
) -> tuple[Callable[[], object], Callable[[], None]] | None:
    """A function returning the database's change fingerprint (run it in a thread) and one that
    closes the connection it holds, or None if this backend has no cheap fingerprint."""
    dialect = database.engine.dialect.name
    if dialect == "sqlite":
        raw = database.engine.raw_connection()  # autocommit: the connect hook unsets isolation

        def sqlite_version() -> object:
            cursor = raw.cursor()
            try:
                cursor.execute("PRAGMA data_version")
                return cursor.fetchone()
            finally:
                cursor.close()

        return sqlite_version, raw.close
    if dialect == "postgresql":
        connection = database.engine.connect().execution_options(isolation_level="AUTOCOMMIT")

        def postgres_snapshot() -> object:
            return connection.exec_driver_sql("SELECT pg_current_snapshot()::text").scalar()

        return postgres_snapshot, connection.close
    return None


class Freshness:
    """The generation, the watcher's last check, and whether it rests."""

    def __init__(self, max_staleness: float) -> None:
        self.max_staleness = max_staleness
        self.checked_at = -1e9  # monotonic start of the last completed check
        self.polled_at = time.monotonic()  # monotonic time of the last poll
        self.waking: anyio.Event | None = None  # set by the next poll while the watcher rests
        self._generation = 0
        self._lock = threading.Lock()  # `moved` runs in the threads that commit

    @property
    def generation(self) -> int:
        return self._generation

    def moved(self) -> None:
        """Something may have changed: whatever was read before is stale."""
        with self._lock:
            self._generation += 1

    def fresh(self) -> bool:
        return time.monotonic() - self.checked_at <= self.max_staleness

    def polled(self) -> None:
        """Note a poll (waking the watcher if it rests)."""
        self.polled_at = time.monotonic()
        if self.waking is not None:
            self.waking.set()

    @asynccontextmanager
    async def watching(self, database: Database) -> AsyncIterator[None]:
        """Check the database's fingerprint in the background while the block runs."""
        reader = fingerprint_reader(database)
        if reader is None:
            yield
            return
        read, close = reader
        try:
            async with anyio.create_task_group() as group:
                group.start_soon(self._watch, read)
                try:
                    yield
                finally:
                    group.cancel_scope.cancel()
        finally:
            self.checked_at = -1e9  # no more checks: nothing kept may be served
            close()

    async def _watch(self, read: Callable[[], object]) -> None:
        last: object = None
        # A limiter of its own: the checks never queue behind the endpoints' reads (with the
        # shared one, a burst of reads would delay the check, nothing kept could be served, and
        # every poll would read the database).
        own = anyio.CapacityLimiter(1)
        while True:
            started = time.monotonic()
            try:
                current = await anyio.to_thread.run_sync(read, limiter=own)
            except Exception:  # nothing kept is served until a check succeeds again
                log.warning("live reads: database check failed", exc_info=True)
            else:
                if current != last:
                    self.moved()
                    last = current
                self.checked_at = started
            if time.monotonic() - self.polled_at > IDLE_SECONDS:
                await self._rest()
                continue
            await anyio.sleep(max(0.0, started + self.max_staleness / 2 - time.monotonic()))

    async def _rest(self) -> None:
        """Wait for the next poll. Once the last check is older than the staleness bound, that
        poll is answered from the database; the check it wakes keeps what was read if the
        fingerprint has not moved meanwhile."""
        self.waking = anyio.Event()
        try:
            await self.waking.wait()
        finally:
            self.waking = None
