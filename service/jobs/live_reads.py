"""The live reads: one reader behind GET /jobs/{id}, its series and its event stream.

A dashboard's clients poll a running job many times a second, mostly for exactly what another
client has just been given. One LiveReads per app, created in its lifespan, serves them all:

- whole answers (bytes and ETag, service.history.answers) kept by what was asked, the endpoint's
  validated parameters: a job, or a series page or window; within DESCENT_POLL_CACHE_BYTES, least
  recently used first out;
- polls by cursor, which differ from client to client, answered from the series' tails
  (service.history.tails): its newest points, read again once per change of the database;
- the event streams' reads, shared per job and tick (`events`, service.events.stream);
- single flight: concurrent readers of one key wait for the first instead of all reading.

Freshness (service.history.freshness): everything kept belongs to a generation, which moves when
the watcher sees another process commit and at once when this process commits (a commit hook on
the app's own database: the API's submit, cancel, delete, sweeps and uploads), so nothing kept
misses a commit older than the staleness bound, and nothing misses the API's own writes. Only
successful reads are kept: an unknown job or a bad query is an error raised again on every read.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from functools import partial
from typing import Annotated

import anyio.to_thread
from fastapi import Depends, Request, Response
from sqlalchemy import event
from sqlalchemy.orm import Session

from service.db.session import Database
from service.events.stream import SharedReads
from service.history import reads
from service.history.answers import Answer, AnswerCache, ReadKey
from service.history.freshness import Freshness
from service.history.tails import Tails
from service.jobs import service


class LiveReads:
    """The answers, tails and shared event reads of one app's database."""

    def __init__(self, max_bytes: int, max_staleness: float) -> None:
        self.answers = AnswerCache(max_bytes)
        self.freshness = Freshness(max_staleness)
        self.tails = Tails(self.freshness.moved)
        self.events = SharedReads()
        self._database: Database | None = None

    @property
    def enabled(self) -> bool:
        """Whether answers are kept at all (DESCENT_POLL_CACHE_BYTES > 0)."""
        return self.answers.max_bytes > 0

    @property
    def database(self) -> Database:
        assert self._database is not None, "LiveReads.serving(database) was not entered"
        return self._database

    @asynccontextmanager
    async def serving(self, database: Database) -> AsyncIterator[None]:
        """Read `database` while the block runs (the app's lifespan), watching it for changes."""
        pool = database.engine.pool

        def committed(session: Session) -> None:
            if getattr(session.bind, "pool", None) is pool:
                self.freshness.moved()

        self._database = database
        event.listen(Session, "after_commit", committed)
        try:
            if self.enabled:
                async with self.freshness.watching(database):
                    yield
            else:
                yield
        finally:
            event.remove(Session, "after_commit", committed)
            self._database = None

    async def job(self, job_id: str) -> Answer:
        """GET /jobs/{id}: the Job (NotFound if there is none)."""
        read = partial(service.job_answer, job_id=job_id)
        return await self._answer(ReadKey("job", job_id), read)

    async def series(self, job_id: str, series: str, key: str, window: reads.Window) -> Answer:
        """A page or window of a series, as a LossPage (key "loss") or a SeriesPage ("value")."""
        if window.is_page and self.enabled:
            self.freshness.polled()
            if await self.freshness.current():
                freshness = self.freshness
                page = await self.tails.page(
                    self.database,
                    lambda: freshness.generation,
                    (job_id, series, key),
                    -1 if window.after is None else window.after,
                    window.limit,
                )
                if page is not None:
                    return page
        read = partial(reads.series_answer, job_id=job_id, series=series, key=key, window=window)
        resource = "loss" if key == "loss" else "metrics"  # /loss and /metrics/loss differ
        return await self._answer(ReadKey(resource, job_id, series, window), read)

    async def _answer(self, key: ReadKey, read: Callable[[Session], Answer]) -> Answer:
        """A kept answer of the current generation, or one read now (and kept if nothing was
        written meanwhile)."""
        if not self.enabled:
            return await self._read(read)
        freshness, answers = self.freshness, self.answers
        freshness.polled()
        if not await freshness.current():
            return await self._read(read)
        found = answers.get(key, freshness.generation)
        if found is None:  # another request may be reading it
            await answers.pending.wait(key)
            found = answers.get(key, freshness.generation)
        if found is not None:
            return found
        generation = freshness.generation
        with answers.pending.lead(key):
            answer = await self._read(read)
        if freshness.generation == generation:
            answers.put(key, answer, generation)
        return answer

    async def _read(self, read: Callable[[Session], Answer]) -> Answer:
        return await anyio.to_thread.run_sync(self._reading, read)

    def _reading(self, read: Callable[[Session], Answer]) -> Answer:
        with self.database.read() as session:
            return read(session)


async def live_reads_of(request: Request) -> LiveReads:
    """The app's LiveReads (an async dependency: no trip to the threadpool)."""
    live: LiveReads = request.app.state.live_reads
    return live


LiveReadsDep = Annotated[LiveReads, Depends(live_reads_of)]


class _Prepared(Response):
    """A response whose headers are given as they are sent (what Response would make of them:
    these answers are most of what the API sends, and most of them are 304s)."""

    def __init__(self, status_code: int, body: bytes, raw_headers: list[tuple[bytes, bytes]]):
        self.status_code = status_code
        self.body = body
        self.raw_headers = raw_headers
        self.background = None


def respond(answer: Answer, if_none_match: str | None) -> Response:
    """The answer as a JSON response with its ETag, or a 304 if the client has it already (a weak
    comparison, as for GET)."""
    headers = [(b"etag", answer.etag.encode()), (b"cache-control", b"no-cache")]
    if if_none_match is not None and answer.etag in (t.strip() for t in if_none_match.split(",")):
        return _Prepared(304, b"", headers)
    headers.append((b"content-length", str(len(answer.body)).encode()))
    headers.append((b"content-type", b"application/json"))
    return _Prepared(200, answer.body, headers)
