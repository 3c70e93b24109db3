"""The rules of the jobs resource: what may be submitted, listed, cancelled, deleted and read.

Owns a job's lifecycle and its views (the job, its result, weights, evaluation and predictions);
the recorded series are read by service.history.reads.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from typing import Any, TypeVar

import numpy as np
from sqlalchemy import Row
from sqlalchemy.orm import Session

from service import idempotency
from service.db.base import utcnow
from service.db.models import TERMINAL_STATUSES, Job, JobArray
from service.errors import Busy, Conflict, InvalidInput, NotFound
from service.history.answers import Answer
from service.history.point_counts import point_counts
from service.ids import new_id
from service.jobs import repository, validation
from service.jobs.repository import Held, JobState
from service.jobs.schemas import (
    EvaluationOut,
    JobError,
    JobMetrics,
    JobOut,
    JobPage,
    PredictOut,
    Progress,
    Timings,
)
from service.jobs.spec import JobSpec
from service.settings import Settings
from worker.engine.metrics import predict_scores
from worker.engine.preprocess import Preprocessor

T = TypeVar("T")
SUBMIT_SCOPE = "POST /jobs"  # the Idempotency-Key scope of submissions
NAMED_DEPENDENTS = 5  # how many of the jobs that block a deletion its 409 names
QUEUE_FULL_RETRY_AFTER = 30  # seconds: long enough for workers to take some of the queue


def ensure_queue_room(session: Session, adding: int, settings: Settings) -> None:
    """503 (Busy) unless `adding` more queued jobs keep the queue within max_queued_jobs; checked
    after the spec's own validation, so that a bad spec is a 422 whatever the queue holds.

    One count on ix_jobs_status_id per submit, inside the create's write transaction and under
    a lock held until it ends (repository.queued_count), so concurrent submits cannot both pass
    it on either database.
    """
    queued = repository.queued_count(session)
    limit = settings.max_queued_jobs
    if queued + adding > limit:
        raise Busy(
            f"The queue is full: {queued} jobs are waiting and at most {limit} may "
            f"(DESCENT_MAX_QUEUED_JOBS); {adding} more do not fit. Retry later.",
            QUEUE_FULL_RETRY_AFTER,
        )


def submit(session: Session, spec: JobSpec, settings: Settings) -> Job:
    checked = validation.check(session, spec, settings)
    ensure_queue_room(session, 1, settings)
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


def state(session: Session, job_id: str) -> JobState:
    return _found(repository.state(session, job_id), job_id)


def job_answer(session: Session, job_id: str) -> Answer:
    """GET /jobs/{id}'s answer, read without loading the job's result or evaluation."""
    out = to_out(_found(repository.view(session, job_id), job_id))
    return Answer.of(out.__pydantic_serializer__.to_json(out))


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
    repository.cancel(session, Job.id == job_id)
    session.refresh(job)
    return job


def delete(session: Session, job_id: str) -> None:
    """Delete a finished job that no queued or running job needs (a sweep's trial goes only with
    its sweep: DELETE /sweeps/{id})."""
    held = repository.lock_for_delete(session, Job.id == job_id)
    job = _found(held[0] if held else None, job_id)
    if job.sweep_id is not None:
        raise Conflict(
            f"Job {job_id} is a trial of sweep {job.sweep_id}: delete the sweep instead "
            f"(DELETE /sweeps/{job.sweep_id}), which deletes its trials with it"
        )
    delete_finished(session, held, f"Job {job_id}")


def delete_finished(session: Session, jobs: Sequence[Held], owner: str) -> None:
    """Delete these jobs, locked by repository.lock_for_delete, if every one has finished and no
    queued or running job needs one of them (409 naming `owner` otherwise), with the
    Idempotency-Keys that created them: a replay of such a key then submits the job again rather
    than naming a gone one."""
    for job in jobs:
        if job.status not in TERMINAL_STATUSES:
            raise Conflict(f"Job {job.id} is {job.status}: cancel it before deleting it")
    job_ids = [job.id for job in jobs]
    needed_by = repository.dependents(session, job_ids, limit=NAMED_DEPENDENTS + 1)
    if needed_by:
        named = ", ".join(needed_by[:NAMED_DEPENDENTS])
        more = ", ..." if len(needed_by) > NAMED_DEPENDENTS else ""
        raise Conflict(
            f"{owner} is needed by queued or running job(s) {named}{more}: cancel them or "
            "let them finish before deleting it"
        )
    repository.remove(session, job_ids)
    idempotency.forget(session, SUBMIT_SCOPE, *job_ids)
    counts = point_counts(session)
    for job_id in job_ids:
        counts.forget(job_id)


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
    with np.errstate(over="ignore", invalid="ignore"):
        scores = predict_scores(W, preprocessor.transform(X, W.dtype))
    if not np.isfinite(scores).all():
        # Finite inputs too large for the job's dtype (or for W): no label can be told from
        # infinite or NaN scores, and JSON has no place for them.
        bad = int(np.flatnonzero(~np.isfinite(scores).all(axis=1))[0])
        msg = f"values too large for the model: its scores overflow {W.dtype}"
        raise InvalidInput("Scores overflow", [(("body", "X", bad), msg)])
    labels = np.argmax(scores, axis=1)
    return PredictOut(labels=labels.tolist(), scores=scores.tolist(), step=stored.step)


def evaluation(job: Job) -> EvaluationOut:
    if job.evaluation is None:
        raise Conflict(
            f"Job {job.id} has no evaluation: only succeeded train jobs have one ({job.status})"
        )
    return EvaluationOut(job_id=job.id, **job.evaluation)
