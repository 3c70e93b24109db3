"""Minibatches are drawn as documented; predictions are the arg-max of X @ W.T."""

import numpy as np
import pytest
from numpy.typing import NDArray

from worker.engine.byte_rows import as_float
from worker.engine.metrics import accuracy, predict, predict_scores
from worker.engine.sampling import BatchSampler


def rows(n: int = 10, d: int = 3) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
    """X whose first column is the row index, so a batch tells which rows it holds."""
    X = np.zeros((n, d), dtype=np.float32)
    X[:, 0] = np.arange(n)
    return X, np.arange(n, dtype=np.int64)


def test_full_batch_is_the_whole_training_set() -> None:
    X, y = rows()
    X_batch, y_batch = BatchSampler(X, y, None).batch(0, np.random.default_rng(0))
    assert X_batch is X
    assert y_batch is y


def test_replacement_sampling_is_the_courses_rng_choice() -> None:
    X, y = rows()
    sampler = BatchSampler(X, y, 4, "replacement")
    X_batch, y_batch = sampler.batch(0, np.random.default_rng(7))
    expected = np.random.default_rng(7).choice(10, 4, replace=True)
    np.testing.assert_array_equal(y_batch, expected)
    np.testing.assert_array_equal(as_float(X_batch)[:, 0], expected)
    assert X_batch.dtype == np.float32


def test_epoch_sampling_visits_every_row_once_per_epoch() -> None:
    X, y = rows()
    sampler = BatchSampler(X, y, 4, "epoch", seed=3)
    rng = np.random.default_rng(0)
    state_before = rng.bit_generator.state
    epochs = []
    for epoch in range(2):
        batches = [sampler.batch(3 * epoch + k, rng)[1].copy() for k in range(3)]
        assert [len(batch) for batch in batches] == [4, 4, 2]
        epochs.append(np.concatenate(batches))
        np.testing.assert_array_equal(np.sort(epochs[-1]), np.arange(10))
    assert not np.array_equal(epochs[0], epochs[1])
    assert rng.bit_generator.state == state_before
    # Stateless per step: a fresh sampler (a resumed run) draws the same batch.
    again = BatchSampler(X, y, 4, "epoch", seed=3).batch(4, rng)[1]
    np.testing.assert_array_equal(again, epochs[1][4:8])


def test_sampler_rejects_batches_larger_than_the_training_set() -> None:
    X, y = rows()
    with pytest.raises(ValueError, match="batch_size must be between 1 and the 10"):
        BatchSampler(X, y, 11)


def test_predictions_are_the_highest_scores() -> None:
    W = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, -1.0]])
    X = np.array([[2.0, 1.0], [0.0, 3.0], [-2.0, -1.0]])
    np.testing.assert_array_equal(predict_scores(W, X), X @ W.T)
    labels = predict(W, X)
    np.testing.assert_array_equal(labels, [0, 1, 2])
    assert labels.dtype == np.int64
    assert accuracy(W, X, np.array([0, 1, 1])) == pytest.approx(2 / 3)
