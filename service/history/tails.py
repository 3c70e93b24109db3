"""The newest points of each polled series, read once per database change for every poller.

A live chart polls `/loss?after=<its cursor>`: fifty of them ask for fifty different pages, which
a cache of whole answers cannot share. A Tail holds a series' newest points (up to TAIL_POINTS),
each already serialized by its point model, with everything a page needs besides (the job's
state, the `total`). It is read again, in one trip to the threadpool, only when the generation
has moved (service.history.freshness), and then only the points after the newest it has; every
poll in between is answered from memory: a bisect, a join, a hash.

A Tail covers every point with step > `covered_from`: built from the newest points and kept up to
date by reading what follows its newest point, which is exact while the history only grows (a
job's first attempt: the worker appends in step order; a finished job: frozen). A job on a later
attempt that has not finished may truncate its history on resume: it is never tailed. A changed
attempt count or a pruned history rebuilds the tail. Cursors before `covered_from`, windows
(`max_points`) and unknown jobs are read from the database instead.

A tail read within a generation can see a commit that answers kept earlier in it do not (the
watcher has not seen it yet): a tail that finds its job's status changed calls `changed` (the
generation moves), so that a client told by a page that the job has ended is not then given a
kept GET /jobs/{id} that says it is running.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import anyio
import anyio.to_thread
from sqlalchemy.orm import Session

from service.db.models import TERMINAL_STATUSES
from service.db.session import Database
from service.history import point_store
from service.history.answers import Answer, page_answer, point_fragments
from service.history.point_counts import point_counts
from service.history.point_store import NO_STEP
from service.history.reads import next_cursor
from service.jobs import repository
from service.jobs.repository import JobState
from service.single_flight import SingleFlight

TAIL_POINTS = 2048  # newest points kept per series: ~100 KB
MAX_TAILS = 128  # series tailed at once (least recently polled go first)

Key = tuple[str, str, str]  # job id, series, the value's key in a point ("loss" or "value")


@dataclass(frozen=True)
class Tail:
    generation: int  # the generation it was read in
    job: JobState
    covered_from: int  # every point with step > covered_from is here
    steps: list[int]
    fragments: list[bytes]
    total: int
    key: str  # the value's key in a point

    def page(self, after: int, limit: int) -> Answer | None:
        """The page, as a full read answers it; None if the cursor is before the tail."""
        if after < self.covered_from:
            return None
        first = bisect_right(self.steps, after)
        fragments = self.fragments[first : first + limit]
        last = self.steps[first + len(fragments) - 1] if fragments else None
        newest = self.steps[-1] if self.steps else None
        cursor = next_cursor(after, limit, last, len(fragments), self.job, lambda: newest)
        return page_answer(fragments, cursor, self.total, key=self.key)


def _tailable(job: JobState | None) -> bool:
    return job is not None and (job.attempts <= 1 or job.status in TERMINAL_STATUSES)


def _read(session: Session, key: Key, old: Tail | None, generation: int) -> Tail | None:
    """The tail of `key` as of now: `old` extended, or built anew; None if it cannot be tailed."""
    job_id, series, value_key = key
    job = repository.state(session, job_id)
    if job is None or not _tailable(job):
        return None
    same_history = old is not None and (old.job.attempts, old.job.history_pruned) == (
        job.attempts,
        job.history_pruned,
    )
    if old is not None and same_history:
        newest = old.steps[-1] if old.steps else old.covered_from
        rows = point_store.points(session, job_id, series, after=newest, limit=TAIL_POINTS + 1)
        if len(rows) <= TAIL_POINTS:
            steps = old.steps + [step for step, _ in rows]
            fragments = old.fragments + point_fragments(rows, value_key)
            covered_from = old.covered_from
            if len(steps) > TAIL_POINTS:
                covered_from = steps[-TAIL_POINTS - 1]
                steps, fragments = steps[-TAIL_POINTS:], fragments[-TAIL_POINTS:]
            total = point_counts(session).total(session, job_id, series, job)
            return Tail(generation, job, covered_from, steps, fragments, total, value_key)
    rows = point_store.newest_points(session, job_id, series, TAIL_POINTS)
    covered_from = rows[0][0] - 1 if len(rows) == TAIL_POINTS else NO_STEP
    total = point_counts(session).total(session, job_id, series, job)
    steps = [step for step, _ in rows]
    fragments = point_fragments(rows, value_key)
    return Tail(generation, job, covered_from, steps, fragments, total, value_key)


class Tails:
    """The tails of the series being polled, least recently polled dropped first."""

    def __init__(self, changed: Callable[[], None] = lambda: None) -> None:
        self.tails: OrderedDict[Key, Tail] = OrderedDict()
        self.changed = changed
        self.pending: SingleFlight[Key] = SingleFlight()

    async def page(
        self, database: Database, generation: Callable[[], int], key: Key, after: int, limit: int
    ) -> Answer | None:
        """A page of `key` read during the current `generation()`; None: read it in full."""
        await self.pending.wait(key)  # another poll may be reading this tail
        tail = self.tails.get(key)
        if tail is None or tail.generation != generation():
            tail = await self._refresh(database, generation(), key, tail)
            if tail is None:
                return None
        self.tails.move_to_end(key)
        return tail.page(after, limit)

    async def _refresh(
        self, database: Database, generation: int, key: Key, old: Tail | None
    ) -> Tail | None:
        with self.pending.lead(key):
            tail = await anyio.to_thread.run_sync(self._reading, database, key, old, generation)
        if tail is None:
            self.tails.pop(key, None)
            return None
        if old is not None and old.job.status != tail.job.status:
            self.changed()
        self.tails[key] = tail
        while len(self.tails) > MAX_TAILS:
            self.tails.popitem(last=False)
        return tail

    @staticmethod
    def _reading(database: Database, key: Key, old: Tail | None, generation: int) -> Tail | None:
        with database.read() as session:
            return _read(session, key, old, generation)

    def clear(self) -> None:
        self.tails.clear()
