"""Single flight: tasks that need the same thing at once wait for the first one to get it.

The live reads' answers, the series' tails and the event streams' reads all read the database
for many clients that ask for the same key within moments: the first task reads, the others wait
for it to finish and then take what it left (in a cache of their own), instead of all reading.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterator
from contextlib import contextmanager
from typing import Generic, TypeVar

import anyio

K = TypeVar("K", bound=Hashable)


class SingleFlight(Generic[K]):
    """The keys whose work is in flight, each with the event its waiters wait on."""

    def __init__(self) -> None:
        self._pending: dict[K, anyio.Event] = {}

    def __bool__(self) -> bool:
        return bool(self._pending)

    async def wait(self, key: K) -> None:
        """Return once no work for `key` is in flight (at once if there is none)."""
        while (pending := self._pending.get(key)) is not None:
            await pending.wait()

    @contextmanager
    def lead(self, key: K) -> Iterator[None]:
        """Mark the work for `key` in flight for the block; its waiters wake when the block ends,
        however it ends."""
        done = self._pending[key] = anyio.Event()
        try:
            yield
        finally:
            if self._pending.get(key) is done:
                del self._pending[key]
            done.set()
