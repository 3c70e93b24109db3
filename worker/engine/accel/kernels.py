"""Blocked passes over X for the linear losses: X read from memory once, on a few threads, with
results independent of the thread count.

A loss + gradient is two skinny products, S = X W^T (N x C) and dW = dS^T X (C x D). Called on
the whole X, the second product reads X from memory again, and OpenBLAS splits each product over
its threads. Here rows are walked in chunks of a few MB: the chunk's scores in row blocks of
rows * C * D <= 1e6 (the size below which OpenBLAS may take its unpacked small-matrix kernels),
the elementwise loss work on the whole chunk (a few NumPy calls per chunk, not per block), then
the chunk's gradient in column blocks, while the chunk is cached. Measured on the benchmark
machine (bench/step.py), one core runs these 10-column products at 40-45 GFLOP/s however they
are blocked, under half its FMA peak: the pass is bound by that rate, not by reading X.

Threads (accel.parallel): a pass longer than one slab (16 chunks) is cut into slabs whose
bounds depend only on the number of rows and the blocking; each slab gives a partial loss and
gradient and the partials are added in slab order, so every thread count returns bit-identical
results. Parallelism comes from Python threads taking slabs in turn, the BLAS calls releasing the
GIL. BLAS is always held to one thread: OpenBLAS would otherwise thread calls of this size too
(two threads each calling a 2-thread BLAS oversubscribe two cores), and it picks other kernels
when threaded, so results would depend on the thread count; this way they never do.
A minibatch (at most one chunk) is two BLAS calls on the caller's thread: cut in pieces for two
threads, each piece is shorter than what the threads' hand-offs cost (measured on the benchmark
machine; BatchSampler.prefetch uses the second core for the next batch's gather instead).

Compiled kernels (worker.engine.accel.fused, numba): with the compiled backend in effect
(worker.engine.accel.configure; a worker's fused_kernels setting, DESCENT_FUSED_KERNELS), a pass
of a loss they cover (`fused` names it), full batch or minibatch, runs there instead (measured
faster at every size, from 32 x 3 up); same slab discipline, so results stay independent of the
thread count; a minibatch of two chunks or more is two slabs (its halves, on two threads where
the cap allows). With the NumPy backend every pass stays here. Where the kernels apply,
`gather_pass` computes a minibatch X[rows] reading its rows in place (no gather copy), with the
results of linear_pass on the gathered rows.
"""

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from worker.engine.accel import backend
from worker.engine.accel.parallel import max_threads, run_parallel, single_threaded_blas
from worker.engine.arrays import FloatArray, IntArray
from worker.engine.byte_rows import ByteRows, Features, as_float

# Largest M*N*K for which OpenBLAS (x86-64) runs a GEMM on its small-matrix kernels.
SMALL_GEMM_MNK = 1_000_000
# With fewer rows per call than this (very wide W), one packed GEMM per chunk is faster.
MIN_SUB_ROWS = 8
# Widest column block of the gradient product (measured: much wider blocks run slower).
MAX_COLUMNS = 400
# Bytes of X per chunk: big enough that NumPy's per-call overhead is small, small enough that
# the chunk is still cached for the gradient product. CIFAR-10 float32: 256 rows of 3073.
CHUNK_BYTES = 3 << 20
# Slab length, in chunks: the unit of work of a thread and of the fixed-order reduction.
SLAB_CHUNKS = 16

# (S (n, C) C-contiguous chunk scores in the work dtype, y (n,), want_grad) -> summed data loss
# of the chunk. With want_grad it must leave dS (d loss_sum / d S) in S.
Elementwise = Callable[[FloatArray, IntArray, bool], float]


@dataclass(frozen=True)
class FusedLoss:
    """The loss an Elementwise computes, named for the compiled kernels (accel.fused)."""

    name: Literal["svm", "softmax"]
    delta: float = 1.0


@dataclass(frozen=True)
class Blocking:
    """Rows per BLAS call (sub), per elementwise call (chunk) and at most per slab."""

    sub: int
    chunk: int
    slab: int

    @classmethod
    @functools.lru_cache(maxsize=64)
    def for_shape(cls, n_classes: int, n_features: int, itemsize: int) -> "Blocking":
        sub = SMALL_GEMM_MNK // max(1, n_classes * n_features)
        rows = max(1, CHUNK_BYTES // max(1, n_features * itemsize))
        if sub < MIN_SUB_ROWS:
            return cls(sub=rows, chunk=rows, slab=SLAB_CHUNKS * rows)
        chunk = max(1, round(rows / sub)) * sub  # whole sub-blocks
        return cls(sub=min(sub, chunk), chunk=chunk, slab=SLAB_CHUNKS * chunk)

    def slabs(self, n_rows: int) -> list[tuple[int, int]]:
        """Bounds of as few slabs as `slab` allows, of equal length (depends on n_rows only)."""
        count = max(1, -(-n_rows // self.slab))
        return [(n_rows * i // count, n_rows * (i + 1) // count) for i in range(count)]


@dataclass(frozen=True)
class PassResult:
    """Summed (not averaged) data loss and, when asked for, the summed gradient dS^T X (C, D)."""

    loss_sum: float
    grad_sum: FloatArray | None


class _Pass:
    """One pass's inputs; `slab` does the work on a range of rows."""

    def __init__(
        self, W: FloatArray, X: Features, y: IntArray, elementwise: Elementwise, want_grad: bool
    ) -> None:
        self.dtype = np.result_type(W.dtype, X.dtype)
        self.W = W.astype(self.dtype, copy=False)
        self.X, self.y = X, y
        self.elementwise, self.want_grad = elementwise, want_grad
        self.blocking = Blocking.for_shape(W.shape[0], W.shape[1], self.dtype.itemsize)

    def slab(self, start: int, stop: int, slot: int = 0) -> PassResult:
        """Rows [start, stop) chunk by chunk: scores, elementwise work, gradient."""
        W, sub, chunk_rows = self.W, self.blocking.sub, self.blocking.chunk
        S_buffer = np.empty((min(chunk_rows, stop - start), W.shape[0]), self.dtype)
        part = np.empty_like(W) if self.want_grad else None
        loss_sum, grad = 0.0, None
        for begin in range(start, stop, chunk_rows):
            end = min(begin + chunk_rows, stop)
            X_chunk = _chunk(self.X, begin, end, self.dtype)
            S = S_buffer[: end - begin]
            # np.dot, not np.matmul: matmul keeps the GIL through a 2-D product, np.dot releases
            # it around the BLAS call, so that slabs on different threads multiply in parallel.
            for k in range(0, end - begin, sub):
                np.dot(X_chunk[k : k + sub], W.T, out=S[k : k + sub])
            loss_sum += self.elementwise(S, self.y[begin:end], self.want_grad)
            if part is not None:
                grad = self._add_gradient(S, X_chunk, grad, part)
        return PassResult(loss_sum, grad)

    def _add_gradient(
        self, S: FloatArray, X_chunk: FloatArray, grad: FloatArray | None, part: FloatArray
    ) -> FloatArray:
        """grad + S^T X_chunk (a new array when grad is None), in small-kernel calls.

        Column blocks of all the chunk's rows, written in place: no partial sums to add within
        the chunk. np.matmul takes the strided column views as they are and, for this shape,
        releases the GIL (np.dot would copy them).
        """
        ST = np.ascontiguousarray(S.T)  # "nn" products run faster than "tn" ones here
        out = np.empty_like(part) if grad is None else part
        n_features = X_chunk.shape[1]
        widest = max(MIN_SUB_ROWS, min(MAX_COLUMNS, SMALL_GEMM_MNK // ST.size))
        blocks = -(-n_features // widest)
        width = -(-n_features // blocks)  # equal blocks: 3073 columns = 8 x 385, not 8 x 384 + 1
        for c0 in range(0, n_features, width):
            np.matmul(ST, X_chunk[:, c0 : c0 + width], out=out[:, c0 : c0 + width])
        if grad is None:
            return out
        grad += out
        return grad


def _chunk(X: Features, begin: int, end: int, dtype: np.dtype) -> FloatArray:
    """Rows [begin, end) of X, C-contiguous in `dtype`: BLAS takes such rows as they are (np.dot
    would copy anything else per call)."""
    if isinstance(X, ByteRows):
        return X.rows(begin, end).astype(dtype, copy=False)
    return np.ascontiguousarray(X[begin:end], dtype=dtype)


def linear_pass(
    W: FloatArray,
    X: Features,
    y: IntArray,
    elementwise: Elementwise,
    want_grad: bool,
    fused: FusedLoss | None = None,
) -> PassResult:
    """Scores X W^T chunk by chunk, `elementwise` on each chunk, and the gradient sum dS^T X.

    W (C, D), X (N, D) with N >= 1 (floats, or ByteRows decoded chunk by chunk), y (N,). The
    work runs in the promoted dtype of W and X (a mismatched X is cast chunk by chunk); grad_sum
    has that dtype. `fused`, naming the loss that
    `elementwise` computes, lets the pass run on the compiled kernels where they apply.
    """
    work = _Pass(W, X, y, elementwise, want_grad)
    n_rows = X.shape[0]
    if fused is not None and fused_applies(work.W, X, y, fused):
        from worker.engine.accel import fused as compiled

        loss_sum, grad = compiled.fused_pass(fused.name, work.W, X, y, want_grad, fused.delta)
        return PassResult(loss_sum, grad)
    # BLAS on one thread, always: its results may depend on its thread count (OpenBLAS picks
    # other kernels when threaded), the engine's must not; and the engine's own threads (slabs,
    # prefetch) are the parallelism.
    with single_threaded_blas():
        if n_rows <= work.blocking.chunk:  # a minibatch: one BLAS call per product
            X_all = as_float(X).astype(work.dtype, copy=False)
            S = np.dot(X_all, work.W.T)  # np.dot releases the GIL (a prefetch may be running)
            loss_sum = elementwise(S, y, want_grad)
            return PassResult(loss_sum, np.dot(S.T, X_all) if want_grad else None)
        slabs = work.blocking.slabs(n_rows)
        threads = min(max_threads(), len(slabs)) if len(slabs) > 1 else 1
        tasks = [functools.partial(work.slab, start, stop) for start, stop in slabs]
        return _sum_in_order(run_parallel(tasks, threads))


def _sum_in_order(results: Sequence[PassResult]) -> PassResult:
    loss_sum, grad = 0.0, None
    for result in results:
        loss_sum += result.loss_sum
        if grad is None:
            grad = result.grad_sum
        elif result.grad_sum is not None:
            grad += result.grad_sum
    return PassResult(loss_sum, grad)


def fused_applies(W: FloatArray, X: Features, y: IntArray, fused: FusedLoss) -> bool:
    """Whether the compiled backend is in effect and its kernels compute the passes of `fused`
    over (X, y) for W (X C-contiguous, in W's dtype): linear_pass's, and `gather_pass` for
    minibatches of them."""
    if not backend.active().compiled:
        return False
    # Imported only now: defining the kernels imports numba, after `active` made its settings.
    from worker.engine.accel import fused as compiled

    return compiled.applies(fused.name, W, X, y)


def gather_pass(
    W: FloatArray, X: Features, y: IntArray, rows: IntArray, fused: FusedLoss
) -> PassResult:
    """linear_pass(W, X[rows], y[rows], ..., want_grad=True, fused=fused), bit for bit, reading
    the rows in place. `fused_applies(W, X, y, fused)` must hold, X be a plain ndarray (or
    ByteRows), y int64
    C-contiguous, and rows (n >= 1,) lie in [0, N) (unchecked: the kernels read X[rows[i]])."""
    from worker.engine.accel import fused as compiled

    loss_sum, grad = compiled.gather_pass(fused.name, W, X, y, rows, fused.delta)
    return PassResult(loss_sum, grad)
