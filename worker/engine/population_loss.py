"""The SVM and softmax data losses of K runs' scores at once, as worker.engine.losses computes
one run's.

S is (N, K*C): run k's scores (N, C) are the columns k*C .. (k+1)*C. `data_losses` returns each
run's summed loss over the N rows (float64, (K,)) and turns S, in place, into each run's score
gradient dS (not yet divided by N), as losses' per-chunk steps do for one run.
"""

import numpy as np
from numpy.typing import NDArray

from worker.engine.arrays import FloatArray, IntArray
from worker.engine.losses import LossName


def data_losses(
    loss: LossName, delta: float, S: FloatArray, y: IntArray, n_classes: int
) -> NDArray[np.float64]:
    if not S.flags.c_contiguous:
        raise ValueError("the scores must be C-contiguous")
    scores = S.reshape(S.shape[0], -1, n_classes)  # a view: (N, K, C)
    flat, correct = S.reshape(-1), _correct(scores, y)
    if loss == "svm":
        return _svm(scores, flat, correct, delta)
    return _softmax(scores, flat, correct)


def _correct(scores: FloatArray, y: IntArray) -> IntArray:
    """The flat positions (N, K) of each row's true class in every run's scores."""
    n_rows, n_runs, n_classes = scores.shape
    starts = np.arange(n_rows * n_runs).reshape(n_rows, n_runs) * n_classes
    positions: IntArray = starts + np.asarray(y)[:, np.newaxis]
    return positions


def _per_run(scores: FloatArray) -> NDArray[np.float64]:
    """Each run's sum over rows and classes: over the rows first (whole rows of S, which NumPy
    sums fast), then over each run's C columns."""
    n_rows, n_runs, n_classes = scores.shape
    by_column = scores.reshape(n_rows, -1).sum(axis=0)
    sums: NDArray[np.float64] = by_column.reshape(n_runs, n_classes).sum(axis=1, dtype=np.float64)
    return sums


def _class_sums(scores: FloatArray) -> FloatArray:
    """Sums over the classes, (N, K): a product with ones (NumPy reduces a short last axis
    slowly)."""
    sums: FloatArray = scores @ np.ones(scores.shape[2], dtype=scores.dtype)
    return sums


def _class_max(scores: FloatArray) -> FloatArray:
    """Max over the classes, (N, K, 1), class by class (for the same reason)."""
    top = scores[:, :, 0].copy()
    for c in range(1, scores.shape[2]):
        np.maximum(top, scores[:, :, c], out=top)
    return top[:, :, np.newaxis]


def _svm(scores: FloatArray, flat: FloatArray, correct: IntArray, delta: float) -> (
    NDArray[np.float64]
):  # fmt: skip
    """max(0, s_j - s_{y_i} + delta) over j != y_i; then the 0/1 indicator, -count at y_i."""
    scores -= flat[correct][:, :, np.newaxis]
    scores += delta
    flat[correct] = 0.0
    np.maximum(scores, 0.0, out=scores)
    sums = _per_run(scores)
    np.greater(scores, 0.0, out=scores, casting="unsafe")  # the indicator, in place
    flat[correct] = -_class_sums(scores)
    return sums


def _softmax(scores: FloatArray, flat: FloatArray, correct: IntArray) -> NDArray[np.float64]:
    """Cross-entropy on max-shifted logits; then softmax(S) - onehot(y)."""
    scores -= _class_max(scores)
    correct_scores = flat[correct]
    np.exp(scores, out=scores)
    totals = _class_sums(scores)
    log_terms = (np.log(totals) - correct_scores).sum(axis=0, dtype=np.float64)
    scores /= totals[:, :, np.newaxis]
    flat[correct] -= 1.0
    sums: NDArray[np.float64] = log_terms
    return sums
