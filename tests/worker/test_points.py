"""The worker's bulk insert stores exactly what a plain ORM insert of the same points stores."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import insert
from sqlalchemy.exc import IntegrityError

from service.db import bulk
from service.db.models import MetricPoint
from service.db.session import Database
from service.history import point_store, writes
from service.history.writes import Points
from service.jobs import queue, repository
from service.settings import Settings
from tests.conftest import make_settings
from tests.worker.conftest import submit

SPECIAL = [
    0.0,
    -0.0,
    1.0,
    -3.0,
    0.1,
    1e-7,
    2.5e4,
    5e-324,
    2.2250738585072014e-308,
    1.7976931348623157e308,
]


def _values(count: int, seed: int) -> list[float]:
    rng = np.random.default_rng(seed)
    drawn = rng.standard_normal(count) * 10.0 ** rng.integers(-300, 300, count)
    values: list[float] = drawn.tolist()
    return (SPECIAL + values)[:count]


def _bits(pairs: list[tuple[int, float]]) -> list[tuple[int, bytes]]:
    return [(step, np.float64(value).tobytes()) for step, value in pairs]


@pytest.mark.parametrize("count", [0, 1, 7, 511, 512, 513, 1_100, 3_001, 12_500])
def test_bulk_points_read_back_as_an_orm_insert_of_the_same_points(
    settings: Settings, database: Database, count: int
) -> None:
    bulk_job, orm_job = (submit(database, settings, seed=seed) for seed in (1, 2))
    steps = [3 * i for i in range(count - 1)] + [2**40] if count else []
    series = [Points("loss", steps, _values(count, 0)), Points("lr", steps, _values(count, 1))]
    with database.transaction() as session:
        writes.add_points(session, bulk_job, series)
        rows = [{"job_id": orm_job, "series": name, "step": step, "value": value}
                for name, steps_, values in series
                for step, value in zip(steps_, values, strict=True)]  # fmt: skip
        if rows:
            session.execute(insert(MetricPoint), rows)
    with database.read() as session:
        for name, *_ in series:
            bulk = point_store.points(session, bulk_job, name, after=None, limit=None)
            orm = point_store.points(session, orm_job, name, after=None, limit=None)
            assert len(bulk) == count
            assert _bits(list(bulk)) == _bits(list(orm))


def test_a_duplicate_point_fails_the_whole_write(settings: Settings, database: Database) -> None:
    job_id = submit(database, settings)
    points = [Points("loss", [0, 1, 1], [1.0, 2.0, 3.0])]
    with pytest.raises(IntegrityError), database.transaction() as session:
        writes.add_points(session, job_id, points)
    with database.read() as session:
        assert point_store.count_points(session, job_id, "loss") == 0


def test_steps_and_values_must_pair_up(settings: Settings, database: Database) -> None:
    job_id = submit(database, settings)
    with pytest.raises(ValueError, match="2 steps but 1 values"), database.transaction() as s:
        writes.add_points(s, job_id, [Points("loss", [0, 1], [1.0])])


def test_a_checkpoint_and_an_array_written_again_replace_the_last_ones(
    settings: Settings, database: Database
) -> None:
    job_id = submit(database, settings)
    for step in (10, 20):
        with database.transaction() as session:
            queue.put_checkpoint(session, job_id, 1, step, f"state {step}".encode())
            queue.put_array(session, job_id, "W", np.full((2, 3), step, dtype=np.float32), step)
    with database.read() as session:
        checkpoint = queue.get_checkpoint(session, job_id)
        assert checkpoint is not None
        assert (checkpoint.step, checkpoint.payload) == (20, b"state 20")
        stored = repository.array(session, job_id, "W")
        assert stored is not None and stored.step == 20 and stored.shape == [2, 3]
        assert np.frombuffer(stored.data, dtype=stored.dtype).tolist() == [20.0] * 6


def test_batches_shrink_to_what_this_sqlite_binds(
    sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An SQLite built before 3.32 binds at most 999 values a statement."""
    monkeypatch.setattr(bulk, "_sqlite_variable_limit", lambda: 999)
    settings = make_settings(sqlite_url, tmp_path)
    database = Database(sqlite_url)
    job_id = submit(database, settings)
    steps = list(range(3_001))
    with database.transaction() as session:
        driver = session.connection().connection.driver_connection
        assert driver is not None
        driver.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 999)
        writes.add_points(session, job_id, [Points("loss", steps, [s / 7 for s in steps])])
    with database.read() as session:
        stored = point_store.points(session, job_id, "loss", after=None, limit=None)
        assert list(stored) == [(s, s / 7) for s in steps]
    database.dispose()
