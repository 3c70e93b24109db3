"""DELETE /sweeps/{id}: a finished sweep goes with its trials, as DELETE /jobs/{id} deletes a job;
a trial alone cannot be deleted, so that a sweep's counts stay whole."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from service.db.models import (
    Checkpoint,
    IdempotencyKey,
    Job,
    JobArray,
    JobAttempt,
    MetricPoint,
    MetricRollup,
    Sweep,
)
from service.db.session import Database
from service.jobs import queue
from tests.sweeps.conftest import sweep_request

pytestmark = pytest.mark.postgres


def _rows(database: Database) -> dict[str, int]:
    tables = (Sweep, Job, MetricPoint, MetricRollup, JobArray, Checkpoint, JobAttempt,
              IdempotencyKey)  # fmt: skip
    with database.read() as session:
        return {
            table.__tablename__: session.scalar(select(func.count()).select_from(table)) or 0
            for table in tables
        }


def _problem(response: Any, status: int) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    detail: str = response.json()["detail"]
    return detail


def test_deleting_a_finished_sweep_removes_its_trials_their_histories_and_its_key(
    client: TestClient, drain: Callable[[], int], database: Database
) -> None:
    headers = {"Idempotency-Key": "sweep-to-delete"}
    sweep = client.post("/sweeps", json=sweep_request(), headers=headers).json()
    drain()
    kept = client.post("/jobs", json=sweep_request()["base"]).json()  # not the sweep's
    drain()
    trials = [job["id"] for job in sweep["jobs"]]
    assert client.get(f"/jobs/{trials[0]}/weights").status_code == 200

    response = client.delete(f"/sweeps/{sweep['id']}")

    assert response.status_code == 204 and response.content == b""
    assert client.get(f"/sweeps/{sweep['id']}").status_code == 404
    assert client.get("/sweeps").json()["items"] == []
    for trial in trials:
        assert client.get(f"/jobs/{trial}").status_code == 404
        assert client.get(f"/jobs/{trial}/loss").status_code == 404
    assert [job["id"] for job in client.get("/jobs").json()["items"]] == [kept["id"]]
    alone = _rows(database)
    assert (alone["sweeps"], alone["jobs"], alone["idempotency_keys"]) == (0, 1, 0)
    assert client.delete(f"/jobs/{kept['id']}").status_code == 204
    assert set(_rows(database).values()) == {0}
    assert _problem(client.delete(f"/sweeps/{sweep['id']}"), 404)
    # The key went with the sweep: a replay submits the sweep again instead of naming a gone one.
    again = client.post("/sweeps", json=sweep_request(), headers=headers)
    assert again.status_code == 202 and again.json()["id"] != sweep["id"]


def test_a_sweep_with_queued_or_running_trials_cannot_be_deleted(
    client: TestClient, database: Database
) -> None:
    sweep = client.post("/sweeps", json=sweep_request()).json()
    with database.transaction() as session:
        claimed = queue.claim(session, "busy-worker", 60.0)
    assert claimed is not None and claimed.id == sweep["jobs"][0]["id"]

    detail = _problem(client.delete(f"/sweeps/{sweep['id']}"), 409)

    assert "cancel it first" in detail and f"POST /sweeps/{sweep['id']}/cancel" in detail
    client.post(f"/sweeps/{sweep['id']}/cancel")  # the queued trials stop, the running one not yet
    assert "1 queued or running trial" in _problem(client.delete(f"/sweeps/{sweep['id']}"), 409)
    assert client.get(f"/sweeps/{sweep['id']}").json()["n_trials"] == 4
    assert len(client.get("/jobs").json()["items"]) == 4


def test_a_sweep_whose_trial_a_live_job_is_around_cannot_be_deleted(
    client: TestClient, drain: Callable[[], int]
) -> None:
    sweep = client.post("/sweeps", json=sweep_request()).json()
    drain()
    trial = sweep["jobs"][2]["id"]
    around = {"task": "landscape", "dataset": sweep_request()["base"]["dataset"],
              "landscape": {"around": trial, "points": 3}}  # fmt: skip
    landscape = client.post("/jobs", json=around)
    assert landscape.status_code == 202, landscape.json()

    detail = _problem(client.delete(f"/sweeps/{sweep['id']}"), 409)

    assert landscape.json()["id"] in detail and sweep["id"] in detail
    assert client.get(f"/jobs/{trial}/weights").status_code == 200
    assert client.get(f"/sweeps/{sweep['id']}").json()["status"] == "succeeded"
    client.post(f"/jobs/{landscape.json()['id']}/cancel")
    assert client.delete(f"/sweeps/{sweep['id']}").status_code == 204


def test_a_trial_cannot_be_deleted_on_its_own(client: TestClient, drain: Callable[[], int]) -> None:
    sweep = client.post("/sweeps", json=sweep_request()).json()
    drain()
    trial = sweep["jobs"][1]["id"]

    detail = _problem(client.delete(f"/jobs/{trial}"), 409)

    assert f"DELETE /sweeps/{sweep['id']}" in detail
    assert client.get(f"/jobs/{trial}").status_code == 200
    done = client.get(f"/sweeps/{sweep['id']}").json()
    assert (done["status"], done["counts"]["succeeded"], len(done["jobs"])) == ("succeeded", 4, 4)


def test_the_api_document_lists_the_answers_of_delete_sweeps(client: TestClient) -> None:
    operation = client.get("/openapi.json").json()["paths"]["/sweeps/{sweep_id}"]["delete"]

    responses = operation["responses"]
    assert {"204", "404", "409"} <= set(responses)
    for status in ("404", "409"):
        assert "application/problem+json" in responses[status]["content"]
    assert "content" not in responses["204"]
    assert client.delete("/sweeps/nope").status_code == 404
