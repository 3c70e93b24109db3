"""HTTP semantics the contract states: every GET route answers HEAD (the GET's status and
headers, no body, a stream never held open), and a JSON route refuses other media types (415)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.service.conftest import toy_spec


@pytest.fixture
def job_id(client: TestClient, drain) -> str:  # type: ignore[no-untyped-def]
    job_id = str(client.post("/jobs", json=toy_spec()).json()["id"])
    drain()
    return job_id


@pytest.mark.parametrize(
    "path",
    [
        "/jobs",
        "/jobs/{job}",
        "/jobs/{job}/loss?after=-1",
        "/jobs/{job}/metrics/val_accuracy",
        "/jobs/{job}/weights?format=npy",
        "/jobs/{job}/evaluation",
        "/datasets",
        "/datasets/blobs",
        "/sweeps",
        "/healthz",
        "/readyz",
        "/metrics",
        "/openapi.json",
        "/",
        "/jobs/nope",
        "/datasets/nope",
    ],
)
def test_head_answers_like_get_without_a_body(client: TestClient, job_id: str, path: str) -> None:
    url = path.replace("{job}", job_id)
    get = client.get(url)
    head = client.head(url)

    assert head.status_code == get.status_code, url
    assert head.headers["content-type"] == get.headers["content-type"]
    assert head.content == b""


@pytest.mark.timeout(30)
def test_head_on_a_live_event_stream_answers_at_once(client: TestClient) -> None:
    queued = client.post("/jobs", json=toy_spec()).json()["id"]  # no worker: it streams on

    head = client.head(f"/jobs/{queued}/events")

    assert head.status_code == 200
    assert head.headers["content-type"].startswith("text/event-stream")
    assert head.content == b""


def test_head_where_get_is_not_allowed_is_a_405_that_lists_the_methods(
    client: TestClient, job_id: str
) -> None:
    response = client.head(f"/jobs/{job_id}/cancel")

    assert response.status_code == 405
    assert response.headers["allow"] == "POST"


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "application/xml", None]
)
def test_a_json_route_refuses_another_media_type_with_a_415(
    client: TestClient, content_type: str | None
) -> None:
    headers = {} if content_type is None else {"content-type": content_type}
    body = b'{"dataset": {"name": "blobs"}, "optimizer": {"type": "sgd"}}'

    response = client.post("/jobs", content=body, headers=headers)

    assert response.status_code == 415
    assert response.headers["content-type"] == "application/problem+json"
    assert client.get("/jobs").json()["items"] == []  # nothing was created


def test_json_with_a_charset_or_a_json_suffix_is_json(client: TestClient) -> None:
    body = b'{"dataset": {"name": "blobs"}, "optimizer": {"type": "sgd", "iterations": 5}}'
    for content_type in ("application/json; charset=utf-8", "application/vnd.descent+json"):
        response = client.post("/jobs", content=body, headers={"content-type": content_type})
        assert response.status_code == 202, (content_type, response.text)
