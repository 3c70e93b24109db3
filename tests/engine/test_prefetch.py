"""Prefetched minibatches are the batches `batch` would have drawn, from the same Generator use."""

import copy

import numpy as np
import pytest

from worker.engine import sampling as sampling_module
from worker.engine.accel.parallel import limit_threads
from worker.engine.sampling import BatchSampler, Sampling
from worker.engine.train import Diverged, TrainData, TrainState, init_state, run
from worker.engine.train_config import TrainConfig


@pytest.fixture(autouse=True)
def prefetch_small_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests use tiny batches: let them take the helper thread all the same."""
    monkeypatch.setattr(sampling_module, "PREFETCH_MIN_BYTES", 0)


def data(n: int = 50, d: int = 4) -> tuple[np.ndarray, np.ndarray]:
    X = np.arange(n * d, dtype=np.float32).reshape(n, d)
    return X, np.arange(n, dtype=np.int64)


@pytest.mark.parametrize("sampling", ["replacement", "epoch"])
@pytest.mark.parametrize("threads", [1, 2])
def test_prefetched_batches_equal_plain_batches(sampling: Sampling, threads: int) -> None:
    X, y = data()
    plain = BatchSampler(X, y, 8, sampling, seed=3)
    ahead = BatchSampler(X, y, 8, sampling, seed=3)
    rng_plain, rng_ahead = np.random.default_rng(11), np.random.default_rng(11)
    with limit_threads(threads):
        for step in range(20):
            expected_X, expected_y = plain.batch(step, rng_plain)
            X_batch, y_batch = ahead.batch(step, rng_ahead)
            np.testing.assert_array_equal(X_batch, expected_X)
            np.testing.assert_array_equal(y_batch, expected_y)
            if step < 19:
                ahead.prefetch(step + 1, rng_ahead)
            # The batch in use is not overwritten while the next one is gathered.
            np.testing.assert_array_equal(X_batch, expected_X)
    assert rng_ahead.bit_generator.state == rng_plain.bit_generator.state


def test_a_prefetch_must_be_followed_by_its_own_step() -> None:
    X, y = data()
    sampler = BatchSampler(X, y, 5)
    rng = np.random.default_rng(0)
    with limit_threads(2):
        sampler.batch(0, rng)
        sampler.prefetch(1, rng)
        with pytest.raises(RuntimeError, match="already prefetched"):
            sampler.prefetch(2, rng)
        with pytest.raises(RuntimeError, match="batch 2 asked for, but batch 1 was prefetched"):
            sampler.batch(2, rng)


def test_full_batch_prefetch_is_a_no_op() -> None:
    X, y = data()
    sampler = BatchSampler(X, y, None)
    rng = np.random.default_rng(0)
    sampler.prefetch(1, rng)
    X_batch, y_batch = sampler.batch(1, rng)
    assert X_batch is X
    assert y_batch is y


def test_tiny_batches_are_not_handed_to_a_helper(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sampling_module, "PREFETCH_MIN_BYTES", 256 << 10)
    X, y = data()
    sampler = BatchSampler(X, y, 8)
    rng = np.random.default_rng(0)
    with limit_threads(2):
        sampler.batch(0, rng)
        state = rng.bit_generator.state
        sampler.prefetch(1, rng)
        assert rng.bit_generator.state == state  # nothing drawn ahead
        sampler.prefetch(1, rng)  # and nothing pending


def blobs(n: int = 300, d: int = 6, seed: int = 0) -> TrainData:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    X = (rng.normal(size=(n, d)) + 2.0 * y[:, None]).astype(np.float32)
    return TrainData(X, y, X[:50], y[:50])


def trained(config: TrainConfig, data: TrainData, threads: int, **chunking: float) -> TrainState:
    state = init_state(config, 3, data.X_train.shape[1])
    with limit_threads(threads):
        for _ in run(state, config, data, **chunking):  # type: ignore[arg-type]
            pass
    return state


@pytest.mark.parametrize("sampling", ["replacement", "epoch"])
def test_training_with_prefetch_is_bit_identical_to_training_without(sampling: Sampling) -> None:
    config = TrainConfig(
        loss="svm", optimizer="momentum", learning_rate=1e-2, batch_size=16, iterations=400,
        sampling=sampling, seed=5,
    )  # fmt: skip
    data = blobs()
    alone = trained(config, data, threads=1)
    for chunking in ({"chunk_steps": 37}, {"chunk_steps": 400, "chunk_seconds": 1e-4}):
        ahead = trained(config, data, threads=2, **chunking)
        np.testing.assert_array_equal(ahead.W, alone.W)
        assert ahead.rng.bit_generator.state == alone.rng.bit_generator.state


def test_a_run_resumed_at_any_chunk_boundary_ends_where_an_unbroken_run_does() -> None:
    """Chunks cut by time never leave the Generator a prefetched batch ahead of state.step."""
    config = TrainConfig(loss="svm", optimizer="sgd", batch_size=16, iterations=300, seed=1)
    data = blobs()
    unbroken = trained(config, data, threads=1)
    state = init_state(config, 3, data.X_train.shape[1])
    saved: list[TrainState] = []
    with limit_threads(2):
        for chunk in run(state, config, data, chunk_seconds=1e-4):
            if not chunk.done:
                saved.append(copy.deepcopy(state))
    assert len(saved) >= 2
    for resumed in (saved[0], saved[len(saved) // 2]):
        with limit_threads(2):
            for _ in run(resumed, config, data):
                pass
        np.testing.assert_array_equal(resumed.W, unbroken.W)


def test_a_diverging_run_leaves_no_prefetch_behind() -> None:
    config = TrainConfig(loss="svm", reg=1.0, learning_rate=1e3, batch_size=16, iterations=1000,
                         seed=0)  # fmt: skip
    data = blobs()
    state = init_state(config, 3, data.X_train.shape[1])
    loop_samplers: list[BatchSampler] = []
    original = BatchSampler.__init__

    def remember(self: BatchSampler, *args: object, **kwargs: object) -> None:
        original(self, *args, **kwargs)  # type: ignore[arg-type]
        loop_samplers.append(self)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(BatchSampler, "__init__", remember)
        with limit_threads(2), pytest.raises(Diverged):
            for _ in run(state, config, data, chunk_steps=1000):
                pass
    assert [sampler._prefetched for sampler in loop_samplers] == [None]
