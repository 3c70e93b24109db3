"""Retry a worker transaction when the database says "try again" (lock contention, deadlock).

SQLite waits up to its busy timeout for a lock and PostgreSQL can abort one side of a deadlock;
either way the whole transaction is safe to run again, so no point or checkpoint is lost.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session

from service.db.session import Database

T = TypeVar("T")
log = logging.getLogger("descent.retry")
RETRYABLE_PGCODES = {"40001", "40P01", "55P03"}  # serialization failure, deadlock, lock timeout


def is_retryable(exc: DBAPIError) -> bool:
    if isinstance(exc, OperationalError) and any(
        word in str(exc.orig).lower() for word in ("locked", "busy")
    ):
        return True
    return getattr(exc.orig, "sqlstate", None) in RETRYABLE_PGCODES


def in_transaction(
    database: Database, work: Callable[[Session], T], *, attempts: int = 8, backoff: float = 0.05
) -> T:
    """Run `work` in a write transaction, again from the start if it hits a retryable error."""
    for attempt in range(1, attempts + 1):
        try:
            with database.transaction() as session:
                return work(session)
        except DBAPIError as exc:
            if attempt == attempts or not is_retryable(exc):
                raise
            log.warning("retrying a transaction after %s (attempt %d)", exc.orig, attempt)
            time.sleep(backoff * 2 ** (attempt - 1))
    raise AssertionError("unreachable")


def describe(exc: BaseException) -> str:
    """ "Type: message" for a job's error; a database error without its (possibly huge) SQL."""
    if isinstance(exc, DBAPIError) and exc.orig is not None:
        return f"{type(exc.orig).__name__}: {exc.orig}"
    return f"{type(exc).__name__}: {exc}"
