"""Polls by cursor (`?after=N[&limit=L]`) answered from a series' tail: byte for byte what a read
of the database answers, as the history grows, past the tail's start, when the job ends or is
retried."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import delete, update

from service.db.models import Job, MetricPoint
from service.db.session import Database
from service.history import tails
from tests.service.test_poll_cache import answer, cache_of, cached_client, wait_until_fresh
from tests.service.test_poll_reads import add_job, append

POLLS = [
    "/jobs/j/loss?after=-1",
    "/jobs/j/loss?after=2",
    "/jobs/j/loss?after=5&limit=2",
    "/jobs/j/loss?after=9",
    "/jobs/j/loss?after=400",
    "/jobs/j/metrics/val_accuracy?after=-1",
    "/jobs/j/metrics/loss?after=3&limit=3",
]


def same_answers(cached: TestClient, plain: TestClient, paths: list[str]) -> None:
    """Every path answers as a read of the database does (once the last commit is seen)."""
    time.sleep(0.12)  # past the staleness bound: the tails are read again
    wait_until_fresh(cached)
    for path in paths:
        expected = plain.get(path)
        got = cached.get(path)
        assert answer(got) == answer(expected), path
        etag = {"If-None-Match": expected.headers["ETag"]}
        assert cached.get(path, headers=etag).status_code == 304


@pytest.fixture
def pair(database_url: str, tmp_path: Path) -> tuple[TestClient, TestClient]:
    cached = cached_client(database_url, tmp_path / "a")
    plain = cached_client(database_url, tmp_path / "b", poll_cache_bytes=0)
    return cached, plain


def test_a_growing_history_polled_by_cursor_reads_as_the_endpoint(
    pair: tuple[TestClient, TestClient], database: Database
) -> None:
    cached, plain = pair
    add_job(database, "j")
    with cached, plain:
        same_answers(cached, plain, POLLS)  # no points yet
        append(database, "j", "loss", list(range(10)))
        append(database, "j", "val_accuracy", [0, 5])
        same_answers(cached, plain, POLLS)
        assert ("j", "loss", "loss") in cache_of(cached).tails.tails
        append(database, "j", "loss", [10, 11, 12])
        same_answers(cached, plain, POLLS)
        with database.transaction() as session:
            session.execute(update(Job).where(Job.id == "j").values(status="succeeded"))
        same_answers(cached, plain, POLLS)  # next_after null once nothing is left
        metrics = cached.get("/metrics").text  # labelled by route, as every answer
        assert 'route="/jobs/{job_id}/metrics/{series}",status="200"' in metrics
        assert 'route="/jobs/{job_id}/loss",status="304"' in metrics
        assert "unmatched" not in metrics


def test_cursors_before_the_tail_go_to_the_endpoint(
    pair: tuple[TestClient, TestClient], database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tails, "TAIL_POINTS", 4)
    cached, plain = pair
    add_job(database, "j")
    append(database, "j", "loss", list(range(10)))
    with cached, plain:
        same_answers(cached, plain, POLLS)
        tail = cache_of(cached).tails.tails[("j", "loss", "loss")]
        assert tail.steps == [6, 7, 8, 9] and tail.covered_from == 5
        append(database, "j", "loss", list(range(10, 13)))
        same_answers(cached, plain, POLLS)
        tail = cache_of(cached).tails.tails[("j", "loss", "loss")]
        assert tail.steps == [9, 10, 11, 12] and tail.covered_from == 8
        append(database, "j", "loss", list(range(13, 30)))  # more than a tail: built anew
        same_answers(cached, plain, [*POLLS, "/jobs/j/loss?after=25"])


def test_a_retried_or_pruned_history_is_never_served_stale(
    pair: tuple[TestClient, TestClient], database: Database
) -> None:
    cached, plain = pair
    add_job(database, "j")
    append(database, "j", "loss", list(range(10)))
    with cached, plain:
        same_answers(cached, plain, POLLS)
        with database.transaction() as session:  # a second attempt resumes from step 4
            session.execute(delete(MetricPoint).where(MetricPoint.step >= 4))
            session.execute(update(Job).where(Job.id == "j").values(attempts=2))
        same_answers(cached, plain, POLLS)
        assert ("j", "loss", "loss") not in cache_of(cached).tails.tails  # running, retried
        append(database, "j", "loss", [4, 5])
        with database.transaction() as session:
            session.execute(update(Job).where(Job.id == "j").values(status="failed"))
        same_answers(cached, plain, POLLS)  # finished: frozen, tailed again
        with database.transaction() as session:  # retention thins it out
            session.execute(delete(MetricPoint).where(MetricPoint.step.in_([1, 2])))
            session.execute(update(Job).where(Job.id == "j").values(history_pruned=True))
        same_answers(cached, plain, POLLS)
        with database.transaction() as session:
            session.execute(delete(MetricPoint))
            session.execute(delete(Job))
        time.sleep(0.12)
        wait_until_fresh(cached)
        assert cached.get("/jobs/j/loss?after=2").status_code == 404


def test_windows_and_bad_queries_are_never_tailed(
    database_url: str, tmp_path: Path, database: Database
) -> None:
    add_job(database, "j")
    append(database, "j", "loss", list(range(10)))
    with cached_client(database_url, tmp_path) as cached:
        wait_until_fresh(cached)
        for path in ("/jobs/j/loss?after=2&limit=0", "/jobs/j/loss?after=-2",
                     "/jobs/j/loss?after=2&limit=10001", "/jobs/j/loss?after=2&max_points=3",
                     "/jobs/j/loss?start=2"):  # fmt: skip
            assert cached.get(path).status_code in (200, 422), path
        assert not cache_of(cached).tails.tails
        # the query's order is the client's: the same parameters are the same page
        first = cached.get("/jobs/j/loss?limit=2&after=2")
        assert answer(first) == answer(cached.get("/jobs/j/loss?after=2&limit=2"))
        assert [p["step"] for p in first.json()["points"]] == [3, 4]
        assert ("j", "loss", "loss") in cache_of(cached).tails.tails


def test_a_page_that_says_the_job_ended_is_never_followed_by_a_kept_running_job(
    database_url: str, tmp_path: Path, database: Database
) -> None:
    add_job(database, "j")
    append(database, "j", "loss", list(range(10)))
    with cached_client(database_url, tmp_path) as cached:
        live = cache_of(cached)
        live.freshness._read = lambda: "unchanged"  # the watcher sees no commit from now on
        checked = live.freshness.checked_at
        deadline = time.monotonic() + 5
        while live.freshness.checked_at <= checked or not live.freshness.fresh():
            assert time.monotonic() < deadline, "the watcher never checked"
            time.sleep(0.02)
        assert cached.get("/jobs/j/loss?after=-1").json()["next_after"] == 9  # tailed
        live.freshness.moved()  # a commit seen: the tail is of the generation before
        assert cached.get("/jobs/j").json()["status"] == "running"  # kept
        append(database, "j", "loss", [10])
        with database.transaction() as session:  # the job ends; the watcher does not see it
            session.execute(update(Job).where(Job.id == "j").values(status="succeeded"))
        page = cached.get("/jobs/j/loss?after=9").json()  # the tail is read again: it ended
        assert page["next_after"] is None
        assert [point["step"] for point in page["points"]] == [10]
        assert cached.get("/jobs/j").json()["status"] == "succeeded"
