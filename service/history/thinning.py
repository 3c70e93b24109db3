"""Thinning a job's stored history: every series downsampled in place to a shape-preserving
selection of its points (service.history.downsample), and the rollups rebuilt from what is left."""

from __future__ import annotations

from sqlalchemy import delete, select, tuple_
from sqlalchemy.orm import Session

from service.db.models import MetricPoint
from service.history import rollup_store
from service.history.downsample import keep_indices

DELETE_BATCH = 500  # steps per DELETE, well under every database's limit on bound parameters


def thin(session: Session, job_id: str, max_points: int) -> int:
    """Keep at most `max_points` points of each of the job's series; how many were removed."""
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
        for start in range(0, len(drop), DELETE_BATCH):
            batch = drop[start : start + DELETE_BATCH]
            session.execute(
                delete(MetricPoint).where(
                    MetricPoint.job_id == job_id,
                    tuple_(MetricPoint.series, MetricPoint.step).in_([(series, s) for s in batch]),
                )
            )
        removed += len(drop)
    rollup_store.rebuild(session, job_id)
    return removed
