"""Bearer-token authentication for the whole API (DESCENT_API_TOKEN), as ASGI middleware.

With no token configured the API is open. With one, every request needs
`Authorization: Bearer <token>` except the probes, the API description and the dashboard's page
and static files (the page asks for the token and sends it with its API calls). The comparison is
constant-time.
"""

from __future__ import annotations

import hmac

from starlette.types import ASGIApp, Receive, Scope, Send

from service.problem_responses import problem

PUBLIC_PATHS = frozenset({"/", "/healthz", "/readyz", "/openapi.json", "/docs", "/redoc"})
PUBLIC_PREFIXES = ("/static/",)  # the dashboard's files and the docs pages' (service.api_docs)


def is_public(path: str) -> bool:
    return path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES)


def token_matches(header: bytes, token: str) -> bool:
    """Whether an Authorization header is "Bearer <token>", compared as bytes: the token as its
    UTF-8 encoding, which is what a client sends for a token outside ASCII."""
    scheme, _, credentials = header.partition(b" ")
    return scheme.lower() == b"bearer" and hmac.compare_digest(
        credentials.strip(), token.encode()
    )


class BearerAuth:
    def __init__(self, app: ASGIApp, token: str | None) -> None:
        self.app = app
        self.token = token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.token or is_public(scope["path"]):
            await self.app(scope, receive, send)
            return
        header = dict(scope["headers"]).get(b"authorization", b"")
        if token_matches(header, self.token):
            await self.app(scope, receive, send)
            return
        detail = "A valid 'Authorization: Bearer <token>' header is required"
        response = problem(401, detail, slug="unauthorized")
        response.headers["WWW-Authenticate"] = 'Bearer realm="descent"'
        await response(scope, receive, send)
