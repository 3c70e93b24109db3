"""The machine's prepared-data files: the same arrays as in-memory preparation, prepared once,
mapped by the other workers, bounded, and never a reason for a job to fail."""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from service.datasets import storage
from service.db.session import Database
from service.jobs import repository, service
from service.jobs.spec import JobSpec
from service.settings import Settings
from tests.conftest import make_settings
from tests.engine.test_cifar10 import write_batch
from tests.worker.conftest import submit
from worker.engine.byte_rows import ByteRows, as_float
from worker.prepare import DataPreparer
from worker.prepared_data import PreparedData
from worker.prepared_files import PreparedFiles
from worker.runner import Worker

# Ten classes, so that jobs on it take the compiled kernels as CIFAR-10's do.
BLOBS = {"name": "blobs", "n_features": 24, "n_classes": 10, "n_train": 300, "n_val": 50,
         "n_test": 40, "seed": 3}  # fmt: skip
SPLITS = ("X_train", "y_train", "X_val", "y_val", "X_test", "y_test")


def job_spec(dataset: dict[str, Any] | None = None, **overrides: Any) -> JobSpec:
    spec: dict[str, Any] = {"dataset": dataset or BLOBS, "optimizer": {"type": "sgd"}}
    spec.update(overrides)
    return JobSpec.model_validate(spec)


def files(tmp_path: Path, max_bytes: int = 2**30) -> PreparedFiles:
    return PreparedFiles(tmp_path / "prepared", max_bytes, min_bytes=0)


def preparer(
    tmp_path: Path, prepared: PreparedFiles | None = None, cifar10_dir: Path | None = None
) -> DataPreparer:
    """A fresh DataPreparer, as another worker process would have."""
    return DataPreparer(2**30, cifar10_dir, tmp_path / "data", files=prepared)


def entries(tmp_path: Path) -> set[str]:
    folder = tmp_path / "prepared"
    return {p.name for p in folder.iterdir() if p.is_dir()} if folder.exists() else set()


def count_preparations(monkeypatch: pytest.MonkeyPatch, delay: float = 0.0) -> list[int]:
    """Calls to the in-memory preparation, in every DataPreparer."""
    calls: list[int] = []
    original = DataPreparer._prepare_in_memory

    def counting(self: DataPreparer, spec: JobSpec, **options: Any) -> PreparedData:
        calls.append(1)
        time.sleep(delay)
        return original(self, spec, **options)

    monkeypatch.setattr(DataPreparer, "_prepare_in_memory", counting)
    return calls


def stored(split: Any) -> list[np.ndarray]:
    """The arrays a split is kept as: itself, or a ByteRows' codes, offsets and scales."""
    if isinstance(split, ByteRows):
        return [a for a in (split.codes, split.offsets, split.scales) if a is not None]
    return [split]


def assert_same(mapped: PreparedData, in_memory: PreparedData) -> None:
    """Bit for bit, with the layout the compiled kernels were warmed up for."""
    for name in SPLITS:
        split, other = getattr(mapped, name), getattr(in_memory, name)
        assert type(split) is not ByteRows or type(other) is ByteRows, name
        for a, b in zip(stored(split), stored(other), strict=True):
            assert isinstance(a, np.memmap) or isinstance(a.base, np.memmap), name
            assert a.flags.c_contiguous and a.flags.writeable, name
            assert (a.dtype, a.shape) == (b.dtype, b.shape), name
            assert a.tobytes() == b.tobytes(), name
    p, q = mapped.preprocessor, in_memory.preprocessor
    for stat, other in ((p.mean, q.mean), (p.std, q.std)):
        assert (stat is None) == (other is None)
        if stat is not None and other is not None:
            assert stat.dtype == other.dtype and stat.tobytes() == other.tobytes()
    assert (p.bias, p.n_features) == (q.bias, q.n_features)
    assert (mapped.n_classes, mapped.image_shape) == (in_memory.n_classes, in_memory.image_shape)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize(
    "preprocess",
    [{"center": True, "standardize": True, "bias": True},
     {"center": False, "standardize": False, "bias": True},
     {"center": True, "standardize": False, "bias": False}],
)  # fmt: skip
def test_the_files_hold_what_in_memory_preparation_makes(
    tmp_path: Path, dtype: str, preprocess: dict[str, bool]
) -> None:
    spec = job_spec(dtype=dtype, preprocess=preprocess)
    in_memory, _ = preparer(tmp_path).prepare(spec)

    written, _ = preparer(tmp_path, files(tmp_path)).prepare(spec)
    mapped, _ = preparer(tmp_path, files(tmp_path)).prepare(spec)

    assert_same(written, in_memory)  # the preparing worker maps the files it wrote, too
    assert_same(mapped, in_memory)
    assert len(entries(tmp_path)) == 1


def test_another_worker_maps_the_files_without_preparing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = job_spec()
    preparer(tmp_path, files(tmp_path)).prepare(spec)
    calls = count_preparations(monkeypatch)
    other = preparer(tmp_path, files(tmp_path))

    data, hit = other.prepare(spec)

    assert (calls, hit) == ([], False)
    assert other.raw.misses == 0  # nothing loaded either
    assert all(isinstance(getattr(data, name), np.memmap) for name in SPLITS)
    assert other.prepare(spec) == (data, True)  # the in-process cache stays in front


def test_workers_preparing_the_same_data_together_prepare_it_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = count_preparations(monkeypatch, delay=0.3)
    workers = [preparer(tmp_path, files(tmp_path)) for _ in range(2)]
    start = threading.Barrier(len(workers))
    results: list[PreparedData] = []

    def prepare(worker: DataPreparer) -> None:
        start.wait()
        results.append(worker.prepare(job_spec())[0])

    threads = [threading.Thread(target=prepare, args=(w,)) for w in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert len(calls) == 1
    assert len(results) == 2
    assert as_float(results[0].X_train).tobytes() == as_float(results[1].X_train).tobytes()
    assert len(entries(tmp_path)) == 1


def test_what_changes_the_prepared_arrays_makes_a_new_entry(tmp_path: Path) -> None:
    for spec in (
        job_spec(),
        job_spec(preprocess={"standardize": True}),
        job_spec(dtype="float64"),
        job_spec({**BLOBS, "seed": 4}),
        job_spec(),  # again: the first entry
    ):
        preparer(tmp_path, files(tmp_path)).prepare(spec)

    assert len(entries(tmp_path)) == 4


CIFAR10 = {"name": "cifar10", "n_train": 60, "n_val": 20, "n_test": 20}


def write_cifar10(batches: Path, rng: np.random.Generator, batch: str, rows: int = 20) -> None:
    data = rng.integers(0, 256, size=(rows, 3072), dtype=np.uint8)
    write_batch(batches / batch, data, rng.integers(0, 10, size=rows))


def cifar10_batches(tmp_path: Path, rng: np.random.Generator) -> Path:
    """A CIFAR-10 directory of 20-row batches."""
    batches = tmp_path / "cifar"
    batches.mkdir()
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        write_cifar10(batches, rng, name)
    return batches


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_bytes_stay_bytes_in_the_files_and_in_memory(tmp_path: Path, dtype: str) -> None:
    batches = cifar10_batches(tmp_path, np.random.default_rng(0))
    spec = job_spec(CIFAR10, dtype=dtype, preprocess={"center": True, "standardize": True})
    in_memory, _ = preparer(tmp_path, cifar10_dir=batches).prepare(spec)
    writer = preparer(tmp_path, files(tmp_path), cifar10_dir=batches)
    mapped, _ = writer.prepare(spec)

    assert_same(mapped, in_memory)
    assert writer.raw.misses == 0  # the raw set it prepared from is not kept beside the entry
    X = mapped.X_train
    assert isinstance(X, ByteRows) and X.dtype == np.dtype(dtype) and X.shape == (60, 3073)
    (name,) = entries(tmp_path)
    assert np.load(tmp_path / "prepared" / name / "X_train.npy", mmap_mode="r").dtype == np.uint8
    raw = preparer(tmp_path, cifar10_dir=batches).load(spec.dataset)
    p = mapped.preprocessor
    for split in ("train", "val", "test"):
        expected = p.transform(getattr(raw, f"X_{split}"), dtype)
        assert as_float(getattr(mapped, f"X_{split}")).tobytes() == expected.tobytes()


def test_an_upload_of_bytes_is_prepared_as_bytes(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    arrays: dict[str, np.ndarray] = {}
    for split, rows in (("train", 80), ("val", 20), ("test", 20)):
        arrays[f"X_{split}"] = rng.integers(0, 256, size=(rows, 12), dtype=np.uint8)
        arrays[f"y_{split}"] = rng.integers(0, 3, size=rows)
    storage.write(tmp_path / "data", "upload-1", arrays)
    spec = job_spec({"id": "upload-1"})

    data, _ = preparer(tmp_path).prepare(spec)

    assert isinstance(data.X_train, ByteRows) and data.X_train.shape == (80, 13)
    p = data.preprocessor
    assert as_float(data.X_val).tobytes() == p.transform(arrays["X_val"], "float32").tobytes()


def test_a_replaced_cifar10_batch_file_makes_a_new_entry(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    batches = cifar10_batches(tmp_path, rng)
    spec = job_spec(CIFAR10)
    first, _ = preparer(tmp_path, files(tmp_path), cifar10_dir=batches).prepare(spec)
    assert first.image_shape == (3, 32, 32)
    write_cifar10(batches, rng, "data_batch_1")
    os.utime(batches / "data_batch_1", ns=(1, 1))  # a different mtime however fast the write

    second, _ = preparer(tmp_path, files(tmp_path), cifar10_dir=batches).prepare(spec)

    assert len(entries(tmp_path)) == 2
    assert as_float(second.X_train).tobytes() != as_float(first.X_train).tobytes()
    in_memory, _ = preparer(tmp_path, cifar10_dir=batches).prepare(spec)
    assert_same(second, in_memory)


def test_past_the_budget_the_least_recently_used_entries_go(tmp_path: Path) -> None:
    specs = {seed: job_spec({**BLOBS, "seed": seed}) for seed in (1, 2, 3)}
    preparer(tmp_path, files(tmp_path)).prepare(specs[1])
    (name,) = entries(tmp_path)
    size = sum(p.stat().st_size for p in (tmp_path / "prepared" / name).iterdir())
    budget = files(tmp_path, max_bytes=2 * size + size // 2)  # room for two entries
    preparer(tmp_path, budget).prepare(specs[2])
    first, (second,) = name, entries(tmp_path) - {name}
    for entry, seconds in ((first, 1_000), (second, 2_000)):
        os.utime(tmp_path / "prepared" / entry, (seconds, seconds))
    preparer(tmp_path, budget).prepare(specs[1])  # another worker uses the oldest: now the newest

    preparer(tmp_path, budget).prepare(specs[3])

    kept = entries(tmp_path)
    assert len(kept) == 2
    assert first in kept and second not in kept
    assert not (tmp_path / "prepared" / f"{second}.lock").exists()


def test_an_entry_is_never_evicted_to_make_room_for_itself(tmp_path: Path) -> None:
    preparer(tmp_path, files(tmp_path)).prepare(job_spec())
    (name,) = entries(tmp_path)
    size = sum(p.stat().st_size for p in (tmp_path / "prepared" / name).iterdir())
    only_one = files(tmp_path, max_bytes=size + size // 2)

    preparer(tmp_path, only_one).prepare(job_spec({**BLOBS, "seed": 9}))
    preparer(tmp_path, only_one).prepare(job_spec({**BLOBS, "seed": 9}))  # mapped: no eviction

    assert len(entries(tmp_path)) == 1 and name not in entries(tmp_path)


def test_an_unwritable_cache_prepares_in_memory_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "a-file").write_text("")  # a directory under a file cannot be made, even by root
    unwritable = PreparedFiles(tmp_path / "a-file" / "prepared", 2**30, min_bytes=0)
    in_memory, _ = preparer(tmp_path).prepare(job_spec())

    with caplog.at_level(logging.WARNING, logger="descent.worker"):
        data, _ = preparer(tmp_path, unwritable).prepare(job_spec())

    assert "preparing in memory" in caplog.text
    assert not isinstance(data.X_train, np.memmap)
    assert as_float(data.X_train).tobytes() == as_float(in_memory.X_train).tobytes()


def test_a_failed_write_keeps_the_prepared_data_in_memory(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full(*_args: object, **_kw: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(np, "save", full)
    with caplog.at_level(logging.WARNING, logger="descent.worker"):
        data, _ = preparer(tmp_path, files(tmp_path)).prepare(job_spec())

    assert "could not write prepared data" in caplog.text
    assert data.X_train.shape == (300, 25)
    left = list((tmp_path / "prepared").iterdir())
    assert len(left) == 1 and left[0].suffix == ".lock"  # no entry, no half-written directory


def test_an_unreadable_entry_is_prepared_again(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    first, _ = preparer(tmp_path, files(tmp_path)).prepare(job_spec())
    expected = as_float(first.X_train).tobytes()
    (name,) = entries(tmp_path)
    # Cut short by a crash. A new file: truncating the mapped one would fault `first`'s map.
    (tmp_path / "prepared" / name / "X_train.npy").unlink()
    (tmp_path / "prepared" / name / "X_train.npy").write_bytes(b"")

    with caplog.at_level(logging.WARNING, logger="descent.worker"):
        again, _ = preparer(tmp_path, files(tmp_path)).prepare(job_spec())

    assert "preparing it again" in caplog.text
    assert isinstance(again.X_train, np.memmap)
    assert as_float(again.X_train).tobytes() == expected


def test_no_files_without_a_budget_or_below_the_smallest_size(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'unused.db'}"
    off = make_settings(url, tmp_path, prepared_cache_bytes=0)
    small = make_settings(url, tmp_path, prepared_cache_bytes=2**30)  # the default smallest size
    assert off.prepared_cache_dir == small.prepared_cache_dir == tmp_path / "data" / "prepared"

    for settings in (off, small):
        data, _ = DataPreparer.from_settings(settings).prepare(job_spec())
        assert not isinstance(data.X_train, np.memmap)
    assert not (tmp_path / "data" / "prepared").exists()


def finished_W(database: Database, job_id: str) -> np.ndarray:
    with database.read() as session:
        job = service.get(session, job_id)
        assert job.status == "succeeded", job.error
        stored = repository.array(session, job_id, "W")
        assert stored is not None
        return service.as_ndarray(stored)


def test_a_job_on_mapped_data_trains_the_same_W_as_on_data_in_memory(
    settings: Settings, database: Database
) -> None:
    spec = {"dataset": BLOBS, "preprocess": {"standardize": True},
            "optimizer": {"type": "sgd", "learning_rate": 0.05, "batch_size": 16,
                          "iterations": 200}}  # fmt: skip
    with_files = settings.model_copy(
        update={"prepared_cache_bytes": 2**30, "prepared_cache_min_bytes": 0}
    )
    weights = []
    for run_settings in (settings, with_files, with_files):  # in memory, written, then mapped
        job_id = submit(database, run_settings, **spec)
        with Worker(run_settings) as worker:
            worker.run(burst=True)
            with database.read() as session:
                stored = JobSpec.model_validate(service.get(session, job_id).spec)
            used, hit = worker.data.prepare(stored)  # what the job was given, from the cache
        assert hit
        assert isinstance(used.X_train, np.memmap) == (run_settings is with_files)
        weights.append(finished_W(database, job_id))

    assert settings.prepared_cache_dir is not None
    assert len([p for p in settings.prepared_cache_dir.iterdir() if p.is_dir()]) == 1
    for W in weights[1:]:
        assert W.tobytes() == weights[0].tobytes()
