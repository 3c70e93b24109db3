"""Listing jobs: newest first, filters, cursor pages."""

from __future__ import annotations

from collections.abc import Callable

from fastapi.testclient import TestClient
from sqlalchemy import event

from tests.service.conftest import toy_spec


def test_jobs_are_listed_newest_first_in_cursor_pages(client: TestClient) -> None:
    ids = [client.post("/jobs", json=toy_spec(name=f"j{i}")).json()["id"] for i in range(5)]

    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, str | int] = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = client.get("/jobs", params=params).json()
        seen += [job["id"] for job in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break

    assert seen == list(reversed(ids))


def test_jobs_can_be_filtered_by_status(client: TestClient, drain: Callable[[], int]) -> None:
    done = client.post("/jobs", json=toy_spec()).json()["id"]
    drain()
    waiting = client.post("/jobs", json=toy_spec()).json()["id"]

    queued = client.get("/jobs", params={"status": "queued"}).json()["items"]
    succeeded = client.get("/jobs", params={"status": "succeeded"}).json()["items"]

    assert [job["id"] for job in queued] == [waiting]
    assert [job["id"] for job in succeeded] == [done]
    assert client.get("/jobs", params={"task": "landscape"}).json()["items"] == []


def test_a_forged_cursor_is_a_422(client: TestClient) -> None:
    response = client.get("/jobs", params={"cursor": "!!!"})

    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"] == ["query", "cursor"]


def test_a_bad_status_filter_is_a_422(client: TestClient) -> None:
    assert client.get("/jobs", params={"status": "sleeping"}).status_code == 422


def test_a_listing_never_reads_the_large_columns(
    client: TestClient, drain: Callable[[], int]
) -> None:
    """Task results and evaluations can be large: a page of jobs does not read them."""
    for _ in range(2):
        client.post("/jobs", json=toy_spec())
    drain()
    statements: list[str] = []

    def seen(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        statements.append(statement)

    engine = client.app.state.database.engine  # type: ignore[attr-defined]
    event.listen(engine, "before_cursor_execute", seen)
    try:
        assert len(client.get("/jobs").json()["items"]) == 2
    finally:
        event.remove(engine, "before_cursor_execute", seen)

    listing = [s for s in statements if "FROM jobs" in s]
    assert listing
    assert not any("jobs.result" in s or "jobs.evaluation" in s for s in listing)
