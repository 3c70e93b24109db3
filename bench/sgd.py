"""The course's SGD recipe on CIFAR-10 (SVM, lr 1e-7, reg 2.5e4, batch 200, 1,500 steps, sampling
with replacement): the engine against the course's training loop, and where a step's time goes.

    python -m bench.sgd

Whole trainings interleaved: the course's LinearClassifier.train (bench.step) in float32 and
float64, and the engine's loop as the worker runs it (train.run: each step's rows read in place
by the gather kernels), gathered into a batch (the path of runs the gather kernels do not cover)
with the next batch prefetched on a helper thread, gathered without prefetch (limit_threads(1)),
and on X kept as bytes (ByteRows, as a worker holds CIFAR-10). Same batches and values: the
final W must be bit-identical in every engine variant.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable
from unittest import mock

import numpy as np

from bench.common import SETTLE, Array, interleaved, options, table, write_report
from bench.step import cifar10_prepared, cifar10_train_as_bytes, course_svm, course_train_svm
from worker.engine import accel
from worker.engine.accel.parallel import limit_threads, run_parallel
from worker.engine.losses import LossFunction
from worker.engine.metrics import accuracy
from worker.engine.train import TrainData, TrainState, init_state, run
from worker.engine.train_config import TrainConfig

REPEATS = 5
HEADER = ["candidate", "s (min)", "ms/step", "course f32 / x", "course f64 / x", "last loss", "val"]
VARIANTS = {  # name suffix -> (in place, prefetch, X kept as bytes)
    " (train.run)": (True, True, False),
    ", gathered + prefetch": (False, True, False),
    ", gathered, no prefetch (limit_threads(1))": (False, False, False),
    ", X as bytes (as a worker holds CIFAR-10)": (True, True, True),
}
RECIPE = {"learning_rate": 1e-7, "reg": 2.5e4, "batch_size": 200, "iterations": 1500}


def recipe(dtype: str) -> TrainConfig:
    return TrainConfig(loss="svm", optimizer="sgd", dtype=dtype, seed=0, **RECIPE)  # type: ignore[arg-type]


def train(
    config: TrainConfig, data: TrainData, prefetch: bool, in_place: bool = True
) -> tuple[TrainState, float]:
    """One training as the worker runs it (one chunk); the state and the last loss.

    Without prefetch: limit_threads(1), which leaves the engine no helper thread (a batch of
    200 rows runs on the caller's thread either way). Without in_place: batches gathered.
    """
    state = init_state(config, 10, data.X_train.shape[1])
    gathered = mock.patch.object(LossFunction, "reads_rows_in_place", return_value=False)
    with (
        contextlib.nullcontext() if prefetch else limit_threads(1),
        contextlib.nullcontext() if in_place else gathered,
    ):
        chunks = list(run(state, config, data, chunk_steps=config.iterations))
    return state, float(chunks[-1].losses[-1])


def per_step(fn: Callable[[int], object], steps: int, repeats: int = 3) -> str:
    """Microseconds per call of fn(step), min over repeats."""
    best = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        for step in range(steps):
            fn(step)
        best = min(best, time.perf_counter() - start)
    return f"{best / steps * 1e6:.0f}"


def breakdown(X: Array, y: Array, steps: int = 1500) -> list[list[object]]:
    """The engine's step, part by part, one thread, each part alone over the recipe's draws."""
    from worker.engine.accel import fused, fused_c10, jit  # once the backend is configured

    config = recipe(str(X.dtype))
    rng = np.random.default_rng(0)
    rows = [rng.choice(X.shape[0], 200, replace=True) for _ in range(steps)]
    state = init_state(config, 10, X.shape[1])
    W, loss_fn, rule = state.W, config.make_loss(), config.make_rule()
    y64 = np.ascontiguousarray(y, dtype=np.int64)
    batch = np.empty((200, X.shape[1]), X.dtype)
    hot_X, hot_y = X[rows[0]], y[rows[0]]
    _, full_grad = loss_fn.loss_grad(W, hot_X, hot_y)
    W_updated = W.copy()
    draw = np.random.default_rng(0)
    packed = fused.pack(W)
    parts: dict[str, Callable[[int], object]] = {
        "draw rows: rng.choice(N, 200)": lambda s: draw.choice(X.shape[0], 200, replace=True),
        "loss_grad_rows: 200 random rows read in place (gather kernel)":
            lambda s: loss_fn.loss_grad_rows(W, X, y64, rows[s]),
        "update W -= lr * grad": lambda s: rule.update(full_grad, {}, W_updated, 0.0),
        "(gathered path) gather 200 random rows (np.take into a buffer)":
            lambda s: np.take(X, rows[s], axis=0, out=batch, mode="clip"),
        "(gathered path) loss_grad on a cached batch (slab kernel)":
            lambda s: loss_fn.loss_grad(W, hot_X, hot_y),
        "(inside loss_grad_rows) pack W tile-major (fused.pack)": lambda s: fused.pack(W),
        "(inside loss_grad_rows) unpack the gradient (fused.unpack)":
            lambda s: fused.unpack(packed, X.shape[1]),
    }  # fmt: skip
    with limit_threads(1):
        found: list[list[object]] = [[name, per_step(fn, steps)] for name, fn in parts.items()]
    # Two threads: the pass itself, and what handing the second slab to the other thread costs
    # with nothing to compute (numba's threads, and Python's where numba has no thread-safe layer).
    with limit_threads(2):
        two = per_step(lambda s: loss_fn.loss_grad_rows(W, X, y64, rows[s]), steps)
    found.append(["(2 threads) loss_grad_rows, slabs on numba's threads", two])
    if jit.parallel_ready(2):
        spans, losses = np.zeros((2, 2), np.int64), np.empty(2)
        nothing, delta = np.empty((2, 0, 0, 0), X.dtype), X.dtype.type(1.0)
        launch = per_step(
            lambda s: fused_c10.svm_gather_slabs(
                X, y64, rows[s], packed, spans, nothing, fused.CHUNK, False, delta, losses
            ),
            steps,
        )
        found.append(["(2 threads) launch: the driver on two empty slabs", launch])
    empty = [lambda slot: None, lambda slot: None]
    handoff = per_step(lambda s: run_parallel(empty, 2), steps)
    name = "(2 threads) hand-off: run_parallel of two empty tasks (without numba's threads)"
    return [*found, [name, handoff]]


def course_breakdown(X: Array, y: Array, steps: int = 1500) -> list[list[object]]:
    rng = np.random.default_rng(0)
    rows = [rng.choice(X.shape[0], 200, replace=True) for _ in range(steps)]
    W = (0.001 * rng.standard_normal((X.shape[1], 10))).astype(X.dtype)
    hot_X, hot_y = X[rows[0]], y[rows[0]]
    binary = rng.standard_normal((200, 10)).astype(X.dtype)
    parts: dict[str, Callable[[int], object]] = {
        "draw rows: np.random.choice(N, 200)": lambda s: np.random.choice(X.shape[0], 200),
        "gather: X[idx]": lambda s: X[rows[s]],
        "scores X_batch.dot(W) (cached batch)": lambda s: hot_X.dot(W),
        "gradient X_batch.T.dot(binary) (cached batch)": lambda s: hot_X.T.dot(binary),
        "whole svm_loss_vectorized (cached batch)": lambda s: course_svm(W, hot_X, hot_y, 2.5e4),
    }
    return [[name, per_step(fn, steps)] for name, fn in parts.items()]


def main() -> None:
    options(__doc__)
    accel.configure("compiled")  # the engine's kernels, as a worker runs them
    X, labels = cifar10_prepared(("float32", "float64"))
    y, y_val = labels["train"], labels["val"]
    data = {dt: TrainData(X[dt]["train"], y, X[dt]["val"], y_val) for dt in X}
    as_bytes = cifar10_train_as_bytes(("float32", "float64"))
    data_bytes = {dt: TrainData(as_bytes[dt], y, X[dt]["val"], y_val) for dt in X}
    results: dict[str, tuple[float, float, Array]] = {}  # name -> (last loss, val accuracy, W)

    def course(dtype: str) -> Callable[[], object]:
        def go() -> None:
            W, loss = course_train_svm(X[dtype]["train"], y)  # its defaults are the recipe
            W = np.ascontiguousarray(W.T)
            results[f"course {dtype}"] = (loss, accuracy(W, X[dtype]["val"], y_val), W)

        return go

    def engine(dtype: str, variant: str) -> Callable[[], object]:
        name = f"engine {dtype}{variant}"
        in_place, prefetch, on_bytes = VARIANTS[variant]
        prepared = (data_bytes if on_bytes else data)[dtype]

        def go() -> None:
            state, loss = train(recipe(dtype), prepared, prefetch, in_place)
            results[name] = (loss, accuracy(state.W, X[dtype]["val"], y_val), state.W)

        return go

    cands = [(f"course {dt}", course(dt)) for dt in ("float32", "float64")]
    cands += [(f"engine {dt}{variant}", engine(dt, variant))
              for dt in ("float32", "float64") for variant in VARIANTS]  # fmt: skip
    print("timing the recipe ...", flush=True)
    timings = interleaved(cands, repeats=REPEATS, settle_seconds=SETTLE)
    t = {timing.name: timing.seconds for timing in timings}
    rows = []
    for timing in timings:
        loss, val, _ = results[timing.name]
        s = timing.seconds
        rows.append([timing.name, f"{s:.2f}", f"{s / 1.5:.2f}", f"{t['course float32'] / s:.2f}",
                     f"{t['course float64'] / s:.2f}", f"{loss:.2f}", f"{val:.3f}"])  # fmt: skip
    same = all(
        np.array_equal(results[f"engine {dt} (train.run)"][2], results[f"engine {dt}{variant}"][2])
        for dt in ("float32", "float64")
        for variant in VARIANTS
    )
    print("breakdown ...", flush=True)
    engine_parts = breakdown(X["float32"]["train"], y)
    course_parts = course_breakdown(X["float32"]["train"], y)
    body = f"""
SVM, {RECIPE}, sampling with replacement; val = the course's 1,000 validation images. Min of
{REPEATS} interleaved runs, each after {SETTLE} s idle. The engine runs on its default
threads, the course's code on OpenBLAS's (every core). Final W bit-identical in the engine's
variants: **{same}**.

{table(HEADER, rows)}

### Where a float32 step goes (microseconds per step, one thread, each part alone)

Engine (numba fused kernels): the draw, loss_grad_rows and the update; the gathered path
gathers instead and runs the slab kernel on the batch:

{table(["part", "us / step"], engine_parts)}

Course (OpenBLAS default threads):

{table(["part", "us / step"], course_parts)}
"""  # fmt: skip
    write_report("sgd", "SGD recipe: engine vs the course's training loop",
                 ".venv/bin/python -m bench.sgd", body)  # fmt: skip


if __name__ == "__main__":
    main()
