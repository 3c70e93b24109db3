"""Retention: old finished jobs keep their weights and a downsampled curve."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import update

from service.db.base import utcnow
from service.db.models import Job
from service.db.session import Database
from service.maintenance import RETAINED_POINTS, prune_expired
from service.settings import Settings
from tests.service.conftest import toy_spec


def test_old_finished_jobs_are_downsampled_and_keep_their_weights(
    client: TestClient, drain: Callable[[], int], settings: Settings
) -> None:
    body = toy_spec(optimizer={"type": "sgd", "batch_size": 8, "iterations": 5000})
    old = client.post("/jobs", json=body).json()["id"]
    recent = client.post("/jobs", json=body).json()["id"]
    drain()
    database = Database(settings.database_url)
    with database.transaction() as session:
        session.execute(
            update(Job).where(Job.id == old).values(finished_at=utcnow() - timedelta(days=40))
        )
    weights_before = client.get(f"/jobs/{old}/weights").json()

    with database.transaction() as session:
        assert prune_expired(session, retention_days=30) == 1
    with database.transaction() as session:
        assert prune_expired(session, retention_days=30) == 0  # already pruned
    database.dispose()

    old_loss = client.get(f"/jobs/{old}/loss", params={"limit": 10_000}).json()
    assert old_loss["total"] <= RETAINED_POINTS
    steps = [p["step"] for p in old_loss["points"]]
    assert steps[0] == 0 and steps[-1] == 4999
    assert client.get(f"/jobs/{recent}/loss", params={"limit": 10_000}).json()["total"] == 5000
    assert client.get(f"/jobs/{old}/weights").json() == weights_before
