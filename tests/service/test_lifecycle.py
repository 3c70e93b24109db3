"""A job from submission to weights: history, metrics, pages, cancel and delete."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from service.db.session import Database
from service.jobs import queue
from tests.service.conftest import toy_spec

Drain = Callable[[], int]


def test_a_trained_job_has_its_history_metrics_and_weights(
    client: TestClient, drain: Drain
) -> None:
    job = client.post("/jobs", json=toy_spec()).json()

    assert drain() == 1

    done = client.get(f"/jobs/{job['id']}").json()
    assert done["status"] == "succeeded"
    assert done["attempts"] == 1
    assert done["progress"] == {"step": 200, "total": 200, "fraction": 1.0, "phase": None}
    assert done["error"] is None
    metrics = done["metrics"]
    for name in ("train_accuracy", "val_accuracy", "test_accuracy"):
        assert 0.8 <= metrics[name] <= 1.0, (name, metrics)
    assert metrics["best_loss"] <= metrics["loss"] + 1e-12 or metrics["best_loss"] < 1.0
    timings = done["timings"]
    assert timings["queued_s"] >= 0 and timings["load_s"] >= 0 and timings["run_s"] > 0
    assert done["started_at"] and done["finished_at"]

    loss = client.get(f"/jobs/{job['id']}/loss", params={"limit": 10_000}).json()
    assert loss["total"] == 200
    assert [p["step"] for p in loss["points"]] == list(range(200))
    assert loss["next_after"] is None
    assert loss["points"][-1]["loss"] < loss["points"][0]["loss"]

    weights = client.get(f"/jobs/{job['id']}/weights").json()
    assert weights["shape"] == [3, 3]  # 3 classes x (2 features + bias)
    assert weights["dtype"] == "float32"
    assert weights["step"] == 200


def test_npy_weights_equal_the_json_weights(client: TestClient, drain: Drain) -> None:
    job = client.post("/jobs", json=toy_spec()).json()
    drain()

    response = client.get(f"/jobs/{job['id']}/weights", params={"format": "npy"})

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/octet-stream"
    W = np.load(io.BytesIO(response.content), allow_pickle=False)
    as_json = client.get(f"/jobs/{job['id']}/weights").json()
    np.testing.assert_array_equal(W, np.asarray(as_json["data"], dtype=np.float32))


def test_loss_pages_follow_the_cursor(client: TestClient, drain: Drain) -> None:
    job = client.post("/jobs", json=toy_spec(log_every=10)).json()
    drain()

    steps: list[int] = []
    after: int | None = None
    while True:
        params = {"limit": 7} if after is None else {"limit": 7, "after": after}
        page = client.get(f"/jobs/{job['id']}/loss", params=params).json()
        steps += [p["step"] for p in page["points"]]
        assert page["total"] == 21
        if page["next_after"] is None:
            break
        after = page["next_after"]

    assert steps == [*range(0, 200, 10), 199]


def test_other_series_are_served_in_the_same_shape(client: TestClient, drain: Drain) -> None:
    job = client.post("/jobs", json=toy_spec()).json()
    drain()

    val = client.get(f"/jobs/{job['id']}/metrics/val_accuracy").json()
    lr = client.get(f"/jobs/{job['id']}/metrics/learning_rate").json()

    assert [p["step"] for p in val["points"]] == [0, 50, 100, 150, 199]
    assert all(0.0 <= p["value"] <= 1.0 for p in val["points"])
    assert lr["total"] == 200 and {p["value"] for p in lr["points"]} == {0.1}


def test_a_queued_job_has_no_weights_and_no_points_yet(client: TestClient) -> None:
    job = client.post("/jobs", json=toy_spec()).json()

    weights = client.get(f"/jobs/{job['id']}/weights")
    loss = client.get(f"/jobs/{job['id']}/loss").json()

    assert weights.status_code == 409
    assert weights.headers["content-type"].startswith("application/problem+json")
    assert loss == {"points": [], "next_after": -1, "total": 0}


def test_divergence_fails_the_job_cleanly_and_keeps_the_history(
    client: TestClient, drain: Drain
) -> None:
    body = toy_spec(
        model={"loss": "softmax", "reg": 1e6},
        optimizer={"type": "sgd", "learning_rate": 1e3, "iterations": 500},
    )
    job = client.post("/jobs", json=body).json()
    drain()

    failed = client.get(f"/jobs/{job['id']}").json()
    assert failed["status"] == "failed"
    assert failed["error"]["type"] == "diverged"
    step = failed["error"]["step"]
    assert 0 < step < 500
    loss = client.get(f"/jobs/{job['id']}/loss", params={"limit": 10_000}).json()
    assert [p["step"] for p in loss["points"]] == list(range(step))
    assert all(np.isfinite(p["loss"]) for p in loss["points"])


def test_cancelling_a_queued_job_is_immediate(client: TestClient, drain: Drain) -> None:
    job = client.post("/jobs", json=toy_spec()).json()

    response = client.post(f"/jobs/{job['id']}/cancel")

    assert response.status_code == 202
    assert response.json()["status"] == "cancelled"
    assert drain() == 0
    assert client.get(f"/jobs/{job['id']}").json()["status"] == "cancelled"


def test_a_finished_job_cannot_be_cancelled(client: TestClient, drain: Drain) -> None:
    job = client.post("/jobs", json=toy_spec()).json()
    drain()

    response = client.post(f"/jobs/{job['id']}/cancel")

    assert response.status_code == 409
    assert response.json()["status"] == 409
    assert response.json()["detail"] == f"Job {job['id']} has already finished (succeeded)"


def test_deleting_a_finished_job_removes_it_and_its_history(
    client: TestClient, drain: Drain
) -> None:
    job = client.post("/jobs", json=toy_spec()).json()
    drain()

    assert client.delete(f"/jobs/{job['id']}").status_code == 204

    assert client.get(f"/jobs/{job['id']}").status_code == 404
    assert client.get(f"/jobs/{job['id']}/loss").status_code == 404
    assert client.get(f"/jobs/{job['id']}/weights").status_code == 404


def test_a_live_job_cannot_be_deleted(client: TestClient) -> None:
    job = client.post("/jobs", json=toy_spec()).json()

    response = client.delete(f"/jobs/{job['id']}")

    assert response.status_code == 409
    assert client.get(f"/jobs/{job['id']}").status_code == 200


def landscape_around(job_id: str) -> dict[str, Any]:
    return {"task": "landscape", "dataset": {"name": "blobs"},
            "landscape": {"around": job_id, "points": 3}}  # fmt: skip


@pytest.mark.parametrize("dependent_status", ["queued", "running"])
def test_a_job_that_a_live_job_is_around_cannot_be_deleted(
    client: TestClient, drain: Drain, database: Database, dependent_status: str
) -> None:
    centre = client.post("/jobs", json=toy_spec()).json()
    drain()
    landscape = client.post("/jobs", json=landscape_around(centre["id"])).json()
    if dependent_status == "running":
        with database.transaction() as session:
            claimed = queue.claim(session, "busy-worker", lease_seconds=60)
        assert claimed is not None and claimed.id == landscape["id"]

    response = client.delete(f"/jobs/{centre['id']}")

    assert response.status_code == 409
    assert response.headers["content-type"].startswith("application/problem+json")
    assert landscape["id"] in response.json()["detail"]
    assert client.get(f"/jobs/{centre['id']}/weights").status_code == 200
    assert client.get(f"/jobs/{landscape['id']}").json()["status"] == dependent_status


def test_a_job_only_finished_jobs_are_around_can_be_deleted(
    client: TestClient, drain: Drain
) -> None:
    centre = client.post("/jobs", json=toy_spec()).json()
    drain()
    done = client.post("/jobs", json=landscape_around(centre["id"])).json()
    drain()
    cancelled = client.post("/jobs", json=landscape_around(centre["id"])).json()
    client.post(f"/jobs/{cancelled['id']}/cancel")

    assert client.get(f"/jobs/{done['id']}").json()["status"] == "succeeded"
    assert client.delete(f"/jobs/{centre['id']}").status_code == 204
    assert client.get(f"/jobs/{centre['id']}").status_code == 404


def test_unknown_jobs_are_404_problems(client: TestClient) -> None:
    for path in ("/jobs/nope", "/jobs/nope/loss", "/jobs/nope/weights", "/jobs/nope/metrics/loss"):
        response = client.get(path)
        assert response.status_code == 404, path
        assert response.headers["content-type"].startswith("application/problem+json")
        assert response.json()["status"] == 404
    assert client.post("/jobs/nope/cancel").status_code == 404
    assert client.delete("/jobs/nope").status_code == 404


def test_bad_query_parameters_are_422_problems(client: TestClient) -> None:
    job = client.post("/jobs", json=toy_spec()).json()

    for params in ({"limit": 0}, {"limit": 10_001}, {"after": "x"}, {"after": -2}):
        response = client.get(f"/jobs/{job['id']}/loss", params=params)
        assert response.status_code == 422, params
        assert response.json()["errors"][0]["loc"][0] == "query"
    assert client.get(f"/jobs/{job['id']}/weights", params={"format": "pickle"}).status_code == 422


def test_the_same_spec_and_seed_give_the_same_history_and_weights(
    client: TestClient, drain: Drain
) -> None:
    first = client.post("/jobs", json=toy_spec(seed=7)).json()
    second = client.post("/jobs", json=toy_spec(seed=7)).json()
    drain()

    def history(job_id: str) -> object:
        return client.get(f"/jobs/{job_id}/loss", params={"limit": 10_000}).json()["points"]

    def weights(job_id: str) -> object:
        return client.get(f"/jobs/{job_id}/weights").json()["data"]

    assert history(first["id"]) == history(second["id"])
    assert weights(first["id"]) == weights(second["id"])


def test_max_points_downsamples_a_long_curve_keeping_its_ends(
    client: TestClient, drain: Drain
) -> None:
    body = toy_spec(optimizer={"type": "sgd", "batch_size": 8, "iterations": 5000})
    job = client.post("/jobs", json=body).json()
    drain()

    page = client.get(f"/jobs/{job['id']}/loss", params={"max_points": 100}).json()

    steps = [p["step"] for p in page["points"]]
    assert len(steps) <= 100
    assert steps[0] == 0 and steps[-1] == 4999
    assert page["total"] == 5000
    assert page["next_after"] is None
    every = client.get(f"/jobs/{job['id']}/loss", params={"limit": 10_000}).json()["points"]
    lowest = min(every, key=lambda p: p["loss"])
    assert lowest in page["points"]  # extremes survive


def test_a_zoomed_window_is_downsampled_within_its_bounds(client: TestClient, drain: Drain) -> None:
    body = toy_spec(optimizer={"type": "sgd", "batch_size": 8, "iterations": 5000})
    job = client.post("/jobs", json=body).json()
    drain()

    params = {"max_points": 50, "start": 1000, "end": 2000}
    page = client.get(f"/jobs/{job['id']}/metrics/learning_rate", params=params).json()

    steps = [p["step"] for p in page["points"]]
    assert steps[0] == 1000 and steps[-1] == 2000 and len(steps) <= 50
    bad = client.get(f"/jobs/{job['id']}/loss", params={"start": 10})
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["loc"] == ["query", "max_points"]
