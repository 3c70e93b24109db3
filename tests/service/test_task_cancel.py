"""A long task reports its progress while it runs and stops soon after a cancel, instead of
running to the end and finishing `succeeded` with progress 0 all along."""

from __future__ import annotations

import threading
import time
from typing import Any

from fastapi.testclient import TestClient

from service.settings import Settings
from tests.service.conftest import toy_spec
from worker.runner import Worker

# A 201 x 201 landscape over 20,000 rows: a minute or more of work on two cores.
WIDE = {"name": "blobs", "n_train": 20_000, "n_val": 100, "n_test": 100, "n_features": 50,
        "n_classes": 10}  # fmt: skip
# Softmax finite differences over 20,000 rows x 2,001 weights per class: many seconds of work.
# (The SVM's are two products and a few corrections: they end before a cancel could matter.)
DEEP = {**WIDE, "n_features": 2_000}


def task_spec(task: str, dataset: dict[str, Any], **params: Any) -> dict[str, Any]:
    spec = toy_spec(task=task, dataset=dataset, **params)
    spec.pop("optimizer")
    return spec


def progress_then_cancel(
    client: TestClient, settings: Settings, spec: dict[str, Any]
) -> tuple[dict[str, Any], float, dict[str, Any]]:
    """Run the job until it reports progress, cancel it: (that progress, seconds from the cancel
    to the worker's return, the job)."""
    job_id = client.post("/jobs", json=spec).json()["id"]
    worker = Worker(settings)
    thread = threading.Thread(target=worker.run, kwargs={"burst": True})
    thread.start()
    try:
        deadline = time.monotonic() + 60
        while client.get(f"/jobs/{job_id}").json()["progress"]["step"] == 0:
            assert time.monotonic() < deadline, "no progress reported"
            time.sleep(0.1)
        progress = client.get(f"/jobs/{job_id}").json()["progress"]
        cancelled_at = time.monotonic()
        assert client.post(f"/jobs/{job_id}/cancel").status_code == 202
        thread.join(timeout=30)
        stopped_after = time.monotonic() - cancelled_at
    finally:
        worker.stopping.set()
        thread.join(timeout=60)
        worker.database.dispose()
    return progress, stopped_after, client.get(f"/jobs/{job_id}").json()


def test_a_long_landscape_reports_progress_and_stops_when_cancelled(
    client: TestClient, settings: Settings
) -> None:
    spec = task_spec("landscape", WIDE, landscape={"dims": 2, "points": 201})
    progress, stopped_after, job = progress_then_cancel(client, settings, spec)
    assert 0 < progress["step"] < progress["total"] == 201 * 201
    assert job["status"] == "cancelled"
    assert stopped_after < 5  # the whole grid takes far longer


def test_a_long_gradient_check_reports_progress_and_stops_when_cancelled(
    client: TestClient, settings: Settings
) -> None:
    spec = task_spec(
        "gradient_check", DEEP, model={"loss": "softmax"}, gradient_check={"num_checks": None}
    )
    progress, stopped_after, job = progress_then_cancel(client, settings, spec)
    # progress.total counts the checks; the step grows with the share of the pass done.
    assert 0 < progress["step"] < progress["total"] == 10 * 2_001
    assert job["status"] == "cancelled"
    assert stopped_after < 5  # the whole pass takes longer
