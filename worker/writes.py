"""A running job's writes in flight (or a population's, all of its jobs in one transaction).

One write at a time, in order: `start` first waits for the previous write and raises its error.
The write runs while the engine computes the next chunk, in a writer process lent to the run
(worker.history_writer) or on a thread (DESCENT_HISTORY_WRITER=thread, or an in-memory SQLite
database that only this process can open).
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import replace
from typing import TypeVar

from service.db.session import Database
from service.history import rollup_store
from service.history import writes as history_writes
from service.settings import Settings
from worker import history_writer
from worker.history_writer import Flush, WriterProcess, write_all
from worker.retry import in_transaction

T = TypeVar("T")
Results = list[bool | None]  # per flush: a cancel was requested, or None: that job's lease is lost


class Writes:
    def __init__(self, settings: Settings, database: Database) -> None:
        self.database = database
        self._in_a_process = history_writer.in_use(settings, database)
        self._writer: WriterProcess | None = None
        self._writing: Callable[[], Results] | None = None
        self.wait_s = 0.0  # how long the engine has waited for its writes (settle)

    def start(self, flushes: list[Flush]) -> Results:
        """Start writing `flushes` in one transaction; the previous write's results (empty if
        there was none)."""
        previous = self.settle()
        if self._in_a_process:
            self._writer = self._writer or history_writer.writers.acquire()
            self._writer.send(self.database, flushes)  # pickled at once: no copies needed
            self._writing = self._writer.receive
        else:
            self._writing = self._on_a_thread(flushes)
        return previous

    def _on_a_thread(self, flushes: list[Flush]) -> Callable[[], Results]:
        # Copies: the engine goes on mutating what it handed over (W is updated in place).
        flushes = [
            replace(flush, metrics=dict(flush.metrics),
                    weights=None if flush.weights is None else flush.weights.copy())
            for flush in flushes
        ]  # fmt: skip
        # Summarized and turned into statements here, not on the writing thread: every NumPy
        # call on a large array lets go of the GIL and takes it back, and Python work on the
        # writer holds it in slices of the switch interval; each time the writer takes it
        # back it stops the engine (which holds the GIL between its own small calls) while the
        # two threads trade places. Here this costs the engine its work alone, without the
        # trades; the writer holds the GIL only to bind each statement.
        dialect = self.database.engine.dialect.name
        writes = [
            history_writes.point_writes(
                dialect, flush.job_id, flush.points, rollup_store.summarize(flush.points)
            )
            for flush in flushes
        ]
        future: Future[Results] = Future()

        def work() -> Results:
            return in_transaction(
                self.database, lambda session: write_all(session, flushes, writes)
            )

        threading.Thread(target=_complete, args=(future, work), name="flush", daemon=True).start()
        return future.result

    def settle(self) -> Results:
        """Wait for the write in flight; its results, or its error. Empty if none was in flight.
        The time waited adds to `wait_s`."""
        writing, self._writing = self._writing, None
        if writing is None:
            return []
        started = time.perf_counter()
        try:
            return writing()
        finally:
            self.wait_s += time.perf_counter() - started

    def close(self) -> None:
        """Give the writer process back for the next run (once the run has ended)."""
        writer, self._writer = self._writer, None
        if writer is not None:
            history_writer.writers.release(writer)


class _SwitchInterval:
    """The interpreter's switch interval, shortened while at least one write is in flight.

    A write's thread needs the GIL back after each statement it runs; an engine busy in Python
    hands it over only when asked to, once the switch interval (5 ms by default) has passed, and
    every GIL release the engine makes meanwhile wakes the waiting thread for nothing. A shorter
    interval while a write runs lets the write finish sooner and costs the engine less time
    (bench.history_writes).
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._lock = threading.Lock()
        self._users = 0
        self._saved = 0.0

    @contextmanager
    def shortened(self) -> Iterator[None]:
        with self._lock:
            if self._users == 0:
                self._saved = sys.getswitchinterval()
                sys.setswitchinterval(min(self.seconds, self._saved))
            self._users += 1
        try:
            yield
        finally:
            with self._lock:
                self._users -= 1
                if self._users == 0:
                    sys.setswitchinterval(self._saved)


_while_writing = _SwitchInterval(0.001)


def _complete(future: Future[T], work: Callable[[], T]) -> None:
    try:
        with _while_writing.shortened():
            result = work()
    except BaseException as exc:  # handed to the thread that waits for the result
        future.set_exception(exc)
    else:
        future.set_result(result)
