"""docker-compose.yml stays valid: Docker does not run here, so its structure is checked instead."""

from __future__ import annotations

from typing import Any

import yaml

from tests.conftest import REPO


def load() -> dict[str, Any]:
    document = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    assert isinstance(document, dict)
    return document


def test_services_start_in_order_postgres_migrate_api_worker() -> None:
    services = load()["services"]

    assert set(services) == {"postgres", "migrate", "api", "worker"}
    assert services["postgres"]["healthcheck"]["test"]
    assert services["migrate"]["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    done = {"migrate": {"condition": "service_completed_successfully"}}
    assert services["api"]["depends_on"] == done
    assert services["worker"]["depends_on"] == done
    assert services["migrate"]["command"] == ["descent", "migrate"]
    assert services["worker"]["command"][:2] == ["descent", "worker"]
    assert "--workers" in services["api"]["command"]


def test_the_app_services_share_an_image_a_database_url_and_a_data_volume() -> None:
    document = load()
    for name in ("migrate", "api", "worker"):
        service = document["services"][name]
        url = service["environment"]["DESCENT_DATABASE_URL"]
        assert url.startswith("postgresql+psycopg://") and "@postgres:5432/" in url
        assert service["image"] == "descent:latest"
        assert any(volume.startswith("descent-data:") for volume in service["volumes"])
    assert "descent-data" in document["volumes"]


def test_the_inline_dockerfile_copies_what_the_package_needs() -> None:
    dockerfile = load()["services"]["api"]["build"]["dockerfile_inline"]

    for part in ("service", "worker", "migrations", "pyproject.toml"):
        assert f"COPY {part}" in dockerfile or part in dockerfile
    for path in ("service", "worker", "migrations"):
        assert (REPO / path).is_dir()


def test_the_worker_can_be_scaled() -> None:
    worker = load()["services"]["worker"]

    # `--scale worker=N` needs no fixed container name or host port on the worker.
    assert "container_name" not in worker
    assert "ports" not in worker
