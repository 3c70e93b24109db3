"""Prefetched minibatches are the batches `batch` would have drawn, from the same Generator use."""

import numpy as np
import pytest

from worker.engine.parallel import limit_threads
from worker.engine.sampling import BatchSampler, Sampling


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
