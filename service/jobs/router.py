"""HTTP endpoints of the jobs resource: thin wrappers around jobs.service."""

from __future__ import annotations

import io
import math
from collections.abc import Callable
from functools import partial
from typing import Annotated, Any, Literal, NamedTuple

import anyio.to_thread
import numpy as np
from fastapi import APIRouter, Body, Depends, Header, Path, Query, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session

from service import idempotent_create
from service.db.session import Database
from service.deps import (
    JSON_BODY,
    UNSUPPORTED_MEDIA_TYPE,
    DatabaseDep,
    ReadSession,
    SettingsDep,
    WriteSession,
)
from service.errors import InvalidInput
from service.jobs import service
from service.jobs.poll_cache import json_answer
from service.jobs.repository import LAST_POSSIBLE_STEP
from service.jobs.schemas import (
    DEFAULT_PAGE,
    MAX_PAGE,
    EvaluationOut,
    JobOut,
    JobPage,
    LossPage,
    PredictIn,
    PredictOut,
    SeriesPage,
    WeightsOut,
)
from service.jobs.series import Series
from service.jobs.spec import SPEC_EXAMPLE, JobSpec, Task
from service.jobs.spec_base import PLAIN_TEXT

router = APIRouter(prefix="/jobs", tags=["jobs"])

JobId = Annotated[
    str, Path(min_length=1, max_length=64, pattern=PLAIN_TEXT, description="A job id.")
]
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
PROBLEM: dict[str, Any] = {"content": {"application/problem+json": {}}}
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "Unknown job", **PROBLEM}}


@router.post(
    "",
    status_code=202,
    response_model=JobOut,
    responses={
        **UNSUPPORTED_MEDIA_TYPE,
        409: {"description": "The same Idempotency-Key is still in flight", **PROBLEM},
        422: {
            "description": "Invalid spec, or an Idempotency-Key reused with another body",
            **PROBLEM,
        },
    },
    summary="Submit a job",
    dependencies=JSON_BODY,
)
def submit_job(
    spec: Annotated[JobSpec, Body(openapi_examples={"svm-sgd": {"value": SPEC_EXAMPLE}})],
    database: DatabaseDep,
    settings: SettingsDep,
    idempotency_key: Annotated[
        str | None,
        Header(description="Makes retries safe: the same key and body replay the first response."),
    ] = None,
) -> Any:
    def create(session: Session) -> idempotent_create.Created:
        job = service.submit(session, spec, settings)
        return service.to_out(job).model_dump(mode="json"), {"Location": f"/jobs/{job.id}"}

    body = spec.model_dump(mode="json", exclude_unset=True)
    return idempotent_create.create_once(
        database, "POST /jobs", idempotency_key, body, settings.idempotency_ttl_seconds, create
    )


@router.get("", response_model=JobPage, summary="List jobs, newest first")
def list_jobs(
    session: ReadSession,
    settings: SettingsDep,
    status: Annotated[
        Literal["queued", "running", "succeeded", "failed", "cancelled"] | None, Query()
    ] = None,
    task: Annotated[Task | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 50,
    cursor: Annotated[str | None, Query(max_length=64)] = None,
) -> JobPage:
    return service.list_page(
        session, status=status, task=task, cursor=cursor, limit=min(limit, settings.max_page_limit)
    )


async def database_of(request: Request) -> Database:
    """The app's database, without the threadpool trip FastAPI gives a sync dependency."""
    database: Database = request.app.state.database
    return database


# The polled endpoints are async and do all their reading in one trip to the threadpool: with
# sync dependencies and a response_model to validate, FastAPI would make five trips per request.
PollDatabase = Annotated[Database, Depends(database_of)]
IfNoneMatch = Annotated[
    str | None, Header(description="An ETag from an earlier answer: 304 if nothing changed.")
]
NOT_MODIFIED: dict[int | str, dict[str, Any]] = {304: {"description": "Unchanged since the ETag"}}


def _reading(database: Database, read: Callable[[Session], str]) -> str:
    with database.read() as session:
        return read(session)


@router.get(
    "/{job_id}",
    response_model=JobOut,
    responses={**NOT_FOUND, **NOT_MODIFIED},
    summary="One job",
)
async def get_job(
    job_id: JobId, database: PollDatabase, if_none_match: IfNoneMatch = None
) -> Response:
    body = await anyio.to_thread.run_sync(
        _reading, database, partial(service.job_json, job_id=job_id)
    )
    return json_answer(body, if_none_match)


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
    return json_answer(await anyio.to_thread.run_sync(_reading, database, read), etag)


def _series_json(session: Session, job_id: str, series: str, key: str, window: Window) -> str:
    after, limit, max_points, start, end = window
    job = service.state(session, job_id)
    if max_points is None:
        if start is not None or end is not None:
            raise InvalidInput(
                "start and end select a window of a downsampled curve",
                [(("query", "max_points"), "required with start or end")],
            )
        page = service.series_page(session, job_id, job, series, after=after, limit=limit)
    else:
        if start is not None and end is not None and end < start:
            raise InvalidInput("Empty window", [(("query", "end"), "must not be before start")])
        page = service.series_overview(
            session, job_id, job, series, max_points=max_points, start=start, end=end
        )
    return service.page_json(*page, key=key)


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


@router.get(
    "/{job_id}/weights",
    response_model=WeightsOut,
    responses={
        **NOT_FOUND,
        409: {"description": "No weights stored yet", **PROBLEM},
        200: {"content": {"application/octet-stream": {}}},
    },
    summary="The learned W (classes x features, bias last); ?format=npy for an .npy file",
)
def get_weights(
    job_id: JobId,
    session: ReadSession,
    format: Annotated[Literal["json", "npy"], Query()] = "json",
) -> Any:
    job = service.get(session, job_id)
    stored = service.weights(session, job)
    array = service.as_ndarray(stored)
    if format == "npy":
        buffer = io.BytesIO()
        np.save(buffer, array, allow_pickle=False)
        return Response(
            buffer.getvalue(),
            media_type="application/octet-stream",
            headers={"Content-Disposition": f'attachment; filename="{job.id}-W.npy"'},
        )
    data = array.tolist()
    if not np.isfinite(array).all():  # never serve NaN/Infinity as JSON
        data = [[v if math.isfinite(v) else None for v in row] for row in data]
    body = WeightsOut(shape=list(array.shape), dtype=str(array.dtype), step=stored.step, data=data)
    return JSONResponse(body.model_dump())


@router.get(
    "/{job_id}/result",
    responses={
        **NOT_FOUND,
        409: {"description": "A train job, or a task that has not succeeded", **PROBLEM},
        200: {
            "content": {
                "application/json": {
                    "examples": {
                        "step_size_sweep": {
                            "value": {
                                "loss_original": 9.0,
                                "steps": [{"step_size": 1e-6, "loss": 8.7}],
                            }
                        }
                    }
                }
            }
        },
    },
    summary="The result of a finished gradient_check, step_size_sweep or landscape job",
)
def get_result(job_id: JobId, session: ReadSession) -> dict[str, Any]:
    return service.result(service.get(session, job_id))


@router.post(
    "/{job_id}/cancel",
    status_code=202,
    response_model=JobOut,
    responses={**NOT_FOUND, 409: {"description": "Already finished", **PROBLEM}},
    summary="Cancel a queued or running job",
)
def cancel_job(job_id: JobId, session: WriteSession) -> JobOut:
    job = service.cancel(session, job_id)
    session.commit()
    return service.to_out(job)


@router.delete(
    "/{job_id}",
    status_code=204,
    responses={**NOT_FOUND, 409: {"description": "Still queued or running", **PROBLEM}},
    summary="Delete a finished job with its history and weights",
)
def delete_job(job_id: JobId, session: WriteSession) -> Response:
    service.delete(session, job_id)
    session.commit()
    return Response(status_code=204)


@router.post(
    "/{job_id}/predict",
    response_model=PredictOut,
    responses={
        **NOT_FOUND,
        **UNSUPPORTED_MEDIA_TYPE,
        409: {"description": "The job has no weights yet", **PROBLEM},
        422: {"description": "Wrong width, too many rows, or non-finite values", **PROBLEM},
    },
    summary="Labels and class scores of raw rows, with the job's preprocessing applied",
    dependencies=JSON_BODY,
)
def predict(
    job_id: JobId, body: PredictIn, session: ReadSession, settings: SettingsDep
) -> PredictOut:
    return service.predict(session, service.get(session, job_id), body.X, settings)


@router.get(
    "/{job_id}/evaluation",
    response_model=EvaluationOut,
    responses={**NOT_FOUND, 409: {"description": "Not a succeeded train job", **PROBLEM}},
    summary="Confusion matrix, per-class accuracy and accuracy of each split",
)
def get_evaluation(job_id: JobId, session: ReadSession) -> EvaluationOut:
    return service.evaluation(service.get(session, job_id))
