"""Jobs on uploaded data sets: referenced by id, memory-mapped by workers, guarded on delete."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from service.jobs.spec import JobSpec
from service.settings import Settings
from tests.datasets.conftest import blobs, uploaded
from worker import train_job
from worker.engine import train as engine_train
from worker.runner import Worker

pytestmark = pytest.mark.postgres
RAW = {"center": False, "standardize": False, "bias": False}


def job_spec(dataset_id: str, **overrides: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "dataset": {"id": dataset_id},
        "model": {"loss": "softmax", "reg": 0.001},
        "optimizer": {"type": "sgd", "learning_rate": 0.1, "batch_size": 16, "iterations": 100},
        "eval_every": 50,
    }
    return spec | overrides


def test_a_job_trains_on_an_upload_and_echoes_its_splits(
    client: TestClient, drain: Callable[[], int]
) -> None:
    dataset_id = uploaded(client)
    job = client.post("/jobs", json=job_spec(dataset_id)).json()
    drain()

    done = client.get(f"/jobs/{job['id']}").json()
    assert job["spec"]["dataset"] == {"id": dataset_id, "n_train": 48, "n_val": 6, "n_test": 6}
    assert done["status"] == "succeeded", done["error"]
    assert done["metrics"]["val_accuracy"] == 1.0


def test_a_job_on_an_upload_hands_the_engine_its_memory_maps(
    client: TestClient,
    worker: Worker,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    dataset_id = uploaded(client)
    handed: list[Any] = []
    real_run = engine_train.run

    def recording_run(state: Any, config: Any, data: Any, **kwargs: Any) -> Any:
        handed.append(data)
        return real_run(state, config, data, **kwargs)

    monkeypatch.setattr(train_job, "run", recording_run)
    spec = job_spec(dataset_id, preprocess=RAW, dtype="float32")
    job = client.post("/jobs", json=spec).json()
    worker.run(burst=True)

    assert client.get(f"/jobs/{job['id']}").json()["status"] == "succeeded"
    (data,) = handed
    for name in ("X_train", "y_train", "X_val", "y_val"):
        array = getattr(data, name)
        assert isinstance(array, np.memmap), name
        assert Path(str(array.filename)) == settings.data_dir / dataset_id / f"{name}.npy"
    assert worker.data.prepared.nbytes == 0  # nothing copied into the prepared cache either


def test_preprocessed_arrays_are_built_once_and_shared_by_later_jobs(
    client: TestClient, worker: Worker
) -> None:
    dataset_id = uploaded(client)
    for seed in (0, 1, 2):
        client.post("/jobs", json=job_spec(dataset_id, seed=seed))  # centred, bias column
    worker.run(burst=True)

    assert (worker.data.prepared.misses, worker.data.prepared.hits) == (1, 2)


def test_subsets_take_the_first_rows_of_each_split(client: TestClient, worker: Worker) -> None:
    dataset_id = uploaded(client)
    spec = job_spec(dataset_id, preprocess=RAW, dataset={"id": dataset_id, "n_train": 20})
    spec["optimizer"]["batch_size"] = 20
    job = client.post("/jobs", json=spec).json()
    stored = JobSpec.model_validate(job["spec"])
    data, _ = worker.data.prepare(stored)

    assert data.X_train.shape == (20, 4) and isinstance(data.X_train, np.memmap)
    np.testing.assert_array_equal(data.X_train, np.asarray(worker.data.load(stored.dataset)
                                                           .X_train))  # fmt: skip


@pytest.mark.parametrize(
    ("dataset", "loc"),
    [
        ({"id": "0" * 32}, ["body", "dataset", "id"]),
        ({"id": "{id}", "noise": 0.1}, ["body", "dataset", "noise"]),
        ({"id": "{id}", "n_train": 49}, ["body", "dataset", "n_train"]),
        ({"id": "{id}", "name": "toy"}, ["body", "dataset"]),
        ({}, ["body", "dataset"]),
    ],
)
def test_bad_dataset_references_are_422_naming_the_field(
    client: TestClient, dataset: dict[str, Any], loc: list[str]
) -> None:
    dataset_id = uploaded(client)
    ref = {k: (dataset_id if v == "{id}" else v) for k, v in dataset.items()}
    response = client.post("/jobs", json=job_spec(dataset_id, dataset=ref))

    assert response.status_code == 422
    assert loc in [error["loc"] for error in response.json()["errors"]]


def test_delete_is_refused_while_a_job_uses_the_set_then_removes_row_and_files(
    client: TestClient, settings: Settings, drain: Callable[[], int]
) -> None:
    dataset_id = uploaded(client)
    client.post("/jobs", json=job_spec(dataset_id))

    refused = client.delete(f"/datasets/{dataset_id}")
    drain()
    deleted = client.delete(f"/datasets/{dataset_id}")

    assert refused.status_code == 409
    assert refused.headers["content-type"] == "application/problem+json"
    assert deleted.status_code == 204
    assert not (settings.data_dir / dataset_id).exists()
    assert client.get(f"/datasets/{dataset_id}").status_code == 404
    assert client.delete(f"/datasets/{dataset_id}").status_code == 404
    assert client.post("/jobs", json=job_spec(dataset_id)).status_code == 422


def test_built_ins_cannot_be_deleted(client: TestClient) -> None:
    assert client.delete("/datasets/blobs").status_code == 409


def test_a_worker_fails_a_job_whose_upload_vanished(
    client: TestClient, settings: Settings, drain: Callable[[], int]
) -> None:
    import shutil

    dataset_id = uploaded(client)
    job = client.post("/jobs", json=job_spec(dataset_id)).json()
    shutil.rmtree(settings.data_dir / dataset_id)
    drain()

    done = client.get(f"/jobs/{job['id']}").json()
    assert (done["status"], done["error"]["type"]) == ("failed", "dataset_unavailable")
    listed = client.get(f"/datasets/{dataset_id}").json()
    assert listed["available"] is False


def test_uploads_of_any_float_width_train(client: TestClient, drain: Callable[[], int]) -> None:
    X, y = blobs()
    dataset_id = uploaded(client, X_train=X.astype(np.float64), y_train=y.astype(np.uint8))
    job = client.post("/jobs", json=job_spec(dataset_id, preprocess=RAW)).json()
    drain()

    assert client.get(f"/jobs/{job['id']}").json()["status"] == "succeeded"
