"""Rollups: block extremes kept as points are written, and the overviews read from them."""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import pytest
from sqlalchemy import func, select

from service.db.models import MetricRollup
from service.db.session import Database
from service.history import point_store, rollup, writes
from service.history import reads as history_reads
from service.history.rollup import FANOUT, LEVELS, Summary, block_steps
from service.history.writes import Points
from service.jobs import service
from service.maintenance import prune_job_history
from service.settings import Settings
from tests.worker.conftest import submit


def _brute_summaries(steps: list[int], values: list[float], level: int) -> list[Summary]:
    """Each block's extremes by the definition: lowest / highest value, earliest step on ties."""
    blocks: dict[int, list[tuple[int, float]]] = {}
    for step, value in zip(steps, values, strict=True):
        blocks.setdefault(step // block_steps(level), []).append((step, value))
    found = []
    for block, points in sorted(blocks.items()):
        low = min(points, key=lambda p: (p[1], p[0]))
        high = max(points, key=lambda p: (p[1], -p[0]))
        found.append(Summary(block, low[0], low[1], high[0], high[1], len(points)))
    return found


def _curve(count: int, seed: int, *, gaps: bool = False) -> tuple[list[int], list[float]]:
    rng = np.random.default_rng(seed)
    steps = np.cumsum(rng.integers(1, 40, count)) if gaps else np.arange(count)
    values = np.round(rng.standard_normal(count), 1)  # rounded: many ties
    return [int(s) for s in steps], [float(v) for v in values]


@pytest.mark.parametrize("level", range(1, LEVELS + 1))
@pytest.mark.parametrize(
    ("gaps", "first"), [(True, 0), (False, 0), (False, 7), (False, 4_090)], ids=str
)
def test_a_block_summary_holds_its_extremes_with_the_earliest_step_on_ties(
    level: int, gaps: bool, first: int
) -> None:
    """With gaps between steps, and every step from `first` on (summarized as a grid)."""
    steps, values = _curve(5_000, seed=level, gaps=gaps)
    steps = [step + first for step in steps]
    columns = dict(rollup.summarize_levels(np.array(steps), np.array(values)))[level]
    found = [Summary(*row) for row in zip(*(c.tolist() for c in columns), strict=True)]
    assert found == _brute_summaries(steps, values, level)


def test_a_run_of_a_few_steps_inside_one_block_is_one_summary() -> None:
    columns = dict(rollup.summarize_levels(np.array([33, 34, 35]), np.array([2.0, 1.0, 1.0])))
    assert [c.tolist() for c in columns[1]] == [[2], [34], [1.0], [33], [2.0], [3]]


@pytest.mark.parametrize(
    ("lo", "hi"), [(0, 0), (0, 15), (1, 16), (17, 300), (5, 70_000), (3, 2**33)]
)
def test_a_window_is_covered_by_blocks_exactly_once(lo: int, hi: int) -> None:
    for level in range(LEVELS + 1):
        spans = rollup.cover(lo, hi, level)
        edges = [
            (s.first * block_steps(s.level), (s.last + 1) * block_steps(s.level) - 1) for s in spans
        ]
        assert edges[0][0] == lo and edges[-1][1] == hi
        assert all(a[1] + 1 == b[0] for a, b in pairwise(edges))
        assert all(s.level <= level for s in spans)


@pytest.mark.parametrize("length", [10**4, 10**6, 10**8, 10**10])
def test_an_overview_reads_rows_bounded_by_its_size_not_the_history(length: int) -> None:
    buckets = 499  # max_points 1000
    level = rollup.level_for(0, length - 1, buckets)
    spans = rollup.cover(3, length - 1, level)
    rows = sum(s.last - s.first + 1 for s in spans)
    assert rows <= FANOUT * buckets + 2 * (FANOUT - 1) * (level + 1)


def _write_in_flushes(database: Database, job_id: str, series: str, steps: list[int],
                      values: list[float], seed: int) -> None:  # fmt: skip
    cuts = sorted(np.random.default_rng(seed).choice(len(steps), 12, replace=False).tolist())
    for start, stop in zip([0, *cuts], [*cuts, len(steps)], strict=True):
        with database.transaction() as session:
            writes.add_points(
                session, job_id, [Points(series, steps[start:stop], values[start:stop])]
            )


def _stored(database: Database, job_id: str) -> list[tuple[str, int, Summary]]:
    with database.read() as session:
        rows = session.scalars(
            select(MetricRollup)
            .where(MetricRollup.job_id == job_id)
            .order_by(MetricRollup.series, MetricRollup.level, MetricRollup.block)
        ).all()
        return [(r.series, r.level, Summary(r.block, r.min_step, r.min_value, r.max_step,
                                            r.max_value, r.points)) for r in rows]  # fmt: skip


def _expected(series: str, steps: list[int], values: list[float]) -> list[tuple[str, int, Summary]]:
    return [
        (series, level, summary)
        for level in range(1, LEVELS + 1)
        for summary in _brute_summaries(steps, values, level)
    ]


def test_flushes_keep_the_rollups_of_the_whole_history(
    settings: Settings, database: Database
) -> None:
    job_id = submit(database, settings)
    steps, values = _curve(3_000, seed=3)
    _write_in_flushes(database, job_id, "loss", steps, values, seed=4)
    assert _stored(database, job_id) == _expected("loss", steps, values)


def test_one_flush_of_several_series_keeps_each_ones_rollups(
    settings: Settings, database: Database
) -> None:
    job_id = submit(database, settings)
    loss_steps, loss = _curve(700, seed=11)
    rate_steps, rate = _curve(300, seed=12, gaps=True)
    with database.transaction() as session:
        writes.add_points(
            session, job_id, [Points("loss", loss_steps, loss), Points("lr", rate_steps, rate)]
        )
    assert _stored(database, job_id) == _expected("loss", loss_steps, loss) + _expected(
        "lr", rate_steps, rate
    )


@pytest.mark.parametrize("from_step", [0, 1, 16, 1000, 4096, 4097, 2999, 5000])
def test_a_resume_truncates_the_rollups_with_the_points(
    settings: Settings, database: Database, from_step: int
) -> None:
    job_id = submit(database, settings)
    steps, values = _curve(3_000, seed=5)
    _write_in_flushes(database, job_id, "loss", steps, values, seed=6)
    with database.transaction() as session:
        writes.truncate_history(session, job_id, from_step)
    kept = [i for i, step in enumerate(steps) if step < from_step]
    expected = _expected("loss", [steps[i] for i in kept], [values[i] for i in kept])
    assert _stored(database, job_id) == expected


def test_retention_and_deletion_keep_the_rollups_in_step(
    settings: Settings, database: Database
) -> None:
    job_id = submit(database, settings)
    steps, values = _curve(5_000, seed=7)
    _write_in_flushes(database, job_id, "loss", steps, values, seed=8)
    with database.transaction() as session:
        prune_job_history(session, job_id, max_points=100)
    with database.read() as session:
        left = point_store.points(session, job_id, "loss", after=None, limit=None)
    assert len(left) <= 100
    assert _stored(database, job_id) == _expected(
        "loss", [s for s, _ in left], [v for _, v in left]
    )
    with database.transaction() as session:
        service.cancel(session, job_id)
        service.delete(session, job_id)
    with database.read() as session:
        assert session.scalar(select(func.count()).select_from(MetricRollup)) == 0


def _brute_overview(
    steps: list[int], values: list[float], lo: int, hi: int, buckets: int
) -> list[tuple[int, float]]:
    inside = [(s, v) for s, v in zip(steps, values, strict=True) if lo <= s <= hi]
    level = rollup.level_for(inside[0][0], inside[-1][0], buckets)
    first, last = inside[0], inside[-1]
    # Each bucket takes the blocks of `level` (or finer, at the ends) that start in it.
    spans = rollup.cover(first[0], last[0], level)
    starts = {}
    for span in spans:
        size = block_steps(span.level)
        for block in range(span.first, span.last + 1):
            for step in range(block * size, (block + 1) * size):
                starts[step] = block * size
    groups: dict[int, list[tuple[int, float]]] = {}
    for step, value in inside:
        bucket = (starts[step] - first[0]) * buckets // (last[0] - first[0] + 1)
        groups.setdefault(bucket, []).append((step, value))
    kept = dict([first, last])
    for points in groups.values():
        kept.update(
            [min(points, key=lambda p: (p[1], p[0])), max(points, key=lambda p: (p[1], -p[0]))]
        )
    return sorted(kept.items())


@pytest.mark.parametrize(("start", "end"), [(None, None), (333, 2_777), (4_000, None)])
def test_an_overview_from_rollups_keeps_the_ends_and_each_buckets_extremes(
    settings: Settings, database: Database, start: int | None, end: int | None
) -> None:
    job_id = submit(database, settings)
    steps, values = _curve(5_000, seed=9)
    _write_in_flushes(database, job_id, "loss", steps, values, seed=10)
    max_points = 20  # 9 buckets: wide enough for blocks of 256 steps
    with database.read() as session:
        state = service.state(session, job_id)
        points, _, total = history_reads.series_overview(
            session, job_id, state, "loss", max_points=max_points, start=start, end=end
        )
    lo, hi = start or 0, 4_999 if end is None else end
    assert total == 5_000
    assert len(points) <= max_points
    assert points == _brute_overview(steps, values, lo, hi, (max_points - 2) // 2)
    inside = [(s, v) for s, v in zip(steps, values, strict=True) if lo <= s <= hi]
    assert min(v for _, v in points) == min(v for _, v in inside)
    assert max(v for _, v in points) == max(v for _, v in inside)
