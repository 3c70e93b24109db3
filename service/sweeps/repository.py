"""All SQL of the sweeps resource: sweeps and their trials (jobs with a sweep_id)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from service.db.base import utcnow
from service.db.models import Job, Sweep
from service.db.notify import job_queued


@dataclass(frozen=True)
class Trial:
    id: str
    sweep_id: str
    status: str
    params: dict[str, Any]
    metrics: dict[str, Any]
    error: dict[str, Any] | None
    finished_at: datetime | None


def add(session: Session, sweep: Sweep, jobs: Sequence[Job]) -> None:
    session.add(sweep)
    session.flush()  # the sweep before the jobs that reference it
    session.add_all(jobs)
    session.flush()
    job_queued(session)


def get(session: Session, sweep_id: str, *, for_update: bool = False) -> Sweep | None:
    stmt = select(Sweep).where(Sweep.id == sweep_id)
    if for_update:
        stmt = stmt.with_for_update()
    return session.scalars(stmt).one_or_none()


def page(session: Session, *, before_id: str | None, limit: int) -> Sequence[Sweep]:
    stmt = select(Sweep).order_by(Sweep.id.desc()).limit(limit)
    if before_id is not None:
        stmt = stmt.where(Sweep.id < before_id)
    return session.scalars(stmt).all()


def trials(session: Session, sweep_ids: Sequence[str]) -> list[Trial]:
    """The trials of these sweeps in creation order, without their specs."""
    if not sweep_ids:
        return []
    stmt = (
        select(
            Job.id, Job.sweep_id, Job.status, Job.params, Job.metrics, Job.error, Job.finished_at
        )
        .where(Job.sweep_id.in_(sweep_ids))
        .order_by(Job.id)
    )
    return [
        Trial(
            row.id,
            row.sweep_id,
            row.status,
            row.params or {},
            row.metrics or {},
            row.error,
            row.finished_at,
        )
        for row in session.execute(stmt)
    ]


def cancel_trials(session: Session, sweep_id: str) -> int:
    """Cancel queued trials at once and flag running ones (they stop at their next step batch)."""
    now = utcnow()
    queued = session.execute(
        update(Job)
        .where(Job.sweep_id == sweep_id, Job.status == "queued")
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
        .where(Job.sweep_id == sweep_id, Job.status == "running")
        .values(cancel_requested=True, updated_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount  # type: ignore[attr-defined]
    return int(queued) + int(running)
