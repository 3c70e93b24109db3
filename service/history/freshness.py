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

Kept answers may be served to a request only after a completed check that started less than
`max_staleness` before the request arrived (`current`), so an answer never misses a commit older
than that. When the watcher's checks fall behind (a busy machine delays its thread and its wake-up)
a request waits for a check that starts after it arrived, one at a time, shared by every request
waiting: a burst of polls costs one check, not a read of the database each, which would only make
the machine busier and the checks later still. Reads go to the database when a check fails, or
when there is no watcher. The watcher rests while nobody reads (after IDLE_SECONDS without a poll)
and wakes on the next poll, which waits for one check.
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
from service.single_flight import SingleFlight

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
    """The generation, the last check, the check under way, and whether the watcher rests."""

    def __init__(self, max_staleness: float) -> None:
        self.max_staleness = max_staleness
        self.checked_at = -1e9  # monotonic start of the last completed check
        self.polled_at = time.monotonic()  # monotonic time of the last poll
        self.waking: anyio.Event | None = None  # set by the next poll while the watcher rests
        self._generation = 0
        self._lock = threading.Lock()  # `moved` runs in the threads that commit
        self._read: Callable[[], object] | None = None  # the fingerprint, while watching
        self._fingerprint: object = None  # the last one read
        self.checks: SingleFlight[None] = SingleFlight()  # the check under way, if any
        self._check_succeeded = False  # whether the last completed check did
        # A limiter of its own: the checks never queue behind the endpoints' reads.
        self._limiter = anyio.CapacityLimiter(1)

    @property
    def generation(self) -> int:
        return self._generation

    def moved(self) -> None:
        """Something may have changed: whatever was read before is stale."""
        with self._lock:
            self._generation += 1

    def fresh(self) -> bool:
        return time.monotonic() - self.checked_at <= self.max_staleness

    async def current(self) -> bool:
        """Whether what is kept may be served to a request arriving now: once a check that
        started at most `max_staleness` before now has completed, waiting for one if need be;
        False if a check fails or nothing watches the database."""
        arrived = time.monotonic()
        while self.checked_at < arrived - self.max_staleness:
            if self._read is None or not await self.check():
                return False
        return True

    async def check(self) -> bool:
        """Read the fingerprint (moving the generation if it changed), or wait for the read under
        way; whether it succeeded."""
        if self.checks:
            await self.checks.wait(None)
            return self._check_succeeded
        assert self._read is not None, "check() outside watching()"
        with self.checks.lead(None):
            started = time.monotonic()
            try:
                fingerprint = await anyio.to_thread.run_sync(self._read, limiter=self._limiter)
            except Exception:  # nothing kept is served until a check succeeds again
                log.warning("live reads: database check failed", exc_info=True)
                self._check_succeeded = False
                return False
            if fingerprint != self._fingerprint:
                self.moved()
                self._fingerprint = fingerprint
            self.checked_at = max(self.checked_at, started)
            self._check_succeeded = True
            return True

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
        self._read, close = reader
        try:
            async with anyio.create_task_group() as group:
                group.start_soon(self._watch)
                try:
                    yield
                finally:
                    group.cancel_scope.cancel()
        finally:
            self._read, self._fingerprint = None, None
            self.checked_at = -1e9  # no more checks: nothing kept may be served
            close()

    async def _watch(self) -> None:
        while True:
            started = time.monotonic()
            await self.check()
            if time.monotonic() - self.polled_at > IDLE_SECONDS:
                await self._rest()
                continue
            await anyio.sleep(max(0.0, started + self.max_staleness / 2 - time.monotonic()))

    async def _rest(self) -> None:
        """Wait for the next poll (which itself waits for a check, and keeps what was read if the
        fingerprint has not moved meanwhile)."""
        self.waking = anyio.Event()
        try:
            await self.waking.wait()
        finally:
            self.waking = None
