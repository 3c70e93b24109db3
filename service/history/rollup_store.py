"""The SQL of the rollups (service.history.rollup): kept as points are written, read for overviews.

Every change to a job's metric_points comes with the matching change here, in the same
transaction: service.history.writes appends (add), truncates on resume (truncate) and resets
(delete); retention downsamples and then rebuilds; deleting a job deletes them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import NamedTuple

import numpy as np
from sqlalchemy import Connection, bindparam, select
from sqlalchemy import delete as sql_delete
from sqlalchemy.orm import Session

from service.db import bulk
from service.db.models import MetricPoint, MetricRollup
from service.history.rollup import (
    LEVELS,
    Columns,
    Extremes,
    Span,
    block_steps,
    merge,
    summarize_levels,
)

_table = MetricRollup.__tablename__
_INSERT = (
    f"INSERT INTO {_table} "
    "(job_id, series, level, block, min_step, min_value, max_step, max_value, points)"
)
Batch = tuple[str, Sequence[int], Sequence[float]]  # a series' new steps and values
# A block written again (the worker's flushes split blocks) keeps the extremes of both writes; on
# ties the stored point, which has the earlier step (points are appended in step order).
_MERGE = (
    " ON CONFLICT (job_id, series, level, block) DO UPDATE SET "
    f"min_step = CASE WHEN excluded.min_value < {_table}.min_value "
    f"THEN excluded.min_step ELSE {_table}.min_step END, "
    f"min_value = CASE WHEN excluded.min_value < {_table}.min_value "
    f"THEN excluded.min_value ELSE {_table}.min_value END, "
    f"max_step = CASE WHEN excluded.max_value > {_table}.max_value "
    f"THEN excluded.max_step ELSE {_table}.max_step END, "
    f"max_value = CASE WHEN excluded.max_value > {_table}.max_value "
    f"THEN excluded.max_value ELSE {_table}.max_value END, "
    f"points = {_table}.points + excluded.points"
)
_PG_TYPES = (
    "text", "int", "bigint", "bigint", "double precision", "bigint", "double precision", "int",
)  # fmt: skip
_PG_UPSERT = bulk.pg_unnest(_INSERT, 1, _PG_TYPES, _MERGE)

_rollups = MetricRollup.__table__.c
_points = MetricPoint.__table__.c
_BLOCKS = (
    select(
        _rollups.block, _rollups.min_step, _rollups.min_value, _rollups.max_step,
        _rollups.max_value, _rollups.points,
    )
    .where(
        _rollups.job_id == bindparam("job_id"),
        _rollups.series == bindparam("series"),
        _rollups.level == bindparam("level"),
        _rollups.block >= bindparam("first"),
        _rollups.block <= bindparam("last"),
    )
    .order_by(_rollups.block)
)  # fmt: skip
_RAW = (
    select(_points.step, _points.value)
    .where(
        _points.job_id == bindparam("job_id"),
        _points.series == bindparam("series"),
        _points.step >= bindparam("first"),
        _points.step <= bindparam("last"),
    )
    .order_by(_points.step)
)


class Rows(NamedTuple):
    """Summary rows of one job ready to upsert: each row's series, then the columns level,
    block, min_step, min_value, max_step, max_value, points."""

    series: list[str]
    numbers: list[Sequence[float]]


def summarize(batches: Iterable[Batch]) -> Rows:
    """The rollup rows of new points of a job's series (each after every stored point of its
    series): NumPy work its caller may do ahead of the transaction that writes them."""
    parts: list[tuple[str, int, Columns]] = []
    for series, steps, values in batches:
        if not len(steps):
            continue
        step_array = np.asarray(steps, dtype=np.int64)
        value_array = np.asarray(values, dtype=np.float64)
        if np.any(np.diff(step_array) < 0):
            order = np.argsort(step_array, kind="stable")
            step_array, value_array = step_array[order], value_array[order]
        parts += [
            (series, level, found) for level, found in summarize_levels(step_array, value_array)
        ]
    if not parts:
        return Rows([], [])
    series_column = [name for name, _, found in parts for _ in range(len(found[0]))]
    level_column = [level for _, level, found in parts for _ in range(len(found[0]))]
    numbers = [np.concatenate([found[k] for _, _, found in parts]).tolist() for k in range(6)]
    return Rows(series_column, [level_column, *numbers])


def statements(dialect: str, job_id: str, rows: Rows) -> list[bulk.Statement]:
    """The upserts that fold `rows` (summarize's, or one recomputed block's) into a job's rollups,
    on the database `dialect` ("sqlite" or "postgresql")."""
    if not rows.series:
        return []
    if dialect == "sqlite":
        return bulk.sqlite_inserts(_INSERT, (job_id,), [rows.series, *rows.numbers], _MERGE)
    columns = [bulk.pg_text_array(rows.series), *(bulk.pg_array(c) for c in rows.numbers)]
    return [(_PG_UPSERT, (job_id, *columns))]


def add(connection: Connection, job_id: str, rows: Rows) -> None:
    """Fold the rows `summarize` made of new points of a job's series into their rollups."""
    bulk.execute(connection, statements(connection.dialect.name, job_id, rows))


def _series(session: Session, job_id: str) -> list[str]:
    stmt = select(_points.series).where(_points.job_id == job_id).distinct()
    return list(session.scalars(stmt).all())


def truncate(session: Session, job_id: str, from_step: int) -> None:
    """After the points at or after `from_step` were deleted: drop the blocks that start there or
    later and recompute, finest level first, the one block per level that straddles it."""
    for level in range(1, LEVELS + 1):
        session.execute(
            sql_delete(MetricRollup).where(
                MetricRollup.job_id == job_id,
                MetricRollup.level == level,
                MetricRollup.block >= from_step // block_steps(level),
            )
        )
    connection = session.connection()
    for series in _series(session, job_id):
        for level in range(1, LEVELS + 1):
            size = block_steps(level)
            if from_step % size == 0:
                continue  # from_step starts a block of this level: none straddles it
            block = from_step // size
            children = read(session, job_id, series, [_children(level, block)])
            summary = merge(block, children)
            if summary is not None:
                add(connection, job_id, Rows([series], [[level], *([v] for v in summary)]))


def _children(level: int, block: int) -> Span:
    """The blocks (or, for level 1, the raw steps) of the level below that make up `block`."""
    size = block_steps(level - 1)
    first = block * block_steps(level) // size
    return Span(level - 1, first, first + block_steps(1) - 1)


def delete(session: Session, *job_ids: str) -> None:
    """Drop every rollup of these jobs."""
    session.execute(sql_delete(MetricRollup).where(MetricRollup.job_id.in_(job_ids)))


def rebuild(session: Session, job_id: str) -> None:
    """Recompute a job's rollups from its points (after retention thinned them out)."""
    delete(session, job_id)
    connection = session.connection()
    for series in _series(session, job_id):
        rows = session.execute(
            select(_points.step, _points.value)
            .where(_points.job_id == job_id, _points.series == series)
            .order_by(_points.step)
        ).all()
        batch = (series, [row[0] for row in rows], [row[1] for row in rows])
        add(connection, job_id, summarize([batch]))


def read(session: Session, job_id: str, series: str, spans: Sequence[Span]) -> Extremes:
    """The summaries of the spans, in step order (raw points, level 0, as one-point summaries)."""
    rows: list[Sequence[float]] = []
    for span in spans:
        params = {"job_id": job_id, "series": series, "first": span.first, "last": span.last}
        if span.level == 0:
            rows += [(s, s, v, s, v, 1) for s, v in session.execute(_RAW, params).all()]
        else:
            size = block_steps(span.level)
            for block, *extremes in session.execute(_BLOCKS, {**params, "level": span.level}):
                rows.append((block * size, *extremes))
    return Extremes.of(rows)
