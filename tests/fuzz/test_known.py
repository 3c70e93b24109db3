"""Known cases the fuzzer and the malformed table cover, pinned as plain tests:
errors documented as problem+json, undecodable bodies as 422, bounded generated data sets,
complete Allow headers, the bearer scheme in the OpenAPI document, and NUL characters refused
as a 4xx on PostgreSQL."""

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


def test_every_422_is_documented_as_problem_json() -> None:
    assert json_422s(APP.openapi()) == []


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


def test_a_405_lists_every_method_of_the_resource(api: TestClient) -> None:
    response = api.request("OPTIONS", "/jobs")
    assert response.status_code == 405
    assert {m.strip() for m in response.headers["allow"].split(",")} >= {"GET", "POST"}


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
