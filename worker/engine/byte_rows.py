"""Preprocessed features kept as the bytes they came from.

A data set whose values are bytes (CIFAR-10's pixels, uint8 uploads) is held as its codes: one
uint8 per value, a quarter of float32's memory. Its preprocessed row i is

    (float(codes[i]) - offsets) / scales        (the division only when standardizing)

computed in the run's dtype, exactly as Preprocessor.transform computes it from the same bytes:
the cast of a byte to float is exact, then one subtraction and at most one division in the
run's dtype, so every value equals the transformed array's, bit for bit. The bias column is a
column of ones among the codes, with offset 0 and scale 1 (1.0 - 0 = 1.0, 1.0 / 1 = 1.0).

Whatever reads rows gets them as floats: `rows` (a range), `take` (rows by index, into a
buffer) and `dense` (all of them, for the strategies that work on a whole float X); the
compiled kernels read the codes themselves (worker.engine.accel.fused).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import DTypeLike, NDArray

from worker.engine.arrays import AnyArray, FloatArray, IntArray


@dataclass(frozen=True, eq=False)
class ByteRows:
    """codes (N, D) uint8, offsets (D,) and scales (D,) or None, both in the rows' float dtype."""

    codes: NDArray[np.uint8]
    offsets: FloatArray
    scales: FloatArray | None

    def __post_init__(self) -> None:
        codes, offsets, scales = self.codes, self.offsets, self.scales
        if codes.dtype != np.uint8 or codes.ndim != 2:
            raise ValueError(f"codes must be a uint8 (N, D) array, got {codes.dtype} {codes.shape}")
        if offsets.shape != (codes.shape[1],) or offsets.dtype.kind != "f":
            raise ValueError(f"offsets must be a float ({codes.shape[1]},) array")
        if scales is not None and (scales.shape != offsets.shape or scales.dtype != offsets.dtype):
            raise ValueError("scales must match offsets in shape and dtype")

    @classmethod
    def encode(
        cls,
        X: NDArray[np.uint8],
        mean: NDArray[np.float64] | None,
        std: NDArray[np.float64] | None,
        bias: bool,
        dtype: DTypeLike,
    ) -> ByteRows:
        """The rows Preprocessor(mean, std, bias).transform(X, dtype) gives, kept as bytes."""
        n_rows, n_features = X.shape
        out_dtype = np.dtype(dtype)
        codes = np.empty((n_rows, n_features + int(bias)), dtype=np.uint8)
        codes[:, :n_features] = X
        offsets = np.zeros(codes.shape[1], dtype=out_dtype)
        if mean is not None:
            offsets[:n_features] = mean.astype(out_dtype)
        scales = None
        if std is not None:
            scales = np.ones(codes.shape[1], dtype=out_dtype)
            scales[:n_features] = std.astype(out_dtype)
        if bias:
            codes[:, -1] = 1
        return cls(codes, offsets, scales)

    @property
    def dtype(self) -> np.dtype[Any]:
        """The dtype of the rows as floats."""
        return self.offsets.dtype

    @property
    def shape(self) -> tuple[int, int]:
        return (int(self.codes.shape[0]), int(self.codes.shape[1]))

    @property
    def ndim(self) -> int:
        return 2

    @property
    def nbytes(self) -> int:
        scales = 0 if self.scales is None else self.scales.nbytes
        return self.codes.nbytes + self.offsets.nbytes + scales

    def __len__(self) -> int:
        return self.shape[0]

    def rows(self, start: int, stop: int, out: FloatArray | None = None) -> FloatArray:
        """Rows [start, stop) as floats: a new C-contiguous array, or `out` filled."""
        return self._decode(self.codes[start:stop], out)

    def take(self, index: IntArray, out: FloatArray | None = None) -> FloatArray:
        """Rows codes[index] as floats, into `out` when given ((len(index), D), the rows' dtype)."""
        return self._decode(np.take(self.codes, index, axis=0), out)

    def dense(self) -> FloatArray:
        """Every row as floats: the whole transformed array, for whatever needs a float X."""
        return self._decode(self.codes)

    def _decode(self, codes: AnyArray, out: FloatArray | None = None) -> FloatArray:
        if out is None:
            out = np.empty(codes.shape, dtype=self.dtype)
        np.subtract(codes, self.offsets, out=out, dtype=self.dtype)
        if self.scales is not None:
            np.divide(out, self.scales, out=out)
        return out


Features = FloatArray | ByteRows
"""The training features the engine takes: a float array, or rows kept as bytes."""


def as_float(X: Features) -> FloatArray:
    """X as a float array (a ByteRows decoded in full: a new array of the float size)."""
    return X.dense() if isinstance(X, ByteRows) else X


def rows_of(X: Features, start: int, stop: int) -> FloatArray:
    """Rows [start, stop) of X as a float array (a view of a float X, decoded from ByteRows)."""
    return X.rows(start, stop) if isinstance(X, ByteRows) else np.asarray(X[start:stop])
