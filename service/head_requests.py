"""HEAD answers like GET without a body, on every route that answers GET (RFC 9110 9.3.2).

FastAPI routes declared with GET do not answer HEAD, while the 405's Allow header (and the HTTP
contract) says they do. Rather than declaring HEAD on every route, which would double each GET in
the OpenAPI document, a HEAD that only a GET route matches is passed on as that GET and its body
is dropped. A streamed body (an event stream) ends at its first chunk, as if the client had gone:
a HEAD never holds a stream open.
"""

from __future__ import annotations

from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send


def _matched(scope: Scope) -> bool:
    """Whether some route of the app takes this request as it is (method included)."""
    return any(route.matches(scope)[0] is Match.FULL for route in scope["app"].router.routes)


class HeadAsGet:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD" or _matched(scope):
            await self.app(scope, receive, send)
            return
        as_get = {**scope, "method": "GET"}
        if not _matched(as_get):
            await self.app(scope, receive, send)  # the 404 or 405 a HEAD gets
            return
        answered = False

        async def head_only(message: Message) -> None:
            nonlocal answered
            if message["type"] == "http.response.start":
                await send(message)
                await send({"type": "http.response.body", "body": b"", "more_body": False})
                answered = True
            elif message["type"] == "http.response.body" and message.get("more_body", False):
                raise OSError("HEAD: the body is not sent")  # what a gone client raises (ASGI 2.4)

        async def gone_once_answered() -> Message:
            if answered:
                return {"type": "http.disconnect"}
            return await receive()

        await self.app(as_get, gone_once_answered, head_only)
