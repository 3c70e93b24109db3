"""The worker loop: claim a job, run it through the engine, stream its history, end it.

This is where the engine meets the database (through worker.context and service.jobs.queue). One
Worker runs one job at a time; `descent worker --concurrency N` starts N worker processes.
With warm_up (the worker processes of `descent serve` and `descent worker`), a worker first
readies the engine's compiled kernels (worker.compiled_kernels), so that jobs do not wait for
them; a job that still has to wait for a compilation shows it as its progress.phase.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time

from pydantic import ValidationError
from sqlalchemy.orm import Session
from threadpoolctl import threadpool_limits

from service import idempotency, retention
from service.db.session import Database
from service.jobs import queue
from service.jobs.queue import LeaseLost
from service.settings import Settings
from worker import compiled_kernels, history_writer
from worker.context import Heartbeat, JobContext, Outcome, Resume
from worker.engine.datasets import DatasetUnavailable
from worker.engine.parallel import limit_threads
from worker.prepare import DataPreparer
from worker.prepared_data import PreparedData
from worker.retry import describe, in_transaction
from worker.search_job import run_search
from worker.task_job import run_task
from worker.train_job import run_train
from worker.wakeup import make_waiter

log = logging.getLogger("descent.worker")
MAINTENANCE_SECONDS = 600.0


class Worker:
    def __init__(
        self, settings: Settings, database: Database | None = None, *, warm_up: bool = False
    ) -> None:
        """warm_up: before the first claim, point numba's disk cache at the kernel_cache_dir
        setting and compile or load the kernels jobs use. Off for workers made in-process (the
        tests): their process keeps numba's cache where it is, and a kernel compiles on first
        use, once per process."""
        self.settings = settings
        self.warm_up = warm_up
        self.warm_up_seconds: float | None = None
        self.database = database or Database(
            settings.database_url, busy_timeout_ms=settings.sqlite_busy_timeout_ms
        )
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{id(self):x}"
        self.stopping = threading.Event()
        self.data = DataPreparer.from_settings(settings)
        self.jobs_done = 0
        self._last_maintenance = -MAINTENANCE_SECONDS

    def close(self) -> None:
        self.database.dispose()

    def __enter__(self) -> Worker:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # ---- the loop ----------------------------------------------------------------------------
    def run(self, *, burst: bool = False, max_jobs: int | None = None) -> int:
        """Claim and run jobs until stopped (or, with burst, until the queue is empty)."""
        log.info("worker %s started (burst=%s)", self.owner, burst)
        if self.warm_up and self.warm_up_seconds is None:
            assert self.settings.kernel_cache_dir is not None  # Settings resolves the default
            self.warm_up_seconds = compiled_kernels.prepare(
                self.settings.kernel_cache_dir, self._blas_threads(), self.stopping.is_set
            )
        if history_writer.in_use(self.settings, self.database):
            history_writer.writers.warm()
        waiter = make_waiter(self.settings.database_url, self.stopping)
        try:
            while not self.stopping.is_set():
                if max_jobs is not None and self.jobs_done >= max_jobs:
                    break
                claimed = self.claim()
                if claimed is None:
                    if burst:
                        break
                    self.maintain()
                    waiter.wait(self.settings.poll_seconds)
                    continue
                self.execute(claimed)
                self.jobs_done += 1
        finally:
            waiter.close()
        log.info("worker %s stopped after %d jobs", self.owner, self.jobs_done)
        return self.jobs_done

    def maintain(self, *, force: bool = False) -> None:
        """Housekeeping an idle worker does now and then: retention, expired idempotency keys."""
        now = time.monotonic()
        if not force and now - self._last_maintenance < MAINTENANCE_SECONDS:
            return
        self._last_maintenance = now
        days = self.settings.retention_days
        try:
            pruned = in_transaction(
                self.database,
                lambda session: (
                    retention.prune_expired(session, days) if days else 0,
                    idempotency.prune(session),
                ),
            )
            log.info("maintenance: %d job histories downsampled, %d keys expired", *pruned)
        except Exception:  # housekeeping must never stop the worker
            log.exception("maintenance failed")

    def claim(self) -> queue.ClaimedJob | None:
        # A read first: an idle worker never takes SQLite's write lock just to find nothing.
        with self.database.read() as session:
            if not queue.has_claimable(session):
                return None

        def work(session: Session) -> queue.ClaimedJob | None:
            queue.fail_exhausted(session, self.settings.max_worker_losses)
            return queue.claim(session, self.owner, self.settings.lease_seconds)

        return in_transaction(self.database, work)

    # ---- one job -----------------------------------------------------------------------------
    def execute(self, claimed: queue.ClaimedJob) -> None:
        log.info(
            "job %s claimed (attempt %d)",
            claimed.id,
            claimed.attempts,
            extra={"job_id": claimed.id},
        )
        context = JobContext(self.settings, self.database, self.owner, claimed, self.stopping)
        try:
            with Heartbeat(context), compiled_kernels.watch(context.set_phase):
                outcome = self._run(context)
            context.end(outcome)
        except LeaseLost:
            log.warning(
                "job %s: lease lost, another worker has it",
                claimed.id,
                extra={"job_id": claimed.id},
            )
            return
        finally:
            context.close()
        log.info("job %s %s", claimed.id, outcome.status, extra={"job_id": claimed.id})

    def _run(self, context: JobContext) -> Outcome:
        try:
            spec = context.spec  # validated here, once; every later read gets the same object
        except ValidationError as exc:
            return _failed("invalid_spec", f"the job's spec is not valid on this server: {exc}")
        try:
            resume = context.resume_point()
            started = time.perf_counter()
            try:
                data, cache_hit = self.data.prepare(spec)
            except DatasetUnavailable as exc:
                return _failed("dataset_unavailable", str(exc))
            except ValueError as exc:
                return _failed("invalid_dataset", str(exc))
            context.timings["load_s"] = time.perf_counter() - started
            log.info(
                "job %s: data ready in %.2fs (cache %s)",
                context.job_id,
                context.timings["load_s"],
                "hit" if cache_hit else "miss",
                extra={"job_id": context.job_id},
            )
            pre = data.preprocessor
            arrays = {name: (stat, 0) for name, stat in (("mean", pre.mean), ("std", pre.std))
                      if stat is not None}  # fmt: skip
            context.put_arrays(arrays, timings=context.timings)
            started = time.perf_counter()
            threads = self._blas_threads()
            # OpenBLAS's threads and the engine's own (passes, batch prefetch) share one budget.
            with threadpool_limits(limits=threads), limit_threads(threads):
                outcome = self._dispatch(context, data, resume)
            context.timings["run_s"] = time.perf_counter() - started
            context.timings["write_wait_s"] = context.write_wait_s
            return outcome
        except LeaseLost:
            raise
        except history_writer.WriterDied as exc:
            # The flush in flight is lost, not the job: it resumes from its last checkpoint.
            log.warning("job %s: %s; handing it back", context.job_id, exc,
                        extra={"job_id": context.job_id})  # fmt: skip
            return Outcome("queued", lost=True)
        except Exception as exc:
            log.exception("job %s failed", context.job_id, extra={"job_id": context.job_id})
            return _failed("internal_error", describe(exc))

    def _dispatch(self, context: JobContext, data: PreparedData, resume: Resume | None) -> Outcome:
        spec = context.spec
        if spec.task != "train":
            return run_task(context, data)
        if spec.is_search:
            return run_search(context, data, resume)
        return run_train(context, data, resume)

    def _blas_threads(self) -> int:
        return self.settings.blas_threads or max(1, os.cpu_count() or 1)


def _failed(error_type: str, message: str) -> Outcome:
    return Outcome("failed", {"error": {"type": error_type, "message": message}})
