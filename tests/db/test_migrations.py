"""The schema lives in Alembic: one head, upgrade from empty, models == migrations, downgrade."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect, text

from service.db import migrate
from service.db.base import Base
from tests.conftest import PostgresServer


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database(
    request: pytest.FixtureRequest, tmp_path: Path, postgres_server: PostgresServer | None
) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.db'}"
        return
    if postgres_server is None:
        pytest.skip("PostgreSQL lane off: set DESCENT_TEST_POSTGRES_URL to a server URL to run it")
    url = postgres_server.empty()
    yield url
    postgres_server.drop(url)


def test_there_is_exactly_one_head() -> None:
    script = ScriptDirectory.from_config(migrate.alembic_config("sqlite://"))

    assert len(script.get_heads()) == 1


def test_upgrade_from_empty_creates_every_table(empty_database: str) -> None:
    migrate.upgrade(empty_database)

    engine = create_engine(empty_database)
    tables = set(inspect(engine).get_table_names())
    assert {"jobs", "metric_points", "job_arrays", "datasets", "alembic_version"} <= tables
    assert migrate.is_migrated(engine)
    engine.dispose()


def test_models_match_the_migrated_schema(empty_database: str) -> None:
    migrate.upgrade(empty_database)

    engine = create_engine(empty_database)
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, Base.metadata)
    engine.dispose()
    assert differences == []


def test_downgrade_to_base_and_back_up(empty_database: str) -> None:
    migrate.upgrade(empty_database)
    migrate.downgrade(empty_database, "base")

    engine = create_engine(empty_database)
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    assert not migrate.is_migrated(engine)
    engine.dispose()

    migrate.upgrade(empty_database)
    engine = create_engine(empty_database)
    assert migrate.is_migrated(engine)
    engine.dispose()


def test_the_rollups_migration_backfills_histories_already_stored(empty_database: str) -> None:
    migrate.upgrade(empty_database, "0003_sweeps")
    engine = create_engine(empty_database)
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO jobs (id, task, status, spec, dataset_ref, progress_step,"
                " progress_total, metrics, timings, attempts, cancel_requested, history_pruned,"
                " lost_count, created_at, updated_at) VALUES ('j1', 'train', 'succeeded', '{}',"
                " 'blobs', 0, 0, '{}', '{}', 1, false, false, 0, :now, :now)"
            ),
            {"now": datetime(2026, 11, 27)},
        )
        connection.execute(
            text(
                "INSERT INTO metric_points (job_id, series, step, value)"
                " VALUES ('j1', 'loss', :s, :v)"
            ),
            [{"s": step, "v": float((step * 7) % 100)} for step in range(300)],
        )
    migrate.upgrade(empty_database)

    with engine.connect() as connection:
        rows = connection.execute(
            text(
                "SELECT level, block, min_step, min_value, max_step, max_value, points"
                " FROM metric_rollups WHERE job_id = 'j1' AND series = 'loss' AND level = 2"
            )
        ).all()
    engine.dispose()
    # Steps 0..255 (level 2's block 0): value 0 first at step 0, 99 first at step 57.
    assert [tuple(row) for row in rows] == [
        (2, 0, 0, 0.0, 57, 99.0, 256),
        (2, 1, 286, 2.0, 257, 99.0, 44),
    ]
