"""Scores, predictions and accuracy of a linear classifier. W (C, D), X (N, D), y (N,).

X is a float array, or rows kept as bytes (worker.engine.byte_rows.ByteRows), scored a block of
rows at a time so that no float copy of the whole X is made.
"""

import functools

import numpy as np

from worker.engine.accel.parallel import max_threads, run_parallel, single_threaded_blas
from worker.engine.arrays import FloatArray, IntArray
from worker.engine.byte_rows import ByteRows, Features

# Rows scored per product: a block of a ByteRows decoded into a buffer that is still cached when
# the product reads it.
SCORE_BLOCK_ROWS = 256


def predict_scores(W: FloatArray, X: Features) -> FloatArray:
    """Class scores X @ W.T, shape (N, C), a block of rows at a time: the blocks shared among the
    engine's threads, each product on one-threaded BLAS, so that the scores are the same for any
    thread count (threaded OpenBLAS rounds differently) and for X as floats or as ByteRows."""
    n_rows, n_features = X.shape
    scores = np.empty((n_rows, W.shape[0]), dtype=np.result_type(X.dtype, W.dtype))
    blocks = range(0, n_rows, SCORE_BLOCK_ROWS)
    threads = min(max_threads(), len(blocks))
    buffers = [np.empty((0, 0), X.dtype)] * threads
    if isinstance(X, ByteRows):
        size = min(SCORE_BLOCK_ROWS, n_rows)
        buffers = [np.empty((size, n_features), X.dtype) for _ in range(threads)]

    def score(start: int, slot: int) -> None:
        stop = min(start + SCORE_BLOCK_ROWS, n_rows)
        if isinstance(X, ByteRows):
            rows = X.rows(start, stop, out=buffers[slot][: stop - start])
        else:
            rows = np.asarray(X[start:stop])
        np.dot(rows, W.T, out=scores[start:stop])

    with single_threaded_blas():
        run_parallel([functools.partial(score, start) for start in blocks], threads)
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
