"""The worker loop: runs jobs to the end, honours cancel and shutdown, reuses prepared data."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

from service.db.session import Database
from service.history import point_store
from service.jobs import repository, service
from service.settings import Settings
from tests.worker.conftest import job_status, submit
from worker.runner import Worker


def wait_for(predicate: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.02)


def test_burst_mode_runs_every_queued_job_then_returns(
    settings: Settings, database: Database
) -> None:
    ids = [submit(database, settings, seed=i) for i in range(3)]
    worker = Worker(settings)

    assert worker.run(burst=True) == 3

    with database.read() as session:
        assert [job_status(session, i) for i in ids] == ["succeeded"] * 3
    worker.database.dispose()


def test_consecutive_jobs_on_the_same_data_reuse_the_prepared_arrays(
    settings: Settings, database: Database
) -> None:
    first = submit(database, settings, seed=1)
    second = submit(database, settings, seed=2, model={"loss": "softmax"})
    worker = Worker(settings)

    worker.run(burst=True)

    assert (worker.data.prepared.misses, worker.data.prepared.hits) == (1, 1)
    with database.read() as session:
        for job_id in (first, second):
            timings = service.get(session, job_id).timings
            assert set(timings) == {"queued_s", "load_s", "run_s", "write_wait_s"}
            assert 0 <= timings["write_wait_s"] <= timings["run_s"]
    worker.database.dispose()


def test_a_running_job_is_cancelled_at_its_next_step_batch(
    settings: Settings, database: Database
) -> None:
    job_id = submit(
        database, settings, optimizer={"type": "sgd", "batch_size": 8, "iterations": 1_000_000}
    )
    worker = Worker(settings)
    thread = threading.Thread(target=worker.run, kwargs={"burst": True})
    thread.start()

    def running_with_points() -> bool:
        with database.read() as session:
            return point_store.count_points(session, job_id, "loss") > 0

    wait_for(running_with_points)
    with database.write() as session:
        service.cancel(session, job_id)
        session.commit()
    thread.join(timeout=30)

    assert not thread.is_alive()
    with database.read() as session:
        job = service.get(session, job_id)
        assert job.status == "cancelled"
        assert 0 < job.progress_step < 1_000_000
        assert job.finished_at is not None
    worker.database.dispose()


def test_a_stopping_worker_hands_its_job_back_to_the_queue(
    settings: Settings, database: Database
) -> None:
    job_id = submit(
        database, settings, optimizer={"type": "sgd", "batch_size": 8, "iterations": 1_000_000}
    )
    worker = Worker(settings)
    thread = threading.Thread(target=worker.run)
    thread.start()

    def running() -> bool:
        with database.read() as session:
            return job_status(session, job_id) == "running"

    wait_for(running)
    worker.stopping.set()
    thread.join(timeout=30)

    assert not thread.is_alive()
    with database.read() as session:
        job = service.get(session, job_id)
        assert job.status == "queued"
        assert job.lease_owner is None
        assert job.attempts == 1
    worker.database.dispose()


def test_a_missing_dataset_fails_the_job_with_a_typed_error(
    settings: Settings, database: Database, tmp_path: Path
) -> None:
    job_id = submit(database, settings)
    broken = settings.model_copy(update={"cifar10_dir": tmp_path})
    with database.write() as session:
        job = repository.get(session, job_id)
        assert job is not None
        job.spec = {
            **job.spec,
            "dataset": {"name": "cifar10", "n_train": 10, "n_val": 10, "n_test": 10},
        }
        session.commit()
    worker = Worker(broken)

    worker.run(burst=True)

    with database.read() as session:
        job = service.get(session, job_id)
        assert job.status == "failed"
        assert job.error is not None and job.error["type"] == "dataset_unavailable"
    worker.database.dispose()


def test_a_stored_spec_that_no_longer_validates_fails_the_job_as_invalid_spec(
    settings: Settings, database: Database
) -> None:
    job_id = submit(database, settings)
    healthy_id = submit(database, settings)
    with database.write() as session:
        job = repository.get(session, job_id)
        assert job is not None
        # As if the spec models had changed since the job was queued: sgd takes no momentum.
        job.spec = {**job.spec, "optimizer": {**job.spec["optimizer"], "momentum": 0.9}}
        session.commit()
    worker = Worker(settings)

    assert worker.run(burst=True) == 2

    with database.read() as session:
        job = service.get(session, job_id)
        assert job.status == "failed"
        assert job.error is not None and job.error["type"] == "invalid_spec"
        assert "momentum" in job.error["message"]
        assert job_status(session, healthy_id) == "succeeded"
    worker.database.dispose()
