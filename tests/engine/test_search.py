"""Random search and random local search: blocked == sequential bit for bit, semantics, resume."""

import copy
import os
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray

from worker.engine.datasets import load_builtin
from worker.engine.losses import make_loss
from worker.engine.metrics import accuracy
from worker.engine.preprocess import Preprocessor
from worker.engine.search import (
    LocalSearchConfig,
    LocalSearchState,
    RandomSearchConfig,
    RandomSearchState,
    SearchChunk,
    init_local_search_state,
    init_random_search_state,
    run_local_search,
    run_random_search,
)

Array = NDArray[Any]
REAL_CIFAR10 = Path(__file__).resolve().parents[3] / "shared" / "data" / "cifar-10-batches-py"

# (N, D, C) where NumPy's OpenBLAS rounds a column of a narrow product differently from the same
# column of a wide one, so a naive "one product per candidate" reference would not match.
SHAPES = [(200, 65, 3), (50, 700, 3), (300, 17, 10)]


def data(n: int, d: int, c: int, dtype: str, seed: int = 0) -> tuple[Array, Array]:
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)).astype(dtype)
    X[:, -1] = 1.0
    return X, rng.integers(0, c, n).astype(np.int64)


def joined(chunks: list[SearchChunk]) -> tuple[Array, Array, Array, Array]:
    return tuple(  # type: ignore[return-value]
        np.concatenate([getattr(chunk, name) for chunk in chunks])
        for name in ("steps", "losses", "best_losses", "accepted")
    )


def local(
    config: LocalSearchConfig, X: Array, y: Array, **kwargs: Any
) -> tuple[LocalSearchState, list[SearchChunk]]:
    state = init_local_search_state(config, int(y.max()) + 1, X.shape[1])
    return state, list(run_local_search(state, config, X, y, **kwargs))


def random(
    config: RandomSearchConfig, X: Array, y: Array, n_classes: int, **kwargs: Any
) -> tuple[RandomSearchState, list[SearchChunk]]:
    state = init_random_search_state(config, n_classes, X.shape[1])
    return state, list(run_random_search(state, config, X, y, **kwargs))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("loss", ["svm", "softmax"])
@pytest.mark.parametrize("shape", SHAPES)
def test_blocked_local_search_equals_the_sequential_path_bit_for_bit(
    shape: tuple[int, int, int], loss: str, dtype: str
) -> None:
    X, y = data(*shape, dtype)
    config = LocalSearchConfig(
        loss=loss, reg=0.1, iterations=75, init_scale=0.01, step_size=0.01,  # type: ignore[arg-type]
        block_size=8, dtype=dtype, seed=4,  # type: ignore[arg-type]
    )  # fmt: skip
    blocked, blocked_chunks = local(config, X, y, chunk_steps=13)
    sequential, sequential_chunks = local(config, X, y, sequential=True)
    for a, b in zip(joined(blocked_chunks), joined(sequential_chunks), strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(blocked.W, sequential.W)
    assert blocked.loss == sequential.loss
    accepted = joined(blocked_chunks)[3]
    assert 0 < accepted.sum() < accepted.size  # both outcomes exercised


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("loss", ["svm", "softmax"])
@pytest.mark.parametrize("shape", SHAPES)
def test_blocked_random_search_equals_the_sequential_path_bit_for_bit(
    shape: tuple[int, int, int], loss: str, dtype: str
) -> None:
    X, y = data(*shape, dtype)
    config = RandomSearchConfig(
        loss=loss, reg=0.1, trials=75, scale=0.05, block_size=8, dtype=dtype,  # type: ignore[arg-type]
    )  # fmt: skip
    blocked, blocked_chunks = random(config, X, y, shape[2], chunk_steps=13)
    sequential, sequential_chunks = random(config, X, y, shape[2], sequential=True)
    for a, b in zip(joined(blocked_chunks), joined(sequential_chunks), strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(blocked.best_W, sequential.best_W)
    np.testing.assert_array_equal(blocked.W, sequential.W)


def test_random_search_keeps_the_best_of_the_drawn_candidates() -> None:
    X, y = data(120, 9, 4, "float64", seed=1)
    config = RandomSearchConfig(trials=40, scale=0.3, reg=0.05, block_size=16, dtype="float64")
    state, chunks = random(config, X, y, 4)
    steps, losses, best_losses, accepted = joined(chunks)
    np.testing.assert_array_equal(steps, np.arange(40))
    rng = np.random.default_rng(config.seed)
    candidates = [0.3 * rng.standard_normal((4, 9)) for _ in range(40)]
    expected = [make_loss("svm", 0.05).loss(W, X, y) for W in candidates]
    np.testing.assert_allclose(losses, expected, rtol=1e-12)
    best = int(np.argmin(losses))
    np.testing.assert_array_equal(state.best_W, candidates[best])
    np.testing.assert_array_equal(state.W, candidates[-1])
    assert state.best_loss == losses[best] == best_losses[-1]
    np.testing.assert_array_equal(best_losses, np.minimum.accumulate(losses))
    np.testing.assert_array_equal(accepted, np.r_[True, np.diff(best_losses) < 0])
    assert state.step == 40


def test_local_search_moves_only_when_the_loss_drops() -> None:
    X, y = data(150, 6, 3, "float32", seed=2)
    config = LocalSearchConfig(iterations=60, init_scale=0.1, step_size=0.05, block_size=16)
    state, chunks = local(config, X, y)
    _, losses, best_losses, accepted = joined(chunks)
    rng = np.random.default_rng(config.seed)
    W = (0.1 * rng.standard_normal((3, 6))).astype(np.float32)
    current = make_loss("svm").loss(W, X, y)
    for step in range(60):
        candidate = W + (0.05 * rng.standard_normal((3, 6))).astype(np.float32)
        assert losses[step] == pytest.approx(make_loss("svm").loss(candidate, X, y), rel=1e-5)
        if step:
            assert accepted[step] == (losses[step] < best_losses[step - 1])
        assert best_losses[step] == pytest.approx(losses[step] if accepted[step] else current)
        current = best_losses[step]
        if accepted[step]:
            W = candidate
    np.testing.assert_array_equal(state.W, W)  # the accepted steps, added in order
    assert np.all(np.diff(best_losses) <= 0)
    assert state.loss == best_losses[-1] == state.best_loss
    assert state.loss == pytest.approx(make_loss("svm").loss(state.W, X, y), rel=1e-5)


def test_a_resumed_local_search_matches_a_straight_run() -> None:
    X, y = data(90, 12, 3, "float32", seed=3)
    config = LocalSearchConfig(iterations=50, init_scale=0.05, step_size=0.02, block_size=8)
    straight, straight_chunks = local(config, X, y)
    state = init_local_search_state(config, 3, 12)
    first = run_local_search(state, config, X, y, chunk_steps=19)
    chunks = [next(first)]
    saved = pickle.loads(pickle.dumps(state))  # the checkpoint
    chunks += list(run_local_search(saved, config, X, y, chunk_steps=7))
    for a, b in zip(joined(chunks), joined(straight_chunks), strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(saved.W, straight.W)
    assert [chunk.done for chunk in chunks][-1] is True


def test_a_resumed_random_search_matches_a_straight_run() -> None:
    X, y = data(90, 12, 3, "float32", seed=3)
    config = RandomSearchConfig(trials=50, scale=0.05, block_size=8)
    straight, straight_chunks = random(config, X, y, 3)
    state = init_random_search_state(config, 3, 12)
    chunks = [next(run_random_search(state, config, X, y, chunk_steps=21))]
    saved = copy.deepcopy(state)
    chunks += list(run_random_search(saved, config, X, y))
    for a, b in zip(joined(chunks), joined(straight_chunks), strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(saved.best_W, straight.best_W)


def test_log_every_keeps_every_kth_step_and_the_last() -> None:
    X, y = data(40, 5, 3, "float32")
    config = LocalSearchConfig(iterations=23, log_every=5, block_size=4)
    _, chunks = local(config, X, y, chunk_steps=10)
    np.testing.assert_array_equal(joined(chunks)[0], [0, 5, 10, 15, 20, 22])
    assert [chunk.done for chunk in chunks] == [False, False, True]


def test_chunk_seconds_yields_early_with_whole_blocks() -> None:
    X, y = data(40, 5, 3, "float32")
    config = RandomSearchConfig(trials=40, block_size=4)
    _, chunks = random(config, X, y, 3, chunk_seconds=0.0)
    assert [len(chunk.steps) for chunk in chunks] == [4] * 10
    assert chunks[-1].done
    sparse = LocalSearchConfig(iterations=40, block_size=4, log_every=100)
    _, chunks = local(sparse, X, y, chunk_seconds=0.0)  # a deadline, even with nothing logged
    assert len(chunks) == 10
    np.testing.assert_array_equal(joined(chunks)[0], [0, 39])


def test_bad_configs_and_inputs_are_rejected() -> None:
    for bad in ({"trials": 0}, {"scale": -1.0}, {"block_size": 0}, {"loss": "hinge"}):
        with pytest.raises(ValueError, match=next(iter(bad)).split("_")[0]):
            RandomSearchConfig(**bad)
    with pytest.raises(ValueError, match="step_size"):
        LocalSearchConfig(step_size=float("nan"))
    X, y = data(10, 4, 3, "float64")
    config = RandomSearchConfig()  # float32
    with pytest.raises(ValueError, match="float32"):
        next(run_random_search(init_random_search_state(config, 3, 4), config, X, y))
    X32 = X.astype(np.float32)
    with pytest.raises(ValueError, match="y must lie"):
        next(run_random_search(init_random_search_state(config, 2, 4), config, X32, y))


@pytest.fixture(scope="module")
def cifar10() -> tuple[Array, Array, Array, Array]:
    directory = Path(os.environ.get("DESCENT_CIFAR10_DIR") or REAL_CIFAR10)
    if not (directory / "data_batch_5").is_file():
        pytest.skip(f"real CIFAR-10 batches not found in {directory} (set DESCENT_CIFAR10_DIR)")
    dataset = load_builtin("cifar10", cifar10_dir=directory)
    pre = Preprocessor.fit(dataset.X_train, center=True, standardize=False, bias=True)
    X_train = pre.transform(dataset.X_train, "float32")
    return X_train, dataset.y_train, pre.transform(dataset.X_test, "float32"), dataset.y_test


@pytest.mark.cifar
def test_real_cifar10_random_search_reaches_the_notes_accuracy(
    cifar10: tuple[Array, Array, Array, Array],
) -> None:
    """1,000 trials of 1e-4 randn (the note: 15.5%): 3 TFLOP of products, blocked."""
    X, y, X_test, y_test = cifar10
    config = RandomSearchConfig(trials=1000, scale=1e-4)
    state, chunks = random(config, X, y, 10)
    assert len(joined(chunks)[1]) == 1000
    assert 8.0 < state.best_loss < 9.0  # about C - 1 for W this small
    assert 0.12 <= accuracy(state.best_W, X_test, y_test) <= 0.19


@pytest.mark.cifar
def test_real_cifar10_random_local_search_reaches_the_notes_accuracy(
    cifar10: tuple[Array, Array, Array, Array],
) -> None:
    """1,000 proposals of 1e-4 randn from 0.001 randn (the note: 21.4%), blocked as above."""
    X, y, X_test, y_test = cifar10
    config = LocalSearchConfig(iterations=1000, init_scale=0.001, step_size=1e-4)
    state, chunks = local(config, X, y)
    accepted = joined(chunks)[3]
    assert 50 <= accepted.sum() <= 300  # about one proposal in seven
    assert 0.18 <= accuracy(state.W, X_test, y_test) <= 0.25
