"""Submitting jobs: what is accepted, what is echoed back, and how bad specs are refused."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from tests.conftest import make_settings
from tests.service.conftest import toy_spec


def test_submit_returns_202_with_location_and_the_spec_with_defaults(client: TestClient) -> None:
    response = client.post("/jobs", json=toy_spec(name="first"))

    assert response.status_code == 202
    job = response.json()
    assert response.headers["location"] == f"/jobs/{job['id']}"
    assert job["status"] == "queued"
    assert job["name"] == "first"
    assert job["attempts"] == 0
    assert job["progress"] == {"step": 0, "total": 200, "fraction": 0.0, "phase": None}
    spec = job["spec"]
    assert spec["task"] == "train"
    assert spec["preprocess"] == {"center": True, "standardize": False, "bias": True}
    assert spec["dtype"] == "float32"
    assert spec["dataset"]["n_train"] == 360
    assert spec["optimizer"]["gradient"] == "analytic"
    assert spec["optimizer"]["lr_schedule"] == {"type": "constant"}
    assert job["created_at"].endswith(("Z", "+00:00"))


def test_a_submitted_job_can_be_read_back(client: TestClient) -> None:
    job = client.post("/jobs", json=toy_spec()).json()

    again = client.get(f"/jobs/{job['id']}")

    assert again.status_code == 200
    assert again.json() == job


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({"optimizer": {"type": "sgd"}}, ["body", "dataset"]),
        (toy_spec(optimizer={"type": "warp_drive"}), ["body", "optimizer"]),
        (
            toy_spec(optimizer={"type": "sgd", "learning_rate": -1}),
            ["body", "optimizer", "sgd", "learning_rate"],
        ),
        (
            toy_spec(optimizer={"type": "sgd", "iterations": 0}),
            ["body", "optimizer", "sgd", "iterations"],
        ),
        (toy_spec(dtype="float16"), ["body", "dtype"]),
        (toy_spec(dataset={"name": "mnist"}), ["body", "dataset", "name"]),
        (toy_spec(model={"loss": "hinge"}), ["body", "model", "loss"]),
        (toy_spec(colour="blue"), ["body", "colour"]),
        (toy_spec(task="dance"), ["body", "task"]),
        ({"dataset": {"name": "toy"}}, ["body"]),
        (toy_spec(task="landscape", landscape={"points": 500}), ["body", "landscape", "points"]),
        (toy_spec(task="landscape", landscape={"dims": 3}), ["body", "landscape", "dims"]),
        (toy_spec(gradient_check={"num_checks": 3}), ["body"]),
        (
            toy_spec(optimizer={"type": "sgd", "gradient": "magic"}),
            ["body", "optimizer", "sgd", "gradient"],
        ),
        (
            toy_spec(optimizer={"type": "random_search", "scale": 0}),
            ["body", "optimizer", "random_search", "scale"],
        ),
    ],
)
def test_invalid_specs_are_422_problems_naming_the_field(
    client: TestClient, body: dict[str, object], loc: list[str]
) -> None:
    response = client.post("/jobs", json=body)

    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["status"] == 422
    assert problem["title"] == "Unprocessable Content" or problem["title"]
    assert any(error["loc"][: len(loc)] == loc for error in problem["errors"]), problem["errors"]


def test_batch_larger_than_the_training_set_is_refused(client: TestClient) -> None:
    body = toy_spec(optimizer={"type": "sgd", "batch_size": 361})

    problem = client.post("/jobs", json=body).json()

    assert problem["status"] == 422
    assert problem["errors"][0]["loc"] == ["body", "optimizer", "batch_size"]
    assert "360" in problem["errors"][0]["msg"]


def test_iterations_above_the_server_limit_are_refused(database_url: str, tmp_path: Path) -> None:
    settings = make_settings(database_url, tmp_path, max_iterations=500)
    with TestClient(create_app(settings)) as client:
        body = toy_spec(optimizer={"type": "sgd", "iterations": 501})
        problem = client.post("/jobs", json=body).json()

    assert problem["status"] == 422
    assert problem["errors"][0]["loc"] == ["body", "optimizer", "iterations"]


def test_unavailable_cifar10_is_a_422_naming_the_dataset(database_url: str, tmp_path: Path) -> None:
    settings = make_settings(database_url, tmp_path, cifar10_dir=tmp_path / "nowhere")
    with TestClient(create_app(settings)) as client:
        problem = client.post("/jobs", json=toy_spec(dataset={"name": "cifar10"})).json()

    assert problem["status"] == 422
    assert problem["errors"][0]["loc"] == ["body", "dataset", "name"]
    assert "DESCENT_CIFAR10_DIR" in problem["detail"] or "missing" in problem["detail"]


def test_options_a_dataset_does_not_take_are_refused(client: TestClient) -> None:
    problem = client.post("/jobs", json=toy_spec(dataset={"name": "toy", "noise": 0.5})).json()

    assert problem["status"] == 422
    assert problem["errors"][0]["loc"] == ["body", "dataset", "noise"]


def test_split_sizes_beyond_the_data_are_refused(client: TestClient) -> None:
    problem = client.post(
        "/jobs", json=toy_spec(dataset={"name": "digits", "n_train": 1700})
    ).json()

    assert problem["status"] == 422
    assert problem["errors"][0]["loc"][:2] == ["body", "dataset"]


def test_malformed_json_is_a_422_problem(client: TestClient) -> None:
    response = client.post(
        "/jobs", content=b"{not json", headers={"content-type": "application/json"}
    )

    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
