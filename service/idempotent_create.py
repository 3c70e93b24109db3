"""The web half of Idempotency-Key: run a create endpoint at most once per key, as a response.

The key's rules and its table are in service.idempotency (which the worker also loads, to prune
expired keys); this module adds the JSONResponse the routers return.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Header
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session

from service.db.session import Database
from service.idempotency import abandon, claim, complete

Created = tuple[Any, dict[str, str]]  # the response body and headers of a created resource

# The header of a create that honours Idempotency-Key (POST /jobs, POST /sweeps).
IdempotencyKey = Annotated[
    str | None,
    Header(description="Makes retries safe: the same key and body replay the first response."),
]


def create_once(
    database: Database,
    scope: str,
    key: str | None,
    body: Any,
    ttl: float,
    create: Callable[[Session], Created],
    status: int = 202,
) -> JSONResponse:
    """Run `create` in a write transaction at most once per key, replaying its first response.

    Without a key it simply runs. With one, the stored response is replayed, a request in flight
    is a 409 and another body a 422 (see `claim`).
    """
    if key is not None:
        stored = claim(database, scope, key, body, ttl)
        if stored is not None:
            return JSONResponse(stored.body, status_code=stored.status, headers=stored.headers)
    try:
        with database.write() as session:
            out, headers = create(session)
            if key is not None:
                complete(session, scope, key, status, out, headers)
            session.commit()
    except Exception:
        if key is not None:
            abandon(database, scope, key)
        raise
    return JSONResponse(out, status_code=status, headers=headers)
