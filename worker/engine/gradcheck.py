"""The gradient check task: analytic gradient against centered finite differences, in float64.

X (N, D) preprocessed, y (N,) int64, W (C, D). The finite differences are exact ones of the loss,
formed for every entry at once through the linear scores (worker.engine.numerical); a check then
reads the entries it was asked for.
"""

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from worker.engine.arrays import FloatArray, IntArray
from worker.engine.gradients import relative_error
from worker.engine.losses import make_loss
from worker.engine.nonfinite import NonFinite
from worker.engine.numerical import (
    Progress,
    loss_and_numerical_gradient,
    svm_centered_with_kinks,
)

GOOD = 1e-7  # neural-networks-3: < 1e-7 is good
KINK_TOLERANCE = 1e-4  # ... and < 1e-4 acceptable for the SVM where kinks are involved

AnalyticGradient = Callable[[FloatArray, FloatArray, IntArray], tuple[float, FloatArray]]


@dataclass(frozen=True)
class GradientCheck:
    """One entry: relative_error = |a - n| / max(|a|, |n|), 0 when both are 0. crosses_kink
    (SVM only): a +-h step of W[c, d] moves some margin across its hinge's kink."""

    index: tuple[int, int]
    analytic: float
    numerical: float
    relative_error: float
    crosses_kink: bool


@dataclass(frozen=True)
class GradientCheckResult:
    checks: list[GradientCheck]
    max_relative_error: float
    passed: bool
    threshold: float
    kink_threshold: float | None  # SVM: the bound for entries that cross a kink
    kink_entries: list[tuple[int, int]]  # checked entries that cross a kink, in check order
    h: float


def _entries(
    rng: np.random.Generator, shape: tuple[int, int], num_checks: int | None
) -> list[tuple[int, int]]:
    """num_checks distinct entries, one of them in the bias (last) column; all when None."""
    n_classes, n_features = shape
    if num_checks is None or num_checks >= n_classes * n_features:
        return [(c, d) for c in range(n_classes) for d in range(n_features)]
    bias = int(rng.integers(n_classes)) * n_features + n_features - 1
    others = rng.choice(n_classes * n_features - 1, size=num_checks - 1, replace=False)
    flat = sorted([bias, *(int(i) + int(i >= bias) for i in others)])
    return [divmod(i, n_features) for i in flat]


def gradient_check(
    X: FloatArray,
    y: IntArray,
    n_classes: int,
    *,
    loss: str = "svm",
    reg: float = 0.0,
    delta: float = 1.0,
    num_checks: int | None = 10,
    h: float = 1e-5,
    init_scale: float = 0.001,
    seed: int = 0,
    W: FloatArray | None = None,
    analytic: AnalyticGradient | None = None,
    progress: Progress | None = None,
) -> GradientCheckResult:
    """Check the analytic gradient of `loss` (or of `analytic(W, X, y) -> (loss, grad)`) at W.

    W defaults to init_scale * randn(C, D) from default_rng(seed); the same Generator then picks
    the entries. Everything runs in float64 with centered differences of step h.

    Pass rule: softmax passes when every checked entry's relative error is < 1e-7. The SVM is
    piecewise linear: where a +-h step crosses no kink its centered difference equals the
    subgradient (so < 1e-7 again), where it does cross one the difference averages two slopes,
    so those entries pass below 1e-4 (the notes' "acceptable for kinks"). The errors of kink
    entries still count in max_relative_error.

    `progress(share done)` is called between blocks of the work (it may raise to stop it).
    """
    if num_checks is not None and num_checks < 1:
        raise ValueError(f"num_checks must be >= 1 or None, got {num_checks}")
    loss_fn = make_loss(loss, reg, delta)
    X64 = np.asarray(X, dtype=np.float64)
    rng = np.random.default_rng(seed)
    shape = (n_classes, X64.shape[1])
    if W is None:
        W64 = init_scale * rng.standard_normal(shape)
    else:
        W64 = np.array(W, dtype=np.float64)
        if W64.shape != shape:
            raise ValueError(f"W must have shape {shape}, got {W64.shape}")
    # An overflowing loss is reported below (NonFinite) rather than warned about here.
    report = progress or (lambda done: None)

    def numerical_share(done: float) -> None:  # the analytic gradient is a small share of the work
        report(0.1 + 0.9 * done)

    with np.errstate(over="ignore", invalid="ignore"):
        loss_value, grad = (analytic or loss_fn.loss_grad)(W64, X64, y)
        if not math.isfinite(loss_value):
            # The gradient of a loss that overflowed checks nothing the job could train on.
            raise NonFinite(
                f"the loss is {loss_value} at this W: it overflows (init_scale {init_scale}, "
                f"reg {reg}, delta {delta})"
            )
        report(0.1)
        if loss_fn.name == "svm":
            numerical, kinks = svm_centered_with_kinks(
                loss_fn, W64, X64, y, h=h, progress=numerical_share
            )
        else:
            numerical = loss_and_numerical_gradient(
                loss_fn, W64, X64, y, h=h, progress=numerical_share
            )[1]
            kinks = np.zeros(shape, dtype=np.bool_)
    errors = relative_error(grad, numerical)
    entries = _entries(rng, shape, num_checks)
    for kind, values in (("analytic", grad), ("numerical", numerical)):
        broken = [(c, d) for c, d in entries if not math.isfinite(values[c, d])]
        if broken:
            raise NonFinite(
                f"the {kind} gradient is not finite at {len(broken)} of the {len(entries)} "
                f"checked entries (first {list(broken[0])}): the loss overflows around this W "
                f"(init_scale {init_scale}, h {h})"
            )
    checks = [
        GradientCheck(
            (c, d),
            float(grad[c, d]),
            float(numerical[c, d]),
            float(errors[c, d]),
            bool(kinks[c, d]),
        )
        for c, d in entries
    ]
    smooth = [check.relative_error for check in checks if not check.crosses_kink]
    rough = [check.relative_error for check in checks if check.crosses_kink]
    passed = max(smooth, default=0.0) < GOOD and max(rough, default=0.0) < KINK_TOLERANCE
    return GradientCheckResult(
        checks=checks,
        max_relative_error=max(check.relative_error for check in checks),
        passed=passed,
        threshold=GOOD,
        kink_threshold=KINK_TOLERANCE if loss_fn.name == "svm" else None,
        kink_entries=[check.index for check in checks if check.crosses_kink],
        h=h,
    )
