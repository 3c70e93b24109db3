"""The `total` of each series page: how many points a (job, series) has stored, kept per database.

Owns PointCounts and the one instance each database gets; the series reads and the tails ask it,
and deleting a job drops what it holds for that job.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from weakref import WeakKeyDictionary

from sqlalchemy.orm import Session
from sqlalchemy.pool import Pool

from service.db.models import TERMINAL_STATUSES
from service.history import point_store
from service.jobs.repository import JobState


class PointCounts:
    """The `total` of a series without counting all its points on every poll.

    Per (job, series) it keeps a (step, count) pair: `count` points have a step <= `step`. A read
    counts only the points after that step (an index range scan of what is new) and moves the pair
    forward. This is exact because, while the pair's key holds, the points at or below its step
    never change: in a job's first attempt a worker only appends, in step order (a flush's steps
    all follow the last flush's), and a finished job's history is frozen. What does delete points
    changes the key: a retried attempt resets or truncates its history (attempts > 1, where
    nothing is cached until the job is finished), retention downsamples it (history_pruned), and
    DELETE /jobs removes the job for good (ids are never reused; service.delete drops its pairs).
    """

    def __init__(self, capacity: int = 4096) -> None:
        self.capacity = capacity
        self._pairs: OrderedDict[tuple[str, str, int, bool], tuple[int, int]] = OrderedDict()
        self._lock = threading.Lock()

    def total(self, session: Session, job_id: str, series: str, state: JobState) -> int:
        key = (job_id, series, state.attempts, state.history_pruned)
        if state.attempts > 1 and state.status not in TERMINAL_STATUSES:
            return point_store.count_points(session, job_id, series)
        with self._lock:
            step, count = self._pairs.get(key, (point_store.NO_STEP, 0))
        new, last = point_store.count_after(session, job_id, series, step)
        if last is not None:
            step, count = last, count + new
        with self._lock:
            self._pairs[key] = (step, count)
            self._pairs.move_to_end(key)
            while len(self._pairs) > self.capacity:
                self._pairs.popitem(last=False)
        return count

    def forget(self, job_id: str) -> None:
        with self._lock:
            for key in [key for key in self._pairs if key[0] == job_id]:
                del self._pairs[key]


_counts: WeakKeyDictionary[Pool, PointCounts] = WeakKeyDictionary()


def point_counts(session: Session) -> PointCounts:
    """The counts of the database behind `session`, found by its connection pool: the read and
    write engines of one database share it, and apps side by side in one process do not."""
    pool = session.get_bind().engine.pool
    counts = _counts.get(pool)
    if counts is None:
        counts = _counts.setdefault(pool, PointCounts())
    return counts
