"""/docs and /redoc in headless Chromium with every request off this machine refused: the pages
must render the API from the server's own files alone (the dashboard links to /docs, and a
service without internet must still show it). The server has DESCENT_API_TOKEN set and the
browser sends none: the docs are public."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from tests.dashboard.conftest import screenshot
from tests.e2e.conftest import free_port, start_serve, stop_serve

pytestmark = pytest.mark.e2e

LOCAL_HOSTS = {"127.0.0.1", "localhost"}
SUBMIT_JOB = "#operations-jobs-submit_job_jobs_post"  # Swagger UI's id: tag and operationId
REDOC_OPERATION = '[id^="tag/"][id*="/operation/"]'
REDOC_SUBMIT_JOB = '[id="tag/jobs/operation/submit_job_jobs_post"] h2'
# ReDoc's bundle asks its vendor's CDN for a sidebar logo; the page's Content-Security-Policy
# refuses it before it leaves (Chromium logs that as an error) and ReDoc drops the logo.
REDOC_LOGO_REFUSED = "redoc/logo-mini.svg' violates the following Content Security Policy"


@pytest.fixture(scope="module")
def docs_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """An API-only `descent serve` (no worker: nothing runs) behind a bearer token."""
    home = tmp_path_factory.mktemp("docs")
    env = {
        **os.environ,
        "DESCENT_DATABASE_URL": f"sqlite:///{home / 'descent.db'}",
        "DESCENT_DATA_DIR": str(home / "data"),
        "DESCENT_LOG_LEVEL": "WARNING",
        "DESCENT_API_TOKEN": "docs-token",
    }
    process, base = start_serve(free_port(), env, workers=0, cwd=Path(home))
    yield base
    stop_serve(process)


@pytest.fixture
def expected_errors() -> list[str]:
    return [REDOC_LOGO_REFUSED]


@pytest.fixture
def offline(page: Any) -> list[str]:
    """Abort every request that would leave the machine; the list of URLs that tried."""
    refused: list[str] = []

    def handle(route: Any) -> None:
        url = route.request.url
        if urlsplit(url).scheme in ("data", "blob") or urlsplit(url).hostname in LOCAL_HOSTS:
            route.continue_()
        else:
            refused.append(url)
            route.abort()

    page.route("**/*", handle)
    return refused


def operation_count(base: str) -> int:
    paths = httpx.get(f"{base}/openapi.json", timeout=10).json()["paths"]
    methods = {"get", "put", "post", "delete", "patch", "head", "options"}
    return sum(1 for item in paths.values() for method in item if method in methods)


def test_swagger_ui_lists_the_operations_offline(
    docs_server: str, page: Any, offline: list[str]
) -> None:
    page.goto(f"{docs_server}/docs")
    submit = page.locator(SUBMIT_JOB)
    submit.wait_for(state="visible", timeout=30_000)

    assert submit.locator(".opblock-summary-method").inner_text() == "POST"
    assert submit.locator(".opblock-summary-path").inner_text() == "/jobs"
    assert page.locator(".opblock").count() == operation_count(docs_server)
    screenshot(page, "api-docs-swagger")
    assert offline == []


def test_redoc_shows_the_operations_offline(
    docs_server: str, page: Any, offline: list[str]
) -> None:
    page.goto(f"{docs_server}/redoc")
    title = page.locator(REDOC_SUBMIT_JOB)
    title.wait_for(state="visible", timeout=30_000)

    assert title.inner_text().strip() == "Submit a job"

    assert page.locator(REDOC_OPERATION).count() == operation_count(docs_server)
    screenshot(page, "api-docs-redoc")
    assert offline == []
