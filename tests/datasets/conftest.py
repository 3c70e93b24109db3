from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.settings import Settings
from tests.conftest import make_settings
from worker.runner import Worker


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return make_settings(database_url, tmp_path, max_upload_bytes=256 * 1024)


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as test_client:
        yield test_client


@pytest.fixture
def worker(settings: Settings) -> Iterator[Worker]:
    worker = Worker(settings)
    yield worker
    worker.database.dispose()


@pytest.fixture
def drain(worker: Worker) -> Callable[[], int]:
    return lambda: worker.run(burst=True)


def blobs(
    n: int = 60, d: int = 4, classes: int = 3, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Separable float32 blobs: class k centred at 4·e_k."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % classes
    X = rng.normal(size=(n, d)).astype(np.float32)
    X[np.arange(n), y % d] += 4.0
    return X, y.astype(np.int64)


def npz_bytes(**arrays: Any) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def upload(client: TestClient, content: bytes, filename: str = "data.npz", **form: str) -> Any:
    return client.post("/datasets", files={"file": (filename, content)}, data=form)


def uploaded(client: TestClient, **arrays: Any) -> str:
    if not arrays:
        X, y = blobs()
        arrays = {"X_train": X, "y_train": y}
    response = upload(client, npz_bytes(**arrays))
    assert response.status_code == 201, response.json()
    return str(response.json()["id"])
