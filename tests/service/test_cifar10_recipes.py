"""The course's CIFAR-10 recipes through the API, on the real data in ../shared/data."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.settings import Settings
from tests.conftest import cifar10_dir, make_settings
from worker.runner import Worker

pytestmark = [
    pytest.mark.cifar,
    pytest.mark.skipif(cifar10_dir() is None, reason="real CIFAR-10 not found (../shared/data)"),
]

RECIPE: dict[str, Any] = {
    "name": "svm-sgd-baseline",
    "dataset": {"name": "cifar10"},
    "model": {"loss": "svm", "reg": 2.5e4},
    "optimizer": {"type": "sgd", "learning_rate": 1e-7, "batch_size": 200, "iterations": 1500},
}


@pytest.fixture
def cifar_settings(sqlite_url: str, tmp_path: Path) -> Settings:
    return make_settings(sqlite_url, tmp_path)


@pytest.fixture
def client(cifar_settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(cifar_settings)) as test_client:
        yield test_client


def test_the_svm_sgd_recipe_reaches_the_course_accuracy(
    client: TestClient, cifar_settings: Settings
) -> None:
    job_id = client.post("/jobs", json=RECIPE).json()["id"]

    with Worker(cifar_settings) as worker:
        worker.run(burst=True)

    job = client.get(f"/jobs/{job_id}").json()
    assert job["status"] == "succeeded", job["error"]
    assert job["spec"]["dataset"] == {"name": "cifar10", "n_train": 49000, "n_val": 1000,
                                      "n_test": 1000}  # fmt: skip
    first = client.get(f"/jobs/{job_id}/loss", params={"limit": 1}).json()["points"][0]
    assert 770 <= first["loss"] <= 810  # assignment 1: ≈ 780-800 with W = 0.001·randn
    assert job["metrics"]["loss"] < 10
    assert 0.34 <= job["metrics"]["val_accuracy"] <= 0.42
    assert 0.30 <= job["metrics"]["test_accuracy"] <= 0.42
    weights = client.get(f"/jobs/{job_id}/weights").json()
    assert weights["shape"] == [10, 3073]


def test_a_learning_rate_of_5e_5_diverges_and_fails_cleanly(
    client: TestClient, cifar_settings: Settings
) -> None:
    body = {**RECIPE, "optimizer": {**RECIPE["optimizer"], "learning_rate": 5e-5}}
    job_id = client.post("/jobs", json=body).json()["id"]

    with Worker(cifar_settings) as worker:
        worker.run(burst=True)

    job = client.get(f"/jobs/{job_id}").json()
    assert job["status"] == "failed"
    assert job["error"]["type"] == "diverged"
    assert job["metrics"]["loss"] is not None
    loss = client.get(f"/jobs/{job_id}/loss", params={"limit": 10_000}).json()
    assert loss["total"] == job["error"]["step"]
