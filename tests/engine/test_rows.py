"""A minibatch handed to the loss as row indices gives the gathered batch's loss and gradient."""

import numpy as np
import pytest

from tests.engine.test_kernels import problem, small_blocks
from worker.engine.kernels import limit_threads
from worker.engine.losses import make_loss
from worker.engine.sampling import BatchSampler


@pytest.mark.parametrize("sampling", ["replacement", "epoch"])
def test_sampler_rows_are_the_rows_of_its_batches(sampling: str) -> None:
    X = np.arange(30, dtype=np.float32).reshape(10, 3)
    y = np.arange(10, dtype=np.int64)
    gathering = BatchSampler(X, y, 4, sampling, seed=2)  # type: ignore[arg-type]
    indexing = BatchSampler(X, y, 4, sampling, seed=2)  # type: ignore[arg-type]
    rng_a, rng_b = np.random.default_rng(5), np.random.default_rng(5)
    for step in range(7):
        X_batch, y_batch = gathering.batch(step, rng_a)
        rows = indexing.rows(step, rng_b)
        assert rows is not None
        np.testing.assert_array_equal(y_batch, rows)
        np.testing.assert_array_equal(X_batch, X[rows])
    assert rng_a.bit_generator.state == rng_b.bit_generator.state


def test_full_batch_has_no_rows() -> None:
    X, y = np.zeros((5, 2)), np.zeros(5, dtype=np.int64)
    assert BatchSampler(X, y, None).rows(0, np.random.default_rng(0)) is None


@pytest.mark.parametrize("name", ["svm", "softmax"])
@pytest.mark.parametrize("threads", [1, 2])
def test_loss_on_rows_equals_loss_on_the_gathered_batch(
    monkeypatch: pytest.MonkeyPatch, name: str, threads: int
) -> None:
    small_blocks(monkeypatch, 3, 9, 9)
    W, X, y = problem(80, 6, 4, seed=7, dtype=np.float32)
    rows = np.random.default_rng(0).choice(80, 50, replace=True)
    loss_fn = make_loss(name, reg=0.3)
    with limit_threads(threads):
        loss, grad = loss_fn.loss_grad(W, X, y, rows)
        expected_loss, expected_grad = loss_fn.loss_grad(W, X[rows], y[rows])
        assert loss_fn.loss(W, X, y, rows) == expected_loss
    # Same blocks, same order of operations: bit-identical.
    assert loss == expected_loss
    np.testing.assert_array_equal(grad, expected_grad)
    assert grad.dtype == np.float32


def test_rows_out_of_range_are_rejected() -> None:
    W, X, y = problem(10, 3, 2)
    loss_fn = make_loss("svm")
    for bad in ([0, 10], [-1, 2]):
        with pytest.raises(IndexError, match=r"rows must lie in 0\.\.9"):
            loss_fn.loss_grad(W, X, y, np.array(bad))
