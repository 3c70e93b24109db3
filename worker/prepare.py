"""Turn a job's dataset + preprocess + dtype into prepared arrays, through the worker's cache.

Two levels are cached: the raw data set (CIFAR-10 costs a second or two to read) and the
preprocessed arrays in the job's dtype (mean-centred, bias column appended). Jobs that differ only
in model or optimizer reuse both.

Uploaded data sets are memory-mapped from DESCENT_DATA_DIR/<id>/*.npy, never read into a copy per
job: opening the maps costs nothing, so they are not cached raw. When the job's preprocessing
changes nothing (no centring, no standardizing, no bias column) and its dtype is the stored one,
the maps themselves are handed to the engine; otherwise the prepared arrays are built from the
maps once and cached across jobs like a built-in's.

Data sets whose features are bytes (CIFAR-10, uint8 uploads) are prepared as ByteRows
(worker.engine.byte_rows): the codes with the offsets and scales that decode them, a quarter of
float32's memory, exactly the values the float arrays would hold.

Large prepared sets (DESCENT_PREPARED_CACHE_MIN_BYTES and up) also go through the machine's file
cache (worker.prepared_files), when one is given: prepared once per machine, then memory-mapped
by every worker process, which then share one copy. The in-process cache stays in front of it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from service.datasets import storage
from service.jobs.spec import DatasetRef, JobSpec, Preprocess
from service.settings import Settings, get_settings
from worker import prepared_files
from worker.cache import BoundedCache
from worker.engine import cifar10
from worker.engine.byte_rows import ByteRows, Features
from worker.engine.datasets import (
    BUILTIN_INFO,
    CIFAR10_ENV,
    Dataset,
    DatasetUnavailable,
    load_builtin,
)
from worker.engine.preprocess import Preprocessor
from worker.prepared_data import PreparedData, from_entry, to_entry
from worker.prepared_files import Entry, PreparedFiles

OPTION_KEYS = ("n_features", "n_classes", "cluster_std", "noise", "seed")


def _dataset_nbytes(dataset: Dataset) -> int:
    arrays = (dataset.X_train, dataset.y_train, dataset.X_val, dataset.y_val, dataset.X_test,
              dataset.y_test)  # fmt: skip
    return sum(a.nbytes for a in arrays)


def _key(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


class DataPreparer:
    """Prepares data for jobs, keeping recent results within a memory budget."""

    def __init__(
        self,
        cache_bytes: int,
        cifar10_dir: Path | None,
        data_dir: Path | None = None,
        *,
        files: PreparedFiles | None = None,
    ) -> None:
        """files: the machine's prepared data on disk, shared with its other worker processes;
        without it (the default), every process prepares in memory for itself."""
        # Raw sets are small next to prepared float arrays: give them a quarter of the budget.
        self.raw: BoundedCache[Dataset] = BoundedCache(cache_bytes // 4, _dataset_nbytes)
        self.prepared: BoundedCache[PreparedData] = BoundedCache(
            cache_bytes - cache_bytes // 4, lambda p: p.nbytes
        )
        self.cifar10_dir = cifar10_dir
        # Uploads live under DESCENT_DATA_DIR; unless told otherwise, this host's setting.
        self._data_dir = data_dir
        self.files = files
        # In-process key -> file key of the entries mapped from files, to mark them used on
        # every job (an in-process hit never reaches the files, and eviction goes by last use).
        self._file_keys: dict[str, str] = {}

    @classmethod
    def from_settings(cls, settings: Settings) -> DataPreparer:
        files = None
        if settings.prepared_cache_dir is not None and settings.prepared_cache_bytes > 0:
            files = PreparedFiles(
                settings.prepared_cache_dir,
                settings.prepared_cache_bytes,
                settings.prepared_cache_min_bytes,
            )
        return cls(
            settings.dataset_cache_bytes, settings.cifar10_dir, settings.data_dir, files=files
        )

    @property
    def data_dir(self) -> Path:
        return self._data_dir if self._data_dir is not None else get_settings().data_dir

    @data_dir.setter
    def data_dir(self, value: Path) -> None:
        self._data_dir = value

    def load(self, ref: DatasetRef) -> Dataset:
        if ref.id is not None:
            return self._load_upload(ref.id, ref)
        key = _key(ref.model_dump(mode="json"))
        dataset, _ = self.raw.get_or_create(key, lambda: self._load(ref))
        return dataset

    def _load_upload(self, dataset_id: str, ref: DatasetRef) -> Dataset:
        """Memory maps of the upload's first n_train / n_val / n_test rows (views, not copies;
        a split whose size the spec leaves out is whole, as DatasetRef says)."""
        if not storage.is_present(self.data_dir, dataset_id):
            raise DatasetUnavailable(
                f"uploaded data set {dataset_id} is not in {self.data_dir} (deleted?)"
            )
        maps = storage.load(self.data_dir, dataset_id)
        rows = {"train": ref.n_train, "val": ref.n_val, "test": ref.n_test}
        cut = {name: maps[name][: rows[name.split("_", 1)[1]]] for name in storage.ARRAY_NAMES}
        n_classes = int(max(int(maps[f"y_{split}"].max()) for split in storage.SPLITS)) + 1
        return Dataset(
            f"upload:{dataset_id}", cut["X_train"], cut["y_train"], cut["X_val"], cut["y_val"],
            cut["X_test"], cut["y_test"], n_classes=n_classes,
            class_names=tuple(f"class {k}" for k in range(n_classes)),
        )  # fmt: skip

    def _load(self, ref: DatasetRef) -> Dataset:
        assert ref.name is not None  # a DatasetRef names a built-in or an upload's id
        return load_builtin(
            ref.name,
            n_train=ref.n_train,
            n_val=ref.n_val,
            n_test=ref.n_test,
            cifar10_dir=self.cifar10_dir,
            options=ref.model_dump(include=set(OPTION_KEYS), exclude_none=True),
        )

    def prepare(self, spec: JobSpec) -> tuple[PreparedData, bool]:
        """Prepared arrays for a job's spec, and whether they came from the cache."""
        if spec.dataset.id is not None and _passes_through(spec.preprocess):
            dataset = self.load(spec.dataset)
            if all(X.dtype == np.dtype(spec.dtype) for X in _features(dataset)):
                return _unchanged(dataset), False
        parts = {
            "dataset": spec.dataset.model_dump(mode="json"),
            "preprocess": spec.preprocess.model_dump(mode="json"),
            "dtype": spec.dtype,
        }
        key = _key(parts)
        prepared, hit = self.prepared.get_or_create(key, lambda: self._prepare(spec, key))
        if hit and self.files is not None and key in self._file_keys:
            self.files.touch(self._file_keys[key])
        return prepared, hit

    def _prepare(self, spec: JobSpec, key: str) -> PreparedData:
        """Through the machine's file cache when there is one and the data are large enough for
        it, else in memory."""
        if self.files is None or not self.files.wants(self._estimated_nbytes(spec)):
            return self._prepare_in_memory(spec)
        file_key = self._file_key(spec)
        if file_key is None:
            return self._prepare_in_memory(spec)  # whose load says what is missing

        def prepare() -> Entry:
            # The raw set is not kept: the entry is what later jobs read, and a raw copy kept in
            # this process would cost it as much memory again as the shared bytes.
            return to_entry(self._prepare_in_memory(spec, keep_raw=False))

        entry = self.files.fetch(file_key, prepare)
        self._file_keys[key] = file_key
        return from_entry(entry)

    def _estimated_nbytes(self, spec: JobSpec) -> int:
        """The prepared arrays' bytes from the split sizes and the width, before anything is
        loaded (the file cache's lock has to be taken before loading, so that one process
        loads)."""
        ref = spec.dataset
        if ref.id is not None:
            dataset = self.load(ref)  # an upload's maps: opening them reads nothing
            rows = sum(int(X.shape[0]) for X in _features(dataset))
            width = dataset.n_features
            byte_values = _byte_values(dataset)
        else:
            assert ref.name is not None  # a DatasetRef names a built-in or an upload's id
            info = BUILTIN_INFO[ref.name]
            given = (ref.n_train, ref.n_val, ref.n_test)
            defaults = (info.n_train, info.n_val, info.n_test)
            rows = sum(d if g is None else g for g, d in zip(given, defaults, strict=True))
            width = info.n_features if ref.n_features is None else ref.n_features
            byte_values = info.byte_values
        itemsize = 1 if byte_values else np.dtype(spec.dtype).itemsize
        row_bytes = (width + int(spec.preprocess.bias)) * itemsize
        return rows * (row_bytes + np.dtype(np.int64).itemsize)  # X, and an int64 label per row

    def _file_key(self, spec: JobSpec) -> str | None:
        """The file cache's key: what the in-process key says, plus the sizes and mtimes of the
        files the data are read from, so that a replaced source is prepared afresh. None when
        those files are not there."""
        ref = spec.dataset
        sources: list[Path] = []
        if ref.id is not None:
            folder = storage.directory(self.data_dir, ref.id)
            sources = [folder / f"{name}.npy" for name in storage.ARRAY_NAMES]
        elif ref.name == "cifar10":
            root = self.cifar10_dir if self.cifar10_dir is not None else os.environ.get(CIFAR10_ENV)
            if not root:
                return None
            sources = [Path(root) / name for name in (*cifar10.TRAIN_BATCHES, cifar10.TEST_BATCH)]
        try:
            stamped = prepared_files.stamps(sources)
        except OSError:
            return None
        return prepared_files.key({
            "dataset": ref.model_dump(mode="json"),
            "preprocess": spec.preprocess.model_dump(mode="json"),
            "dtype": spec.dtype,
            "sources": stamped,
        })  # fmt: skip

    def _prepare_in_memory(self, spec: JobSpec, *, keep_raw: bool = True) -> PreparedData:
        """Fit the preprocessing on the training rows and apply it to every split (new arrays;
        ByteRows for features that are bytes); the raw set stays in the raw cache if keep_raw."""
        ref = spec.dataset
        dataset = self.load(ref) if keep_raw or ref.id is not None else self._load(ref)
        options = spec.preprocess
        preprocessor = Preprocessor.fit(
            dataset.X_train,
            center=options.center,
            standardize=options.standardize,
            bias=options.bias,
        )
        dtype = np.dtype(spec.dtype)
        byte_values = _byte_values(dataset)

        def prepared(X: np.ndarray) -> Features:
            if byte_values:
                p = preprocessor
                return ByteRows.encode(X, p.mean, p.std, p.bias, dtype)
            return preprocessor.transform(X, dtype)

        return PreparedData(
            X_train=prepared(dataset.X_train),
            y_train=dataset.y_train,
            X_val=prepared(dataset.X_val),
            y_val=dataset.y_val,
            X_test=prepared(dataset.X_test),
            y_test=dataset.y_test,
            n_classes=dataset.n_classes,
            preprocessor=preprocessor,
            image_shape=dataset.image_shape,
        )


def _passes_through(options: Preprocess) -> bool:
    return not (options.center or options.standardize or options.bias)


def _features(dataset: Dataset) -> tuple[np.ndarray, ...]:
    return dataset.X_train, dataset.X_val, dataset.X_test


def _byte_values(dataset: Dataset) -> bool:
    return all(X.dtype == np.uint8 for X in _features(dataset))


def _unchanged(dataset: Dataset) -> PreparedData:
    """The data set's own arrays (an upload's memory maps), with an identity preprocessor."""
    return PreparedData(
        X_train=dataset.X_train,
        y_train=dataset.y_train,
        X_val=dataset.X_val,
        y_val=dataset.y_val,
        X_test=dataset.X_test,
        y_test=dataset.y_test,
        n_classes=dataset.n_classes,
        preprocessor=Preprocessor(None, None, bias=False, n_features=dataset.n_features),
        image_shape=None,
    )
