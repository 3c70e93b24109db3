"""The poll cache (DESCENT_POLL_CACHE_BYTES, on by default): hits are byte-identical to the
endpoint's answers, commits by other processes show within the staleness bound, the API's own
writes at once, errors are never kept, memory stays under its cap, the bearer token is checked
before the cache, and the watcher rests while nobody polls."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update
from starlette.types import Message, Receive, Scope, Send

from service.app import create_app
from service.db.models import Job
from service.db.session import Database
from service.jobs import poll_cache
from service.jobs.poll_cache import PollCache, PollCacheLayer
from service.settings import Settings
from tests.conftest import make_settings
from tests.service.test_poll_reads import add_job, append

STALENESS = 0.1
PATHS = (
    "/jobs/j",
    "/jobs/j/loss",
    "/jobs/j/loss?after=3&limit=2",
    "/jobs/j/loss?max_points=4",
    "/jobs/j/metrics/val_accuracy?after=-1",
)


def cached_client(database_url: str, tmp_path: Path, **overrides: object) -> TestClient:
    values: dict[str, object] = {"poll_cache_bytes": 1 << 20}
    values.update(overrides)
    settings = make_settings(
        database_url, tmp_path, poll_cache_staleness_seconds=STALENESS, **values
    )
    return TestClient(create_app(settings))


@pytest.fixture
def cached(database_url: str, tmp_path: Path) -> Iterator[TestClient]:
    with cached_client(database_url, tmp_path) as client:
        yield client


@pytest.fixture
def plain(database_url: str, tmp_path: Path) -> Iterator[TestClient]:
    """The endpoints themselves: an app without the cache, on the same database."""
    with cached_client(database_url, tmp_path / "plain", poll_cache_bytes=0) as client:
        yield client


def cache_of(client: TestClient) -> PollCache:
    cache: PollCache = client.app.state.poll_cache  # type: ignore[attr-defined]
    return cache


def wait_until_fresh(client: TestClient) -> None:
    deadline = time.monotonic() + 5
    while not cache_of(client).fresh():
        assert time.monotonic() < deadline, "the cache's first database check never finished"
        time.sleep(0.01)


def answer(response: Any) -> tuple[int, list[tuple[str, str]], bytes]:
    return response.status_code, sorted(response.headers.multi_items()), response.content


def seed(database: Database) -> None:
    add_job(database, "j")
    append(database, "j", "loss", list(range(10)))
    append(database, "j", "val_accuracy", [0, 5])


def test_a_hit_is_byte_identical_to_the_endpoint_and_to_its_304(
    cached: TestClient, plain: TestClient, database: Database
) -> None:
    seed(database)
    wait_until_fresh(cached)
    generation = cache_of(cached).generation
    for path in PATHS:
        expected = plain.get(path)
        assert expected.status_code == 200, expected.text
        first = cached.get(path)  # a miss, filled from the endpoint
        assert answer(first) == answer(expected)
        time.sleep(0.01)
    if cache_of(cached).generation == generation:  # nothing (PostgreSQL: in the cluster) wrote
        polls_by_cursor = 2  # answered from the series' tails (test_poll_tails.py)
        assert len(cache_of(cached).entries) == len(PATHS) - polls_by_cursor
    for path in PATHS:
        expected = plain.get(path)
        hit = cached.get(path)
        assert answer(hit) == answer(expected), path
        etag = {"If-None-Match": f'W/"other", {expected.headers["ETag"]}'}
        assert answer(cached.get(path, headers=etag)) == answer(plain.get(path, headers=etag))
        assert cached.get(path, headers=etag).status_code == 304


def test_a_commit_elsewhere_shows_within_the_bound(cached: TestClient, database: Database) -> None:
    seed(database)
    wait_until_fresh(cached)
    before = cached.get("/jobs/j/loss?after=8").json()
    assert [p["step"] for p in before["points"]] == [9]
    append(database, "j", "loss", [10, 11])
    written = time.monotonic()
    while True:
        sent = time.monotonic()
        seen = cached.get("/jobs/j/loss?after=8").json()
        if [p["step"] for p in seen["points"]] == [9, 10, 11]:
            break
        assert sent - written <= STALENESS, "stale past the bound"
        time.sleep(0.005)
    time.sleep(STALENESS)
    with database.transaction() as session:
        session.execute(update(Job).where(Job.id == "j").values(status="succeeded"))
    time.sleep(STALENESS + 0.01)  # by now the cache may not serve anything older than the commit
    assert cached.get("/jobs/j").json()["status"] == "succeeded"
    assert cached.get("/jobs/j/loss?after=8").json()["next_after"] is None


def test_the_apis_own_writes_and_unknown_jobs_are_never_stale(
    cached: TestClient, database: Database
) -> None:
    wait_until_fresh(cached)
    assert cached.get("/jobs/j").status_code == 404
    add_job(database, "j", status="queued")
    assert cached.get("/jobs/j").status_code == 200  # a 404 is never kept
    assert cached.get("/jobs/j").json()["status"] == "queued"
    assert cached.post("/jobs/j/cancel").status_code == 202
    assert cached.get("/jobs/j").json()["status"] == "cancelled"


def run_layer(
    cache: PollCache, paths: list[str], *, together: bool = False, writes: bool = False
) -> list[int]:
    """GET each path through a PollCacheLayer over a fake endpoint; its calls, one a path."""
    calls: list[int] = []

    async def endpoint(scope: Scope, receive: Receive, send: Send) -> None:
        calls.append(len(calls))
        await anyio.sleep(0.01)  # a read in the threadpool
        if writes:  # the database changed while it was read: the answer is not kept
            cache.invalidate()
        body = scope["path"].encode()
        headers = [(b"etag", b'W/"' + body + b'"'), (b"content-length", b"%d" % len(body))]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    layer = PollCacheLayer(endpoint, cache)

    async def get(path: str) -> None:
        scope = {"type": "http", "method": "GET", "path": path, "query_string": b"",
                 "headers": []}  # fmt: skip

        async def receive() -> Message:
            return {"type": "http.request", "body": b""}

        async def send(message: Message) -> None:
            if message["type"] == "http.response.body":
                assert message["body"] == path.encode()

        await layer(scope, receive, send)

    async def main() -> None:
        if not together:
            for path in paths:
                await get(path)
            return
        async with anyio.create_task_group() as group:
            for path in paths:
                group.start_soon(get, path)

    anyio.run(main)
    return calls


def test_a_lagging_check_bypasses_the_cache_and_misses_are_shared() -> None:
    cache = PollCache(1 << 20, STALENESS)
    assert len(run_layer(cache, ["/jobs/a"] * 3)) == 3  # never checked yet: no cache
    cache.checked_at = time.monotonic()
    assert len(run_layer(cache, ["/jobs/a"] * 3 + ["/jobs/a/loss"] * 2)) == 2
    assert len(run_layer(cache, ["/jobs/b"] * 20, together=True)) == 1  # one read for all
    cache.checked_at -= 2 * STALENESS  # the checks fell behind
    assert len(run_layer(cache, ["/jobs/a"] * 3)) == 3
    cache.checked_at = time.monotonic()
    assert len(run_layer(cache, ["/jobs/a"] * 3)) == 0  # still kept: nothing has changed
    cache.invalidate()
    assert len(run_layer(cache, ["/jobs/a"] * 3)) == 1
    # waiters of a read whose answer could not be kept read again, one at a time
    assert len(run_layer(cache, ["/jobs/c"] * 20, together=True, writes=True)) == 20
    assert not cache.pending


def test_memory_stays_under_the_cap(database_url: str, tmp_path: Path, database: Database) -> None:
    seed(database)
    cap = 8_000
    with cached_client(database_url, tmp_path, poll_cache_bytes=cap) as client:
        wait_until_fresh(client)
        cache = cache_of(client)
        largest = 0
        for start in range(10):
            for most in range(2, 12):
                path = f"/jobs/j/loss?max_points={most}&start={start}"
                assert client.get(path).status_code == 200
                assert cache.size <= cap
                largest = max(largest, len(cache.entries))
        assert 0 < len(cache.entries) < 100
        assert cache.size == sum(entry.size for entry in cache.entries.values())
        recent = "/jobs/j/loss?max_points=11&start=9"
        assert client.get(recent).status_code == 200
        assert ("/jobs/j/loss", b"max_points=11&start=9") in cache.entries or not cache.fresh()


def test_the_token_is_checked_before_the_cache(
    database_url: str, tmp_path: Path, database: Database
) -> None:
    seed(database)
    token = {"Authorization": "Bearer t0ken"}
    with cached_client(database_url, tmp_path, api_token="t0ken") as client:
        wait_until_fresh(client)
        assert client.get("/jobs/j", headers=token).status_code == 200
        assert client.get("/jobs/j", headers=token).status_code == 200
        assert len(cache_of(client).entries) == 1
        assert client.get("/jobs/j").status_code == 401
        bad = {"Authorization": "Bearer nope"}
        assert client.get("/jobs/j", headers=bad).status_code == 401


def test_on_by_default_and_zero_turns_it_off(cached: TestClient, plain: TestClient) -> None:
    assert Settings.model_fields["poll_cache_bytes"].default == 16 * 1024**2
    assert cache_of(cached).enabled
    assert not cache_of(plain).enabled
    assert plain.get("/jobs/j").status_code == 404
    assert len(cache_of(plain).entries) == 0


def test_the_watcher_rests_while_nobody_polls_and_wakes_on_the_next_poll(
    cached: TestClient, database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(poll_cache, "IDLE_SECONDS", 0.3)
    seed(database)
    wait_until_fresh(cached)
    assert cached.get("/jobs/j").json()["status"] == "running"
    cache = cache_of(cached)
    deadline = time.monotonic() + 5
    while cache.waking is None:  # no poll for IDLE_SECONDS: the watcher rests
        assert time.monotonic() < deadline, "the watcher never rested"
        time.sleep(0.02)
    last_check = cache.checked_at
    time.sleep(3 * STALENESS)
    assert cache.checked_at == last_check  # no checks while it rests
    assert not cache.fresh()

    with database.transaction() as session:
        session.execute(update(Job).where(Job.id == "j").values(status="succeeded"))
    assert cached.get("/jobs/j").json()["status"] == "succeeded"  # the endpoint's answer
    wait_until_fresh(cached)  # that poll woke the watcher
    assert cache.checked_at > last_check
    assert cached.get("/jobs/j").json()["status"] == "succeeded"
