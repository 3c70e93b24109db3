"""Downsampling a curve for plotting or retention without losing its shape.

The first and last points stay, and every bucket of the points between them keeps its minimum and
its maximum, so spikes and the overall envelope survive while the count drops to at most m.
"""

from __future__ import annotations

from collections.abc import Sequence


def keep_indices(values: Sequence[float], max_points: int) -> list[int]:
    """Indices (ascending) of at most `max_points` points that keep the curve's shape."""
    n = len(values)
    if max_points < 2:
        raise ValueError("max_points must be at least 2")
    if n <= max_points:
        return list(range(n))
    buckets = (max_points - 2) // 2
    kept = {0, n - 1}
    inner = n - 2
    for b in range(buckets):
        start = 1 + b * inner // buckets
        stop = 1 + (b + 1) * inner // buckets
        if start >= stop:
            continue
        window = range(start, stop)
        kept.add(min(window, key=values.__getitem__))
        kept.add(max(window, key=values.__getitem__))
    return sorted(kept)
