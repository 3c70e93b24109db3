"""A running job's history writes, each one transaction, run in a process of their own.

A job hands its new points, progress and metrics (and now and then a checkpoint) to the database
every DESCENT_FLUSH_SECONDS while its engine computes on. Written from a thread of the job's
own process, those writes cost the engine more than their work: the writing thread takes the GIL
back after every statement it runs, and each time it stops the engine, which holds the GIL
between its own small calls, while the two trade places. A process has a GIL of its own, so
there the engine pays only to pickle what it hands over.

One writer process serves one running job at a time; it is spawned (it shares nothing with the
worker but the database), kept for the worker's next job, and exits when the worker's end of its
pipe closes, however the worker ends. `write` is the transaction itself, which the worker's
thread mode (DESCENT_HISTORY_WRITER=thread) runs in-process.
"""

from __future__ import annotations

import atexit
import multiprocessing
import signal
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

import numpy as np
from sqlalchemy.orm import Session

from service.db import bulk
from service.db.session import Database
from service.history import writes as history_writes
from service.jobs import queue
from service.settings import Settings
from worker.retry import describe, in_transaction

# The writer keeps this many databases open (tests run many workers, each on its own database).
OPEN_DATABASES = 4
# How long closing a writer waits for it to exit before killing it: a writer still starting
# (importing the service) sees its closed pipe only once it is up, which on a busy machine takes
# a while; one that is up exits at once.
CLOSE_SECONDS = 30.0


@dataclass(frozen=True)
class Flush:
    """One write of a running job: picklable, for the writer process."""

    job_id: str
    owner: str
    attempt: int
    lease_seconds: float
    step: int
    metrics: dict[str, Any]
    points: list[history_writes.Points]
    checkpoint: bytes | None = None
    weights: np.ndarray | None = None


class WriteFailed(RuntimeError):
    """The writer process could not write (its error, as "Type: message"), or it died."""


class WriterDied(WriteFailed):
    """The writer process died (killed, out of memory): the flush it held is lost, not the job,
    which resumes from its last checkpoint."""


def write_all(
    session: Session,
    flushes: Sequence[Flush],
    writes: Sequence[Sequence[bulk.Statement] | None] | None = None,
) -> list[bool | None]:
    """Renew the leases of the flushes' jobs (one job, or a population's), then write each
    flush whose job this worker still holds, in the session's transaction: per flush, whether a
    cancel was requested, or None where another worker holds that job (its renewal matched
    nothing, so nothing of it was written).

    `writes`: history_writes.point_writes of each flush's points, if the caller built them
    already."""
    renewals = [
        queue.Renewal(
            f.job_id, f.owner, f.lease_seconds, {"progress_step": f.step, "metrics": f.metrics}
        )
        for f in flushes
    ]
    held = queue.renew_many(session, renewals)
    dialect = session.get_bind().dialect.name
    results: list[bool | None] = []
    for position, flush in enumerate(flushes):
        results.append(held.get(flush.job_id))
        if flush.job_id not in held:
            continue
        statements = None if writes is None else writes[position]
        if statements is None:
            statements = history_writes.point_writes(dialect, flush.job_id, flush.points)
        history_writes.write_points(session, statements)
        if flush.checkpoint is not None:
            queue.put_checkpoint(session, flush.job_id, flush.attempt, flush.step, flush.checkpoint)
        if flush.weights is not None:
            queue.put_array(session, flush.job_id, "W", flush.weights, flush.step)
    return results


def _serve(connection: Connection) -> None:
    """Answer each (database URL, busy timeout, flushes) received until the worker closes its
    end of the pipe."""
    # Ctrl-C in a terminal reaches the whole process group: the worker decides when to stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    databases: OrderedDict[tuple[str, int], Database] = OrderedDict()
    try:
        while True:
            try:
                target, flush = connection.recv()
                connection.send(_answer(databases, target, flush))
            except (EOFError, OSError):  # the worker is gone (a reset if it was killed)
                return
    finally:
        for database in databases.values():
            database.dispose()


def _answer(
    databases: OrderedDict[tuple[str, int], Database],
    target: tuple[str, int],
    flushes: list[Flush],
) -> tuple[str, object]:
    try:
        url, busy_timeout_ms = target
        database = databases.pop(target, None) or Database(url, busy_timeout_ms=busy_timeout_ms)
        databases[target] = database
        while len(databases) > OPEN_DATABASES:
            databases.popitem(last=False)[1].dispose()
        return "done", in_transaction(database, lambda session: write_all(session, flushes))
    except Exception as exc:  # sent back: the job that asked fails with it
        return "failed", describe(exc)


# ---- in the worker ---------------------------------------------------------------------------
def in_use(settings: Settings, database: Database) -> bool:
    """Whether jobs write through writer processes: DESCENT_HISTORY_WRITER=process, on a database
    another process can open (an in-memory SQLite database exists only in this one)."""
    return settings.history_writer == "process" and not database.in_memory


class WriterProcess:
    """A writer process and the worker's end of its pipe: one write in flight at a time."""

    def __init__(self) -> None:
        spawn = multiprocessing.get_context("spawn")
        self._connection, theirs = spawn.Pipe()
        self.process = spawn.Process(
            target=_serve, args=(theirs,), name="descent-history-writer", daemon=True
        )
        self.process.start()
        theirs.close()  # the writer's end lives in the writer only: it sees EOF if we go
        self._waiting = False

    @property
    def reusable(self) -> bool:
        """Alive, with no answer left unread."""
        return not self._waiting and self.process.is_alive()

    def send(self, database: Database, flushes: list[Flush]) -> None:
        """Hand the flushes to the writer, for `database` (pickled now: the caller may go on
        changing what it holds)."""
        if self._waiting:
            raise RuntimeError("the previous write's answer was not received")
        try:
            self._connection.send(((database.url, database.busy_timeout_ms), flushes))
        except OSError as exc:
            raise self._died() from exc
        self._waiting = True

    def receive(self) -> list[bool | None]:
        """Wait for the answer to what `send` sent: `write_all`'s, or WriteFailed."""
        if not self._waiting:
            raise RuntimeError("nothing was sent")
        self._waiting = False
        try:
            kind, value = self._connection.recv()
        except (EOFError, OSError) as exc:
            raise self._died() from exc
        if kind == "failed":
            raise WriteFailed(str(value))
        results: list[bool | None] = value
        return results

    def _died(self) -> WriterDied:
        self.process.join(CLOSE_SECONDS)
        return WriterDied(f"the history writer process died (exit code {self.process.exitcode})")

    def close(self) -> None:
        self._connection.close()
        self.process.join(CLOSE_SECONDS)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()


class WriterPool:
    """Idle writer processes, each lent to one running job at a time and kept for the next."""

    def __init__(self) -> None:
        self._idle: list[WriterProcess] = []
        self._lock = threading.Lock()

    def acquire(self) -> WriterProcess:
        with self._lock:
            while self._idle:
                writer = self._idle.pop()
                if writer.reusable:
                    return writer
                writer.close()
        return WriterProcess()

    def warm(self) -> None:
        """Start a writer now if none is idle, so that a job's first write need not wait for
        one to start (spawning imports the service: about half a second)."""
        with self._lock:
            if not self._idle:
                self._idle.append(WriterProcess())

    def release(self, writer: WriterProcess) -> None:
        if not writer.reusable:
            writer.close()
            return
        with self._lock:
            self._idle.append(writer)

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for writer in idle:
            writer.close()


writers = WriterPool()
atexit.register(writers.close)
