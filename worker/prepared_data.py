"""A job's prepared data, and how the machine's file cache (worker.prepared_files) stores it.

Features whose values are bytes are prepared as ByteRows (worker.engine.byte_rows): the file
cache then holds their codes, a quarter of float32's size, and the offsets and scales that
decode them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from service.datasets import storage
from worker.engine.byte_rows import ByteRows, Features
from worker.engine.preprocess import Preprocessor
from worker.prepared_files import Entry

FEATURE_NAMES = ("X_train", "X_val", "X_test")


@dataclass(frozen=True)
class PreparedData:
    X_train: Features
    y_train: np.ndarray
    X_val: Features
    y_val: np.ndarray
    X_test: Features
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
    arrays: dict[str, np.ndarray] = {}
    for name in storage.ARRAY_NAMES:
        value = getattr(data, name)
        arrays[name] = value.codes if isinstance(value, ByteRows) else value
    stats: list[tuple[str, np.ndarray | None]] = [
        ("mean", preprocessor.mean),
        ("std", preprocessor.std),
    ]
    X_train = data.X_train
    byte_rows = isinstance(X_train, ByteRows)
    if isinstance(X_train, ByteRows):
        stats += [("offsets", X_train.offsets), ("scales", X_train.scales)]
    for name, stat in stats:
        if stat is not None:
            arrays[name] = stat
    meta = {
        "n_classes": data.n_classes,
        "image_shape": None if data.image_shape is None else list(data.image_shape),
        "bias": preprocessor.bias,
        "n_features": preprocessor.n_features,
        "byte_rows": byte_rows,
    }
    return Entry(arrays, meta)


def from_entry(entry: Entry) -> PreparedData:
    """Prepared data from an entry of the file cache (its arrays memory-mapped)."""
    arrays, meta = entry.arrays, entry.meta
    shape = meta["image_shape"]
    features: dict[str, Features] = {name: arrays[name] for name in FEATURE_NAMES}
    if meta.get("byte_rows"):
        # Plain arrays over the maps (the compiled kernels take no memmap): the same shared pages.
        offsets, scales = np.asarray(arrays["offsets"]), arrays.get("scales")
        for name in FEATURE_NAMES:
            features[name] = ByteRows(
                np.asarray(arrays[name]), offsets, None if scales is None else np.asarray(scales)
            )
    return PreparedData(
        X_train=features["X_train"],
        y_train=arrays["y_train"],
        X_val=features["X_val"],
        y_val=arrays["y_val"],
        X_test=features["X_test"],
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
