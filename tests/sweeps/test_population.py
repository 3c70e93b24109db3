"""A sweep's trials that differ only in learning rate and reg train as one population: each stays a
job of its own (history, metrics, weights, cancel, resume, divergence) with the results it gets
alone, up to the rounding of the wider products."""

from __future__ import annotations

import io
import os
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from service.db.base import utcnow
from service.db.models import Job
from service.db.session import Database
from service.jobs import queue
from service.settings import Settings
from tests.conftest import make_settings
from tests.sweeps.conftest import sweep_request
from tests.worker.conftest import hand_back_after_a_checkpoint
from worker.runner import Worker

pytestmark = pytest.mark.postgres

# A population's products are wider than a run's alone, so their sums round differently: over a
# few hundred steps W stays within float32 rounding of the run alone.
W_RTOL = 1e-4


def _post(client: TestClient, **overrides: Any) -> list[str]:
    response = client.post("/sweeps", json=sweep_request(**overrides))
    assert response.status_code == 202, response.json()
    return [job["id"] for job in response.json()["jobs"]]


def _weights(client: TestClient, job_id: str) -> np.ndarray:
    W: np.ndarray = np.load(io.BytesIO(client.get(f"/jobs/{job_id}/weights?format=npy").content))
    return W


def _losses(client: TestClient, job_id: str) -> tuple[list[int], np.ndarray]:
    points = client.get(f"/jobs/{job_id}/loss", params={"limit": 10_000}).json()["points"]
    return [p["step"] for p in points], np.array([p["loss"] for p in points])


def _run_claim(settings: Settings, expected: int) -> None:
    """Claim once (the population) and run it."""
    worker = Worker(settings)
    try:
        claimed = worker.claim()
        assert len(claimed) == expected
        worker.execute(claimed)
    finally:
        worker.close()


def _long_base() -> dict[str, Any]:
    optimizer = {"type": "sgd", "batch_size": 32, "iterations": 3000}
    return {**sweep_request()["base"], "optimizer": optimizer}


def _alone(settings: Settings, tmp_path: Path) -> Settings:
    return make_settings(settings.database_url, tmp_path / "alone", population_size=1)


def test_a_grid_trains_as_one_population_and_each_trial_matches_its_run_alone(
    client: TestClient, settings: Settings, tmp_path: Path
) -> None:
    alone = _post(client)
    together = _post(client)
    with Worker(_alone(settings, tmp_path)) as worker:
        assert worker.run(burst=True, max_jobs=4) == 4
    _run_claim(settings, expected=4)

    for solo, member in zip(alone, together, strict=True):
        a, b = client.get(f"/jobs/{solo}").json(), client.get(f"/jobs/{member}").json()
        assert a["status"] == b["status"] == "succeeded"
        assert a["progress"]["step"] == b["progress"]["step"] == 200
        np.testing.assert_allclose(_weights(client, member), _weights(client, solo), rtol=W_RTOL,
                                   atol=W_RTOL * np.abs(_weights(client, solo)).max())  # fmt: skip
        steps_a, loss_a = _losses(client, solo)
        steps_b, loss_b = _losses(client, member)
        assert steps_a == steps_b == list(range(200))
        np.testing.assert_allclose(loss_b, loss_a, rtol=1e-4)
        for split in ("train", "val", "test"):
            # Labels can only differ on a near-tie of two classes' scores.
            assert (
                abs(b["metrics"][f"{split}_accuracy"] - a["metrics"][f"{split}_accuracy"]) <= 0.01
            )
        val = client.get(f"/jobs/{member}/metrics/val_accuracy").json()["points"]
        assert [p["step"] for p in val] == [0, 50, 100, 150, 199]
        assert val[-1]["value"] == b["metrics"]["val_accuracy"]
        evaluation = client.get(f"/jobs/{member}/evaluation").json()
        assert evaluation["splits"]["val"]["accuracy"] == b["metrics"]["val_accuracy"]


def test_only_trials_that_can_share_their_steps_are_claimed_together(
    client: TestClient, settings: Settings, database: Database
) -> None:
    # Batch sizes differ: the minibatches differ, so each trial trains alone.
    _post(client, space={"optimizer.batch_size": {"values": [16, 32]}})
    grid = _post(client)
    with database.transaction() as session:  # a trial of the grid resumes from a checkpoint
        queue.put_checkpoint(session, grid[3], 1, 100, b"")
    other = _post(client)

    worker = Worker(settings)
    try:
        assert len(worker.claim()) == 1
        assert len(worker.claim()) == 1
        claimed = worker.claim()
        assert [job.id for job in claimed] == grid[:3]  # not the one at another step
        assert {job.sweep_id for job in claimed} == {claimed[0].sweep_id}
        assert [job.id for job in worker.claim()] == [grid[3]]
        assert [job.id for job in worker.claim()] == other
    finally:
        worker.close()


def test_a_cancelled_trial_stops_while_the_others_finish(
    client: TestClient, settings: Settings, database: Database, tmp_path: Path
) -> None:
    settings = make_settings(settings.database_url, tmp_path / "s", flush_seconds=0.01)
    ids = _post(client, base=_long_base())
    worker = Worker(settings)
    try:
        claimed = worker.claim()
        assert len(claimed) == 4
        with database.transaction() as session:  # as POST /jobs/{id}/cancel does
            session.execute(update(Job).where(Job.id == ids[1]).values(cancel_requested=True))
        worker.execute(claimed)
    finally:
        worker.close()

    cancelled = client.get(f"/jobs/{ids[1]}").json()
    assert cancelled["status"] == "cancelled"
    assert 0 < cancelled["progress"]["step"] < 3000
    steps, _ = _losses(client, ids[1])
    assert steps == list(range(len(steps))) and len(steps) <= cancelled["progress"]["step"]
    for job_id in (ids[0], ids[2], ids[3]):
        job = client.get(f"/jobs/{job_id}").json()
        assert (job["status"], job["progress"]["step"]) == ("succeeded", 3000)


@pytest.mark.parametrize("worker_lost", [False, True])
def test_a_population_handed_back_resumes_as_one_with_the_same_results(
    client: TestClient, settings: Settings, database: Database, tmp_path: Path, worker_lost: bool
) -> None:
    base = _long_base()
    straight = _post(client, base=base)
    _run_claim(settings, expected=4)
    resumed = _post(client, base=base)

    settings = make_settings(settings.database_url, tmp_path / "s", flush_seconds=0.01,
                             checkpoint_seconds=0.05)  # fmt: skip
    hand_back_after_a_checkpoint(database, settings, *resumed)
    if worker_lost:  # as a killed worker leaves its trials: running, on leases that lapsed
        with database.transaction() as session:
            session.execute(
                update(Job).where(Job.id.in_(resumed)).values(
                    status="running", lease_owner="lost", lease_expires_at=utcnow() - timedelta(1)
                )
            )
    with database.read() as session:
        checkpoints = {queue.get_checkpoint(session, job_id).step for job_id in resumed}  # type: ignore[union-attr]
    assert len(checkpoints) == 1 and 0 < checkpoints.pop() < 3000  # all at one step

    _run_claim(settings, expected=4)
    for a, b in zip(straight, resumed, strict=True):
        assert client.get(f"/jobs/{b}").json()["status"] == "succeeded"
        # The same steps from the same checkpointed state: bit for bit.
        assert np.array_equal(_weights(client, a), _weights(client, b))
        assert _losses(client, a)[0] == _losses(client, b)[0] == list(range(3000))
        assert np.array_equal(_losses(client, a)[1], _losses(client, b)[1])


def test_a_diverging_trial_fails_as_it_would_alone_and_the_others_succeed(
    client: TestClient, settings: Settings, tmp_path: Path
) -> None:
    request = {
        "base": {**sweep_request()["base"], "model": {"loss": "softmax"},
                 "optimizer": {"type": "sgd", "batch_size": 32, "iterations": 500}},
        "space": {"optimizer.learning_rate": {"values": [0.03, 1e3]},
                  "model.reg": {"values": [1e-3, 1e6]}},
    }  # fmt: skip
    alone = _post(client, **request)
    together = _post(client, **request)
    with Worker(_alone(settings, tmp_path)) as worker:
        worker.run(burst=True, max_jobs=4)
    _run_claim(settings, expected=4)

    outcomes = []
    for solo, member in zip(alone, together, strict=True):
        a, b = client.get(f"/jobs/{solo}").json(), client.get(f"/jobs/{member}").json()
        assert a["status"] == b["status"]
        assert (a["error"] or {}).get("step") == (b["error"] or {}).get("step")
        assert _losses(client, solo)[0] == _losses(client, member)[0]
        outcomes.append(b["status"])
    assert "failed" in outcomes and "succeeded" in outcomes


def test_workers_with_half_the_cores_each_take_half_of_a_population(
    client: TestClient, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    ids = _post(client)
    half = make_settings(settings.database_url, tmp_path / "half", blas_threads=1)
    first, second = Worker(half), Worker(half)
    try:
        assert [job.id for job in first.claim()] == ids[:2]
        assert [job.id for job in second.claim()] == ids[2:]  # the rest: the first's are running
    finally:
        first.close()
        second.close()
