"""Known mismatches between the served /openapi.json and what the API answers, patched into the
copy of the schema the fuzzer reads, so that it keeps checking everything else.

Each patch has a strict xfail in test_known.py that asserts the served schema is right; when the
service is fixed, that test passes, fails as XPASS, and the patch and the xfail go together.
"""

from __future__ import annotations

import copy
from typing import Any

PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["loc", "msg"],
                "properties": {"loc": {"type": "array"}, "msg": {"type": "string"}},
            },
        },
    },
}
PROBLEM_CONTENT = {"application/problem+json": {"schema": PROBLEM_SCHEMA}}


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


def patched_openapi(served: dict[str, Any]) -> dict[str, Any]:
    """The served schema with the two known gaps filled in, as the fuzzer should see it:
    every 422 is a problem+json, and a JSON body that cannot be parsed (not UTF-8, nested past
    Python's recursion limit) may get FastAPI's 400 until the service turns it into a 422."""
    openapi = copy.deepcopy(served)
    for _, _, operation in operations(openapi):
        responses = operation.setdefault("responses", {})
        if "422" in responses:
            responses["422"]["content"] = copy.deepcopy(PROBLEM_CONTENT)
        body = operation.get("requestBody", {}).get("content", {})
        if "application/json" in body and "400" not in responses:
            responses["400"] = {"description": "Unparsable body", "content": PROBLEM_CONTENT}
    return openapi
