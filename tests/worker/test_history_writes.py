"""History is written beside the engine (in a writer process, or on a thread): in order, once,
and failing cleanly."""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import func, select, update

from service.db.models import Job, MetricPoint
from service.db.session import Database
from service.history import point_store
from service.history import writes as history_writes
from service.jobs import repository, service
from service.jobs.spec import JobSpec
from service.settings import Settings
from tests.conftest import make_settings
from tests.worker.conftest import internal_error, submit
from tests.worker.test_runner import wait_for
from worker.engine.train import TrainData, init_state, run
from worker.prepare import DataPreparer
from worker.runner import Worker
from worker.training import train_config

LONG = {"type": "sgd", "learning_rate": 0.05, "batch_size": 8, "iterations": 1_000_000}


@pytest.fixture(params=["process", "thread"])
def settings(database_url: str, tmp_path: Path, request: pytest.FixtureRequest) -> Settings:
    """Flush every few milliseconds, so that a short job overlaps many writes with its steps;
    the writes in a writer process, or on a thread."""
    return make_settings(database_url, tmp_path, flush_seconds=0.003, history_writer=request.param)


@pytest.fixture
def database(database_url: str) -> Iterator[Database]:
    """The test's database, whichever way its writes run."""
    db = Database(database_url)
    yield db
    db.dispose()


@pytest.fixture
def thread_settings(database_url: str, tmp_path: Path) -> Settings:
    """Writes on a thread of this process, where a test can patch history_writes.write_points."""
    return make_settings(database_url, tmp_path, flush_seconds=0.003, history_writer="thread")


def _points(database: Database, job_id: str, series: str) -> list[tuple[int, float]]:
    with database.read() as session:
        return list(point_store.points(session, job_id, series, after=None, limit=None))


def _engine_history(settings: Settings, stored: dict[str, Any]) -> tuple[list[int], list[float]]:
    spec = JobSpec.model_validate(stored)
    data, _ = DataPreparer(2**30, settings.cifar10_dir, settings.data_dir).prepare(spec)
    config = train_config(spec)
    state = init_state(config, data.n_classes, data.X_train.shape[1])
    chunks = run(state, config, TrainData(data.X_train, data.y_train, data.X_val, data.y_val))
    steps: list[int] = []
    losses: list[float] = []
    for chunk in chunks:
        steps += chunk.steps.tolist()
        losses += chunk.losses.tolist()
    return steps, losses


def test_every_logged_point_is_stored_once_and_exactly(
    settings: Settings, database: Database
) -> None:
    optimizer = {"type": "sgd", "learning_rate": 0.05, "batch_size": 8, "iterations": 6_000}
    job_id = submit(database, settings, optimizer=optimizer, eval_every=700)

    with Worker(settings) as worker:
        worker.run(burst=True)

    with database.read() as session:
        assert service.get(session, job_id).status == "succeeded"
        job = repository.get(session, job_id)
        assert job is not None
    steps, losses = _engine_history(settings, job.spec)
    assert steps == list(range(6_000))
    stored = _points(database, job_id, "loss")
    assert [s for s, _ in stored] == steps
    assert np.array_equal(np.array([v for _, v in stored]), np.array(losses))
    assert [s for s, _ in _points(database, job_id, "learning_rate")] == steps
    assert [s for s, _ in _points(database, job_id, "val_accuracy")] == [
        *range(0, 6_000, 700),
        5_999,
    ]


def test_a_failed_history_write_fails_the_job_and_the_worker_goes_on(
    thread_settings: Settings, database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = thread_settings
    failing = submit(database, settings, seed=1, optimizer={**LONG, "iterations": 20_000})
    healthy = submit(database, settings, seed=2)
    write_points = history_writes.write_points
    calls = 0

    def flaky(session: Any, statements: list[Any]) -> None:
        nonlocal calls
        if any(failing in parameters for _, parameters in statements):
            calls += 1
            if calls == 3:
                raise RuntimeError("disk on fire")
        write_points(session, statements)

    monkeypatch.setattr(history_writes, "write_points", flaky)

    with Worker(settings) as worker:
        assert worker.run(burst=True) == 2

    assert "disk on fire" in internal_error(database, failing, healthy)
    # The two writes before the failure, nothing after it.
    stored = [s for s, _ in _points(database, failing, "loss")]
    assert 0 < len(stored) < 20_000
    assert stored == list(range(len(stored)))


def test_a_worker_that_lost_its_lease_adds_nothing_more(
    settings: Settings, database: Database
) -> None:
    job_id = submit(database, settings, optimizer=LONG)
    worker = Worker(settings)
    thread = threading.Thread(target=worker.run, kwargs={"burst": True})
    thread.start()
    wait_for(lambda: len(_points(database, job_id, "loss")) > 0)

    with database.transaction() as session:  # another worker took the job over
        session.execute(update(Job).where(Job.id == job_id).values(lease_owner="thief"))
        count = select(func.count()).where(MetricPoint.job_id == job_id)
        points_then = session.execute(count).scalar_one()
    thread.join(timeout=30)

    assert not thread.is_alive()
    with database.read() as session:
        assert session.execute(count).scalar_one() == points_then
        job = repository.get(session, job_id)
        assert job is not None and job.status == "running" and job.lease_owner == "thief"
    worker.database.dispose()


def test_a_slow_write_holds_the_engine_back_by_one_chunk_at_most(
    thread_settings: Settings, database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Writes never pile up: the next flush waits for the one before it, and the job's timings
    say how long the engine waited."""
    settings = thread_settings
    job_id = submit(database, settings, optimizer={**LONG, "iterations": 3_000})
    write_points = history_writes.write_points
    in_flight = 0
    most = 0
    writes = 0
    lock = threading.Lock()

    def slow(session: Any, statements: list[Any]) -> None:
        nonlocal in_flight, most, writes
        with lock:
            in_flight += 1
            writes += 1
            most = max(most, in_flight)
        threading.Event().wait(0.01)
        write_points(session, statements)
        with lock:
            in_flight -= 1

    monkeypatch.setattr(history_writes, "write_points", slow)

    interval = sys.getswitchinterval()
    with Worker(settings) as worker:
        worker.run(burst=True)

    assert most == 1
    assert sys.getswitchinterval() == interval  # shortened only while a write was in flight
    assert [s for s, _ in _points(database, job_id, "loss")] == list(range(3_000))
    with database.read() as session:
        timings = service.get(session, job_id).timings
    # The job's end waits for its last write, 10 ms at least (and a flush every 3 ms waits for
    # the one before it).
    assert writes >= 2
    assert 0.009 <= timings["write_wait_s"] <= timings["run_s"]
