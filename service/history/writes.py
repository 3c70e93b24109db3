"""Writing a job's history: its points, folded into their series' rollups, and dropping it again.

The worker runs these (worker.history_writer in the transaction that renews the lease first, so a
worker that lost its lease writes nothing; worker.context on resume). Points and rollups change
together, in the caller's transaction.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import NamedTuple

from sqlalchemy import delete
from sqlalchemy.orm import Session

from service.db import bulk
from service.db.models import MetricPoint
from service.history import rollup_store


class Points(NamedTuple):
    """One series' new points: `values[i]` at `steps[i]` (finite values only)."""

    series: str
    steps: list[int]
    values: list[float]


_INSERT_POINTS = f"INSERT INTO {MetricPoint.__tablename__} (job_id, series, step, value)"
# PostgreSQL: one statement per series, its steps and values sent as two array literals.
_UNNEST_POINTS = bulk.pg_unnest(_INSERT_POINTS, 2, ("bigint", "double precision"))


def point_writes(
    dialect: str,
    job_id: str,
    points: Iterable[Points],
    rollups: rollup_store.Rows | None = None,
) -> list[bulk.Statement]:
    """The statements that insert points and fold them into their series' rollups, on the
    database `dialect` ("sqlite" or "postgresql"). `rollups`: what rollup_store.summarize made
    of these points, if the caller did.

    Pure Python work, apart from the database: a job builds them on its engine's thread and
    hands them to its writing thread, which then holds the GIL only to bind them."""
    points = list(points)
    statements: list[bulk.Statement] = []
    for series in points:
        if len(series.steps) != len(series.values):
            raise ValueError(
                f"{series.series}: {len(series.steps)} steps but {len(series.values)} values"
            )
        if not series.steps:
            continue
        if dialect == "sqlite":
            columns = (series.steps, series.values)
            statements += bulk.sqlite_inserts(_INSERT_POINTS, (job_id, series.series), columns)
        else:
            arrays = (bulk.pg_array(series.steps), bulk.pg_array(series.values))
            statements.append((_UNNEST_POINTS, (job_id, series.series, *arrays)))
    if rollups is None:
        rollups = rollup_store.summarize(points)
    return statements + rollup_store.statements(dialect, job_id, rollups)


def write_points(session: Session, statements: Sequence[bulk.Statement]) -> None:
    """Run what `point_writes` built, in the session's transaction."""
    bulk.execute(session.connection(), statements)


def add_points(
    session: Session,
    job_id: str,
    points: Iterable[Points],
    rollups: rollup_store.Rows | None = None,
) -> None:
    """Insert points (bulk statements, service.db.bulk) and fold them into the series' rollups."""
    dialect = session.get_bind().dialect.name
    write_points(session, point_writes(dialect, job_id, points, rollups))


def truncate_history(session: Session, job_id: str, from_step: int) -> None:
    """Drop points at or after `from_step`: work the checkpoint being resumed does not include."""
    session.execute(
        delete(MetricPoint).where(MetricPoint.job_id == job_id, MetricPoint.step >= from_step)
    )
    rollup_store.truncate(session, job_id, from_step)


def reset_history(session: Session, job_id: str) -> None:
    """Drop every point of a job's history (and the rollups built on them)."""
    session.execute(delete(MetricPoint).where(MetricPoint.job_id == job_id))
    rollup_store.delete(session, job_id)
