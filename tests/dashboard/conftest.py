"""A real `descent serve` for the module and headless Chromium driven by Playwright.

The browser is Debian's chromium at /usr/bin/chromium (never one Playwright downloads); without
it, or without the playwright package, the browser tests skip and say why.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO, cifar10_dir
from tests.e2e.conftest import free_port, start_serve, stop_serve

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]  # fmt: skip
ARTIFACTS = REPO / "test-artifacts"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The base URL of a `descent serve --workers 1` with its own SQLite database."""
    home = tmp_path_factory.mktemp("serve")
    port = free_port()
    env = {
        **os.environ,
        "DESCENT_DATABASE_URL": f"sqlite:///{home / 'descent.db'}",
        "DESCENT_DATA_DIR": str(home / "data"),
        "DESCENT_POLL_SECONDS": "0.05",
        "DESCENT_LOG_LEVEL": "WARNING",
    }
    found = cifar10_dir()
    if found is not None:
        env["DESCENT_CIFAR10_DIR"] = str(found)
    process, base = start_serve(port, env, workers=1, cwd=home)
    yield base
    stop_serve(process)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="playwright is not installed (pip install -e '.[test]')"
    )
    if not CHROMIUM.is_file():
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def expected_errors() -> list[str]:
    """Parts of console errors a test provokes on purpose (Chromium logs every 4xx response)."""
    return []


@pytest.fixture
def page(browser: Any, expected_errors: list[str]) -> Iterator[Any]:
    """A fresh page; JavaScript errors, other than those the test expects, fail the test."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    yield page
    context.close()
    errors = [error for error in errors if not any(part in error for part in expected_errors)]
    assert errors == [], f"errors in the page: {errors}"


def screenshot(page: Any, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
