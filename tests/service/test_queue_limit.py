"""DESCENT_MAX_QUEUED_JOBS: a job or sweep that would overfill the queue is a 503 creating
nothing, while replays of jobs already created still replay."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.db.session import Database
from service.errors import Busy
from service.jobs import repository, service
from service.jobs.spec import JobSpec
from service.settings import Settings
from tests.conftest import make_settings
from tests.service.conftest import toy_spec
from tests.sweeps.conftest import sweep_request

LIMIT = 5


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return make_settings(database_url, tmp_path, max_queued_jobs=LIMIT)


def queued(client: TestClient) -> int:
    return len(client.get("/jobs", params={"status": "queued"}).json()["items"])


def assert_busy(response: Any) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert int(response.headers["retry-after"]) > 0
    assert "DESCENT_MAX_QUEUED_JOBS" in response.json()["detail"]


def test_a_job_past_the_queue_limit_is_a_503_and_creates_nothing(client: TestClient) -> None:
    for _ in range(LIMIT):
        assert client.post("/jobs", json=toy_spec()).status_code == 202

    assert_busy(client.post("/jobs", json=toy_spec()))
    assert queued(client) == LIMIT


def test_a_cancelled_job_makes_room(client: TestClient) -> None:
    ids = [client.post("/jobs", json=toy_spec()).json()["id"] for _ in range(LIMIT)]
    client.post(f"/jobs/{ids[0]}/cancel")

    assert client.post("/jobs", json=toy_spec()).status_code == 202


def test_a_replay_still_replays_when_the_queue_is_full(client: TestClient) -> None:
    headers = {"Idempotency-Key": "full-1"}
    first = client.post("/jobs", json=toy_spec(), headers=headers)
    for _ in range(LIMIT - 1):
        client.post("/jobs", json=toy_spec())

    again = client.post("/jobs", json=toy_spec(), headers=headers)

    assert (first.status_code, again.status_code) == (202, 202)
    assert again.json() == first.json()
    assert_busy(client.post("/jobs", json=toy_spec(), headers={"Idempotency-Key": "full-2"}))
    assert queued(client) == LIMIT


def test_a_sweep_that_would_overfill_the_queue_is_a_503_and_creates_nothing(
    client: TestClient,
) -> None:
    for _ in range(LIMIT - 3):  # 2 queued: a 4-trial grid does not fit, a 3-trial one does
        client.post("/jobs", json=toy_spec())

    assert_busy(client.post("/sweeps", json=sweep_request()))
    assert client.get("/sweeps").json()["items"] == []
    assert queued(client) == LIMIT - 3
    three = sweep_request(space={"optimizer.learning_rate": {"values": [0.3, 0.1, 0.03]}})
    assert client.post("/sweeps", json=three).status_code == 202
    assert queued(client) == LIMIT


def test_a_sweep_larger_than_the_whole_queue_is_a_422(client: TestClient) -> None:
    space = {
        "optimizer.learning_rate": {"values": [0.3, 0.1, 0.03]},
        "model.reg": {"values": [0.0, 0.1]},
    }
    response = client.post("/sweeps", json=sweep_request(space=space))  # 6 trials, room for 5

    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"] == ["body", "space"]


@pytest.mark.parametrize(
    ("method", "path", "statuses"),
    [
        ("post", "/jobs", {"413", "503"}),
        ("post", "/sweeps", {"413", "503"}),
        ("post", "/jobs/{job_id}/predict", {"413"}),
        ("get", "/jobs/{job_id}/events", {"503"}),
    ],
)
def test_the_limits_answers_are_documented(
    client: TestClient, method: str, path: str, statuses: set[str]
) -> None:
    responses = client.get("/openapi.json").json()["paths"][path][method]["responses"]

    assert statuses <= set(responses)


def test_two_submits_at_once_cannot_both_take_the_last_place(
    settings: Settings, database: Database
) -> None:
    """The first submit's transaction holds the queue's last place until it ends: a second
    submit counting meanwhile waits for it, then finds the queue full (on SQLite the write
    transaction's BEGIN IMMEDIATE is the lock, on PostgreSQL an advisory lock)."""
    for _ in range(LIMIT - 1):
        with database.write() as session:
            service.submit(session, JobSpec.model_validate(toy_spec()), settings)
            session.commit()
    second: list[BaseException | None] = []

    def submit_meanwhile() -> None:
        try:
            with database.write() as session:
                service.submit(session, JobSpec.model_validate(toy_spec()), settings)
                session.commit()
            second.append(None)
        except BaseException as error:  # the outcome is what the test checks
            second.append(error)

    with database.write() as session:
        service.submit(session, JobSpec.model_validate(toy_spec()), settings)
        other = threading.Thread(target=submit_meanwhile)
        other.start()
        other.join(timeout=1.0)
        assert other.is_alive(), "the second submit counted while the first had not committed"
        session.commit()
    other.join(timeout=30)

    assert isinstance(second[0], Busy)
    with database.read() as session:
        assert repository.queued_count(session) == LIMIT
