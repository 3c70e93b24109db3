"""A client that goes away in the middle of an event stream is not a server error.

When a client drops an event stream, FastAPI's SSE machinery can be caught forwarding an event to
the stream it has just closed: anyio raises BrokenResourceError (or ClosedResourceError), wrapped
in an ExceptionGroup by the stream's task group, after the response has started. Nothing is lost
(the client is gone, the stream's reads end with it), but unhandled it would be logged as an error
with its traceback for every such disconnect, and a client could fill the log by reconnecting.
EventStreamRoute, the route class of GET /jobs/{id}/events, drops exactly those: raised after
the response started, made only of those two errors. Anything else, or anything before the
response started, goes on as before; no other route pays for the check.
"""

from __future__ import annotations

import logging

import anyio
from fastapi.routing import APIRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("descent.errors")
GONE = (anyio.BrokenResourceError, anyio.ClosedResourceError)


def client_gone(exc: BaseException) -> bool:
    """Whether exc is one of GONE, or a group (however nested) made of nothing else."""
    if isinstance(exc, BaseExceptionGroup):
        return all(client_gone(inner) for inner in exc.exceptions)
    return isinstance(exc, GONE)


async def serve_stream(app: ASGIApp, scope: Scope, receive: Receive, send: Send) -> None:
    """`app` on this request, a client's leaving after the response started dropped."""
    started = False

    async def tracked(message: Message) -> None:
        nonlocal started
        if message["type"] == "http.response.start":
            started = True
        await send(message)

    try:
        await app(scope, receive, tracked)
    except BaseException as exc:
        if not (started and client_gone(exc)):
            raise
        log.debug("client went away during %s %s", scope.get("method"), scope.get("path"))


class EventStreamRoute(APIRoute):
    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        await serve_stream(super().handle, scope, receive, send)
