from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session

from service.db.session import Database
from service.jobs import service
from service.jobs.spec import JobSpec
from service.settings import Settings
from tests.conftest import make_settings


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return make_settings(database_url, tmp_path)


@pytest.fixture
def database(settings: Settings) -> Iterator[Database]:
    db = Database(settings.database_url)
    yield db
    db.dispose()


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
