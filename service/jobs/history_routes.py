"""HTTP endpoints of a job's recorded series: `/jobs/{id}/loss` and `/jobs/{id}/metrics/{series}`.

Owns their query parameters and the answer: a page after a cursor or a downsampled window, as
JSON with an ETag (304 when it matches). service.jobs.router includes these routes under its
`/jobs` prefix and tag, so this router has neither.
"""

from __future__ import annotations

from functools import partial
from typing import Annotated, NamedTuple

import anyio.to_thread
from fastapi import APIRouter, Path, Query, Response
from sqlalchemy.orm import Session

from service.db.session import Database
from service.errors import InvalidInput
from service.history import reads as history_reads
from service.history.series import Series
from service.jobs import service
from service.jobs.poll_cache import json_answer
from service.jobs.repository import LAST_POSSIBLE_STEP
from service.jobs.route_params import (
    NOT_FOUND,
    NOT_MODIFIED,
    IfNoneMatch,
    JobId,
    PollDatabase,
    reading,
)
from service.jobs.schemas import DEFAULT_PAGE, MAX_PAGE, LossPage, SeriesPage

router = APIRouter()

# Steps are stored as 64-bit integers: a larger bound is refused here, before the database's
# driver overflows on it (SQLite's raises where PostgreSQL's would compare fine).
After = Annotated[
    int | None,
    Query(
        ge=-1,
        le=LAST_POSSIBLE_STEP,
        description="Return points with step > after (-1 = from the start).",
    ),
]
Limit = Annotated[int, Query(ge=1, le=MAX_PAGE, description="Page size.")]
MaxPoints = Annotated[
    int | None,
    Query(ge=2, le=10_000, description="Downsample to at most this many points (first, last and "
          "each bucket's min and max kept) instead of paging."),
]  # fmt: skip
Start = Annotated[
    int | None,
    Query(ge=0, le=LAST_POSSIBLE_STEP, description="With max_points: first step to include."),
]
End = Annotated[
    int | None,
    Query(ge=0, le=LAST_POSSIBLE_STEP, description="With max_points: last step to include."),
]


class Window(NamedTuple):
    """The query of a series read: a page after a step, or a downsampled start..end window."""

    after: int | None
    limit: int
    max_points: int | None
    start: int | None
    end: int | None


async def _series(
    database: Database, job_id: str, series: str, key: str, window: Window, etag: str | None
) -> Response:
    read = partial(_series_json, job_id=job_id, series=series, key=key, window=window)
    return json_answer(await anyio.to_thread.run_sync(reading, database, read), etag)


def _series_json(session: Session, job_id: str, series: str, key: str, window: Window) -> str:
    after, limit, max_points, start, end = window
    job = service.state(session, job_id)
    if max_points is None:
        if start is not None or end is not None:
            raise InvalidInput(
                "start and end select a window of a downsampled curve",
                [(("query", "max_points"), "required with start or end")],
            )
        page = history_reads.series_page(session, job_id, job, series, after=after, limit=limit)
    else:
        if start is not None and end is not None and end < start:
            raise InvalidInput("Empty window", [(("query", "end"), "must not be before start")])
        page = history_reads.series_overview(
            session, job_id, job, series, max_points=max_points, start=start, end=end
        )
    return history_reads.page_json(*page, key=key)


@router.get(
    "/{job_id}/loss",
    response_model=LossPage,
    responses={**NOT_FOUND, **NOT_MODIFIED},
    summary="Loss history",
)
async def get_loss(
    job_id: JobId,
    database: PollDatabase,
    after: After = None,
    limit: Limit = DEFAULT_PAGE,
    max_points: MaxPoints = None,
    start: Start = None,
    end: End = None,
    if_none_match: IfNoneMatch = None,
) -> Response:
    window = Window(after, limit, max_points, start, end)
    return await _series(database, job_id, "loss", "loss", window, if_none_match)


@router.get(
    "/{job_id}/metrics/{series}",
    response_model=SeriesPage,
    responses={**NOT_FOUND, **NOT_MODIFIED},
    summary="Any recorded series (loss, best_loss, learning_rate, train_accuracy, val_accuracy)",
)
async def get_series(
    job_id: JobId,
    series: Annotated[Series, Path(description="The series' name.")],
    database: PollDatabase,
    after: After = None,
    limit: Limit = DEFAULT_PAGE,
    max_points: MaxPoints = None,
    start: Start = None,
    end: End = None,
    if_none_match: IfNoneMatch = None,
) -> Response:
    window = Window(after, limit, max_points, start, end)
    return await _series(database, job_id, series, "value", window, if_none_match)
