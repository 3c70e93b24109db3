"""A claimed job as the code that runs it sees it: its spec, its lease, and its writes.

Each write renews the lease first, in the same transaction, and rolls everything back if the lease
was lost: a worker that lost its job can never add a point or a checkpoint to it. The lease,
the writes (to the history-writer process or a thread), the checkpoints' timing and the job's
phase share one object, longer than most modules, because each of them renews or reads the
same lease.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any, TypeVar

import numpy as np
from sqlalchemy.orm import Session

from service.db.session import Database
from service.history import rollup_store
from service.history import writes as history_writes
from service.jobs import queue
from service.jobs.queue import ClaimedJob, LeaseLost
from service.jobs.spec import JobSpec
from service.settings import Settings
from worker import history_writer
from worker.history_writer import Flush, WriterProcess, write
from worker.retry import in_transaction

log = logging.getLogger("descent.worker")
T = TypeVar("T")


@dataclass
class Outcome:
    """How a run ended: a terminal status, or "queued" to hand the job back (`lost`: part of
    its run was lost, which counts towards DESCENT_MAX_WORKER_LOSSES)."""

    status: str
    values: dict[str, Any] = field(default_factory=dict)
    lost: bool = False


@dataclass(frozen=True)
class Resume:
    step: int
    payload: bytes


class JobContext:
    def __init__(
        self,
        settings: Settings,
        database: Database,
        owner: str,
        claimed: ClaimedJob,
        stopping: threading.Event,
    ) -> None:
        self.settings = settings
        self.database = database
        self.owner = owner
        self.claimed = claimed
        self.stopping = stopping
        self.lease_lost = threading.Event()
        self.timings: dict[str, float] = {
            "queued_s": (claimed.started_at - claimed.created_at).total_seconds()
        }
        self._last_checkpoint_time = time.monotonic()
        self._last_checkpoint_step = 0
        self._writing: Callable[[], bool] | None = None  # waits for the write in flight
        self.write_wait_s = 0.0  # how long the engine has waited for its writes (settle)
        self._writer: WriterProcess | None = None
        self._writes_in_a_process = history_writer.in_use(settings, database)
        # progress.phase: what the job waits for instead of stepping. The heartbeat writes it,
        # woken by `set_phase`, so the thread that waits never waits for the database too.
        self.phase: str | None = None
        self.phase_changed = threading.Event()

    @cached_property
    def spec(self) -> JobSpec:
        """The stored spec validated by the API's own model, so the job runs under the same limits
        and reads each value with its type back (PostgreSQL's jsonb returns a float such as 1e300
        as an integer). Validated on the first read, which raises pydantic's ValidationError when
        the spec is no longer valid on this server: the runner reads it before anything else."""
        return JobSpec.model_validate(self.claimed.spec)

    @property
    def max_losses(self) -> int:
        return self.settings.max_worker_losses

    @property
    def job_id(self) -> str:
        return self.claimed.id

    # ---- starting ----------------------------------------------------------------------------
    def resume_point(self) -> Resume | None:
        """The checkpoint to resume from (history after it is dropped), or None to start over."""

        def work(session: Session) -> Resume | None:
            self._renew(session)
            checkpoint = queue.get_checkpoint(session, self.job_id)
            if checkpoint is None:
                if self.claimed.attempts > 1:
                    queue.start_over(session, self.job_id)
                return None
            history_writes.truncate_history(session, self.job_id, checkpoint.step)
            queue.record_resume(session, self.job_id, self.claimed.attempts, checkpoint.step)
            return Resume(checkpoint.step, checkpoint.payload)

        resume = in_transaction(self.database, work)
        if resume is not None:
            self._last_checkpoint_step = resume.step
            log.info(
                "job %s resumes from step %d",
                self.job_id,
                resume.step,
                extra={"job_id": self.job_id},
            )
        return resume

    # ---- while running -----------------------------------------------------------------------
    def _renew(self, session: Session, **values: Any) -> bool:
        return queue.renew(session, self.job_id, self.owner, self.settings.lease_seconds, **values)

    def heartbeat(self, **values: Any) -> bool:
        """Renew the lease (setting `values`); True if a cancel was requested."""
        return in_transaction(self.database, lambda session: self._renew(session, **values))

    def set_phase(self, phase: str | None) -> None:
        """Show `phase` as the job's progress.phase (None: stepping) at the next heartbeat, which
        this brings forward."""
        self.phase = phase
        self.phase_changed.set()

    def checkpoint_due(self, step: int) -> bool:
        every_steps = self.settings.checkpoint_steps
        return (
            time.monotonic() - self._last_checkpoint_time >= self.settings.checkpoint_seconds
            or (every_steps > 0 and step - self._last_checkpoint_step >= every_steps)
            or self.stopping.is_set()
        )

    def flush(
        self,
        points: list[history_writes.Points],
        *,
        step: int,
        metrics: dict[str, Any],
        checkpoint: bytes | None = None,
        weights: np.ndarray | None = None,
    ) -> bool:
        """Start writing points, progress, metrics (and a checkpoint); True if a cancel came.

        The write runs while the engine computes the next chunk, in the writer process lent to
        this job (worker.history_writer) or on a thread (DESCENT_HISTORY_WRITER=thread); one
        write at a time, in order: this first waits for the previous one and raises its error.
        The cancel flag is the one that write saw. Call `settle()` before anything that needs
        the write done (reading the points back, ending the job).
        """
        cancel = self.settle()
        if self.lease_lost.is_set():
            raise LeaseLost(self.job_id)
        flush = Flush(
            job_id=self.job_id, owner=self.owner, attempt=self.claimed.attempts,
            lease_seconds=self.settings.lease_seconds, step=step, metrics=metrics, points=points,
            checkpoint=checkpoint, weights=weights,
        )  # fmt: skip
        if self._writes_in_a_process:
            self._writer = self._writer or history_writer.writers.acquire()
            self._writer.send(self.database, flush)  # pickled at once: no copies needed
            self._writing = self._writer.receive
        else:
            self._writing = self._write_on_a_thread(flush)
        if checkpoint is not None:
            self._last_checkpoint_time = time.monotonic()
            self._last_checkpoint_step = step
        return cancel

    def _write_on_a_thread(self, flush: Flush) -> Callable[[], bool]:
        # Copies: the engine goes on mutating what it handed over (W is updated in place).
        weights = None if flush.weights is None else flush.weights.copy()
        flush = replace(flush, metrics=dict(flush.metrics), weights=weights)
        # Summarized and turned into statements here, not on the writing thread: every NumPy
        # call on a large array lets go of the GIL and takes it back, and Python work on the
        # writer holds it in slices of the switch interval; each time the writer takes it
        # back it stops the engine (which holds the GIL between its own small calls) while the
        # two threads trade places. Here this costs the engine its work alone, without the
        # trades; the writer holds the GIL only to bind each statement.
        rollups = rollup_store.summarize(flush.points)
        dialect = self.database.engine.dialect.name
        writes = history_writes.point_writes(dialect, self.job_id, flush.points, rollups)
        future: Future[bool] = Future()

        def work() -> bool:
            return in_transaction(self.database, lambda session: write(session, flush, writes))

        threading.Thread(
            target=_complete, args=(future, work), name=f"flush-{self.job_id}", daemon=True
        ).start()
        return future.result

    def settle(self) -> bool:
        """Wait for the write `flush` started; its error, or whether it saw a cancel request.
        The time waited adds to `write_wait_s`."""
        writing, self._writing = self._writing, None
        if writing is None:
            return False
        started = time.perf_counter()
        try:
            return writing()
        finally:
            self.write_wait_s += time.perf_counter() - started

    def close(self) -> None:
        """Give the writer process back for the next job (once the job has ended)."""
        writer, self._writer = self._writer, None
        if writer is not None:
            history_writer.writers.release(writer)

    def put_arrays(self, arrays: dict[str, tuple[np.ndarray, int]], **values: Any) -> None:
        def work(session: Session) -> None:
            self._renew(session, **values)
            for name, (array, step) in arrays.items():
                queue.put_array(session, self.job_id, name, array, step)

        in_transaction(self.database, work)

    # ---- ending ------------------------------------------------------------------------------
    def end(self, outcome: Outcome) -> None:
        def work(session: Session) -> None:
            if outcome.lost and queue.losses(session, self.job_id) + 1 >= self.max_losses:
                error = {"type": "worker_lost", "message": f"lost {self.max_losses} time(s)"}
                done = queue.finish(session, self.job_id, self.owner, "failed", error=error,
                                    lost_count=self.max_losses, timings=self.timings)  # fmt: skip
            elif outcome.status == "queued":
                done = queue.release(session, self.job_id, self.owner, lost=outcome.lost)
            else:
                values = {"timings": self.timings, **outcome.values}
                done = queue.finish(session, self.job_id, self.owner, outcome.status, **values)
            if not done:
                raise LeaseLost(self.job_id)
            queue.end_attempt(session, self.job_id, self.claimed.attempts, outcome.status)

        in_transaction(self.database, work)


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


class Heartbeat:
    """Renews a job's lease in the background, so long steps or loads never let it expire, and
    writes the job's phase as soon as it changes."""

    def __init__(self, context: JobContext) -> None:
        self.context = context
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="heartbeat", daemon=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self.context.phase_changed.set()  # wakes the thread
        self._thread.join()

    def _beat(self) -> None:
        interval = self.context.settings.heartbeat_seconds
        woken = self.context.phase_changed
        written: str | None = None  # the job's phase as claimed: none
        while True:
            woken.wait(interval)
            woken.clear()
            if self._stop.is_set():
                return
            phase = self.context.phase
            values = {"progress_phase": phase} if phase != written else {}
            try:
                self.context.heartbeat(**values)
                written = phase
            except LeaseLost:
                log.warning(
                    "job %s: lease lost", self.context.job_id, extra={"job_id": self.context.job_id}
                )
                self.context.lease_lost.set()
                return
            except Exception:  # a failed renewal is retried at the next beat
                log.exception(
                    "job %s: heartbeat failed",
                    self.context.job_id,
                    extra={"job_id": self.context.job_id},
                )
