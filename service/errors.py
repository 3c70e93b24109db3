"""Domain errors and their RFC 9457 problem+json rendering, registered once on the app."""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError
from starlette.exceptions import HTTPException as StarletteHTTPException

PROBLEM_JSON = "application/problem+json"
log = logging.getLogger("descent.errors")


class DomainError(Exception):
    """Base of the errors the service raises on purpose; each maps to one HTTP status."""

    status: int = 400
    slug: str = "bad-request"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail

    def extra(self) -> dict[str, Any]:
        return {}


class NotFound(DomainError):
    status, slug = 404, "not-found"


class Conflict(DomainError):
    status, slug = 409, "conflict"


class PayloadTooLarge(DomainError):
    status, slug = 413, "payload-too-large"


class UnsupportedMediaType(DomainError):
    status, slug = 415, "unsupported-media-type"


class InsufficientStorage(DomainError):
    """The storage quota or the disk is full: a capacity fault, not the client's error."""

    status, slug = 507, "insufficient-storage"


class InvalidInput(DomainError):
    """A 422 naming the fields at fault, in the same shape as pydantic's own errors."""

    status, slug = 422, "validation-error"

    def __init__(self, detail: str, errors: Sequence[tuple[Sequence[str | int], str]]) -> None:
        super().__init__(detail)
        self.errors = [{"loc": list(loc), "msg": msg, "type": "value_error"} for loc, msg in errors]

    def extra(self) -> dict[str, Any]:
        return {"errors": self.errors}


def problem(status: int, detail: str, *, slug: str | None = None, **extra: Any) -> JSONResponse:
    title = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Error"
    body = {
        "type": f"/problems/{slug}" if slug else "about:blank",
        "title": title,
        "status": status,
        "detail": detail,
        **extra,
    }
    return JSONResponse(jsonable_encoder(body), status_code=status, media_type=PROBLEM_JSON)


def _validation_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    errors = []
    for error in exc.errors():
        item = {
            "loc": list(error.get("loc", ())),
            "msg": error.get("msg", ""),
            "type": error.get("type", ""),
        }
        errors.append(item)
    return errors


def _method_not_allowed(request: Request, fallback: str) -> JSONResponse:
    """405 with an Allow header naming every method of the resource (RFC 9110), not one route's.

    The methods come from the OpenAPI document's path templates that match the request's path.
    """
    allowed: set[str] = set()
    for template, item in request.app.openapi().get("paths", {}).items():
        pattern = "^" + re.sub(r"\\{[^/]+?\\}", "[^/]+", re.escape(template)) + "$"
        if re.match(pattern, request.url.path):
            allowed |= {method.upper() for method in item}
    if "GET" in allowed:
        allowed.add("HEAD")
    response = problem(405, "Method Not Allowed")
    response.headers["Allow"] = ", ".join(sorted(allowed)) if allowed else fallback
    return response


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def _domain(_request: Request, exc: DomainError) -> JSONResponse:
        return problem(exc.status, exc.detail, slug=exc.slug, **exc.extra())

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = _validation_errors(exc)
        fields = ", ".join(".".join(str(p) for p in e["loc"]) for e in errors[:5])
        return problem(422, f"Invalid request: {fields}", slug="validation-error", errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400 and str(exc.detail).startswith("There was an error parsing"):
            # FastAPI's answer to a body it cannot decode (not UTF-8, nested too deeply): the
            # same 422 as any other malformed JSON.
            errors = [{"loc": ["body"], "msg": "Invalid JSON body", "type": "json_invalid"}]
            return problem(422, "Invalid request: body", slug="validation-error", errors=errors)
        if exc.status_code == 405:
            return _method_not_allowed(request, (exc.headers or {}).get("Allow", ""))
        response = problem(exc.status_code, str(exc.detail))
        if exc.headers:
            response.headers.update(exc.headers)
        return response

    @app.exception_handler(DataError)
    async def _data(_request: Request, exc: DataError) -> JSONResponse:
        # The database refused a value (PostgreSQL: a NUL character in text): the client's input.
        log.info("database refused a value: %s", exc.orig)
        detail = "The request holds a value the database cannot store (such as a NUL character)"
        return problem(422, detail, slug="validation-error", errors=[])

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem(500, "Internal server error", slug="internal-error")
