"""Trials drawn from a space: grid order and points, random draws, dotted paths."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from service.sweeps import space
from service.sweeps.halving import keeps, rungs
from service.sweeps.schemas import Dimension


def dims(**axes: dict[str, Any]) -> dict[str, Dimension]:
    return {path.replace("__", "."): Dimension.model_validate(d) for path, d in axes.items()}


def test_a_grid_is_every_combination_with_the_last_axis_fastest() -> None:
    axes = dims(
        model__reg={"values": [0, 1]},
        optimizer__learning_rate={"log_uniform": [1e-3, 1e-1], "num": 3},
    )
    grid = space.grid(axes)

    assert len(grid) == 6 == space.grid_size(axes)
    assert [p["model.reg"] for p in grid] == [0, 0, 0, 1, 1, 1]
    rates = [p["optimizer.learning_rate"] for p in grid[:3]]
    np.testing.assert_allclose(rates, [1e-3, 1e-2, 1e-1])


def test_random_draws_are_reproducible_and_inside_their_ranges() -> None:
    axes = dims(
        a={"log_uniform": [1e-8, 1e-6]}, b={"uniform": [2.0, 3.0]}, c={"values": ["x", "y"]}
    )
    first = space.random(axes, 200, seed=7)

    assert first == space.random(axes, 200, seed=7) != space.random(axes, 200, seed=8)
    assert all(1e-8 <= p["a"] <= 1e-6 and 2.0 <= p["b"] <= 3.0 for p in first)
    assert {p["c"] for p in first} == {"x", "y"}
    logs = np.log10([p["a"] for p in first])
    assert (logs < -7).mean() == pytest.approx(0.5, abs=0.15)  # uniform in log space


@pytest.mark.parametrize(
    ("path", "problem"),
    [
        ("optimizer.learning_rate", None),
        ("optimizer.lr_schedule.gamma", None),
        ("dataset.id", None),
        ("seed", None),
        ("optimizer.learnin_rate", "optimizer has no field 'learnin_rate'"),
        ("model.reg.x", "model.reg has no fields below it"),
        ("Model", "not a dotted path of JobSpec fields (e.g. optimizer.learning_rate)"),
    ],
)
def test_paths_must_name_jobspec_fields(path: str, problem: str | None) -> None:
    assert space.path_problem(path) == problem


def test_apply_sets_dotted_paths_without_touching_the_base() -> None:
    base = {"model": {"loss": "svm"}, "optimizer": {"type": "sgd"}}
    spec = space.apply(base, {"model.reg": 0.5, "preprocess.bias": False})

    assert spec == {"model": {"loss": "svm", "reg": 0.5}, "optimizer": {"type": "sgd"},
                    "preprocess": {"bias": False}}  # fmt: skip
    assert base == {"model": {"loss": "svm"}, "optimizer": {"type": "sgd"}}


def test_rungs_and_the_keep_rule() -> None:
    assert rungs(100, 3, 1500) == [100, 300, 900]
    assert rungs(100, 2, 201) == [100]
    assert keeps(0.5, [0.5], 3)  # the first to reach a rung goes on
    assert not keeps(0.4, [0.5, 0.4], 2)
    assert keeps(0.6, [0.5, 0.7, 0.6, 0.1], 2)  # top 2 of 4
    assert not keeps(0.5, [0.5, 0.7, 0.6, 0.1], 2)
