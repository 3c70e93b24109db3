"""What the jobs' endpoints share: the job id in the path, the If-None-Match header, and the error
answers their documentation lists."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Header, Path

from service.jobs.spec_base import PLAIN_TEXT

JobId = Annotated[
    str, Path(min_length=1, max_length=64, pattern=PLAIN_TEXT, description="A job id.")
]
PROBLEM: dict[str, Any] = {"content": {"application/problem+json": {}}}
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "Unknown job", **PROBLEM}}


IfNoneMatch = Annotated[
    str | None, Header(description="An ETag from an earlier answer: 304 if nothing changed.")
]
NOT_MODIFIED: dict[int | str, dict[str, Any]] = {304: {"description": "Unchanged since the ETag"}}
