"""Where uploaded data sets live: one directory per data set under DESCENT_DATA_DIR.

    <DESCENT_DATA_DIR>/<dataset id>/X_train.npy, y_train.npy, X_val.npy, y_val.npy,
                                    X_test.npy, y_test.npy

Plain C-ordered `.npy` files, so that workers memory-map them (`np.load(path, mmap_mode="r")`)
instead of reading a copy per job. An upload is written into a hidden sibling directory and
renamed into place, so a failed upload leaves nothing behind and a worker never sees half a set.
"""

from __future__ import annotations

import errno
import logging
import shutil
from pathlib import Path

import numpy as np

SPLITS = ("train", "val", "test")
ARRAY_NAMES = tuple(f"{kind}_{split}" for split in SPLITS for kind in ("X", "y"))
INCOMING_PREFIX = ".incoming-"
log = logging.getLogger("descent.datasets")


def directory(data_dir: Path, dataset_id: str) -> Path:
    return data_dir / dataset_id


def is_present(data_dir: Path, dataset_id: str) -> bool:
    folder = directory(data_dir, dataset_id)
    return all((folder / f"{name}.npy").is_file() for name in ARRAY_NAMES)


NPY_HEADER_BYTES = 128  # np.save's header, padded to this size for arrays of our shapes
FULL = (errno.ENOSPC, errno.EDQUOT)


class DiskFull(Exception):
    """The disk (or the user's disk quota) has no room: nothing of the data set was kept."""


def size_of(arrays: dict[str, np.ndarray]) -> int:
    """The bytes `write` will store for these arrays."""
    return sum(arrays[name].nbytes + NPY_HEADER_BYTES for name in ARRAY_NAMES)


def write(data_dir: Path, dataset_id: str, arrays: dict[str, np.ndarray]) -> int:
    """Store every split atomically; the bytes written. DiskFull if there is no room."""
    data_dir.mkdir(parents=True, exist_ok=True)
    needed = size_of(arrays)
    free = shutil.disk_usage(data_dir).free
    if needed > free:
        raise DiskFull(f"{needed} bytes needed, {free} free")
    incoming = data_dir / f"{INCOMING_PREFIX}{dataset_id}"
    try:
        incoming.mkdir()
        for name in ARRAY_NAMES:
            array = np.ascontiguousarray(arrays[name])
            np.save(incoming / f"{name}.npy", array, allow_pickle=False)
        size = sum(path.stat().st_size for path in incoming.iterdir())
        incoming.rename(directory(data_dir, dataset_id))
    except OSError as exc:
        shutil.rmtree(incoming, ignore_errors=True)
        if exc.errno in FULL:
            raise DiskFull(exc.strerror or str(exc)) from exc
        raise
    except BaseException:
        shutil.rmtree(incoming, ignore_errors=True)
        raise
    return size


def remove(data_dir: Path, dataset_id: str) -> None:
    """Delete a data set's files (a worker still mapping them keeps its open mapping)."""
    folder = directory(data_dir, dataset_id)
    try:
        shutil.rmtree(folder)
    except FileNotFoundError:
        pass
    except OSError:
        log.exception("could not remove %s", folder)


def load(data_dir: Path, dataset_id: str) -> dict[str, np.ndarray]:
    """Every split as a read-only memory map (nothing is read until it is used)."""
    folder = directory(data_dir, dataset_id)
    return {
        name: np.load(folder / f"{name}.npy", mmap_mode="r", allow_pickle=False)
        for name in ARRAY_NAMES
    }
