"""Housekeeping, as plain functions on a session (no web import): run by idle workers now and
then (worker.runner.Worker.maintain) and by `descent prune`.

DESCENT_RETENTION_DAYS: finished jobs older than that keep their weights and a downsampled curve
(RETAINED_POINTS per series, shape-preserving) instead of every raw point. Expired idempotency
keys are pruned by service.idempotency.prune."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.orm import Session

from service.db.base import utcnow
from service.history import thinning
from service.jobs import repository

RETAINED_POINTS = 1000


def prune_job_history(session: Session, job_id: str, max_points: int = RETAINED_POINTS) -> int:
    """Downsample every series of one job in place; returns how many points were removed."""
    removed = thinning.thin(session, job_id, max_points)
    repository.mark_history_pruned(session, job_id)
    return removed


def prune_expired(session: Session, retention_days: float, *, limit: int = 50) -> int:
    """Prune up to `limit` finished jobs older than the retention period; returns how many."""
    cutoff = utcnow() - timedelta(days=retention_days)
    job_ids = repository.finished_unpruned(session, before=cutoff, limit=limit)
    for job_id in job_ids:
        prune_job_history(session, job_id)
    return len(job_ids)
