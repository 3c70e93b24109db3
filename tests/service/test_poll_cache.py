"""The live reads' kept answers (DESCENT_POLL_CACHE_BYTES, on by default): kept answers are
byte-identical to fresh reads, commits by other processes show within the staleness bound, the
API's own writes at once, errors are never kept, memory stays under its cap, the bearer token is
checked first, bad queries get FastAPI's own 422, HEAD answers like GET, and the watcher rests
while nobody polls."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update
from sqlalchemy.orm import Session

from service.app import create_app
from service.db.models import Job
from service.db.session import Database
from service.history import freshness
from service.history.answers import Answer, AnswerCache, ReadKey
from service.history.reads import Window
from service.jobs.live_reads import LiveReads
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
    """Every answer read from the database: an app keeping none, on the same database."""
    with cached_client(database_url, tmp_path / "plain", poll_cache_bytes=0) as client:
        yield client


def cache_of(client: TestClient) -> LiveReads:
    live: LiveReads = client.app.state.live_reads  # type: ignore[attr-defined]
    return live


def wait_until_fresh(client: TestClient) -> None:
    deadline = time.monotonic() + 5
    while not cache_of(client).freshness.fresh():
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
    generation = cache_of(cached).freshness.generation
    for path in PATHS:
        expected = plain.get(path)
        assert expected.status_code == 200, expected.text
        first = cached.get(path)  # read, then kept
        assert answer(first) == answer(expected)
        time.sleep(0.01)
    if cache_of(cached).freshness.generation == generation:  # nothing (PostgreSQL: in the
        pages = 3  # cluster) wrote; pages are answered from the series' tails (test_poll_tails)
        assert len(cache_of(cached).answers.entries) == len(PATHS) - pages
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


def run_reads(
    live: LiveReads, keys: list[str], *, together: bool = False, writes: bool = False
) -> list[int]:
    """Ask `live` for each key's answer, each read a fake one; the reads made, one a call."""
    calls: list[int] = []

    async def read(_: object) -> Answer:
        calls.append(len(calls))
        await anyio.sleep(0.01)  # a read in the threadpool
        if writes:  # the database changed while it was read: the answer is not kept
            live.freshness.moved()
        return Answer.of(b"{}")

    live._read = read  # type: ignore[assignment,method-assign]

    async def get(key: str) -> None:
        def unused(session: Session) -> Answer:
            raise AssertionError("the fake read reads nothing")

        assert (await live._answer(ReadKey("job", key), unused)).body == b"{}"

    async def main() -> None:
        if not together:
            for key in keys:
                await get(key)
            return
        async with anyio.create_task_group() as group:
            for key in keys:
                group.start_soon(get, key)

    anyio.run(main)
    return calls


def test_a_lagging_check_bypasses_what_is_kept_and_concurrent_reads_are_shared() -> None:
    live = LiveReads(1 << 20, STALENESS)
    assert len(run_reads(live, ["a"] * 3)) == 3  # never checked yet: nothing kept is served
    live.freshness.checked_at = time.monotonic()
    assert len(run_reads(live, ["a"] * 3 + ["b"] * 2)) == 2
    assert len(run_reads(live, ["c"] * 20, together=True)) == 1  # one read for all
    live.freshness.checked_at -= 2 * STALENESS  # the checks fell behind
    assert len(run_reads(live, ["a"] * 3)) == 3
    live.freshness.checked_at = time.monotonic()
    assert len(run_reads(live, ["a"] * 3)) == 0  # still kept: nothing has changed
    live.freshness.moved()
    assert len(run_reads(live, ["a"] * 3)) == 1
    # waiters of a read whose answer could not be kept read again, one at a time
    assert len(run_reads(live, ["d"] * 20, together=True, writes=True)) == 20
    assert not live.answers.pending


def test_polls_that_find_the_checks_behind_wait_for_one_shared_check_not_a_read_each() -> None:
    live = LiveReads(1 << 20, STALENESS)
    checks: list[float] = []

    def fingerprint() -> object:  # the watcher's read, late: the machine is busy
        checks.append(time.monotonic())
        time.sleep(2 * STALENESS)
        return "unchanged"

    live.freshness._read = fingerprint
    assert len(run_reads(live, ["a"])) == 1  # read once, after the first check
    assert len(checks) == 1
    live.freshness.checked_at -= 2 * STALENESS  # the checks fell behind
    arrived = time.monotonic()
    assert len(run_reads(live, ["a"] * 30, together=True)) == 0  # still kept: nothing changed
    assert len(checks) == 2 and checks[1] >= arrived  # one check for all, started after them
    assert not live.freshness.checks

    live.freshness.checked_at -= 2 * STALENESS
    live.freshness._read = lambda: "changed"
    assert len(run_reads(live, ["a"] * 30, together=True)) == 1  # the check saw a commit

    def failing() -> object:
        raise OSError("database is locked")

    live.freshness.checked_at -= 2 * STALENESS
    live.freshness._read = failing
    assert len(run_reads(live, ["a"] * 3)) == 3  # no check: what is kept is not served


def test_memory_stays_under_the_cap(database_url: str, tmp_path: Path, database: Database) -> None:
    seed(database)
    cap = 8_000
    with cached_client(database_url, tmp_path, poll_cache_bytes=cap) as client:
        wait_until_fresh(client)
        cache = cache_of(client).answers
        for start in range(10):
            for most in range(2, 12):
                path = f"/jobs/j/loss?max_points={most}&start={start}"
                assert client.get(path).status_code == 200
                assert cache.size <= cap
        assert 0 < len(cache.entries) < 100
        assert cache.size == sum(AnswerCache.cost(*entry) for entry in cache.entries.items())
        recent = "/jobs/j/loss?max_points=11&start=9"
        assert client.get(recent).status_code == 200
        key = ReadKey("loss", "j", "loss", Window(None, 1000, 11, 9, None))
        assert key in cache.entries or not cache_of(client).freshness.fresh()


def test_the_token_is_checked_before_the_cache(
    database_url: str, tmp_path: Path, database: Database
) -> None:
    seed(database)
    token = {"Authorization": "Bearer t0ken"}
    with cached_client(database_url, tmp_path, api_token="t0ken") as client:
        for _ in range(20):  # kept once a read finds the checks up to date (a busy machine lags)
            wait_until_fresh(client)
            assert client.get("/jobs/j", headers=token).status_code == 200
            if cache_of(client).answers.entries:
                break
        assert len(cache_of(client).answers.entries) == 1
        assert client.get("/jobs/j").status_code == 401
        bad = {"Authorization": "Bearer nope"}
        assert client.get("/jobs/j", headers=bad).status_code == 401


def test_on_by_default_and_zero_turns_it_off(cached: TestClient, plain: TestClient) -> None:
    assert Settings.model_fields["poll_cache_bytes"].default == 16 * 1024**2
    assert cache_of(cached).enabled
    assert not cache_of(plain).enabled
    assert plain.get("/jobs/j").status_code == 404
    assert len(cache_of(plain).answers.entries) == 0


def test_the_watcher_rests_while_nobody_polls_and_wakes_on_the_next_poll(
    cached: TestClient, database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(freshness, "IDLE_SECONDS", 0.3)
    seed(database)
    wait_until_fresh(cached)
    assert cached.get("/jobs/j").json()["status"] == "running"
    cache = cache_of(cached).freshness
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
    assert cached.get("/jobs/j").json()["status"] == "succeeded"  # read from the database
    wait_until_fresh(cached)  # that poll woke the watcher
    assert cache.checked_at > last_check
    assert cached.get("/jobs/j").json()["status"] == "succeeded"


def test_a_commit_through_the_apps_own_database_is_seen_at_once(
    cached: TestClient, database: Database
) -> None:
    seed(database)
    wait_until_fresh(cached)
    assert cached.get("/jobs/j").json()["status"] == "running"
    live = cache_of(cached)
    generation = live.freshness.generation
    own: Database = cached.app.state.database  # type: ignore[attr-defined]
    with own.transaction() as session:  # as a sweep's or an upload's endpoint commits
        session.execute(update(Job).where(Job.id == "j").values(status="succeeded"))
    assert live.freshness.generation > generation
    assert cached.get("/jobs/j").json()["status"] == "succeeded"


@pytest.mark.parametrize(
    ("query", "field"),
    [("after=-2", "after"), ("limit=0", "limit"), ("after=x", "after"),
     ("max_points=1", "max_points"), ("after=99999999999999999999", "after")],
)  # fmt: skip
def test_a_bad_query_gets_fastapis_own_problem(
    cached: TestClient, plain: TestClient, database: Database, query: str, field: str
) -> None:
    seed(database)
    for path in (f"/jobs/j/loss?{query}", f"/jobs/j/metrics/val_accuracy?{query}"):
        got = cached.get(path)
        assert answer(got) == answer(plain.get(path))
        assert got.status_code == 422
        assert got.headers["content-type"] == "application/problem+json"
        assert ["query", field] in [error["loc"] for error in got.json()["errors"]]
    unknown = cached.get("/jobs/j/metrics/nope")
    assert unknown.status_code == 422 and ["path", "series"] in [
        error["loc"] for error in unknown.json()["errors"]
    ]


def test_head_answers_like_get_without_the_body(cached: TestClient, database: Database) -> None:
    seed(database)
    wait_until_fresh(cached)
    for path in PATHS:
        got, head = cached.get(path), cached.head(path)
        assert head.status_code == 200 and head.content == b""
        assert head.headers["etag"] == got.headers["etag"]
        assert head.headers["content-length"] == str(len(got.content))
    assert cached.head("/jobs/nope").status_code == 404
