"""A job's prepared data, and how the machine's file cache (worker.prepared_files) stores it."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from service.datasets import storage
from worker.engine.preprocess import Preprocessor
from worker.prepared_files import Entry


@dataclass(frozen=True)
class PreparedData:
    X_train: np.ndarray
    y_train: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    n_classes: int
    preprocessor: Preprocessor
    image_shape: tuple[int, ...] | None

    @property
    def nbytes(self) -> int:
        arrays = (self.X_train, self.y_train, self.X_val, self.y_val, self.X_test, self.y_test)
        return sum(a.nbytes for a in arrays)


def to_entry(data: PreparedData) -> Entry:
    """What the file cache stores of prepared data: the arrays, the preprocessor's statistics,
    and what rebuilds the rest exactly."""
    preprocessor = data.preprocessor
    arrays = {name: getattr(data, name) for name in storage.ARRAY_NAMES}
    for name, stat in (("mean", preprocessor.mean), ("std", preprocessor.std)):
        if stat is not None:
            arrays[name] = stat
    meta = {
        "n_classes": data.n_classes,
        "image_shape": None if data.image_shape is None else list(data.image_shape),
        "bias": preprocessor.bias,
        "n_features": preprocessor.n_features,
    }
    return Entry(arrays, meta)


def from_entry(entry: Entry) -> PreparedData:
    """Prepared data from an entry of the file cache (its arrays memory-mapped)."""
    arrays, meta = entry.arrays, entry.meta
    shape = meta["image_shape"]
    return PreparedData(
        X_train=arrays["X_train"],
        y_train=arrays["y_train"],
        X_val=arrays["X_val"],
        y_val=arrays["y_val"],
        X_test=arrays["X_test"],
        y_test=arrays["y_test"],
        n_classes=int(meta["n_classes"]),
        preprocessor=Preprocessor(
            arrays.get("mean"),
            arrays.get("std"),
            bias=bool(meta["bias"]),
            n_features=meta["n_features"],
        ),
        image_shape=None if shape is None else tuple(shape),
    )
