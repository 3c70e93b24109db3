"""Leases run on the database's clock: a worker host whose own clock is minutes off neither
takes a job whose lease is live nor holds a lease that lapses at once for the others."""

from __future__ import annotations

from datetime import UTC, timedelta

import pytest

from service.db.base import utcnow
from service.db.models import Job
from service.db.session import Database
from service.jobs import queue
from service.settings import Settings
from tests.service.conftest import toy_spec

pytestmark = pytest.mark.postgres

LEASE = 30.0
OFF = timedelta(minutes=10)


def queue_a_job(client_settings: Settings) -> str:
    from fastapi.testclient import TestClient

    from service.app import create_app

    with TestClient(create_app(client_settings)) as client:
        return str(client.post("/jobs", json=toy_spec()).json()["id"])


def skewed(monkeypatch: pytest.MonkeyPatch, offset: timedelta) -> None:
    """This worker's clock (the queue's utcnow) `offset` away from the database's."""
    monkeypatch.setattr(queue, "utcnow", lambda: utcnow() + offset)


def claim(database: Database, owner: str) -> queue.ClaimedJob | None:
    with database.write() as session:
        claimed = queue.claim(session, owner, LEASE)
        session.commit()
        return claimed


@pytest.mark.parametrize("offset", [OFF, -OFF], ids=["ahead", "behind"])
def test_a_skewed_host_does_not_take_a_live_lease(
    settings: Settings, database: Database, monkeypatch: pytest.MonkeyPatch, offset: timedelta
) -> None:
    queue_a_job(settings)
    assert claim(database, "right-clock") is not None

    skewed(monkeypatch, offset)

    assert claim(database, "skewed-clock") is None
    with database.read() as session:
        assert not queue.has_claimable(session)


@pytest.mark.parametrize("offset", [OFF, -OFF], ids=["ahead", "behind"])
def test_a_lease_taken_on_a_skewed_host_lasts_its_length_for_the_others(
    settings: Settings, database: Database, monkeypatch: pytest.MonkeyPatch, offset: timedelta
) -> None:
    queue_a_job(settings)
    with monkeypatch.context() as patch:
        skewed(patch, offset)
        claimed = claim(database, "skewed-clock")
        assert claimed is not None
        with database.write() as session:
            queue.renew(session, claimed.id, "skewed-clock", LEASE)
            session.commit()

    assert claim(database, "right-clock") is None
    with database.read() as session:
        job = session.get(Job, claimed.id)
        assert job is not None and job.lease_expires_at is not None
        expires = job.lease_expires_at
    expires = expires if expires.tzinfo else expires.replace(tzinfo=UTC)
    assert abs((expires - utcnow()).total_seconds() - LEASE) < 10
