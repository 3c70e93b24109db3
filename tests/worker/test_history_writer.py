"""The writer process: a running job's writes, failing cleanly, kept for the next job."""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
from pathlib import Path

import pytest
from sqlalchemy import text

from service.db.session import Database
from service.history.writes import Points
from service.jobs import queue, service
from service.settings import Settings
from tests.conftest import make_settings
from tests.worker.conftest import internal_error, submit
from tests.worker.test_runner import wait_for
from worker.history_writer import Flush, WriteFailed, WriterProcess
from worker.runner import Worker

LONG = {"type": "sgd", "learning_rate": 0.05, "batch_size": 8, "iterations": 1_000_000}


@pytest.fixture
def settings(sqlite_url: str, tmp_path: Path) -> Settings:
    return make_settings(sqlite_url, tmp_path, flush_seconds=0.01, history_writer="process")


@pytest.fixture
def database(settings: Settings) -> Database:
    return Database(settings.database_url)


def _writer_pids() -> set[int]:
    return {
        child.pid
        for child in multiprocessing.active_children()
        if child.name == "descent-history-writer" and child.pid is not None
    }


def _stored(database: Database, job_id: str) -> int:
    """How many loss points the job has stored."""
    with database.read() as session:
        query = text("SELECT COUNT(*) FROM metric_points WHERE job_id = :job AND series = 'loss'")
        return int(session.execute(query, {"job": job_id}).scalar_one())


def test_a_write_the_database_refuses_fails_the_job_with_its_error(
    settings: Settings, database: Database
) -> None:
    failing = submit(database, settings, seed=1, optimizer={**LONG, "iterations": 20_000})
    with database.transaction() as session:
        session.execute(text(
            "CREATE TRIGGER refuse BEFORE INSERT ON metric_points WHEN NEW.step >= 2000 "
            "BEGIN SELECT RAISE(ABORT, 'disk on fire'); END"
        ))  # fmt: skip
    healthy = submit(database, settings, seed=2)  # 50 steps: under the trigger's bound

    with Worker(settings) as worker:
        assert worker.run(burst=True) == 2

    message = internal_error(database, failing, healthy)
    assert message == "WriteFailed: IntegrityError: disk on fire"
    assert 0 < _stored(database, failing) <= 2000


def test_a_writer_that_dies_costs_its_flush_and_the_job_resumes_with_a_new_one(
    settings: Settings, database: Database
) -> None:
    resumable = {**LONG, "iterations": 30_000}
    doomed = submit(database, settings, seed=1, optimizer=resumable)
    worker = Worker(settings)
    thread = threading.Thread(target=worker.run, kwargs={"burst": True})
    thread.start()
    wait_for(lambda: _stored(database, doomed) > 0)
    for pid in _writer_pids():  # the one this job writes with (and any idle ones)
        os.kill(pid, signal.SIGKILL)
    thread.join(timeout=120)
    assert not thread.is_alive()

    with database.read() as session:
        job = service.get(session, doomed)
        assert job.status == "succeeded", job.error
        assert job.lost_count == 1  # the lost flush counts as a loss
        assert job.attempts == 2  # handed back, then resumed from its checkpoint
    assert _stored(database, doomed) == resumable["iterations"]  # every step once
    after = submit(database, settings, seed=2)
    worker.run(burst=True)
    with database.read() as session:
        assert service.get(session, after).status == "succeeded"
    assert _stored(database, after) == 50
    worker.close()


def test_the_writer_is_kept_for_the_next_job(settings: Settings, database: Database) -> None:
    first = submit(database, settings, seed=1, optimizer={**LONG, "iterations": 3_000})
    with Worker(settings) as worker:
        worker.run(burst=True)
        before = _writer_pids()
        second = submit(database, settings, seed=2, optimizer={**LONG, "iterations": 3_000})
        worker.run(burst=True)
        assert _writer_pids() == before
    assert _stored(database, first) == _stored(database, second) == 3_000


def test_a_writer_exits_when_the_worker_lets_go_of_it() -> None:
    writer = WriterProcess()
    assert writer.process.is_alive()
    writer.close()
    assert writer.process.exitcode == 0


def test_a_writer_exits_cleanly_when_the_worker_goes_without_reading_its_answer(
    settings: Settings, database: Database
) -> None:
    """As when the worker is killed mid-write: its end closes with an answer unread."""
    job_id = submit(database, settings)
    writer = WriterProcess()
    flush = Flush(job_id=job_id, owner="nobody", attempt=1, lease_seconds=30, step=1, metrics={},
                  points=[Points("loss", [0], [1.0])])  # fmt: skip
    writer.send(database, [flush])
    threading.Event().wait(0.5)  # answered by now
    writer.close()
    assert writer.process.exitcode == 0


def test_a_write_for_a_lost_lease_writes_nothing_of_that_job(
    settings: Settings, database: Database
) -> None:
    """A population's write holds several jobs: the one whose lease is lost gets None and
    nothing of it is written; the others are written."""
    mine = submit(database, settings)
    unclaimed = submit(database, settings, seed=1)  # queued: no worker holds a lease on it
    with database.transaction() as session:
        claimed = queue.claim(session, "me", 30)
    assert claimed is not None and claimed.id == mine
    writer = WriterProcess()
    try:
        flushes = [
            Flush(
                job_id=job_id,
                owner=owner,
                attempt=1,
                lease_seconds=30,
                step=1,
                metrics={},
                points=[Points("loss", [0], [1.0])],
            )
            for job_id, owner in ((unclaimed, "nobody"), (mine, "me"))
        ]
        writer.send(database, flushes)
        assert writer.receive() == [None, False]
        assert writer.reusable
    finally:
        writer.close()
    assert _stored(database, unclaimed) == 0
    assert _stored(database, mine) == 1


def test_a_writer_gone_before_a_send_is_a_write_failure(database: Database) -> None:
    writer = WriterProcess()
    writer.process.kill()
    writer.process.join()
    flush = Flush(job_id="j", owner="o", attempt=1, lease_seconds=30, step=0, metrics={},
                  points=[])  # fmt: skip
    with pytest.raises(WriteFailed, match=r"died \(exit code -9\)"):
        writer.send(database, [flush])
    assert not writer.reusable
    writer.close()


def test_an_in_memory_database_is_written_on_a_thread() -> None:
    assert Database("sqlite://").in_memory
    assert Database("sqlite:///:memory:").in_memory
    assert not Database("sqlite:////tmp/descent.db").in_memory
