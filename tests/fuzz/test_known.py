"""Bugs the fuzzer and the malformed table found in files outside the fuzzing's ownership.

Each test states the right behaviour and is a strict xfail: when the service is fixed it passes,
the XPASS fails the run, and the marker (with the matching patch in known.py) goes.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from tests.conftest import PostgresServer, make_settings
from tests.fuzz.app import APP
from tests.fuzz.known import json_422s

SPEC: dict[str, Any] = {"dataset": {"name": "blobs"}, "optimizer": {"type": "sgd"}}
JSON = {"content-type": "application/json"}


@pytest.fixture
def api(sqlite_url: str, tmp_path: Path) -> Iterator[TestClient]:
    with TestClient(create_app(make_settings(sqlite_url, tmp_path))) as client:
        yield client


@pytest.mark.xfail(
    strict=True,
    reason="FastAPI documents its default 422 as application/json (HTTPValidationError) while "
    "service/errors.py answers application/problem+json; fix: in create_app, override "
    "app.openapi to replace every 422 (and add 404/409 where missing) with a Problem schema "
    "under application/problem+json",
)
def test_every_422_is_documented_as_problem_json() -> None:
    assert json_422s(APP.openapi()) == []


@pytest.mark.xfail(
    strict=True,
    reason="FastAPI answers an undecodable JSON body (not UTF-8, or nested past the recursion "
    "limit) with an undocumented 400 'There was an error parsing the body'; fix: in "
    "service/errors.py's HTTPException handler, answer that case as the 422 json_invalid "
    "problem that other malformed JSON already gets",
)
@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/jobs", b"\xff"),
        ("/jobs", b'{"name": "\xc3("}'),
        ("/jobs", b"[" * 2000 + b"]" * 2000),
        ("/sweeps", b"\x80"),
        ("/jobs/x/predict", b'{"X": "\xfe"}'),
    ],
)
def test_an_unparsable_json_body_is_a_422(api: TestClient, path: str, body: bytes) -> None:
    response = api.post(path, content=body, headers=JSON)
    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"][0] == "body"


@pytest.mark.xfail(
    strict=True,
    reason="blobs and spiral accept any n_train / n_val / n_test (and n_features up to 10,000), "
    "so one request can make a worker allocate terabytes; fix: in "
    "service/datasets/catalog.size_problems, bound the rows (and rows x n_features) of "
    "generated sets with a documented setting",
)
@pytest.mark.parametrize(
    "dataset",
    [
        {"name": "blobs", "n_train": 10**11},
        {"name": "blobs", "n_train": 10**6, "n_features": 10_000},
        {"name": "spiral", "n_val": 10**12},
    ],
)
def test_generated_data_sets_have_a_size_limit(api: TestClient, dataset: dict[str, Any]) -> None:
    response = api.post("/jobs", json={**SPEC, "dataset": dataset})
    assert response.status_code == 422


@pytest.mark.xfail(
    strict=True,
    reason="Starlette's 405 lists only the first matching route's methods (OPTIONS /jobs -> "
    "Allow: POST), while RFC 9110 wants every method of the resource; fix: a handler for "
    "405 in service/errors.py that collects the methods of every route matching the path",
)
def test_a_405_lists_every_method_of_the_resource(api: TestClient) -> None:
    response = api.request("OPTIONS", "/jobs")
    assert response.status_code == 405
    assert {m.strip() for m in response.headers["allow"].split(",")} >= {"GET", "POST"}


@pytest.mark.xfail(
    strict=True,
    reason="with DESCENT_API_TOKEN set every protected operation can answer 401, but the "
    "OpenAPI document declares no security scheme and no 401; fix: in create_app, add an "
    "HTTP bearer securityScheme and a 401 problem response to the protected operations",
)
def test_the_bearer_token_is_documented(sqlite_url: str, tmp_path: Path) -> None:
    app = create_app(make_settings(sqlite_url, tmp_path, api_token="t"))
    openapi = app.openapi()
    assert "securitySchemes" in openapi.get("components", {})
    assert "401" in openapi["paths"]["/jobs"]["post"]["responses"]


NUL_REQUESTS: list[tuple[str, str, Any]] = [
    ("GET", "/jobs?task=%00", None),
    ("GET", "/jobs/a%00b", None),
    ("GET", "/jobs/a%00b/loss", None),
    ("POST", "/jobs/a%00b/cancel", None),
    ("DELETE", "/jobs/a%00b", None),
    ("GET", "/datasets/a%00b", None),
    ("GET", "/sweeps/a%00b", None),
    ("POST", "/jobs", {**SPEC, "name": "a\u0000b"}),
    ("POST", "/jobs", {**SPEC, "dataset": {"id": "a\u0000b"}}),
]


@pytest.mark.xfail(
    strict=True,
    reason="PostgreSQL refuses NUL characters in text, so a NUL in a path id, a query string "
    "or a JSON string is a 500 there (psycopg DataError); fix: refuse NUL as a 422 before "
    "the database: a path/query check in an app middleware, and a before-validator on "
    "service/jobs/spec_base.Strict (and the sweep and upload form fields)",
)
def test_nul_characters_are_a_4xx_on_postgresql(
    postgres_server: PostgresServer | None, tmp_path: Path
) -> None:
    if postgres_server is None:
        pytest.skip("PostgreSQL lane off: set DESCENT_TEST_POSTGRES_URL to run it")
    url = postgres_server.fresh()
    try:
        app = create_app(make_settings(url, tmp_path))
        with TestClient(app, raise_server_exceptions=False) as client:
            statuses = {
                f"{method} {path} {body}": client.request(
                    method, path, content=None if body is None else json.dumps(body),
                    headers=JSON,
                ).status_code
                for method, path, body in NUL_REQUESTS
            }  # fmt: skip
    finally:
        postgres_server.drop(url)
    assert all(status < 500 for status in statuses.values()), statuses
