"""GET /jobs/{id}/events: a job's history and status as Server-Sent Events (FastAPI's own SSE)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Path, Query, Request
from fastapi.sse import EventSourceResponse, ServerSentEvent

from service.client_disconnects import EventStreamRoute
from service.deps import SettingsDep
from service.errors import Busy
from service.events import stream
from service.history import point_store
from service.jobs.live_reads import LiveReadsDep
from service.jobs.spec_base import PLAIN_TEXT

router = APIRouter(prefix="/jobs", tags=["events"], route_class=EventStreamRoute)

# The stream's pace; tests swap in a faster one.
TIMING = stream.Timing()

DESCRIPTION = """
A `text/event-stream` of one job, from its current state to its end. Events, in order:

- `status` once at the start and on every change of `status` (or `attempts`): `data` is the
  Job, exactly as `GET /jobs/{id}`. The first event also sets `retry: 1000`.
- `metrics`: new points of one series other than the loss (`learning_rate`, `best_loss`,
  `train_accuracy`, `val_accuracy`), `data` = `{"series": "val_accuracy", "points":
  [{"step": 100, "value": 0.31}, ...]}`. Sent before the `loss` event of the same batch.
- `loss`: new loss points, `data` = `{"points": [{"step": 41, "loss": 8.9}, ...]}` in step
  order, each step once.
- `progress` (at most every half second while it changes): `data` = `{"status", "progress":
  {"step", "total", "fraction"}, "metrics": {...}}`.
- `end` after the terminal `status` (`succeeded`, `failed`, `cancelled`): `data` = the final
  Job; the server then closes the stream. A finished job's stream delivers the remaining
  history, then `end`, at once.

Every event's `id` is the step through which **every** series has been delivered (-1 before
any). Reconnect with `Last-Event-ID: <id>` (or `?last_event_id=`; the header wins) to resume
right after it. A batch's events share the previous id except the last one, so a stream cut in
the middle of a batch repeats it rather than skipping it. Comment lines (`: ping`) keep idle
connections alive. Values that are not finite are `null`, never NaN or Infinity.
An unknown job is a 404 problem, answered before any streaming starts. So is a 503 (with
`Retry-After`) when the API already serves `DESCENT_MAX_EVENT_STREAMS` streams.
"""

EXAMPLE = (
    'event: status\nid: -1\nretry: 1000\ndata: {"id": "...", "status": "running", ...}\n\n'
    'event: metrics\nid: -1\ndata: {"series":"learning_rate","points":[{"step":0,"value":0.1}]}\n\n'
    'event: loss\nid: 1\ndata: {"points":[{"step":0,"loss":1.09},{"step":1,"loss":1.02}]}\n\n'
    'event: end\nid: 199\ndata: {"id": "...", "status": "succeeded", ...}\n\n'
)
RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/event-stream": {"example": EXAMPLE}}},
    404: {"description": "Unknown job", "content": {"application/problem+json": {}}},
    422: {"description": "A bad Last-Event-ID", "content": {"application/problem+json": {}}},
    503: {
        "description": "DESCENT_MAX_EVENT_STREAMS streams are open: retry after Retry-After",
        "content": {"application/problem+json": {}},
    },
}
STREAMS_FULL_RETRY_AFTER = 10  # seconds


class StreamCount:
    """The event streams one app serves (app.state.event_streams, made by create_app). Changed
    on the event loop only (async dependency), so a plain counter needs no lock."""

    def __init__(self) -> None:
        self.open = 0


async def stream_slot(request: Request, settings: SettingsDep) -> AsyncIterator[None]:
    """Hold one of DESCENT_MAX_EVENT_STREAMS while the stream runs, or answer 503 before it
    starts. Its exit runs once the response is over, however it ends (a client gone included)."""
    count: StreamCount = request.app.state.event_streams
    if count.open >= settings.max_event_streams:
        raise Busy(
            f"{count.open} event streams are open, the most this server serves at once "
            "(DESCENT_MAX_EVENT_STREAMS); retry later, or poll GET /jobs/{id}",
            STREAMS_FULL_RETRY_AFTER,
        )
    count.open += 1
    try:
        yield
    finally:
        count.open -= 1


async def existing_job(
    job_id: Annotated[
        str, Path(min_length=1, max_length=64, pattern=PLAIN_TEXT, description="A job id.")
    ],
    live: LiveReadsDep,
) -> str:
    """The id of a job that exists (checked before the stream starts, so 404 is a problem)."""
    await live.job(job_id)  # raises NotFound
    return job_id


@router.get(
    "/{job_id}/events",
    response_class=EventSourceResponse,
    responses=RESPONSES,
    dependencies=[Depends(stream_slot)],
    summary="Live events of a job (Server-Sent Events)",
    description=DESCRIPTION,
)
async def job_events(
    job_id: Annotated[str, Depends(existing_job)],
    live: LiveReadsDep,
    last_event_id_header: Annotated[
        int | None,
        Header(
            alias="Last-Event-ID",
            ge=-1,
            le=point_store.LAST_POSSIBLE_STEP,
            description="Resume after this step.",
        ),
    ] = None,
    last_event_id: Annotated[
        int | None,
        Query(
            ge=-1,
            le=point_store.LAST_POSSIBLE_STEP,
            description="Resume after this step (the header wins).",
        ),
    ] = None,
) -> AsyncIterator[ServerSentEvent]:
    after = last_event_id_header if last_event_id_header is not None else last_event_id
    async for event in stream.job_events(
        live.database, job_id, after=-1 if after is None else after, timing=TIMING,
        reads=live.events,
    ):  # fmt: skip
        yield event
