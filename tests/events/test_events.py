"""GET /jobs/{id}/events on finished jobs: the whole history, then `end`; resuming by id."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.events import stream
from tests.events.sse import Event, events_only, parse
from tests.service.conftest import toy_spec

Drain = Callable[[], int]


def strict_json(text: str) -> Any:
    def reject(constant: str) -> None:
        raise AssertionError(f"non-finite number {constant} in an event")

    return json.loads(text, parse_constant=reject)


def read_events(client: TestClient, job_id: str, **kwargs: Any) -> list[Event]:
    with client.stream("GET", f"/jobs/{job_id}/events", timeout=30, **kwargs) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        return events_only(parse(response.iter_lines()))


def all_points(client: TestClient, job_id: str, series: str) -> list[dict[str, Any]]:
    path = f"/jobs/{job_id}/loss" if series == "loss" else f"/jobs/{job_id}/metrics/{series}"
    points: list[dict[str, Any]] = client.get(path, params={"limit": 10_000}).json()["points"]
    return points


def delivered(events: list[Event]) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for event in events:
        if event.event == "loss":
            found.setdefault("loss", []).extend(strict_json(event.data)["points"])
        elif event.event == "metrics":
            data = strict_json(event.data)
            found.setdefault(data["series"], []).extend(data["points"])
    return found


def test_an_unknown_job_is_a_404_problem_before_any_streaming(client: TestClient) -> None:
    response = client.get("/jobs/nope/events")

    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["detail"] == "No job with id 'nope'"


def test_a_finished_job_streams_its_history_then_ends(client: TestClient, drain: Drain) -> None:
    job_id = client.post("/jobs", json=toy_spec()).json()["id"]
    drain()
    final = client.get(f"/jobs/{job_id}").json()

    events = read_events(client, job_id)

    kinds = [event.event for event in events]
    assert kinds[0] == "status" and kinds[-1] == "end"
    assert events[0].retry == 1000 and events[0].id == "-1"
    assert set(kinds) == {"status", "metrics", "loss", "end"}
    assert strict_json(events[0].data) == final
    assert strict_json(events[-1].data) == final
    got = delivered(events)
    for series in ("loss", "learning_rate", "train_accuracy", "val_accuracy"):
        assert got[series] == all_points(client, job_id, series), series
    assert [p["step"] for p in got["loss"]] == list(range(200))
    assert events[-1].id == "199"


def test_last_event_id_resumes_right_after_it(client: TestClient, drain: Drain) -> None:
    job_id = client.post("/jobs", json=toy_spec()).json()["id"]
    drain()

    by_header = delivered(read_events(client, job_id, headers={"Last-Event-ID": "149"}))
    by_query = delivered(read_events(client, job_id, params={"last_event_id": 149}))
    header_wins = delivered(
        read_events(client, job_id, headers={"Last-Event-ID": "189"}, params={"last_event_id": 9})
    )

    assert [p["step"] for p in by_header["loss"]] == list(range(150, 200))
    assert by_query == by_header
    assert [p["step"] for p in by_header["val_accuracy"]] == [150, 199]
    assert [p["step"] for p in header_wins["loss"]] == list(range(190, 200))


def test_a_resume_after_the_last_step_gets_status_and_end_only(
    client: TestClient, drain: Drain
) -> None:
    job_id = client.post("/jobs", json=toy_spec()).json()["id"]
    drain()

    events = read_events(client, job_id, headers={"Last-Event-ID": "199"})

    assert [event.event for event in events] == ["status", "end"]
    assert events[-1].id == "199"


@pytest.mark.parametrize("value", ["abc", "-2", "1.5"])
def test_a_bad_last_event_id_is_a_422_problem(client: TestClient, drain: Drain, value: str) -> None:
    job_id = client.post("/jobs", json=toy_spec()).json()["id"]

    response = client.get(f"/jobs/{job_id}/events", headers={"Last-Event-ID": value})

    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"] == ["header", "Last-Event-ID"]


def test_a_long_history_comes_in_batches_whose_ids_resume_safely(
    client: TestClient, drain: Drain, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(stream, "SERIES_LIMIT", 30)
    job_id = client.post("/jobs", json=toy_spec()).json()["id"]
    drain()

    events = read_events(client, job_id)

    loss_events = [event for event in events if event.event == "loss"]
    assert len(loss_events) == 7  # 200 steps, 30 a batch
    assert [int(event.id or "") for event in loss_events] == [29, 59, 89, 119, 149, 179, 199]
    got = delivered(events)
    assert [p["step"] for p in got["loss"]] == list(range(200))
    assert got["learning_rate"] == all_points(client, job_id, "learning_rate")
    # Inside a batch, the metrics events keep the previous id: a client cut off after them
    # resumes before the batch and gets them again instead of missing the loss points.
    first_batch = events[1 : events.index(loss_events[0]) + 1]
    assert [event.id for event in first_batch[:-1]] == ["-1"] * (len(first_batch) - 1)


def test_a_diverged_job_ends_failed_with_finite_json_only(client: TestClient, drain: Drain) -> None:
    spec = toy_spec(
        optimizer={"type": "sgd", "learning_rate": 1e30, "batch_size": 32, "iterations": 200},
        model={"loss": "softmax", "reg": 1e10},
    )
    job_id = client.post("/jobs", json=spec).json()["id"]
    drain()

    events = read_events(client, job_id)

    end = strict_json(events[-1].data)
    assert events[-1].event == "end"
    assert end["status"] == "failed" and end["error"]["type"] == "diverged"
    for event in events:
        strict_json(event.data)


def test_the_events_endpoint_is_described_in_the_openapi_document(client: TestClient) -> None:
    operation = client.get("/openapi.json").json()["paths"]["/jobs/{job_id}/events"]["get"]

    assert "text/event-stream" in operation["responses"]["200"]["content"]
    assert "404" in operation["responses"]
    for word in ("`loss`", "`metrics`", "`status`", "`end`", "Last-Event-ID"):
        assert word in operation["description"]
    names = {parameter["name"] for parameter in operation["parameters"]}
    assert names == {"job_id", "Last-Event-ID", "last_event_id"}
