"""The SQL of the sweeps resource: sweeps, and reading their trials (jobs with a sweep_id); the
trials themselves are added, cancelled and deleted through service.jobs.repository."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple, get_args

from sqlalchemy import ColumnElement, and_, case, delete, func, select
from sqlalchemy.orm import Session

from service.db.models import JOB_STATUSES, Job, MetricPoint, Sweep
from service.jobs import repository as jobs_repository
from service.sweeps.schemas import MAXIMIZED, Metric


@dataclass(frozen=True)
class Trial:
    id: str
    status: str
    params: dict[str, Any]
    metrics: dict[str, Any]
    error: dict[str, Any] | None


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


def remove(session: Session, sweep_id: str) -> None:
    """Delete the sweep row (its trials are deleted first, by service.jobs)."""
    session.execute(delete(Sweep).where(Sweep.id == sweep_id))


def trials(session: Session, sweep_id: str) -> list[Trial]:
    """The sweep's trials in creation order, without their specs."""
    stmt = (
        select(Job.id, Job.status, Job.params, Job.metrics, Job.error)
        .where(Job.sweep_id == sweep_id)
        .order_by(Job.id)
    )
    return [
        Trial(row.id, row.status, row.params or {}, row.metrics or {}, row.error)
        for row in session.execute(stmt)
    ]


class Tally(NamedTuple):
    """A sweep's trials counted by status (pruned ones apart from the other cancelled), and when
    the last of them finished."""

    counts: dict[str, int]
    last_finished_at: datetime | None


def tallies(session: Session, sweep_ids: Sequence[str]) -> dict[str, Tally]:
    """The Tally of each of these sweeps that has trials: one row per sweep, whatever its size."""
    if not sweep_ids:
        return {}
    # coalesce: a NULL error type would make NOT pruned NULL, and the trial counted nowhere.
    error_type = func.coalesce(Job.error["type"].as_string(), "")
    pruned = and_(Job.status == "cancelled", error_type == "pruned")
    kinds: dict[str, ColumnElement[bool]] = {s: Job.status == s for s in JOB_STATUSES}
    kinds["cancelled"] = and_(kinds["cancelled"], ~pruned)
    kinds["pruned"] = pruned
    counted = [func.count().filter(where).label(kind) for kind, where in kinds.items()]
    stmt = (
        select(Job.sweep_id, *counted, func.max(Job.finished_at).label("last_finished_at"))
        .where(Job.sweep_id.in_(sweep_ids))
        .group_by(Job.sweep_id)
    )
    return {
        row.sweep_id: Tally({kind: int(row._mapping[kind]) for kind in kinds}, row.last_finished_at)
        for row in session.execute(stmt)
    }


class Leader(NamedTuple):
    """A sweep's best trial: the first by the sweep's metric (ties: the earlier trial)."""

    job_id: str
    params: dict[str, Any]
    value: float
    val_accuracy: float | None
    test_accuracy: float | None


def _metric(name: str) -> ColumnElement[float]:
    metric: ColumnElement[float] = Job.metrics[name].as_float()
    return metric


def leaders(session: Session, sweep_ids: Sequence[str]) -> dict[str, Leader]:
    """The Leader of each of these sweeps with a succeeded trial that recorded its metric, ranked
    in SQL: one row per sweep comes back, whatever its size.

    The values are read from the metrics JSON with SQLAlchemy's JSON accessors (json_extract on
    SQLite, ->> on PostgreSQL), as jobs.repository.dependents reads specs; metrics hold finite
    numbers only (jsonb could not store NaN, and json_extract refuses a document holding one)."""
    if not sweep_ids:
        return {}
    value = case({name: _metric(name) for name in get_args(Metric)}, value=Sweep.metric)
    ordered = case((Sweep.metric.in_(MAXIMIZED), -value), else_=value)
    place = func.row_number().over(partition_by=Job.sweep_id, order_by=(ordered, Job.id))
    ranked = (
        select(Job.id, place.label("place"))
        .join(Sweep, Sweep.id == Job.sweep_id)
        .where(Job.sweep_id.in_(sweep_ids), Job.status == "succeeded", value.is_not(None))
        .subquery()
    )
    stmt = (
        select(Job.sweep_id, Job.id, Job.params, value.label("value"),
               _metric("val_accuracy").label("val_accuracy"),
               _metric("test_accuracy").label("test_accuracy"))
        .join(ranked, ranked.c.id == Job.id)
        .join(Sweep, Sweep.id == Job.sweep_id)
        .where(ranked.c.place == 1)
    )  # fmt: skip
    return {
        row.sweep_id: Leader(
            row.id,
            row.params or {},
            float(row.value),
            _float(row.val_accuracy),
            _float(row.test_accuracy),
        )
        for row in session.execute(stmt)
    }


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


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
