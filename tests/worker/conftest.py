from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from service.db.session import Database
from service.jobs import service
from service.jobs.spec import JobSpec
from service.settings import Settings


def submit(database: Database, settings: Settings, **overrides: Any) -> str:
    """Queue a small blobs job through the service layer, as POST /jobs would."""
    spec: dict[str, Any] = {
        "dataset": {"name": "blobs"},
        "optimizer": {"type": "sgd", "learning_rate": 0.05, "batch_size": 16, "iterations": 50},
    }
    spec.update(overrides)
    with database.write() as session:
        job = service.submit(session, JobSpec.model_validate(spec), settings)
        session.commit()
        return job.id


def job_status(session: Session, job_id: str) -> str:
    return service.get(session, job_id).status
