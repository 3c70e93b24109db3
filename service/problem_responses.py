"""RFC 9457 problem+json responses, and the exception handlers that answer with them.

The web half of service.errors: the domain errors stay plain exceptions there, and are turned into
responses here, registered once on the app.
"""

from __future__ import annotations

import json
import logging
import re
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError
from starlette.exceptions import HTTPException as StarletteHTTPException

from service.errors import DomainError

PROBLEM_JSON = "application/problem+json"
# The logger keeps the name it had before the split, so log filters and dashboards still match.
log = logging.getLogger("descent.errors")


class ProblemResponse(JSONResponse):
    """application/problem+json, every character outside ASCII escaped: a problem may quote what
    the client sent, and a lone surrogate (valid in a JSON string, "\\ud800") has no UTF-8 form."""

    media_type = PROBLEM_JSON

    def render(self, content: Any) -> bytes:
        return json.dumps(content, allow_nan=False, separators=(",", ":")).encode("ascii")


def problem(status: int, detail: str, *, slug: str | None = None, **extra: Any) -> JSONResponse:
    title = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Error"
    body = {
        "type": f"/problems/{slug}" if slug else "about:blank",
        "title": title,
        "status": status,
        "detail": detail,
        **extra,
    }
    return ProblemResponse(jsonable_encoder(body), status_code=status)


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


def _is_multipart(request: Request) -> bool:
    return request.headers.get("content-type", "").lower().startswith("multipart/")


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def _domain(_request: Request, exc: DomainError) -> JSONResponse:
        response = problem(exc.status, exc.detail, slug=exc.slug, **exc.extra())
        response.headers.update(exc.headers())
        return response

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
        if exc.status_code == 400 and _is_multipart(request):
            # Starlette's answer to a form it cannot parse (no boundary, a truncated part, too
            # many parts): a malformed body, answered like malformed JSON, with the parser's words.
            errors = [{"loc": ["body"], "msg": str(exc.detail), "type": "multipart_invalid"}]
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
