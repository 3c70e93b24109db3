"""Reads of a job's recorded series: a page after a cursor, or a downsampled overview.

Owns the query of a series read (Window) and what a page holds (its points, `next_after` and
`total`); the answer's bytes are built by service.history.answers, like the tails' pages, so both
answer byte for byte alike.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from sqlalchemy.orm import Session

from service.db.models import TERMINAL_STATUSES
from service.errors import InvalidInput, NotFound
from service.history import downsample, point_store, rollup, rollup_store
from service.history.answers import Answer, page_answer, point_fragments
from service.history.point_counts import point_counts
from service.jobs import repository
from service.jobs.repository import JobState


class Window(NamedTuple):
    """The query of a series read: a page after a step, or a downsampled start..end window."""

    after: int | None
    limit: int
    max_points: int | None
    start: int | None
    end: int | None

    def check(self) -> None:
        """Refuse what the parameters' own bounds cannot: a window without max_points, or an
        empty one."""
        if self.max_points is None and (self.start is not None or self.end is not None):
            raise InvalidInput(
                "start and end select a window of a downsampled curve",
                [(("query", "max_points"), "required with start or end")],
            )
        if self.start is not None and self.end is not None and self.end < self.start:
            raise InvalidInput("Empty window", [(("query", "end"), "must not be before start")])

    @property
    def is_page(self) -> bool:
        """A page after a cursor (what a tail can answer), not a downsampled window."""
        return self.max_points is None and self.start is None and self.end is None


def series_answer(session: Session, job_id: str, series: str, key: str, window: Window) -> Answer:
    """The answer to a series read: a LossPage (key "loss") or a SeriesPage (key "value")."""
    job = repository.state(session, job_id)
    if job is None:
        raise NotFound(f"No job with id {job_id!r}")
    window.check()
    if window.max_points is None:
        page = series_page(session, job_id, job, series, after=window.after, limit=window.limit)
    else:
        page = series_overview(
            session, job_id, job, series,
            max_points=window.max_points, start=window.start, end=window.end,
        )  # fmt: skip
    points, next_after, total = page
    return page_answer(point_fragments(points, key), next_after, total, key=key)


def series_page(
    session: Session, job_id: str, job: JobState, series: str, *, after: int | None, limit: int
) -> tuple[list[tuple[int, float]], int | None, int]:
    """A page of one series: its points, the cursor for the next page, the points stored so far."""
    points = list(point_store.points(session, job_id, series, after=after, limit=limit))
    total = point_counts(session).total(session, job_id, series, job)
    next_after = next_cursor(
        after, limit, points[-1][0] if points else None, len(points), job,
        lambda: point_store.last_step(session, job_id, series),
    )  # fmt: skip
    return points, next_after, total


def series_overview(
    session: Session,
    job_id: str,
    job: JobState,
    series: str,
    *,
    max_points: int,
    start: int | None,
    end: int | None,
) -> tuple[list[tuple[int, float]], int | None, int]:
    """At most `max_points` points of steps start..end that keep the curve's shape."""
    points = _shape(session, job_id, series, max_points, start, end)
    total = point_counts(session).total(session, job_id, series, job)
    finished = job.status in TERMINAL_STATUSES
    next_after = None if finished else (points[-1][0] if points else -1)
    return points, next_after, total


def _shape(
    session: Session, job_id: str, series: str, max_points: int, start: int | None, end: int | None
) -> list[tuple[int, float]]:
    """The first and last point of the window and each bucket's extremes.

    A window narrow enough (at most FANOUT points a bucket) is read point by point; a wider one
    from the rollups, whose rows read grow with max_points and not with the history's length.
    """
    after = None if start is None else start - 1
    ends = point_store.ends(session, job_id, series, after=after, until=end)
    if ends is None:
        return []
    first, last = ends
    lo, hi = first[0], last[0]
    buckets = (max_points - 2) // 2
    if buckets == 0:
        return sorted({lo: first[1], hi: last[1]}.items())
    level = rollup.level_for(lo, hi, buckets)
    if level == 0:
        rows = point_store.points(session, job_id, series, after=lo - 1, limit=None, until=hi)
        return [rows[i] for i in downsample.keep_indices([value for _, value in rows], max_points)]
    found = rollup_store.read(session, job_id, series, rollup.cover(lo, hi, level))
    inner = dict(rollup.bucket_extremes(found, lo, hi, buckets))
    return sorted({**inner, lo: first[1], hi: last[1]}.items())


def next_cursor(
    after: int | None,
    limit: int,
    page_last: int | None,
    page_size: int,
    job: JobState,
    stored_last: Callable[[], int | None],
) -> int | None:
    """A page's `next_after`: the cursor to ask with next, None once a finished job has no more.

    `page_last` is the step of the page's last point (None for an empty page); `stored_last`
    gives the last step stored, asked only when it decides.
    """  # fmt: skip
    finished = job.status in TERMINAL_STATUSES
    if page_last is None:
        # A running job may still write: hand the same cursor back (-1 = from the start).
        return None if finished else (after if after is not None else point_store.NO_STEP)
    exhausted = finished and (page_size < limit or stored_last() == page_last)
    return None if exhausted else page_last
