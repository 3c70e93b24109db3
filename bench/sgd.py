"""The course's SGD recipe on CIFAR-10 (SVM, lr 1e-7, reg 2.5e4, batch 200, 1,500 steps, sampling
with replacement): the engine against the course's training loop, and where a step's time goes.

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
from functools import partial
from typing import Any
from unittest import mock

import numpy as np

from bench.common import SETTLE, Array, interleaved, options, table, write_report
from bench.step import cifar10_prepared, course_svm, course_train_svm
from worker.engine import accel
from worker.engine.accel.parallel import limit_threads, run_parallel
from worker.engine.losses import LossFunction
from worker.engine.metrics import accuracy
from worker.engine.train import TrainData, TrainState, init_state, run
from worker.engine.train_config import TrainConfig

REPEATS = 5
DTYPES = ("float32", "float64")
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
    config: TrainConfig, data: TrainData, prefetch: bool = True, in_place: bool = True
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


def per_step(parts: dict[str, Callable[[int], object]], steps: int) -> list[list[object]]:
    """Each part's microseconds per call of fn(step), the minimum of 3 rounds of `steps` calls."""
    found: list[list[object]] = []
    for name, fn in parts.items():
        best = math.inf
        for _ in range(3):
            start = time.perf_counter()
            for step in range(steps):
                fn(step)
            best = min(best, time.perf_counter() - start)
        found.append([name, f"{best / steps * 1e6:.0f}"])
    return found


def breakdown(X: Array, y: Array, steps: int = 1500) -> list[list[object]]:
    """The engine's step, part by part, one thread, each part alone over the recipe's draws."""
    from worker.engine.accel import fused, fused_c10, jit  # once the backend is configured

    config = recipe(str(X.dtype))
    rng = np.random.default_rng(0)
    rows = [rng.choice(X.shape[0], 200, replace=True) for _ in range(steps)]
    W = init_state(config, 10, X.shape[1]).W
    loss_fn, rule = config.make_loss(), config.make_rule()
    y64 = np.ascontiguousarray(y, dtype=np.int64)
    batch = np.empty((200, X.shape[1]), X.dtype)
    hot_X, hot_y = X[rows[0]], y[rows[0]]
    _, full_grad = loss_fn.loss_grad(W, hot_X, hot_y)
    W_updated = W.copy()
    draw = np.random.default_rng(0)
    packed = fused.pack(W)
    with limit_threads(1):
        found = per_step({
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
        }, steps)  # fmt: skip
    # Two threads: the pass itself, and what handing the second slab to the other thread costs
    # with nothing to compute (numba's threads, and Python's where numba has no thread-safe layer).
    two = "(2 threads) loss_grad_rows, slabs on numba's threads"
    with limit_threads(2):
        found += per_step({two: lambda s: loss_fn.loss_grad_rows(W, X, y64, rows[s])}, steps)
    empty: dict[str, Callable[[int], object]] = {}
    if jit.parallel_ready(2):
        spans, losses = np.zeros((2, 2), np.int64), np.empty(2)
        nothing, delta = np.empty((2, 0, 0, 0), X.dtype), X.dtype.type(1.0)
        empty["(2 threads) launch: the driver on two empty slabs"] = lambda s: (
            fused_c10.svm_gather_slabs(
                X, y64, rows[s], packed, spans, nothing, fused.CHUNK, False, delta, losses
            )
        )
    tasks = [lambda slot: None, lambda slot: None]
    empty["(2 threads) hand-off: run_parallel of two empty tasks (without numba's threads)"] = (
        lambda s: run_parallel(tasks, 2)
    )
    return found + per_step(empty, steps)


def course_breakdown(X: Array, y: Array, steps: int = 1500) -> list[list[object]]:
    rng = np.random.default_rng(0)
    rows = [rng.choice(X.shape[0], 200, replace=True) for _ in range(steps)]
    W = (0.001 * rng.standard_normal((X.shape[1], 10))).astype(X.dtype)
    hot_X, hot_y = X[rows[0]], y[rows[0]]
    binary = rng.standard_normal((200, 10)).astype(X.dtype)
    return per_step({
        "draw rows: np.random.choice(N, 200)": lambda s: np.random.choice(X.shape[0], 200),
        "gather: X[idx]": lambda s: X[rows[s]],
        "scores X_batch.dot(W) (cached batch)": lambda s: hot_X.dot(W),
        "gradient X_batch.T.dot(binary) (cached batch)": lambda s: hot_X.T.dot(binary),
        "whole svm_loss_vectorized (cached batch)": lambda s: course_svm(W, hot_X, hot_y, 2.5e4),
    }, steps)  # fmt: skip


def main() -> None:
    options(__doc__)
    accel.configure("compiled")  # the engine's kernels, as a worker runs them
    X, labels = cifar10_prepared(DTYPES, as_bytes=True)
    y, y_val = labels["train"], labels["val"]

    def course(dtype: str) -> tuple[Array, float, float]:
        W, loss = course_train_svm(X[dtype]["train"], y)  # its defaults are the recipe
        W = np.ascontiguousarray(W.T)
        return W, loss, accuracy(W, X[dtype]["val"], y_val)

    def engine(dtype: str, in_place: bool, prefetch: bool, on_bytes: bool) -> tuple[Any, ...]:
        rows = X[dtype]["bytes" if on_bytes else "train"]
        state, loss = train(recipe(dtype), TrainData(rows, y, X[dtype]["val"], y_val), prefetch,
                            in_place)  # fmt: skip
        return state.W, loss, accuracy(state.W, X[dtype]["val"], y_val)

    cands = [(f"course {dt}", partial(course, dt)) for dt in DTYPES]
    cands += [(f"engine {dt}{variant}", partial(engine, dt, *how))
              for dt in DTYPES for variant, how in VARIANTS.items()]  # fmt: skip
    print("timing the recipe ...", flush=True)
    timings = interleaved(cands, repeats=REPEATS, settle_seconds=SETTLE)
    t = {timing.name: timing for timing in timings}
    f32, f64 = (t[f"course {dt}"].seconds for dt in DTYPES)
    rows = []
    for timing in timings:
        _, loss, val = timing.value
        s = timing.seconds
        rows.append([timing.name, f"{s:.2f}", f"{s / 1.5:.2f}", f"{f32 / s:.2f}", f"{f64 / s:.2f}",
                     f"{loss:.2f}", f"{val:.3f}"])  # fmt: skip
    same = all(np.array_equal(t[f"engine {dt} (train.run)"].value[0], t[f"engine {dt}{v}"].value[0])
               for dt in DTYPES for v in VARIANTS)  # fmt: skip
    print("breakdown ...", flush=True)
    engine_parts = breakdown(X["float32"]["train"], y)
    course_parts = course_breakdown(X["float32"]["train"], y)
    body = f"""
SVM, {RECIPE}, sampling with replacement; val = the course's 1,000 validation images. Min of
{REPEATS} interleaved runs, each after {SETTLE} s idle. The engine runs on its default
threads, the course's code on OpenBLAS's (every core). Final W bit-identical in the engine's
variants: **{same}**.

{table(["candidate", "s (min)", "ms/step", "course f32 / x", "course f64 / x", "last loss",
        "val"], rows)}

### Where a float32 step goes (microseconds per step, one thread, each part alone)

Engine (numba fused kernels): the draw, loss_grad_rows and the update; the gathered path
gathers instead and runs the slab kernel on the batch:

{table(["part", "us / step"], engine_parts)}

Course (OpenBLAS default threads):

{table(["part", "us / step"], course_parts)}
"""  # fmt: skip
    write_report("sgd", "SGD recipe: engine vs the course's training loop", body)


if __name__ == "__main__":
    main()
