"""GET /metrics: Prometheus text with job figures from the database and HTTP latency by route."""

from __future__ import annotations

from collections.abc import Callable

from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from tests.service.conftest import toy_spec


def samples(client: TestClient) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    found = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def test_jobs_by_status_and_queue_depth(client: TestClient, drain: Callable[[], int]) -> None:
    client.post("/jobs", json=toy_spec())
    drain()
    client.post("/jobs", json=toy_spec())
    client.post("/jobs", json=toy_spec())

    found = samples(client)

    assert found[("descent_jobs", (("status", "succeeded"),))] == 1
    assert found[("descent_jobs", (("status", "queued"),))] == 2
    assert found[("descent_queue_depth", ())] == 2
    assert ("descent_claim_latency_seconds", ()) in found
    assert found[("descent_steps_per_second", ())] == 0


def test_http_latency_is_labelled_by_route_template(client: TestClient) -> None:
    client.get("/jobs/some-id")
    client.get("/jobs/other-id")

    found = samples(client)

    key = ("descent_http_request_duration_seconds_count",
           (("method", "GET"), ("route", "/jobs/{job_id}"), ("status", "404")))  # fmt: skip
    assert found[key] == 2
    assert not any("some-id" in str(labels) for _, labels in found)
