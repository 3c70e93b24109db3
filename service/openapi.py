"""The OpenAPI document as the API really answers: problem+json errors, and the bearer token.

FastAPI documents its validation errors as application/json (HTTPValidationError); this service
answers every error as RFC 9457 application/problem+json, so the document says so. With
DESCENT_API_TOKEN set, the protected operations declare the bearer scheme and their 401.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from service.auth import is_public

PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "type": "object",
    "description": "RFC 9457 problem details; 422s also list each bad field in `errors`.",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string", "examples": ["/problems/validation-error"]},
        "title": {"type": "string", "examples": ["Unprocessable Entity"]},
        "status": {"type": "integer", "examples": [422]},
        "detail": {"type": "string", "examples": ["Invalid request: body.optimizer"]},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["loc", "msg"],
                "properties": {
                    "loc": {"type": "array", "items": {"anyOf": [{"type": "string"},
                                                                 {"type": "integer"}]}},
                    "msg": {"type": "string"},
                    "type": {"type": "string"},
                },
            },
        },
    },
}  # fmt: skip
PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
PROBLEM_CONTENT = {"application/problem+json": {"schema": PROBLEM_REF}}


def _document(app: FastAPI, token_required: bool) -> dict[str, Any]:
    schema = get_openapi(
        title=app.title, version=app.version, description=app.description, routes=app.routes
    )
    components = schema.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    schemas["Problem"] = PROBLEM_SCHEMA
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    if token_required:
        components["securitySchemes"] = {
            "bearer": {"type": "http", "scheme": "bearer", "description": "DESCENT_API_TOKEN"}
        }
    for path, item in schema.get("paths", {}).items():
        for operation in item.values():
            responses = operation.setdefault("responses", {})
            for code, response in responses.items():
                if code.startswith(("4", "5")):
                    response["content"] = PROBLEM_CONTENT
            if token_required and not is_public(path):
                operation["security"] = [{"bearer": []}]
                responses["401"] = {"description": "Missing or wrong bearer token",
                                    "content": PROBLEM_CONTENT}  # fmt: skip
    return schema


def install(app: FastAPI, *, token_required: bool) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = _document(app, token_required)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
