"""A bounded, least-recently-used cache of prepared data sets, kept by each worker process.

Consecutive jobs on the same data (CIFAR-10 above all) skip loading and preprocessing. The bound is
in bytes; an entry larger than the whole budget is built and returned but not kept.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

V = TypeVar("V")


class BoundedCache(Generic[V]):
    def __init__(self, max_bytes: int, size_of: Callable[[V], int]) -> None:
        self.max_bytes = max_bytes
        self._size_of = size_of
        self._entries: OrderedDict[Hashable, tuple[V, int]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    @property
    def nbytes(self) -> int:
        return self._bytes

    def __len__(self) -> int:
        return len(self._entries)

    def get_or_create(self, key: Hashable, factory: Callable[[], V]) -> tuple[V, bool]:
        """The cached value for `key` (building it with `factory` on a miss) and whether it hit."""
        with self._lock:
            if key in self._entries:
                self._entries.move_to_end(key)
                self.hits += 1
                return self._entries[key][0], True
        value = factory()
        size = self._size_of(value)
        with self._lock:
            self.misses += 1
            if size <= self.max_bytes and key not in self._entries:
                self._entries[key] = (value, size)
                self._bytes += size
                while self._bytes > self.max_bytes:
                    _, (_, evicted) = self._entries.popitem(last=False)
                    self._bytes -= evicted
        return value, False

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._bytes = 0
