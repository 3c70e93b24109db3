"""The worker loop: claim a job, run it through the engine, stream its history, finish it.

This is the only module where the engine meets the database. One Worker runs one job at a time;
`descent worker --concurrency N` starts N worker processes (see worker/supervisor.py).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from service.db.session import Database
from service.settings import Settings
from worker import store
from worker.engine.datasets import DatasetUnavailable
from worker.engine.metrics import accuracy
from worker.engine.train import Chunk, Diverged, TrainData, init_state, run
from worker.prepare import DataPreparer, PreparedData
from worker.training import train_config

log = logging.getLogger("descent.worker")

# Flush history to the database at least this often, so pollers see the curve grow.
FLUSH_SECONDS = 0.25


class LeaseLost(Exception):
    """Another worker holds the job now (our lease expired); stop touching it."""


@dataclass
class Outcome:
    status: str
    values: dict[str, Any] = field(default_factory=dict)


class Worker:
    def __init__(self, settings: Settings, database: Database | None = None) -> None:
        self.settings = settings
        self.database = database or Database(
            settings.database_url, busy_timeout_ms=settings.sqlite_busy_timeout_ms
        )
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{id(self):x}"
        self.stopping = threading.Event()
        self.data = DataPreparer(settings.dataset_cache_bytes, settings.cifar10_dir)
        self.jobs_done = 0

    # ---- the loop -------------------------------------------------------------------------
    def run(self, *, burst: bool = False, max_jobs: int | None = None) -> int:
        """Claim and run jobs until stopped (or, with burst, until the queue is empty)."""
        log.info("worker %s started (burst=%s)", self.owner, burst)
        while not self.stopping.is_set():
            if max_jobs is not None and self.jobs_done >= max_jobs:
                break
            claimed = self.claim()
            if claimed is None:
                if burst:
                    break
                self.stopping.wait(self.settings.poll_seconds)
                continue
            self.execute(claimed)
            self.jobs_done += 1
        log.info("worker %s stopped after %d jobs", self.owner, self.jobs_done)
        return self.jobs_done

    def claim(self) -> store.ClaimedJob | None:
        with self.database.read() as session:
            if not store.has_claimable(session):
                return None
        with self.database.transaction() as session:
            return store.claim(session, self.owner, self.settings.lease_seconds)

    # ---- one job --------------------------------------------------------------------------
    def execute(self, claimed: store.ClaimedJob) -> None:
        log.info("job %s claimed (attempt %d)", claimed.id, claimed.attempts)
        queued_s = (claimed.started_at - claimed.created_at).total_seconds()
        try:
            outcome = self._train(claimed, queued_s)
        except LeaseLost:
            log.warning("job %s: lease lost, another worker has it", claimed.id)
            return
        except Exception as exc:
            log.exception("job %s failed", claimed.id)
            outcome = Outcome(
                "failed",
                {"error": {"type": "internal_error", "message": f"{type(exc).__name__}: {exc}"}},
            )
        if outcome.status == "queued":
            with self.database.transaction() as session:
                store.release(session, claimed.id, self.owner)
            log.info("job %s handed back to the queue", claimed.id)
            return
        with self.database.transaction() as session:
            store.finish(session, claimed.id, self.owner, outcome.status, **outcome.values)
        log.info("job %s %s", claimed.id, outcome.status)

    def _train(self, claimed: store.ClaimedJob, queued_s: float) -> Outcome:
        spec = claimed.spec
        timings: dict[str, float] = {"queued_s": queued_s}
        if claimed.attempts > 1:
            # No resumable checkpoint yet: an earlier attempt's history is replaced.
            with self.database.transaction() as session:
                store.reset_history(session, claimed.id)
        started = time.perf_counter()
        try:
            data, cache_hit = self.data.prepare(spec)
        except DatasetUnavailable as exc:
            return Outcome(
                "failed", {"error": {"type": "dataset_unavailable", "message": str(exc)}}
            )
        except ValueError as exc:
            return Outcome("failed", {"error": {"type": "invalid_dataset", "message": str(exc)}})
        timings["load_s"] = time.perf_counter() - started
        log.info("job %s: data ready in %.2fs (cache %s)", claimed.id, timings["load_s"],
                 "hit" if cache_hit else "miss")  # fmt: skip
        self._store_preprocessing(claimed.id, data, timings)
        started = time.perf_counter()
        with threadpool_limits(limits=self._blas_threads()):
            outcome = self._optimize(claimed, data)
        timings["run_s"] = time.perf_counter() - started
        outcome.values["timings"] = timings
        return outcome

    def _blas_threads(self) -> int:
        return max(1, os.cpu_count() or 1)

    def _store_preprocessing(
        self, job_id: str, data: PreparedData, timings: dict[str, float]
    ) -> None:
        """Keep the preprocessing statistics with the job, and show the timings known so far."""
        pre = data.preprocessor
        with self.database.transaction() as session:
            if pre.mean is not None:
                store.put_array(session, job_id, "mean", pre.mean, 0)
            if pre.std is not None:
                store.put_array(session, job_id, "std", pre.std, 0)
            lease = store.heartbeat(
                session, job_id, self.owner, self.settings.lease_seconds, timings=timings
            )
        if lease is None:
            raise LeaseLost(job_id)

    def _optimize(self, claimed: store.ClaimedJob, data: PreparedData) -> Outcome:
        config = train_config(claimed.spec)
        state = init_state(config, data.n_classes, data.X_train.shape[1])
        train_data = TrainData(data.X_train, data.y_train, data.X_val, data.y_val)
        history = History(claimed.id)
        last_checkpoint = time.monotonic()
        try:
            for chunk in run(
                state, config, train_data, chunk_steps=100_000, chunk_seconds=FLUSH_SECONDS
            ):
                checkpoint = time.monotonic() - last_checkpoint >= self.settings.checkpoint_seconds
                weights = state.W if checkpoint else None
                cancel = self._flush(claimed.id, history, chunk, state.step, weights)
                if checkpoint:
                    last_checkpoint = time.monotonic()
                if cancel:
                    return Outcome("cancelled")
                if self.stopping.is_set() and not chunk.done:
                    return Outcome("queued")
        except Diverged as exc:
            error = {
                "type": "diverged",
                "message": f"the loss became {exc.loss} at step {exc.step}",
                "step": exc.step,
            }
            return Outcome("failed", {"error": error, "metrics": history.metrics})
        metrics = dict(history.metrics)
        metrics["train_accuracy"] = accuracy(state.W, data.X_train, data.y_train)
        metrics["val_accuracy"] = accuracy(state.W, data.X_val, data.y_val)
        metrics["test_accuracy"] = accuracy(state.W, data.X_test, data.y_test)
        with self.database.transaction() as session:
            store.put_array(session, claimed.id, "W", state.W, state.step)
        return Outcome("succeeded", {"metrics": metrics, "progress_step": state.step})

    def _flush(
        self,
        job_id: str,
        history: History,
        chunk: Chunk,
        step: int,
        weights: np.ndarray | None,
    ) -> bool:
        """Write a chunk's points, progress and (maybe) weights; True if cancel was requested."""
        rows = history.add(chunk)
        with self.database.transaction() as session:
            store.add_points(session, job_id, rows)
            if weights is not None:
                store.put_array(session, job_id, "W", weights, step)
            cancel = store.heartbeat(
                session,
                job_id,
                self.owner,
                self.settings.lease_seconds,
                progress_step=step,
                metrics=history.metrics,
            )
        if cancel is None:
            raise LeaseLost(job_id)
        return cancel


class History:
    """Turns engine chunks into metric rows and keeps the job's latest metrics."""

    def __init__(self, job_id: str) -> None:
        self.job_id = job_id
        self.metrics: dict[str, float] = {}

    def add(self, chunk: Chunk) -> list[tuple[str, int, float]]:
        rows: list[tuple[str, int, float]] = []
        steps = chunk.steps.tolist()
        losses = chunk.losses.tolist()
        rows.extend(("loss", s, v) for s, v in zip(steps, losses, strict=True))
        rows.extend(
            ("learning_rate", s, v)
            for s, v in zip(steps, chunk.learning_rates.tolist(), strict=True)
        )
        for step, train_acc, val_acc in chunk.evals:
            rows.append(("train_accuracy", step, train_acc))
            rows.append(("val_accuracy", step, val_acc))
            self.metrics["train_accuracy"] = train_acc
            self.metrics["val_accuracy"] = val_acc
        if losses:
            self.metrics["loss"] = losses[-1]
            best = min(losses)
            self.metrics["best_loss"] = min(best, self.metrics.get("best_loss", best))
        return rows
