"""FastAPI dependencies: the app's settings and database, and a session per request."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from service.db.session import Database
from service.errors import UnsupportedMediaType
from service.settings import Settings


def get_app_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_database(request: Request) -> Database:
    database: Database = request.app.state.database
    return database


def read_session(database: Annotated[Database, Depends(get_database)]) -> Iterator[Session]:
    with database.read() as session:
        yield session


def write_session(database: Annotated[Database, Depends(get_database)]) -> Iterator[Session]:
    """A write session. Endpoints commit before they answer, so a 2xx means the data is stored."""
    with database.write() as session:
        yield session


SettingsDep = Annotated[Settings, Depends(get_app_settings)]
DatabaseDep = Annotated[Database, Depends(get_database)]
ReadSession = Annotated[Session, Depends(read_session)]
WriteSession = Annotated[Session, Depends(write_session)]


def json_content(request: Request) -> None:
    """A route whose body is JSON refuses any other media type with a 415, before reading it (a
    route dependency runs before the body is validated)."""
    media_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if media_type == "application/json" or (
        media_type.startswith("application/") and media_type.endswith("+json")
    ):
        return
    given = media_type or "no Content-Type"
    raise UnsupportedMediaType(f"The body must be application/json, not {given}")


JSON_BODY = [Depends(json_content)]
# How the OpenAPI document describes that answer on those routes.
UNSUPPORTED_MEDIA_TYPE: dict[int | str, dict[str, Any]] = {
    415: {
        "description": "The body is not application/json",
        "content": {"application/problem+json": {}},
    }
}
