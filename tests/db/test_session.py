"""SQLite runs in WAL mode with a busy timeout; timestamps come back aware and in UTC."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from sqlalchemy import text

from service.db.models import Job
from service.db.session import Database


def test_sqlite_uses_wal_and_a_busy_timeout(sqlite_url: str) -> None:
    database = Database(sqlite_url, busy_timeout_ms=1234)
    with database.read() as session:
        assert session.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert session.execute(text("PRAGMA busy_timeout")).scalar() == 1234
    database.dispose()


def test_timestamps_round_trip_as_aware_utc(database_url: str) -> None:
    database = Database(database_url)
    local = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone(timedelta(hours=2)))
    with database.transaction() as session:
        session.add(
            Job(
                id="t1",
                task="train",
                status="queued",
                spec={},
                dataset_ref="builtin:toy",
                progress_step=0,
                progress_total=1,
                metrics={},
                timings={},
                attempts=0,
                cancel_requested=False,
                created_at=local,
            )
        )
    with database.read() as session:
        job = session.get(Job, "t1")
        assert job is not None
        assert job.created_at == local
        assert job.created_at.tzinfo is not None
        assert job.created_at.utcoffset() == timedelta(0)
        assert job.created_at == datetime(2026, 1, 2, 1, 4, 5, tzinfo=UTC)
    database.dispose()
