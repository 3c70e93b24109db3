"""A cache of the polled answers (GET /jobs/{id}, /loss, /metrics/{series}) shared by all clients.

A dashboard's pollers mostly ask, within a fraction of a second, for exactly what another client
has just been given. This pure-ASGI layer sits inside the bearer-token check (so only authorized
requests reach it; with one API token the answers do not depend on who asks) and keeps the 200
answers of those routes, byte for byte with their headers, keyed by path and query string.

Freshness: a watcher reads a fingerprint of the database every `max_staleness / 2` seconds, in a
worker thread, on a connection of its own: `PRAGMA data_version` on SQLite (it changes when any
other connection commits), `pg_current_snapshot()` on PostgreSQL (it changes whenever a write
transaction starts or ends, in any database of the cluster). When it changes, the cache is emptied.
An answer is served from the cache only while the last completed check started less than
`max_staleness` ago, so an answer never misses a commit older than that: the cache is bypassed
(never blocking) when the checks fall behind. The watcher rests while nobody polls (after
IDLE_SECONDS without a poll) and wakes on the next poll, which the endpoint answers meanwhile.
Requests other than GET/HEAD that pass through this API (cancel, delete, submit) empty the cache
before and after, so the API's own writes are seen at once. Only 200s are kept; errors and 404s
always go to the endpoint. Concurrent misses of one key wait for the first one instead of all
reading the database. Memory is capped (least recently used answers go first).

Polls by cursor (`?after=N` or `?after=N&limit=L` on a series) differ from client to client, so
they are answered from the series' Tail (service.history.tails) instead: its newest points, read
again once per change of the database, whatever each client's cursor.
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import anyio
import anyio.to_thread
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.db.session import Database
from service.history.series import SERIES
from service.history.tails import Key, Tails
from service.jobs.schemas import DEFAULT_PAGE, MAX_PAGE
from service.single_flight import SingleFlight

log = logging.getLogger("descent.poll_cache")

POLLED = re.compile(r"/jobs/[^/]+(?:/loss|/metrics/[^/]+)?")
# Polls by cursor, answered from the series' Tail: the endpoint's own checks of the path (an id
# of plain text, a known series), as this answers without the endpoint.
SERIES_NAMES = "|".join(SERIES)
TAILED = re.compile(rf"/jobs/([^/\x00-\x1f\x7f]{{1,64}})/(?:loss|metrics/({SERIES_NAMES}))")
PAGE_QUERY = re.compile(rb"after=(-1|0|[1-9][0-9]{0,17})(?:&limit=([1-9][0-9]{0,4}))?")


class RoutePath(NamedTuple):
    path: str


ROUTES = {
    "loss": RoutePath("/jobs/{job_id}/loss"),
    "value": RoutePath("/jobs/{job_id}/metrics/{series}"),
}
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
ENTRY_OVERHEAD = 256  # bytes counted per entry on top of its body, key and headers
IDLE_SECONDS = 10.0  # the watcher rests after this long without a poll
BODYLESS = frozenset({b"content-length", b"content-type"})  # what a 304 leaves out of a 200


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    """Whether an If-None-Match header names this ETag (weak comparison, as for GET)."""
    return if_none_match is not None and etag in (t.strip() for t in if_none_match.split(","))


def json_answer(body: str, if_none_match: str | None) -> Response:
    """A JSON answer with an ETag of its own bytes, or 304 if the client has those already."""
    content = body.encode()
    etag = f'W/"{hashlib.blake2b(content, digest_size=12).hexdigest()}"'
    headers = {"ETag": etag, "Cache-Control": "no-cache"}
    if etag_matches(if_none_match, etag):
        return Response(status_code=304, headers=headers)
    return Response(content, media_type="application/json", headers=headers)


def _page_query(scope: Scope) -> tuple[Key, int, int] | None:
    """(job, series, key), after, limit of a series poll by cursor (`after=N[&limit=L]`, nothing
    else); None for any other request."""
    path = TAILED.fullmatch(scope["path"])
    query = PAGE_QUERY.fullmatch(bytes(scope["query_string"]))
    if path is None or query is None:
        return None
    limit = int(query[2]) if query[2] else DEFAULT_PAGE
    if limit > MAX_PAGE:
        return None
    key = (path[1], "loss", "loss") if path[2] is None else (path[1], path[2], "value")
    return key, int(query[1]), limit


@dataclass(frozen=True)
class Entry:
    headers: list[tuple[bytes, bytes]]
    body: bytes
    etag: str
    route: Any  # the matched route, so the HTTP metrics label a hit like a miss
    size: int


def fingerprint_reader(
    database: Database,
) -> tuple[Callable[[], object], Callable[[], None]] | None:
    """A function returning the database's change fingerprint (run it in a thread) and one that
    closes the connection it holds, or None if this backend has no cheap fingerprint."""
    dialect = database.engine.dialect.name
    if dialect == "sqlite":
        raw = database.engine.raw_connection()  # autocommit: the connect hook unsets isolation

        def sqlite_version() -> object:
            cursor = raw.cursor()
            try:
                cursor.execute("PRAGMA data_version")
                return cursor.fetchone()
            finally:
                cursor.close()

        return sqlite_version, raw.close
    if dialect == "postgresql":
        connection = database.engine.connect().execution_options(isolation_level="AUTOCOMMIT")

        def postgres_snapshot() -> object:
            return connection.exec_driver_sql("SELECT pg_current_snapshot()::text").scalar()

        return postgres_snapshot, connection.close
    return None


@dataclass
class PollCache:
    """The answers, their byte budget, and the watcher's state."""

    max_bytes: int
    max_staleness: float = 0.1
    checked_at: float = -1e9  # monotonic start of the last completed check
    entries: OrderedDict[tuple[str, bytes], Entry] = field(default_factory=OrderedDict)
    pending: SingleFlight[tuple[str, bytes]] = field(default_factory=SingleFlight)
    size: int = 0
    generation: int = 0
    tails: Tails = field(default_factory=Tails)
    polled_at: float = field(default_factory=time.monotonic)  # monotonic time of the last poll
    waking: anyio.Event | None = None  # set by the next poll while the watcher rests

    @property
    def enabled(self) -> bool:
        return self.max_bytes > 0

    def fresh(self) -> bool:
        return time.monotonic() - self.checked_at <= self.max_staleness

    def polled(self) -> None:
        """Note a poll (waking the watcher if it rests)."""
        self.polled_at = time.monotonic()
        if self.waking is not None:
            self.waking.set()

    def invalidate(self) -> None:
        self.generation += 1  # what the tails hold is older now: each is read again when polled
        self.entries.clear()
        self.size = 0

    def get(self, key: tuple[str, bytes]) -> Entry | None:
        entry = self.entries.get(key)
        if entry is not None:
            self.entries.move_to_end(key)
        return entry

    def put(self, key: tuple[str, bytes], entry: Entry) -> None:
        if entry.size > self.max_bytes:
            return
        old = self.entries.pop(key, None)
        self.size += entry.size - (old.size if old is not None else 0)
        self.entries[key] = entry
        while self.size > self.max_bytes:
            _, evicted = self.entries.popitem(last=False)
            self.size -= evicted.size

    @asynccontextmanager
    async def watching(self, database: Database) -> AsyncIterator[None]:
        """Check the database's fingerprint in the background while the block runs."""
        reader = fingerprint_reader(database) if self.enabled else None
        if reader is None:
            yield
            return
        read, close = reader
        try:
            async with anyio.create_task_group() as group:
                group.start_soon(self._watch, read)
                try:
                    yield
                finally:
                    group.cancel_scope.cancel()
        finally:
            self.checked_at = -1e9  # no more checks: no more answers from the cache
            close()

    async def _watch(self, read: Callable[[], object]) -> None:
        last: object = None
        # A limiter of its own: the checks never queue behind the endpoints' reads (with the
        # shared one, a burst of misses would delay the check, the cache would be bypassed, and
        # every request would become a miss).
        own = anyio.CapacityLimiter(1)
        while True:
            started = time.monotonic()
            try:
                current = await anyio.to_thread.run_sync(read, limiter=own)
            except Exception:  # the cache is bypassed until a check succeeds again
                log.warning("poll cache: database check failed", exc_info=True)
                current = started  # never equal to a fingerprint: empties the cache
            else:
                if current != last:
                    self.invalidate()
                    last = current
                self.checked_at = started
            if time.monotonic() - self.polled_at > IDLE_SECONDS:
                await self._rest()
                continue
            await anyio.sleep(max(0.0, started + self.max_staleness / 2 - time.monotonic()))

    async def _rest(self) -> None:
        """Wait for the next poll. Once the last check is older than the staleness bound, that
        poll is answered by the endpoint; the check it wakes keeps what the cache holds if the
        fingerprint has not moved meanwhile."""
        self.waking = anyio.Event()
        try:
            await self.waking.wait()
        finally:
            self.waking = None


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value).decode("latin-1")
    return None


class PollCacheLayer:
    """Serves the polled routes from a PollCache; everything else passes straight through."""

    def __init__(self, app: ASGIApp, cache: PollCache) -> None:
        self.app = app
        self.cache = cache

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        cache = self.cache
        if scope["type"] != "http" or not cache.enabled:
            await self.app(scope, receive, send)
            return
        if scope["method"] not in SAFE_METHODS:
            cache.invalidate()
            try:
                await self.app(scope, receive, send)
            finally:
                cache.invalidate()
            return
        if scope["method"] != "GET" or not POLLED.fullmatch(scope["path"]):
            await self.app(scope, receive, send)
            return
        cache.polled()
        if not cache.fresh():
            await self.app(scope, receive, send)
            return
        polled = _page_query(scope)
        if polled is not None and await self._page(scope, receive, send, *polled):
            return
        key = (scope["path"], bytes(scope["query_string"]))
        entry = cache.get(key)
        if entry is None:  # another request may be reading it
            await cache.pending.wait(key)
            entry = cache.get(key)
        if entry is None:
            entry = await self._fill(scope, receive, send, key)
            if entry is None:
                return  # answered by the endpoint itself (not a cacheable 200)
        scope["route"] = entry.route
        await self._answer(entry, _header(scope, b"if-none-match"), send)

    async def _page(
        self, scope: Scope, receive: Receive, send: Send, key: Key, after: int, limit: int
    ) -> bool:
        """Answer a poll by cursor from its series' tail; False if the tail cannot."""
        app = scope["app"]
        cache = self.cache
        body = await cache.tails.page(
            app.state.database, lambda: cache.generation, key, after, limit
        )
        if body is None:
            return False
        scope["route"] = ROUTES[key[2]]  # what the HTTP metrics read of a route: its path
        await json_answer(body, _header(scope, b"if-none-match"))(scope, receive, send)
        return True

    async def _fill(
        self, scope: Scope, receive: Receive, send: Send, key: tuple[str, bytes]
    ) -> Entry | None:
        """Ask the endpoint (without the client's If-None-Match, so it answers with the body) and
        keep a 200; anything else is passed on to the client as it is."""
        cache = self.cache
        generation = cache.generation
        inner = {**scope, "headers": [h for h in scope["headers"] if h[0] != b"if-none-match"]}
        messages: list[Message] = []

        async def capture(message: Message) -> None:
            messages.append(message)

        with cache.pending.lead(key):
            await self.app(inner, receive, capture)
        if "route" in inner:
            scope["route"] = inner["route"]
        start, *bodies = messages
        etag = next((v for k, v in start.get("headers", ()) if k == b"etag"), None)
        if start["status"] != 200 or etag is None or len(bodies) != 1:
            for message in messages:  # an error (these routes put ETags on 200s only)
                await send(message)
            return None
        body = bytes(bodies[0].get("body", b""))
        headers = [(bytes(k), bytes(v)) for k, v in start["headers"]]
        size = len(body) + len(key[0]) + len(key[1]) + sum(len(k) + len(v) for k, v in headers)
        size += ENTRY_OVERHEAD
        entry = Entry(headers, body, etag.decode("latin-1"), inner.get("route"), size)
        if cache.generation == generation:  # nothing was written while it was read
            cache.put(key, entry)
        return entry

    @staticmethod
    async def _answer(entry: Entry, if_none_match: str | None, send: Send) -> None:
        if etag_matches(if_none_match, entry.etag):
            headers = [(k, v) for k, v in entry.headers if k not in BODYLESS]
            await send({"type": "http.response.start", "status": 304, "headers": headers})
            await send({"type": "http.response.body", "body": b""})
            return
        await send({"type": "http.response.start", "status": 200, "headers": entry.headers})
        await send({"type": "http.response.body", "body": entry.body})
