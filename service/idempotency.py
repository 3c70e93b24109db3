"""Idempotency-Key for POST endpoints (IETF draft "The Idempotency-Key HTTP Header Field").

- The first request with a key stores the key as in flight, then stores its response in the same
  transaction that creates the resource, so the key and the resource exist together or not at all.
- The same key and body again: the first response is replayed (same status, same body).
- The same key while the first request is still in flight: 409.
- The same key with another body: 422.
- Deleting the resource forgets its key (`forget`): the same key then creates it anew.
Keys expire after DESCENT_IDEMPOTENCY_TTL_SECONDS. A key left in flight by a crashed request is
taken over after IN_FLIGHT_TIMEOUT.

Plain database functions with no web import, because the worker's maintenance prunes the keys;
the endpoints use them through service.idempotent_create, which builds the responses.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from service.db.base import utcnow
from service.db.models import IdempotencyKey
from service.db.session import Database
from service.errors import Conflict, InvalidInput

IN_FLIGHT_TIMEOUT = timedelta(seconds=60)
MAX_KEY_LENGTH = 255


@dataclass(frozen=True)
class StoredResponse:
    status: int
    body: Any
    headers: dict[str, str]


def request_hash(body: Any) -> str:
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _claim_once(
    database: Database, scope: str, key: str, digest: str, ttl: float
) -> StoredResponse | None:
    now = utcnow()
    with database.write() as session:
        row = session.get(IdempotencyKey, (scope, key), with_for_update=True)
        if row is not None and row.expires_at < now:
            session.delete(row)
            session.flush()
            row = None
        if row is None:
            session.add(
                IdempotencyKey(
                    scope=scope,
                    key=key,
                    request_hash=digest,
                    state="in_flight",
                    created_at=now,
                    expires_at=now + timedelta(seconds=ttl),
                )
            )
            session.commit()
            return None
        if row.request_hash != digest:
            raise InvalidInput(
                "This Idempotency-Key was used with a different request body",
                [(("header", "Idempotency-Key"), "reused with a different body")],
            )
        if row.state == "done":
            return StoredResponse(
                row.response_status or 200, row.response_body, dict(row.response_headers or {})
            )
        if now - row.created_at > IN_FLIGHT_TIMEOUT:
            row.created_at = now  # the first request died: this one takes over
            session.commit()
            return None
        raise Conflict("A request with this Idempotency-Key is still being processed")


def claim(database: Database, scope: str, key: str, body: Any, ttl: float) -> StoredResponse | None:
    """None: go ahead (the key is now in flight). A StoredResponse: replay it. Raises 409/422."""
    if not key or len(key) > MAX_KEY_LENGTH:
        raise InvalidInput(
            "Invalid Idempotency-Key",
            [(("header", "Idempotency-Key"), f"must be 1 to {MAX_KEY_LENGTH} characters")],
        )
    digest = request_hash(body)
    try:
        return _claim_once(database, scope, key, digest, ttl)
    except IntegrityError:
        # Another request inserted the same key at the same moment: it is the first one.
        return _claim_once(database, scope, key, digest, ttl)


def complete(
    session: Session, scope: str, key: str, status: int, body: Any, headers: dict[str, str]
) -> None:
    """Store the response in the caller's transaction (the one that creates the resource)."""
    row = session.get(IdempotencyKey, (scope, key))
    if row is None:
        raise Conflict("The Idempotency-Key expired while the request was processed")
    row.state = "done"
    row.response_status = status
    row.response_body = body
    row.response_headers = headers


def abandon(database: Database, scope: str, key: str) -> None:
    """Forget an in-flight key whose request failed, so that a retry can run."""
    with database.write() as session:
        session.execute(
            delete(IdempotencyKey).where(
                IdempotencyKey.scope == scope,
                IdempotencyKey.key == key,
                IdempotencyKey.state == "in_flight",
            )
        )
        session.commit()


def forget(session: Session, scope: str, *resource_ids: str) -> None:
    """Drop the keys whose stored response created one of `resource_ids`, in the caller's
    transaction (the one that deletes the resources): a replay of such a key then runs its
    request again instead of answering with a resource that no longer exists."""
    session.execute(
        delete(IdempotencyKey)
        .where(
            IdempotencyKey.scope == scope,
            IdempotencyKey.response_body["id"].as_string().in_(resource_ids),
        )
        .execution_options(synchronize_session=False)
    )


def prune(session: Session) -> int:
    stmt = delete(IdempotencyKey).where(IdempotencyKey.expires_at < utcnow())
    return int(session.execute(stmt).rowcount)  # type: ignore[attr-defined]
