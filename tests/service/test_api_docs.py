"""/docs and /redoc name only the app's own files, which it serves: no CDN, so they work offline,
and stay public behind DESCENT_API_TOKEN."""

from __future__ import annotations

from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from tests.conftest import make_settings

TOKEN = "s3cret-token"
PAGES = ["/docs", "/redoc"]
ASSET_TYPES = {".js": "text/javascript", ".css": "text/css", ".png": "image/png"}


class Links(HTMLParser):
    """Every src and href in a page."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.urls += [value for name, value in attrs if name in ("src", "href") and value]


def links(html: str) -> list[str]:
    parser = Links()
    parser.feed(html)
    return parser.urls


@pytest.fixture
def client(sqlite_url: str, tmp_path: Path) -> Iterator[TestClient]:
    with TestClient(create_app(make_settings(sqlite_url, tmp_path))) as test_client:
        yield test_client


@pytest.fixture
def guarded(sqlite_url: str, tmp_path: Path) -> Iterator[TestClient]:
    settings = make_settings(sqlite_url, tmp_path, api_token=TOKEN)
    with TestClient(create_app(settings)) as test_client:
        yield test_client


@pytest.mark.parametrize("page", PAGES)
def test_the_docs_pages_load_only_local_assets_which_are_served(
    client: TestClient, page: str
) -> None:
    response = client.get(page)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "http://" not in response.text and "https://" not in response.text
    # The bundles themselves name a CDN or two (ReDoc's logo): the policy keeps the browser home.
    assert "default-src 'self'" in response.headers["content-security-policy"]
    urls = links(response.text)
    scripts = [url for url in urls if url.endswith(".js")]
    assert scripts, f"{page} loads no script"

    for url in urls:
        assert url.startswith("/static/docs/"), url
        asset = client.get(url)
        assert asset.status_code == 200, url
        suffix = url[url.rfind(".") :]
        assert asset.headers["content-type"].startswith(ASSET_TYPES[suffix]), url
        assert len(asset.content) > 0


def test_swagger_ui_reads_the_apps_own_document(client: TestClient) -> None:
    assert "url: '/openapi.json'" in client.get("/docs").text
    assert 'spec-url="/openapi.json"' in client.get("/redoc").text


def test_the_docs_pages_are_not_operations_of_the_document(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]

    assert not [path for path in paths if path in PAGES or path.startswith("/static")]


def test_an_unknown_docs_asset_is_a_problem(client: TestClient) -> None:
    response = client.get("/static/docs/core.py")

    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/problem+json")


def test_the_pages_and_assets_answer_head(client: TestClient) -> None:
    for url in ["/docs", "/redoc", "/static/docs/swagger-ui-bundle.js"]:
        assert client.head(url).status_code == 200, url


def test_the_dashboards_static_files_are_still_served(client: TestClient) -> None:
    assert client.get("/static/dashboard.css").status_code == 200


def test_with_a_token_the_docs_their_assets_and_the_document_stay_public(
    guarded: TestClient,
) -> None:
    urls = ["/openapi.json", *PAGES]
    for page in PAGES:
        urls += links(guarded.get(page).text)

    for url in urls:
        assert guarded.get(url).status_code == 200, url
    assert guarded.get("/jobs").status_code == 401
