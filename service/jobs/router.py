"""HTTP endpoints of the jobs resource: submit, list, read, cancel, delete, and a job's weights,
result, evaluation and predictions; thin wrappers around jobs.service.

It also serves the recorded series, whose routes live in history_routes.
"""

from __future__ import annotations

import io
import math
from typing import Annotated, Any, Literal

import numpy as np
from fastapi import APIRouter, Body, Query, Response
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session

from service import idempotent_create
from service.deps import (
    JSON_BODY,
    UNSUPPORTED_MEDIA_TYPE,
    DatabaseDep,
    ReadSession,
    SettingsDep,
    WriteSession,
)
from service.jobs import history_routes, service
from service.jobs.live_reads import LiveReadsDep, respond
from service.jobs.live_route import LiveReadRoute
from service.jobs.route_params import NOT_FOUND, NOT_MODIFIED, PROBLEM, IfNoneMatch, JobId
from service.jobs.schemas import EvaluationOut, JobOut, JobPage, PredictIn, PredictOut, WeightsOut
from service.jobs.spec import SPEC_EXAMPLE, JobSpec, Task

router = APIRouter(prefix="/jobs", tags=["jobs"])

# Shared with POST /sweeps, the other way onto the queue.
TOO_LARGE: dict[int | str, dict[str, Any]] = {
    413: {"description": "The body exceeds DESCENT_MAX_JSON_BYTES", **PROBLEM}
}
QUEUE_FULL: dict[int | str, dict[str, Any]] = {
    503: {
        "description": "The queue is full (DESCENT_MAX_QUEUED_JOBS): nothing was created; "
        "retry after Retry-After",
        **PROBLEM,
    }
}


@router.post(
    "",
    status_code=202,
    response_model=JobOut,
    responses={
        **TOO_LARGE,
        **UNSUPPORTED_MEDIA_TYPE,
        409: {"description": "The same Idempotency-Key is still in flight", **PROBLEM},
        422: {
            "description": "Invalid spec, or an Idempotency-Key reused with another body",
            **PROBLEM,
        },
        **QUEUE_FULL,
    },
    summary="Submit a job",
    dependencies=JSON_BODY,
)
def submit_job(
    spec: Annotated[JobSpec, Body(openapi_examples={"svm-sgd": {"value": SPEC_EXAMPLE}})],
    database: DatabaseDep,
    settings: SettingsDep,
    idempotency_key: idempotent_create.IdempotencyKey = None,
) -> Any:
    def create(session: Session) -> idempotent_create.Created:
        job = service.submit(session, spec, settings)
        return service.to_out(job).model_dump(mode="json"), {"Location": f"/jobs/{job.id}"}

    body = spec.model_dump(mode="json", exclude_unset=True)
    return idempotent_create.create_once(
        database,
        service.SUBMIT_SCOPE,
        idempotency_key,
        body,
        settings.idempotency_ttl_seconds,
        create,
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


async def get_job(job_id: JobId, live: LiveReadsDep, if_none_match: IfNoneMatch = None) -> Response:
    return respond(await live.job(job_id), if_none_match)


router.add_api_route(
    "/{job_id}",
    get_job,
    methods=["GET"],
    response_model=JobOut,
    responses={**NOT_FOUND, **NOT_MODIFIED},
    summary="One job",
    route_class_override=LiveReadRoute,
)
# Added here, right after GET /jobs/{id}: the API document lists operations in the order they
# are registered, and a job's history belongs beside the job.
history_routes.add_routes(router)


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
    responses={
        **NOT_FOUND,
        409: {
            "description": "Still queued or running, named by a queued or running job "
            "(a landscape's around), or a sweep's trial (deleted only with its sweep)",
            **PROBLEM,
        },
    },
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
        **TOO_LARGE,
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
