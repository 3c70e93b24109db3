"""The polling behind GET /jobs/{id}/events: read what is new, turn it into events, repeat.

The stream keeps one position P: every series has been delivered through step P. A read takes the
job first and then the points of each series with P < step <= bound, where the bound is the last
step the worker has finished (`progress_step - 1`, and never past the last stored loss step). The
worker writes a batch of points and the progress in one transaction, so everything at or below the
bound is already visible: resuming after P (`Last-Event-ID`) misses nothing. Once the job is
finished the bound goes, the rest is delivered, then the terminal `status` and the `end` event.

The reads are sync SQLAlchemy and run in a worker thread; between reads the stream sleeps
asynchronously, so no subscriber ever blocks the event loop.

The subscribers of one job share their reads (SharedReads): every stream polls on the same
ticks of the clock, the first read of a tick fixes the tick's bound for that job, and the others
read up to that same bound, so after one tick every stream that has caught up stands at the same
position and one read (and one serialization of its events) serves them all. A dashboard with
many open job pages costs one read per job per tick, not one per page.
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
from service.history import point_store
from service.history.series import SERIES
from service.jobs import repository, service
from service.jobs.schemas import JobOut, LossEvent, MetricsEvent, ProgressEvent
from service.single_flight import SingleFlight

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
    bound: int | None = None  # the running job's bound when read (None: finished or gone)


def read_batch(database: Database, job_id: str, position: int, until: int | None = None) -> Batch:
    """The job and every series' points after `position`, up to the bound (see module doc),
    and no further than `until` while the job runs."""
    with database.read() as session:
        job = repository.view(session, job_id)
        if job is None:
            return Batch(None, position=position)
        out = service.to_out(job)
        bound: int | None = None
        if job.status not in TERMINAL_STATUSES:
            bound = job.progress_step - 1
            last_loss = point_store.last_step(session, job_id, "loss")
            if last_loss is not None:
                bound = min(bound, last_loss)
            if until is not None:
                bound = min(bound, until)
            if bound <= position:
                return Batch(out, position=position, bound=bound)
        found: dict[str, Sequence[tuple[int, float]]] = {}
        cut: int | None = None
        for name in SERIES:
            rows = point_store.points(
                session, job_id, name, after=position, limit=SERIES_LIMIT, until=bound
            )
            if rows:
                found[name] = rows
            if len(rows) == SERIES_LIMIT:
                cut = rows[-1][0] if cut is None else min(cut, rows[-1][0])
    end = bound
    if cut is not None:
        end = cut
        found = {name: [r for r in rows if r[0] <= cut] for name, rows in found.items()}
        found = {name: rows for name, rows in found.items() if rows}
    if end is None:
        end = max([position, *(rows[-1][0] for rows in found.values())])
    return Batch(out, found, position=end, more=cut is not None, bound=bound)


def point_events(batch: Batch, previous: int) -> list[ServerSentEvent]:
    """`metrics` events (one per series), then `loss`; only the last carries the new position,
    so a client cut off in the middle resumes before the batch instead of after it."""
    payloads: list[tuple[str, str]] = []
    for name, rows in batch.series.items():
        if name == "loss":
            continue
        points = [{"step": step, "value": value} for step, value in rows]
        data = MetricsEvent.model_validate({"series": name, "points": points}).model_dump_json()
        payloads.append(("metrics", data))
    if "loss" in batch.series:
        points = [{"step": step, "loss": value} for step, value in batch.series["loss"]]
        payloads.append(("loss", LossEvent.model_validate({"points": points}).model_dump_json()))
    last = len(payloads) - 1
    return [
        ServerSentEvent(
            event=kind, raw_data=data, id=str(batch.position if i == last else previous)
        )
        for i, (kind, data) in enumerate(payloads)
    ]


Read = tuple[Batch, list[ServerSentEvent]]  # a batch and its point events


@dataclass
class _Tick:
    """One job's reads during one tick of the clock, by the position they started from."""

    number: int
    bound: int | None = None  # the first read's bound: every later read of the tick stops there
    reads: dict[int, Read] = field(default_factory=dict)
    pending: SingleFlight[int] = field(default_factory=SingleFlight)


class SharedReads:
    """The streams' reads of the current tick, per job, shared by the streams at one position."""

    def __init__(self) -> None:
        self._ticks: dict[str, _Tick] = {}

    async def read(self, database: Database, job_id: str, position: int, tick: int) -> Read:
        """The batch after `position` (and its events) as read during `tick`."""
        current = self._ticks.get(job_id)
        if current is None or current.number != tick:
            current = self._ticks[job_id] = _Tick(tick)
            for stale in [key for key, old in self._ticks.items() if old.number < tick - 1]:
                del self._ticks[stale]
        await current.pending.wait(position)  # another stream may be reading this very batch
        found = current.reads.get(position)
        if found is not None:
            return found
        with current.pending.lead(position):
            found = await anyio.to_thread.run_sync(
                _read_events, database, job_id, position, current.bound
            )
        if current.bound is None:
            current.bound = found[0].bound
        current.reads[position] = found
        return found


def _read_events(database: Database, job_id: str, position: int, until: int | None) -> Read:
    """A batch and its point events, serialized off the event loop (up to 5,000 points a
    series take milliseconds)."""
    batch = read_batch(database, job_id, position, until)
    return batch, point_events(batch, position)


def job_event(kind: str, job: JobOut, position: int, **extra: Any) -> ServerSentEvent:
    return ServerSentEvent(event=kind, raw_data=job.model_dump_json(), id=str(position), **extra)


def progress_event(job: JobOut, position: int) -> ServerSentEvent:
    data = ProgressEvent(status=job.status, progress=job.progress, metrics=job.metrics)
    return ServerSentEvent(event="progress", raw_data=data.model_dump_json(), id=str(position))


async def job_events(
    database: Database,
    job_id: str,
    *,
    after: int,
    timing: Timing | None = None,
    reads: SharedReads | None = None,
) -> AsyncIterator[ServerSentEvent]:
    """Events of one job from step `after` on, until its `end` event (or the client leaves);
    `reads`: the reads it shares with the other streams (see module doc)."""
    timing = timing or Timing()
    reads = reads or SharedReads()
    position = after
    status: tuple[str, int] | None = None
    progress: tuple[int, str | None, str] | None = None
    progress_at = last_sent = time.monotonic()
    while True:
        tick = int(time.monotonic() // timing.poll_seconds)
        batch, events = await reads.read(database, job_id, position, tick)
        job = batch.job
        if job is None:  # deleted under us: nothing more will come
            return
        now = time.monotonic()
        finished = job.status in TERMINAL_STATUSES
        key = (job.status, job.attempts)
        current = (job.progress.step, job.progress.phase, job.metrics.model_dump_json())
        if status is None:
            yield job_event("status", job, position, retry=RETRY_MS)
            status, progress = key, current  # a status event carries the whole job
        elif key != status and not finished:
            yield job_event("status", job, position)
            status, progress = key, current
        position = batch.position
        for event in events:
            yield event
        if finished and not batch.more:
            if key != status:
                yield job_event("status", job, position)
            yield job_event("end", job, position)
            return
        sent = bool(events)
        if current != progress and now - progress_at >= timing.progress_seconds:
            yield progress_event(job, position)
            progress, progress_at, sent = current, now, True
        if sent:
            last_sent = now
        elif now - last_sent >= timing.ping_seconds:
            yield ServerSentEvent(comment="ping")
            last_sent = now
        if not batch.more:  # to the next tick, when every stream of the job reads
            await anyio.sleep(timing.poll_seconds - time.monotonic() % timing.poll_seconds)
