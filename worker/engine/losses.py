"""Multiclass SVM (Weston-Watkins) and softmax losses with their analytic gradients.

Shapes: W (C, D) classes x features (bias last when the bias trick is used), X (N, D),
y (N,) int labels in [0, C). Scores are S = X @ W.T, shape (N, C). Both losses add the L2 term
reg * sum(W**2) over the whole W, bias column included. Gradients have W's shape and dtype;
X is expected in W's dtype (a mismatch is computed in the promoted dtype, then cast back).
Loss values are Python floats.
"""

from dataclasses import dataclass
from typing import Literal

import numpy as np

from worker.engine.arrays import FloatArray, IntArray

LossName = Literal["svm", "softmax"]
LOSS_NAMES: tuple[LossName, ...] = ("svm", "softmax")


def _l2(W: FloatArray, reg: float) -> float:
    if reg == 0.0:
        return 0.0
    flat = W.ravel()
    return reg * float(np.dot(flat, flat))


def _gradient(W: FloatArray, X: FloatArray, dS: FloatArray, reg: float) -> FloatArray:
    """dW = dS.T @ X / N + 2 reg W, written into one array of W's dtype."""
    dW = np.empty_like(W)
    np.matmul(dS.T, X, out=dW)
    dW *= 1.0 / len(X)
    if reg != 0.0:
        dW += (2.0 * reg) * W
    return dW


def _hinge_margins(W: FloatArray, X: FloatArray, y: IntArray, delta: float) -> FloatArray:
    """max(0, s_j - s_{y_i} + delta) with the correct-class entries set to 0, shape (N, C)."""
    rows = np.arange(X.shape[0])
    margins = X @ W.T
    correct = margins[rows, y]
    margins -= correct[:, np.newaxis]
    margins += delta
    margins[rows, y] = 0.0
    np.maximum(margins, 0.0, out=margins)
    return margins


def svm_loss(W: FloatArray, X: FloatArray, y: IntArray, reg: float, delta: float = 1.0) -> float:
    """Weston-Watkins hinge loss: 1/N sum_i sum_{j != y_i} max(0, s_j - s_{y_i} + delta)."""
    margins = _hinge_margins(W, X, y, delta)
    return float(margins.sum(dtype=np.float64)) / len(X) + _l2(W, reg)


def svm_loss_grad(
    W: FloatArray, X: FloatArray, y: IntArray, reg: float, delta: float = 1.0
) -> tuple[float, FloatArray]:
    """Hinge loss and its subgradient.

    Row j != y_i of dW gets 1[margin_ij > 0] x_i, row y_i gets -(sum_j 1[margin_ij > 0]) x_i;
    averaged over N, plus 2 reg W. Two matrix products and O(N C) elementwise work.
    """
    margins = _hinge_margins(W, X, y, delta)
    loss = float(margins.sum(dtype=np.float64)) / len(X) + _l2(W, reg)
    # Margins are >= 0, so sign() turns them into the 0/1 indicator in place.
    np.sign(margins, out=margins)
    rows = np.arange(X.shape[0])
    margins[rows, y] = -margins.sum(axis=1)
    return loss, _gradient(W, X, margins, reg)


def _shifted_logits(W: FloatArray, X: FloatArray) -> FloatArray:
    scores = X @ W.T
    scores -= scores.max(axis=1, keepdims=True)
    return scores


def softmax_loss(W: FloatArray, X: FloatArray, y: IntArray, reg: float) -> float:
    """Cross-entropy 1/N sum_i (log sum_j exp(s_j) - s_{y_i}), computed on max-shifted logits."""
    scores = _shifted_logits(W, X)
    correct = scores[np.arange(X.shape[0]), y]
    np.exp(scores, out=scores)
    log_sums = np.log(scores.sum(axis=1))
    data_loss = float((log_sums - correct).sum(dtype=np.float64)) / len(X)
    return data_loss + _l2(W, reg)


def softmax_loss_grad(
    W: FloatArray, X: FloatArray, y: IntArray, reg: float
) -> tuple[float, FloatArray]:
    """Cross-entropy loss and gradient: dS = softmax(S) - onehot(y), dW = dS.T X / N + 2 reg W."""
    rows = np.arange(X.shape[0])
    probs = _shifted_logits(W, X)
    correct = probs[rows, y]
    np.exp(probs, out=probs)
    sums = probs.sum(axis=1)
    data_loss = float((np.log(sums) - correct).sum(dtype=np.float64)) / len(X)
    probs /= sums[:, np.newaxis]
    probs[rows, y] -= 1.0
    return data_loss + _l2(W, reg), _gradient(W, X, probs, reg)


@dataclass(frozen=True)
class LossFunction:
    """A loss with its hyperparameters bound: `loss(W, X, y)` and `loss_grad(W, X, y)`."""

    name: LossName
    reg: float
    delta: float = 1.0

    def loss(self, W: FloatArray, X: FloatArray, y: IntArray) -> float:
        if self.name == "svm":
            return svm_loss(W, X, y, self.reg, self.delta)
        return softmax_loss(W, X, y, self.reg)

    def loss_grad(self, W: FloatArray, X: FloatArray, y: IntArray) -> tuple[float, FloatArray]:
        if self.name == "svm":
            return svm_loss_grad(W, X, y, self.reg, self.delta)
        return softmax_loss_grad(W, X, y, self.reg)


def make_loss(name: str, reg: float = 0.0, delta: float = 1.0) -> LossFunction:
    """The loss called `name` ("svm" or "softmax"); `delta` is the SVM margin."""
    if name == "svm":
        return LossFunction("svm", float(reg), float(delta))
    if name == "softmax":
        return LossFunction("softmax", float(reg), float(delta))
    raise ValueError(f"unknown loss {name!r}: expected one of {', '.join(LOSS_NAMES)}")
