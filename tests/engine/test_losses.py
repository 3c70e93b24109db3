"""The vectorized losses agree with naive loop oracles and pass the notes' sanity checks."""

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray

from worker.engine.losses import (
    make_loss,
    softmax_loss,
    softmax_loss_grad,
    svm_loss,
    svm_loss_grad,
)

Array = NDArray[Any]
LossGrad = Callable[..., tuple[float, Array]]


def naive_svm_loss_grad(
    W: Array, X: Array, y: Array, reg: float, delta: float = 1.0
) -> tuple[float, Array]:
    """Assignment 1's svm_loss_naive, in the (C, D) layout: one example, one class at a time."""
    n_classes = W.shape[0]
    loss, dW = 0.0, np.zeros(W.shape)
    for i in range(X.shape[0]):
        scores = W @ X[i]
        for j in range(n_classes):
            if j == y[i]:
                continue
            margin = scores[j] - scores[y[i]] + delta
            if margin > 0:
                loss += margin
                dW[j] += X[i]
                dW[y[i]] -= X[i]
    loss /= X.shape[0]
    dW /= X.shape[0]
    return loss + reg * float(np.sum(W * W)), dW + 2 * reg * W


def naive_softmax_loss_grad(W: Array, X: Array, y: Array, reg: float) -> tuple[float, Array]:
    """Assignment 1's softmax_loss_naive: per-example probabilities with the max shift."""
    loss, dW = 0.0, np.zeros(W.shape)
    for i in range(X.shape[0]):
        scores = W @ X[i]
        scores = scores - scores.max()
        probs = np.exp(scores) / np.sum(np.exp(scores))
        loss -= math.log(probs[y[i]])
        for j in range(W.shape[0]):
            dW[j] += (probs[j] - (j == y[i])) * X[i]
    loss /= X.shape[0]
    dW /= X.shape[0]
    return loss + reg * float(np.sum(W * W)), dW + 2 * reg * W


def random_problem(
    seed: int, n: int = 40, d: int = 7, c: int = 5, dtype: Any = np.float64, scale: float = 0.1
) -> tuple[Array, Array, Array]:
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)).astype(dtype)
    y = rng.integers(0, c, n).astype(np.int64)
    W = (scale * rng.standard_normal((c, d))).astype(dtype)
    return W, X, y


@pytest.mark.parametrize("reg", [0.0, 0.3])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_vectorized_svm_equals_the_naive_loops(seed: int, reg: float) -> None:
    W, X, y = random_problem(seed, scale=0.5)
    loss, grad = svm_loss_grad(W, X, y, reg)
    expected_loss, expected_grad = naive_svm_loss_grad(W, X, y, reg)
    assert loss == pytest.approx(expected_loss, rel=1e-12)
    np.testing.assert_allclose(grad, expected_grad, rtol=1e-10, atol=1e-12)


def test_svm_margin_delta_is_honoured() -> None:
    W, X, y = random_problem(3, scale=0.5)
    loss, grad = svm_loss_grad(W, X, y, 0.1, delta=2.5)
    expected_loss, expected_grad = naive_svm_loss_grad(W, X, y, 0.1, delta=2.5)
    assert loss == pytest.approx(expected_loss, rel=1e-12)
    np.testing.assert_allclose(grad, expected_grad, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("reg", [0.0, 0.3])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_vectorized_softmax_equals_the_naive_loops(seed: int, reg: float) -> None:
    W, X, y = random_problem(seed, scale=0.5)
    loss, grad = softmax_loss_grad(W, X, y, reg)
    expected_loss, expected_grad = naive_softmax_loss_grad(W, X, y, reg)
    assert loss == pytest.approx(expected_loss, rel=1e-12)
    np.testing.assert_allclose(grad, expected_grad, rtol=1e-10, atol=1e-12)


def test_loss_only_functions_match_loss_grad() -> None:
    W, X, y = random_problem(4, scale=0.5)
    assert svm_loss(W, X, y, 0.2, 1.5) == svm_loss_grad(W, X, y, 0.2, 1.5)[0]
    assert softmax_loss(W, X, y, 0.2) == softmax_loss_grad(W, X, y, 0.2)[0]


@pytest.mark.parametrize("loss_grad", [svm_loss_grad, softmax_loss_grad])
def test_float32_inputs_give_float32_gradients_close_to_float64(loss_grad: LossGrad) -> None:
    W, X, y = random_problem(5, dtype=np.float32, scale=0.5)
    loss, grad = loss_grad(W, X, y, 0.1)
    loss64, grad64 = loss_grad(W.astype(np.float64), X.astype(np.float64), y, 0.1)
    assert isinstance(loss, float)
    assert grad.dtype == np.float32
    assert grad.shape == W.shape
    assert loss == pytest.approx(loss64, rel=1e-5)
    np.testing.assert_allclose(grad, grad64, rtol=1e-4, atol=1e-5)


def test_softmax_survives_huge_scores_thanks_to_the_max_shift() -> None:
    W, X, y = random_problem(6, scale=1e4)
    loss, grad = softmax_loss_grad(W, X, y, 0.0)
    assert math.isfinite(loss)
    assert np.all(np.isfinite(grad))


@pytest.mark.parametrize(("name", "expected"), [("svm", 9.0), ("softmax", math.log(10))])
def test_tiny_weights_give_the_notes_initial_loss(name: str, expected: float) -> None:
    """With W ~ 0 every SVM margin is delta (loss C - 1); softmax is uniform (loss ln C)."""
    rng = np.random.default_rng(7)
    X = rng.standard_normal((500, 50))
    y = rng.integers(0, 10, 500)
    W = 1e-6 * rng.standard_normal((10, 50))
    assert make_loss(name, reg=0.0).loss(W, X, y) == pytest.approx(expected, rel=1e-3)


def test_the_regularizer_covers_the_whole_w_including_the_bias_column() -> None:
    W = np.array([[1.0, 2.0], [3.0, 4.0]])
    X = np.zeros((1, 2))
    y = np.array([0])
    loss, grad = svm_loss_grad(W, X, y, reg=0.5, delta=0.0)
    assert loss == pytest.approx(0.5 * 30.0)
    np.testing.assert_allclose(grad, 2 * 0.5 * W)


def test_make_loss_binds_hyperparameters() -> None:
    W, X, y = random_problem(8, scale=0.5)
    svm = make_loss("svm", reg=0.1, delta=2.0)
    assert svm.loss(W, X, y) == svm_loss(W, X, y, 0.1, 2.0)
    loss, grad = svm.loss_grad(W, X, y)
    assert loss == svm_loss(W, X, y, 0.1, 2.0)
    np.testing.assert_array_equal(grad, svm_loss_grad(W, X, y, 0.1, 2.0)[1])
    softmax = make_loss("softmax", reg=0.1)
    assert softmax.loss(W, X, y) == softmax_loss(W, X, y, 0.1)


def test_make_loss_rejects_unknown_names() -> None:
    with pytest.raises(ValueError, match="unknown loss 'hinge'"):
        make_loss("hinge", reg=0.0)
