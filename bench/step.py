"""Full-batch loss + gradient on CIFAR-10 (49,000 x 3,073, 10 classes): the engine against the
course's vectorized code in the same dtype (float32, float64), and the engine on X kept as bytes
against the engine on float X; then the loss and gradient of both against a float64 reference.

The course's code (assignment 1, W (D, C)) lives here, with the prepared CIFAR-10 split the other
benchmarks share.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np

from bench import common
from bench.common import SETTLE, Array, Timing, interleaved, options, table, write_report
from worker.engine import accel
from worker.engine.byte_rows import ByteRows
from worker.engine.datasets import load_builtin
from worker.engine.losses import softmax_loss_grad, svm_loss_grad
from worker.engine.preprocess import Preprocessor

REPEATS = 7
BYTES = ", bytes"  # X kept as bytes (ByteRows), as jobs on CIFAR-10 hold it


# The course's code (CS231n assignment 1, linear_svm.py / softmax.py / linear_classifier.py).


def course_svm(W: Array, X: Array, y: Array, reg: float) -> tuple[Any, Array]:
    """svm_loss_vectorized: scores, margins, binary mask, row sums, dW = X.T.dot(binary)."""
    num_train = X.shape[0]
    scores = X.dot(W)
    correct_class_scores = scores[np.arange(num_train), y].reshape(-1, 1)
    margins = np.maximum(0, scores - correct_class_scores + 1)
    margins[np.arange(num_train), y] = 0
    loss = np.sum(margins) / num_train + reg * np.sum(W * W)
    binary = margins
    binary[margins > 0] = 1
    row_sum = np.sum(binary, axis=1)
    binary[np.arange(num_train), y] = -row_sum
    dW = X.T.dot(binary) / num_train + 2 * reg * W
    return loss, dW


def course_softmax(W: Array, X: Array, y: Array, reg: float) -> tuple[Any, Array]:
    """softmax_loss_vectorized with the max shift."""
    num_train = X.shape[0]
    scores = X.dot(W)
    scores -= np.max(scores, axis=1, keepdims=True)
    exp_scores = np.exp(scores)
    probs = exp_scores / np.sum(exp_scores, axis=1, keepdims=True)
    loss = -np.sum(np.log(probs[np.arange(num_train), y])) / num_train + reg * np.sum(W * W)
    dscores = probs
    dscores[np.arange(num_train), y] -= 1
    dW = X.T.dot(dscores) / num_train + 2 * reg * W
    return loss, dW


def course_train_svm(X: Array, y: Array, *, learning_rate: float = 1e-7, reg: float = 2.5e4,
                     num_iters: int = 1500, batch_size: int = 200, seed: int = 0
                     ) -> tuple[Array, float]:  # fmt: skip
    """LinearClassifier.train with the SVM loss, in X's dtype. Returns W (D, C), last loss."""
    num_train, dim = X.shape
    np.random.seed(seed)
    W = (0.001 * np.random.randn(dim, int(np.max(y)) + 1)).astype(X.dtype)
    loss: Any = np.nan
    for _ in range(num_iters):
        idx = np.random.choice(num_train, batch_size, replace=True)
        X_batch = X[idx]
        y_batch = y[idx]
        loss, grad = course_svm(W, X_batch, y_batch, reg)
        W -= learning_rate * grad
    return W, float(loss)


def cifar10_prepared(
    dtypes: tuple[str, ...], *, standardize: bool = False, as_bytes: bool = False
) -> tuple[dict[str, dict[str, Any]], dict[str, Array]]:
    """The course's split, mean-centred (optionally standardized), bias column appended:
    ({dtype: {"train", "val", "test", and with `as_bytes` "bytes": the training rows kept as
    bytes, as a worker holds them}}, {"train", "val", "test"} labels)."""
    dataset = load_builtin("cifar10", cifar10_dir=common.require_cifar10())
    pre = Preprocessor.fit(dataset.X_train, center=True, standardize=standardize, bias=True)
    splits = {"train": dataset.X_train, "val": dataset.X_val, "test": dataset.X_test}
    X: dict[str, dict[str, Any]] = {
        dt: {name: pre.transform(raw, dt) for name, raw in splits.items()} for dt in dtypes
    }
    if as_bytes:
        for dt in dtypes:
            X[dt]["bytes"] = ByteRows.encode(dataset.X_train, pre.mean, pre.std, pre.bias, dt)
    y = {"train": dataset.y_train, "val": dataset.y_val, "test": dataset.y_test}
    return X, y


LOSSES = (("SVM", course_svm, svm_loss_grad), ("softmax", course_softmax, softmax_loss_grad))


def _candidates(
    X: Array, X_bytes: ByteRows, y: Array, reg: float
) -> list[tuple[str, Callable[[], object]]]:
    rng = np.random.default_rng(0)
    W = (0.001 * rng.standard_normal((10, X.shape[1]))).astype(X.dtype)  # engine layout (C, D)
    Wc = np.ascontiguousarray(W.T)  # the course's (D, C)
    cands: list[tuple[str, Callable[[], object]]] = []
    for name, course, engine in LOSSES:
        cands += [
            (f"course {name}", partial(course, Wc, X, y, reg)),
            (f"engine {name}", partial(engine, W, X, y, reg)),
            (f"engine {name}{BYTES}", partial(engine, W, X_bytes, y, reg)),
        ]
    return cands


def _agreement(X: Array, y: Array, reg: float) -> list[list[object]]:
    """Loss and gradient of course, engine and the engine's NumPy pass against a float64
    reference, same W."""
    rng = np.random.default_rng(1)
    W = (0.001 * rng.standard_normal((10, X.shape[1]))).astype(X.dtype)
    X64, W64 = X.astype(np.float64), W.astype(np.float64)
    rows: list[list[object]] = []
    for name, course, engine in LOSSES:
        ref_loss, ref_grad = engine(W64, X64, y, reg)
        c_loss, c_grad = course(np.ascontiguousarray(W.T), X, y, reg)
        e_loss, e_grad = engine(W, X, y, reg)
        accel.configure("numpy")  # the engine's NumPy pass
        try:
            n_loss, n_grad = engine(W, X, y, reg)
        finally:
            accel.configure("compiled")
        scale = float(np.abs(ref_grad).max())
        losses = [abs(float(loss) - ref_loss) / ref_loss for loss in (c_loss, e_loss, n_loss)]
        grads = [float(np.abs(g - ref_grad).max()) / scale for g in (c_grad.T, e_grad, n_grad)]
        rows.append([name, f"{ref_loss:.6f}", *(f"{err:.1e}" for err in losses + grads)])
    return rows


def _section(dtype: str, timings: list[Timing]) -> str:
    t = {timing.name: timing.seconds for timing in timings}
    rows = []
    for timing in timings:
        s, course_ratio, float_ratio = timing.seconds, "", ""
        if timing.name.startswith("engine"):
            course = timing.name.replace("engine", "course").replace(BYTES, "")
            course_ratio = f"**{t[course] / s:.2f}x**"
            if timing.name.endswith(BYTES):
                float_ratio = f"**{t[timing.name.replace(BYTES, '')] / s:.2f}x**"
        rows.append([timing.name, f"{s * 1e3:.1f}", course_ratio, float_ratio])
    header = ["candidate", "ms (min)", "course / engine", "floats / bytes"]
    return f"### {dtype}\n\n" + table(header, rows)


def main() -> None:
    options(__doc__)
    accel.configure("compiled")  # the engine's kernels, as a worker runs them
    reg = 2.5e4
    X_by_dtype, labels = cifar10_prepared(("float32", "float64"), as_bytes=True)
    y = labels["train"]
    sections, agreement = [], []
    for dtype in ("float32", "float64"):
        X, X_bytes = X_by_dtype[dtype]["train"], X_by_dtype[dtype]["bytes"]
        print(f"timing {dtype} {X.shape} ...", flush=True)
        timings = interleaved(_candidates(X, X_bytes, y, reg), repeats=REPEATS,
                              settle_seconds=SETTLE)  # fmt: skip
        sections.append(_section(dtype, timings))
        if dtype == "float32":
            agreement = _agreement(X, y, reg)
        del X_by_dtype[dtype]
    body = f"""
Loss + gradient over the whole training set (N = 49,000, D = 3,073, C = 10), reg = {reg:g},
W = 0.001 * randn (every SVM margin active, as at the first step); min of {REPEATS}
interleaved runs after a warm-up, each after {SETTLE} s idle. **course**: assignment 1's
`svm_loss_vectorized` / `softmax_loss_vectorized`; **engine**: `worker.engine.losses` on the
compiled kernels, **course / engine** its speed-up over the course's code in the same dtype;
**bytes**: the engine on X kept as bytes (`ByteRows`, as a worker holds CIFAR-10; the same
values), **floats / bytes** its speed-up over the engine on the float X. The engine runs on its
default threads, the course's code on OpenBLAS's.

{sections[0]}

{sections[1]}

### Same numbers (float32 against a float64 reference computed by the engine)

Relative error of the loss, and max |grad - ref| / max |ref|. **NumPy pass**: the engine with
its compiled kernels off (`DESCENT_FUSED_KERNELS=0`).

{table(["loss", "float64 loss", "course loss err", "engine loss err", "NumPy pass loss err",
        "course grad err", "engine grad err", "NumPy pass grad err"], agreement)}
"""  # fmt: skip
    write_report("step", "Full-batch step: engine vs the course's vectorized code", body)


if __name__ == "__main__":
    main()
