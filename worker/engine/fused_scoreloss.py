"""The data loss of class-major scores (worker.engine.scoreloss) compiled with numba: one pass.

worker.engine.scoreloss.data_loss calls `data_loss_sum` where `applies` holds and the compiled
kernels are on (worker.engine.kernels.fused_enabled). The NumPy version makes about six passes
over a float64 (C, N) scratch (copy or add, take, subtract, put, maximum, sum); here the scores
(T + base) are read once, in blocks of BLOCK columns: a block is loaded into a small float64
buffer that stays in L1/L2, each column's terms are accumulated over the classes in float64
(vectorized across the block's columns), and the columns' sums are added to the total.

Results differ from the NumPy version by rounding only (the order of the float64 sums), and they
depend on the values and N alone, never on where the arrays live: every caller that passes equal
scores gets bit-identical losses (search's blocked and sequential paths rely on it).
Non-finite scores give a non-finite loss, as on NumPy (a NaN hinge term is kept, not clipped).
"""

import math
from typing import Any

import numpy as np

from worker.engine.arrays import FloatArray, IntArray
from worker.engine.jit import kernel

BLOCK = 256  # columns per block: 9 score rows of float64 take 18 KB, in L1
DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
NO_BASE = np.empty((0, 0), dtype=np.float64)


@kernel
def _load(T: Any, base: Any, has_base: bool, b0: int, n: int, V: Any) -> None:
    """V[:, :n] = T (+ base) over columns [b0, b0 + n), in float64."""
    # Unsigned indices: numba then emits no negative-index wraparound, and the loops vectorize.
    start, count = np.uint64(b0), np.uint64(n)
    for r in range(T.shape[0]):
        t, v = T[r], V[r]
        if has_base:
            b = base[r]
            for j in range(count):
                v[j] = t[start + j] + b[start + j]
        else:
            for j in range(count):
                v[j] = t[start + j]


# exp(x) for x <= 0 (scores minus their column's maximum), in loops LLVM vectorizes (math.exp
# is a scalar libm call per element, several times slower than NumPy's SIMD exp): x = k ln 2 + r
# with |r| <= ln 2 / 2 (Cody-Waite: ln 2 in a high part exact in k * LN2_HI and a low part),
# exp(r) by its Taylor polynomial of degree 13 (truncation below 1e-17 relative), 2^k from the
# exponent bits. Below EXP_FLOOR the result is 0: a column's sum of exps is at least 1 (its
# maximum gives exp(0)), so such terms are below its rounding. NaN stays NaN.
LOG2E = 1.4426950408889634
LN2_HI = 0.693145751953125
LN2_LO = 1.4286068203094173e-06
EXP_FLOOR = -700.0
INVERSE_FACTORIALS = tuple(1.0 / math.factorial(i) for i in range(14))


@kernel
def _exp_add(x: Any, n: int, k: Any, r: Any, sums: Any) -> None:
    """sums[:n] += exp(x[:n]) for x <= 0 or NaN; k (int64) and r (float64) are scratch."""
    count = np.uint64(n)
    c0, c1, c2, c3, c4, c5, c6 = INVERSE_FACTORIALS[:7]
    c7, c8, c9, c10, c11, c12, c13 = INVERSE_FACTORIALS[7:]
    for j in range(count):
        v = x[j]
        v = v if v >= EXP_FLOOR else EXP_FLOOR  # and NaN: x[j] decides below
        kf = math.floor(v * LOG2E + 0.5)
        k[j] = (np.int64(kf) + 1023) << 52
        r[j] = (v - kf * LN2_HI) - kf * LN2_LO
    scale = k.view(np.float64)
    for j in range(count):
        t = r[j]
        p = c13
        p = p * t + c12
        p = p * t + c11
        p = p * t + c10
        p = p * t + c9
        p = p * t + c8
        p = p * t + c7
        p = p * t + c6
        p = p * t + c5
        p = p * t + c4
        p = p * t + c3
        p = p * t + c2
        p = p * t + c1
        p = p * t + c0
        v = x[j]
        e = p * scale[j] if v >= EXP_FLOOR else (0.0 if v < EXP_FLOOR else v)
        sums[j] += e


@kernel
def svm_sum(T: Any, base: Any, has_base: bool, y: Any, delta: float, offset: int) -> float:
    """Summed hinge loss over the columns of T (+ base), (R, N): classes offset..offset+R-1;
    offset 1 takes class 0's scores as zero (relative scores)."""
    rows, N = T.shape
    n_classes = rows + offset
    V = np.empty((max(rows, 1), BLOCK), dtype=np.float64)
    threshold = np.empty(BLOCK, dtype=np.float64)
    acc = np.empty(BLOCK, dtype=np.float64)
    label = np.empty(BLOCK, dtype=np.int64)
    total = 0.0
    for b0 in range(0, N, BLOCK):
        n = min(BLOCK, N - b0)
        _load(T, base, has_base, b0, n, V)
        for j in range(n):
            c = y[b0 + j]
            if c < 0 or c >= n_classes:
                raise IndexError("a label is out of range for these scores")
            row = c - offset  # -1: class 0 of relative scores
            correct = V[row, j] if row >= 0 else 0.0
            threshold[j] = correct - delta
            label[j] = row
            m = 0.0 - threshold[j]  # class 0's term when it is zero and not the label
            acc[j] = m if offset == 1 and row >= 0 and not m <= 0.0 else 0.0
        for r in range(rows):
            for j in range(n):
                m = V[r, j] - threshold[j]
                acc[j] += m if label[j] != r and not m <= 0.0 else 0.0
        for j in range(n):
            total += acc[j]
    return total


@kernel
def softmax_sum(T: Any, base: Any, has_base: bool, y: Any, offset: int) -> float:
    """Summed cross-entropy over the columns of T (+ base), (R, N), on max-shifted scores;
    classes as in svm_sum."""
    rows, N = T.shape
    n_classes = rows + offset
    V = np.empty((max(rows, 1), BLOCK), dtype=np.float64)
    top = np.empty(BLOCK, dtype=np.float64)
    correct = np.empty(BLOCK, dtype=np.float64)
    sums = np.empty(BLOCK, dtype=np.float64)
    shifted = np.empty(BLOCK, dtype=np.float64)
    k = np.empty(BLOCK, dtype=np.int64)
    reduced = np.empty(BLOCK, dtype=np.float64)
    first = 1 - offset  # the first row not yet in `top`
    total = 0.0
    for b0 in range(0, N, BLOCK):
        n = min(BLOCK, N - b0)
        count = np.uint64(n)
        _load(T, base, has_base, b0, n, V)
        for j in range(count):
            top[j] = 0.0 if offset == 1 else V[0, j]
        for row in range(first, rows):
            v_row = V[row]
            for j in range(count):
                v = v_row[j]
                top[j] = v if v > top[j] else top[j]
        for j in range(n):
            c = y[b0 + j]
            if c < 0 or c >= n_classes:
                raise IndexError("a label is out of range for these scores")
            row = c - offset
            correct[j] = (V[row, j] if row >= 0 else 0.0) - top[j]
            sums[j] = 0.0
        if offset == 1:  # class 0's score, zero
            for j in range(count):
                shifted[j] = 0.0 - top[j]
            _exp_add(shifted, n, k, reduced, sums)
        for row in range(rows):
            v_row = V[row]
            for j in range(count):
                shifted[j] = v_row[j] - top[j]
            _exp_add(shifted, n, k, reduced, sums)
        for j in range(count):
            total += math.log(sums[j]) - correct[j]
    return total


def applies(T: FloatArray, y: IntArray, base: FloatArray | None, relative: bool) -> bool:
    """Whether the kernels compute this loss: 2-D T (at least one row with class 0's, one
    column) in float32 or float64, base None or of T's shape in either, one integer label per
    column (labels out of range raise IndexError in the kernel, as np.take does)."""
    return (
        T.ndim == 2
        and T.shape[0] + int(relative) >= 1
        and T.shape[1] >= 1
        and T.dtype in DTYPES
        and (base is None or (base.shape == T.shape and base.dtype in DTYPES))
        and y.shape == (T.shape[1],)
        and y.dtype.kind in "iu"
    )


def data_loss_sum(
    name: str,
    T: FloatArray,
    y: IntArray,
    delta: float,
    base: FloatArray | None,
    relative: bool,
) -> float:
    """The summed (not averaged) data loss of T (+ base); `applies(T, y, base, relative)` must
    hold."""
    y64 = np.ascontiguousarray(y, dtype=np.int64)
    has_base = base is not None
    base_array = NO_BASE if base is None else base
    offset = int(relative)
    if name == "svm":
        return float(svm_sum(T, base_array, has_base, y64, float(delta), offset))
    return float(softmax_sum(T, base_array, has_base, y64, offset))
