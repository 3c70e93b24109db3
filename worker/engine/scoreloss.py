"""Losses from precomputed class scores, for evaluating many W against one X.

Scores here are class-major: T = W @ X.T, shape (C, N) for one W (the transpose of the engine's
usual X @ W.T) or (G, C, N) for G of them, so that each candidate of a stacked product
stack @ X.T is one contiguous (C, N) slab. y is (N,) int64.
Search, step-size sweeps and landscapes form scores by adding products they already hold
(T0 + a T1, T_W + dW @ X.T), so each evaluation costs O(N C) instead of a product.
"""

import numpy as np
from numpy.typing import NDArray

from worker.engine.accel import backend
from worker.engine.arrays import FloatArray, IntArray
from worker.engine.losses import LossName

F64 = NDArray[np.float64]


def l2(W: FloatArray, reg: float) -> float:
    """reg * sum(W**2), accumulated in float64."""
    if reg == 0.0:
        return 0.0
    flat = W.ravel().astype(np.float64)
    return reg * float(np.dot(flat, flat))


def correct_index(y: IntArray) -> IntArray:
    """Flat positions of the correct-class scores y_i * N + i in a (C, N) array."""
    n_rows = y.shape[0]
    index: IntArray = y.astype(np.int64) * n_rows + np.arange(n_rows, dtype=np.int64)
    return index


def _compiled_applies(
    name: LossName, T: FloatArray, y: IntArray, base: F64 | None, relative: bool
) -> bool:
    """Whether the compiled backend is in effect and accel.fused_scoreloss computes this loss."""
    if not backend.active().compiled:
        return False
    # Imported only now: defining the kernels imports numba, after `active` made its settings.
    from worker.engine.accel import fused_scoreloss

    return fused_scoreloss.applies(name, T, y, base, relative)


def data_loss(
    name: LossName,
    T: FloatArray,
    y: IntArray,
    delta: float = 1.0,
    *,
    base: F64 | None = None,
    out: F64 | None = None,
    index: IntArray | None = None,
    relative: bool = False,
) -> float:
    """The data term (mean over rows) of loss `name` for class-major scores T (+ base), (C, N).

    relative=True: T (and base) hold only rows 1..C-1, the scores minus class 0's (both losses
    depend on score differences only), and row 0 is taken as zero.
    T and base are not modified; equal inputs give bit-identical losses whichever arrays they
    came from. Where the compiled backend is in effect (worker.engine.accel.active) and its kernel
    applies, one pass of accel.fused_scoreloss computes the loss and `out` and `index` go unused.
    Otherwise the work happens in `out`, a C-contiguous float64 (C, N) scratch (allocated if
    None), and `index` is correct_index(y), which callers evaluating many candidates precompute.
    """
    n_rows = int(T.shape[1])
    if _compiled_applies(name, T, y, base, relative):
        from worker.engine.accel import fused_scoreloss

        return fused_scoreloss.data_loss_sum(name, T, y, delta, base, relative) / n_rows
    return numpy_data_loss(name, T, y, delta, base=base, out=out, index=index, relative=relative)


def each_data_loss(
    name: LossName,
    T3: FloatArray,
    y: IntArray,
    delta: float = 1.0,
    *,
    out: F64 | None = None,
    index: IntArray | None = None,
    relative: bool = False,
) -> list[float]:
    """`data_loss` of each of G stacked class-major scores T3 (G, C, N), or (G, C - 1, N) with
    relative: the very bits `data_loss` gives each, on several threads with the kernels."""
    n_rows = int(T3.shape[-1])
    if len(T3) and _compiled_applies(name, T3[0], y, None, relative):
        from worker.engine.accel import fused_scoreloss

        sums = fused_scoreloss.each_data_loss_sum(name, T3, y, delta, relative)
        return [total / n_rows for total in sums]
    return [data_loss(name, T, y, delta, out=out, index=index, relative=relative) for T in T3]


def numpy_data_loss(
    name: LossName,
    T: FloatArray,
    y: IntArray,
    delta: float = 1.0,
    *,
    base: F64 | None = None,
    out: F64 | None = None,
    index: IntArray | None = None,
    relative: bool = False,
) -> float:
    """data_loss in NumPy passes over the scratch `out` (the path without compiled kernels)."""
    n_rows = int(T.shape[1])
    if out is None:
        out = np.empty((T.shape[0] + int(relative), n_rows), dtype=np.float64)
    if index is None:
        index = correct_index(y)
    rows = out[1:] if relative else out
    if relative:
        out[0] = 0.0
    if base is None:
        np.copyto(rows, T)
    else:
        np.add(base, T, out=rows)
    if name == "svm":
        threshold = np.take(out, index)
        threshold -= delta
        out -= threshold
        np.put(out, index, 0.0)
        np.maximum(out, 0.0, out=out)
        return float(out.sum()) / n_rows
    out -= out.max(axis=0)
    correct = np.take(out, index)
    np.exp(out, out=out)
    terms = np.log(out.sum(axis=0))
    terms -= correct
    return float(terms.sum()) / n_rows


def data_losses(name: LossName, T: F64, y: IntArray, delta: float = 1.0) -> F64:
    """The data term for each of G stacked class-major scores T (G, C, N), float64 (G,).

    T is overwritten.
    """
    n_rows = int(T.shape[-1])
    rows = np.arange(n_rows)
    correct = T[:, y, rows]  # (G, N)
    if name == "svm":
        T -= (correct - delta)[:, np.newaxis, :]
        T[:, y, rows] = 0.0
        np.maximum(T, 0.0, out=T)
        sums: F64 = T.sum(axis=(1, 2))
    else:
        top = T.max(axis=1, keepdims=True)
        T -= top
        np.exp(T, out=T)
        sums = (np.log(T.sum(axis=1)) - (correct - top[:, 0, :])).sum(axis=1)
    return sums / n_rows
