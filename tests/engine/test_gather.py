"""Minibatches read in place (the gather kernels of worker.engine.accel.fused) give the gathered
fused path's losses and gradients bit for bit, and training with them gives the same history and
W; runs they do not cover keep the gathered batches."""

import copy
import dataclasses
from typing import Any

import numpy as np
import pytest

pytest.importorskip("numba")

from tests.engine.conftest import SwitchBackend
from tests.engine.spies import spy_on
from tests.engine.test_kernels import problem
from worker.engine.accel import fused
from worker.engine.accel.parallel import limit_threads
from worker.engine.byte_rows import as_float
from worker.engine.losses import LossFunction, make_loss
from worker.engine.sampling import BatchSampler, Sampling
from worker.engine.train import Chunk, TrainData, TrainState, _Loop, init_state, run
from worker.engine.train_config import TrainConfig

LOSSES = [("svm", 1.0), ("svm", 1.5), ("softmax", 1.0)]


@pytest.fixture
def spy(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The losses of the passes that read their rows in place."""
    return spy_on(monkeypatch, fused, "gather_pass")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(("name", "delta"), LOSSES, ids=["svm", "svm-delta", "softmax"])
@pytest.mark.parametrize("sampling", ["replacement", "epoch"])
@pytest.mark.parametrize("batch_size", [1, 31, 32, 33, 200, 1100])
def test_rows_in_place_give_the_gathered_fused_results_bit_for_bit(
    spy: list[str], dtype: Any, name: str, delta: float, sampling: Sampling, batch_size: int
) -> None:
    """Batches shorter than a chunk, not a multiple of it, of one slab and of two (1100 rows);
    columns past a tile; the last, shorter batch of an epoch."""
    W, X, y = problem(1500, 300, 10, seed=batch_size, dtype=dtype)
    loss = make_loss(name, reg=0.01, delta=delta)
    assert loss.reads_rows_in_place(W, X, y)
    sampler = BatchSampler(X, y, batch_size, sampling, seed=4)
    rng = np.random.default_rng(9)
    steps = -(-1500 // batch_size) + 1 if batch_size >= 200 else 3  # into a second epoch
    for step in range(steps):
        rows = sampler.rows(step, rng)
        assert rows is not None
        gathered = loss.loss_grad(W, X[rows], y[rows])
        in_place = loss.loss_grad_rows(W, X, y, rows)
        assert in_place[0] == gathered[0]
        assert in_place[1].dtype == dtype
        np.testing.assert_array_equal(in_place[1], gathered[1])
    assert spy == [name] * steps


def blobs10(n: int = 400, d: int = 300, dtype: Any = np.float32) -> TrainData:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 10, n)
    X = (rng.normal(size=(n, d)) + 0.5 * y[:, None]).astype(dtype)
    X[:, -1] = 1.0
    return TrainData(X, y, X[:60], y[:60])


def train(config: TrainConfig, data: TrainData, **chunking: Any) -> tuple[list[Chunk], TrainState]:
    state = init_state(config, 10, data.X_train.shape[1])
    return list(run(state, config, data, **chunking)), state


def gathered(monkeypatch: pytest.MonkeyPatch) -> None:
    """Runs from here on gather their batches (the fused kernels stay on)."""
    monkeypatch.setattr(LossFunction, "reads_rows_in_place", lambda self, W, X, y: False)


def assert_same_history(a: list[Chunk], b: list[Chunk]) -> None:
    assert len(a) == len(b)
    for x, z in zip(a, b, strict=True):
        np.testing.assert_array_equal(x.steps, z.steps)
        np.testing.assert_array_equal(x.losses, z.losses)
        np.testing.assert_array_equal(x.learning_rates, z.learning_rates)
        assert x.evals == z.evals
        assert x.done == z.done


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("loss", ["svm", "softmax"])
@pytest.mark.parametrize("sampling", ["replacement", "epoch"])
def test_training_in_place_equals_training_on_gathered_batches(
    monkeypatch: pytest.MonkeyPatch, spy: list[str], dtype: Any, loss: str, sampling: Sampling
) -> None:
    config = TrainConfig(
        loss=loss, reg=1e-3, optimizer="momentum", learning_rate=1e-3, batch_size=70,
        sampling=sampling, iterations=60, eval_every=20, dtype=dtype, seed=3,
    )  # fmt: skip
    data = blobs10(dtype=np.dtype(dtype).type)
    in_place, state = train(config, data, chunk_steps=25)
    assert len(spy) == 60
    # Resumed from a checkpoint at a chunk boundary.
    first = init_state(config, 10, data.X_train.shape[1])
    chunks = run(first, config, data, chunk_steps=25)
    next(chunks)
    assert len(spy) == 60 + 25
    resumed = copy.deepcopy(first)
    for _ in run(resumed, config, data):
        pass
    np.testing.assert_array_equal(resumed.W, state.W)
    gathered(monkeypatch)
    on_batches, expected = train(config, data, chunk_steps=25)
    assert len(spy) == 60 + 60  # none of the gathered run's steps
    assert_same_history(in_place, on_batches)
    np.testing.assert_array_equal(state.W, expected.W)
    assert state.rng.bit_generator.state == expected.rng.bit_generator.state


@pytest.mark.parametrize("loss", ["svm", "softmax"])
def test_training_in_place_is_the_same_on_1_and_2_threads(spy: list[str], loss: str) -> None:
    """A minibatch of 2 chunks or more is 2 slabs: each on its own thread or both on one."""
    config = TrainConfig(loss=loss, reg=1e-3, batch_size=70, iterations=40, eval_every=20, seed=5)
    data = blobs10()
    assert fused.slab_bounds(70) == [(0, 32), (32, 70)]
    runs = []
    for threads in (1, 2, 2):
        with limit_threads(threads):
            runs.append(train(config, data, chunk_steps=15))
    assert len(spy) == 3 * 40
    for chunks, state in runs[1:]:
        assert_same_history(runs[0][0], chunks)
        np.testing.assert_array_equal(runs[0][1].W, state.W)


def test_a_memory_mapped_training_set_is_read_in_place(tmp_path: Any, spy: list[str]) -> None:
    data = blobs10()
    np.save(tmp_path / "X.npy", as_float(data.X_train))
    X_map = np.load(tmp_path / "X.npy", mmap_mode="r")
    mapped = TrainData(X_map, data.y_train, data.X_val, data.y_val)
    config = TrainConfig(batch_size=50, iterations=10, seed=2)
    history, state = train(config, mapped)
    assert spy == ["svm"] * 10
    expected_history, expected = train(config, data)
    assert_same_history(history, expected_history)
    np.testing.assert_array_equal(state.W, expected.W)


def in_place(config: TrainConfig, data: TrainData, n_classes: int = 10) -> bool:
    state = init_state(config, n_classes, data.X_train.shape[1])
    return _Loop(config, data, state.W).in_place is not None


def test_the_runs_the_gather_kernels_do_not_cover_gather_their_batches(
    switch_backend: SwitchBackend,
) -> None:
    data = blobs10(n=100, d=20)
    config = TrainConfig(batch_size=10, iterations=5)
    assert in_place(config, data)
    assert not in_place(dataclasses.replace(config, batch_size=None), data)  # full batch: no gather
    assert not in_place(dataclasses.replace(config, gradient="numerical"), data)
    fortran = TrainData(np.asfortranarray(data.X_train), data.y_train, data.X_val, data.y_val)
    assert not in_place(config, fortran)
    rng = np.random.default_rng(1)
    y7 = rng.integers(0, 7, 100)
    assert not in_place(config, TrainData(data.X_train, y7, data.X_val, y7[:60]), n_classes=7)
    switch_backend("numpy")
    assert not in_place(config, data)


def test_fallback_runs_still_train_identically(switch_backend: SwitchBackend) -> None:
    """With the kernels off, a run takes the gathered NumPy path and stays reproducible."""
    data = blobs10(n=200, d=40)
    config = TrainConfig(batch_size=20, iterations=30, seed=6)
    switch_backend("numpy")
    assert not in_place(config, data)
    first, a = train(config, data, chunk_steps=7)
    second, b = train(config, data)
    np.testing.assert_array_equal(a.W, b.W)
    assert np.concatenate([c.losses for c in first]).tolist() == second[0].losses.tolist()
