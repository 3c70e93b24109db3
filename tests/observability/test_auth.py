"""DESCENT_API_TOKEN: off = open; on = a bearer token everywhere but probes, docs and dashboard."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from tests.conftest import make_settings

TOKEN = "s3cret-token"
SPEC = {"dataset": {"name": "toy"}, "optimizer": {"type": "sgd", "iterations": 5}}


@pytest.fixture
def guarded(sqlite_url: str, tmp_path: Path) -> Iterator[TestClient]:
    settings = make_settings(sqlite_url, tmp_path, api_token=TOKEN)
    with TestClient(create_app(settings)) as client:
        yield client


@pytest.fixture
def open_api(sqlite_url: str, tmp_path: Path) -> Iterator[TestClient]:
    with TestClient(create_app(make_settings(sqlite_url, tmp_path))) as client:
        yield client


def test_without_a_token_configured_the_api_is_open(open_api: TestClient) -> None:
    assert open_api.post("/jobs", json=SPEC).status_code == 202
    assert open_api.get("/jobs").status_code == 200


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/jobs"), ("POST", "/jobs"), ("GET", "/jobs/x"), ("GET", "/datasets"),
     ("GET", "/metrics"), ("DELETE", "/jobs/x"), ("GET", "/jobs/x/events")],
)  # fmt: skip
def test_with_a_token_every_api_endpoint_needs_it(
    guarded: TestClient, method: str, path: str
) -> None:
    response = guarded.request(method, path, json=SPEC if method == "POST" else None)

    assert response.status_code == 401
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert response.json()["status"] == 401


@pytest.mark.parametrize("header", ["Bearer wrong", "Basic czNjcmV0LXRva2Vu", TOKEN, "Bearer "])
def test_a_wrong_or_malformed_token_is_refused(guarded: TestClient, header: str) -> None:
    assert guarded.get("/jobs", headers={"Authorization": header}).status_code == 401


def test_the_right_token_opens_the_api(guarded: TestClient) -> None:
    headers = {"Authorization": f"Bearer {TOKEN}"}

    created = guarded.post("/jobs", json=SPEC, headers=headers)

    assert created.status_code == 202
    assert guarded.get(f"/jobs/{created.json()['id']}", headers=headers).status_code == 200
    assert guarded.get("/jobs", headers={"Authorization": f"bearer {TOKEN}"}).status_code == 200


def test_a_token_outside_ascii_matches_its_utf8_encoding(sqlite_url: str, tmp_path: Path) -> None:
    token = "clé-secrète-😀"
    settings = make_settings(sqlite_url, tmp_path, api_token=token)
    with TestClient(create_app(settings)) as client:
        sent = {b"Authorization": b"Bearer " + token.encode()}
        as_latin1 = {b"Authorization": b"Bearer " + token.encode().decode("latin-1").encode()}

        assert client.get("/jobs", headers=sent).status_code == 200
        assert client.get("/jobs", headers=as_latin1).status_code == 401


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/openapi.json", "/docs", "/"])
def test_probes_docs_and_the_dashboard_page_stay_public(guarded: TestClient, path: str) -> None:
    assert guarded.get(path).status_code == 200
