"""Finite-difference gradients over every entry of W at the cost of about one analytic gradient.

Shapes as in losses.py: W (C, D), X (N, D), y (N,) int64, scores S = X @ W.T. Perturbing W[c, d]
by t moves only score column c, by t * x_d, so every perturbed loss can be formed from the
current scores instead of a fresh product per entry:

- SVM: a margin m moved by u contributes phi(m + u) - phi(m) with phi = max(0, .), which is
  u * 1[m > 0] unless m + u lies across the kink. Summed over rows that is the subgradient
  product dS.T @ X; the margins within reach of a kink (|m| <= h * max|x_i|) get exact
  corrections g(m, u) = (m + u) * (1[m + u > 0] - 1[m > 0]), so the result is the exact finite
  difference of the real loss, not a Taylor approximation.
- softmax: row i's log-sum-exp moves by log1p(p_ic * expm1(t x_id)) (p = softmax of the row),
  an O(N C D) elementwise pass instead of C D products.

The L2 term is exact too: centered 2 reg W, forward reg (2 W + h). Results are float64; they
agree with gradients.numerical_gradient (the per-entry loop, still the generic tool) up to that
loop's own rounding, about eps * L / h per entry.
"""

from collections.abc import Callable

import numpy as np
from numpy.typing import NDArray

from worker.engine.arrays import FloatArray, IntArray
from worker.engine.gradients import Difference
from worker.engine.losses import LossFunction
from worker.engine.scoreloss import l2

BoolArray = NDArray[np.bool_]
F64 = NDArray[np.float64]
# Called with the share of the pass done (0..1) between blocks of work; it may raise to stop it.
Progress = Callable[[float], None]

# Elements per temporary block (rows x D) in the correction and softmax passes: about 8 MB.
_BLOCK_ELEMENTS = 1 << 20


def _check(h: float, difference: str) -> None:
    if difference not in ("centered", "forward"):
        raise ValueError(f"unknown difference {difference!r}: expected 'centered' or 'forward'")
    if not h > 0.0:
        raise ValueError(f"h must be positive, got {h}")


def _block_rows(n_features: int) -> int:
    return max(1, _BLOCK_ELEMENTS // max(1, n_features))


def _l2_difference(W: FloatArray, reg: float, h: float, difference: Difference) -> F64:
    """Exact finite difference of reg * sum(W**2) along each entry."""
    W64 = W.astype(np.float64)
    if difference == "centered":
        return (2.0 * reg) * W64
    return reg * (2.0 * W64 + h)


def _margins(W: FloatArray, X: FloatArray, y: IntArray, delta: float) -> F64:
    """s_j - s_{y_i} + delta in float64, with -inf at the correct class (never active)."""
    rows = np.arange(X.shape[0])
    M = (X @ W.T).astype(np.float64)
    M -= M[rows, y][:, np.newaxis]
    M += delta
    M[rows, y] = -np.inf
    return M


def _kink_term(m: F64, u: F64) -> F64:
    """phi(m + u) - phi(m) - u 1[m > 0]: nonzero only when m + u is across the kink from m."""
    moved = m + u
    side = (moved > 0.0).astype(np.float64) - (m > 0.0)
    return moved * side


def _report(progress: Progress | None, fraction: float) -> None:
    if progress is not None:
        progress(fraction)


def _svm(
    W: FloatArray,
    X: FloatArray,
    y: IntArray,
    loss: LossFunction,
    h: float,
    difference: Difference,
    want_kinks: bool,
    progress: Progress | None = None,
) -> tuple[float, F64, BoolArray | None]:
    n_rows, n_classes = X.shape[0], W.shape[0]
    M = _margins(W, X, y, loss.delta)
    _report(progress, 0.25)  # the two products take about half of the pass
    active = M > 0.0
    data_loss = float(np.maximum(M, 0.0).sum()) / n_rows
    dS = active.astype(X.dtype)
    dS[np.arange(n_rows), y] = -active.sum(axis=1)
    grad = (dS.T @ X).astype(np.float64)  # the exact difference wherever no hinge changes side
    _report(progress, 0.5)

    # h max_d |x_id|: the most a +-h step of row i's scores can move its margins.
    reach = h * np.maximum(X.max(axis=1), -X.min(axis=1)).astype(np.float64)
    near_i, near_j = np.nonzero(np.abs(M) <= reach[:, np.newaxis])
    kinks = np.zeros(W.shape, dtype=np.bool_) if want_kinks else None
    scale = 1.0 / h if difference == "forward" else 0.5 / h
    step = _block_rows(X.shape[1])
    for start in range(0, near_i.size, step):
        i, j = near_i[start : start + step], near_j[start : start + step]
        m = M[i, j][:, np.newaxis]
        u = h * X[i].astype(np.float64)
        # Perturbing column j moves margin (i, j) by +u, perturbing column y_i moves it by -u.
        up, down = _kink_term(m, u), _kink_term(m, -u)
        to_j = np.zeros((n_classes, i.size))
        to_j[j, np.arange(i.size)] = 1.0
        to_y = np.zeros((n_classes, i.size))
        to_y[y[i], np.arange(i.size)] = 1.0
        if difference == "centered":
            both = up - down
            grad += scale * (to_j @ both - to_y @ both)
        else:
            grad += scale * (to_j @ up + to_y @ down)
        if kinks is not None:
            crossed = ((up != 0.0) | (down != 0.0)).astype(np.float64)
            kinks |= (to_j @ crossed + to_y @ crossed) > 0.0
        _report(progress, 0.5 + 0.5 * min(near_i.size, start + step) / near_i.size)
    _report(progress, 1.0)
    grad *= 1.0 / n_rows
    grad += _l2_difference(W, loss.reg, h, difference)
    return data_loss + l2(W, loss.reg), grad, kinks


def _softmax(
    W: FloatArray,
    X: FloatArray,
    y: IntArray,
    loss: LossFunction,
    h: float,
    difference: Difference,
    progress: Progress | None = None,
) -> tuple[float, F64]:
    n_rows, n_classes = X.shape[0], W.shape[0]
    rows = np.arange(n_rows)
    S = (X @ W.T).astype(np.float64)
    S -= S.max(axis=1, keepdims=True)
    P = np.exp(S)
    sums = P.sum(axis=1)
    data_loss = float((np.log(sums) - S[rows, y]).sum()) / n_rows
    P /= sums[:, np.newaxis]

    # sum_i log1p(p_ic expm1(+h x_id)) [- the same at -h], accumulated over blocks of rows.
    moved = np.zeros(W.shape, dtype=np.float64)
    step = _block_rows(X.shape[1])
    for start in range(0, n_rows, step):
        Xb = X[start : start + step].astype(np.float64)
        up = np.expm1(h * Xb)
        down = np.expm1(-h * Xb) if difference == "centered" else None
        if down is not None:
            # log1p(p e+) - log1p(p e-) = log1p(p (e+ - e-) / (1 + p e-)): one log per element.
            up -= down
        term = np.empty_like(Xb)
        for c in range(n_classes):
            p = P[start : start + step, c, np.newaxis]
            np.multiply(p, up, out=term)
            if down is not None:
                term /= 1.0 + p * down
            np.log1p(term, out=term)
            moved[c] += term.sum(axis=0)
        _report(progress, min(n_rows, start + step) / n_rows)
    onehot = np.zeros((n_classes, n_rows), dtype=X.dtype)
    onehot[y, rows] = 1.0
    correct = (onehot @ X).astype(np.float64)  # the -t x_id term of rows whose class is c
    scale = 1.0 / h if difference == "forward" else 0.5 / h
    grad = (scale * moved - correct) / n_rows
    grad += _l2_difference(W, loss.reg, h, difference)
    return data_loss + l2(W, loss.reg), grad


def loss_and_numerical_gradient(
    loss: LossFunction,
    W: FloatArray,
    X: FloatArray,
    y: IntArray,
    *,
    h: float = 1e-5,
    difference: Difference = "centered",
    progress: Progress | None = None,
) -> tuple[float, F64]:
    """The loss at W and its finite-difference gradient over every entry (float64, W's shape).

    centered: (L(W + h e_cd) - L(W - h e_cd)) / 2h; forward: (L(W + h e_cd) - L(W)) / h.
    """
    _check(h, difference)
    if loss.name == "svm":
        value, grad, _ = _svm(W, X, y, loss, h, difference, False, progress)
        return value, grad
    return _softmax(W, X, y, loss, h, difference, progress)


def numerical_gradient_linear(
    loss: LossFunction,
    W: FloatArray,
    X: FloatArray,
    y: IntArray,
    *,
    h: float = 1e-5,
    difference: Difference = "centered",
) -> F64:
    """Finite-difference gradient of `loss` at W over every entry, using the linear scores."""
    return loss_and_numerical_gradient(loss, W, X, y, h=h, difference=difference)[1]


def svm_centered_with_kinks(
    loss: LossFunction,
    W: FloatArray,
    X: FloatArray,
    y: IntArray,
    *,
    h: float = 1e-5,
    progress: Progress | None = None,
) -> tuple[F64, BoolArray]:
    """Centered SVM differences and a (C, D) mask of the entries whose +-h step moves some
    margin across its kink (where the finite difference need not match the subgradient)."""
    _check(h, "centered")
    if loss.name != "svm":
        raise ValueError(f"kinks are an SVM notion, got loss {loss.name!r}")
    _, grad, kinks = _svm(W, X, y, loss, h, "centered", True, progress)
    assert kinks is not None
    return grad, kinks
