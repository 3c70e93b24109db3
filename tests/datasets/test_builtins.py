"""Every built-in but cifar10 (its batches are configured per server) works on a plain install:
none needs a package of the test extra. scikit-learn is made unimportable to show it."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from service.settings import Settings
from tests.conftest import make_settings


@pytest.fixture
def settings(sqlite_url: str, tmp_path: Path) -> Settings:
    """SQLite alone: what is checked here does not depend on the database."""
    return make_settings(sqlite_url, tmp_path)


@pytest.fixture
def without_sklearn(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [name for name in sys.modules if name.split(".")[0] == "sklearn"]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "sklearn", None)  # any import of it now fails


@pytest.mark.usefixtures("without_sklearn")
def test_the_builtins_are_listed_as_available(client: TestClient) -> None:
    items = {d["id"]: d for d in client.get("/datasets").json()["items"] if d["builtin"]}

    assert {name for name, d in items.items() if d["available"]} == {
        "digits", "toy", "blobs", "spiral"
    } | ({"cifar10"} if items["cifar10"]["available"] else set())  # fmt: skip
    assert items["digits"]["reason"] is None
    assert (items["digits"]["n_train"], items["digits"]["n_features"]) == (1_297, 64)


@pytest.mark.usefixtures("without_sklearn")
def test_a_digits_job_runs(client: TestClient, drain: Callable[[], int]) -> None:
    spec = {
        "dataset": {"name": "digits"},
        "model": {"loss": "softmax", "reg": 0.001},
        "optimizer": {"type": "sgd", "learning_rate": 0.001, "batch_size": 32, "iterations": 50},
        "eval_every": 25,
    }
    job = client.post("/jobs", json=spec).json()
    drain()

    done = client.get(f"/jobs/{job['id']}").json()
    assert done["status"] == "succeeded", done["error"]
