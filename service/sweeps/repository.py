"""The SQL of the sweeps resource: sweeps, and reading their trials (jobs with a sweep_id); the
trials themselves are added and cancelled through service.jobs.repository."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.db.models import Job, MetricPoint, Sweep
from service.jobs import repository as jobs_repository


@dataclass(frozen=True)
class Trial:
    id: str
    sweep_id: str
    status: str
    params: dict[str, Any]
    metrics: dict[str, Any]
    error: dict[str, Any] | None
    finished_at: datetime | None


def add(session: Session, sweep: Sweep, trials: Sequence[Job]) -> None:
    session.add(sweep)
    session.flush()  # the sweep before the jobs that reference it
    jobs_repository.add_all(session, trials)


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


def sweep_of(session: Session, job_id: str) -> tuple[str, dict[str, Any]] | None:
    """The id and request of the sweep this job is a trial of (None for a job of its own)."""
    stmt = (
        select(Sweep.id, Sweep.request).join(Job, Job.sweep_id == Sweep.id).where(Job.id == job_id)
    )
    row = session.execute(stmt).one_or_none()
    return None if row is None else (row.id, row.request)


def values_at(session: Session, sweep_id: str, series: str, step: int) -> dict[str, float]:
    """The value each trial of the sweep has recorded for `series` at `step`, by job id."""
    stmt = (
        select(MetricPoint.job_id, MetricPoint.value)
        .join(Job, Job.id == MetricPoint.job_id)
        .where(Job.sweep_id == sweep_id, MetricPoint.series == series, MetricPoint.step == step)
    )
    return {job_id: float(value) for job_id, value in session.execute(stmt)}
