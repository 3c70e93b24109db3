"""All SQL of the jobs resource, as seen from the API."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from service.db.models import Checkpoint, Job, JobArray, JobAttempt, MetricPoint
from service.db.notify import job_queued


def add(session: Session, job: Job) -> None:
    session.add(job)
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
    stmt = select(Job).order_by(Job.id.desc()).limit(limit)
    if status is not None:
        stmt = stmt.where(Job.status == status)
    if task is not None:
        stmt = stmt.where(Job.task == task)
    if before_id is not None:
        stmt = stmt.where(Job.id < before_id)
    return session.scalars(stmt).all()


def points(
    session: Session,
    job_id: str,
    series: str,
    *,
    after: int | None,
    limit: int | None,
    until: int | None = None,
) -> Sequence[tuple[int, float]]:
    """Points with after < step <= until, in step order: one range scan of the primary key."""
    stmt = (
        select(MetricPoint.step, MetricPoint.value)
        .where(MetricPoint.job_id == job_id, MetricPoint.series == series)
        .order_by(MetricPoint.step)
        .limit(limit)
    )
    if after is not None:
        stmt = stmt.where(MetricPoint.step > after)
    if until is not None:
        stmt = stmt.where(MetricPoint.step <= until)
    return [(int(step), float(value)) for step, value in session.execute(stmt)]


def count_points(session: Session, job_id: str, series: str) -> int:
    stmt = select(func.count()).where(MetricPoint.job_id == job_id, MetricPoint.series == series)
    return int(session.scalar(stmt) or 0)


def last_step(session: Session, job_id: str, series: str) -> int | None:
    stmt = select(func.max(MetricPoint.step)).where(
        MetricPoint.job_id == job_id, MetricPoint.series == series
    )
    value = session.scalar(stmt)
    return None if value is None else int(value)


def array(session: Session, job_id: str, name: str) -> JobArray | None:
    return session.get(JobArray, (job_id, name))


def remove(session: Session, job_id: str) -> None:
    """Delete a job with everything it owns (explicitly, not trusting FK cascades on SQLite)."""
    session.execute(delete(MetricPoint).where(MetricPoint.job_id == job_id))
    session.execute(delete(JobArray).where(JobArray.job_id == job_id))
    session.execute(delete(Checkpoint).where(Checkpoint.job_id == job_id))
    session.execute(delete(JobAttempt).where(JobAttempt.job_id == job_id))
    session.execute(delete(Job).where(Job.id == job_id))
