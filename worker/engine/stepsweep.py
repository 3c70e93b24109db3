"""The step-size sweep task: the loss after one step along the negative gradient, per step size.

X (N, D) preprocessed in the run's dtype, y (N,) int64, W (C, D). The scores after a step are
linear in the step size: W' = W - eta * dW gives T' = T0 - eta * (dW @ X.T), so the whole sweep
costs two products (and the gradient's) plus O(N C) per step size.
"""

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from worker.engine.arrays import FloatArray, IntArray
from worker.engine.losses import make_loss
from worker.engine.nonfinite import NonFinite
from worker.engine.scoreloss import correct_index, data_loss, l2

DEFAULT_EXPONENTS: tuple[int, ...] = tuple(range(-10, 0))


@dataclass(frozen=True)
class StepLoss:
    step_size: float
    loss: float


@dataclass(frozen=True)
class StepSizeSweepResult:
    """loss_original at W; steps[k].loss at W - step_size * grad. Losses are plain floats and
    may be inf or NaN where a step overflows: callers serialising to JSON map those to None."""

    loss_original: float
    steps: list[StepLoss]


def step_size_sweep(
    X: FloatArray,
    y: IntArray,
    n_classes: int,
    *,
    loss: str = "svm",
    reg: float = 0.0,
    delta: float = 1.0,
    exponents: Sequence[int] = DEFAULT_EXPONENTS,
    init_scale: float = 0.001,
    seed: int = 0,
    W: FloatArray | None = None,
    progress: Callable[[int], None] | None = None,
) -> StepSizeSweepResult:
    """The note's table: from W = init_scale * rand(C, D) (uniform [0, 1), default_rng(seed))
    or a given W, the loss after W -= 10**k * grad for each k in `exponents`.

    All losses come from the same float64 scores, so a tiny step reads as the original loss
    rather than as rounding noise between two code paths.

    `progress(step sizes done)` is called after each step size (it may raise to stop the sweep).
    """
    if not exponents or not all(-300 <= k <= 300 for k in exponents):
        raise ValueError(f"exponents must be a non-empty list within [-300, 300], got {exponents}")
    loss_fn = make_loss(loss, reg, delta)
    shape = (n_classes, X.shape[1])
    if W is None:
        W = (init_scale * np.random.default_rng(seed).random(shape)).astype(X.dtype)
    elif W.shape != shape:
        raise ValueError(f"W must have shape {shape}, got {W.shape}")
    W = np.asarray(W, dtype=X.dtype)
    with np.errstate(over="ignore", invalid="ignore"):  # an overflow fails below, as NonFinite
        _, grad = loss_fn.loss_grad(W, X, y)
        T0 = (W @ X.T).astype(np.float64)
        TG = (grad @ X.T).astype(np.float64)
    index, out = correct_index(y), np.empty_like(T0)
    W64, G64 = W.astype(np.float64), grad.astype(np.float64)

    def at(step_size: float) -> float:
        shift = -step_size * TG
        value = data_loss(loss_fn.name, shift, y, delta, base=T0, out=out, index=index)
        return value + l2(W64 - step_size * G64, reg)

    steps: list[StepLoss] = []
    with np.errstate(over="ignore", invalid="ignore"):
        for k in exponents:
            steps.append(StepLoss(10.0**k, at(10.0**k)))
            if progress is not None:
                progress(len(steps))
        original = at(0.0)
    if not math.isfinite(original):
        raise NonFinite(f"the loss at the starting W is {original} (init_scale {init_scale})")
    return StepSizeSweepResult(loss_original=original, steps=steps)
