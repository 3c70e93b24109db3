"""A succeeded train job's evaluation: accuracy, confusion matrix and per-class accuracy per split.

Computed once by the worker from the prepared data (the API never reloads a data set) and stored
in jobs.evaluation. The confusion matrix counts rows by true class (row) and predicted class
(column); per-class accuracy is the diagonal over the row sums (null for a class with no rows),
and accuracy is the trace over the number of rows, the same figure as the job's metrics.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from worker.engine.metrics import predict
from worker.prepared_data import PreparedData

SPLITS = ("train", "val", "test")


def split_evaluation(
    W: np.ndarray, X: np.ndarray, y: np.ndarray, n_classes: int, predicted: np.ndarray | None = None
) -> dict[str, Any]:
    """One split's scores; `predicted`, when given, are W's labels for X (then not predicted)."""
    n_rows = int(X.shape[0])
    if n_rows == 0:
        empty = [[0] * n_classes for _ in range(n_classes)]
        return {"n": 0, "accuracy": None, "confusion_matrix": empty,
                "per_class_accuracy": [None] * n_classes}  # fmt: skip
    if predicted is None:
        predicted = predict(W, X)
    elif predicted.shape != (n_rows,):
        raise ValueError(f"predicted must hold one label per row ({n_rows}), got {predicted.shape}")
    predicted = np.asarray(predicted, dtype=np.int64)
    truth = np.asarray(y, dtype=np.int64)
    # Predicted labels are always < n_classes (W has one row per class), and so are the labels.
    cells = np.bincount(truth * n_classes + predicted, minlength=n_classes * n_classes)
    matrix = cells.reshape(n_classes, n_classes)
    support = matrix.sum(axis=1)
    per_class = [
        float(matrix[k, k]) / float(support[k]) if support[k] else None for k in range(n_classes)
    ]
    correct = int(np.count_nonzero(predicted == truth))
    return {
        "n": n_rows,
        "accuracy": float(correct) / n_rows,
        "confusion_matrix": matrix.tolist(),
        "per_class_accuracy": per_class,
    }


def evaluate(
    W: np.ndarray,
    data: PreparedData,
    step: int,
    predicted: Mapping[str, np.ndarray] | None = None,
) -> dict[str, Any]:
    """The stored evaluation of W on every split of `data`.

    `predicted` maps split names to W's labels for that split's rows, already computed (the
    training loop's evaluation at the last step scored train and val with the same W); the
    splits it leaves out are predicted here.
    """
    given = predicted or {}
    splits = {}
    for name in SPLITS:
        X, y = getattr(data, f"X_{name}"), getattr(data, f"y_{name}")
        splits[name] = split_evaluation(W, X, y, data.n_classes, given.get(name))
    return {"step": step, "n_classes": data.n_classes, "splits": splits}
