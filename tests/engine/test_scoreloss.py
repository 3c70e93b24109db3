"""The compiled SVM data loss of class-major scores (worker.engine.accel.fused_scoreloss) gives
the NumPy version's losses, softmax and the NumPy version stay reachable."""

from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray

pytest.importorskip("numba")

from tests.engine.conftest import SwitchBackend
from tests.engine.test_search import data, joined, local, random
from worker.engine import scoreloss
from worker.engine.accel import fused_scoreloss, jit
from worker.engine.accel.parallel import limit_threads
from worker.engine.scoreloss import correct_index, data_loss, numpy_data_loss
from worker.engine.search import LocalSearchConfig, RandomSearchConfig

Array = NDArray[Any]
LOSSES = [("svm", 1.0), ("svm", 0.25), ("svm", 3.0)]


def scores(
    n_classes: int, n: int, dtype: Any, relative: bool, spread: float = 3.0, seed: int = 0
) -> tuple[Array, Array, Array]:
    """T (class-major, C - 1 rows when relative), a float64 base of T's shape, labels."""
    rng = np.random.default_rng(seed)
    rows = n_classes - int(relative)
    T = (spread * rng.standard_normal((rows, n))).astype(dtype)
    base = spread * rng.standard_normal((rows, n))
    return T, base, rng.integers(0, n_classes, n).astype(np.int64)


@pytest.fixture
def spy(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The losses that took the compiled kernel."""
    calls: list[str] = []
    real = fused_scoreloss.data_loss_sum

    def counting(name: str, *args: Any) -> float:
        calls.append(name)
        return real(name, *args)

    monkeypatch.setattr(fused_scoreloss, "data_loss_sum", counting)
    return calls


@pytest.mark.parametrize(("loss", "delta"), LOSSES, ids=["svm", "svm-0.25", "svm-3"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("relative", [True, False], ids=["relative", "full"])
@pytest.mark.parametrize("with_base", [True, False], ids=["base", "no-base"])
@pytest.mark.parametrize(("n_classes", "n"), [(10, 1001), (3, 257), (2, 1), (10, 49)])
def test_the_kernel_agrees_with_numpy(
    spy: list[str],
    loss: Any,
    delta: float,
    dtype: Any,
    relative: bool,
    with_base: bool,
    n_classes: int,
    n: int,
) -> None:
    T, base, y = scores(n_classes, n, dtype, relative)
    given = base if with_base else None
    expected = numpy_data_loss(loss, T, y, delta, base=given, relative=relative)
    actual = data_loss(loss, T, y, delta, base=given, relative=relative)
    assert spy == [loss]
    assert actual == pytest.approx(expected, rel=1e-12, abs=0.0)


def test_softmax_stays_on_numpy(spy: list[str]) -> None:
    T, base, y = scores(10, 99, np.float64, relative=True)
    expected = numpy_data_loss("softmax", T, y, base=base, relative=True)
    assert data_loss("softmax", T, y, base=base, relative=True) == expected
    assert spy == []


@pytest.mark.parametrize("loss", ["svm", "softmax"])
def test_equal_scores_in_other_arrays_give_the_same_bits(loss: Any) -> None:
    T, base, y = scores(10, 777, np.float32, relative=True)
    stack = np.zeros((3, *T.shape), np.float32)
    stack[1] = T
    first = data_loss(loss, T, y, base=base, relative=True)
    assert data_loss(loss, stack[1], y, base=base.copy(), relative=True) == first
    assert data_loss(loss, T.copy(), y, base=base, relative=True) == first


@pytest.mark.parametrize("loss", ["svm", "softmax"])
def test_non_finite_scores_give_a_non_finite_loss_as_on_numpy(loss: Any) -> None:
    for bad in (np.nan, np.inf, -np.inf):
        T, base, y = scores(10, 300, np.float64, relative=True)
        T[4, 17] = bad
        with np.errstate(all="ignore"):  # as search runs: NumPy would warn about inf - inf
            expected = numpy_data_loss(loss, T, y, base=base, relative=True)
            actual = data_loss(loss, T, y, base=base, relative=True)
        assert np.isfinite(actual) == np.isfinite(expected), bad
        if np.isfinite(expected):
            assert actual == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("loss", ["svm", "softmax"])
def test_labels_out_of_range_raise_on_both_paths(loss: Any, switch_backend: SwitchBackend) -> None:
    T, _base, y = scores(10, 50, np.float64, relative=True)
    y[7] = 10
    with pytest.raises(IndexError):
        data_loss(loss, T, y, relative=True)
    switch_backend("numpy")
    with pytest.raises(IndexError):
        data_loss(loss, T, y, relative=True)


@pytest.mark.parametrize("loss", ["svm", "softmax"])
def test_the_numpy_backend_keeps_the_numpy_version(
    spy: list[str], loss: Any, switch_backend: SwitchBackend
) -> None:
    T, base, y = scores(10, 301, np.float32, relative=True)
    switch_backend("numpy")
    out = np.empty((10, 301))
    given = data_loss(loss, T, y, 1.0, base=base, out=out, index=correct_index(y), relative=True)
    assert given == numpy_data_loss(loss, T, y, 1.0, base=base, relative=True)
    assert spy == []


@pytest.mark.parametrize("loss", ["svm", "softmax"])
@pytest.mark.parametrize("backend", ["compiled", "numpy"])
def test_blocked_search_equals_sequential_on_either_path(
    spy: list[str], loss: str, backend: Any, switch_backend: SwitchBackend
) -> None:
    switch_backend(backend)
    X, y = data(300, 17, 10, "float32")
    local_config = LocalSearchConfig(
        loss=loss, reg=0.1, iterations=40, init_scale=0.01, step_size=0.01,  # type: ignore[arg-type]
        block_size=8, dtype="float32", seed=4,
    )  # fmt: skip
    random_config = RandomSearchConfig(
        loss=loss, reg=0.1, trials=40, scale=0.05, block_size=8, dtype="float32",  # type: ignore[arg-type]
    )  # fmt: skip
    blocked, blocked_chunks = local(local_config, X, y, chunk_steps=13)
    sequential, sequential_chunks = local(local_config, X, y, sequential=True)
    for a, b in zip(joined(blocked_chunks), joined(sequential_chunks), strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(blocked.W, sequential.W)
    best, best_chunks = random(random_config, X, y, 10, chunk_steps=13)
    best_sequential, best_sequential_chunks = random(random_config, X, y, 10, sequential=True)
    for a, b in zip(joined(best_chunks), joined(best_sequential_chunks), strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(best.best_W, best_sequential.best_W)
    assert (len(spy) > 0) == (backend == "compiled" and loss == "svm")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("relative", [True, False])
@pytest.mark.parametrize("threads", ["numba", "python", "one"])
def test_each_candidates_loss_has_the_bits_of_its_own_data_loss(
    dtype: Any, relative: bool, threads: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    stacked = [scores(10, 777, dtype, relative, seed=seed) for seed in range(5)]
    T3 = np.stack([T for T, _, _ in stacked])
    y = stacked[0][2]
    expected = [data_loss("svm", T, y, 1.5, relative=relative) for T in T3]
    if threads == "python":
        monkeypatch.setattr(jit, "parallel_ready", lambda threads: False)
    with limit_threads(1 if threads == "one" else 2):
        assert scoreloss.each_data_loss("svm", T3, y, 1.5, relative=relative) == expected
