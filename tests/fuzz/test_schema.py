"""Property-based fuzzing of every operation in /openapi.json (schemathesis, on the ASGI app).

Each operation gets a bounded number of generated requests, valid and invalid (schemathesis'
positive and negative modes, plus its boundary-value coverage phase). Every answer must be:
not a 5xx; a documented status code, content type, header set and body (the response schema);
and on an error, an RFC 9457 problem (see `problem_json`).

`DESCENT_FUZZ_EXAMPLES` raises the examples per operation for a deeper run (the default keeps the
module short enough for every `make test`); runs are derandomized, so CI sees the same requests.
"""

from __future__ import annotations

import os
from typing import Any

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import checks

from tests.fuzz.app import APP

EXAMPLES = int(os.environ.get("DESCENT_FUZZ_EXAMPLES", "20"))

schema = schemathesis.openapi.from_dict(APP.openapi())
schema.app = APP
schema.location = "/openapi.json"


def problem_json(ctx: Any, response: schemathesis.Response, case: schemathesis.Case[Any]) -> bool:
    """Every 4xx/5xx is application/problem+json with type, title, status and detail; a 422
    names each bad field in `errors` ({loc: [...], msg})."""
    if response.status_code < 400:
        return True
    content_type = response.headers.get("content-type", [""])[0]
    assert content_type.startswith("application/problem+json"), content_type
    body = response.json()
    assert isinstance(body, dict)
    assert {"type", "title", "status", "detail"} <= body.keys(), body
    assert body["status"] == response.status_code
    assert isinstance(body["detail"], str)
    assert body["detail"]
    if response.status_code == 422:
        errors = body["errors"]
        assert errors
        for error in errors:
            assert isinstance(error["loc"], list)
            assert error["loc"]
            assert isinstance(error["msg"], str)
    return True


CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_headers_conformance,
    checks.response_schema_conformance,
    checks.negative_data_rejection,
    problem_json,
]


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_api(case: schemathesis.Case[Any]) -> None:
    case.call_and_validate(checks=CHECKS, timeout=10)
