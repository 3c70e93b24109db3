"""The polled reads: `total` stays exact through appends, retries, retention and deletion without
a full COUNT(*) per poll, and unchanged answers are 304s for a matching ETag."""

from __future__ import annotations

import json
import math
import random
import shutil
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.orm import Session

from service.app import create_app
from service.db.base import utcnow
from service.db.models import Job, MetricPoint
from service.db.session import Database
from service.history import point_store
from service.history.answers import page_answer, point_fragments
from service.jobs.schemas import LossPage, SeriesPage
from service.maintenance import prune_job_history
from tests.conftest import make_settings

SERIES = ("loss", "val_accuracy")


def add_job(database: Database, job_id: str, status: str = "running") -> None:
    with database.transaction() as session:
        session.add(
            Job(id=job_id, task="train", status=status, spec={"task": "train"}, dataset_ref="x",
                progress_step=0, progress_total=1_000_000, metrics={}, timings={}, attempts=1,
                created_at=utcnow(), started_at=utcnow())
        )  # fmt: skip


def append(database: Database, job_id: str, series: str, steps: list[int]) -> None:
    """What a worker's flush does: new points after the last, and the progress, in one commit."""
    with database.transaction() as session:
        rows = [{"job_id": job_id, "series": series, "step": s, "value": 1.0 / (s + 1)}
                for s in steps]  # fmt: skip
        if rows:
            session.execute(insert(MetricPoint), rows)
        session.execute(update(Job).where(Job.id == job_id).values(progress_step=max(steps) + 1))


def stored(database: Database, job_id: str, series: str) -> int:
    with database.read() as session:
        stmt = select(func.count()).where(
            MetricPoint.job_id == job_id, MetricPoint.series == series
        )
        return int(session.scalar(stmt) or 0)


def total(client: TestClient, job_id: str, series: str) -> int:
    path = f"/jobs/{job_id}/loss" if series == "loss" else f"/jobs/{job_id}/metrics/{series}"
    response = client.get(path, params={"after": 10**9})
    assert response.status_code == 200, response.text
    return int(response.json()["total"])


def test_total_follows_appends_without_counting_everything_again(
    client: TestClient, database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_job(database, "growing")
    counted_after: list[int] = []
    count_after = point_store.count_after

    def spy(session: Session, job_id: str, series: str, after: int) -> tuple[int, int | None]:
        counted_after.append(after)
        return count_after(session, job_id, series, after)

    monkeypatch.setattr(point_store, "count_after", spy)
    step = 0
    for batch in (5, 0, 17, 1, 40):
        if batch:
            append(database, "growing", "loss", list(range(step, step + batch)))
            step += batch
        assert total(client, "growing", "loss") == stored(database, "growing", "loss") == step
    # after the first read, each read counted only what came after the last step it had seen
    assert counted_after == [-1, 4, 4, 21, 22]


def test_total_stays_exact_through_retries_retention_and_deletion(
    client: TestClient, database: Database
) -> None:
    add_job(database, "j")
    rng = random.Random(5)
    last = dict.fromkeys(SERIES, -1)

    def check() -> None:
        for series in SERIES:
            assert total(client, "j", series) == stored(database, "j", series), series

    def grow(n: int) -> None:
        for series in SERIES:
            steps = sorted(rng.sample(range(last[series] + 1, last[series] + 3 * n + 2), n))
            append(database, "j", series, steps)
            last[series] = steps[-1]
            check()

    grow(30)
    grow(7)
    # A worker is lost; the next attempt is claimed (visible before it truncates anything)...
    with database.transaction() as session:
        session.execute(update(Job).where(Job.id == "j").values(attempts=2))
    check()
    # ...then it resumes from a checkpoint: history after it goes, and is written again, with
    # other steps than before (a different eval cadence, non-finite values left out).
    with database.transaction() as session:
        session.execute(
            delete(MetricPoint).where(MetricPoint.job_id == "j", MetricPoint.step >= 20)
        )
    last = dict.fromkeys(SERIES, 19)
    check()
    grow(3)
    grow(50)
    # Started over from step 0 on a third attempt, then finished.
    with database.transaction() as session:
        session.execute(update(Job).where(Job.id == "j").values(attempts=3))
        session.execute(delete(MetricPoint).where(MetricPoint.job_id == "j"))
    last = dict.fromkeys(SERIES, -1)
    check()
    grow(400)
    with database.transaction() as session:
        session.execute(update(Job).where(Job.id == "j").values(status="succeeded"))
    check()
    check()
    with database.transaction() as session:  # retention downsamples the finished job
        prune_job_history(session, "j", max_points=50)
    check()
    assert stored(database, "j", "loss") <= 50

    assert client.delete("/jobs/j").status_code == 204
    assert client.get("/jobs/j/loss").status_code == 404


def test_apps_on_two_databases_in_one_process_keep_their_own_counts(
    client: TestClient, database: Database, tmp_path: Path, sqlite_template: Path
) -> None:
    other_path = tmp_path / "other.db"
    shutil.copy(sqlite_template, other_path)
    other_url = f"sqlite:///{other_path}"
    other = Database(other_url)
    settings = make_settings(other_url, tmp_path / "other")
    with TestClient(create_app(settings)) as other_client:
        for db, n in ((database, 12), (other, 3)):
            add_job(db, "same-id")
            append(db, "same-id", "loss", list(range(n)))
        assert total(client, "same-id", "loss") == 12
        assert total(other_client, "same-id", "loss") == 3
        append(other, "same-id", "loss", [3])
        assert total(other_client, "same-id", "loss") == 4
        assert total(client, "same-id", "loss") == 12
    other.dispose()


@pytest.mark.parametrize("path", ["/jobs/e", "/jobs/e/loss?after=-1", "/jobs/e/metrics/loss"])
def test_an_unchanged_answer_is_a_304_for_its_etag(
    client: TestClient, database: Database, path: str
) -> None:
    add_job(database, "e")
    append(database, "e", "loss", [0, 1, 2])
    first = client.get(path)
    etag = first.headers["ETag"]
    assert first.status_code == 200
    assert first.headers["Cache-Control"] == "no-cache"

    again = client.get(path, headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["ETag"] == etag
    assert client.get(path, headers={"If-None-Match": f'W/"other", {etag}'}).status_code == 304

    append(database, "e", "loss", [3])
    changed = client.get(path, headers={"If-None-Match": etag})
    assert changed.status_code == 200
    assert changed.headers["ETag"] != etag
    assert changed.json() != first.json()


def test_pages_are_their_models_json_with_non_finite_values_as_null() -> None:
    values = [0.0, -0.0, 1.0, 1 / 3, -2.5e-300, 1.7976931348623157e308, 5e-324, 1e16, 123456789.0]
    rows = [(step, value) for step, value in enumerate(values)]
    rows += [(10**12, math.nan), (10**12 + 1, math.inf), (10**12 + 2, -math.inf)]

    for key, model in (("loss", LossPage), ("value", SeriesPage)):
        page = page_answer(point_fragments(rows, key), 41, 1500, key=key)

        points = [{"step": step, key: value} for step, value in rows]
        built = model.model_validate({"points": points, "next_after": 41, "total": 1500})
        assert page.body == built.model_dump_json().encode()
        expected = [{"step": step, key: value if math.isfinite(value) else None}
                    for step, value in rows]  # fmt: skip
        parsed = json.loads(page.body, parse_constant=lambda c: pytest.fail(f"{c} in a page"))
        assert parsed == {"points": expected, "next_after": 41, "total": 1500}
    empty = page_answer(point_fragments([], "value"), None, 0, key="value")
    assert empty.body == b'{"points":[],"next_after":null,"total":0}'
