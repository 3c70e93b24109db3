"""Rows kept as bytes (worker.engine.byte_rows) are the transformed float rows, bit for bit, and
everything the engine computes from them equals what it computes from the float arrays."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from tests.engine.conftest import SwitchBackend
from worker.engine.accel.parallel import limit_threads
from worker.engine.byte_rows import ByteRows, as_float, rows_of
from worker.engine.metrics import accuracy, eval_split, predict, predict_scores
from worker.engine.population import from_states, run_population
from worker.engine.preprocess import Preprocessor
from worker.engine.train import TrainData, init_state, run
from worker.engine.train_config import TrainConfig

N_TRAIN, N_VAL, D, C = 700, 150, 40, 10
PREPROCESSING = [
    {"center": True, "standardize": False, "bias": True},  # the course's
    {"center": True, "standardize": True, "bias": True},
    {"center": False, "standardize": True, "bias": False},
    {"center": False, "standardize": False, "bias": False},
]


def pixels(rows: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """uint8 rows whose class shifts their mean (learnable), a constant column (std 0)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, C, rows)
    X = np.clip(rng.normal(100 + 12 * y[:, None], 40, (rows, D)), 0, 255).astype(np.uint8)
    X[:, 5] = 17
    return X, y


def both(preprocess: dict[str, bool], dtype: str) -> tuple[TrainData, TrainData]:
    """The same split as ByteRows and as the float arrays Preprocessor.transform makes."""
    (X, y), (X_val, y_val) = pixels(N_TRAIN, 0), pixels(N_VAL, 1)
    p = Preprocessor.fit(X, **preprocess)
    as_bytes = TrainData(
        ByteRows.encode(X, p.mean, p.std, p.bias, dtype), y,
        ByteRows.encode(X_val, p.mean, p.std, p.bias, dtype), y_val,
    )  # fmt: skip
    return as_bytes, TrainData(p.transform(X, dtype), y, p.transform(X_val, dtype), y_val)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("preprocess", PREPROCESSING)
def test_the_rows_are_the_transformed_rows(preprocess: dict[str, bool], dtype: str) -> None:
    as_bytes, floats = both(preprocess, dtype)
    X, F = as_bytes.X_train, floats.X_train
    assert isinstance(X, ByteRows) and isinstance(F, np.ndarray)
    assert (X.shape, X.dtype) == (F.shape, F.dtype)
    assert np.array_equal(X.dense(), F)
    assert np.array_equal(X.rows(13, 101), F[13:101])
    assert np.array_equal(rows_of(X, 650, 900), F[650:])
    index = np.random.default_rng(2).integers(0, N_TRAIN, 64)
    out = np.empty((64, X.shape[1]), dtype=X.dtype)
    assert X.take(index, out=out) is out and np.array_equal(out, F[index])
    assert X.nbytes < F.nbytes / (2 if dtype == "float32" else 4)


def test_encode_rejects_what_is_not_bytes() -> None:
    with pytest.raises(ValueError, match="uint8"):
        ByteRows(np.zeros((3, 2), np.float32), np.zeros(2, np.float32), None)
    with pytest.raises(ValueError, match="offsets"):
        ByteRows(np.zeros((3, 2), np.uint8), np.zeros(3, np.float32), None)


def test_scores_and_predictions_equal_the_float_rows() -> None:
    as_bytes, floats = both(PREPROCESSING[0], "float32")
    W = np.random.default_rng(3).standard_normal((C, D + 1)).astype(np.float32)
    scores = predict_scores(W, as_bytes.X_train)
    assert np.array_equal(scores, predict_scores(W, floats.X_train))
    np.testing.assert_allclose(scores, as_float(floats.X_train) @ W.T, rtol=1e-5, atol=1e-3)
    with limit_threads(1):  # the same scores for any thread count
        assert np.array_equal(predict_scores(W, as_bytes.X_train), scores)
    assert np.array_equal(predict(W, as_bytes.X_val), predict(W, floats.X_val))
    assert accuracy(W, as_bytes.X_train, as_bytes.y_train) == accuracy(
        W, floats.X_train, floats.y_train
    )
    (X_eval, _), (F_eval, _) = (eval_split(d.X_train, d.y_train, 100) for d in (as_bytes, floats))
    assert np.array_equal(as_float(X_eval), as_float(F_eval))


TRAININGS = [
    {"loss": "svm"},
    {"loss": "softmax", "optimizer": "adam"},
    {"loss": "svm", "sampling": "epoch", "optimizer": "momentum",
     "optimizer_params": {"momentum": 0.9}},
    {"loss": "softmax", "batch_size": None, "iterations": 20},
    {"loss": "svm", "batch_size": 16, "iterations": 4, "gradient": "numerical"},
]  # fmt: skip


def trained(config: TrainConfig, data: TrainData) -> tuple[np.ndarray, list[Any]]:
    state = init_state(config, C, D + 1)
    chunks = list(run(state, config, data, chunk_steps=40))
    return state.W, chunks


@pytest.mark.parametrize("backend", ["compiled", "numpy"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("spec", TRAININGS)
def test_training_on_bytes_equals_training_on_floats(
    spec: dict[str, Any], dtype: str, backend: Any, switch_backend: SwitchBackend
) -> None:
    switch_backend(backend)
    base: dict[str, Any] = {"learning_rate": 1e-4, "reg": 0.5, "batch_size": 64,
                            "iterations": 120, "eval_every": 50, "eval_sample": 90}  # fmt: skip
    config = TrainConfig(**(base | spec | {"dtype": dtype}))
    as_bytes, floats = both(PREPROCESSING[1] if spec.get("optimizer") else PREPROCESSING[0], dtype)
    W_bytes, chunks_bytes = trained(config, as_bytes)
    W_floats, chunks_floats = trained(config, floats)
    assert W_bytes.tobytes() == W_floats.tobytes()
    for a, b in zip(chunks_bytes, chunks_floats, strict=True):
        assert a.losses.tobytes() == b.losses.tobytes()
        assert a.evals == b.evals
    assert chunks_floats[-1].evals[-1].train_accuracy > 0.15  # learned something (chance: 0.1)


@pytest.mark.parametrize("batch_size", [64, None])
def test_a_population_on_bytes_equals_one_on_floats(batch_size: int | None) -> None:
    configs = [TrainConfig(learning_rate=lr, reg=reg, batch_size=batch_size, iterations=60,
                           eval_every=20, eval_sample=90)
               for lr in (1e-4, 1e-3) for reg in (0.0, 0.5)]  # fmt: skip
    results = []
    for data in both(PREPROCESSING[0], "float32"):
        population = from_states(configs, [init_state(c, C, D + 1) for c in configs])
        chunks = list(run_population(population, data, chunk_steps=20))
        results.append((population.Wt.copy(), chunks))
    (Wt_bytes, chunks_bytes), (Wt_floats, chunks_floats) = results
    assert Wt_bytes.tobytes() == Wt_floats.tobytes()
    assert repr(chunks_bytes) == repr(chunks_floats)
