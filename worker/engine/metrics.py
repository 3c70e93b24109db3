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
    return float(np.count_nonzero(predict(W, X) == y)) / len(X)
