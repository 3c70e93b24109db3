"""Bound what a request body may cost while it arrives, before anything parses it.

A pure ASGI middleware with two limits, each answered with a problem and the application never
seeing the rest of the body:
- size (413): an upload (POST /datasets) may take DESCENT_MAX_UPLOAD_BYTES, any other body (the
  JSON ones) DESCENT_MAX_JSON_BYTES. A declared Content-Length over the limit is refused before a
  byte is read; a body without one (chunked) is counted as it streams in and cut off as soon as
  the count passes the limit.
- time (408): the whole body must arrive within DESCENT_REQUEST_BODY_TIMEOUT_SECONDS, so a
  client that trickles it (or stops sending) cannot hold a request open.
"""

from __future__ import annotations

import anyio
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.problem_responses import problem

UPLOAD = ("POST", "/datasets")


class _Refused(Exception):
    def __init__(self, status: int, detail: str, slug: str) -> None:
        super().__init__(detail)
        self.status, self.detail, self.slug = status, detail, slug


class RequestBodyLimits:
    def __init__(
        self, app: ASGIApp, *, upload_bytes: int, json_bytes: int, timeout_seconds: float
    ) -> None:
        self.app = app
        self.upload_bytes = upload_bytes
        self.json_bytes = json_bytes
        self.timeout_seconds = timeout_seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if (scope["method"], scope["path"]) == UPLOAD:
            limit, setting = self.upload_bytes, "DESCENT_MAX_UPLOAD_BYTES"
        else:
            limit, setting = self.json_bytes, "DESCENT_MAX_JSON_BYTES"
        too_large = _Refused(
            413, f"The request body exceeds the {limit}-byte limit ({setting})", "payload-too-large"
        )
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await self._answer(too_large, scope, receive, send)
            return
        deadline = anyio.current_time() + self.timeout_seconds
        received = 0
        refused: _Refused | None = None
        started = False

        async def guarded_receive() -> Message:
            nonlocal received, refused
            if refused is not None:
                return {"type": "http.disconnect"}
            with anyio.move_on_after(deadline - anyio.current_time()) as waited:
                message = await receive()
            if waited.cancelled_caught:
                refused = _Refused(
                    408,
                    f"The request body did not arrive within {self.timeout_seconds} s "
                    "(DESCENT_REQUEST_BODY_TIMEOUT_SECONDS)",
                    "request-timeout",
                )
                raise refused
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    refused = too_large
                    raise refused
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if refused is not None:
                return  # whatever the app answers to a refused body, the answer is the refusal
            started = True
            await send(message)

        try:
            await self.app(scope, guarded_receive, guarded_send)
        except _Refused:
            pass
        except Exception:
            if refused is None:
                raise
        if refused is not None and not started:
            await self._answer(refused, scope, receive, send)

    @staticmethod
    async def _answer(refused: _Refused, scope: Scope, receive: Receive, send: Send) -> None:
        await problem(refused.status, refused.detail, slug=refused.slug)(scope, receive, send)
