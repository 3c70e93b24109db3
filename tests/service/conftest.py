from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.settings import Settings
from worker.runner import Worker


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as test_client:
        yield test_client


@pytest.fixture
def drain(settings: Settings) -> Iterator[Callable[[], int]]:
    """Run a worker in burst mode: every queued job is run to the end before this returns."""
    worker = Worker(settings)
    yield lambda: worker.run(burst=True)
    worker.database.dispose()


def toy_spec(**overrides: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "dataset": {"name": "blobs"},
        "model": {"loss": "svm", "reg": 0.001},
        "optimizer": {"type": "sgd", "learning_rate": 0.1, "batch_size": 32, "iterations": 200},
        "eval_every": 50,
    }
    spec.update(overrides)
    return spec
