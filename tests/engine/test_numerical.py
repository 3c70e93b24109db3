"""Finite differences through the linear scores == the per-entry loop; training with them."""

import dataclasses
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray

from worker.engine.datasets import load_builtin
from worker.engine.gradients import Difference, numerical_gradient
from worker.engine.losses import make_loss
from worker.engine.numerical import (
    loss_and_numerical_gradient,
    numerical_gradient_linear,
    svm_centered_with_kinks,
)
from worker.engine.preprocess import Preprocessor
from worker.engine.train import TrainData, init_state, prepare_data, run
from worker.engine.train_config import TrainConfig

Array = NDArray[Any]
EPS = float(np.finfo(np.float64).eps)


def problem(seed: int, n: int = 60, d: int = 7, c: int = 4) -> tuple[Array, Array, Array]:
    rng = np.random.default_rng(seed)
    X = 3.0 * rng.standard_normal((n, d))
    X[:, -1] = 1.0  # a bias column, as the engine's data has
    y = rng.integers(0, c, n).astype(np.int64)
    W = 0.5 * rng.standard_normal((c, d))
    return W, X, y


def assert_matches_the_loop(structured: Array, loop: Array, loss_value: float, h: float) -> None:
    """1e-8 relative, beyond the loop's own rounding (its numerator is exact to ~eps * L)."""
    noise = 8.0 * EPS * max(abs(loss_value), 1.0) / h
    np.testing.assert_allclose(structured, loop, rtol=1e-8, atol=noise)


@pytest.mark.parametrize("difference", ["centered", "forward"])
@pytest.mark.parametrize("reg", [0.0, 0.3])
@pytest.mark.parametrize("name", ["svm", "softmax"])
def test_structured_differences_equal_the_per_entry_loop(
    name: str, reg: float, difference: Difference
) -> None:
    W, X, y = problem(0)
    loss = make_loss(name, reg)
    value, structured = loss_and_numerical_gradient(loss, W, X, y, difference=difference)
    loop = numerical_gradient(lambda w: loss.loss(w, X, y), W.copy(), difference=difference)
    assert structured.dtype == np.float64
    assert value == pytest.approx(loss.loss(W, X, y), rel=1e-12)
    assert_matches_the_loop(structured, loop, value, 1e-5)


@pytest.mark.parametrize("difference", ["centered", "forward"])
@pytest.mark.parametrize("reg", [0.0, 0.3])
def test_svm_differences_are_exact_where_steps_cross_kinks(
    reg: float, difference: Difference
) -> None:
    # h = 0.05 moves margins by up to ~0.5: many hinges change side, and the finite difference
    # is then far from the subgradient; the structured one must still equal the loop.
    W, X, y = problem(1)
    loss, h = make_loss("svm", reg), 0.05
    value, structured = loss_and_numerical_gradient(loss, W, X, y, h=h, difference=difference)
    loop = numerical_gradient(lambda w: loss.loss(w, X, y), W.copy(), h=h, difference=difference)
    _, analytic = loss.loss_grad(W, X, y)
    _, kinks = svm_centered_with_kinks(loss, W, X, y, h=h)
    assert 0 < kinks.sum() < kinks.size
    assert np.abs(analytic - loop).max() > 1e-3  # the kinks matter here
    assert_matches_the_loop(structured, loop, value, h)


def test_kink_mask_marks_exactly_the_entries_where_the_difference_leaves_the_subgradient() -> None:
    W, X, y = problem(2)
    loss, h = make_loss("svm", 0.0), 0.02
    centered, kinks = svm_centered_with_kinks(loss, W, X, y, h=h)
    _, analytic = loss.loss_grad(W, X, y)
    np.testing.assert_allclose(centered[~kinks], analytic[~kinks], rtol=1e-9, atol=1e-12)
    assert kinks.any()
    assert not np.allclose(centered[kinks], analytic[kinks], rtol=1e-9, atol=1e-12)


def test_single_example_svm_bowl_and_zero_weights() -> None:
    # W = 0: every margin equals delta, nothing is near a kink; the difference is the analytic.
    _, X, y = problem(3, n=1)
    W = np.zeros((4, X.shape[1]))
    loss = make_loss("svm", 0.0)
    structured = numerical_gradient_linear(loss, W, X, y)
    loop = numerical_gradient(lambda w: loss.loss(w, X, y), W.copy())
    assert_matches_the_loop(structured, loop, loss.loss(W, X, y), 1e-5)
    np.testing.assert_allclose(structured, loss.loss_grad(W, X, y)[1], atol=1e-9)


def test_float32_inputs_give_a_float64_gradient_close_to_the_analytic() -> None:
    W, X, y = problem(4)
    loss = make_loss("softmax", 0.1)
    W32, X32 = W.astype(np.float32), X.astype(np.float32)
    grad = numerical_gradient_linear(loss, W32, X32, y)
    assert grad.dtype == np.float64
    _, analytic = loss.loss_grad(W, X, y)
    np.testing.assert_allclose(grad, analytic, rtol=1e-4, atol=1e-5)


def test_bad_arguments_are_rejected() -> None:
    W, X, y = problem(5)
    with pytest.raises(ValueError, match="difference"):
        numerical_gradient_linear(make_loss("svm"), W, X, y, difference="backward")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="h must be positive"):
        numerical_gradient_linear(make_loss("svm"), W, X, y, h=0.0)
    with pytest.raises(ValueError, match="SVM"):
        svm_centered_with_kinks(make_loss("softmax"), W, X, y)


def blobs64() -> tuple[TrainData, int]:
    dataset = load_builtin("blobs", n_train=40, n_val=10, n_test=0, options={"n_features": 5})
    pre = Preprocessor.fit(dataset.X_train, center=True, standardize=False, bias=True)
    return prepare_data(dataset, pre, "float64"), dataset.n_classes


def trajectory(config: TrainConfig, data: TrainData, n_classes: int) -> tuple[Array, Array]:
    state = init_state(config, n_classes, data.X_train.shape[1])
    losses = np.concatenate([chunk.losses for chunk in run(state, config, data)])
    return losses, state.W


@pytest.mark.parametrize("difference", ["centered", "forward"])
@pytest.mark.parametrize("name", ["svm", "softmax"])
def test_numerical_gradient_training_follows_the_analytic_trajectory(
    name: str, difference: Difference
) -> None:
    data, n_classes = blobs64()
    analytic = TrainConfig(
        loss=name, reg=0.01, learning_rate=0.05, batch_size=10, iterations=60, dtype="float64",
        optimizer="momentum", init_scale=0.01, seed=3,
    )  # fmt: skip
    numerical = dataclasses.replace(analytic, gradient="numerical", difference=difference)
    losses_a, W_a = trajectory(analytic, data, n_classes)
    losses_n, W_n = trajectory(numerical, data, n_classes)
    # Centered differences are within O(h^2 x^2) of the gradient, forward ones within O(h x),
    # unless a step crosses a hinge kink (then O(1/batch) in a few entries, SVM only).
    tolerance = 1e-6 if difference == "centered" else 1e-3
    np.testing.assert_allclose(losses_n, losses_a, rtol=tolerance)
    np.testing.assert_allclose(W_n, W_a, rtol=tolerance, atol=tolerance * np.abs(W_a).max())


def test_numerical_gradient_runs_in_float32_and_rejects_bad_settings() -> None:
    dataset = load_builtin("blobs", n_train=40, n_val=10, n_test=0)
    pre = Preprocessor.fit(dataset.X_train, center=True, standardize=False, bias=True)
    data = prepare_data(dataset, pre, "float32")
    config = TrainConfig(gradient="numerical", iterations=5, batch_size=8, loss="softmax")
    state = init_state(config, dataset.n_classes, data.X_train.shape[1])
    list(run(state, config, data))
    assert state.W.dtype == np.float32
    for bad in ({"gradient": "symbolic"}, {"h": 0.0}, {"h": float("nan")}, {"difference": "x"}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            TrainConfig(**bad)
