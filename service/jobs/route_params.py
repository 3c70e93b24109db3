"""What the jobs' endpoints share: the job id in the path, the polled reads' database, session
and If-None-Match header, and the error answers their documentation lists."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Depends, Header, Path, Request
from sqlalchemy.orm import Session

from service.db.session import Database
from service.jobs.spec_base import PLAIN_TEXT

JobId = Annotated[
    str, Path(min_length=1, max_length=64, pattern=PLAIN_TEXT, description="A job id.")
]
PROBLEM: dict[str, Any] = {"content": {"application/problem+json": {}}}
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "Unknown job", **PROBLEM}}


async def database_of(request: Request) -> Database:
    """The app's database, without the threadpool trip FastAPI gives a sync dependency."""
    database: Database = request.app.state.database
    return database


# The polled endpoints are async and do all their reading in one trip to the threadpool: with
# sync dependencies and a response_model to validate, FastAPI would make five trips per request.
PollDatabase = Annotated[Database, Depends(database_of)]
IfNoneMatch = Annotated[
    str | None, Header(description="An ETag from an earlier answer: 304 if nothing changed.")
]
NOT_MODIFIED: dict[int | str, dict[str, Any]] = {304: {"description": "Unchanged since the ETag"}}


def reading(database: Database, read: Callable[[Session], str]) -> str:
    """A polled endpoint's body, read in one session (run it in the threadpool)."""
    with database.read() as session:
        return read(session)
