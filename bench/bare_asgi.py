"""An ASGI app that does nothing: every GET gets the same 304 (bench.dashboard_load's floor).

Served by the same uvicorn as `descent serve` (uvloop, httptools), it measures what the HTTP
server and the load generator cost per poll before any of Descent's code runs:

    python -m uvicorn bench.bare_asgi:app --port 8792 --no-access-log
"""

from __future__ import annotations

from starlette.types import Receive, Scope, Send

HEADERS = [(b"etag", b'W/"0123456789abcdef01234567"'), (b"cache-control", b"no-cache")]


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 304, "headers": HEADERS})
    await send({"type": "http.response.body", "body": b""})
