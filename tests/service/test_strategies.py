"""Every strategy of the notes through the API: optimizers, gradient sources and tasks."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

Drain = Callable[[], int]
SEPARABLE = {"name": "blobs", "cluster_std": 0.5}


@pytest.fixture
def database_url(sqlite_url: str) -> str:
    """The strategies exercise the engine through the API; SQLite is enough for that."""
    return sqlite_url


def run_job(client: TestClient, drain: Drain, spec: dict[str, Any]) -> dict[str, Any]:
    response = client.post("/jobs", json=spec)
    assert response.status_code == 202, response.json()
    drain()
    job: dict[str, Any] = client.get(f"/jobs/{response.json()['id']}").json()
    return job


@pytest.mark.parametrize(
    "optimizer",
    [
        {"type": "sgd", "learning_rate": 0.1, "batch_size": 32, "iterations": 300},
        {"type": "sgd", "learning_rate": 0.1, "batch_size": None, "iterations": 300},
        {"type": "sgd", "learning_rate": 0.02, "batch_size": 1, "iterations": 1000},
        {"type": "momentum", "learning_rate": 0.01, "batch_size": 32, "iterations": 300},
        {"type": "nesterov", "learning_rate": 0.01, "batch_size": 32, "iterations": 300},
        {"type": "adagrad", "learning_rate": 0.1, "batch_size": 32, "iterations": 300},
        {"type": "rmsprop", "learning_rate": 0.01, "batch_size": 32, "iterations": 300},
        {"type": "adam", "learning_rate": 0.01, "batch_size": 32, "iterations": 300},
        {
            "type": "sgd",
            "learning_rate": 0.1,
            "batch_size": 32,
            "iterations": 300,
            "sampling": "epoch",
            "lr_schedule": {"type": "step", "step_size": 100, "gamma": 0.5},
        },
        {"type": "random_search", "trials": 500, "scale": 1.0},
        {"type": "random_local_search", "iterations": 500, "init_scale": 0.001, "step_size": 0.1},
    ],
    ids=lambda o: f"{o['type']}-{o.get('batch_size', '')}-{o.get('sampling', '')}",
)
def test_every_optimizer_converges_on_a_separable_problem(
    client: TestClient, drain: Drain, optimizer: dict[str, Any]
) -> None:
    job = run_job(client, drain, {"dataset": SEPARABLE, "optimizer": optimizer, "eval_every": 0})

    assert job["status"] == "succeeded", job["error"]
    assert job["metrics"]["train_accuracy"] >= 0.9
    assert job["metrics"]["val_accuracy"] >= 0.85
    if optimizer["type"].startswith("random"):
        # Each trial's own loss jumps around; the best one only ever goes down.
        best = client.get(f"/jobs/{job['id']}/metrics/best_loss", params={"limit": 10_000})
        values = [p["value"] for p in best.json()["points"]]
        assert values == sorted(values, reverse=True) and values[-1] < values[0]
    else:
        loss = client.get(f"/jobs/{job['id']}/loss", params={"limit": 10_000}).json()["points"]
        assert loss[-1]["loss"] < loss[0]["loss"]


def test_a_numerical_gradient_job_follows_the_analytic_trajectory(
    client: TestClient, drain: Drain
) -> None:
    base = {"dataset": {"name": "blobs"}, "model": {"loss": "softmax", "reg": 0.01},
            "dtype": "float64", "eval_every": 0}  # fmt: skip
    optimizer = {"type": "sgd", "learning_rate": 0.1, "batch_size": 32, "iterations": 100}
    analytic = run_job(client, drain, {**base, "optimizer": optimizer})
    numerical = run_job(
        client, drain, {**base, "optimizer": {**optimizer, "gradient": "numerical"}}
    )

    def curve(job: dict[str, Any]) -> list[float]:
        points = client.get(f"/jobs/{job['id']}/loss", params={"limit": 1000}).json()["points"]
        return [p["loss"] for p in points]

    assert numerical["spec"]["optimizer"]["h"] == 1e-5
    assert curve(numerical) == pytest.approx(curve(analytic), rel=1e-7)


def test_random_search_is_deterministic_for_a_seed(client: TestClient, drain: Drain) -> None:
    spec = {"dataset": SEPARABLE, "optimizer": {"type": "random_search", "trials": 200,
                                                "scale": 1.0}, "seed": 5}  # fmt: skip
    first, second = run_job(client, drain, spec), run_job(client, drain, spec)

    weights = [client.get(f"/jobs/{job['id']}/weights").json()["data"] for job in (first, second)]
    assert weights[0] == weights[1]
    assert first["metrics"]["best_loss"] == second["metrics"]["best_loss"]


def test_a_gradient_check_on_the_toy_points_passes(client: TestClient, drain: Drain) -> None:
    spec = {
        "task": "gradient_check",
        "dataset": {"name": "toy"},
        "model": {"loss": "softmax", "reg": 0.1},
        "gradient_check": {"num_checks": 4},
    }
    job = run_job(client, drain, spec)

    assert job["status"] == "succeeded", job["error"]
    assert job["progress"]["fraction"] == 1.0
    result = client.get(f"/jobs/{job['id']}/result").json()
    assert result["passed"] is True
    assert len(result["checks"]) == 4
    assert any(check["index"][1] == 1 for check in result["checks"])  # the bias column
    assert result["max_relative_error"] < 1e-7
    for check in result["checks"]:
        assert set(check) >= {"index", "analytic", "numerical", "relative_error"}


def test_a_gradient_check_of_more_entries_than_w_has_counts_those_it_checks(
    client: TestClient, drain: Drain
) -> None:
    spec = {"task": "gradient_check", "dataset": {"name": "toy"},
            "gradient_check": {"num_checks": 1000}}  # fmt: skip
    job = run_job(client, drain, spec)

    checked = len(client.get(f"/jobs/{job['id']}/result").json()["checks"])
    assert checked < 1000
    assert job["progress"]["total"] == job["progress"]["step"] == checked


def test_the_step_size_sweep_has_the_notes_table(client: TestClient, drain: Drain) -> None:
    job = run_job(client, drain, {"task": "step_size_sweep", "dataset": {"name": "digits"}})

    result = client.get(f"/jobs/{job['id']}/result").json()
    assert [s["step_size"] for s in result["steps"]] == [10.0**k for k in range(-10, 0)]
    assert result["loss_original"] == pytest.approx(result["steps"][0]["loss"], rel=1e-6)
    losses = [s["loss"] for s in result["steps"]]
    best = losses.index(min(losses))
    assert 0 < best < 9  # falls, then grows again: the note's shape
    assert losses[-1] > losses[best]


@pytest.mark.parametrize("dims", [1, 2])
def test_a_landscape_on_the_toy_points(client: TestClient, drain: Drain, dims: int) -> None:
    spec = {"task": "landscape", "dataset": {"name": "toy"},
            "landscape": {"dims": dims, "points": 21, "examples": 1}}  # fmt: skip
    job = run_job(client, drain, spec)

    result = client.get(f"/jobs/{job['id']}/result").json()
    assert len(result["alphas"]) == 21
    if dims == 1:
        assert result["betas"] is None and len(result["loss"]) == 21
    else:
        assert len(result["betas"]) == 21 and [len(row) for row in result["loss"]] == [21] * 21
    assert job["progress"] == {"step": 21**dims, "total": 21**dims, "fraction": 1.0, "phase": None}


def test_a_landscape_around_a_trained_job(client: TestClient, drain: Drain) -> None:
    trained = run_job(client, drain, {"dataset": {"name": "toy"}, "optimizer": {"type": "sgd"}})
    spec = {"task": "landscape", "dataset": {"name": "toy"},
            "landscape": {"around": trained["id"], "points": 11}}  # fmt: skip

    job = run_job(client, drain, spec)

    result = client.get(f"/jobs/{job['id']}/result").json()
    assert min(result["loss"]) <= result["loss"][5] + 1e-12 or result["loss"][5] == min(
        result["loss"]
    )


def test_a_landscape_around_an_unknown_job_is_a_422(client: TestClient) -> None:
    spec = {"task": "landscape", "dataset": {"name": "toy"}, "landscape": {"around": "nope"}}

    problem = client.post("/jobs", json=spec).json()

    assert problem["status"] == 422
    assert problem["errors"][0]["loc"] == ["body", "landscape", "around"]


def test_a_landscape_around_an_unfinished_job_is_a_422(client: TestClient) -> None:
    queued = client.post("/jobs", json={"dataset": {"name": "toy"}, "optimizer": {"type": "sgd"}})
    spec = {"task": "landscape", "dataset": {"name": "toy"},
            "landscape": {"around": queued.json()["id"]}}  # fmt: skip

    problem = client.post("/jobs", json=spec).json()

    assert problem["status"] == 422
    assert problem["errors"][0]["loc"] == ["body", "landscape", "around"]
    assert "queued" in problem["errors"][0]["msg"]


def test_results_are_409_for_train_jobs_and_unfinished_tasks(
    client: TestClient, drain: Drain
) -> None:
    train = client.post("/jobs", json={"dataset": {"name": "toy"}, "optimizer": {"type": "sgd"}})
    task = client.post("/jobs", json={"task": "step_size_sweep", "dataset": {"name": "toy"}})

    assert client.get(f"/jobs/{task.json()['id']}/result").status_code == 409
    drain()
    assert client.get(f"/jobs/{train.json()['id']}/result").status_code == 409
    assert client.get(f"/jobs/{task.json()['id']}/result").status_code == 200
