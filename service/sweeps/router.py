"""HTTP endpoints of the sweeps resource: thin wrappers around sweeps.service and sweeps.reads."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Query, Response
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
from service.jobs.router import QUEUE_FULL, TOO_LARGE
from service.jobs.spec_base import PLAIN_TEXT
from service.sweeps import reads, service
from service.sweeps.schemas import SWEEP_EXAMPLE, SweepOut, SweepPage, SweepRequest

router = APIRouter(prefix="/sweeps", tags=["sweeps"])

SweepId = Annotated[
    str, Path(min_length=1, max_length=64, pattern=PLAIN_TEXT, description="A sweep id.")
]
PROBLEM: dict[str, Any] = {"content": {"application/problem+json": {}}}
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "Unknown sweep", **PROBLEM}}


@router.post(
    "",
    status_code=202,
    response_model=SweepOut,
    responses={
        **TOO_LARGE,
        **UNSUPPORTED_MEDIA_TYPE,
        409: {"description": "The same Idempotency-Key is still in flight", **PROBLEM},
        422: {
            "description": "Invalid base spec or space (the errors name the path), too many "
            "trials (more than the queue holds), or an Idempotency-Key reused with another body",
            **PROBLEM,
        },
        **QUEUE_FULL,
    },
    summary="Start a sweep: one job per trial, on the normal queue",
    dependencies=JSON_BODY,
)
def submit_sweep(
    request: Annotated[SweepRequest, Body(openapi_examples={"random": {"value": SWEEP_EXAMPLE}})],
    database: DatabaseDep,
    settings: SettingsDep,
    idempotency_key: idempotent_create.IdempotencyKey = None,
) -> Any:
    def create(session: Session) -> idempotent_create.Created:
        sweep = service.submit(session, request, settings)
        out = reads.to_out(session, sweep).model_dump(mode="json")
        return out, {"Location": f"/sweeps/{sweep.id}"}

    body = request.model_dump(mode="json", exclude_unset=True)
    return idempotent_create.create_once(
        database,
        service.SUBMIT_SCOPE,
        idempotency_key,
        body,
        settings.idempotency_ttl_seconds,
        create,
    )


@router.get("", response_model=SweepPage, summary="List sweeps, newest first")
def list_sweeps(
    session: ReadSession,
    settings: SettingsDep,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 50,
    cursor: Annotated[str | None, Query(max_length=64)] = None,
) -> SweepPage:
    return reads.list_page(session, cursor=cursor, limit=min(limit, settings.max_page_limit))


@router.get(
    "/{sweep_id}",
    response_model=SweepOut,
    responses=NOT_FOUND,
    summary="One sweep: status, its trials, the leaderboard and the best trial",
)
def get_sweep(sweep_id: SweepId, session: ReadSession) -> SweepOut:
    return reads.to_out(session, service.get(session, sweep_id))


@router.post(
    "/{sweep_id}/cancel",
    status_code=202,
    response_model=SweepOut,
    responses={**NOT_FOUND, 409: {"description": "Every trial has already finished", **PROBLEM}},
    summary="Cancel a sweep's queued (at once) and running (at their next step batch) trials",
)
def cancel_sweep(sweep_id: SweepId, session: WriteSession) -> SweepOut:
    sweep = service.cancel(session, sweep_id)
    session.commit()
    return reads.to_out(session, sweep)


@router.delete(
    "/{sweep_id}",
    status_code=204,
    responses={
        **NOT_FOUND,
        409: {
            "description": "A trial is still queued or running, or is named by a queued or "
            "running job (a landscape's around)",
            **PROBLEM,
        },
    },
    summary="Delete a finished sweep with its trials, their histories and weights",
)
def delete_sweep(sweep_id: SweepId, session: WriteSession) -> Response:
    service.delete(session, sweep_id)
    session.commit()
    return Response(status_code=204)
