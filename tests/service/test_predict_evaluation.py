"""POST /jobs/{id}/predict and GET /jobs/{id}/evaluation."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.settings import Settings
from tests.conftest import make_settings
from tests.service.conftest import toy_spec
from worker.engine.datasets import load_builtin
from worker.engine.preprocess import Preprocessor

pytestmark = pytest.mark.postgres
OPTIONS: dict[str, float | int] = {"n_features": 5, "n_classes": 4, "cluster_std": 3.0}
BLOBS = {"name": "blobs", **OPTIONS}


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return make_settings(database_url, tmp_path, max_predict_rows=100)


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def trained(client: TestClient, drain: Callable[[], int], **overrides: Any) -> dict[str, Any]:
    job = client.post("/jobs", json=toy_spec(dataset=BLOBS, **overrides)).json()
    drain()
    done = client.get(f"/jobs/{job['id']}").json()
    assert done["status"] == "succeeded", done["error"]
    return dict(done)


@pytest.mark.parametrize(
    "preprocess",
    [
        {"center": True, "standardize": True, "bias": True},
        {"center": False, "standardize": False, "bias": False},
    ],
)
def test_predictions_equal_scoring_with_the_downloaded_weights(
    client: TestClient, drain: Callable[[], int], preprocess: dict[str, bool]
) -> None:
    job = trained(client, drain, preprocess=preprocess, dtype="float64")
    data = load_builtin("blobs", options=OPTIONS)
    rows = data.X_test[:37]

    response = client.post(f"/jobs/{job['id']}/predict", json={"X": rows.tolist()})

    assert response.status_code == 200, response.json()
    W = np.load(io.BytesIO(client.get(f"/jobs/{job['id']}/weights?format=npy").content))
    local = Preprocessor.fit(data.X_train, **preprocess).transform(rows, W.dtype) @ W.T
    body = response.json()
    assert body["step"] == 200
    np.testing.assert_array_equal(np.array(body["scores"]), local)
    assert body["labels"] == np.argmax(local, axis=1).tolist()
    accuracy = np.mean(np.argmax(local, axis=1) == data.y_test[:37])
    assert accuracy > 0.5


def test_predict_checks_width_rows_and_values(client: TestClient, drain: Callable[[], int]) -> None:
    job = trained(client, drain)
    url = f"/jobs/{job['id']}/predict"

    wide = client.post(url, json={"X": [[0.0] * 5, [0.0] * 6]})
    many = client.post(url, json={"X": [[0.0] * 5] * 101})
    nan = client.post(url, content=b'{"X": [[0, 1, 2, 3, 4], [0, NaN, 0, 0, 0]]}',
                      headers={"content-type": "application/json"})  # fmt: skip
    empty = client.post(url, json={"X": []})
    # Finite, but past float32 (the job's dtype) or overflowing the scores in it.
    huge = client.post(url, json={"X": [[0.0] * 5, [1e39] * 5, [3e38, -3e38, 3e38, 0, 0]]})
    overflow = client.post(url, json={"X": [[0.0] * 5, [1.7e308, -1.7e308, 0, 0, 0]]})

    assert wide.status_code == many.status_code == nan.status_code == empty.status_code == 422
    assert wide.json()["errors"][0]["loc"] == ["body", "X", 1]
    assert many.json()["errors"][0]["loc"] == ["body", "X"]
    assert nan.json()["errors"][0]["loc"] == ["body", "X", 1]
    assert huge.status_code == overflow.status_code == 422, huge.text
    for refused in (huge, overflow):
        assert refused.json()["errors"][0]["loc"] == ["body", "X", 1]


def test_predict_and_evaluation_are_409_without_weights_and_404_for_unknown_jobs(
    client: TestClient,
) -> None:
    job = client.post("/jobs", json=toy_spec()).json()

    assert client.post(f"/jobs/{job['id']}/predict", json={"X": [[0.0, 0.0]]}).status_code == 409
    assert client.get(f"/jobs/{job['id']}/evaluation").status_code == 409
    assert client.post("/jobs/nope/predict", json={"X": [[0.0]]}).status_code == 404
    assert client.get("/jobs/nope/evaluation").status_code == 404


def test_the_evaluation_matches_the_accuracies(
    client: TestClient, drain: Callable[[], int]
) -> None:
    job = trained(client, drain)

    evaluation = client.get(f"/jobs/{job['id']}/evaluation").json()

    assert (evaluation["job_id"], evaluation["n_classes"], evaluation["step"]) == (
        job["id"],
        4,
        200,
    )
    assert set(evaluation["splits"]) == {"train", "val", "test"}
    for split, scores in evaluation["splits"].items():
        matrix = np.array(scores["confusion_matrix"])
        assert matrix.shape == (4, 4)
        assert matrix.sum() == scores["n"] == job["spec"]["dataset"][f"n_{split}"]
        assert scores["accuracy"] == job["metrics"][f"{split}_accuracy"]
        assert scores["accuracy"] == np.trace(matrix) / matrix.sum()
        per_class = np.diag(matrix) / matrix.sum(axis=1)
        assert scores["per_class_accuracy"] == pytest.approx(per_class.tolist())


def test_the_evaluation_agrees_with_predictions_on_the_test_split(
    client: TestClient, drain: Callable[[], int]
) -> None:
    job = trained(client, drain)
    data = load_builtin("blobs", options=OPTIONS)
    labels = client.post(f"/jobs/{job['id']}/predict", json={"X": data.X_test[:100].tolist()})
    labels2 = client.post(f"/jobs/{job['id']}/predict", json={"X": data.X_test[100:].tolist()})
    predicted = np.array(labels.json()["labels"] + labels2.json()["labels"])

    matrix = np.zeros((4, 4), dtype=int)
    np.add.at(matrix, (data.y_test, predicted), 1)
    evaluation = client.get(f"/jobs/{job['id']}/evaluation").json()
    assert evaluation["splits"]["test"]["confusion_matrix"] == matrix.tolist()


def test_non_train_tasks_have_no_evaluation(client: TestClient, drain: Callable[[], int]) -> None:
    job = client.post(
        "/jobs", json={"task": "gradient_check", "dataset": {"name": "toy"}, "dtype": "float64"}
    ).json()
    drain()

    assert client.get(f"/jobs/{job['id']}").json()["status"] == "succeeded"
    response = client.get(f"/jobs/{job['id']}/evaluation")
    assert response.status_code == 409
    assert "only succeeded train jobs" in response.json()["detail"]
