"""Idempotency-Key on POST /jobs: replay, conflict while in flight, 422 for another body."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from fastapi.testclient import TestClient

from service.db.session import Database
from service.idempotency import claim
from service.settings import Settings
from tests.service.conftest import toy_spec


def test_the_same_key_and_body_replay_the_first_response(client: TestClient) -> None:
    headers = {"Idempotency-Key": "abc-123"}
    first = client.post("/jobs", json=toy_spec(), headers=headers)
    again = client.post("/jobs", json=toy_spec(), headers=headers)

    assert first.status_code == again.status_code == 202
    assert again.json() == first.json()
    assert again.headers["location"] == first.headers["location"]
    assert len(client.get("/jobs").json()["items"]) == 1


def test_the_same_key_with_another_body_is_a_422(client: TestClient) -> None:
    headers = {"Idempotency-Key": "abc-123"}
    client.post("/jobs", json=toy_spec(), headers=headers)

    response = client.post("/jobs", json=toy_spec(seed=1), headers=headers)

    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"] == ["header", "Idempotency-Key"]


def test_a_key_still_in_flight_is_a_409(client: TestClient, settings: Settings) -> None:
    database = Database(settings.database_url)
    body = toy_spec()
    # Another request with this key has started and not finished.
    assert claim(database, "POST /jobs", "busy-key", body, ttl=60) is None
    database.dispose()

    response = client.post("/jobs", json=body, headers={"Idempotency-Key": "busy-key"})

    assert response.status_code == 409
    assert response.headers["content-type"].startswith("application/problem+json")


def test_different_keys_create_different_jobs(client: TestClient) -> None:
    a = client.post("/jobs", json=toy_spec(), headers={"Idempotency-Key": "a"}).json()
    b = client.post("/jobs", json=toy_spec(), headers={"Idempotency-Key": "b"}).json()

    assert a["id"] != b["id"]


def test_a_request_that_failed_validation_does_not_burn_its_key(client: TestClient) -> None:
    headers = {"Idempotency-Key": "k"}
    bad = toy_spec(optimizer={"type": "sgd", "batch_size": 100_000})
    assert client.post("/jobs", json=bad, headers=headers).status_code == 422

    good = client.post("/jobs", json=bad | {"optimizer": {"type": "sgd"}}, headers=headers)

    assert good.status_code == 202


def test_concurrent_resubmissions_create_exactly_one_job(client: TestClient) -> None:
    def submit(_: int) -> Any:
        return client.post("/jobs", json=toy_spec(), headers={"Idempotency-Key": "race"})

    with ThreadPoolExecutor(max_workers=10) as pool:
        responses = list(pool.map(submit, range(30)))

    created = {r.json()["id"] for r in responses if r.status_code == 202}
    assert len(created) == 1
    assert {r.status_code for r in responses} <= {202, 409}
    assert [job["id"] for job in client.get("/jobs").json()["items"]] == list(created)
    replay = client.post("/jobs", json=toy_spec(), headers={"Idempotency-Key": "race"})
    assert replay.json()["id"] in created


def test_a_key_whose_job_was_deleted_submits_the_job_again(
    client: TestClient, drain: Callable[[], int]
) -> None:
    headers = {"Idempotency-Key": "deleted"}
    first = client.post("/jobs", json=toy_spec(), headers=headers).json()
    drain()
    assert client.delete(f"/jobs/{first['id']}").status_code == 204

    again = client.post("/jobs", json=toy_spec(), headers=headers)

    assert again.status_code == 202
    assert again.json()["id"] != first["id"]
    assert client.get(again.headers["location"]).json()["status"] == "queued"
    replay = client.post("/jobs", json=toy_spec(), headers=headers)
    assert replay.json() == again.json()


def test_deleting_a_job_keeps_the_keys_of_other_jobs(
    client: TestClient, drain: Callable[[], int]
) -> None:
    kept = client.post("/jobs", json=toy_spec(), headers={"Idempotency-Key": "kept"}).json()
    gone = client.post("/jobs", json=toy_spec(seed=1), headers={"Idempotency-Key": "gone"}).json()
    drain()
    assert client.delete(f"/jobs/{gone['id']}").status_code == 204

    replay = client.post("/jobs", json=toy_spec(), headers={"Idempotency-Key": "kept"})

    assert replay.json()["id"] == kept["id"]
