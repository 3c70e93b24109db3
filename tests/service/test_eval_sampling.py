"""eval_sample through the API: accuracy during training on fixed rows, the end on every row."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from service.db.models import Job
from service.db.session import Database
from service.jobs.spec import JobSpec
from service.settings import Settings
from worker.engine.train import TrainData, init_state, run
from worker.prepare import DataPreparer
from worker.training import train_config

pytestmark = pytest.mark.postgres
Drain = Callable[[], int]
# digits: 1,297 training and 250 validation rows, both above the sample below.
SPEC: dict[str, Any] = {
    "dataset": {"name": "digits"},
    "model": {"loss": "softmax", "reg": 0.01},
    "optimizer": {"type": "sgd", "learning_rate": 1e-4, "batch_size": 16, "iterations": 101},
    "eval_every": 20,
    "seed": 3,
}
EVAL_STEPS = [0, 20, 40, 60, 80, 100]


def finished(client: TestClient, drain: Drain, **overrides: Any) -> dict[str, Any]:
    response = client.post("/jobs", json={**SPEC, **overrides})
    assert response.status_code == 202, response.json()
    drain()
    job: dict[str, Any] = client.get(f"/jobs/{response.json()['id']}").json()
    assert job["status"] == "succeeded", job["error"]
    return job


def series(client: TestClient, job_id: str, name: str) -> list[tuple[int, float]]:
    body = client.get(f"/jobs/{job_id}/metrics/{name}", params={"limit": 10_000}).json()
    return [(point["step"], point["value"]) for point in body["points"]]


def replay(
    settings: Settings, stored: dict[str, Any]
) -> tuple[TrainData, dict[int, Any], list[float]]:
    """The job's run in this process, chunked at its evaluations: W after every s updates."""
    spec = JobSpec.model_validate(stored)
    data, _ = DataPreparer(2**30, settings.cifar10_dir, settings.data_dir).prepare(spec)
    config = train_config(spec)
    state = init_state(config, data.n_classes, data.X_train.shape[1])
    train_data = TrainData(data.X_train, data.y_train, data.X_val, data.y_val)
    weights = {0: state.W.copy()}
    losses: list[float] = []
    for chunk in run(state, config, train_data, chunk_steps=config.eval_every):
        weights[state.step] = state.W.copy()
        losses += chunk.losses.tolist()
    return train_data, weights, losses


def accuracy_on(W: Any, X: Any, y: Any, rows: Any = None) -> float:
    if rows is not None:
        X, y = X[rows], y[rows]
    return float(np.mean(np.argmax(X @ W.T, axis=1) == y))


def documented_rows(n_rows: int, k: int) -> Any:
    return np.sort(np.random.default_rng(0).permutation(n_rows)[:k])


def test_accuracy_during_training_is_on_the_sample_and_at_the_end_on_every_row(
    client: TestClient, drain: Drain, settings: Settings
) -> None:
    job = finished(client, drain, eval_sample=100)
    data, weights, losses = replay(settings, job["spec"])
    assert [value for _, value in series(client, job["id"], "loss")] == losses  # the same run
    rows = {"train": documented_rows(1297, 100), "val": documented_rows(250, 100)}
    final_W = np.load(io.BytesIO(client.get(f"/jobs/{job['id']}/weights?format=npy").content))
    np.testing.assert_array_equal(final_W, weights[101])

    evaluation = client.get(f"/jobs/{job['id']}/evaluation").json()
    for split in ("train", "val"):
        X, y = getattr(data, f"X_{split}"), getattr(data, f"y_{split}")
        points = series(client, job["id"], f"{split}_accuracy")
        assert [step for step, _ in points] == EVAL_STEPS
        for step, value in points[:-1]:
            assert value == accuracy_on(weights[step], X, y, rows[split])
        assert any(value != accuracy_on(weights[step], X, y) for step, value in points[:-1])
        full = accuracy_on(final_W, X, y)
        assert points[-1][1] == job["metrics"][f"{split}_accuracy"] == full

        scores = evaluation["splits"][split]
        matrix = np.zeros((10, 10), dtype=np.int64)
        np.add.at(matrix, (y, np.argmax(X @ final_W.T, axis=1)), 1)
        assert scores["confusion_matrix"] == matrix.tolist()
        assert scores["accuracy"] == full == np.trace(matrix) / len(y)
        assert scores["n"] == len(y)


def test_a_null_eval_sample_measures_every_row_throughout(
    client: TestClient, drain: Drain, settings: Settings
) -> None:
    job = finished(client, drain, eval_sample=None)
    assert job["spec"]["eval_sample"] is None
    data, weights, _ = replay(settings, job["spec"])
    for split in ("train", "val"):
        X, y = getattr(data, f"X_{split}"), getattr(data, f"y_{split}")
        points = series(client, job["id"], f"{split}_accuracy")
        assert [step for step, _ in points] == EVAL_STEPS
        # Every point is W's accuracy on every row; the last step's, the final W's.
        at = {**{step: weights[step] for step in EVAL_STEPS[:-1]}, 100: weights[101]}
        assert [value for _, value in points] == [accuracy_on(at[s], X, y) for s, _ in points]
        assert points[-1][1] == job["metrics"][f"{split}_accuracy"]


def test_the_default_is_stored_and_a_stored_spec_without_the_field_still_runs(
    client: TestClient, drain: Drain, database: Database
) -> None:
    response = client.post("/jobs", json=SPEC)
    assert response.status_code == 202
    job_id = response.json()["id"]
    assert response.json()["spec"]["eval_sample"] == 1000
    # A job stored before the field existed: the worker's validation fills in the default.
    with database.write() as session:
        job = session.execute(select(Job).where(Job.id == job_id)).scalar_one()
        job.spec = {key: value for key, value in job.spec.items() if key != "eval_sample"}
        session.commit()
    drain()
    done = client.get(f"/jobs/{job_id}").json()
    assert done["status"] == "succeeded", done["error"]
    assert len(series(client, job_id, "train_accuracy")) == len(EVAL_STEPS)


@pytest.mark.parametrize("value", [0, -5, 2.5, "many"])
def test_an_invalid_eval_sample_is_a_422_naming_the_field(client: TestClient, value: Any) -> None:
    response = client.post("/jobs", json={**SPEC, "eval_sample": value})
    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"] == ["body", "eval_sample"]
