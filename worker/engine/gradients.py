"""Finite-difference gradients and the relative error used to check analytic ones."""

from collections.abc import Callable
from typing import Literal

import numpy as np

from worker.engine.arrays import FloatArray

Difference = Literal["centered", "forward"]


def numerical_gradient(
    f: Callable[[FloatArray], float],
    W: FloatArray,
    h: float = 1e-5,
    difference: Difference = "centered",
) -> FloatArray:
    """The note's per-entry loop: nudge W[ix] by h, evaluate f, restore W[ix] exactly.

    centered (recommended): (f(W + h e_ix) - f(W - h e_ix)) / 2h;
    forward: (f(W + h e_ix) - f(W)) / h.
    W is modified in place during the loop and restored entry by entry; the result is float64
    with W's shape. Costs one (forward) or two (centered) evaluations of f per entry.
    """
    if difference not in ("centered", "forward"):
        raise ValueError(f"unknown difference {difference!r}: expected 'centered' or 'forward'")
    if not h > 0.0:
        raise ValueError(f"h must be positive, got {h}")
    grad = np.zeros(W.shape, dtype=np.float64)
    f_at_W = f(W) if difference == "forward" else 0.0
    for ix in np.ndindex(W.shape):
        old = W[ix]
        W[ix] = old + h
        f_plus = f(W)
        if difference == "centered":
            W[ix] = old - h
            grad[ix] = (f_plus - f(W)) / (2.0 * h)
        else:
            grad[ix] = (f_plus - f_at_W) / h
        W[ix] = old
    return grad


def relative_error(a: FloatArray, n: FloatArray) -> FloatArray:
    """Elementwise |a - n| / max(|a|, |n|), 0 where both are 0, NaN where either is not finite
    (float64): two infinities or NaNs never agree."""
    a64 = np.asarray(a, dtype=np.float64)
    n64 = np.asarray(n, dtype=np.float64)
    scale = np.maximum(np.abs(a64), np.abs(n64))
    error = np.zeros(np.broadcast_shapes(a64.shape, n64.shape), dtype=np.float64)
    with np.errstate(invalid="ignore"):
        np.divide(np.abs(a64 - n64), scale, out=error, where=scale > 0.0)
    error[~(np.isfinite(a64) & np.isfinite(n64))] = np.nan
    return error
