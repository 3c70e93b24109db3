"""bench.dashboard_load's load generator, and the app of its floor.

Pollers and SSE subscribers on one uvloop process: the pollers revalidate with If-None-Match, as
a browser does, through a bare keep-alive HTTP/1.1 protocol (the generator shares the cores with
the server and the jobs, and httpx would spend several times the server's CPU per request); the
subscribers count their streams' `event:` lines unparsed.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections import defaultdict
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar, cast

import httpx
import uvloop

from bench.common import REPO, answers, free_port, started

if TYPE_CHECKING:
    from starlette.types import Receive, Scope, Send

POLL_SECONDS = 0.2
T = TypeVar("T")
Samples = dict[str, list[float]]  # seconds per answer by route, and one 0.0 per answer by status


def _header(head: bytes, name: bytes) -> bytes:
    """The value of header `name` (lower-case) in a response head ending in CRLF, or b""."""
    at = head.lower().find(b"\r\n" + name + b":")
    if at < 0:
        return b""
    start = at + len(name) + 3
    return head[start : head.find(b"\r\n", start)].strip()


class Connection(asyncio.Protocol):
    """A keep-alive HTTP/1.1 connection for GETs whose answers carry a Content-Length (no stream
    objects, no headers parsed but the two it needs)."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.waiter: asyncio.Future[tuple[int, bytes, bytes]] | None = None

    @classmethod
    async def open(cls, base: str) -> Connection:
        url = httpx.URL(base)
        loop = asyncio.get_running_loop()
        _, protocol = await loop.create_connection(cls, url.host, url.port or 80)
        return protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's are not subclasses

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0 or self.waiter is None:
            return
        head = bytes(self.buffer[: end + 2])
        length = int(_header(head, b"content-length") or 0)
        if len(self.buffer) < end + 4 + length:
            return
        body = bytes(self.buffer[end + 4 : end + 4 + length])
        del self.buffer[: end + 4 + length]
        if not self.waiter.done():
            self.waiter.set_result((int(head[9:12]), _header(head, b"etag"), body))

    def connection_lost(self, exc: Exception | None) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(exc or ConnectionError("connection closed"))

    async def get(self, target: str, etag: bytes | None) -> tuple[int, bytes, bytes]:
        """(status, the ETag header or b"", body) of GET target, revalidating `etag`."""
        assert self.transport is not None
        if self.transport.is_closing():
            raise ConnectionError("connection closed")
        self.waiter = asyncio.get_running_loop().create_future()
        revalidate = b"If-None-Match: " + etag + b"\r\n" if etag else b""
        self.transport.write(
            b"GET " + target.encode() + b" HTTP/1.1\r\nHost: bench\r\n" + revalidate + b"\r\n"
        )
        return await self.waiter

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


def next_after(body: bytes) -> int | None:
    """A loss page's `next_after`, read off the end of the body without parsing the points
    (the page ends with `"next_after":<step or null>,"total":<n>}`)."""
    value = body[body.rindex(b'"next_after":') + len(b'"next_after":') :].split(b",", 1)[0]
    return None if value == b"null" else int(value)


async def poller(
    base: str, job_id: str, until: float, samples: Samples, after: int = -1, phase: float = 0.0
) -> int:
    """GET the job and its loss points after `after` every 200 ms until `until`, following the
    cursor, the first time `phase` seconds from now; returns the errors seen."""
    errors = 0
    etags: dict[str, bytes] = {}
    connection = await Connection.open(base)
    next_tick = time.monotonic() + phase
    await asyncio.sleep(phase)
    while time.monotonic() < until:
        for name, target in (("job", f"/jobs/{job_id}"), ("loss", f"/jobs/{job_id}/loss")):
            target += f"?after={after}" if name == "loss" else ""
            start = time.perf_counter()
            try:
                status, etag, body = await connection.get(target, etags.get(target))
            except (OSError, ValueError):
                errors += 1
                connection.close()
                connection = await Connection.open(base)
                continue
            samples[name].append(time.perf_counter() - start)
            samples[f"{name} {status}"].append(0.0)
            if status not in (200, 304):
                errors += 1
            if status == 200 and etag:
                etags[target] = etag
            if status == 200 and name == "loss":
                cursor = next_after(body)
                after = after if cursor is None else cursor
        next_tick += POLL_SECONDS
        await asyncio.sleep(max(0.0, next_tick - time.monotonic()))
    connection.close()
    return errors


async def subscriber(base: str, job_id: str, position: int, until: float) -> str:
    """Follow the job's events until `until`; the number of events received (and why the stream
    was cut short, if it was)."""
    url = httpx.URL(base)
    events, tail = 0, b""
    try:
        reader, writer = await asyncio.open_connection(url.host, url.port or 80)
    except OSError as error:
        return f"0 (cut: {type(error).__name__})"
    writer.write(
        f"GET /jobs/{job_id}/events HTTP/1.1\r\nHost: bench\r\nAccept: text/event-stream\r\n"
        f"Last-Event-ID: {position}\r\n\r\n".encode()
    )
    try:
        async with asyncio.timeout(max(0.0, until - time.monotonic())):
            while chunk := await reader.read(65536):
                events += (tail + chunk).count(b"\nevent:")
                tail = chunk[-6:]  # an "event:" line split between two reads counts once
    except TimeoutError:
        pass
    except OSError as error:  # an overloaded server: say so instead of dying
        return f"{events} (cut: {type(error).__name__})"
    finally:
        writer.close()
    return str(events)


async def load(
    base: str, ids: list[str], positions: list[int], *, seconds: float, clients: int,
    subscribers: int,
) -> tuple[Samples, int, list[str]]:  # fmt: skip
    """`clients` pollers and `subscribers` event streams for `seconds`, spread over the jobs, each
    following its job from `positions`. Returns the samples, the pollers' errors and each
    subscriber's count of events."""
    until = time.monotonic() + seconds
    samples: Samples = defaultdict(list)
    # Independent clients are not in step: their 200 ms cycles start spread over one period.
    spread = POLL_SECONDS / clients
    pollers = [poller(base, ids[i % len(ids)], until, samples, positions[i % len(ids)], i * spread)
               for i in range(clients)]  # fmt: skip
    streams = [subscriber(base, ids[i % len(ids)], positions[i % len(ids)], until)
               for i in range(subscribers)]  # fmt: skip
    errors, events = await asyncio.gather(asyncio.gather(*pollers), asyncio.gather(*streams))
    return samples, sum(errors), list(events)


def run(main: Coroutine[Any, Any, T]) -> T:
    """Run the load on uvloop, as the server does: the generator shares the cores with it."""
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main)


BARE_HEADERS = [(b"etag", b'W/"0123456789abcdef01234567"'), (b"cache-control", b"no-cache")]


async def bare_app(scope: Scope, receive: Receive, send: Send) -> None:
    """An ASGI app that does nothing: every request gets the same 304. Served by the same uvicorn
    as `descent serve`, it shows what the HTTP server and the load generator cost per poll before
    any of Descent's code runs."""
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
    elif scope["type"] == "http":
        await send({"type": "http.response.start", "status": 304, "headers": BARE_HEADERS})
        await send({"type": "http.response.body", "body": b""})


@contextmanager
def bare_server() -> Iterator[tuple[str, int]]:
    """(base URL, pid) of uvicorn serving `bare_app`, as `descent serve` runs uvicorn (its default
    loop and parser: uvloop and httptools)."""
    port = free_port()
    command = [sys.executable, "-m", "uvicorn", "bench.pollers:bare_app", "--port", str(port),
               "--no-access-log", "--log-level", "warning"]  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    with started(command, lambda: answers(base, 304), env=dict(os.environ), cwd=REPO) as pid:
        yield base, pid
