"""Min/max rollups of a series: what lets a downsampled curve read a bounded number of rows.

Level l (1..LEVELS) cuts the steps into blocks of FANOUT**l steps; block b of level l holds steps
b * FANOUT**l up to (b + 1) * FANOUT**l - 1, and its summary is the step and value of its lowest
and of its highest point (the earliest step on ties) and how many points it has. Writers keep the
summaries as they append points; a reader of the window lo..hi takes its blocks from the coarsest
level whose blocks are still no wider than one bucket of the picture, so it reads between
`buckets` and FANOUT * `buckets` summaries (plus at most 2 * (FANOUT - 1) per finer level and
raw point at the window's two ragged ends) however many points the history has.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

FANOUT = 16
LEVELS = 6  # blocks up to 16**6 = 16.7M steps: reads stay bounded up to ~10**10-step histories


class Summary(NamedTuple):
    """A block's (or a single point's) extremes."""

    block: int
    min_step: int
    min_value: float
    max_step: int
    max_value: float
    points: int


class Span(NamedTuple):
    """Blocks first..last (inclusive) of one level; level 0 is raw points, steps first..last."""

    level: int
    first: int
    last: int


def block_steps(level: int) -> int:
    return int(FANOUT**level)


# A level's summaries as columns: block, min_step, min_value, max_step, max_value, points.
Columns = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def _reduce(
    keys: np.ndarray,
    min_step: np.ndarray,
    min_value: np.ndarray,
    max_step: np.ndarray,
    max_value: np.ndarray,
    points: np.ndarray,
) -> Columns:
    """One summary per block of the next level (key // FANOUT) of these summaries, keys
    ascending: the lowest of their minima and the highest of their maxima, the earliest on ties."""
    n = len(keys)
    consecutive = bool((np.diff(keys) == 1).all())
    if consecutive and np.isfinite(min_value).all() and np.isfinite(max_value).all():
        return _reduce_consecutive((keys, min_step, min_value, max_step, max_value, points))
    blocks = keys // FANOUT
    starts = np.flatnonzero(np.r_[True, blocks[1:] != blocks[:-1]])
    runs = np.diff(np.r_[starts, n])
    index = np.arange(n)
    lows = np.minimum.reduceat(min_value, starts)
    highs = np.maximum.reduceat(max_value, starts)
    at_low = np.minimum.reduceat(np.where(min_value == np.repeat(lows, runs), index, n), starts)
    at_high = np.minimum.reduceat(np.where(max_value == np.repeat(highs, runs), index, n), starts)
    counts = np.add.reduceat(points, starts)
    return blocks[starts], min_step[at_low], lows, max_step[at_high], highs, counts


def _reduce_consecutive(found: Columns) -> Columns:
    """`_reduce` of keys k, k + 1, ..., k + n - 1 with finite values (a job logging every step):
    the columns laid out as a grid of one block per row, padded at both ends with values that
    never win, so each block is one argmin, argmax and sum along a row."""
    keys, min_step, min_value, max_step, max_value, points = found
    n = len(keys)
    lead = int(keys[0]) % FANOUT
    rows = -(-(lead + n) // FANOUT)

    def grid(column: np.ndarray, fill: float) -> np.ndarray:
        out = np.full(rows * FANOUT, fill, dtype=column.dtype)
        out[lead : lead + n] = column
        return out.reshape(rows, FANOUT)

    lows, highs = grid(min_value, np.inf), grid(max_value, -np.inf)
    at_low, at_high = lows.argmin(axis=1), highs.argmax(axis=1)  # the first on ties
    every = np.arange(rows)
    return (
        int(keys[0]) // FANOUT + every,
        grid(min_step, 0)[every, at_low],
        lows[every, at_low],
        grid(max_step, 0)[every, at_high],
        highs[every, at_high],
        grid(points, 0).sum(axis=1),
    )


def summarize_levels(steps: np.ndarray, values: np.ndarray) -> list[tuple[int, Columns]]:
    """Each level's summaries of the blocks the points (steps ascending) fall in: level 1 from
    the points, each coarser one from the level below."""
    if len(steps) == 0:
        return []
    found = _reduce(steps, steps, values, steps, values, np.ones(len(steps), np.int64))
    levels = [(1, found)]
    for level in range(2, LEVELS + 1):
        found = _reduce(*found)
        levels.append((level, found))
    return levels


class Extremes(NamedTuple):
    """Summaries as columns, in step order: `start` is the first step each one's block covers."""

    start: np.ndarray
    min_step: np.ndarray
    min_value: np.ndarray
    max_step: np.ndarray
    max_value: np.ndarray
    points: np.ndarray

    @classmethod
    def of(cls, rows: Sequence[Sequence[float]]) -> Extremes:
        """From rows (start, min_step, min_value, max_step, max_value, points)."""
        columns = list(zip(*rows, strict=True)) if rows else [()] * 6
        kinds = (np.int64, np.int64, np.float64, np.int64, np.float64, np.int64)
        return cls(*(np.asarray(c, dtype=k) for c, k in zip(columns, kinds, strict=True)))


def _lowest(group: np.ndarray, value: np.ndarray, step: np.ndarray) -> np.ndarray:
    """Index of each group's lowest value (earliest step on ties); groups ascending."""
    order = np.lexsort((step, value, group))
    firsts = np.r_[True, group[order][1:] != group[order][:-1]]
    return order[firsts]


def merge(block: int, parts: Extremes) -> Summary | None:
    """One summary of several (the children of `block`); None if there are none."""
    if len(parts.start) == 0:
        return None
    group = np.zeros(len(parts.start), dtype=np.int64)
    low = _lowest(group, parts.min_value, parts.min_step)[0]
    high = _lowest(group, -parts.max_value, parts.max_step)[0]
    return Summary(
        block, int(parts.min_step[low]), float(parts.min_value[low]), int(parts.max_step[high]),
        float(parts.max_value[high]), int(parts.points.sum()),
    )  # fmt: skip


def level_for(lo: int, hi: int, buckets: int) -> int:
    """The coarsest level whose blocks fit in a bucket of lo..hi cut into `buckets` buckets."""
    width = (hi - lo + 1) / max(1, buckets)
    level = 0
    while level < LEVELS and block_steps(level + 1) <= width:
        level += 1
    return level


def cover(lo: int, hi: int, level: int) -> list[Span]:
    """Steps lo..hi as whole blocks of `level`, their ragged ends as blocks of finer levels.

    Spans come in step order, at most one of `level` and two of each finer level.
    """
    if lo > hi:
        return []
    if level == 0:
        return [Span(0, lo, hi)]
    size = block_steps(level)
    first = -(-lo // size)
    last = (hi + 1) // size - 1
    if first > last:
        return cover(lo, hi, level - 1)
    return [
        *cover(lo, first * size - 1, level - 1),
        Span(level, first, last),
        *cover((last + 1) * size, hi, level - 1),
    ]


def bucket_extremes(found: Extremes, lo: int, hi: int, buckets: int) -> list[tuple[int, float]]:
    """Each bucket's lowest and highest point (a summary is in the bucket its block starts in)."""
    if len(found.start) == 0:
        return []
    group = (found.start - lo) * buckets // (hi - lo + 1)
    low = _lowest(group, found.min_value, found.min_step)
    high = _lowest(group, -found.max_value, found.max_step)
    kept = dict(zip(found.min_step[low].tolist(), found.min_value[low].tolist(), strict=True))
    kept.update(zip(found.max_step[high].tolist(), found.max_value[high].tolist(), strict=True))
    return sorted(kept.items())
