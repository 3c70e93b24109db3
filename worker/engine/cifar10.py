"""Reader for CIFAR-10's python-pickle batches (data_batch_1..5, test_batch), without trusting them.

A batch is a protocol-2 pickle of a dict with b'data' (uint8 (N, 3072): 1024 red, 1024 green,
1024 blue values, each 32x32 row-major) and b'labels' (N ints 0..9). The unpickler only
resolves what such a file needs, so a crafted file cannot run code. N may be anything (the
originals hold 10,000 rows per batch; a trimmed test_batch may hold fewer).
"""

import importlib
import io
import os
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from worker.engine.arrays import IntArray

CLASS_NAMES = (
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
)  # fmt: skip
N_FEATURES = 3072
IMAGE_SHAPE = (3, 32, 32)
TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_BATCH = "test_batch"


def _numpy_reconstruct() -> Callable[..., Any]:
    # numpy 2 moved numpy.core to numpy._core; importing the old name warns, so resolve it here.
    for module in ("numpy._core.multiarray", "numpy.core.multiarray"):
        try:
            function: Callable[..., Any] = importlib.import_module(module)._reconstruct
        except (ImportError, AttributeError):
            continue
        return function
    raise ImportError("numpy's array _reconstruct function was not found")


def _allowed_globals() -> dict[tuple[str, str], Any]:
    reconstruct = _numpy_reconstruct()
    return {
        ("numpy.core.multiarray", "_reconstruct"): reconstruct,
        ("numpy._core.multiarray", "_reconstruct"): reconstruct,
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): _plain_dtype,
        # Protocol-2 pickles written by Python 3 encode bytes as _codecs.encode(str, 'latin1').
        ("_codecs", "encode"): _latin1_encode,
    }


def _plain_dtype(spec: Any, align: bool = False, copy: bool = False) -> np.dtype[Any]:
    # Object arrays would unpickle arbitrary contents; a CIFAR batch never needs them.
    dtype: np.dtype[Any] = np.dtype(spec, align=align, copy=copy)
    if dtype.hasobject:
        raise pickle.UnpicklingError("object arrays are not allowed in a CIFAR-10 batch")
    return dtype


def _latin1_encode(text: str, encoding: str = "latin1") -> bytes:
    if encoding not in ("latin1", "latin-1"):
        raise pickle.UnpicklingError(f"unexpected encoding {encoding!r} in a CIFAR-10 batch")
    return text.encode("latin1")


class RestrictedUnpickler(pickle.Unpickler):
    """An Unpickler that resolves only numpy array reconstruction and latin-1 byte strings."""

    _allowed = _allowed_globals()

    def find_class(self, module: str, name: str) -> Any:
        try:
            return self._allowed[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(
                f"global {module}.{name} is not allowed in a CIFAR-10 batch"
            ) from None


def restricted_loads(data: bytes) -> Any:
    """Unpickle `data` with RestrictedUnpickler (encoding='bytes')."""
    return RestrictedUnpickler(io.BytesIO(data), encoding="bytes").load()


def _entry(batch: dict[Any, Any], key: str, path: Path) -> Any:
    for candidate in (key.encode(), key):
        if candidate in batch:
            return batch[candidate]
    raise ValueError(f"{path}: CIFAR-10 batch has no {key!r} entry")


def load_batch(path: str | os.PathLike[str]) -> tuple[NDArray[np.uint8], IntArray]:
    """(data uint8 (N, 3072), labels int64 (N,)) from one batch file."""
    path = Path(path)
    with path.open("rb") as handle:
        batch = RestrictedUnpickler(handle, encoding="bytes").load()
    if not isinstance(batch, dict):
        raise ValueError(f"{path}: expected a dict, got {type(batch).__name__}")
    data = _entry(batch, "data", path)
    labels = np.asarray(_entry(batch, "labels", path))
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2:
        raise ValueError(f"{path}: data must be a uint8 (N, {N_FEATURES}) array")
    if data.shape[1] != N_FEATURES:
        raise ValueError(f"{path}: data has {data.shape[1]} columns, expected {N_FEATURES}")
    if labels.shape != (data.shape[0],) or labels.dtype.kind not in "iu":
        raise ValueError(f"{path}: expected {data.shape[0]} integer labels")
    if labels.size and (labels.min() < 0 or labels.max() >= len(CLASS_NAMES)):
        raise ValueError(f"{path}: labels must lie in 0..{len(CLASS_NAMES) - 1}")
    return data, labels.astype(np.int64)


def missing_files(directory: str | os.PathLike[str]) -> list[str]:
    """Names of the batch files absent from `directory` (empty when it is complete)."""
    root = Path(directory)
    return [name for name in (*TRAIN_BATCHES, TEST_BATCH) if not (root / name).is_file()]


def read_rows(paths: list[Path], n_rows: int) -> tuple[NDArray[np.uint8], IntArray]:
    """The first `n_rows` rows of the concatenated batches, reading only the files needed."""
    X = np.empty((n_rows, N_FEATURES), dtype=np.uint8)
    y = np.empty(n_rows, dtype=np.int64)
    filled = 0
    for path in paths:
        if filled == n_rows:
            break
        data, labels = load_batch(path)
        take = min(n_rows - filled, data.shape[0])
        X[filled : filled + take] = data[:take]
        y[filled : filled + take] = labels[:take]
        filled += take
    if filled < n_rows:
        names = ", ".join(path.name for path in paths)
        raise ValueError(f"CIFAR-10: asked for {n_rows} rows from {names}, which hold {filled}")
    return X, y
