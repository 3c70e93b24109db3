"""Scores, predictions and accuracy of a linear classifier. W (C, D), X (N, D), y (N,)."""

import numpy as np

from worker.engine.arrays import FloatArray, IntArray


def predict_scores(W: FloatArray, X: FloatArray) -> FloatArray:
    """Class scores X @ W.T, shape (N, C)."""
    return X @ W.T


def predict(W: FloatArray, X: FloatArray) -> IntArray:
    """The highest-scoring class of each row, int64 (N,)."""
    labels: IntArray = np.argmax(predict_scores(W, X), axis=1).astype(np.int64, copy=False)
    return labels


def accuracy(W: FloatArray, X: FloatArray, y: IntArray) -> float:
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


def eval_split(X: FloatArray, y: IntArray, eval_sample: int | None) -> tuple[FloatArray, IntArray]:
    """The (X, y) of a split's evaluation rows (`eval_rows`), gathered once into contiguous
    arrays so that each evaluation reads only those rows."""
    rows = eval_rows(X.shape[0], eval_sample)
    if rows is None:
        return X, y
    return np.asarray(X)[rows], np.asarray(y)[rows]
