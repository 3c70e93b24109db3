"""The dashboard's page and files: served by the app itself, nothing from a CDN, no way out of
static/, and the OpenAPI shapes the form is generated from."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.dashboard import router, vendor
from tests.conftest import make_settings

STATIC = router.STATIC
JS = sorted((STATIC / "js").glob("*.js"))


@pytest.fixture
def client(sqlite_url: str, tmp_path: Path) -> Iterator[TestClient]:
    with TestClient(create_app(make_settings(sqlite_url, tmp_path))) as test_client:
        yield test_client


def test_the_page_is_served_at_the_root_with_its_scripts(client: TestClient) -> None:
    response = client.get("/")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    page = response.text
    assert '<script src="/static/vendor/plotly.min.js">' in page
    assert '<script type="module" src="/static/js/app.js">' in page
    assert 'href="#/sweeps"' in page and 'id="view-sweep"' in page


def test_plotly_comes_from_the_installed_package(client: TestClient) -> None:
    response = client.get("/static/vendor/plotly.min.js")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/javascript")
    assert response.content == vendor.plotly_js().read_bytes()
    assert b"plotly.js v" in response.content[:200]


def test_every_module_the_page_imports_is_served(client: TestClient) -> None:
    imported = {"app.js"}
    for path in JS:
        imported |= set(re.findall(r'from "\./([a-z-]+\.js)"', path.read_text()))

    for name in sorted(imported):
        response = client.get(f"/static/js/{name}")
        assert response.status_code == 200, name
        assert response.headers["content-type"].startswith("text/javascript")
    assert client.get("/static/dashboard.css").headers["content-type"].startswith("text/css")


@pytest.mark.parametrize(
    "path", ["/static/../app.py", "/static/%2e%2e/router.py", "/static/js/nope.js", "/static/"]
)
def test_nothing_outside_static_is_served(client: TestClient, path: str) -> None:
    response = client.get(path)

    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"


def test_no_file_loads_anything_from_another_origin() -> None:
    for path in [STATIC / "index.html", STATIC / "dashboard.css", *JS]:
        text = path.read_text()
        assert not re.search(r"(src|href)=\"(https?:)?//", text), path.name
        assert "cdn" not in text.lower(), path.name


def test_every_request_goes_through_the_one_api_helper() -> None:
    users = [
        path.name
        for path in JS
        if re.search(r"\bfetch\(|XMLHttpRequest|EventSource\(", path.read_text())
    ]

    assert users == ["api.js"]


def test_modules_stay_small() -> None:
    for path in [*JS, STATIC / "index.html", STATIC / "dashboard.css"]:
        assert len(path.read_text().splitlines()) < 300, path.name


def test_the_openapi_document_has_what_the_form_is_built_from(client: TestClient) -> None:
    schemas = client.get("/openapi.json").json()["components"]["schemas"]
    spec = schemas["JobSpec"]["properties"]

    assert spec["task"]["enum"] == ["train", "gradient_check", "step_size_sweep", "landscape"]
    union = next(option for option in spec["optimizer"]["anyOf"] if "oneOf" in option)
    assert union["discriminator"]["propertyName"] == "type"
    assert set(union["discriminator"]["mapping"]) == {
        "sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam", "random_search",
        "random_local_search",
    }  # fmt: skip
    assert schemas["Adam"]["properties"]["beta1"]["default"] == 0.9
    assert schemas["RandomSearch"]["properties"]["trials"]["default"] == 1000
    for task in ("gradient_check", "step_size_sweep", "landscape"):
        assert any("$ref" in option for option in spec[task]["anyOf"]), task
    assert "$ref" in spec["dataset"]


@pytest.mark.parametrize(
    "path", ["/", "/static/dashboard.css", "/static/js/app.js", "/static/vendor/plotly.min.js"]
)
def test_head_answers_like_get_without_a_body(client: TestClient, path: str) -> None:
    got = client.get(path)
    head = client.head(path)

    assert head.status_code == 200
    assert head.content == b""
    for name in ("content-type", "content-length", "cache-control", "etag", "last-modified"):
        assert head.headers[name] == got.headers[name], name
    assert int(head.headers["content-length"]) == len(got.content)


def test_head_of_a_missing_file_is_a_404(client: TestClient) -> None:
    assert client.head("/static/js/nope.js").status_code == 404


def test_the_sweeps_tab_is_shown_and_its_example_is_in_the_openapi_document(
    client: TestClient,
) -> None:
    page = client.get("/").text
    tab = re.search(r'<a href="#/sweeps"[^>]*>', page)
    schemas = client.get("/openapi.json").json()["components"]["schemas"]
    example = schemas["SweepRequest"]["examples"][0]  # the sweep form starts from it

    assert tab is not None and "hidden" not in tab.group(0)
    assert set(example) >= {"base", "space", "method", "metric"}
    assert client.post("/sweeps", json=example).status_code == 202
