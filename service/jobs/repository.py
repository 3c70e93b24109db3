"""The API's SQL on the jobs resource: add, read, list and delete jobs (a job's history is read
through service.history.point_store, its queue is service.jobs.queue)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import Row, bindparam, delete, func, or_, select, update
from sqlalchemy.orm import Session, load_only

from service.db.base import utcnow
from service.db.models import (
    JOB_STATUSES,
    TERMINAL_STATUSES,
    Checkpoint,
    Job,
    JobArray,
    JobAttempt,
    MetricPoint,
)
from service.db.notify import job_queued
from service.history import rollup_store
from service.jobs.spec import JOB_REFERENCES

LIVE_STATUSES = tuple(status for status in JOB_STATUSES if status not in TERMINAL_STATUSES)


def add(session: Session, job: Job) -> None:
    add_all(session, [job])


def add_all(session: Session, jobs: Sequence[Job]) -> None:
    """Queue these jobs (a sweep's trials: their sweep is already flushed)."""
    session.add_all(jobs)
    session.flush()
    job_queued(session)


def get(session: Session, job_id: str, *, for_update: bool = False) -> Job | None:
    stmt = select(Job).where(Job.id == job_id)
    if for_update:
        stmt = stmt.with_for_update()
    return session.scalars(stmt).one_or_none()


def page(
    session: Session,
    *,
    status: str | None,
    task: str | None,
    before_id: str | None,
    limit: int,
) -> Sequence[Job]:
    columns = [getattr(Job, name) for name in VIEW_COLUMNS]
    stmt = select(Job).options(load_only(*columns)).order_by(Job.id.desc()).limit(limit)
    if status is not None:
        stmt = stmt.where(Job.status == status)
    if task is not None:
        stmt = stmt.where(Job.task == task)
    if before_id is not None:
        stmt = stmt.where(Job.id < before_id)
    return session.scalars(stmt).all()


# The polled reads are built once on the table's columns: a Core statement on a Table skips the
# ORM's per-call compile step, which costs more than these indexed reads themselves.
_jobs = Job.__table__.c
_STATE = select(_jobs.status, _jobs.attempts, _jobs.history_pruned).where(
    _jobs.id == bindparam("job_id")
)
# The columns of a Job as the API shows it: never the large ones (task results, evaluations),
# which only their own endpoints read.
VIEW_COLUMNS = (
    "id", "status", "task", "name", "spec", "progress_step", "progress_total", "progress_phase",
    "metrics", "error", "attempts", "timings", "created_at", "started_at", "finished_at",
)  # fmt: skip
_VIEW = select(*(_jobs[name] for name in VIEW_COLUMNS)).where(_jobs.id == bindparam("job_id"))


class JobState(NamedTuple):
    status: str
    attempts: int
    history_pruned: bool


def state(session: Session, job_id: str) -> JobState | None:
    """What a history read needs to know of its job (None if there is no such job)."""
    row = session.execute(_STATE, {"job_id": job_id}).one_or_none()
    return None if row is None else JobState(row.status, row.attempts, bool(row.history_pruned))


def view(session: Session, job_id: str) -> Row[Any] | None:
    """The columns GET /jobs/{id} shows, without loading the job's result or evaluation."""
    return session.execute(_VIEW, {"job_id": job_id}).one_or_none()


def array(session: Session, job_id: str, name: str) -> JobArray | None:
    return session.get(JobArray, (job_id, name))


# The key of the PostgreSQL advisory lock that serializes queue-limit checks (any fixed number
# no other lock of the database uses; this one spells "descent" in ASCII).
QUEUE_ROOM_LOCK = 0x64657363656E74


def queued_count(session: Session) -> int:
    """The jobs waiting in the queue (one count on the status index), counted under a lock that
    no other submission's count can pass until this transaction ends: on PostgreSQL a
    transaction-level advisory lock; on SQLite the write transaction's BEGIN IMMEDIATE already
    is one. Two submissions in flight at once cannot both see the same room."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(select(func.pg_advisory_xact_lock(QUEUE_ROOM_LOCK)))
    return int(
        session.scalar(select(func.count()).select_from(Job).where(Job.status == "queued")) or 0
    )


def lock_referenced(session: Session, job_id: str) -> str | None:
    """Lock a job that a job being submitted names (spec.JOB_REFERENCES); its status, None if
    there is no such job.

    FOR KEY SHARE on PostgreSQL, against the FOR UPDATE of `lock_for_delete` (`DELETE /jobs/{id}`
    and `DELETE /sweeps/{id}`): a deletion waits for this submission to commit and then sees its
    new dependent, or this submission waits for the deletion and finds no job. It does not hold up
    the worker's updates of a running job. On SQLite both are write transactions, which BEGIN
    IMMEDIATE already serializes."""
    stmt = select(Job.status).where(Job.id == job_id).with_for_update(read=True, key_share=True)
    return session.scalar(stmt)


class Held(NamedTuple):
    """A job locked for its deletion."""

    id: str
    status: str
    sweep_id: str | None


def lock_for_delete(session: Session, *where: Any) -> list[Held]:
    """Lock the jobs matching `where` FOR UPDATE (against the FOR KEY SHARE of a submission that
    names one of them, see `lock_referenced`), oldest first."""
    stmt = select(Job.id, Job.status, Job.sweep_id).where(*where).order_by(Job.id).with_for_update()
    return [Held(row.id, row.status, row.sweep_id) for row in session.execute(stmt)]


def dependents(session: Session, job_ids: Sequence[str], *, limit: int) -> list[str]:
    """Up to `limit` queued or running jobs whose spec names one of these jobs, oldest first."""
    names = [Job.spec[path].as_string().in_(job_ids) for path in JOB_REFERENCES]
    stmt = (
        select(Job.id)
        .where(Job.status.in_(LIVE_STATUSES), or_(*names))
        .order_by(Job.id)
        .limit(limit)
    )
    return list(session.scalars(stmt).all())


def remove(session: Session, job_ids: Sequence[str]) -> None:
    """Delete jobs with everything they own (explicitly, not trusting FK cascades on SQLite)."""
    session.execute(delete(MetricPoint).where(MetricPoint.job_id.in_(job_ids)))
    rollup_store.delete(session, *job_ids)
    session.execute(delete(JobArray).where(JobArray.job_id.in_(job_ids)))
    session.execute(delete(Checkpoint).where(Checkpoint.job_id.in_(job_ids)))
    session.execute(delete(JobAttempt).where(JobAttempt.job_id.in_(job_ids)))
    session.execute(delete(Job).where(Job.id.in_(job_ids)))


def cancel(session: Session, *where: Any) -> int:
    """Cancel the jobs matching `where`: queued ones at once, running ones flagged (their worker
    stops them at its next step batch); how many."""
    now = utcnow()
    queued = session.execute(
        update(Job)
        .where(*where, Job.status == "queued")
        .values(
            status="cancelled",
            cancel_requested=True,
            finished_at=now,
            updated_at=now,
            lease_owner=None,
            lease_expires_at=None,
        )
        .execution_options(synchronize_session=False)
    ).rowcount  # type: ignore[attr-defined]
    running = session.execute(
        update(Job)
        .where(*where, Job.status == "running")
        .values(cancel_requested=True, updated_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount  # type: ignore[attr-defined]
    return int(queued) + int(running)


def finished_unpruned(session: Session, *, before: datetime, limit: int) -> list[str]:
    """Up to `limit` jobs that finished before `before` with their full history still stored."""
    stmt = (
        select(Job.id)
        .where(
            Job.status.in_(TERMINAL_STATUSES),
            Job.finished_at < before,
            Job.history_pruned.is_(False),
        )
        .limit(limit)
    )
    return list(session.scalars(stmt).all())


def mark_history_pruned(session: Session, job_id: str) -> None:
    session.execute(update(Job).where(Job.id == job_id).values(history_pruned=True))
