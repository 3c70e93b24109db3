"""Search jobs resume from their checkpoints like training jobs: bit-identical."""

from __future__ import annotations

from typing import Any

import pytest

from service.db.session import Database
from service.history import point_store
from service.jobs import repository, service
from service.settings import Settings
from tests.worker.conftest import hand_back_after_a_checkpoint, submit
from worker.runner import Worker


@pytest.fixture
def database_url(sqlite_url: str) -> str:
    return sqlite_url


@pytest.mark.parametrize(
    "optimizer",
    [
        {"type": "random_local_search", "iterations": 100_000, "step_size": 0.01},
        {"type": "random_search", "trials": 100_000, "scale": 0.1},
    ],
    ids=lambda o: o["type"],
)
def test_a_search_handed_back_mid_run_ends_as_if_never_stopped(
    settings: Settings, database: Database, optimizer: dict[str, Any]
) -> None:
    spec = {"dataset": {"name": "blobs"}, "optimizer": optimizer, "log_every": 100, "seed": 4}
    job_id = submit(database, settings, **spec)
    hand_back_after_a_checkpoint(database, settings, job_id)

    with Worker(settings) as second:
        second.run(burst=True)
    reference = submit(database, settings, **spec)
    with Worker(settings) as third:
        third.run(burst=True)

    with database.read() as session:
        resumed, straight = service.get(session, job_id), service.get(session, reference)
        assert resumed.status == straight.status == "succeeded"
        assert resumed.attempts == 2
        for series in ("loss", "best_loss"):
            a = point_store.points(session, job_id, series, after=None, limit=10_000)
            b = point_store.points(session, reference, series, after=None, limit=10_000)
            assert a == b and len(a) == 1001  # every 100th step and the last
        w_resumed = repository.array(session, job_id, "W")
        w_straight = repository.array(session, reference, "W")
        assert w_resumed is not None and w_straight is not None
        assert w_resumed.data == w_straight.data
