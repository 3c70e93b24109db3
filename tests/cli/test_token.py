"""--token and DESCENT_API_TOKEN reach the server as a bearer token (ASGI app, in process)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import cast

import httpx
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from service.app import create_app
from service.cli import app
from service.client import DescentClient, commands
from tests.conftest import make_settings

TOKEN = "cli-s3cret"


@pytest.fixture
def guarded(
    sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[TestClient]:
    """The commands' clients talk to an app that wants TOKEN."""
    settings = make_settings(sqlite_url, tmp_path, api_token=TOKEN)
    with TestClient(create_app(settings)) as http:
        if http.get("/jobs").status_code != 401:
            pytest.skip("this build of the app does not enforce DESCENT_API_TOKEN")

        def connect(url: str | None, token: str | None) -> DescentClient:
            return DescentClient(url, token, http=cast(httpx.Client, http))

        monkeypatch.setattr(commands, "DescentClient", connect)
        yield http


def test_the_token_comes_from_the_option_or_the_environment(guarded: TestClient) -> None:
    runner = CliRunner()
    unset = {"DESCENT_API_TOKEN": None}

    refused = runner.invoke(app, ["jobs"], env=unset)
    assert refused.exit_code == 1
    assert refused.stderr.startswith("error: 401 Unauthorized: ")

    assert runner.invoke(app, ["jobs", "--token", TOKEN], env=unset).exit_code == 0
    assert runner.invoke(app, ["jobs"], env={"DESCENT_API_TOKEN": TOKEN}).exit_code == 0
    wrong = runner.invoke(app, ["show", "x", "--token", "wrong"], env=unset)
    assert wrong.exit_code == 1
    assert "401" in wrong.stderr
