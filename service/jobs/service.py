"""The rules of the jobs resource: what may be submitted, cancelled, deleted and read."""

from __future__ import annotations

import base64
import binascii
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, TypeVar
from weakref import WeakKeyDictionary

import numpy as np
from sqlalchemy import Row
from sqlalchemy.orm import Session
from sqlalchemy.pool import Pool

from service.db.base import utcnow
from service.db.models import TERMINAL_STATUSES, Job, JobArray
from service.errors import Conflict, InvalidInput, NotFound
from service.ids import new_id
from service.jobs import downsample, repository, rollup, rollup_store, validation
from service.jobs.repository import JobState
from service.jobs.schemas import (
    EvaluationOut,
    JobError,
    JobMetrics,
    JobOut,
    JobPage,
    PredictOut,
    Progress,
    Timings,
    points_json,
)
from service.jobs.spec import JobSpec
from service.settings import Settings
from worker.engine.metrics import predict_scores
from worker.engine.preprocess import Preprocessor

T = TypeVar("T")


def submit(session: Session, spec: JobSpec, settings: Settings) -> Job:
    checked = validation.check(session, spec, settings)
    job = Job(
        id=new_id(),
        name=spec.name,
        task=spec.task,
        status="queued",
        spec=checked.stored_spec,
        dataset_ref=checked.dataset_ref,
        progress_step=0,
        progress_total=checked.total_steps,
        metrics={},
        timings={},
        attempts=0,
        cancel_requested=False,
        created_at=utcnow(),
    )
    repository.add(session, job)
    return job


def _found(job: T | None, job_id: str) -> T:
    if job is None:
        raise NotFound(f"No job with id {job_id!r}")
    return job


def get(session: Session, job_id: str) -> Job:
    return _found(repository.get(session, job_id), job_id)


def to_out(job: Job | Row[Any]) -> JobOut:
    """The Job of the API, from the ORM object or from a row of repository.view's columns."""
    total = job.progress_total
    return JobOut(
        id=job.id,
        status=job.status,
        task=job.task,
        name=job.name,
        spec=job.spec,
        progress=Progress(
            step=job.progress_step,
            total=total,
            fraction=(job.progress_step / total) if total else None,
            phase=job.progress_phase,
        ),
        metrics=JobMetrics(**job.metrics),
        error=JobError(**job.error) if job.error else None,
        attempts=job.attempts,
        timings=Timings(**job.timings),
        created_at=job.created_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
    )


def encode_cursor(job_id: str) -> str:
    return base64.urlsafe_b64encode(job_id.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> str:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raw = ""
    if not raw or len(raw) > 32 or not raw.isalnum():
        raise InvalidInput(
            "Invalid cursor", [(("query", "cursor"), "not a cursor this API issued")]
        )
    return raw


def list_page(
    session: Session, *, status: str | None, task: str | None, cursor: str | None, limit: int
) -> JobPage:
    before = decode_cursor(cursor) if cursor else None
    jobs = repository.page(session, status=status, task=task, before_id=before, limit=limit + 1)
    has_more = len(jobs) > limit
    items = [to_out(job) for job in jobs[:limit]]
    return JobPage(items=items, next_cursor=encode_cursor(items[-1].id) if has_more else None)


class PointCounts:
    """The `total` of a series without counting all its points on every poll.

    Per (job, series) it keeps a (step, count) pair: `count` points have a step <= `step`. A read
    counts only the points after that step (an index range scan of what is new) and moves the pair
    forward. This is exact because, while the pair's key holds, the points at or below its step
    never change: in a job's first attempt a worker only appends, in step order (a flush's steps
    all follow the last flush's), and a finished job's history is frozen. What does delete points
    changes the key: a retried attempt resets or truncates its history (attempts > 1, where
    nothing is cached until the job is finished), retention downsamples it (history_pruned), and
    DELETE /jobs removes the job for good (ids are never reused; delete() drops its pairs).
    """

    def __init__(self, capacity: int = 4096) -> None:
        self.capacity = capacity
        self._pairs: OrderedDict[tuple[str, str, int, bool], tuple[int, int]] = OrderedDict()
        self._lock = threading.Lock()

    def total(self, session: Session, job_id: str, series: str, state: JobState) -> int:
        key = (job_id, series, state.attempts, state.history_pruned)
        if state.attempts > 1 and state.status not in TERMINAL_STATUSES:
            return repository.count_points(session, job_id, series)
        with self._lock:
            step, count = self._pairs.get(key, (repository.NO_STEP, 0))
        new, last = repository.count_after(session, job_id, series, step)
        if last is not None:
            step, count = last, count + new
        with self._lock:
            self._pairs[key] = (step, count)
            self._pairs.move_to_end(key)
            while len(self._pairs) > self.capacity:
                self._pairs.popitem(last=False)
        return count

    def forget(self, job_id: str) -> None:
        with self._lock:
            for key in [key for key in self._pairs if key[0] == job_id]:
                del self._pairs[key]


_counts: WeakKeyDictionary[Pool, PointCounts] = WeakKeyDictionary()


def point_counts(session: Session) -> PointCounts:
    """The counts of the database behind `session`, found by its connection pool: the read and
    write engines of one database share it, and apps side by side in one process do not."""
    pool = session.get_bind().engine.pool
    counts = _counts.get(pool)
    if counts is None:
        counts = _counts.setdefault(pool, PointCounts())
    return counts


def state(session: Session, job_id: str) -> JobState:
    return _found(repository.state(session, job_id), job_id)


def job_json(session: Session, job_id: str) -> str:
    """GET /jobs/{id}'s body, read without loading the job's result or evaluation."""
    return to_out(_found(repository.view(session, job_id), job_id)).model_dump_json()


def series_page(
    session: Session, job_id: str, job: JobState, series: str, *, after: int | None, limit: int
) -> tuple[list[tuple[int, float]], int | None, int]:
    """A page of one series: its points, the cursor for the next page, the points stored so far."""
    points = list(repository.points(session, job_id, series, after=after, limit=limit))
    total = point_counts(session).total(session, job_id, series, job)
    next_after = next_cursor(
        after, limit, points[-1][0] if points else None, len(points), job,
        lambda: repository.last_step(session, job_id, series),
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
    ends = repository.ends(session, job_id, series, after=after, until=end)
    if ends is None:
        return []
    first, last = ends
    lo, hi = first[0], last[0]
    buckets = (max_points - 2) // 2
    if buckets == 0:
        return sorted({lo: first[1], hi: last[1]}.items())
    level = rollup.level_for(lo, hi, buckets)
    if level == 0:
        rows = repository.points(session, job_id, series, after=lo - 1, limit=None, until=hi)
        return [rows[i] for i in downsample.keep_indices([value for _, value in rows], max_points)]
    found = rollup_store.read(session, job_id, series, rollup.cover(lo, hi, level))
    inner = dict(rollup.bucket_extremes(found, lo, hi, buckets))
    return sorted({**inner, lo: first[1], hi: last[1]}.items())


def page_json(
    points: list[tuple[int, float]], next_after: int | None, total: int, *, key: str
) -> str:
    """A LossPage (key "loss") or SeriesPage (key "value") as JSON, built without models."""
    return page_body(points_json(points, key), next_after, total)


def page_body(points: str, next_after: int | None, total: int) -> str:
    """A page's JSON around its points' JSON array."""
    after = "null" if next_after is None else str(next_after)
    return f'{{"points":{points},"next_after":{after},"total":{total}}}'


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
        return None if finished else (after if after is not None else repository.NO_STEP)
    exhausted = finished and (page_size < limit or stored_last() == page_last)
    return None if exhausted else page_last


def result(job: Job) -> dict[str, Any]:
    if job.task == "train":
        raise Conflict(f"Job {job.id} is a train job: its outcome is its weights and metrics")
    if job.status != "succeeded" or job.result is None:
        raise Conflict(f"Job {job.id} has no result ({job.status})")
    return job.result


def weights(session: Session, job: Job) -> JobArray:
    array = repository.array(session, job.id, "W")
    if array is None:
        raise Conflict(f"Job {job.id} has no weights yet (status {job.status})")
    return array


def as_ndarray(array: JobArray) -> np.ndarray:
    return np.frombuffer(array.data, dtype=np.dtype(array.dtype)).reshape(array.shape)


def cancel(session: Session, job_id: str) -> Job:
    job = _found(repository.get(session, job_id, for_update=True), job_id)
    if job.status in TERMINAL_STATUSES:
        raise Conflict(f"Job {job_id} has already finished ({job.status})")
    if job.status == "queued":
        job.status = "cancelled"
        job.finished_at = utcnow()
        job.lease_owner = None
        job.lease_expires_at = None
    job.cancel_requested = True
    session.flush()
    return job


def delete(session: Session, job_id: str) -> None:
    job = _found(repository.get(session, job_id, for_update=True), job_id)
    if job.status not in TERMINAL_STATUSES:
        raise Conflict(f"Job {job_id} is {job.status}: cancel it before deleting it")
    repository.remove(session, job_id)
    point_counts(session).forget(job_id)


def predict(session: Session, job: Job, rows: list[list[float]], settings: Settings) -> PredictOut:
    """Score raw rows with the job's W after the job's own preprocessing (mean, std, bias)."""
    if len(rows) > settings.max_predict_rows:
        raise InvalidInput(
            "Too many rows", [(("body", "X"), f"at most {settings.max_predict_rows} rows per call")]
        )
    stored = weights(session, job)
    W = as_ndarray(stored)
    bias = bool(job.spec.get("preprocess", {}).get("bias", False))
    n_features = W.shape[1] - int(bias)
    widths = {len(row) for row in rows}
    if widths != {n_features}:
        bad = next(i for i, row in enumerate(rows) if len(row) != n_features)
        msg = f"each row needs the job's {n_features} features; row {bad} has {len(rows[bad])}"
        raise InvalidInput("Wrong row width", [(("body", "X", bad), msg)])
    X = np.asarray(rows, dtype=np.float64)
    if not np.isfinite(X).all():
        bad = int(np.flatnonzero(~np.isfinite(X).all(axis=1))[0])
        raise InvalidInput("Non-finite input", [(("body", "X", bad), "holds NaN or infinity")])
    stats = {name: repository.array(session, job.id, name) for name in ("mean", "std")}
    mean, std = (None if a is None else as_ndarray(a) for a in (stats["mean"], stats["std"]))
    preprocessor = Preprocessor(mean, std, bias=bias, n_features=n_features)
    scores = predict_scores(W, preprocessor.transform(X, W.dtype))
    labels = np.argmax(scores, axis=1)
    return PredictOut(labels=labels.tolist(), scores=scores.tolist(), step=stored.step)


def evaluation(job: Job) -> EvaluationOut:
    if job.evaluation is None:
        raise Conflict(
            f"Job {job.id} has no evaluation: only succeeded train jobs have one ({job.status})"
        )
    return EvaluationOut(job_id=job.id, **job.evaluation)
