"""The course's SGD recipe on real CIFAR-10 (SVM, lr 1e-7, reg 2.5e4, batch 200, 1,500 steps,
sampling with replacement): the engine against the course's training loop, and where a step's
time goes.

    python -m bench.sgd [--repeats 5]

Candidates (interleaved, min of `repeats`, one process):
- course float32 / float64: LinearClassifier.train with svm_loss_vectorized (bench.step).
- engine (train.run): the engine's loop as it is, through TrainConfig.
- engine, rows to the loss: a copy of train.py's loop with one change: the sampler hands the
  batch's row indices to the loss, which gathers them chunk by chunk (LossFunction.loss_grad's
  `rows`) instead of gathering the whole batch first. The change proposed for train.py.
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import NDArray

from bench.common import interleaved, table, write_report
from bench.step import cifar10_prepared, course_svm, course_train_svm
from worker.engine.kernels import Blocking, limit_threads, linear_pass
from worker.engine.metrics import accuracy
from worker.engine.sampling import BatchSampler
from worker.engine.train import TrainConfig, TrainData, TrainState, init_state, run

Array = NDArray[Any]
COMMAND = ".venv/bin/python -m bench.sgd"
HEADER = ["candidate", "s (min)", "ms/step", "course f32 / x", "course f64 / x", "last loss", "val"]
RECIPE = {"learning_rate": 1e-7, "reg": 2.5e4, "batch_size": 200, "iterations": 1500}


def recipe(dtype: str) -> TrainConfig:
    return TrainConfig(loss="svm", optimizer="sgd", dtype=dtype, seed=0, **RECIPE)  # type: ignore[arg-type]


def engine_run(config: TrainConfig, data: TrainData) -> tuple[TrainState, float]:
    """train.run as the worker calls it (one chunk). Returns the state and the last loss."""
    state = init_state(config, 10, data.X_train.shape[1])
    losses = [float(chunk.losses[-1]) for chunk in run(state, config, data, chunk_steps=1500)]
    return state, losses[-1]


def engine_rows_run(config: TrainConfig, data: TrainData) -> tuple[TrainState, float]:
    """train._Loop.advance with the proposed change: rows to the loss, no separate gather."""
    state = init_state(config, 10, data.X_train.shape[1])
    loss_fn, rule, schedule = config.make_loss(), config.make_rule(), config.make_schedule()
    sampler = BatchSampler(
        data.X_train, data.y_train, config.batch_size, config.sampling, config.seed
    )
    steps: list[int] = []
    losses: list[float] = []
    rates: list[float] = []
    last = config.iterations - 1
    with np.errstate(all="ignore"):
        for step in range(state.step, config.iterations):
            rows = sampler.rows(step, state.rng)
            lr = schedule(step)
            loss, grad = loss_fn.loss_grad(state.W, data.X_train, data.y_train, rows)
            if not math.isfinite(loss):
                raise RuntimeError(f"diverged at step {step}")
            if step % config.log_every == 0 or step == last:
                steps.append(step)
                losses.append(loss)
                rates.append(lr)
            state.W, state.rule_state = rule.update(grad, state.rule_state, state.W, lr)
            state.step = step + 1
    return state, losses[-1]


def _per_step(fn: Callable[[int], object], steps: int, repeats: int = 3) -> float:
    """Microseconds per call of fn(step), min over repeats."""
    best = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        for step in range(steps):
            fn(step)
        best = min(best, time.perf_counter() - start)
    return best / steps * 1e6


def breakdown(X: Array, y: Array, steps: int = 1500) -> list[list[object]]:
    """Where a step's time goes, single thread: each part run alone over the recipe's row draws."""
    config = recipe(str(X.dtype))
    rng = np.random.default_rng(0)
    rows = [rng.choice(X.shape[0], 200, replace=True) for _ in range(steps)]
    state = init_state(config, 10, X.shape[1])
    W, loss_fn, rule = state.W, config.make_loss(), config.make_rule()
    batch = np.empty((200, X.shape[1]), X.dtype)
    hot_X, hot_y = X[rows[0]], y[rows[0]]
    sub = Blocking.for_shape(10, X.shape[1], X.dtype.itemsize).sub
    ST = np.abs(W @ hot_X.T)
    part = np.empty_like(W)

    def products(_: int) -> None:
        grad = None
        for k in range(0, 200, sub):
            np.matmul(W, hot_X[k : k + sub].T, out=ST[:, k : k + sub])
        for k in range(0, 200, sub):
            if grad is None:
                grad = np.matmul(ST[:, k : k + sub], hot_X[k : k + sub])
            else:
                np.matmul(ST[:, k : k + sub], hot_X[k : k + sub], out=part)
                grad += part

    W_updated = W.copy()
    chunk = loss_fn._chunk()
    scores = W @ hot_X.T
    work = scores.copy()

    def elementwise() -> float:
        np.copyto(work, scores)
        return chunk(work, hot_y, True)

    _, grad = loss_fn.loss_grad(W, hot_X, hot_y)
    draw = np.random.default_rng(0)
    parts = {
        "draw rows: rng.choice(N, 200)": lambda s: draw.choice(X.shape[0], 200, replace=True),
        "gather 200 random rows (np.take)": lambda s: np.take(
            X, rows[s], axis=0, out=batch, mode="clip"
        ),
        "two products, 32-row small-kernel calls (cached batch)": products,
        "elementwise SVM work (10 x 200)": lambda s: elementwise(),
        "update W -= lr * grad": lambda s: rule.update(grad, {}, W_updated, 0.0),
        "whole pass, no elementwise (rows, 1 thread)": lambda s: linear_pass(
            W, X, y, lambda S, yy, g: 0.0, True, rows[s]
        ),
        "whole loss_grad(rows) (1 thread)": lambda s: loss_fn.loss_grad(W, X, y, rows[s]),
    }  # fmt: skip
    out: list[list[object]] = []
    with limit_threads(1):
        for name, fn in parts.items():
            out.append([name, f"{_per_step(fn, steps):.0f}"])
    rows_step = parts["whole loss_grad(rows) (1 thread)"]
    out.append(["whole loss_grad(rows) (default threads)", f"{_per_step(rows_step, steps):.0f}"])
    return out


def course_breakdown(X: Array, y: Array, steps: int = 1500) -> list[list[object]]:
    rng = np.random.default_rng(0)
    rows = [rng.choice(X.shape[0], 200, replace=True) for _ in range(steps)]
    W = (0.001 * rng.standard_normal((X.shape[1], 10))).astype(X.dtype)
    hot_X, hot_y = X[rows[0]], y[rows[0]]
    binary = rng.standard_normal((200, 10)).astype(X.dtype)
    parts = {
        "draw rows: np.random.choice(N, 200)": lambda s: np.random.choice(X.shape[0], 200),
        "gather: X[idx]": lambda s: X[rows[s]],
        "scores X_batch.dot(W) (cached batch)": lambda s: hot_X.dot(W),
        "gradient X_batch.T.dot(binary) (cached batch)": lambda s: hot_X.T.dot(binary),
        "svm_loss_vectorized (cached batch)": lambda s: course_svm(W, hot_X, hot_y, 2.5e4),
    }
    return [[name, f"{_per_step(fn, steps):.0f}"] for name, fn in parts.items()]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    X, labels = cifar10_prepared(("float32", "float64"))
    y, y_val = labels["train"], labels["val"]
    data = {dt: TrainData(X[dt]["train"], y, X[dt]["val"], y_val) for dt in X}
    results: dict[str, tuple[float, float]] = {}  # name -> (last loss, val accuracy)

    def course(dtype: str) -> Callable[[], object]:
        def go() -> None:
            W, loss = course_train_svm(
                X[dtype]["train"], y, learning_rate=1e-7, reg=2.5e4, num_iters=1500,
                batch_size=200, seed=0,
            )  # fmt: skip
            val = accuracy(np.ascontiguousarray(W.T), X[dtype]["val"], y_val)
            results[f"course {dtype}"] = (loss, val)

        return go

    def engine(dtype: str, rows: bool) -> Callable[[], object]:
        name = f"engine {dtype}" + (", rows to the loss" if rows else " (train.run)")

        def go() -> None:
            state, loss = (engine_rows_run if rows else engine_run)(recipe(dtype), data[dtype])
            results[name] = (loss, accuracy(state.W, X[dtype]["val"], y_val))

        return go

    cands = [("course float32", course("float32")), ("course float64", course("float64"))]
    for dtype in ("float32", "float64"):
        cands += [(f"engine {dtype} (train.run)", engine(dtype, False)),
                  (f"engine {dtype}, rows to the loss", engine(dtype, True))]  # fmt: skip
    print("timing the recipe ...", flush=True)
    timings = interleaved(cands, repeats=args.repeats)
    t = {timing.name: timing.seconds for timing in timings}
    rows = []
    for timing in timings:
        loss, val = results[timing.name]
        s = timing.seconds
        rows.append([timing.name, f"{s:.2f}", f"{s / 1.5:.2f}", f"{t['course float32'] / s:.2f}",
                     f"{t['course float64'] / s:.2f}", f"{loss:.2f}", f"{val:.3f}"])  # fmt: skip
    print("breakdown ...", flush=True)
    engine_parts = breakdown(X["float32"]["train"], y)
    course_parts = course_breakdown(X["float32"]["train"], y)
    body = f"""
SVM, {RECIPE}, sampling with replacement, float32 unless said; val = the course's 1,000
validation images. Whole trainings interleaved, min of {args.repeats}; ratios from this one run.
The engine uses its default threads (every CPU) and OpenBLAS its default.

{table(HEADER, rows)}

### Where a float32 step goes (microseconds per step, single thread, each part alone)

Engine:

{table(["part", "us / step"], engine_parts)}

Course (OpenBLAS default threads):

{table(["part", "us / step"], course_parts)}
"""  # fmt: skip
    write_report("sgd", "SGD recipe: engine vs the course's training loop", COMMAND, body)


if __name__ == "__main__":
    main()
