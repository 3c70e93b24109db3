"""DESCENT_RETENTION_DAYS: finished jobs older than that keep their weights and a downsampled
curve (RETAINED_POINTS per series, shape-preserving) instead of every raw point."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import delete, select, tuple_, update
from sqlalchemy.orm import Session

from service.db.base import utcnow
from service.db.models import TERMINAL_STATUSES, Job, MetricPoint
from service.history import rollup_store
from service.history.downsample import keep_indices

RETAINED_POINTS = 1000


def prune_job_history(session: Session, job_id: str, max_points: int = RETAINED_POINTS) -> int:
    """Downsample every series of one job in place; returns how many points were removed."""
    removed = 0
    series_names = session.scalars(
        select(MetricPoint.series).where(MetricPoint.job_id == job_id).distinct()
    ).all()
    for series in series_names:
        rows = session.execute(
            select(MetricPoint.step, MetricPoint.value)
            .where(MetricPoint.job_id == job_id, MetricPoint.series == series)
            .order_by(MetricPoint.step)
        ).all()
        keep = set(keep_indices([value for _, value in rows], max_points))
        drop = [step for i, (step, _) in enumerate(rows) if i not in keep]
        for start in range(0, len(drop), 500):
            batch = drop[start : start + 500]
            session.execute(
                delete(MetricPoint).where(
                    MetricPoint.job_id == job_id,
                    tuple_(MetricPoint.series, MetricPoint.step).in_([(series, s) for s in batch]),
                )
            )
        removed += len(drop)
    rollup_store.rebuild(session, job_id)
    session.execute(update(Job).where(Job.id == job_id).values(history_pruned=True))
    return removed


def prune_expired(session: Session, retention_days: float, *, limit: int = 50) -> int:
    """Prune up to `limit` finished jobs older than the retention period; returns how many."""
    cutoff = utcnow() - timedelta(days=retention_days)
    job_ids = session.scalars(
        select(Job.id)
        .where(
            Job.status.in_(TERMINAL_STATUSES),
            Job.finished_at < cutoff,
            Job.history_pruned.is_(False),
        )
        .limit(limit)
    ).all()
    for job_id in job_ids:
        prune_job_history(session, job_id)
    return len(job_ids)
