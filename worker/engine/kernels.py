"""Blocked passes over X for the linear losses: X read from memory once, in BLAS calls that
OpenBLAS runs near the core's peak, on a few threads, with results independent of the thread count.

A loss + gradient is two skinny products, S = X W^T (N x C) and dW = dS^T X (C x D). Called on
the whole X, OpenBLAS packs X into panels for its general GEMM kernel, runs these C = 10 column
products far below its peak, and the second product reads X from memory again. Split into
sub-blocks with rows * C * D <= 1e6, OpenBLAS takes its unpacked "small matrix" kernels instead
(x86-64 builds since 0.3.17), which run at close to the FMA peak of one core. Rows are walked in
chunks of a few MB: the chunk's scores (sub-block by sub-block), the elementwise loss work on the
whole chunk (a few NumPy calls per chunk, not per sub-block), then the chunk's gradient
products while it is still in cache. A minibatch given as row indices is gathered chunk by
chunk into a buffer that stays in cache for both products.

Threads: the rows are cut into slabs whose bounds depend only on the number of rows and the
blocking; each slab gives a partial loss and gradient and the partials are added in slab order,
so every thread count returns bit-identical results. The small kernels are single-threaded (BLAS
thread limits do not apply to them); parallelism comes from Python threads taking slabs in turn,
NumPy releasing the GIL inside BLAS and ufunc loops. `limit_threads(n)` caps them as threadpoolctl
caps BLAS threads; by default a pass may use every CPU the process may run on. The helper threads
live in one process-wide pool, created on first use (and again in a forked child); idle, they
wait on a queue and cost nothing.

Scores are computed transposed, ST = W X^T (C x rows), so dS^T, written over ST in place by the
loss's elementwise function, feeds the gradient product as it is.
"""

import contextvars
import functools
import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from worker.engine.arrays import FloatArray, IntArray

# Largest M*N*K for which OpenBLAS (x86-64) runs a GEMM on its small-matrix kernels.
SMALL_GEMM_MNK = 1_000_000
# With fewer rows per call than this (very wide W), one packed GEMM per chunk is faster.
MIN_SUB_ROWS = 8
# Bytes of X per chunk: big enough that NumPy's per-call overhead is small, small enough that
# the chunk is still cached for the gradient product. CIFAR-10 float32: 256 rows of 3073.
CHUNK_BYTES = 3 << 20
# Largest slab, in chunks: the unit of work of a thread and of the fixed-order reduction.
SLAB_CHUNKS = 16
# A pass smaller than one full slab is still cut in two slabs when each gets at least this many
# multiply-adds per product (rows * C * D), so that a minibatch (the course's 200 rows of
# CIFAR-10: 6.1e6) can use two cores; below it the threads' overhead would eat the gain.
MIN_SLAB_WORK = 2_000_000

# (ST (C, n) chunk scores in the work dtype, y (n,), want_grad) -> summed data loss of the chunk.
# With want_grad it must leave dS^T (d loss_sum / d ST) in ST.
Elementwise = Callable[[FloatArray, IntArray, bool], float]

_max_threads: contextvars.ContextVar[int | None] = contextvars.ContextVar(
    "descent_engine_threads", default=None
)


@contextmanager
def limit_threads(n: int) -> Iterator[None]:
    """Run the passes inside this block (in this context) on at most `n` threads."""
    if n < 1:
        raise ValueError(f"threads must be >= 1, got {n}")
    token = _max_threads.set(n)
    try:
        yield
    finally:
        _max_threads.reset(token)


def max_threads() -> int:
    """The cap set by `limit_threads`, else the number of CPUs this process may run on."""
    limit = _max_threads.get()
    if limit is not None:
        return limit
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


class _Helpers:
    """The process-wide pool of helper threads, grown on demand."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None
        self._size = 0
        self._pid = 0

    def pool(self, size: int) -> ThreadPoolExecutor:
        with self._lock:
            if self._pool is None or self._size < size or self._pid != os.getpid():
                old, same_process = self._pool, self._pid == os.getpid()
                self._pool = ThreadPoolExecutor(size, thread_name_prefix="engine-pass")
                self._size, self._pid = size, os.getpid()
                if old is not None and same_process:
                    old.shutdown(wait=False)
            return self._pool


_helpers = _Helpers()


@dataclass(frozen=True)
class Blocking:
    """Rows per BLAS call (sub), per elementwise call (chunk) and at most per slab."""

    sub: int
    chunk: int
    slab: int

    width: int  # C * D: multiply-adds per row and product

    @classmethod
    @functools.lru_cache(maxsize=64)
    def for_shape(cls, n_classes: int, n_features: int, itemsize: int) -> "Blocking":
        width = max(1, n_classes * n_features)
        sub = SMALL_GEMM_MNK // width
        rows = max(1, CHUNK_BYTES // max(1, n_features * itemsize))
        if sub < MIN_SUB_ROWS:
            return cls(sub=rows, chunk=rows, slab=SLAB_CHUNKS * rows, width=width)
        chunk = max(1, round(rows / sub)) * sub  # whole sub-blocks
        return cls(sub=min(sub, chunk), chunk=chunk, slab=SLAB_CHUNKS * chunk, width=width)

    def slabs(self, n_rows: int) -> list[tuple[int, int]]:
        """Bounds of the slabs: as few as the largest slab allows, two for a smaller pass
        with enough work for two threads. They depend on n_rows and the blocking only."""
        count = -(-n_rows // self.slab)
        if count == 1 and n_rows * self.width >= 2 * MIN_SLAB_WORK:
            count = 2
        return [(n_rows * i // count, n_rows * (i + 1) // count) for i in range(count)]


@dataclass(frozen=True)
class PassResult:
    """Summed (not averaged) data loss and, when asked for, the summed gradient dS^T X (C, D)."""

    loss_sum: float
    grad_sum: FloatArray | None


class _Pass:
    """One pass's inputs; `slab` processes rows [start, stop) and returns their partial sums."""

    def __init__(
        self,
        W: FloatArray,
        X: FloatArray,
        y: IntArray,
        rows: IntArray | None,
        elementwise: Elementwise,
        want_grad: bool,
    ) -> None:
        self.dtype = np.result_type(W.dtype, X.dtype)
        self.W = W.astype(self.dtype, copy=False)
        self.X, self.y, self.rows = X, y, rows
        self.elementwise, self.want_grad = elementwise, want_grad
        self.blocking = Blocking.for_shape(W.shape[0], W.shape[1], self.dtype.itemsize)

    def _chunk(self, begin: int, end: int, out: FloatArray | None) -> tuple[FloatArray, IntArray]:
        if self.rows is None or out is None:
            return self.X[begin:end].astype(self.dtype, copy=False), self.y[begin:end]
        rows = self.rows[begin:end]
        # mode="clip" lets np.take write straight into `out`; linear_pass checked the range.
        X_chunk = np.take(self.X, rows, axis=0, out=out[: end - begin], mode="clip")
        return X_chunk.astype(self.dtype, copy=False), self.y[rows]

    def slab(self, start: int, stop: int) -> PassResult:
        W, sub, chunk_rows = self.W, self.blocking.sub, self.blocking.chunk
        size = min(chunk_rows, stop - start)
        ST = np.empty((W.shape[0], size), dtype=self.dtype)
        gathered = None if self.rows is None else np.empty((size, W.shape[1]), self.X.dtype)
        grad: FloatArray | None = None
        part = np.empty_like(W) if self.want_grad else None
        loss_sum = 0.0
        for begin in range(start, stop, chunk_rows):
            end = min(begin + chunk_rows, stop)
            X_chunk, y_chunk = self._chunk(begin, end, gathered)
            ST_chunk = ST[:, : end - begin]
            for k in range(0, end - begin, sub):
                np.matmul(W, X_chunk[k : k + sub].T, out=ST_chunk[:, k : k + sub])
            loss_sum += self.elementwise(ST_chunk, y_chunk, self.want_grad)
            if part is None:
                continue
            for k in range(0, end - begin, sub):
                if grad is None:
                    grad = np.matmul(ST_chunk[:, k : k + sub], X_chunk[k : k + sub])
                else:
                    np.matmul(ST_chunk[:, k : k + sub], X_chunk[k : k + sub], out=part)
                    grad += part
        return PassResult(loss_sum, grad)


def linear_pass(
    W: FloatArray,
    X: FloatArray,
    y: IntArray,
    elementwise: Elementwise,
    want_grad: bool,
    rows: IntArray | None = None,
) -> PassResult:
    """Scores W X^T chunk by chunk, `elementwise` on each chunk, and the gradient sum dS^T X.

    W (C, D), X (N, D), y (N,); `rows` (B,) restricts the pass to X[rows], y[rows] (repeats
    allowed), gathered chunk by chunk. The work runs in the promoted dtype of W and X (a
    mismatched X is cast chunk by chunk); grad_sum has that dtype.
    """
    n_rows = X.shape[0]
    if rows is not None:
        rows = np.asarray(rows)
        if rows.size and (rows.min() < 0 or rows.max() >= n_rows):
            raise IndexError(f"rows must lie in 0..{n_rows - 1}")
        n_rows = rows.shape[0]
    work = _Pass(W, X, y, rows, elementwise, want_grad)
    if rows is None and n_rows <= work.blocking.sub:  # one BLAS call per product
        X_all = X.astype(work.dtype, copy=False)
        ST = np.matmul(work.W, X_all.T)
        loss_sum = elementwise(ST, y, want_grad)
        return PassResult(loss_sum, np.matmul(ST, X_all) if want_grad else None)
    slabs = work.blocking.slabs(n_rows)
    threads = min(max_threads(), len(slabs)) if len(slabs) > 1 else 1
    results: list[PassResult | None] = [None] * len(slabs)
    if threads == 1:
        for i, (start, stop) in enumerate(slabs):
            results[i] = work.slab(start, stop)
    else:
        _run_threaded(work, slabs, results, threads)
    return _sum_in_order(results)


def _run_threaded(
    work: _Pass, slabs: list[tuple[int, int]], results: list[PassResult | None], threads: int
) -> None:
    """The caller and threads - 1 helpers take slabs in turn until none is left."""
    lock = threading.Lock()
    taken = iter(range(len(slabs)))
    failed = threading.Event()

    def take_slabs() -> None:
        while not failed.is_set():
            with lock:
                i = next(taken, None)
            if i is None:
                return
            try:
                results[i] = work.slab(*slabs[i])
            except BaseException:
                failed.set()
                raise

    # Helpers start with an empty context: run them in a copy of ours, so that the caller's
    # np.errstate (and thread limit) applies inside them too.
    context = contextvars.copy_context()
    pool = _helpers.pool(threads - 1)
    helpers = [pool.submit(context.copy().run, take_slabs) for _ in range(threads - 1)]
    try:
        take_slabs()
    finally:
        errors = [helper.exception() for helper in helpers]  # waits for every helper
    for error in errors:
        if error is not None:
            raise error


def _sum_in_order(results: list[PassResult | None]) -> PassResult:
    loss_sum, grad = 0.0, None
    for result in results:
        if result is None:
            raise RuntimeError("a slab of the pass was not computed")
        loss_sum += result.loss_sum
        if grad is None:
            grad = result.grad_sum
        elif result.grad_sum is not None:
            grad += result.grad_sum
    return PassResult(loss_sum, grad)
