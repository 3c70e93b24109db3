"""Helpers that read the served /openapi.json for test_known.py."""

from __future__ import annotations

from typing import Any


def operations(openapi: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, operation)
        for path, item in openapi["paths"].items()
        for method, operation in item.items()
        if method in ("get", "post", "put", "patch", "delete")
    ]


def json_422s(openapi: dict[str, Any]) -> list[str]:
    """Operations whose 422 is documented as application/json (FastAPI's HTTPValidationError),
    while the service answers every 422 as application/problem+json."""
    return [
        f"{method} {path}"
        for method, path, operation in operations(openapi)
        if "application/json" in operation.get("responses", {}).get("422", {}).get("content", {})
    ]
