"""Downsampling keeps the first and last points and each bucket's extremes."""

from __future__ import annotations

import math

import pytest

from service.history.downsample import keep_indices


def test_short_curves_are_kept_whole() -> None:
    assert keep_indices([3.0, 1.0, 2.0], 10) == [0, 1, 2]


def test_a_long_curve_keeps_at_most_m_points_including_the_ends() -> None:
    values = [math.sin(i / 50) + i / 1000 for i in range(100_000)]

    kept = keep_indices(values, 500)

    assert len(kept) <= 500
    assert kept[0] == 0 and kept[-1] == len(values) - 1
    assert kept == sorted(set(kept))


def test_spikes_survive_downsampling() -> None:
    values = [1.0] * 10_000
    values[1234], values[7777] = 50.0, -50.0

    kept = keep_indices(values, 20)

    assert 1234 in kept and 7777 in kept


def test_fewer_than_two_points_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 2"):
        keep_indices([1.0, 2.0, 3.0], 1)
