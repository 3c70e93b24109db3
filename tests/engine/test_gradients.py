"""Gradient checks: analytic gradients against centered finite differences, in float64."""

from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray

from worker.engine.gradients import numerical_gradient, relative_error
from worker.engine.losses import softmax_loss, softmax_loss_grad, svm_loss, svm_loss_grad

Array = NDArray[Any]


def problem(
    seed: int, n: int = 30, d: int = 6, c: int = 4, scale: float = 0.5
) -> tuple[Array, Array, Array]:
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    y = rng.integers(0, c, n).astype(np.int64)
    W = scale * rng.standard_normal((c, d))
    return W, X, y


def smallest_distance_to_a_kink(W: Array, X: Array, y: Array, delta: float = 1.0) -> float:
    margins = X @ W.T - (X @ W.T)[np.arange(len(y)), y][:, None] + delta
    margins[np.arange(len(y)), y] = np.inf
    return float(np.abs(margins).min())


@pytest.mark.parametrize("reg", [0.0, 0.1])
@pytest.mark.parametrize("seed", [0, 1])
def test_softmax_gradient_matches_centered_differences(seed: int, reg: float) -> None:
    W, X, y = problem(seed)
    _, analytic = softmax_loss_grad(W, X, y, reg)
    numerical = numerical_gradient(lambda w: softmax_loss(w, X, y, reg), W)
    assert relative_error(analytic, numerical).max() < 1e-7


@pytest.mark.parametrize("reg", [0.0, 0.1])
@pytest.mark.parametrize("seed", [0, 1])
def test_svm_gradient_matches_centered_differences_away_from_kinks(seed: int, reg: float) -> None:
    W, X, y = problem(seed)
    # A step of h moves a margin by at most 2 h max|x|; keep every margin clear of its kink.
    assert smallest_distance_to_a_kink(W, X, y) > 2 * 1e-5 * np.abs(X).max()
    _, analytic = svm_loss_grad(W, X, y, reg)
    numerical = numerical_gradient(lambda w: svm_loss(w, X, y, reg), W)
    assert relative_error(analytic, numerical).max() < 1e-7


def test_forward_differences_are_a_coarser_approximation() -> None:
    W, X, y = problem(2)
    _, analytic = softmax_loss_grad(W, X, y, 0.0)

    def f(w: Array) -> float:
        return softmax_loss(w, X, y, 0.0)

    forward = numerical_gradient(f, W, difference="forward")
    centered = numerical_gradient(f, W, difference="centered")
    forward_error = relative_error(analytic, forward).max()
    assert forward_error < 1e-3
    assert relative_error(analytic, centered).max() < forward_error


def test_numerical_gradient_restores_every_entry_and_returns_float64() -> None:
    W = np.array([[0.1, -0.2, 0.3]], dtype=np.float32)
    before = W.copy()
    grad = numerical_gradient(lambda w: float(np.sum(w.astype(np.float64) ** 2)), W, h=1e-3)
    np.testing.assert_array_equal(W, before)
    assert grad.dtype == np.float64
    np.testing.assert_allclose(grad, 2 * before.astype(np.float64), rtol=1e-3)


def test_numerical_gradient_of_a_quadratic_is_exact_with_centered_differences() -> None:
    W = np.array([[1.0, -2.0], [0.5, 3.0]])
    grad = numerical_gradient(lambda w: float(np.sum(w**2)), W)
    np.testing.assert_allclose(grad, 2 * W, rtol=1e-9)


def test_numerical_gradient_rejects_unknown_difference() -> None:
    with pytest.raises(ValueError, match="difference"):
        numerical_gradient(lambda w: 0.0, np.zeros((1, 1)), difference="backward")  # type: ignore[arg-type]


def test_relative_error_is_symmetric_and_zero_when_both_are_zero() -> None:
    a = np.array([1.0, 0.0, -2.0, 3.0])
    n = np.array([1.1, 0.0, -2.0, -3.0])
    expected = np.array([0.1 / 1.1, 0.0, 0.0, 2.0])
    np.testing.assert_allclose(relative_error(a, n), expected)
    np.testing.assert_allclose(relative_error(n, a), expected)
