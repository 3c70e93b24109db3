"""The course's SGD recipe on CIFAR-10 (SVM, lr 1e-7, reg 2.5e4, batch 200, 1,500 steps, sampling
with replacement): the engine against the course's training loop.

Whole trainings interleaved, in float32 and float64: the course's LinearClassifier.train
(bench.step), and the engine's loop as the worker runs it (train.run) on float X and on X kept
as bytes (ByteRows, as a worker holds CIFAR-10). Each reports its last loss and validation
accuracy. Same batches and values: the engine's final W must be bit-identical on bytes and on
floats.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import numpy as np

from bench.common import SETTLE, Array, interleaved, options, table, write_report
from bench.step import cifar10_prepared, course_train_svm
from worker.engine import accel
from worker.engine.metrics import accuracy
from worker.engine.train import TrainData, TrainState, init_state, run
from worker.engine.train_config import TrainConfig

REPEATS = 5
DTYPES = ("float32", "float64")
FLOATS = " (train.run)"
BYTES = ", X as bytes (as a worker holds CIFAR-10)"
RECIPE = {"learning_rate": 1e-7, "reg": 2.5e4, "batch_size": 200, "iterations": 1500}


def recipe(dtype: str) -> TrainConfig:
    return TrainConfig(loss="svm", optimizer="sgd", dtype=dtype, seed=0, **RECIPE)  # type: ignore[arg-type]


def train(config: TrainConfig, data: TrainData) -> tuple[TrainState, float]:
    """One training as the worker runs it (one chunk); the state and the last loss."""
    state = init_state(config, 10, data.X_train.shape[1])
    chunks = list(run(state, config, data, chunk_steps=config.iterations))
    return state, float(chunks[-1].losses[-1])


def main() -> None:
    options(__doc__)
    accel.configure("compiled")  # the engine's kernels, as a worker runs them
    X, labels = cifar10_prepared(DTYPES, as_bytes=True)
    y, y_val = labels["train"], labels["val"]

    def course(dtype: str) -> tuple[Array, float, float]:
        W, loss = course_train_svm(X[dtype]["train"], y)  # its defaults are the recipe
        W = np.ascontiguousarray(W.T)
        return W, loss, accuracy(W, X[dtype]["val"], y_val)

    def engine(dtype: str, on_bytes: bool) -> tuple[Any, ...]:
        rows = X[dtype]["bytes" if on_bytes else "train"]
        state, loss = train(recipe(dtype), TrainData(rows, y, X[dtype]["val"], y_val))
        return state.W, loss, accuracy(state.W, X[dtype]["val"], y_val)

    cands = [(f"course {dt}", partial(course, dt)) for dt in DTYPES]
    cands += [(f"engine {dt}{suffix}", partial(engine, dt, on_bytes))
              for dt in DTYPES
              for suffix, on_bytes in ((FLOATS, False), (BYTES, True))]  # fmt: skip
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
    same = all(np.array_equal(t[f"engine {dt}{FLOATS}"].value[0], t[f"engine {dt}{BYTES}"].value[0])
               for dt in DTYPES)  # fmt: skip
    body = f"""
SVM, {RECIPE}, sampling with replacement; val = the course's 1,000 validation images. Min of
{REPEATS} interleaved runs, each after {SETTLE} s idle. **course**: assignment 1's
`LinearClassifier.train`; **engine**: `train.run` as a worker runs it, on float X and on X kept
as bytes (`ByteRows`, as a worker holds CIFAR-10); **course f32 / x**, **course f64 / x**: the
course's float32 and float64 times over each candidate's. The engine runs on its default
threads, the course's code on OpenBLAS's (every core). The engine's final W bit-identical on
bytes and on floats, in each dtype: **{same}**.

{table(["candidate", "s (min)", "ms/step", "course f32 / x", "course f64 / x", "last loss",
        "val"], rows)}
"""  # fmt: skip
    write_report("sgd", "SGD recipe: engine vs the course's training loop", body)


if __name__ == "__main__":
    main()
