"""The worker loop: claim a job, run it through the engine, stream its history, end it.

This is where the engine meets the database (through worker.context and service.jobs.queue). One
Worker runs one job at a time; `descent worker --concurrency N` starts N worker processes.
With warm_up (the worker processes of `descent serve` and `descent worker`), a worker first
configures the engine's backend for its process from the settings, then readies the compiled
kernels (worker.compiled_kernels): loaded from the disk cache before its first claim, so that jobs
do not wait for them; on a machine's first start, when they must be compiled, in a thread while
the worker already claims jobs, so that a job that needs no kernel (a class count the kernels are
not made for, the NumPy backend's strategies) does not queue behind the compilation. A job that
runs while its process compiles shows it as its progress.phase.
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

from service import idempotency, maintenance
from service.db.session import Database
from service.jobs import queue
from service.jobs.queue import LeaseLost
from service.settings import Settings
from worker import compiled_kernels, history_writer
from worker.context import Heartbeat, JobContext, Outcome, Resume
from worker.engine import accel
from worker.engine.accel.parallel import limit_threads
from worker.engine.datasets import DatasetUnavailable
from worker.population_job import PopulationRun, companions
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
        """warm_up: this worker owns its process (`python -m worker`). Before the first claim it
        configures the engine's backend from the fused_kernels and kernel_cache_dir settings,
        then loads the kernels jobs use, or compiles them while it claims jobs. Off for workers
        made in-process (the tests): they leave their process's backend as it is (the compiled
        one with numba's own cache, unless something configured another), and a kernel
        compiles on first use, once per process."""
        self.settings = settings
        self.warm_up = warm_up
        self._warming: compiled_kernels.WarmUp | None = None
        self.database = database or Database(
            settings.database_url, busy_timeout_ms=settings.sqlite_busy_timeout_ms
        )
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{id(self):x}"
        self.stopping = threading.Event()
        self.data = DataPreparer.from_settings(settings)
        self.jobs_done = 0
        self._last_maintenance = -MAINTENANCE_SECONDS

    @property
    def warm_up_seconds(self) -> float | None:
        """How long readying the kernels took, once it has ended."""
        return None if self._warming is None else self._warming.seconds

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
        if history_writer.in_use(self.settings, self.database):
            # Started first, so that the writer's start-up (its imports) overlaps the kernels'
            # warm-up: a job whose data are already on the machine would otherwise wait for it.
            history_writer.writers.warm()
        if self.warm_up and self._warming is None:
            # Once per process, before anything defines, compiles or launches a kernel: numba
            # reads its CPU features and threading layer, and libgomp its spin, only then.
            backend = accel.configure(
                "compiled" if self.settings.fused_kernels else "numpy",
                self.settings.kernel_cache_dir,
            )
            self._warming = compiled_kernels.WarmUp(backend, self._blas_threads(), self.stopping)
        waiter = make_waiter(self.settings.database_url, self.stopping)
        try:
            while not self.stopping.is_set():
                if max_jobs is not None and self.jobs_done >= max_jobs:
                    break
                claimed = self.claim()
                if not claimed:
                    if burst:
                        break
                    self.maintain()
                    waiter.wait(self.settings.poll_seconds)
                    continue
                self.execute(claimed)
                self.jobs_done += len(claimed)
        finally:
            waiter.close()
        if self._warming is not None:  # stopping ends it after the kernel it is compiling
            self._warming.join()
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
                    maintenance.prune_expired(session, days) if days else 0,
                    idempotency.prune(session),
                ),
            )
            log.info("maintenance: %d job histories downsampled, %d keys expired", *pruned)
        except Exception:  # housekeeping must never stop the worker
            log.exception("maintenance failed")

    def claim(self) -> list[queue.ClaimedJob]:
        """The next job, with the sweep trials that train with it as a population; [] if the
        queue is empty."""
        # A read first: an idle worker never takes SQLite's write lock just to find nothing.
        with self.database.read() as session:
            if not queue.has_claimable(session):
                return []

        def work(session: Session) -> list[queue.ClaimedJob]:
            queue.fail_exhausted(session, self.settings.max_worker_losses)
            leader = queue.claim(session, self.owner, self.settings.lease_seconds)
            if leader is None:
                return []
            threads, owner = self._blas_threads(), self.owner
            return [leader, *companions(session, leader, self.settings, owner, threads)]

        return in_transaction(self.database, work)

    # ---- one job, or one population ----------------------------------------------------------
    def execute(self, claimed: list[queue.ClaimedJob]) -> None:
        contexts = [JobContext(self.settings, self.database, self.owner, job, self.stopping)
                    for job in claimed]  # fmt: skip
        for job in claimed:
            log.info("job %s claimed (attempt %d%s)", job.id, job.attempts,
                     f", in a population of {len(claimed)}" if len(claimed) > 1 else "",
                     extra={"job_id": job.id})  # fmt: skip
        try:
            with Heartbeat(*contexts), compiled_kernels.watch(contexts[0].set_phase):
                outcomes = self._run(contexts)
            for context in contexts:
                outcome = outcomes.get(context.job_id)
                if outcome is None:
                    _lease_lost(context)
                    continue
                try:
                    context.end(outcome)
                except LeaseLost:
                    _lease_lost(context)
                    continue
                log.info("job %s %s", context.job_id, outcome.status,
                         extra={"job_id": context.job_id})  # fmt: skip
        finally:
            for context in contexts:
                context.close()

    def _run(self, contexts: list[JobContext]) -> dict[str, Outcome]:
        """Each job's Outcome by id; none for a job whose lease was lost."""
        outcomes: dict[str, Outcome] = {}
        ready: list[tuple[JobContext, PreparedData, Resume | None]] = []
        for context in contexts:
            try:
                prepared = self._prepare(context)
            except LeaseLost:
                continue
            except Exception as exc:
                log.exception("job %s failed", context.job_id, extra={"job_id": context.job_id})
                prepared = _failed("internal_error", describe(exc))
            if isinstance(prepared, Outcome):
                outcomes[context.job_id] = prepared
            else:
                ready.append((context, *prepared))
        # A population trains from one step: a trial that resumes from another one (it was
        # checkpointed apart from the others) goes back to the queue, to be run after them.
        if not ready:
            return outcomes
        together = [job for job in ready if _step(job[2]) == _step(ready[0][2])]
        for context, _data, resume in ready:
            if _step(resume) != _step(ready[0][2]):
                outcomes[context.job_id] = Outcome("queued")
        outcomes.update(self._train(together))
        return outcomes

    def _prepare(self, context: JobContext) -> tuple[PreparedData, Resume | None] | Outcome:
        """The job's spec checked, its resume point, its data prepared (and its preprocessing
        statistics stored); or the Outcome that ends it here."""
        try:
            spec = context.spec  # validated here, once; every later read gets the same object
        except ValidationError as exc:
            return _failed("invalid_spec", f"the job's spec is not valid on this server: {exc}")
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
        return data, resume

    def _train(
        self, jobs: list[tuple[JobContext, PreparedData, Resume | None]]
    ) -> dict[str, Outcome]:
        contexts = [context for context, _data, _resume in jobs]
        leader, data, resume = jobs[0]
        started = time.perf_counter()
        threads = self._blas_threads()
        try:
            # OpenBLAS's threads and the engine's own (passes, batch prefetch) share one budget.
            with threadpool_limits(limits=threads), limit_threads(threads):
                if len(jobs) == 1:
                    outcomes = {leader.job_id: self._dispatch(leader, data, resume)}
                else:
                    resumes = [resume for _context, _data, resume in jobs]
                    outcomes = PopulationRun(contexts, data, resumes).run()
        except LeaseLost:
            return {}
        except history_writer.WriterDied as exc:
            # The flush in flight is lost, not the jobs: they resume from their last checkpoint.
            log.warning("job %s: %s; handing it back", leader.job_id, exc,
                        extra={"job_id": leader.job_id})  # fmt: skip
            return {context.job_id: Outcome("queued", lost=True) for context in contexts}
        except Exception as exc:
            log.exception("job %s failed", leader.job_id, extra={"job_id": leader.job_id})
            failed = _failed("internal_error", describe(exc))
            return {context.job_id: failed for context in contexts}
        for context in contexts:
            context.timings["run_s"] = time.perf_counter() - started
            context.timings["write_wait_s"] = leader.write_wait_s
        return outcomes

    def _dispatch(self, context: JobContext, data: PreparedData, resume: Resume | None) -> Outcome:
        spec = context.spec
        if spec.task != "train":
            return run_task(context, data)
        if spec.is_search:
            return run_search(context, data, resume)
        return run_train(context, data, resume)

    def _blas_threads(self) -> int:
        return self.settings.blas_threads or max(1, os.cpu_count() or 1)


def _step(resume: Resume | None) -> int:
    return 0 if resume is None else resume.step


def _lease_lost(context: JobContext) -> None:
    log.warning("job %s: lease lost, another worker has it", context.job_id,
                extra={"job_id": context.job_id})  # fmt: skip


def _failed(error_type: str, message: str) -> Outcome:
    return Outcome("failed", {"error": {"type": error_type, "message": message}})
