"""Real worker processes against a test database, and a reference run to compare them with."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest
from sqlalchemy import select

from service.db.models import Checkpoint, JobArray, JobAttempt, MetricPoint
from service.db.session import Database
from service.jobs import service
from service.jobs.spec import JobSpec
from service.settings import Settings

LONG_JOB: dict[str, Any] = {
    "dataset": {"name": "blobs"},
    "model": {"loss": "softmax", "reg": 0.001},
    "optimizer": {"type": "adam", "learning_rate": 0.01, "batch_size": 16, "iterations": 60_000},
    "log_every": 20,
    "eval_every": 5_000,
    "seed": 3,
}

FAST_LEASES = {
    "DESCENT_LEASE_SECONDS": "1.5",
    "DESCENT_HEARTBEAT_SECONDS": "0.3",
    "DESCENT_CHECKPOINT_SECONDS": "0.3",
    "DESCENT_POLL_SECONDS": "0.05",
    "DESCENT_LOG_LEVEL": "WARNING",
}


@pytest.fixture
def start_worker(settings: Settings) -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    """Start `python -m worker` processes on the test database; all are killed at the end."""
    processes: list[subprocess.Popen[bytes]] = []

    def start(*args: str) -> subprocess.Popen[bytes]:
        env = {**os.environ, **FAST_LEASES, "DESCENT_DATABASE_URL": settings.database_url}
        process = subprocess.Popen([sys.executable, "-m", "worker", *args], env=env)
        processes.append(process)
        return process

    yield start
    for process in processes:
        if process.poll() is None:
            process.kill()
        process.wait()


def submit(database: Database, settings: Settings, spec: dict[str, Any]) -> str:
    with database.write() as session:
        job = service.submit(session, JobSpec.model_validate(spec), settings)
        session.commit()
        return job.id


def wait_until(predicate: Callable[[], bool], timeout: float = 60.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or predicate}")
        time.sleep(0.05)


def status(database: Database, job_id: str) -> str:
    with database.read() as session:
        return service.get(session, job_id).status


def checkpoint_step(database: Database, job_id: str) -> int:
    with database.read() as session:
        checkpoint = session.get(Checkpoint, job_id)
        return 0 if checkpoint is None else checkpoint.step


def history(database: Database, job_id: str) -> list[tuple[str, int, float]]:
    with database.read() as session:
        stmt = (
            select(MetricPoint.series, MetricPoint.step, MetricPoint.value)
            .where(MetricPoint.job_id == job_id)
            .order_by(MetricPoint.series, MetricPoint.step)
        )
        return [(s, int(step), float(v)) for s, step, v in session.execute(stmt)]


def weights(database: Database, job_id: str) -> np.ndarray:
    with database.read() as session:
        array = session.get(JobArray, (job_id, "W"))
        assert array is not None
        return np.frombuffer(array.data, dtype=array.dtype).reshape(array.shape)


def attempts(database: Database, job_id: str) -> list[JobAttempt]:
    with database.read() as session:
        stmt = select(JobAttempt).where(JobAttempt.job_id == job_id).order_by(JobAttempt.attempt)
        return list(session.scalars(stmt))
