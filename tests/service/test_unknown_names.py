"""Names the contract enumerates are checked, not matched against nothing: an unknown task
filter or metric series is a 422 naming it, on both databases, never an empty 200."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.service.conftest import toy_spec


def test_an_unknown_task_filter_is_a_422_naming_task(client: TestClient) -> None:
    response = client.get("/jobs?task=trian")

    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"] == ["query", "task"]
    assert client.get("/jobs?task=landscape").status_code == 200


def test_an_unknown_series_is_a_422_naming_it(client: TestClient, drain) -> None:  # type: ignore[no-untyped-def]
    job_id = client.post("/jobs", json=toy_spec()).json()["id"]
    drain()

    for query in ("", "?after=-1", "?max_points=10"):
        response = client.get(f"/jobs/{job_id}/metrics/val_acuracy{query}")
        assert response.status_code == 422, query
        assert response.json()["errors"][0]["loc"] == ["path", "series"]
    assert client.get(f"/jobs/{job_id}/metrics/val_accuracy").json()["points"]
    # A known series the job has not recorded is an empty page, not an error.
    assert client.get(f"/jobs/{job_id}/metrics/best_loss").json()["points"] == []
