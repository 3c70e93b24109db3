"""Small generated data sets: the note's 1-D toy, Gaussian blobs and the CS231n spiral.

Each returns (X float64 (N, D), y int64 (N,)) drawn from np.random.default_rng(seed) only.
"""

import numpy as np
from numpy.typing import NDArray

from worker.engine.arrays import IntArray


def toy() -> tuple[NDArray[np.float64], IntArray]:
    """The note's three 1-D points, one per class: x = -1, 0, 1 with labels 0, 1, 2."""
    return np.array([[-1.0], [0.0], [1.0]]), np.array([0, 1, 2], dtype=np.int64)


def _class_sizes(n_rows: int, n_classes: int) -> list[int]:
    """n_rows split as evenly as possible, the first classes taking the remainder."""
    base, extra = divmod(n_rows, n_classes)
    return [base + (1 if k < extra else 0) for k in range(n_classes)]


def blobs(
    n_rows: int, *, n_features: int, n_classes: int, cluster_std: float, seed: int
) -> tuple[NDArray[np.float64], IntArray]:
    """Isotropic Gaussian clusters around centres drawn uniformly in [-10, 10]^D, shuffled."""
    rng = np.random.default_rng(seed)
    centers = rng.uniform(-10.0, 10.0, size=(n_classes, n_features))
    y = np.repeat(np.arange(n_classes, dtype=np.int64), _class_sizes(n_rows, n_classes))
    X = centers[y] + cluster_std * rng.standard_normal((n_rows, n_features))
    order = rng.permutation(n_rows)
    return X[order], y[order]


def spiral(
    n_rows: int, *, n_classes: int, noise: float, seed: int
) -> tuple[NDArray[np.float64], IntArray]:
    """The CS231n spiral: arm j has r = linspace(0, 1), t = linspace(4j, 4(j+1)) + noise randn."""
    rng = np.random.default_rng(seed)
    X = np.empty((n_rows, 2), dtype=np.float64)
    y = np.empty(n_rows, dtype=np.int64)
    start = 0
    for j, size in enumerate(_class_sizes(n_rows, n_classes)):
        r = np.linspace(0.0, 1.0, size)
        t = np.linspace(j * 4.0, (j + 1) * 4.0, size) + noise * rng.standard_normal(size)
        X[start : start + size, 0] = r * np.sin(t)
        X[start : start + size, 1] = r * np.cos(t)
        y[start : start + size] = j
        start += size
    order = rng.permutation(n_rows)
    return X[order], y[order]
