"""A product written or added into an array in place: C <- alpha A^T B + beta C, one BLAS gemm.

NumPy's matmul only writes a product into a fresh array (or `out`), so C += A^T B in NumPy is a
product into a buffer and then one more pass that reads C and the buffer and writes C. BLAS's
gemm computes alpha op(A) op(B) + beta C in place in one pass. SciPy's Python wrapper of it
holds the GIL for the whole product, which would serialize the engine's threads; its Cython
BLAS exports the Fortran routine itself, which is called here through ctypes (which releases the
GIL for the call). SciPy is imported on the first product (it costs a worker that never makes
one a noticeable start and memory), and the engine's BLAS cap is told of its library then.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable
from typing import Any

import numpy as np

from worker.engine.accel import parallel
from worker.engine.arrays import FloatArray

_ROUTINES = {np.dtype(np.float32): ("sgemm", ctypes.c_float),
             np.dtype(np.float64): ("dgemm", ctypes.c_double)}  # fmt: skip


_loaded: dict[np.dtype[Any], Callable[..., None]] = {}


def gemm_routine(dtype: np.dtype[Any]) -> Callable[..., None]:
    """The Fortran gemm of this dtype (arguments by reference, column-major), as a C function.

    The first call loads SciPy's BLAS. It must come before any `single_threaded_blas` block
    that calls gemm_at is entered: such a block caps only the libraries loaded when it starts,
    and a product on an uncapped, threaded BLAS inside it would oversubscribe the cores. Made
    first inside one, it raises RuntimeError instead."""
    routine = _loaded.get(dtype)
    if routine is None:
        if parallel.blas_capped():
            raise RuntimeError(
                "gemm_routine loads SciPy's BLAS: call it before entering single_threaded_blas"
            )
        routine = _loaded[dtype] = _load(dtype)
    return routine


def _load(dtype: np.dtype[Any]) -> Callable[..., None]:
    from scipy.linalg import cython_blas

    parallel.blas_libraries_changed()  # single_threaded_blas now caps SciPy's BLAS as well
    name, scalar = _ROUTINES[dtype]
    capsule = cython_blas.__pyx_capi__[name]
    get_name = ctypes.pythonapi.PyCapsule_GetName
    get_name.restype, get_name.argtypes = ctypes.c_char_p, [ctypes.py_object]
    get_pointer = ctypes.pythonapi.PyCapsule_GetPointer
    get_pointer.restype = ctypes.c_void_p
    get_pointer.argtypes = [ctypes.py_object, ctypes.c_char_p]
    address = get_pointer(capsule, get_name(capsule))
    char, integer, pointer = ctypes.c_char_p, ctypes.POINTER(ctypes.c_int), ctypes.c_void_p
    prototype = ctypes.CFUNCTYPE(
        None, char, char, integer, integer, integer, ctypes.POINTER(scalar), pointer, integer,
        pointer, integer, ctypes.POINTER(scalar), pointer, integer,
    )  # fmt: skip
    routine: Callable[..., None] = prototype(address)
    return routine


def _rows(M: FloatArray) -> int:
    """The distance between M's rows, in elements, when each row is contiguous."""
    if M.shape[1] > 1 and M.strides[1] != M.itemsize:
        raise ValueError("each row of A and B must be contiguous")
    return max(1, int(M.strides[0]) // M.itemsize, int(M.shape[1]))


def gemm_at(C: FloatArray, A: FloatArray, B: FloatArray, *, alpha: float, beta: float) -> None:
    """C <- alpha * A.T @ B + beta * C, in place (beta = 0 writes the product; C is not read).

    A (k, m) and B (k, n) with contiguous rows (C-ordered arrays, or row slices of them), C (m, n)
    with contiguous columns (Fortran-ordered, or a column slice of such an array); one dtype,
    float32 or float64.
    """
    (k, m), (k_b, n) = A.shape, B.shape
    if C.shape != (m, n) or k_b != k:
        raise ValueError(f"shapes {A.shape}.T @ {B.shape} do not make {C.shape}")
    if not (A.dtype == B.dtype == C.dtype) or C.dtype not in _ROUTINES:
        dtypes = f"{A.dtype}, {B.dtype}, {C.dtype}"
        raise ValueError(f"A, B and C must share a float dtype (float32 or float64), got {dtypes}")
    if m > 1 and n > 1 and C.strides[0] != C.itemsize:
        raise ValueError("each column of C must be contiguous")
    if C.size == 0:
        return
    if k == 0:
        C *= beta
        return
    scalar = _ROUTINES[C.dtype][1]
    ldc = max(1, C.strides[1] // C.itemsize if n > 1 else m, m)
    # Column-major, A's rows are the columns of a (m, k) matrix and B's of a (n, k) one: so the
    # product is that first matrix times the second one transposed.
    gemm_routine(C.dtype)(
        b"N", b"T", ctypes.byref(ctypes.c_int(m)), ctypes.byref(ctypes.c_int(n)),
        ctypes.byref(ctypes.c_int(k)), ctypes.byref(scalar(alpha)), A.ctypes.data,
        ctypes.byref(ctypes.c_int(_rows(A))), B.ctypes.data, ctypes.byref(ctypes.c_int(_rows(B))),
        ctypes.byref(scalar(beta)), C.ctypes.data, ctypes.byref(ctypes.c_int(ldc)),
    )  # fmt: skip
