"""The compiled kernels (worker.engine.accel.fused) give the NumPy pass's results, whatever the
thread count, and the NumPy pass stays reachable."""

import itertools
import logging
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray

pytest.importorskip("numba")

from tests.engine.conftest import SwitchBackend
from tests.engine.spies import spy_on
from tests.engine.test_kernels import problem
from worker.engine import accel
from worker.engine.accel import fused, fused_gen, jit
from worker.engine.accel.kernels import FusedLoss, fused_applies, linear_pass
from worker.engine.accel.parallel import limit_threads
from worker.engine.losses import (
    elementwise,
    softmax_loss,
    softmax_loss_grad,
    svm_loss,
    svm_loss_grad,
)

Array = NDArray[Any]
KINDS = [FusedLoss("svm"), FusedLoss("svm", delta=1.5), FusedLoss("softmax")]
# float32: losses to 1e-6 relative, gradients to 1e-4 of their largest entry; float64: 1e-12.
TOLERANCE = {np.float32: (1e-6, 1e-4), np.float64: (1e-12, 1e-12)}


def numpy_pass(kind: FusedLoss, W: Array, X: Array, y: Array) -> tuple[float, Array]:
    result = linear_pass(W, X, y, elementwise(kind), want_grad=True)  # no `fused`: NumPy
    assert result.grad_sum is not None
    return result.loss_sum, result.grad_sum


def assert_close(actual: tuple[float, Any], expected: tuple[float, Any], dtype: Any) -> None:
    loss_tol, grad_tol = TOLERANCE[dtype]
    assert actual[0] == pytest.approx(expected[0], rel=loss_tol)
    scale = float(np.abs(expected[1]).max())
    assert float(np.abs(actual[1] - expected[1]).max()) <= grad_tol * scale


@pytest.fixture
def spy(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The losses of the passes that took the compiled kernels."""
    return spy_on(monkeypatch, fused, "fused_pass")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kind", KINDS, ids=["svm", "svm-delta", "softmax"])
@pytest.mark.parametrize(
    ("n", "d"),
    [(1, 7), (20, 300), (32, 256), (33, 513), (250, 300), (1000, 70)],
    ids=lambda v: str(v),
)
def test_fused_pass_equals_the_numpy_pass(kind: FusedLoss, dtype: Any, n: int, d: int) -> None:
    """Rows fewer than a chunk, not a multiple of it; columns short of, at and past a tile."""
    W, X, y = problem(n, d, 10, seed=n + d, dtype=dtype)
    assert fused.applies(kind.name, W, X, y)
    loss, grad = fused.fused_pass(kind.name, W, X, y, True, kind.delta)
    assert grad is not None
    assert grad.dtype == dtype
    assert grad.shape == W.shape
    assert_close((loss, grad), numpy_pass(kind, W, X, y), dtype)
    loss_only, none = fused.fused_pass(kind.name, W, X, y, False, kind.delta)
    assert none is None
    assert loss_only == loss


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("reg", [0.0, 0.3])
@pytest.mark.parametrize("n", [200, 3000], ids=["minibatch", "full-batch"])
def test_the_losses_take_the_fused_path_and_agree_with_it_off(
    switch_backend: SwitchBackend, spy: list[str], dtype: Any, reg: float, n: int
) -> None:
    W, X, y = problem(n, 200, 10, seed=7, dtype=dtype)
    on = [svm_loss_grad(W, X, y, reg, delta=1.5), softmax_loss_grad(W, X, y, reg)]
    on_loss = [svm_loss(W, X, y, reg, delta=1.5), softmax_loss(W, X, y, reg)]
    assert spy == ["svm", "softmax", "svm", "softmax"]
    switch_backend("numpy")
    off = [svm_loss_grad(W, X, y, reg, delta=1.5), softmax_loss_grad(W, X, y, reg)]
    assert len(spy) == 4
    for (loss, grad), loss_alone, expected in zip(on, on_loss, off, strict=True):
        assert grad.dtype == dtype
        assert loss_alone == loss
        assert_close((loss, grad), expected, dtype)


def test_memory_mapped_read_only_arrays_take_the_kernels(tmp_path: Any) -> None:
    """Uploaded data sets reach the engine as read-only memory maps (a type of their own to
    numba: compiled once more on first use)."""
    W, X, y = problem(100, 40, 10, seed=8)
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "y.npy", y)
    X_map = np.load(tmp_path / "X.npy", mmap_mode="r")
    y_map = np.load(tmp_path / "y.npy", mmap_mode="r")
    assert not X_map.flags.writeable
    assert fused.applies("svm", W, X_map, y_map)
    loss, grad = fused.fused_pass("svm", W, X_map, y_map, True)
    assert_close((loss, grad), numpy_pass(FusedLoss("svm"), W, X, y), np.float64)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_results_are_bit_identical_for_1_and_2_threads(dtype: Any) -> None:
    W, X, y = problem(5000, 300, 10, seed=3, dtype=dtype)
    assert len(fused.slab_bounds(5000)) == fused.SLABS
    rows = np.random.default_rng(5).integers(0, 5000, 200)
    for name in ("svm", "softmax"):
        results, gathered = [], []
        for threads in (1, 2):
            with limit_threads(threads):
                results.append(fused.fused_pass(name, W, X, y, True))
                gathered.append(fused.gather_pass(name, W, X, y.astype(np.int64), rows))
        for one, two in (results, gathered):
            assert one[0] == two[0]
            np.testing.assert_array_equal(one[1], two[1])


def test_slabs_cover_the_rows_on_chunk_boundaries() -> None:
    for n_rows in (1, 31, 32, 33, 255, 257, 10_000):
        bounds = fused.slab_bounds(n_rows)
        assert bounds[0][0] == 0
        assert bounds[-1][1] == n_rows
        assert all(a < b for a, b in bounds)
        assert all(b == c for (_, b), (c, _) in itertools.pairwise(bounds))
        assert all(a % fused.CHUNK == 0 for a, _ in bounds)
        if len(bounds) > 2:
            assert all(b - a >= fused.SLAB_MIN_CHUNKS * fused.CHUNK for a, b in bounds[:-1])
    assert len(fused.slab_bounds(32)) == 1  # one chunk: one slab, on the caller's thread
    assert fused.slab_bounds(200) == [(0, 96), (96, 200)]  # a minibatch: two halves
    assert len(fused.slab_bounds(1000)) == 2
    assert len(fused.slab_bounds(49_000)) == fused.SLABS


def test_the_numpy_backend_turns_the_kernels_off(
    switch_backend: SwitchBackend, spy: list[str]
) -> None:
    W, X, y = problem(300, 50, 10, seed=1)
    assert switch_backend("numpy") == accel.Backend("numpy")
    assert not fused_applies(W, X, y, FusedLoss("svm"))
    svm_loss_grad(W, X, y, 0.1)
    assert spy == []
    assert switch_backend("compiled").compiled
    svm_loss_grad(W, X, y, 0.1)
    assert spy == ["svm"]


def test_passes_the_kernels_do_not_cover_keep_the_numpy_path(
    monkeypatch: pytest.MonkeyPatch, spy: list[str]
) -> None:
    W, X, y = problem(300, 50, 10, seed=2)
    W7, X7, y7 = problem(300, 50, 7, seed=2)  # a class count without generated kernels
    svm_loss_grad(W7, X7, y7, 0.1)
    svm_loss_grad(W, np.asfortranarray(X), y, 0.1)  # non-contiguous rows
    svm_loss_grad(W, X.astype(np.float32), y, 0.1)  # X to cast chunk by chunk
    svm_loss_grad(W.astype(np.float16), X.astype(np.float16), y, 0.1)
    assert spy == []
    assert not fused.applies("svm", W, X, np.where(y == 0, 10, y))  # a label out of range


def test_a_diverged_w_gives_a_non_finite_loss_as_on_numpy(switch_backend: SwitchBackend) -> None:
    """Training detects divergence from the loss: NaN and inf must not vanish in the kernels."""
    W, X, y = problem(300, 50, 10, seed=4, dtype=np.float32)
    W = np.sign(W) * np.float32(1e38)  # scores overflow to +-inf
    with np.errstate(all="ignore"):
        for loss_grad in (svm_loss_grad, softmax_loss_grad):
            loss, _ = loss_grad(W, X, y, 0.0)
            switch_backend("numpy")
            expected, _ = loss_grad(W, X, y, 0.0)
            switch_backend("compiled")
            assert not np.isfinite(expected)
            assert not np.isfinite(loss)


def test_the_generated_kernels_are_up_to_date() -> None:
    assert fused_gen.path_for(10).read_text() == fused_gen.render(10)


@pytest.mark.parametrize("decorator", ["kernel", "parallel_driver"])
def test_kernels_compile_without_a_disk_cache_when_numba_refuses_one(
    decorator: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A read-only install with no writable cache directory: numba raises on cache=True."""
    from numba import njit as real
    from numba import prange

    def refusing(**options: Any) -> Any:
        if options.get("cache"):
            raise RuntimeError("cannot cache function 'twice': no locator available")
        return real(**options)

    def twice(a: Any) -> None:
        for i in prange(a.shape[0]):  # a parallel loop, for the driver's parallel=True
            a[i] *= 2.0

    monkeypatch.setattr(jit, "njit", refusing)
    with caplog.at_level(logging.WARNING, logger=jit.__name__):
        compiled = getattr(jit, decorator)(twice)
    doubled = np.arange(3.0)
    compiled(doubled)
    assert doubled.tolist() == [0.0, 2.0, 4.0]
    assert "without a disk cache" in caplog.text
