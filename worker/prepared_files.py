"""The machine's cache of prepared data sets on disk, memory-mapped by every worker process.

    <DESCENT_PREPARED_CACHE_DIR>/<key>/X_train.npy, y_train.npy, X_val.npy, y_val.npy,
                                       X_test.npy, y_test.npy, [mean.npy, std.npy,]
                                       [offsets.npy, scales.npy,] (features kept as bytes)
                                       meta.json (the array names; n_classes, image_shape,
                                       the preprocessor's bias and n_features, byte_rows)
    <DESCENT_PREPARED_CACHE_DIR>/<key>.lock      held by the process preparing <key>

Without it, every worker process prepares its own copy of a large data set (CIFAR-10: read the
batches, fit the preprocessing, transform every split) and keeps it in its own memory. With it,
the first process on a machine to need a data set prepares it once and writes it here; every
process, that one included, then maps the files, so the pages sit once in the page cache, shared.

The maps are private copy-on-write ones (`mmap_mode="c"`): the arrays stay writeable-flagged, the
signature the compiled kernels are warmed up for (worker.engine.accel.warmup), and their pages stay
shared as long as nobody writes to them (the engine never writes X).

An entry is written into a hidden sibling directory and renamed into place, so nobody ever maps
half of one. The budget is on the entries' bytes on disk and is checked as an entry is added:
the least recently used entries (by their directory's mtime, touched on each use) go first.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import secrets
import shutil
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

# Part of every key: bumping it (when the layout, or what an entry holds, changes) leaves the old
# entries unread, to be evicted as the least recently used.
FORMAT = 2
KEY_CHARS = 32
META = "meta.json"
INCOMING_PREFIX = ".incoming-"
# A write takes seconds; a hidden directory untouched for this long was left by a process that
# died while writing it, and nothing else would ever remove it.
STALE_INCOMING_SECONDS = 3600.0
NPY_HEADER_BYTES = 128  # np.save's header, padded to this size for arrays of our shapes

log = logging.getLogger("descent.worker")


@dataclass(frozen=True)
class Entry:
    """What an entry holds: arrays by name (each stored as <name>.npy) and a small JSON object."""

    arrays: Mapping[str, np.ndarray]
    meta: Mapping[str, Any]

    @property
    def disk_bytes(self) -> int:
        return sum(a.nbytes + NPY_HEADER_BYTES for a in self.arrays.values())


def key(parts: Mapping[str, Any]) -> str:
    """The entry name for what `parts` describes (any JSON): a truncated sha256 that also covers
    the format and NumPy's version, whose arithmetic produced the arrays."""
    text = json.dumps({**parts, "format": FORMAT, "numpy": np.__version__}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:KEY_CHARS]


def stamps(paths: Iterable[Path]) -> list[list[Any]]:
    """[name, size, mtime_ns] of each source file, for a key that changes when a source does
    (OSError when one is missing)."""
    stamped = []
    for path in paths:
        info = path.stat()
        stamped.append([path.name, info.st_size, info.st_mtime_ns])
    return stamped


class PreparedFiles:
    """Prepared data sets under `directory`, within `max_bytes` on disk; only sets of at least
    `min_bytes` go there."""

    def __init__(self, directory: Path, max_bytes: int, min_bytes: int) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        self.min_bytes = min_bytes

    def wants(self, nbytes: int) -> bool:
        """Whether data of this size belong on disk: a small set prepares in milliseconds and
        stays in memory only, and one larger than the whole budget could never be kept."""
        return self.min_bytes <= nbytes <= self.max_bytes

    def fetch(self, key: str, prepare: Callable[[], Entry]) -> Entry:
        """Entry `key` mapped from its files. On a miss, `prepare()` builds it, once per machine
        (the other processes wait for it, then map its files), and it is written. Where the cache
        cannot be used (a full disk, an unwritable directory), `prepare()`'s own arrays after a
        warning: a job never fails because of this cache."""
        found = self._read(key)
        if found is not None:
            return found
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            lock = open(self.directory / f"{key}.lock", "a")  # noqa: SIM115 (held below)
        except OSError as exc:
            log.warning("prepared-data cache %s is unusable (%s): preparing in memory",
                        self.directory, exc)  # fmt: skip
            return prepare()
        with lock:
            # A blocking wait, even for a worker that is stopping: the holder is preparing this
            # very entry, which takes a bounded time (one load, one pass to fit, one to
            # transform, one write), and waiting beats preparing a second copy beside it.
            # On a file system without locks each prepares, and the rename keeps one entry.
            with contextlib.suppress(OSError):
                fcntl.flock(lock, fcntl.LOCK_EX)
            found = self._read(key)
            if found is not None:
                return found
            if (self.directory / key).exists():
                # Unreadable (a write cut short by a crash): nobody writes an entry in place.
                log.warning("prepared data %s is unreadable: preparing it again",
                            self.directory / key)  # fmt: skip
                shutil.rmtree(self.directory / key, ignore_errors=True)
            return self._store(key, prepare())

    def touch(self, key: str) -> None:
        """Mark entry `key` used now, so that eviction takes others first."""
        with contextlib.suppress(OSError):  # evicted meanwhile: nothing to mark
            os.utime(self.directory / key)

    def _read(self, key: str) -> Entry | None:
        folder = self.directory / key
        try:
            listed = json.loads((folder / META).read_text())
            arrays = {
                name: np.load(folder / f"{name}.npy", mmap_mode="c", allow_pickle=False)
                for name in listed["arrays"]
            }
            meta = listed["meta"]
        except FileNotFoundError:
            return None  # never written, or being evicted
        except (OSError, ValueError, EOFError, KeyError, TypeError) as exc:
            log.warning("prepared data %s could not be read (%s)", folder, exc)
            return None
        self.touch(key)
        return Entry(arrays, meta)

    def _store(self, key: str, entry: Entry) -> Entry:
        """Write `entry` as `key`, then map it back (the preparing process, too, then shares the
        pages instead of keeping its private copy); `entry` itself if it cannot be written."""
        folder = self.directory / key
        incoming = self.directory / f"{INCOMING_PREFIX}{key}-{os.getpid()}-{secrets.token_hex(4)}"
        try:
            self._make_room(key, entry.disk_bytes)
            incoming.mkdir()
            for name, array in entry.arrays.items():
                np.save(incoming / f"{name}.npy", np.ascontiguousarray(array), allow_pickle=False)
            listed = {"arrays": list(entry.arrays), "meta": dict(entry.meta)}
            (incoming / META).write_text(json.dumps(listed))
            try:
                os.rename(incoming, folder)
            except OSError:
                if not folder.is_dir():
                    raise
                # Another process won (a file system without locks): its copy is as good.
            else:
                log.info("prepared data written to %s", folder)
        except OSError as exc:
            log.warning("could not write prepared data to %s (%s): keeping it in memory",
                        folder, exc)  # fmt: skip
            return entry
        finally:
            shutil.rmtree(incoming, ignore_errors=True)  # renamed away, or what a failure left
        found = self._read(key)
        return found if found is not None else entry

    def _make_room(self, key: str, needed: int) -> None:
        """Delete the least recently used entries until `needed` more bytes fit the budget;
        never `key`. Deleting an entry another process has mapped is safe on Linux: its maps
        keep the unlinked files (and their disk space) until they are closed."""
        now = time.time()
        entries: list[tuple[float, int, Path]] = []
        with os.scandir(self.directory) as listing:
            for item in listing:
                try:
                    if item.name.startswith(INCOMING_PREFIX):
                        if now - item.stat().st_mtime > STALE_INCOMING_SECONDS:
                            shutil.rmtree(item.path, ignore_errors=True)
                    elif item.is_dir() and item.name != key:
                        path = Path(item.path)
                        entries.append((item.stat().st_mtime, _size(path), path))
                except FileNotFoundError:
                    continue  # removed by another process meanwhile
        total = sum(size for _, size, _ in entries)
        for _, size, path in sorted(entries):
            if total + needed <= self.max_bytes:
                break
            log.info("evicting prepared data %s, the least recently used, to stay within %d "
                     "bytes", path, self.max_bytes)  # fmt: skip
            shutil.rmtree(path, ignore_errors=True)
            # Its lock goes too, or lock files would pile up. A process still holding it only
            # loses preparing alone (two may then prepare at once): the rename keeps one entry.
            (self.directory / f"{path.name}.lock").unlink(missing_ok=True)
            total -= size


def _size(folder: Path) -> int:
    total = 0
    for path in folder.iterdir():
        try:
            total += path.stat().st_size
        except FileNotFoundError:
            continue
    return total
