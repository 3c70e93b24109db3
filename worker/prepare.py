"""Turn a job's dataset + preprocess + dtype into prepared arrays, through the worker's cache.

Two levels are cached: the raw data set (CIFAR-10 costs a second or two to read) and the
preprocessed arrays in the job's dtype (mean-centred, bias column appended). Jobs that differ only
in model or optimizer reuse both.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from worker.cache import BoundedCache
from worker.engine.datasets import Dataset, load_builtin
from worker.engine.preprocess import Preprocessor

OPTION_KEYS = ("n_features", "n_classes", "cluster_std", "noise", "seed")


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


def _dataset_nbytes(dataset: Dataset) -> int:
    arrays = (dataset.X_train, dataset.y_train, dataset.X_val, dataset.y_val, dataset.X_test,
              dataset.y_test)  # fmt: skip
    return sum(a.nbytes for a in arrays)


def _key(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


class DataPreparer:
    """Prepares data for jobs, keeping recent results within a memory budget."""

    def __init__(self, cache_bytes: int, cifar10_dir: Path | None) -> None:
        # Raw sets are small next to prepared float arrays: give them a quarter of the budget.
        self.raw: BoundedCache[Dataset] = BoundedCache(cache_bytes // 4, _dataset_nbytes)
        self.prepared: BoundedCache[PreparedData] = BoundedCache(
            cache_bytes - cache_bytes // 4, lambda p: p.nbytes
        )
        self.cifar10_dir = cifar10_dir

    def load(self, dataset_spec: dict[str, Any]) -> Dataset:
        dataset, _ = self.raw.get_or_create(_key(dataset_spec), lambda: self._load(dataset_spec))
        return dataset

    def _load(self, spec: dict[str, Any]) -> Dataset:
        options = {k: spec[k] for k in OPTION_KEYS if spec.get(k) is not None}
        return load_builtin(
            spec["name"],
            n_train=spec.get("n_train"),
            n_val=spec.get("n_val"),
            n_test=spec.get("n_test"),
            cifar10_dir=self.cifar10_dir,
            options=options,
        )

    def prepare(self, spec: dict[str, Any]) -> tuple[PreparedData, bool]:
        """Prepared arrays for a stored job spec, and whether they came from the cache."""
        parts = {
            "dataset": spec["dataset"],
            "preprocess": spec["preprocess"],
            "dtype": spec["dtype"],
        }
        return self.prepared.get_or_create(_key(parts), lambda: self._prepare(spec))

    def _prepare(self, spec: dict[str, Any]) -> PreparedData:
        dataset = self.load(spec["dataset"])
        options = spec["preprocess"]
        preprocessor = Preprocessor.fit(
            dataset.X_train,
            center=options["center"],
            standardize=options["standardize"],
            bias=options["bias"],
        )
        dtype = np.dtype(spec["dtype"])
        return PreparedData(
            X_train=preprocessor.transform(dataset.X_train, dtype),
            y_train=dataset.y_train,
            X_val=preprocessor.transform(dataset.X_val, dtype),
            y_val=dataset.y_val,
            X_test=preprocessor.transform(dataset.X_test, dtype),
            y_test=dataset.y_test,
            n_classes=dataset.n_classes,
            preprocessor=preprocessor,
            image_shape=dataset.image_shape,
        )
