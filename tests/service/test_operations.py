"""Health, readiness, the OpenAPI document, the docs page, and problem+json for unknown routes."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from service.settings import Settings


def test_healthz_and_readyz_answer_ok_on_a_migrated_database(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["status"] == "ready"


def test_readyz_is_503_when_the_schema_is_behind(client: TestClient, settings: Settings) -> None:
    engine = create_engine(settings.database_url)
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM alembic_version"))
    engine.dispose()

    response = client.get("/readyz")

    assert response.status_code == 503
    assert response.headers["content-type"].startswith("application/problem+json")


def test_the_openapi_document_describes_the_contract(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()

    paths = schema["paths"]
    for path in ("/jobs", "/jobs/{job_id}", "/jobs/{job_id}/loss", "/jobs/{job_id}/weights",
                 "/jobs/{job_id}/cancel", "/healthz", "/readyz", "/datasets"):  # fmt: skip
        assert path in paths, path
    optimizer = schema["components"]["schemas"]["JobSpec"]["properties"]["optimizer"]
    union = next(option for option in optimizer["anyOf"] if "discriminator" in option)
    assert union["discriminator"]["propertyName"] == "type"
    assert "random_search" in union["discriminator"]["mapping"]
    assert client.get("/docs").status_code == 200


def test_unknown_routes_and_methods_are_problems(client: TestClient) -> None:
    missing = client.get("/nowhere")
    wrong_method = client.put("/jobs")

    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("application/problem+json")
    assert wrong_method.status_code == 405
    assert wrong_method.json()["status"] == 405


def test_builtin_datasets_are_listed_with_their_availability(client: TestClient) -> None:
    items = {d["id"]: d for d in client.get("/datasets").json()["items"]}

    assert set(items) == {"cifar10", "digits", "toy", "blobs", "spiral"}
    assert items["toy"]["available"] is True
    assert items["cifar10"]["n_train"] == 49_000 and items["cifar10"]["n_classes"] == 10
    assert client.get("/datasets/blobs").json()["n_features"] == 2
    assert client.get("/datasets/nope").status_code == 404
