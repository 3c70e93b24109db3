"""The landscape task: 1-D and 2-D slices through random directions, on all or k examples."""

from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray

from worker.engine.datasets import load_builtin
from worker.engine.landscape import landscape
from worker.engine.losses import make_loss
from worker.engine.preprocess import Preprocessor

Array = NDArray[Any]


def toy() -> tuple[Array, Array]:
    dataset = load_builtin("toy")
    pre = Preprocessor.fit(dataset.X_train, center=True, standardize=False, bias=True)
    return pre.transform(dataset.X_train, "float64"), dataset.y_train


def streams(seed: int, shape: tuple[int, int]) -> tuple[Array, Array, np.random.Generator]:
    """The documented draws: W from the first stream, (W1, W2) from the second, rows the third."""
    w_rng, d_rng, row_rng = (
        np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(3)
    )
    return 0.001 * w_rng.standard_normal(shape), d_rng.standard_normal((2, *shape)), row_rng


@pytest.mark.parametrize("loss", ["svm", "softmax"])
def test_toy_line_through_a_random_w(loss: str) -> None:
    X, y = toy()
    result = landscape(X, y, 3, loss=loss, points=21, span=2.0, seed=5)
    W, (W1, _), _ = streams(5, (3, 2))
    assert result.betas is None
    np.testing.assert_allclose(result.alphas, np.linspace(-2.0, 2.0, 21))
    expected = [make_loss(loss).loss(W + a * W1, X, y) for a in result.alphas]
    np.testing.assert_allclose(result.loss, expected, rtol=1e-12)
    assert result.loss[10] == pytest.approx(2.0 if loss == "svm" else np.log(3.0), abs=0.01)


def test_toy_single_example_svm_slice_is_a_piecewise_linear_bowl() -> None:
    X, y = toy()
    result = landscape(X, y, 3, points=201, span=5.0, examples=1, W=np.zeros((3, 2)), seed=1)
    losses = np.asarray(result.loss)
    curvature = np.diff(losses, 2)
    assert np.all(curvature > -1e-9)  # convex: a sum of hinges of linear functions
    kinks = np.count_nonzero(np.abs(curvature) > 1e-9)
    assert 1 <= kinks <= 4  # two hinges: at most two kinks, each bending two second differences
    assert losses[100] == pytest.approx(2.0)  # W = 0: both margins equal delta
    assert losses.min() < min(losses[0], losses[-1])  # a bowl: lowest inside the slice
    _, (W1, _), row_rng = streams(1, (3, 2))
    row = row_rng.choice(3, size=1, replace=False)
    expected = [make_loss("svm").loss(a * W1, X[row], y[row]) for a in result.alphas]
    np.testing.assert_allclose(losses, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("reg", [0.0, 0.3])
@pytest.mark.parametrize("loss", ["svm", "softmax"])
def test_toy_plane_matches_direct_evaluation(loss: str, reg: float) -> None:
    X, y = toy()
    W = np.array([[0.2, -0.1], [0.0, 0.3], [-0.4, 0.1]])
    result = landscape(X, y, 3, loss=loss, reg=reg, dims=2, points=7, span=1.5, W=W, seed=2)
    assert result.betas == result.alphas
    grid = np.asarray(result.loss)
    assert grid.shape == (7, 7)
    _, (W1, W2), _ = streams(2, (3, 2))
    loss_fn = make_loss(loss, reg)
    for i, a in enumerate(result.alphas):
        for j, b in enumerate(result.betas):
            assert grid[i, j] == pytest.approx(loss_fn.loss(W + a * W1 + b * W2, X, y), rel=1e-10)
    assert grid[3, 3] == pytest.approx(loss_fn.loss(W, X, y), rel=1e-12)


def test_many_examples_and_float32_data() -> None:
    dataset = load_builtin("blobs", n_train=300, n_val=0, n_test=0)
    pre = Preprocessor.fit(dataset.X_train, center=True, standardize=False, bias=True)
    X = pre.transform(dataset.X_train, "float32")
    full = landscape(X, dataset.y_train, 3, dims=2, points=11)
    some = landscape(X, dataset.y_train, 3, dims=2, points=11, examples=50)
    assert np.asarray(full.loss).shape == np.asarray(some.loss).shape == (11, 11)
    assert np.all(np.isfinite(full.loss))
    assert full.loss != some.loss
    assert landscape(X, dataset.y_train, 3, examples=300).loss == pytest.approx(
        landscape(X, dataset.y_train, 3).loss, rel=1e-6
    )


def test_bad_arguments_are_rejected() -> None:
    X, y = toy()
    for bad, match in (
        ({"dims": 3}, "dims"), ({"points": 1}, "points"), ({"span": 0.0}, "span"),
        ({"examples": 4}, "examples"), ({"W": np.zeros((2, 2))}, "shape"),
    ):  # fmt: skip
        with pytest.raises(ValueError, match=match):
            landscape(X, y, 3, **bad)


def test_same_seed_same_slice_and_directions_independent_of_the_given_w() -> None:
    X, y = toy()
    assert landscape(X, y, 3, dims=2, points=5, seed=4) == landscape(
        X, y, 3, dims=2, points=5, seed=4
    )
    assert landscape(X, y, 3, seed=4) != landscape(X, y, 3, seed=5)
    W, _, _ = streams(4, (3, 2))
    assert landscape(X, y, 3, seed=4, W=W) == landscape(X, y, 3, seed=4)
