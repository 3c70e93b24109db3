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


def _example(schema: dict[str, Any], schemas: dict[str, Any], depth: int = 0) -> Any:
    """A valid-looking instance of `schema`: its own example, its default, or one built from its
    properties (required ones and those with defaults), respecting simple bounds."""
    if depth > 8:
        return None
    if "$ref" in schema:
        return _example(schemas[schema["$ref"].rsplit("/", 1)[-1]], schemas, depth + 1)
    for key in ("examples", "example"):
        if key in schema:
            return schema[key][0] if key == "examples" else schema[key]
    if "default" in schema:
        return schema["default"]
    if "const" in schema:
        return schema["const"]
    if "enum" in schema:
        return schema["enum"][0]
    for key in ("oneOf", "anyOf"):
        options = [o for o in schema.get(key, []) if o.get("type") != "null"]
        if options:
            return _example(options[0], schemas, depth + 1)
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        properties = schema.get("properties", {})
        wanted = set(schema.get("required", [])) | {
            name for name, prop in properties.items() if "default" in prop
        }
        return {name: _example(properties[name], schemas, depth + 1) for name in properties
                if name in wanted}  # fmt: skip
    if kind == "array":
        return [_example(schema.get("items", {}), schemas, depth + 1)]
    if kind in ("integer", "number"):
        low = schema.get("minimum", schema.get("exclusiveMinimum", 0))
        value = max(low, 1) if "exclusiveMinimum" in schema else max(low, 0)
        return int(value) if kind == "integer" else float(value)
    if kind == "boolean":
        return False
    if kind == "string":
        return "string" if schema.get("format") != "date-time" else "2026-01-01T00:00:00Z"
    return None


def _add_examples(schemas: dict[str, Any]) -> None:
    for schema in schemas.values():
        if "examples" not in schema and "example" not in schema:
            schema["examples"] = [_example(schema, schemas)]


def _document(app: FastAPI, token_required: bool) -> dict[str, Any]:
    schema = get_openapi(
        title=app.title, version=app.version, description=app.description, routes=app.routes
    )
    components = schema.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    schemas["Problem"] = PROBLEM_SCHEMA
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    _add_examples(schemas)
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
