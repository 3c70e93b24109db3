"""POST /sweeps: trials are ordinary jobs; the leaderboard, the best trial, cancel, idempotency."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from service.db.models import Job
from service.db.session import Database
from service.jobs import queue
from service.settings import Settings
from service.sweeps.trials import trial_name
from tests.sweeps.conftest import sweep_request
from worker.engine.datasets import load_builtin
from worker.engine.preprocess import Preprocessor

pytestmark = pytest.mark.postgres


def test_a_grid_sweep_runs_every_trial_and_its_best_is_verified_from_its_weights(
    client: TestClient, drain: Callable[[], int]
) -> None:
    response = client.post("/sweeps", json=sweep_request(name="svm grid"))
    assert response.status_code == 202, response.json()
    sweep = response.json()
    assert response.headers["location"] == f"/sweeps/{sweep['id']}"
    assert (sweep["status"], sweep["n_trials"], sweep["best"]) == ("queued", 4, None)
    assert [job["params"] for job in sweep["jobs"]] == [
        {"optimizer.learning_rate": lr, "model.reg": reg}
        for lr in (0.3, 0.03)
        for reg in (0.0, 0.1)
    ]
    names = [client.get(f"/jobs/{job['id']}").json()["name"] for job in sweep["jobs"]]
    assert names[1] == "svm grid: learning_rate=0.3, reg=0.1"
    drain()

    done = client.get(f"/sweeps/{sweep['id']}").json()
    assert done["status"] == "succeeded"
    assert done["counts"] | {} == {"queued": 0, "running": 0, "succeeded": 4, "failed": 0,
                                   "cancelled": 0, "pruned": 0}  # fmt: skip
    board = done["leaderboard"]
    assert [entry["rank"] for entry in board] == [1, 2, 3, 4]
    values = [entry["value"] for entry in board]
    assert values == sorted(values, reverse=True)
    best = done["best"]
    assert best == {k: board[0][k] for k in best}
    job = client.get(f"/jobs/{best['job_id']}").json()
    assert job["spec"]["optimizer"]["learning_rate"] == best["params"]["optimizer.learning_rate"]
    assert best["val_accuracy"] == job["metrics"]["val_accuracy"]

    W = np.load(io.BytesIO(client.get(f"/jobs/{best['job_id']}/weights?format=npy").content))
    data = load_builtin("blobs", options={"cluster_std": 2.5})
    pre = Preprocessor.fit(data.X_train, center=True, standardize=False, bias=True)
    recomputed = np.mean(np.argmax(pre.transform(data.X_val, W.dtype) @ W.T, axis=1) == data.y_val)
    assert recomputed == best["val_accuracy"]


def test_trial_names_stay_within_the_column() -> None:
    params = {f"model.p{i}": float(i) / 7 for i in range(40)}
    name = trial_name("base", params)
    assert len(name) == 200 and name.endswith("…") and name.startswith("base: p0=0, p1=0.143")


def test_random_sweeps_draw_reproducibly_from_their_seed(client: TestClient) -> None:
    rates = {"optimizer.learning_rate": {"log_uniform": [1e-3, 1.0]}}
    request = sweep_request(method="random", trials=5, seed=3, space=rates)
    first = client.post("/sweeps", json=request).json()
    second = client.post("/sweeps", json=request).json()

    params = [job["params"]["optimizer.learning_rate"] for job in first["jobs"]]
    assert len(params) == 5 and all(1e-3 <= p <= 1.0 for p in params)
    assert params == [job["params"]["optimizer.learning_rate"] for job in second["jobs"]]
    specs = [client.get(f"/jobs/{job['id']}").json()["spec"] for job in first["jobs"]]
    assert [s["optimizer"]["learning_rate"] for s in specs] == params
    listed = client.get("/sweeps").json()
    assert [s["id"] for s in listed["items"]] == [second["id"], first["id"]]


@pytest.mark.parametrize(
    ("overrides", "loc"),
    [
        ({"space": {"optimizer.learnin_rate": {"values": [0.1]}}},
         ["body", "space", "optimizer.learnin_rate"]),
        ({"space": {"optimizer.learning_rate": {"values": [0.1, -1.0]}}},
         ["body", "space", "optimizer.learning_rate"]),
        ({"space": {"optimizer.batch_size": {"values": [32, 1000]}}},
         ["body", "space", "optimizer.batch_size"]),
        ({"space": {"model.reg": {"uniform": [0, 1]}}}, ["body", "space", "model.reg", "num"]),
        ({"space": {"model.reg": {"uniform": [0, 1], "num": 60}}}, ["body", "space"]),
        ({"method": "random", "trials": 51}, ["body", "trials"]),
        ({"trials": 3}, ["body", "trials"]),
        ({"space": {"model": {"values": [{"loss": "svm"}]}, "model.reg": {"values": [0]}}},
         ["body", "space", "model"]),
        ({"space": {"model.reg": {"log_uniform": [1.0, 0.1]}}}, ["body", "space", "model.reg"]),
        ({"base": {"dataset": {"name": "blobs"}}}, ["body", "base"]),
        ({"successive_halving": {"eta": 3, "min_steps": 75}},
         ["body", "successive_halving", "min_steps"]),
    ],
)  # fmt: skip
def test_a_bad_space_is_422_naming_the_path(
    client: TestClient, overrides: dict[str, Any], loc: list[Any]
) -> None:
    response = client.post("/sweeps", json=sweep_request(**overrides))

    assert response.status_code == 422, response.json()
    locs = [error["loc"] for error in response.json()["errors"]]
    assert any(found[: len(loc)] == loc for found in locs), locs
    assert client.get("/sweeps").json()["items"] == []
    assert client.get("/jobs").json()["items"] == []


def test_a_sweep_whose_trials_together_store_too_much_history_is_a_422(
    client: TestClient,
) -> None:
    # Each trial stores 2,020,002 points (a loss and a learning rate at each of 1,000,000 steps,
    # accuracies every 100), within the job budget; ten of them are over the sweep's 20,000,000.
    base = {"dataset": {"name": "blobs"}, "log_every": 1,
            "optimizer": {"type": "sgd", "iterations": 1_000_000, "batch_size": 1}}  # fmt: skip
    space = {"model.reg": {"uniform": [0, 1]}}
    request = sweep_request(base=base, method="random", trials=10, space=space)

    response = client.post("/sweeps", json=request)

    assert response.status_code == 422, response.json()
    assert [error["loc"] for error in response.json()["errors"]] == [["body", "trials"]]
    assert "DESCENT_MAX_SWEEP_HISTORY_POINTS" in response.text
    assert client.get("/sweeps").json()["items"] == []
    assert client.get("/jobs").json()["items"] == []
    grid = sweep_request(base=base, space={"model.reg": {"uniform": [0, 1], "num": 10}})
    assert [e["loc"] for e in client.post("/sweeps", json=grid).json()["errors"]] == [
        ["body", "space"]
    ]
    assert client.post("/sweeps", json={**request, "trials": 9}).status_code == 202


def test_cancelling_a_sweep_cancels_queued_trials_now_and_flags_running_ones(
    client: TestClient, settings: Settings
) -> None:
    sweep = client.post("/sweeps", json=sweep_request()).json()
    database = Database(settings.database_url)
    with database.transaction() as session:  # a worker takes the first trial
        claimed = queue.claim(session, "test-worker", 30.0)
    assert claimed is not None and claimed.id == sweep["jobs"][0]["id"]

    response = client.post(f"/sweeps/{sweep['id']}/cancel")

    assert response.status_code == 202
    statuses = [job["status"] for job in response.json()["jobs"]]
    assert statuses == ["running", "cancelled", "cancelled", "cancelled"]
    assert response.json()["status"] == "running"
    with database.read() as session:
        job = session.get(Job, claimed.id)
        assert job is not None and job.status == "running" and job.cancel_requested
    database.dispose()
    assert client.post(f"/sweeps/{sweep['id']}/cancel").status_code == 202  # still one live


def test_a_finished_sweep_cannot_be_cancelled(client: TestClient, drain: Callable[[], int]) -> None:
    sweep = client.post("/sweeps", json=sweep_request()).json()
    cancelled = client.post(f"/sweeps/{sweep['id']}/cancel").json()
    drain()

    assert cancelled["status"] == "cancelled"
    assert client.get(f"/sweeps/{sweep['id']}").json()["status"] == "cancelled"
    again = client.post(f"/sweeps/{sweep['id']}/cancel")
    assert again.status_code == 409
    assert again.json()["detail"] == f"Sweep {sweep['id']} has already finished (cancelled)"
    assert client.get("/sweeps/nope").status_code == 404


def test_post_sweeps_honours_the_idempotency_key(client: TestClient) -> None:
    headers = {"Idempotency-Key": "sweep-1"}
    first = client.post("/sweeps", json=sweep_request(), headers=headers)
    again = client.post("/sweeps", json=sweep_request(), headers=headers)
    other = client.post("/sweeps", json=sweep_request(seed=9), headers=headers)

    assert (first.status_code, again.status_code, other.status_code) == (202, 202, 422)
    assert again.json() == first.json()
    assert again.headers["location"] == first.headers["location"]
    assert len(client.get("/sweeps").json()["items"]) == 1
    assert len(client.get("/jobs").json()["items"]) == 4


def test_a_failed_submission_frees_its_idempotency_key(client: TestClient) -> None:
    headers = {"Idempotency-Key": "sweep-2"}
    bad = sweep_request(space={"optimizer.learning_rate": {"values": [-1.0]}})

    assert client.post("/sweeps", json=bad, headers=headers).status_code == 422
    assert client.post("/sweeps", json=sweep_request(), headers=headers).status_code == 202


def test_successive_halving_prunes_trials_that_fall_behind(
    client: TestClient, drain: Callable[[], int]
) -> None:
    request = sweep_request(
        # Good rates first: the hopeless ones then meet them at the rung (trials run in order).
        space={"optimizer.learning_rate": {"values": [0.3, 0.1, 1e-7, 1e-8]}},
        successive_halving={"eta": 2, "min_steps": 50},
    )
    request["base"]["optimizer"]["iterations"] = 400
    request["base"]["optimizer"]["init_scale"] = 1e-3
    sweep = client.post("/sweeps", json=request).json()
    drain()

    done = client.get(f"/sweeps/{sweep['id']}").json()
    pruned = [job for job in done["jobs"] if (job["error"] or {}).get("type") == "pruned"]
    assert done["counts"]["pruned"] == len(pruned) >= 1
    assert done["status"] == "succeeded"
    assert {job["params"]["optimizer.learning_rate"] for job in pruned} <= {1e-7, 1e-8}
    for job in pruned:
        assert job["status"] == "cancelled"
        assert "top 1/2" in job["error"]["message"]
        full = client.get(f"/jobs/{job['id']}").json()
        rung = job["error"]["step"]
        # It stops at the rung it was pruned at, and reports that step: its metrics, its history
        # and its W are the ones the message judged, not a later step's.
        assert full["progress"]["step"] == rung < 400
        history = client.get(f"/jobs/{job['id']}/metrics/val_accuracy").json()
        assert history["points"][-1] == {"step": rung, "value": full["metrics"]["val_accuracy"]}
        assert f"val_accuracy {full['metrics']['val_accuracy']:.4f} at step {rung}" in (
            job["error"]["message"]
        )
        loss = client.get(f"/jobs/{job['id']}/loss?after={rung}").json()
        assert loss["points"] == []
        assert client.get(f"/jobs/{job['id']}/weights").json()["step"] == rung
    assert done["best"]["params"]["optimizer.learning_rate"] in (0.3, 0.1)
    assert all(entry["job_id"] not in {j["id"] for j in pruned} for entry in done["leaderboard"])
