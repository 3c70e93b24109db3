"""All SQL of the jobs resource, as seen from the API."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

from sqlalchemy import Row, bindparam, delete, func, select
from sqlalchemy.orm import Session, load_only

from service.db.models import Checkpoint, Job, JobArray, JobAttempt, MetricPoint
from service.db.notify import job_queued
from service.history import rollup_store


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
    columns = [getattr(Job, name) for name in VIEW_COLUMNS]
    stmt = select(Job).options(load_only(*columns)).order_by(Job.id.desc()).limit(limit)
    if status is not None:
        stmt = stmt.where(Job.status == status)
    if task is not None:
        stmt = stmt.where(Job.task == task)
    if before_id is not None:
        stmt = stmt.where(Job.id < before_id)
    return session.scalars(stmt).all()


# The polled reads are built once on the tables' columns: a Core statement on a Table skips the
# ORM's per-call compile step, which costs more than these indexed reads themselves.
_points = MetricPoint.__table__.c
_jobs = Job.__table__.c
_SERIES = (_points.job_id == bindparam("job_id"), _points.series == bindparam("series"))
_RANGE = (_points.step > bindparam("after"), _points.step <= bindparam("until"))
_ALL_POINTS = select(_points.step, _points.value).where(*_SERIES, *_RANGE).order_by(_points.step)
_POINTS_PAGE = _ALL_POINTS.limit(bindparam("limit"))
_FIRST_POINT = _ALL_POINTS.limit(1)
_NEWEST_POINTS = (
    select(_points.step, _points.value)
    .where(*_SERIES, *_RANGE)
    .order_by(_points.step.desc())
    .limit(bindparam("limit"))
)
_COUNT_AFTER = select(func.count(), func.max(_points.step)).where(
    *_SERIES, _points.step > bindparam("after")
)
_LAST_STEP = select(func.max(_points.step)).where(*_SERIES)
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
NO_STEP = -1  # steps start at 0: "after -1" is "from the start"
LAST_POSSIBLE_STEP = 2**63 - 1  # the BigInteger column's largest value


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
    params: dict[str, Any] = {
        "job_id": job_id,
        "series": series,
        "after": NO_STEP if after is None else after,
        "until": LAST_POSSIBLE_STEP if until is None else until,
    }
    if limit is None:
        rows = session.execute(_ALL_POINTS, params).all()
    else:
        rows = session.execute(_POINTS_PAGE, {**params, "limit": limit}).all()
    return [(int(step), float(value)) for step, value in rows]  # all(): one fetchall, not one a row


def newest_points(
    session: Session, job_id: str, series: str, limit: int
) -> list[tuple[int, float]]:
    """The last `limit` points of a series, in step order."""
    params = {"job_id": job_id, "series": series, "after": NO_STEP, "until": LAST_POSSIBLE_STEP}
    rows = session.execute(_NEWEST_POINTS, {**params, "limit": limit}).all()
    return [(int(step), float(value)) for step, value in reversed(rows)]


def ends(
    session: Session, job_id: str, series: str, *, after: int | None, until: int | None
) -> tuple[tuple[int, float], tuple[int, float]] | None:
    """The first and the last point with after < step <= until (None if there is none)."""
    params = {
        "job_id": job_id,
        "series": series,
        "after": NO_STEP if after is None else after,
        "until": LAST_POSSIBLE_STEP if until is None else until,
    }
    first = session.execute(_FIRST_POINT, params).one_or_none()
    last = session.execute(_NEWEST_POINTS, {**params, "limit": 1}).one_or_none()
    if first is None or last is None:
        return None
    return (int(first.step), float(first.value)), (int(last.step), float(last.value))


def count_after(session: Session, job_id: str, series: str, after: int) -> tuple[int, int | None]:
    """How many points of a series have step > after, and the last of their steps."""
    params = {"job_id": job_id, "series": series, "after": after}
    count, last = session.execute(_COUNT_AFTER, params).one()
    return int(count or 0), None if last is None else int(last)


def count_points(session: Session, job_id: str, series: str) -> int:
    return count_after(session, job_id, series, NO_STEP)[0]


def last_step(session: Session, job_id: str, series: str) -> int | None:
    value = session.execute(_LAST_STEP, {"job_id": job_id, "series": series}).scalar()
    return None if value is None else int(value)


def array(session: Session, job_id: str, name: str) -> JobArray | None:
    return session.get(JobArray, (job_id, name))


def remove(session: Session, job_id: str) -> None:
    """Delete a job with everything it owns (explicitly, not trusting FK cascades on SQLite)."""
    session.execute(delete(MetricPoint).where(MetricPoint.job_id == job_id))
    rollup_store.delete(session, job_id)
    session.execute(delete(JobArray).where(JobArray.job_id == job_id))
    session.execute(delete(Checkpoint).where(Checkpoint.job_id == job_id))
    session.execute(delete(JobAttempt).where(JobAttempt.job_id == job_id))
    session.execute(delete(Job).where(Job.id == job_id))
