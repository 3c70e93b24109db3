"""The SVM data loss of class-major scores (worker.engine.scoreloss) compiled with numba: one pass.

worker.engine.scoreloss.data_loss calls `data_loss_sum` where `applies` holds and the compiled
backend is in effect (worker.engine.accel.active). The NumPy version makes about six passes
over a float64 (C, N) scratch (copy or add, take, subtract, put, maximum, sum); here the scores
(T + base) are read once, in blocks of BLOCK columns: a block is loaded into a small float64
buffer that stays in L1/L2, each column's terms are accumulated over the classes in float64
(vectorized across the block's columns), and the columns' sums are added to the total.

Results differ from the NumPy version by rounding only (the order of the float64 sums), and they
depend on the values and N alone, never on where the arrays live: every caller that passes equal
scores gets bit-identical losses (search's blocked and sequential paths rely on it).
Non-finite scores give a non-finite loss, as on NumPy (a NaN hinge term is kept, not clipped).
Softmax stays on NumPy: its passes are dominated by exp, which NumPy already runs in SIMD.
"""

from typing import Any

import numpy as np
from numba import prange

from worker.engine.accel import jit
from worker.engine.accel.jit import kernel, parallel_driver
from worker.engine.accel.parallel import max_threads
from worker.engine.arrays import FloatArray, IntArray

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


@parallel_driver
def svm_sums(T3: Any, base: Any, y: Any, delta: float, offset: int, out: Any) -> None:
    """out[g] = svm_sum(T3[g], no base, ...) for each stacked scores T3[g], on numba's threads."""
    for g in prange(T3.shape[0]):
        out[g] = svm_sum(T3[g], base, False, y, delta, offset)


def applies(name: str, T: FloatArray, y: IntArray, base: FloatArray | None, relative: bool) -> bool:
    """Whether the kernel computes this loss: the SVM, 2-D T (at least one row with class 0's,
    one column) in float32 or float64, base None or of T's shape in either, one integer label
    per column (labels out of range raise IndexError in the kernel, as np.take does)."""
    return (
        name == "svm"
        and T.ndim == 2
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
    """The summed (not averaged) SVM data loss of T (+ base); `applies(name, T, y, base,
    relative)` must hold."""
    y64 = np.ascontiguousarray(y, dtype=np.int64)
    base_array = NO_BASE if base is None else base
    return float(svm_sum(T, base_array, base is not None, y64, float(delta), int(relative)))


def each_data_loss_sum(
    name: str, T3: FloatArray, y: IntArray, delta: float, relative: bool
) -> list[float]:
    """`data_loss_sum` of each stacked scores T3[g] (G, R, N), bit for bit, the candidates
    shared among numba's threads where they run; `applies(name, T3[0], y, None, relative)` must
    hold."""
    threads = min(max_threads(), T3.shape[0])
    if threads > 1 and jit.parallel_ready(threads):
        sums = np.empty(T3.shape[0])
        y64 = np.ascontiguousarray(y, dtype=np.int64)
        svm_sums(T3, NO_BASE, y64, float(delta), int(relative), sums)
        return [float(total) for total in sums]
    return [data_loss_sum(name, T, y, delta, None, relative) for T in T3]
