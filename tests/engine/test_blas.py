"""gemm_at writes or adds A^T B into a block of a Fortran-ordered array in place."""

from __future__ import annotations

import numpy as np
import pytest

from worker.engine.accel import blas
from worker.engine.accel.blas import gemm_at, gemm_routine
from worker.engine.accel.parallel import single_threaded_blas
from worker.engine.arrays import FloatArray


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(50, 40, 30), (7, 5, 1), (1, 1, 9), (3, 1, 1), (0, 4, 5)])
def test_a_product_is_added_into_a_column_block_and_nothing_else(
    dtype: type, shape: tuple[int, int, int]
) -> None:
    k, m, n = shape
    rng = np.random.default_rng(0)
    A: FloatArray = rng.standard_normal((k, m)).astype(dtype)
    B: FloatArray = rng.standard_normal((k, n)).astype(dtype)
    whole: FloatArray = np.asfortranarray(rng.standard_normal((m, n + 5)).astype(dtype))
    before = whole.copy()
    block = whole[:, 2 : 2 + n]
    gemm_at(block, A, B, alpha=0.5, beta=1.0)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(block, before[:, 2 : 2 + n] + 0.5 * A.T @ B, rtol=tol, atol=tol)
    np.testing.assert_array_equal(whole[:, :2], before[:, :2])
    np.testing.assert_array_equal(whole[:, 2 + n :], before[:, 2 + n :])
    gemm_at(block, A, B, alpha=1.0, beta=0.0)  # beta 0: written, whatever the block held
    np.testing.assert_allclose(block, A.T @ B, rtol=tol, atol=tol)


def test_rows_of_a_larger_array_are_read_with_its_stride() -> None:
    rng = np.random.default_rng(1)
    A = rng.standard_normal((6, 8)).astype(np.float32)[:, 1:5]  # rows contiguous, strided
    B = rng.standard_normal((6, 3)).astype(np.float32)
    C = np.zeros((4, 3), dtype=np.float32, order="F")
    gemm_at(C, A, B, alpha=1.0, beta=0.0)
    np.testing.assert_allclose(C, A.T @ B, rtol=1e-5)


def test_layouts_and_dtypes_it_cannot_write_in_place_are_refused() -> None:
    A = np.ones((3, 4), dtype=np.float32)
    B = np.ones((3, 2), dtype=np.float32)
    with pytest.raises(ValueError, match="column of C"):
        gemm_at(np.zeros((4, 2), dtype=np.float32), A, B, alpha=1.0, beta=0.0)
    with pytest.raises(ValueError, match="dtype"):
        gemm_at(np.zeros((4, 2), order="F"), A, B, alpha=1.0, beta=0.0)
    with pytest.raises(ValueError, match="shapes"):
        gemm_at(np.zeros((3, 2), dtype=np.float32, order="F"), A, B, alpha=1.0, beta=0.0)
    with pytest.raises(ValueError, match="row of A and B"):
        gemm_at(np.zeros((4, 2), dtype=np.float32, order="F"), np.ones((4, 3), np.float32).T, B,
                alpha=1.0, beta=0.0)  # fmt: skip


def test_loading_the_blas_inside_a_capped_block_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    # The block would not cap a library loaded after it started: the product would run threaded.
    monkeypatch.setattr(blas, "_loaded", {})
    with single_threaded_blas(), pytest.raises(RuntimeError, match="before entering"):
        gemm_routine(np.dtype(np.float32))
    gemm_routine(np.dtype(np.float32))  # outside one, it loads
    with single_threaded_blas():
        gemm_routine(np.dtype(np.float32))  # and, loaded, is found inside one
