"""Step cursors are 64-bit integers on both databases: one beyond that range is a 422 naming the
parameter (SQLite's driver cannot bind it), and the range's last value reads an empty tail."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.service.conftest import toy_spec

BEYOND = str(2**63)
LAST = str(2**63 - 1)


@pytest.fixture
def job_id(client: TestClient, drain) -> str:  # type: ignore[no-untyped-def]
    job = client.post("/jobs", json=toy_spec()).json()
    drain()
    return str(job["id"])


@pytest.mark.parametrize(
    ("query", "name"),
    [
        (f"after={BEYOND}", "after"),
        (f"max_points=10&start={BEYOND}", "start"),
        (f"max_points=10&end={BEYOND}", "end"),
        (f"after=-{BEYOND}", "after"),
    ],
)
@pytest.mark.parametrize("series", ["loss", "metrics/val_accuracy"])
def test_a_step_beyond_64_bits_is_a_422_naming_it(
    client: TestClient, job_id: str, series: str, query: str, name: str
) -> None:
    response = client.get(f"/jobs/{job_id}/{series}?{query}")

    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["errors"][0]["loc"] == ["query", name]


def test_the_last_64_bit_step_reads_an_empty_page(client: TestClient, job_id: str) -> None:
    response = client.get(f"/jobs/{job_id}/loss?after={LAST}")

    assert response.status_code == 200
    assert response.json()["points"] == []
    window = client.get(f"/jobs/{job_id}/loss?max_points=10&start=0&end={LAST}")
    assert window.status_code == 200 and window.json()["points"]


@pytest.mark.parametrize("where", ["header", "query"])
def test_a_last_event_id_beyond_64_bits_is_a_422_before_the_stream(
    client: TestClient, job_id: str, where: str
) -> None:
    if where == "header":
        response = client.get(f"/jobs/{job_id}/events", headers={"Last-Event-ID": BEYOND})
    else:
        response = client.get(f"/jobs/{job_id}/events?last_event_id={BEYOND}")

    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"][0] == where
