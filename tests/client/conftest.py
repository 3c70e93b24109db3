"""The client on the ASGI app (a fresh SQLite database, a burst worker) and on a real server."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.client import DescentClient
from service.settings import Settings
from tests.conftest import make_settings
from tests.e2e.conftest import server
from worker.runner import Worker

__all__ = ["server"]


def toy_spec(**overrides: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "name": "toy",
        "dataset": {"name": "blobs"},
        "model": {"loss": "svm", "reg": 0.001},
        "optimizer": {"type": "sgd", "learning_rate": 0.1, "batch_size": 32, "iterations": 120},
        "eval_every": 40,
    }
    spec.update(overrides)
    return spec


@pytest.fixture
def settings(sqlite_url: str, tmp_path: Path) -> Settings:
    return make_settings(sqlite_url, tmp_path)


@pytest.fixture
def client(settings: Settings) -> Iterator[DescentClient]:
    """DescentClient on the ASGI app through Starlette's TestClient (an httpx-style client)."""
    with TestClient(create_app(settings)) as http:
        yield DescentClient(http=cast(httpx.Client, http))


@pytest.fixture
def drain(settings: Settings) -> Iterator[Callable[[], int]]:
    """Run every queued job to its end, in this process."""
    worker = Worker(settings)
    yield lambda: worker.run(burst=True)
    worker.database.dispose()
