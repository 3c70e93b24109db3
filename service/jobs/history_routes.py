"""HTTP endpoints of a job's recorded series: `/jobs/{id}/loss` and `/jobs/{id}/metrics/{series}`.

Owns their query parameters; the answer (a page after a cursor or a downsampled window, with an
ETag, 304 when it matches) comes from the app's LiveReads. `add_routes` puts these routes on
service.jobs.router's router, right after GET /jobs/{id}, so they share its `/jobs` prefix and
tag, and are routed at its level rather than through a router of their own.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response

from service.history.point_store import LAST_POSSIBLE_STEP
from service.history.reads import Window
from service.history.series import Series
from service.jobs.live_reads import LiveReadsDep, respond
from service.jobs.live_route import LiveReadRoute
from service.jobs.route_params import NOT_FOUND, NOT_MODIFIED, IfNoneMatch, JobId
from service.jobs.schemas import DEFAULT_PAGE, MAX_PAGE, LossPage, SeriesPage

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


async def get_loss(
    job_id: JobId,
    live: LiveReadsDep,
    after: After = None,
    limit: Limit = DEFAULT_PAGE,
    max_points: MaxPoints = None,
    start: Start = None,
    end: End = None,
    if_none_match: IfNoneMatch = None,
) -> Response:
    window = Window(after, limit, max_points, start, end)
    return respond(await live.series(job_id, "loss", "loss", window), if_none_match)


async def get_series(
    job_id: JobId,
    series: Annotated[Series, Path(description="The series' name.")],
    live: LiveReadsDep,
    after: After = None,
    limit: Limit = DEFAULT_PAGE,
    max_points: MaxPoints = None,
    start: Start = None,
    end: End = None,
    if_none_match: IfNoneMatch = None,
) -> Response:
    window = Window(after, limit, max_points, start, end)
    return respond(await live.series(job_id, series, "value", window), if_none_match)


def add_routes(router: APIRouter) -> None:
    """Add the series' endpoints to `router` (whose prefix is `/jobs`)."""
    router.add_api_route(
        "/{job_id}/loss",
        get_loss,
        methods=["GET"],
        response_model=LossPage,
        responses={**NOT_FOUND, **NOT_MODIFIED},
        summary="Loss history",
        route_class_override=LiveReadRoute,
    )
    router.add_api_route(
        "/{job_id}/metrics/{series}",
        get_series,
        methods=["GET"],
        response_model=SeriesPage,
        responses={**NOT_FOUND, **NOT_MODIFIED},
        summary="Any recorded series (loss, best_loss, learning_rate, train_accuracy, "
        "val_accuracy)",
        route_class_override=LiveReadRoute,
    )
