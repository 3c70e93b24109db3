"""Compile (or load from the disk cache) the compiled kernels jobs use, before any job needs them.

Each warm-up runs the engine's own entry points on a few rows of made-up data, so that numba
compiles exactly the signatures real jobs call: the same dtypes, layouts and flags (C-contiguous,
writeable X; int64 labels and rows; the read-only slab spans), and the same path, numba's threads
or Python threads, which `limit_threads(threads)` chooses as it does for a job. Per loss and
dtype: an SGD minibatch read in place (LossFunction.loss_grad_rows, the gather kernels) and a
full-batch pass (LossFunction.loss_grad, the slab kernels); the same two on features kept as
bytes (a ByteRows, as a CIFAR-10 job trains on: the byte kernels, called through accel.fused);
for the SVM also the class-major scores of random search and random local search
(worker.engine.scoreloss).

It runs on the backend in effect (worker.engine.accel.configure chose it): nothing to do on the
NumPy one.

Signatures outside these (an upload passed through as a read-only memory map, for instance) are
compiled by the first job that calls them; the worker shows that job as compiling kernels.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

from worker.engine.accel import backend
from worker.engine.accel.parallel import limit_threads
from worker.engine.arrays import FloatArray, IntArray
from worker.engine.byte_rows import ByteRows
from worker.engine.losses import LOSS_NAMES, LossName, make_loss
from worker.engine.scoreloss import data_loss, each_data_loss

DTYPE_NAMES = ("float32", "float64")
N_CLASSES = 10  # the class count the kernels are generated for (accel.fused_gen)
# Two chunks of accel.fused.CHUNK rows: two slabs, so that a pass with two threads takes numba's
# threads (the drivers) as a job's minibatch does.
N_ROWS = 64
N_FEATURES = 33


@dataclass(frozen=True)
class WarmedUp:
    """One warm-up: what it ran and how long it took."""

    name: str
    seconds: float


def warm_up(
    threads: int,
    losses: Iterable[LossName] = LOSS_NAMES,
    dtypes: Iterable[str] = DTYPE_NAMES,
    stop: Callable[[], bool] = lambda: False,
) -> list[WarmedUp]:
    """Run every warm-up for these losses and dtypes on `threads` threads (a job's budget);
    `stop()` is asked between warm-ups. Nothing to do on the NumPy backend."""
    if not backend.active().compiled:
        return []
    done: list[WarmedUp] = []
    with limit_threads(threads):
        for loss in losses:
            for dtype in dtypes:
                for name, run in _warm_ups(loss, np.dtype(dtype)):
                    if stop():
                        return done
                    started = time.perf_counter()
                    run()
                    done.append(WarmedUp(f"{loss} {dtype} {name}", time.perf_counter() - started))
    return done


def _warm_ups(loss: LossName, dtype: np.dtype) -> list[tuple[str, Callable[[], object]]]:
    rng = np.random.default_rng(0)
    X: FloatArray = rng.standard_normal((N_ROWS, N_FEATURES)).astype(dtype)
    y: IntArray = np.arange(N_ROWS, dtype=np.int64) % N_CLASSES
    W: FloatArray = (0.001 * rng.standard_normal((N_CLASSES, N_FEATURES))).astype(dtype)
    loss_fn = make_loss(loss, reg=1.0)
    runs: list[tuple[str, Callable[[], object]]] = []
    if loss_fn.reads_rows_in_place(W, X, y):
        rows: IntArray = rng.choice(N_ROWS, N_ROWS, replace=True)
        runs.append(("minibatch", lambda: loss_fn.loss_grad_rows(W, X, y, rows)))
    runs.append(("full batch", lambda: loss_fn.loss_grad(W, X, y)))
    runs += _byte_warm_ups(loss, dtype, rng, y)
    if loss == "svm":
        runs.append(("search", lambda: _search(X, y, W)))
    return runs


def _byte_warm_ups(
    loss: LossName, dtype: np.dtype, rng: np.random.Generator, y: IntArray
) -> list[tuple[str, Callable[[], object]]]:
    """The byte kernels' minibatch and full-batch passes, on rows encoded as a job's are (centred,
    with a bias column; standardizing is a flag of the same compiled kernels)."""
    from worker.engine.accel import fused  # defines the kernels: after the backend's settings

    pixels = rng.integers(0, 256, (N_ROWS, N_FEATURES - 1), dtype=np.uint8)
    X = ByteRows.encode(pixels, pixels.mean(axis=0), None, True, dtype)
    W: FloatArray = (0.001 * rng.standard_normal((N_CLASSES, N_FEATURES))).astype(dtype)
    if not fused.applies(loss, W, X, y):
        return []
    rows: IntArray = rng.choice(N_ROWS, N_ROWS, replace=True)
    return [
        ("minibatch bytes", lambda: fused.gather_pass(loss, W, X, y, rows)),
        ("full batch bytes", lambda: fused.fused_pass(loss, W, X, y, True)),
    ]


def _search(X: FloatArray, y: IntArray, W: FloatArray) -> None:
    """Scores as worker.engine.search forms them: a stack of candidates (random search), one
    move added to the current float64 scores, and those scores alone (random local search)."""
    relative = np.ascontiguousarray(np.stack([W[1:] - W[:1]] * 2))
    T3 = np.matmul(relative.reshape(-1, X.shape[1]), X.T).reshape(2, N_CLASSES - 1, N_ROWS)
    each_data_loss("svm", T3, y, relative=True)
    scores = np.ascontiguousarray(T3[0], dtype=np.float64)
    data_loss("svm", T3[1], y, base=scores, relative=True)
    data_loss("svm", scores, y, relative=True)
