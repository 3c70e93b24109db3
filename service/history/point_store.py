"""The SQL that reads a job's points (metric_points): pages, ends, counts and the newest points,
for the API's history reads, the event streams and the tails. The worker writes them through
service.history.writes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import Session

from service.db.models import MetricPoint

NO_STEP = -1  # steps start at 0: "after -1" is "from the start"
LAST_POSSIBLE_STEP = 2**63 - 1  # the BigInteger column's largest value

# Built once on the table's columns: a Core statement on a Table skips the ORM's per-call compile
# step, which costs more than these indexed reads themselves.
_points = MetricPoint.__table__.c
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
