"""The blocked passes give the naive loops' results whatever the blocking and the thread count."""

import warnings
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray

from tests.engine.test_losses import naive_softmax_loss_grad, naive_svm_loss_grad
from worker.engine.accel import kernels
from worker.engine.accel.kernels import Blocking
from worker.engine.accel.parallel import limit_threads, max_threads
from worker.engine.losses import softmax_loss, softmax_loss_grad, svm_loss, svm_loss_grad

Array = NDArray[Any]


def problem(
    n: int, d: int, c: int, seed: int = 0, dtype: Any = np.float64
) -> tuple[Array, Array, Array]:
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)).astype(dtype)
    y = rng.integers(0, c, n).astype(np.int64)
    W = (0.05 * rng.standard_normal((c, d))).astype(dtype)
    return W, X, y


def small_blocks(monkeypatch: pytest.MonkeyPatch, sub: int, chunk: int, slab: int) -> None:
    """Force a blocking with many sub-blocks, chunks and slabs on a small problem."""

    def for_shape(cls: type[Blocking], n_classes: int, n_features: int, _: int) -> Blocking:
        return Blocking(sub=sub, chunk=chunk, slab=slab)

    monkeypatch.setattr(Blocking, "for_shape", classmethod(for_shape))


def test_blocking_keeps_cifar_products_on_small_kernels() -> None:
    """10 x 3073 float32: 32 rows per BLAS call (32 * 10 * 3073 <= 1e6), 256-row chunks."""
    blocking = Blocking.for_shape(10, 3073, 4)
    assert blocking.sub * 10 * 3073 <= kernels.SMALL_GEMM_MNK
    assert blocking.sub == 32
    assert blocking.chunk == 256
    assert blocking.chunk % blocking.sub == 0
    assert blocking.slab == kernels.SLAB_CHUNKS * blocking.chunk


def test_blocking_falls_back_to_one_call_per_chunk_for_very_wide_w() -> None:
    blocking = Blocking.for_shape(100, 100_000, 8)
    assert blocking.sub == blocking.chunk >= 1


@pytest.mark.parametrize("threads", [1, 3])
@pytest.mark.parametrize(("sub", "chunk", "slab"), [(4, 12, 36), (5, 7, 7), (64, 64, 64)])
def test_blocked_losses_equal_the_naive_loops(
    monkeypatch: pytest.MonkeyPatch, sub: int, chunk: int, slab: int, threads: int
) -> None:
    small_blocks(monkeypatch, sub, chunk, slab)
    W, X, y = problem(101, 9, 4, seed=sub)
    with limit_threads(threads):
        loss, grad = svm_loss_grad(W, X, y, 0.2, delta=1.5)
        expected_loss, expected_grad = naive_svm_loss_grad(W, X, y, 0.2, delta=1.5)
        assert loss == pytest.approx(expected_loss, rel=1e-12)
        np.testing.assert_allclose(grad, expected_grad, rtol=1e-10, atol=1e-12)
        assert svm_loss(W, X, y, 0.2, delta=1.5) == pytest.approx(loss, rel=1e-14)
        loss, grad = softmax_loss_grad(W, X, y, 0.2)
        expected_loss, expected_grad = naive_softmax_loss_grad(W, X, y, 0.2)
        assert loss == pytest.approx(expected_loss, rel=1e-12)
        np.testing.assert_allclose(grad, expected_grad, rtol=1e-10, atol=1e-12)
        assert softmax_loss(W, X, y, 0.2) == pytest.approx(loss, rel=1e-14)


def test_cifar_shaped_problem_equals_the_naive_loops() -> None:
    """The real blocking (32-row BLAS calls, 256-row chunks) on a 10 x 3073 problem, float32."""
    W, X, y = problem(600, 3073, 10, seed=1, dtype=np.float32)
    W *= 0.02
    loss, grad = svm_loss_grad(W, X, y, 0.3)
    expected_loss, expected_grad = naive_svm_loss_grad(
        W.astype(np.float64), X.astype(np.float64), y, 0.3
    )
    assert grad.dtype == np.float32
    assert loss == pytest.approx(expected_loss, rel=1e-5)
    np.testing.assert_allclose(grad, expected_grad, rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("loss_grad", [svm_loss_grad, softmax_loss_grad])
def test_results_are_bit_identical_for_every_thread_count(
    monkeypatch: pytest.MonkeyPatch, loss_grad: Any
) -> None:
    small_blocks(monkeypatch, 8, 16, 32)
    W, X, y = problem(500, 13, 5, seed=2, dtype=np.float32)
    results = []
    for threads in (1, 2, 5):
        with limit_threads(threads):
            results.append(loss_grad(W, X, y, 0.1))
    for loss, grad in results[1:]:
        assert loss == results[0][0]
        np.testing.assert_array_equal(grad, results[0][1])


def test_mismatched_dtypes_are_computed_in_the_promoted_dtype_and_cast_back() -> None:
    W, X, y = problem(50, 6, 3, seed=3)
    loss64, grad64 = svm_loss_grad(W, X, y, 0.1)
    loss, grad = svm_loss_grad(W.astype(np.float32), X, y, 0.1)
    assert grad.dtype == np.float32
    assert loss == pytest.approx(loss64, rel=1e-6)
    np.testing.assert_allclose(grad, grad64, rtol=1e-5, atol=1e-6)
    expected_loss, expected_grad = softmax_loss_grad(W, X, y, 0.1)
    loss, grad = softmax_loss_grad(W, X.astype(np.float32), y, 0.1)
    assert grad.dtype == np.float64
    assert loss == pytest.approx(expected_loss, rel=1e-6)
    np.testing.assert_allclose(grad, expected_grad, rtol=1e-5, atol=1e-6)


def test_non_contiguous_x_gives_the_same_result() -> None:
    W, X, y = problem(70, 8, 4, seed=4)
    X_fortran = np.asfortranarray(X)
    X_strided = np.repeat(X, 2, axis=1)[:, ::2]
    expected = svm_loss_grad(W, X, y, 0.1)
    for other in (X_fortran, X_strided):
        loss, grad = svm_loss_grad(W, other, y, 0.1)
        assert loss == pytest.approx(expected[0], rel=1e-12)
        np.testing.assert_allclose(grad, expected[1], rtol=1e-12, atol=1e-14)


def test_the_callers_errstate_applies_inside_the_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    """Training silences overflow on the way to divergence; threads must honour that too."""
    small_blocks(monkeypatch, 4, 8, 8)
    W, X, y = problem(64, 5, 3, seed=5, dtype=np.float32)
    W *= np.float32(1e37)
    with limit_threads(4), warnings.catch_warnings():
        warnings.simplefilter("error")
        with np.errstate(all="ignore"):
            loss, _ = svm_loss_grad(W, X, y, 1.0)
            softmax_loss_grad(W, X, y, 0.0)
    assert not np.isfinite(loss)
    with limit_threads(4), np.errstate(over="raise"), pytest.raises(FloatingPointError):
        svm_loss_grad(W, X, y, 1.0)


def test_limit_threads_is_scoped_and_validated() -> None:
    default = max_threads()
    assert default >= 1
    with limit_threads(1):
        assert max_threads() == 1
        with limit_threads(3):
            assert max_threads() == 3
        assert max_threads() == 1
    assert max_threads() == default
    with pytest.raises(ValueError, match="threads must be >= 1"):
        limit_threads(0).__enter__()
