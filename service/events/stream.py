"""The polling behind GET /jobs/{id}/events: read what is new, turn it into events, repeat.

The stream keeps one position P: every series has been delivered through step P. A read takes the
job first and then the points of each series with P < step <= bound, where the bound is the last
step the worker has finished (`progress_step - 1`, and never past the last stored loss step). The
worker writes a batch of points and the progress in one transaction, so everything at or below the
bound is already visible: resuming after P (`Last-Event-ID`) misses nothing. Once the job is
finished the bound goes, the rest is delivered, then the terminal `status` and the `end` event.

The reads are sync SQLAlchemy and run in a worker thread; between reads the stream sleeps
asynchronously, so no subscriber ever blocks the event loop.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import anyio
from fastapi.sse import ServerSentEvent

from service.db.models import TERMINAL_STATUSES
from service.db.session import Database
from service.jobs import repository, service
from service.jobs.schemas import JobOut, dumps, points_json

SERIES_LIMIT = 5000  # points per series per read; a longer backlog is read again at once
RETRY_MS = 1000  # how soon a browser's EventSource reconnects


@dataclass(frozen=True)
class Timing:
    poll_seconds: float = 0.25
    ping_seconds: float = 10.0
    progress_seconds: float = 0.5


@dataclass
class Batch:
    job: JobOut | None
    series: dict[str, Sequence[tuple[int, float]]] = field(default_factory=dict)
    position: int = -1
    more: bool = False  # a series was cut at SERIES_LIMIT


def read_batch(database: Database, job_id: str, position: int) -> Batch:
    """The job and every series' points after `position`, up to the bound (see module doc)."""
    with database.read() as session:
        job = repository.view(session, job_id)
        if job is None:
            return Batch(None, position=position)
        out = service.to_out(job)
        bound: int | None = None
        if job.status not in TERMINAL_STATUSES:
            bound = job.progress_step - 1
            last_loss = repository.last_step(session, job_id, "loss")
            if last_loss is not None:
                bound = min(bound, last_loss)
            if bound <= position:
                return Batch(out, position=position)
        found: dict[str, Sequence[tuple[int, float]]] = {}
        cut: int | None = None
        for name in service.SERIES:
            rows = repository.points(
                session, job_id, name, after=position, limit=SERIES_LIMIT, until=bound
            )
            if rows:
                found[name] = rows
            if len(rows) == SERIES_LIMIT:
                cut = rows[-1][0] if cut is None else min(cut, rows[-1][0])
    if cut is not None:
        bound = cut
        found = {name: [r for r in rows if r[0] <= cut] for name, rows in found.items()}
        found = {name: rows for name, rows in found.items() if rows}
    if bound is None:
        bound = max([position, *(rows[-1][0] for rows in found.values())])
    return Batch(out, found, bound, more=cut is not None)


def point_events(batch: Batch, previous: int) -> list[ServerSentEvent]:
    """`metrics` events (one per series), then `loss`; only the last carries the new position,
    so a client cut off in the middle resumes before the batch instead of after it."""
    payloads: list[tuple[str, str]] = []
    for name, rows in batch.series.items():
        if name == "loss":
            continue
        data = f'{{"series":{dumps(name)},"points":{points_json(rows, "value")}}}'
        payloads.append(("metrics", data))
    if "loss" in batch.series:
        payloads.append(("loss", f'{{"points":{points_json(batch.series["loss"], "loss")}}}'))
    last = len(payloads) - 1
    return [
        ServerSentEvent(
            event=kind, raw_data=data, id=str(batch.position if i == last else previous)
        )
        for i, (kind, data) in enumerate(payloads)
    ]


def job_event(kind: str, job: JobOut, position: int, **extra: Any) -> ServerSentEvent:
    return ServerSentEvent(event=kind, raw_data=job.model_dump_json(), id=str(position), **extra)


def progress_event(job: JobOut, position: int) -> ServerSentEvent:
    payload = {
        "status": job.status,
        "progress": job.progress.model_dump(mode="json"),
        "metrics": job.metrics.model_dump(mode="json"),
    }
    return ServerSentEvent(event="progress", raw_data=dumps(payload), id=str(position))


async def job_events(
    database: Database, job_id: str, *, after: int, timing: Timing | None = None
) -> AsyncIterator[ServerSentEvent]:
    """Events of one job from step `after` on, until its `end` event (or the client leaves)."""
    timing = timing or Timing()
    position = after
    status: tuple[str, int] | None = None
    progress: tuple[int, str] | None = None
    progress_at = last_sent = time.monotonic()
    while True:
        batch = await anyio.to_thread.run_sync(read_batch, database, job_id, position)
        job = batch.job
        if job is None:  # deleted under us: nothing more will come
            return
        now = time.monotonic()
        finished = job.status in TERMINAL_STATUSES
        key = (job.status, job.attempts)
        if status is None:
            yield job_event("status", job, position, retry=RETRY_MS)
            status = key
        elif key != status and not finished:
            yield job_event("status", job, position)
            status = key
        events = point_events(batch, position)
        position = batch.position
        for event in events:
            yield event
        if finished and not batch.more:
            if key != status:
                yield job_event("status", job, position)
            yield job_event("end", job, position)
            return
        sent = bool(events)
        current = (job.progress.step, job.metrics.model_dump_json())
        if current != progress and now - progress_at >= timing.progress_seconds:
            yield progress_event(job, position)
            progress, progress_at, sent = current, now, True
        if sent:
            last_sent = now
        elif now - last_sent >= timing.ping_seconds:
            yield ServerSentEvent(comment="ping")
            last_sent = now
        if not batch.more:
            await anyio.sleep(timing.poll_seconds)
