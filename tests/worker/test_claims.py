"""Claims are atomic: concurrent workers never take the same job; leases guard every write."""

from __future__ import annotations

import threading
import time
from collections import Counter

import numpy as np
import pytest
from sqlalchemy import select, update

from service.db.models import Job, JobArray, MetricPoint
from service.db.session import Database
from service.history import writes
from service.jobs import queue
from service.jobs.queue import LeaseLost
from service.settings import Settings
from tests.worker.conftest import submit
from worker.context import JobContext


def test_each_queued_job_is_claimed_once_by_concurrent_claimers(
    settings: Settings, database: Database
) -> None:
    job_ids = {submit(database, settings) for _ in range(30)}
    claims: list[tuple[str, str]] = []
    lock = threading.Lock()

    def claimer(name: str) -> None:
        db = Database(settings.database_url)
        while True:
            with db.transaction() as session:
                claimed = queue.claim(session, name, lease_seconds=60)
            if claimed is None:
                break
            with lock:
                claims.append((claimed.id, name))
        db.dispose()

    threads = [threading.Thread(target=claimer, args=(f"w{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    counts = Counter(job_id for job_id, _ in claims)
    assert set(counts) == job_ids
    assert set(counts.values()) == {1}
    with database.read() as session:
        jobs = session.scalars(select(Job)).all()
    assert {job.status for job in jobs} == {"running"}
    assert {job.attempts for job in jobs} == {1}
    assert all(job.lease_owner is not None and job.lease_expires_at for job in jobs)


def test_jobs_are_claimed_oldest_first(settings: Settings, database: Database) -> None:
    first, second = submit(database, settings), submit(database, settings)

    with database.transaction() as session:
        a = queue.claim(session, "w", lease_seconds=60)
    with database.transaction() as session:
        b = queue.claim(session, "w", lease_seconds=60)

    assert a is not None and b is not None
    assert (a.id, b.id) == (first, second)


def test_a_job_whose_lease_expired_is_claimed_again(settings: Settings, database: Database) -> None:
    job_id = submit(database, settings)
    with database.transaction() as session:
        queue.claim(session, "lost-worker", lease_seconds=-1)

    with database.transaction() as session:
        again = queue.claim(session, "new-worker", lease_seconds=60)

    assert again is not None and again.id == job_id and again.attempts == 2
    with database.transaction() as session:
        # The old owner can no longer write to it.
        with pytest.raises(LeaseLost):
            queue.renew(session, job_id, "lost-worker", 60)
        assert not queue.finish(session, job_id, "lost-worker", "succeeded")
        assert queue.renew(session, job_id, "new-worker", 60) is False


def test_renewing_many_leases_sets_only_the_jobs_this_worker_still_holds(
    settings: Settings, database: Database
) -> None:
    mine, cancelled, lost = (submit(database, settings) for _ in range(3))
    with database.transaction() as session:
        for _ in range(3):
            queue.claim(session, "w", lease_seconds=60)
        session.execute(update(Job).where(Job.id == cancelled).values(cancel_requested=True))
        session.execute(update(Job).where(Job.id == lost).values(lease_owner="other"))
    with database.transaction() as session:
        held = queue.renew_many(session, [
            queue.Renewal(job_id, "w", 90, {"progress_step": 7, "metrics": {"loss": float(n)}})
            for n, job_id in enumerate((mine, cancelled, lost))
        ])  # fmt: skip
    assert held == {mine: False, cancelled: True}
    with database.transaction() as session, pytest.raises(ValueError, match="same columns"):
        queue.renew_many(session, [queue.Renewal(mine, "w", 90, {"progress_step": 8}),
                                   queue.Renewal(cancelled, "w", 90, {})])  # fmt: skip
    with database.read() as session:
        jobs = {job.id: job for job in session.scalars(select(Job))}
    assert (jobs[mine].progress_step, jobs[mine].metrics) == (7, {"loss": 0.0})
    assert (jobs[cancelled].progress_step, jobs[cancelled].metrics) == (7, {"loss": 1.0})
    assert jobs[lost].metrics != {"loss": 2.0} and jobs[lost].lease_owner == "other"
    renewed, untouched = jobs[mine].lease_expires_at, jobs[lost].lease_expires_at
    assert renewed is not None and untouched is not None
    assert renewed > untouched  # 90 s against 60 s


def test_a_running_job_with_a_live_lease_is_not_claimed(
    settings: Settings, database: Database
) -> None:
    submit(database, settings)
    with database.transaction() as session:
        assert queue.claim(session, "w1", lease_seconds=60) is not None

    with database.transaction() as session:
        assert queue.claim(session, "w2", lease_seconds=60) is None


def test_a_job_taken_again_without_a_checkpoint_starts_over_from_nothing(
    settings: Settings, database: Database
) -> None:
    job_id = submit(database, settings)
    with database.transaction() as session:
        first = queue.claim(session, "w1", lease_seconds=0.01)
    assert first is not None and first.id == job_id
    with database.transaction() as session:  # what the first attempt wrote before it was lost
        writes.add_points(session, job_id, [writes.Points("loss", [0, 1], [2.0, 1.5])])
        queue.put_array(session, job_id, "W", np.ones((2, 3)), 1)
    time.sleep(0.05)  # its lease lapses
    with database.transaction() as session:
        second = queue.claim(session, "w2", lease_seconds=60)
    assert second is not None and second.id == job_id and second.attempts == 2

    context = JobContext(settings, database, "w2", second, threading.Event())
    assert context.resume_point() is None  # no checkpoint: from step 0, with nothing left over
    with database.read() as session:
        assert session.scalars(select(MetricPoint).where(MetricPoint.job_id == job_id)).all() == []
        assert session.scalars(select(JobArray).where(JobArray.job_id == job_id)).all() == []
