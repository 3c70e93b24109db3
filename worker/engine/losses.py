"""Multiclass SVM (Weston-Watkins) and softmax losses with their analytic gradients.

Shapes: W (C, D) classes x features (bias last when the bias trick is used), X (N, D),
y (N,) int labels in [0, C). Scores are S = X @ W.T, shape (N, C). Both losses add the L2 term
reg * sum(W**2) over the whole W, bias column included. Gradients have W's shape and dtype;
X is expected in W's dtype (a mismatch is computed in the promoted dtype, then cast back); it may
be a float array or rows kept as bytes (worker.engine.byte_rows.ByteRows).
Loss values are Python floats.

The products run through accel.kernels.linear_pass (X in cached chunks, OpenBLAS small-matrix
calls, threads over slabs; with the compiled backend, the passes of the losses it covers on the
kernels of worker.engine.accel.fused; minibatches X[rows] read in place by
`LossFunction.loss_grad_rows`); this module holds
the per-chunk elementwise work: a chunk's scores S (n, C) arrive, the loss functions turn them
into dS in place and return the chunk's summed loss.
"""

from dataclasses import dataclass
from typing import Literal

import numpy as np

from worker.engine.accel.kernels import (
    Elementwise,
    FusedLoss,
    PassResult,
    fused_applies,
    gather_pass,
    linear_pass,
)
from worker.engine.arrays import FloatArray, IntArray
from worker.engine.byte_rows import Features

LossName = Literal["svm", "softmax"]
LOSS_NAMES: tuple[LossName, ...] = ("svm", "softmax")


def _l2(W: FloatArray, reg: float) -> float:
    if reg == 0.0:
        return 0.0
    flat = W.ravel()
    return reg * float(np.dot(flat, flat))


def _gradient(W: FloatArray, result: PassResult, n_rows: int, reg: float) -> FloatArray:
    """dW = dS.T @ X / N + 2 reg W, in W's dtype."""
    if result.grad_sum is None:
        raise ValueError("the pass ran without a gradient")
    dW = result.grad_sum.astype(W.dtype, copy=False)
    dW *= 1.0 / n_rows
    if reg != 0.0:
        dW += (2.0 * reg) * W
    return dW


def _correct(S: FloatArray, y: IntArray) -> tuple[FloatArray, IntArray]:
    """S flattened (a view: S is C-contiguous) and the flat positions i * C + y_i."""
    if not S.flags.c_contiguous:
        raise ValueError("chunk scores must be C-contiguous")
    n_rows, n_classes = S.shape
    flat: IntArray = np.arange(0, n_rows * n_classes, n_classes) + y
    return S.reshape(-1), flat


def _svm_chunk(delta: float) -> Elementwise:
    def hinge(S: FloatArray, y: IntArray, want_grad: bool) -> float:
        """max(0, s_j - s_{y_i} + delta) over j != y_i; then the 0/1 indicator, -count at y_i."""
        flat_S, correct = _correct(S, y)
        S -= flat_S[correct][:, np.newaxis]
        S += delta
        flat_S[correct] = 0.0
        np.maximum(S, 0.0, out=S)
        loss_sum = float(S.sum(dtype=np.float64))
        if want_grad:
            # Margins are >= 0, so sign() turns them into the 0/1 indicator in place.
            np.sign(S, out=S)
            flat_S[correct] = -S.sum(axis=1)
        return loss_sum

    return hinge


def _softmax_chunk(S: FloatArray, y: IntArray, want_grad: bool) -> float:
    """Cross-entropy on max-shifted logits; then softmax(S) - onehot(y)."""
    flat_S, correct = _correct(S, y)
    S -= S.max(axis=1, keepdims=True)
    correct_scores = flat_S[correct]
    np.exp(S, out=S)
    sums = S.sum(axis=1)
    loss_sum = float((np.log(sums) - correct_scores).sum(dtype=np.float64))
    if want_grad:
        S /= sums[:, np.newaxis]
        flat_S[correct] -= 1.0
    return loss_sum


def elementwise(kind: FusedLoss) -> Elementwise:
    """The per-chunk step of the loss `kind` names, for kernels.linear_pass."""
    return _svm_chunk(kind.delta) if kind.name == "svm" else _softmax_chunk


def _loss(kind: FusedLoss, W: FloatArray, X: Features, y: IntArray, reg: float) -> float:
    result = linear_pass(W, X, y, elementwise(kind), want_grad=False, fused=kind)
    return result.loss_sum / len(X) + _l2(W, reg)


def _loss_grad(
    kind: FusedLoss, W: FloatArray, X: Features, y: IntArray, reg: float
) -> tuple[float, FloatArray]:
    result = linear_pass(W, X, y, elementwise(kind), want_grad=True, fused=kind)
    return result.loss_sum / len(X) + _l2(W, reg), _gradient(W, result, len(X), reg)


def svm_loss(W: FloatArray, X: Features, y: IntArray, reg: float, delta: float = 1.0) -> float:
    """Weston-Watkins hinge loss: 1/N sum_i sum_{j != y_i} max(0, s_j - s_{y_i} + delta)."""
    return _loss(FusedLoss("svm", delta), W, X, y, reg)


def svm_loss_grad(
    W: FloatArray, X: Features, y: IntArray, reg: float, delta: float = 1.0
) -> tuple[float, FloatArray]:
    """Hinge loss and its subgradient.

    Row j != y_i of dW gets 1[margin_ij > 0] x_i, row y_i gets -(sum_j 1[margin_ij > 0]) x_i;
    averaged over N, plus 2 reg W. Two matrix products and O(N C) elementwise work.
    """
    return _loss_grad(FusedLoss("svm", delta), W, X, y, reg)


def softmax_loss(W: FloatArray, X: Features, y: IntArray, reg: float) -> float:
    """Cross-entropy 1/N sum_i (log sum_j exp(s_j) - s_{y_i}), computed on max-shifted logits."""
    return _loss(FusedLoss("softmax"), W, X, y, reg)


def softmax_loss_grad(
    W: FloatArray, X: Features, y: IntArray, reg: float
) -> tuple[float, FloatArray]:
    """Cross-entropy loss and gradient: dS = softmax(S) - onehot(y), dW = dS.T X / N + 2 reg W."""
    return _loss_grad(FusedLoss("softmax"), W, X, y, reg)


@dataclass(frozen=True)
class LossFunction:
    """A loss with its hyperparameters bound: `loss(W, X, y)` and `loss_grad(W, X, y)`."""

    name: LossName
    reg: float
    delta: float = 1.0

    def _kind(self) -> FusedLoss:
        return FusedLoss(self.name, self.delta)

    def loss(self, W: FloatArray, X: Features, y: IntArray) -> float:
        return _loss(self._kind(), W, X, y, self.reg)

    def loss_grad(self, W: FloatArray, X: Features, y: IntArray) -> tuple[float, FloatArray]:
        return _loss_grad(self._kind(), W, X, y, self.reg)

    def reads_rows_in_place(self, W: FloatArray, X: Features, y: IntArray) -> bool:
        """Whether `loss_grad_rows` computes minibatches of (X, y) for W: where
        kernels.fused_applies holds."""
        return fused_applies(W, X, y, self._kind())

    def loss_grad_rows(
        self, W: FloatArray, X: Features, y: IntArray, rows: IntArray
    ) -> tuple[float, FloatArray]:
        """`loss_grad(W, X[rows], y[rows])` bit for bit, the rows read in place; only where
        `reads_rows_in_place(W, X, y)` holds, with X, y and rows as kernels.gather_pass needs."""
        result = gather_pass(W, X, y, rows, self._kind())
        n_rows = len(rows)
        return result.loss_sum / n_rows + _l2(W, self.reg), _gradient(W, result, n_rows, self.reg)


def make_loss(name: str, reg: float = 0.0, delta: float = 1.0) -> LossFunction:
    """The loss called `name` ("svm" or "softmax"); `delta` is the SVM margin."""
    if name == "svm":
        return LossFunction("svm", float(reg), float(delta))
    if name == "softmax":
        return LossFunction("softmax", float(reg), float(delta))
    raise ValueError(f"unknown loss {name!r}: expected one of {', '.join(LOSS_NAMES)}")
