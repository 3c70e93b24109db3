"""The loss-landscape task: L(W + a W1) on a line, L(W + a W1 + b W2) on a grid.

X (N, D) preprocessed in the run's dtype, y (N,) int64, W (C, D). Scores are linear in (a, b):
T = T0 + a T1 + b T2 with T_k = W_k @ X.T, so three products serve the whole grid and each
point costs O(N C). The L2 term comes from the Gram matrix of (W, W1, W2).
"""

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from worker.engine.arrays import FloatArray, IntArray
from worker.engine.losses import LossName, make_loss
from worker.engine.nonfinite import NonFinite
from worker.engine.scoreloss import data_losses

F64 = NDArray[np.float64]

# Grid points evaluated together: G * C * N float64 values per temporary (about 32 MB).
_BLOCK_VALUES = 1 << 22


@dataclass(frozen=True)
class LandscapeResult:
    """dims 1: loss[i] at alphas[i], betas None. dims 2: loss[i][j] at (alphas[i], betas[j]).
    Plain floats, possibly inf/NaN for overflowing points (callers map those to None)."""

    alphas: list[float]
    betas: list[float] | None
    loss: list[float] | list[list[float]]


def _grid_losses(
    name: LossName,
    T: tuple[F64, F64, F64],
    y: IntArray,
    delta: float,
    a: F64,
    b: F64,
    progress: Callable[[int], None] | None = None,
) -> F64:
    """Data losses at the points (a[g], b[g]) in blocks; `progress(points done)` after each
    (it may raise to stop the run)."""
    T0, T1, T2 = T
    step = max(1, _BLOCK_VALUES // T0.size)
    result = np.empty(a.size, dtype=np.float64)
    for start in range(0, a.size, step):
        ab = a[start : start + step, np.newaxis, np.newaxis]
        bb = b[start : start + step, np.newaxis, np.newaxis]
        scores = T0 + ab * T1
        scores += bb * T2
        result[start : start + step] = data_losses(name, scores, y, delta)
        if progress is not None:
            progress(min(a.size, start + step))
    return result


def landscape(
    X: FloatArray,
    y: IntArray,
    n_classes: int,
    *,
    loss: str = "svm",
    reg: float = 0.0,
    delta: float = 1.0,
    dims: int = 1,
    points: int = 51,
    span: float = 1.0,
    W: FloatArray | None = None,
    init_scale: float = 0.001,
    examples: int | None = None,
    seed: int = 0,
    progress: Callable[[int], None] | None = None,
) -> LandscapeResult:
    """Loss along random directions W1 (and W2) = randn(C, D) around W (given, or
    init_scale * randn(C, D)), with a and b on `points` evenly spaced values in [-span, span].

    `examples` = k evaluates the loss on k distinct random rows only (k = 1: the note's
    single-example piecewise-linear bowl), else on all of X. W, the directions and the rows come
    from three independent streams of seed, so a given W does not change the directions.
    """
    loss_fn = make_loss(loss, reg, delta)
    if dims not in (1, 2):
        raise ValueError(f"dims must be 1 or 2, got {dims}")
    if points < 2:
        raise ValueError(f"points must be >= 2, got {points}")
    if not (np.isfinite(span) and span > 0.0):
        raise ValueError(f"span must be positive, got {span}")
    if examples is not None and not 1 <= examples <= X.shape[0]:
        raise ValueError(f"examples must be between 1 and the {X.shape[0]} rows, got {examples}")
    shape = (n_classes, X.shape[1])
    w_rng, direction_rng, row_rng = (
        np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(3)
    )
    if W is None:
        W = init_scale * w_rng.standard_normal(shape)
    elif W.shape != shape:
        raise ValueError(f"W must have shape {shape}, got {W.shape}")
    directions = direction_rng.standard_normal((2, *shape))
    if dims == 1:
        directions[1] = 0.0
    if examples is not None:
        rows = np.sort(row_rng.choice(X.shape[0], size=examples, replace=False))
        X, y = X[rows], y[rows]
    stack = np.concatenate([np.asarray(W, dtype=X.dtype)[np.newaxis], directions.astype(X.dtype)])
    T = (stack.reshape(3 * n_classes, -1) @ X.T).astype(np.float64).reshape(3, n_classes, -1)

    alphas = np.linspace(-span, span, points)
    betas = alphas if dims == 2 else np.zeros(1)
    a, b = (grid.ravel() for grid in np.meshgrid(alphas, betas, indexing="ij"))
    flat = stack.reshape(3, -1).astype(np.float64)
    gram = flat @ flat.T
    # ||W + a W1 + b W2||^2 = v^T G v with v = (1, a, b).
    with np.errstate(over="ignore", invalid="ignore"):
        values = _grid_losses(loss_fn.name, (T[0], T[1], T[2]), y, delta, a, b, progress)
        if reg:
            v = np.stack([np.ones_like(a), a, b])
            values += reg * np.einsum("ig,ij,jg->g", v, gram, v)
    broken = int(np.count_nonzero(~np.isfinite(values)))
    if broken:
        raise NonFinite(
            f"the loss is not finite at {broken} of the {values.size} grid points: it overflows "
            f"within span {span} of this W"
        )
    if dims == 1:
        return LandscapeResult(alphas.tolist(), None, values.tolist())
    return LandscapeResult(alphas.tolist(), betas.tolist(), values.reshape(points, points).tolist())
