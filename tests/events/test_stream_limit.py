"""DESCENT_MAX_EVENT_STREAMS: one stream too many is a 503 before it starts; a stream that ends
(its client gone) gives its place back."""

from __future__ import annotations

import time
from contextlib import ExitStack
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from service.events import stream
from service.settings import Settings
from tests.conftest import make_settings
from tests.service.conftest import toy_spec

LIMIT = 2


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return make_settings(database_url, tmp_path, max_event_streams=LIMIT)


def opened_within(client: TestClient, url: str, seconds: float) -> int:
    """The status of GET `url` once it is no longer 503, or 503 after `seconds`."""
    deadline = time.monotonic() + seconds
    while True:
        with client.stream("GET", url, timeout=30) as response:
            if response.status_code != 503 or time.monotonic() > deadline:
                return response.status_code
        time.sleep(0.02)


@pytest.mark.timeout(60)
def test_a_stream_past_the_limit_is_a_503_until_one_closes(
    client: TestClient, fast_stream: stream.Timing
) -> None:
    jobs = [client.post("/jobs", json=toy_spec()).json()["id"] for _ in range(LIMIT + 1)]
    with ExitStack() as streams:
        open_ = [
            streams.enter_context(client.stream("GET", f"/jobs/{job}/events", timeout=30))
            for job in jobs[:LIMIT]
        ]
        assert [response.status_code for response in open_] == [200] * LIMIT

        refused = client.get(f"/jobs/{jobs[LIMIT]}/events")

        assert refused.status_code == 503
        assert refused.headers["content-type"] == "application/problem+json"
        assert int(refused.headers["retry-after"]) > 0
        assert "DESCENT_MAX_EVENT_STREAMS" in refused.json()["detail"]
        assert next(open_[0].iter_lines()).startswith("event: status")  # the others run on
        open_[0].close()

        assert opened_within(client, f"/jobs/{jobs[LIMIT]}/events", 5.0) == 200


def test_a_refused_or_failed_request_holds_no_stream(client: TestClient) -> None:
    job = client.post("/jobs", json=toy_spec()).json()["id"]
    for _ in range(LIMIT + 1):
        assert client.get("/jobs/nope/events").status_code == 404
        assert client.get(f"/jobs/{job}/events?last_event_id=-5").status_code == 422
        assert client.head(f"/jobs/{job}/events").status_code == 200

    assert opened_within(client, f"/jobs/{job}/events", 0.0) == 200
