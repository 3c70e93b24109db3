from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.settings import Settings
from tests.conftest import make_settings
from worker.runner import Worker


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return make_settings(database_url, tmp_path, max_sweep_trials=50)


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as test_client:
        yield test_client


@pytest.fixture
def drain(settings: Settings) -> Iterator[Callable[[], int]]:
    worker = Worker(settings)
    yield lambda: worker.run(burst=True)
    worker.database.dispose()


def sweep_request(**overrides: Any) -> dict[str, Any]:
    request: dict[str, Any] = {
        "base": {
            "dataset": {"name": "blobs", "cluster_std": 2.5},
            "model": {"loss": "svm"},
            "optimizer": {"type": "sgd", "batch_size": 32, "iterations": 200},
            "eval_every": 50,
        },
        "method": "grid",
        "space": {
            "optimizer.learning_rate": {"values": [0.3, 0.03]},
            "model.reg": {"values": [0.0, 0.1]},
        },
    }
    return request | overrides
