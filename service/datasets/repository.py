"""All SQL of the datasets resource: uploaded data sets and the jobs that use them."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from service.db.models import Dataset, Job

LIVE_STATUSES = ("queued", "running")


def ref(dataset_id: str) -> str:
    """How jobs record that they use an upload (jobs.dataset_ref)."""
    return f"upload:{dataset_id}"


def add(session: Session, dataset: Dataset) -> None:
    session.add(dataset)
    session.flush()


def get(
    session: Session, dataset_id: str, *, for_update: bool = False, for_share: bool = False
) -> Dataset | None:
    stmt = select(Dataset).where(Dataset.id == dataset_id)
    if for_update or for_share:
        # FOR SHARE when a job is submitted, FOR UPDATE when the set is deleted: a delete waits
        # for a submission in flight (and then sees its job), or the submission sees no set.
        stmt = stmt.with_for_update(read=not for_update)
    return session.scalars(stmt).one_or_none()


def all_uploads(session: Session) -> Sequence[Dataset]:
    return session.scalars(select(Dataset).order_by(Dataset.created_at.desc(), Dataset.id)).all()


def live_jobs(session: Session, dataset_id: str) -> int:
    stmt = select(func.count()).where(
        Job.dataset_ref == ref(dataset_id), Job.status.in_(LIVE_STATUSES)
    )
    return int(session.scalar(stmt) or 0)


def remove(session: Session, dataset: Dataset) -> None:
    session.delete(dataset)
    session.flush()


def stored_bytes(session: Session) -> int:
    """What the uploads take on disk together."""
    total = session.scalar(select(func.coalesce(func.sum(Dataset.size_bytes), 0)))
    return int(total or 0)
