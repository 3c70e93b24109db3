"""A claimed job as the code that runs it sees it: its spec, its lease, and its writes.

Each write renews the lease first, in the same transaction, and rolls everything back if the lease
was lost: a worker that lost its job can never add a point or a checkpoint to it. The lease,
the writes (to the history-writer process or a thread), the checkpoints' timing and the job's
phase share one object, longer than most modules, because each of them renews or reads the
same lease.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, TypeVar

import numpy as np
from sqlalchemy.orm import Session

from service.db.session import Database
from service.history import writes as history_writes
from service.jobs import queue
from service.jobs.queue import ClaimedJob, LeaseLost
from service.jobs.spec import JobSpec
from service.settings import Settings
from worker.history_writer import Flush
from worker.retry import in_transaction
from worker.writes import Writes

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
        self.writes = Writes(settings, database)
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
            self.renew(session)
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
    def renew(self, session: Session, **values: Any) -> bool:
        """Renew the lease in the session's transaction, setting `values`; whether a cancel was
        requested. Raises LeaseLost (setting nothing) once another worker holds the job."""
        return queue.renew(session, self.job_id, self.owner, self.settings.lease_seconds, **values)

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

        The write runs while the engine computes the next chunk (worker.writes); this first
        waits for the previous one and raises its error. The cancel flag is the one that write
        saw. Call `settle()` before anything that needs the write done (reading the points
        back, ending the job).
        """
        cancel = self._seen(self.writes.start([self.flush_of(points, step, metrics, checkpoint,
                                                             weights)]))  # fmt: skip
        if checkpoint is not None:
            self.checkpointed(step)
        return cancel

    def flush_of(
        self,
        points: list[history_writes.Points],
        step: int,
        metrics: dict[str, Any],
        checkpoint: bytes | None = None,
        weights: np.ndarray | None = None,
    ) -> Flush:
        """This job's share of a write, for `Writes.start` (after `lease_lost` is checked)."""
        if self.lease_lost.is_set():
            raise LeaseLost(self.job_id)
        return Flush(
            job_id=self.job_id, owner=self.owner, attempt=self.claimed.attempts,
            lease_seconds=self.settings.lease_seconds, step=step, metrics=metrics, points=points,
            checkpoint=checkpoint, weights=weights,
        )  # fmt: skip

    def checkpointed(self, step: int) -> None:
        """Note a checkpoint at `step` handed to the writes (for `checkpoint_due`)."""
        self._last_checkpoint_time = time.monotonic()
        self._last_checkpoint_step = step

    def _seen(self, results: list[bool | None]) -> bool:
        if not results:
            return False
        if results[0] is None:
            raise LeaseLost(self.job_id)
        return results[0]

    def settle(self) -> bool:
        """Wait for the write `flush` started; its error, or whether it saw a cancel request."""
        return self._seen(self.writes.settle())

    @property
    def write_wait_s(self) -> float:
        """How long the engine has waited for its writes."""
        return self.writes.wait_s

    def close(self) -> None:
        """Give the writer process back for the next job (once the job has ended)."""
        self.writes.close()

    def put_arrays(self, arrays: dict[str, tuple[np.ndarray, int]], **values: Any) -> None:
        def work(session: Session) -> None:
            self.renew(session, **values)
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


class Heartbeat:
    """Renews the leases of a job (or of a population's jobs, in one transaction) in the
    background, so that long steps or loads never let them expire, and writes the phase of the
    first one (the population's) to each as soon as it changes."""

    def __init__(self, *contexts: JobContext) -> None:
        self.contexts = list(contexts)
        self.leader = contexts[0]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="heartbeat", daemon=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self.leader.phase_changed.set()  # wakes the thread
        self._thread.join()

    def renew_all(self, values: dict[str, Any]) -> None:
        """One beat: every lease still held renewed (setting `values`) in one transaction."""
        in_transaction(self.leader.database, lambda session: self._renew_each(session, values))

    def _renew_each(self, session: Session, values: dict[str, Any]) -> None:
        held = [context for context in self.contexts if not context.lease_lost.is_set()]
        renewed = queue.renew_many(session, [
            queue.Renewal(c.job_id, c.owner, c.settings.lease_seconds, values) for c in held
        ])  # fmt: skip
        for context in held:
            if context.job_id not in renewed:  # renewing it matched nothing: the others go on
                log.warning("job %s: lease lost", context.job_id,
                            extra={"job_id": context.job_id})  # fmt: skip
                context.lease_lost.set()

    def _beat(self) -> None:
        interval = self.leader.settings.heartbeat_seconds
        woken = self.leader.phase_changed
        written: str | None = None  # the jobs' phase as claimed: none
        while True:
            woken.wait(interval)
            woken.clear()
            if self._stop.is_set():
                return
            phase = self.leader.phase
            values = {"progress_phase": phase} if phase != written else {}
            try:
                self.renew_all(values)
                written = phase
            except Exception:  # a failed renewal is retried at the next beat
                log.exception("heartbeat failed for job %s", self.leader.job_id,
                              extra={"job_id": self.leader.job_id})  # fmt: skip
            if all(context.lease_lost.is_set() for context in self.contexts):
                return
