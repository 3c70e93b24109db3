"""Scores, predictions and accuracy of a linear classifier. W (C, D), X (N, D), y (N,).

X is a float array, or rows kept as bytes (worker.engine.byte_rows.ByteRows), scored a block of
rows at a time so that no float copy of the whole X is made.
"""

import numpy as np

from worker.engine.arrays import FloatArray, IntArray
from worker.engine.byte_rows import ByteRows, Features

# Rows of a ByteRows decoded per product: a few MB of floats, and products large enough that
# BLAS runs them on the same kernels as one product over every row (the same scores, bit for bit).
SCORE_BLOCK_ROWS = 4096


def predict_scores(W: FloatArray, X: Features) -> FloatArray:
    """Class scores X @ W.T, shape (N, C)."""
    if not isinstance(X, ByteRows):
        return X @ W.T
    n_rows = X.shape[0]
    scores = np.empty((n_rows, W.shape[0]), dtype=np.result_type(X.dtype, W.dtype))
    for start in range(0, n_rows, SCORE_BLOCK_ROWS):
        stop = min(start + SCORE_BLOCK_ROWS, n_rows)
        scores[start:stop] = X.rows(start, stop) @ W.T
    return scores


def predict(W: FloatArray, X: Features) -> IntArray:
    """The highest-scoring class of each row, int64 (N,)."""
    labels: IntArray = np.argmax(predict_scores(W, X), axis=1).astype(np.int64, copy=False)
    return labels


def accuracy(W: FloatArray, X: Features, y: IntArray) -> float:
    """Fraction of rows whose predicted class equals y (NaN for an empty X)."""
    if X.shape[0] == 0:
        return float("nan")
    return label_accuracy(predict(W, X), y)


def label_accuracy(predicted: IntArray, y: IntArray) -> float:
    """Fraction of labels predicted right (NaN for none): `accuracy` from labels already
    predicted, the same count over the same rows."""
    if predicted.shape[0] == 0:
        return float("nan")
    return float(np.count_nonzero(predicted == y)) / len(predicted)


def eval_rows(n_rows: int, eval_sample: int | None) -> IntArray | None:
    """The rows of a split that accuracy before the last step is measured on: the first
    `eval_sample` entries of np.random.default_rng(0).permutation(n_rows), sorted; None (every
    row) when `eval_sample` is None or not below `n_rows`.

    The generator is seeded by a constant, not the run's seed, so that every run on the same data
    is measured on the same rows (a sweep's trials compared at a rung), and the run's own
    Generator is never drawn from (the same losses and W with or without a sample).
    """
    if eval_sample is None or eval_sample >= n_rows:
        return None
    rows: IntArray = np.sort(np.random.default_rng(0).permutation(n_rows)[:eval_sample])
    return rows


def eval_split(X: Features, y: IntArray, eval_sample: int | None) -> tuple[Features, IntArray]:
    """The (X, y) of a split's evaluation rows (`eval_rows`), gathered once into contiguous
    arrays (floats) so that each evaluation reads only those rows."""
    rows = eval_rows(X.shape[0], eval_sample)
    if rows is None:
        return X, y
    gathered = X.take(rows) if isinstance(X, ByteRows) else np.asarray(X)[rows]
    return gathered, np.asarray(y)[rows]
