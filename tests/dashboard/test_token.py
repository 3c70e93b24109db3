"""With DESCENT_API_TOKEN set, the dashboard asks for the token once and keeps using it."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import free_port, start_serve, stop_serve

pytestmark = pytest.mark.e2e
TOKEN = "dashboard-token"


@pytest.fixture
def guarded_server(tmp_path: Path) -> Iterator[str]:
    env = {**os.environ, "DESCENT_DATABASE_URL": f"sqlite:///{tmp_path / 'descent.db'}",
           "DESCENT_API_TOKEN": TOKEN, "DESCENT_LOG_LEVEL": "WARNING"}  # fmt: skip
    process, base = start_serve(free_port(), env, workers=0, cwd=tmp_path)
    yield base
    stop_serve(process)


def test_the_dashboard_asks_for_the_token_once_then_lists_jobs(
    guarded_server: str, browser: Any
) -> None:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    spec = {"name": "guarded", "dataset": {"name": "toy"}, "optimizer": {"type": "sgd"}}
    job_id = httpx.post(f"{guarded_server}/jobs", json=spec, headers=headers).json()["id"]
    context = browser.new_context()
    page = context.new_page()
    prompts: list[str] = []

    def answer(dialog: Any) -> None:
        prompts.append(dialog.message)
        dialog.accept(TOKEN)

    page.on("dialog", answer)
    try:
        page.goto(f"{guarded_server}/#/")
        page.wait_for_selector(f'tr[data-job="{job_id}"]')
        page.reload()
        page.wait_for_selector(f'tr[data-job="{job_id}"]')
    finally:
        context.close()

    assert len(prompts) == 1  # asked once, kept for the browser session
    assert "token" in prompts[0].lower()
