"""Feature preprocessing fitted on the training split: centre, standardize, append the bias column.

X is (N, D) raw features (uint8 for CIFAR-10, float64 otherwise); the output is (N, D + bias).
Statistics are float64 and computed from the training rows only.
"""

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import DTypeLike, NDArray

from worker.engine.arrays import AnyArray, FloatArray

# Rows per block when a full float64 temporary of X would be large (CIFAR-10: 49,000 x 3,072).
_BLOCK_ROWS = 4096


def _column_std(X: AnyArray, mean: NDArray[np.float64]) -> NDArray[np.float64]:
    """Population std per column, accumulated over row blocks to bound float64 temporaries."""
    squares = np.zeros(X.shape[1], dtype=np.float64)
    block = np.empty((min(_BLOCK_ROWS, X.shape[0]), X.shape[1]), dtype=np.float64)
    for start in range(0, X.shape[0], _BLOCK_ROWS):
        rows = X[start : start + _BLOCK_ROWS]
        out = block[: rows.shape[0]]
        np.subtract(rows, mean, out=out)
        np.multiply(out, out, out=out)
        squares += out.sum(axis=0)
    result: NDArray[np.float64] = np.sqrt(squares / X.shape[0])
    return result


@dataclass(frozen=True)
class Preprocessor:
    """x -> ((x - mean) / std, 1): mean and std are None when that step is off.

    `n_features` records the input width for a preprocessor without statistics; `fit` sets it.
    """

    mean: NDArray[np.float64] | None
    std: NDArray[np.float64] | None
    bias: bool
    n_features: int | None = None

    @classmethod
    def fit(
        cls, X_train: AnyArray, *, center: bool, standardize: bool, bias: bool
    ) -> "Preprocessor":
        """Statistics from the training rows only; a constant feature gets std 1."""
        if X_train.ndim != 2 or X_train.shape[0] == 0:
            raise ValueError(f"X_train must be a non-empty (N, D) array, got {X_train.shape}")
        mean = X_train.mean(axis=0, dtype=np.float64)
        std = None
        if standardize:
            std = _column_std(X_train, mean)
            std[std == 0.0] = 1.0
        return cls(
            mean=mean if center else None,
            std=std,
            bias=bias,
            n_features=int(X_train.shape[1]),
        )

    @property
    def n_features_in(self) -> int:
        for stat in (self.mean, self.std):
            if stat is not None:
                return int(stat.shape[0])
        if self.n_features is None:
            raise ValueError("a Preprocessor without statistics needs n_features")
        return self.n_features

    @property
    def n_features_out(self) -> int:
        return self.n_features_in + int(self.bias)

    def transform(self, X: AnyArray, dtype: DTypeLike = np.float32) -> FloatArray:
        """A new C-contiguous (N, D + bias) array in `dtype`, filled in place (no float64 copy)."""
        X = np.asarray(X)
        if X.ndim != 2 or X.shape[1] != self.n_features_in:
            raise ValueError(f"expected X of shape (N, {self.n_features_in}), got {tuple(X.shape)}")
        out_dtype = np.dtype(dtype)
        if out_dtype.kind != "f":
            raise ValueError(f"dtype must be a floating type, got {out_dtype}")
        out: NDArray[Any] = np.empty((X.shape[0], self.n_features_out), dtype=out_dtype)
        features = out[:, : self.n_features_in]
        # Cast once into the output, then work in place in its dtype: a mixed-type ufunc writing
        # into this strided view is far slower than the plain cast followed by same-type ops.
        np.copyto(features, X, casting="same_kind")
        if self.mean is not None:
            features -= self.mean.astype(out_dtype)
        if self.std is not None:
            features /= self.std.astype(out_dtype)
        if self.bias:
            out[:, -1] = 1.0
        return out
