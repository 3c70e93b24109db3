"""The byte kernels (worker.engine.accel.fused on a ByteRows X) return what the float kernels
return on X.dense(), bit for bit: full passes, loss-only passes and rows read in place, for every
preprocessing a ByteRows holds, whatever the thread count."""

from typing import Any, Literal

import numpy as np
import pytest
from numpy.typing import NDArray

pytest.importorskip("numba")

from worker.engine.accel import fused, jit
from worker.engine.accel.parallel import limit_threads
from worker.engine.accel.warmup import warm_up
from worker.engine.byte_rows import ByteRows

Array = NDArray[Any]
Name = Literal["svm", "softmax"]
LOSSES: list[tuple[Name, float]] = [("svm", 1.0), ("svm", 1.5), ("softmax", 1.0)]
# mean, std, bias column: as ByteRows.encode takes them from the preprocessing.
PREPROCESSING = {
    "raw": (False, False, False),
    "centred": (True, False, True),
    "standardized": (True, True, True),
    "standardized-no-bias": (True, True, False),
}


def byte_problem(
    n: int, d: int, preprocessing: str, dtype: Any, seed: int = 0
) -> tuple[Array, ByteRows, Array]:
    """W, X as bytes (d pixel columns, plus the bias column if any), labels in [0, 10)."""
    centre, scale, bias = PREPROCESSING[preprocessing]
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, (n, d), dtype=np.uint8)
    # Statistics of a larger sample, as a real job's are: scales that are not powers of two.
    sample = rng.integers(0, 256, (64, d)).astype(np.float64)
    mean = sample.mean(axis=0) if centre else None
    std = sample.std(axis=0) + 0.5 if scale else None
    X = ByteRows.encode(pixels, mean, std, bias, dtype)
    W = (0.01 * rng.standard_normal((10, X.shape[1]))).astype(dtype)
    y = rng.integers(0, 10, n).astype(np.int64)
    return W, X, y


def assert_same(a: tuple[float, Array | None], b: tuple[float, Array | None]) -> None:
    assert a[0] == b[0]
    if a[1] is None or b[1] is None:
        assert a[1] is None and b[1] is None
    else:
        assert a[1].dtype == b[1].dtype
        np.testing.assert_array_equal(a[1], b[1])


def passes(W: Array, X: Any, y: Array, rows: Array) -> list[tuple[float, Array | None]]:
    """Every kind of compiled pass on this problem: full, loss only, rows in place."""
    found: list[tuple[float, Array | None]] = []
    for name in ("svm", "softmax"):
        found.append(fused.fused_pass(name, W, X, y, True))
        found.append(fused.fused_pass(name, W, X, y, False))
        found.append(fused.gather_pass(name, W, X, y, rows))
    return found


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(("name", "delta"), LOSSES, ids=["svm", "svm-delta", "softmax"])
@pytest.mark.parametrize("preprocessing", PREPROCESSING)
@pytest.mark.parametrize(
    ("n", "d"), [(1, 7), (20, 300), (33, 256), (1700, 300)], ids=lambda v: str(v)
)
def test_byte_passes_equal_the_float_passes_on_the_dense_rows(
    dtype: Any, name: Name, delta: float, preprocessing: str, n: int, d: int
) -> None:
    """One row, fewer than a chunk, a chunk and one row, three slabs; columns short of a tile,
    at one and past one."""
    W, X, y = byte_problem(n, d, preprocessing, dtype, seed=n + d)
    dense = X.dense()
    assert fused.applies(name, W, X, y)
    for want_grad in (True, False):
        on_bytes = fused.fused_pass(name, W, X, y, want_grad, delta)
        assert_same(on_bytes, fused.fused_pass(name, W, dense, y, want_grad, delta))
    rows = np.random.default_rng(n).integers(0, n, max(1, 2 * n // 3))  # repeats rows
    in_place = fused.gather_pass(name, W, X, y, rows, delta)
    assert in_place[1].dtype == dtype
    assert_same(in_place, fused.gather_pass(name, W, dense, y, rows, delta))
    gathered = ByteRows(X.codes[rows], X.offsets, X.scales)
    assert_same(in_place, fused.fused_pass(name, W, gathered, y[rows], True, delta))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_byte_passes_are_bit_identical_on_any_threads(
    dtype: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One thread, numba's threads (where numba has a thread-safe layer) and Python threads."""
    W, X, y = byte_problem(5000, 300, "standardized", dtype, seed=3)
    assert len(fused.slab_bounds(5000)) == fused.SLABS
    rows = np.random.default_rng(5).integers(0, 5000, 200)
    with limit_threads(1):
        expected = passes(W, X.dense(), y, rows)
        on_one = passes(W, X, y, rows)
    with limit_threads(2):
        on_two = passes(W, X, y, rows)
    monkeypatch.setattr(jit, "parallel_ready", lambda threads: False)
    with limit_threads(2):
        on_python = passes(W, X, y, rows)
    for found in (on_one, on_two, on_python):
        for a, b in zip(found, expected, strict=True):
            assert_same(a, b)


def test_byte_passes_take_offsets_and_scales_of_any_layout() -> None:
    """Read-only or strided offsets and scales are copied into the kernels' types."""
    W, X, y = byte_problem(100, 40, "standardized", np.float32, seed=6)
    assert X.scales is not None
    offsets, scales = np.repeat(X.offsets, 2)[::2], X.scales.copy()
    scales.flags.writeable = False
    odd = ByteRows(X.codes, offsets, scales)
    assert not offsets.flags.c_contiguous
    assert_same(fused.fused_pass("svm", W, odd, y, True), fused.fused_pass("svm", W, X, y, True))


def test_byte_rows_the_kernels_do_not_cover() -> None:
    W, X, y = byte_problem(100, 40, "centred", np.float32, seed=7)
    assert fused.applies("svm", W, X, y)
    strided = ByteRows(np.asfortranarray(X.codes), X.offsets, X.scales)
    assert not fused.applies("svm", W, strided, y)
    assert not fused.applies("svm", W.astype(np.float64), X, y)  # W's dtype is not the rows'
    assert not fused.applies("svm", W, X, np.where(y == 0, 10, y))  # a label out of range
    halves = ByteRows.encode(X.codes[:, :-1], None, None, True, np.float16)
    assert not fused.applies("svm", W.astype(np.float16), halves, y)


def test_the_warm_up_runs_the_byte_kernels(monkeypatch: pytest.MonkeyPatch) -> None:
    """A worker's first job on bytes (CIFAR-10) finds its kernels compiled."""
    calls: list[tuple[str, str]] = []
    for function in ("fused_pass", "gather_pass"):
        real = getattr(fused, function)

        def spied(name: Name, W: Array, X: Any, *args: Any, real: Any = real) -> Any:
            if isinstance(X, ByteRows):
                calls.append((real.__name__, str(X.dtype)))
            return real(name, W, X, *args)

        monkeypatch.setattr(fused, function, spied)
    done = warm_up(2, ["svm"], ["float32", "float64"])
    assert {w.name for w in done} >= {
        f"svm {dtype} {what} bytes" for dtype in ("float32", "float64")
        for what in ("minibatch", "full batch")
    }  # fmt: skip
    assert sorted(calls) == sorted(
        (function, dtype)
        for function in ("fused_pass", "gather_pass")
        for dtype in ("float32", "float64")
    )
