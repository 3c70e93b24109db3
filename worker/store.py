"""All SQL the worker runs: claim a job, write its history, renew its lease, finish it.

Every statement that touches a claimed job is guarded by `lease_owner = :owner`, so a worker that
lost its lease (the job was reclaimed elsewhere) can no longer write to it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import delete, func, insert, or_, select, update
from sqlalchemy.orm import Session

from service.db.base import utcnow
from service.db.models import Job, JobArray, MetricPoint


@dataclass(frozen=True)
class ClaimedJob:
    id: str
    spec: dict[str, Any]
    attempts: int
    created_at: datetime
    started_at: datetime


def claim(session: Session, owner: str, lease_seconds: float) -> ClaimedJob | None:
    """Claim the oldest queued job (or one whose lease expired) in one statement.

    PostgreSQL: the sub-select locks with FOR UPDATE SKIP LOCKED, so concurrent workers take
    different jobs. SQLite: the caller's transaction began with BEGIN IMMEDIATE, which serializes
    claims.
    """
    now = utcnow()
    candidate = (
        select(Job.id)
        .where(
            or_(
                Job.status == "queued",
                (Job.status == "running") & (Job.lease_expires_at < now),
            )
        )
        .order_by(Job.id)
        .limit(1)
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    stmt = (
        update(Job)
        .where(Job.id == candidate)
        .values(
            status="running",
            attempts=Job.attempts + 1,
            lease_owner=owner,
            lease_expires_at=now + timedelta(seconds=lease_seconds),
            started_at=func.coalesce(Job.started_at, now),
            updated_at=now,
        )
        .returning(Job.id, Job.spec, Job.attempts, Job.created_at)
        .execution_options(synchronize_session=False)
    )
    row = session.execute(stmt).one_or_none()
    if row is None:
        return None
    return ClaimedJob(
        id=row.id, spec=row.spec, attempts=row.attempts, created_at=row.created_at, started_at=now
    )


def has_claimable(session: Session) -> bool:
    now = utcnow()
    stmt = select(Job.id).where(
        or_(Job.status == "queued", (Job.status == "running") & (Job.lease_expires_at < now))
    )
    return session.execute(stmt.limit(1)).first() is not None


def reset_history(session: Session, job_id: str) -> None:
    """Drop what an earlier attempt wrote, before a job starts again from step 0."""
    session.execute(delete(MetricPoint).where(MetricPoint.job_id == job_id))
    session.execute(delete(JobArray).where(JobArray.job_id == job_id))


def add_points(session: Session, job_id: str, rows: list[tuple[str, int, float]]) -> None:
    if rows:
        session.execute(
            insert(MetricPoint),
            [{"job_id": job_id, "series": s, "step": step, "value": v} for s, step, v in rows],
        )


def heartbeat(
    session: Session,
    job_id: str,
    owner: str,
    lease_seconds: float,
    **values: Any,
) -> bool | None:
    """Renew the lease and set `values`; cancel_requested, or None if the lease is lost."""
    now = utcnow()
    stmt = (
        update(Job)
        .where(Job.id == job_id, Job.lease_owner == owner, Job.status == "running")
        .values(lease_expires_at=now + timedelta(seconds=lease_seconds), updated_at=now, **values)
        .returning(Job.cancel_requested)
        .execution_options(synchronize_session=False)
    )
    row = session.execute(stmt).one_or_none()
    return None if row is None else bool(row.cancel_requested)


def put_array(session: Session, job_id: str, name: str, array: np.ndarray, step: int) -> None:
    contiguous = np.ascontiguousarray(array)
    session.merge(
        JobArray(
            job_id=job_id,
            name=name,
            step=step,
            dtype=str(contiguous.dtype),
            shape=list(contiguous.shape),
            data=contiguous.tobytes(),
            updated_at=utcnow(),
        )
    )


def finish(session: Session, job_id: str, owner: str, status: str, **values: Any) -> bool:
    """Move a claimed job to a terminal state; False if this worker no longer holds it."""
    now = utcnow()
    stmt = (
        update(Job)
        .where(Job.id == job_id, Job.lease_owner == owner, Job.status == "running")
        .values(
            status=status,
            finished_at=now,
            updated_at=now,
            lease_owner=None,
            lease_expires_at=None,
            **values,
        )
        .execution_options(synchronize_session=False)
    )
    return session.execute(stmt).rowcount == 1  # type: ignore[attr-defined, no-any-return]


def release(session: Session, job_id: str, owner: str) -> bool:
    """Hand a job back to the queue (worker shutting down) for another worker to take."""
    stmt = (
        update(Job)
        .where(Job.id == job_id, Job.lease_owner == owner, Job.status == "running")
        .values(status="queued", lease_owner=None, lease_expires_at=None, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    return session.execute(stmt).rowcount == 1  # type: ignore[attr-defined, no-any-return]
