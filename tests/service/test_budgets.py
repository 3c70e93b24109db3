"""What a request can make the server spend is bounded, with the limit named in the answer:
a job's data, W, task result and history are priced at submit (422 naming the field), an upload
too wide to train on is refused, uploads share a storage quota and a full disk is a 507 with
nothing kept, and a request body must arrive in time (408)."""

from __future__ import annotations

import errno
import io
from collections.abc import Iterator, MutableMapping
from pathlib import Path
from typing import Any

import anyio
import numpy as np
import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.jobs.budget import history_points
from service.jobs.spec import JobSpec
from service.request_bodies import RequestBodyLimits
from tests.conftest import make_settings
from tests.service.conftest import toy_spec
from worker.engine.search import (
    LocalSearchConfig,
    init_local_search_state,
    init_random_search_state,
    run_local_search,
    run_random_search,
)
from worker.engine.train import TrainData, init_state, run
from worker.train_job import History
from worker.training import search_config, train_config


@pytest.fixture
def budget_client(database_url: str, tmp_path: Path) -> Iterator[TestClient]:
    settings = make_settings(
        database_url,
        tmp_path,
        max_job_data_bytes=1_000_000,
        max_weights_values=5_000,
        max_result_entries=1_000,
        max_job_history_points=1_000,
        storage_quota_bytes=200_000,
    )
    with TestClient(create_app(settings)) as client:
        yield client


def npz(rows: int, features: int, classes: int = 2) -> bytes:
    buffer = io.BytesIO()
    rng = np.random.default_rng(0)
    y = np.arange(rows) % classes
    np.savez(buffer, X_train=rng.standard_normal((rows, features)), y_train=y)
    return buffer.getvalue()


def errors(response: Any) -> list[list[Any]]:
    return [error["loc"] for error in response.json()["errors"]]


def test_a_job_whose_data_is_over_the_budget_is_a_422_naming_the_data_set(
    budget_client: TestClient,
) -> None:
    # blobs: 2,000 rows x (2 + 1) x 4 bytes fits; x (200 + 1) x 4 does not.
    small = {"name": "blobs", "n_train": 1000, "n_val": 500, "n_test": 500}
    assert budget_client.post("/jobs", json=toy_spec(dataset=small)).status_code == 202

    wide = budget_client.post("/jobs", json=toy_spec(dataset={**small, "n_features": 200}))

    assert wide.status_code == 422
    assert ["body", "dataset"] in errors(wide)
    assert "DESCENT_MAX_JOB_DATA_BYTES" in wide.text
    float32 = budget_client.post(
        "/jobs", json=toy_spec(dataset={**small, "n_features": 80}, dtype="float32")
    )
    float64 = budget_client.post(
        "/jobs", json=toy_spec(dataset={**small, "n_features": 80}, dtype="float64")
    )
    assert (float32.status_code, float64.status_code) == (202, 422)


def test_a_w_over_the_budget_is_a_422(budget_client: TestClient) -> None:
    dataset = {"name": "blobs", "n_train": 20, "n_val": 5, "n_test": 5}
    dataset |= {"n_features": 2_000, "n_classes": 3}  # W: 3 x 2,001 entries

    response = budget_client.post("/jobs", json=toy_spec(dataset=dataset))

    assert response.status_code == 422
    assert "DESCENT_MAX_WEIGHTS_VALUES" in response.text


def test_a_gradient_check_of_every_entry_of_a_wide_w_is_a_422_naming_num_checks(
    budget_client: TestClient,
) -> None:
    dataset = {"name": "blobs", "n_train": 20, "n_val": 5, "n_test": 5}
    dataset |= {"n_features": 600, "n_classes": 3}  # 1,803 entries
    spec = toy_spec(dataset=dataset, task="gradient_check", gradient_check={"num_checks": None})
    spec.pop("optimizer")

    response = budget_client.post("/jobs", json=spec)

    assert response.status_code == 422
    assert errors(response) == [["body", "gradient_check", "num_checks"]]
    spec["gradient_check"] = {"num_checks": 100}
    assert budget_client.post("/jobs", json=spec).status_code == 202


def stored_points(spec: JobSpec) -> int:
    """The points the worker's run of `spec` writes, on a small data set, in chunks of 7 steps."""
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((40, 4)).astype(np.float32), np.arange(40) % 3
    if not spec.is_search:
        config, history = train_config(spec), History()
        chunks = run(init_state(config, 3, 4), config, TrainData(X, y, X, y), chunk_steps=7)
        return sum(len(points.steps) for chunk in chunks for points in history.add(chunk))
    search = search_config(spec)
    if isinstance(search, LocalSearchConfig):
        found = run_local_search(init_local_search_state(search, 3, 4), search, X, y, chunk_steps=7)
    else:
        found = run_random_search(init_random_search_state(search, 3, 4), search, X, y,
                                  chunk_steps=7)  # fmt: skip
    return sum(2 * int(chunk.steps.size) for chunk in found)  # loss and best_loss


@pytest.mark.parametrize("iterations", [1, 2, 3, 10, 21, 22])
@pytest.mark.parametrize(("log_every", "eval_every"), [(1, 0), (1, 1), (3, 5), (7, 2), (30, 10)])
def test_the_history_budget_counts_the_points_a_train_job_stores(
    iterations: int, log_every: int, eval_every: int
) -> None:
    optimizer = {"type": "sgd", "learning_rate": 0.1, "batch_size": 8, "iterations": iterations}
    spec = JobSpec.model_validate(
        toy_spec(optimizer=optimizer, log_every=log_every, eval_every=eval_every)
    )

    assert history_points(spec) == stored_points(spec)


@pytest.mark.parametrize(
    "optimizer",
    [{"type": "random_search", "trials": 23}, {"type": "random_local_search", "iterations": 23}],
)
@pytest.mark.parametrize("log_every", [1, 4, 23, 50])
def test_the_history_budget_counts_the_points_a_search_stores(
    optimizer: dict[str, Any], log_every: int
) -> None:
    spec = JobSpec.model_validate(toy_spec(optimizer=optimizer, log_every=log_every))

    assert history_points(spec) == stored_points(spec)


def test_a_job_whose_history_is_over_the_budget_is_a_422_naming_its_steps_and_log_every(
    budget_client: TestClient,
) -> None:
    # 1,000 points allowed: a loss and a learning rate at each of 500 steps, without evaluations.
    at_budget = {"type": "sgd", "learning_rate": 0.1, "batch_size": 32, "iterations": 500}
    over = toy_spec(optimizer={**at_budget, "iterations": 501}, eval_every=0)

    response = budget_client.post("/jobs", json=over)

    assert response.status_code == 422
    assert errors(response) == [["body", "optimizer", "iterations"], ["body", "log_every"]]
    assert "DESCENT_MAX_JOB_HISTORY_POINTS" in response.text
    assert budget_client.get("/jobs").json()["items"] == []
    # Every log_every-th step and the last: 501 points of each series at log_every 1, 251 at 2.
    assert budget_client.post("/jobs", json={**over, "log_every": 2}).status_code == 202
    at = toy_spec(optimizer=at_budget, eval_every=0)
    assert budget_client.post("/jobs", json=at).status_code == 202
    searched = toy_spec(optimizer={"type": "random_search", "trials": 501}, eval_every=0)
    assert errors(budget_client.post("/jobs", json=searched))[0] == ["body", "optimizer", "trials"]


def test_an_upload_too_wide_to_train_on_is_refused(budget_client: TestClient) -> None:
    response = budget_client.post(
        "/datasets", files={"file": ("wide.npz", npz(rows=30, features=3_000))}
    )

    assert response.status_code == 422
    assert errors(response) == [["body", "file", "X_train"]]
    assert budget_client.get("/datasets").json()["items"][-1]["builtin"]


def test_uploads_past_the_storage_quota_are_a_507_and_nothing_is_kept(
    budget_client: TestClient, tmp_path: Path
) -> None:
    first = budget_client.post("/datasets", files={"file": ("a.npz", npz(rows=800, features=10))})
    assert first.status_code == 201, first.text  # about 80 KB stored of the 200 KB quota

    second = budget_client.post("/datasets", files={"file": ("b.npz", npz(rows=1600, features=10))})

    assert second.status_code == 507
    assert second.headers["content-type"] == "application/problem+json"
    assert "DESCENT_STORAGE_QUOTA_BYTES" in second.text
    uploads = [d for d in budget_client.get("/datasets").json()["items"] if not d["builtin"]]
    assert [d["id"] for d in uploads] == [first.json()["id"]]
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == [first.json()["id"]]


def test_a_full_disk_is_a_507_and_nothing_is_kept(
    budget_client: TestClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_save = np.save

    def full_after_the_first_file(path: Any, array: Any, **kwargs: Any) -> None:
        if Path(path).name != "X_train.npy":
            raise OSError(errno.ENOSPC, "No space left on device")
        real_save(path, array, **kwargs)

    monkeypatch.setattr(np, "save", full_after_the_first_file)

    response = budget_client.post("/datasets", files={"file": ("a.npz", npz(100, 4))})

    assert response.status_code == 507
    assert "no room" in response.json()["detail"]
    assert [d for d in budget_client.get("/datasets").json()["items"] if not d["builtin"]] == []
    assert list((tmp_path / "data").iterdir()) == []


def test_a_body_that_does_not_arrive_in_time_is_a_408() -> None:
    answered: list[dict[str, Any]] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        while (await receive()).get("more_body"):
            pass
        raise AssertionError("the app must not see the whole body")

    async def trickle() -> dict[str, Any]:
        await anyio.sleep(0.05)
        return {"type": "http.request", "body": b"x", "more_body": True}

    async def send(message: MutableMapping[str, Any]) -> None:
        answered.append(dict(message))

    limits = RequestBodyLimits(app, upload_bytes=10**6, json_bytes=10**6, timeout_seconds=0.3)
    scope = {"type": "http", "method": "POST", "path": "/jobs", "headers": []}

    async def run() -> None:
        with anyio.fail_after(5):
            await limits(scope, trickle, send)

    anyio.run(run)

    assert answered[0]["status"] == 408
    assert b"DESCENT_REQUEST_BODY_TIMEOUT_SECONDS" in answered[1]["body"]
