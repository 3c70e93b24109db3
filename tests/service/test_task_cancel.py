"""A long task reports its progress while it runs and stops soon after a cancel, instead of
running to the end and finishing `succeeded` with progress 0 all along."""

from __future__ import annotations

import threading
import time

from fastapi.testclient import TestClient

from service.settings import Settings
from tests.service.conftest import toy_spec
from worker.runner import Worker

# A 201 x 201 landscape over 20,000 rows: a minute or more of work on two cores.
WIDE = {"name": "blobs", "n_train": 20_000, "n_val": 100, "n_test": 100, "n_features": 50,
        "n_classes": 10}  # fmt: skip


def test_a_long_landscape_reports_progress_and_stops_when_cancelled(
    client: TestClient, settings: Settings
) -> None:
    spec = toy_spec(task="landscape", dataset=WIDE, landscape={"dims": 2, "points": 201})
    spec.pop("optimizer")
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
        assert 0 < progress["step"] < progress["total"] == 201 * 201

        cancelled_at = time.monotonic()
        assert client.post(f"/jobs/{job_id}/cancel").status_code == 202
        thread.join(timeout=30)
        stopped_after = time.monotonic() - cancelled_at
    finally:
        worker.stopping.set()
        thread.join(timeout=60)
        worker.database.dispose()

    job = client.get(f"/jobs/{job_id}").json()
    assert job["status"] == "cancelled"
    assert stopped_after < 10  # the whole grid takes far longer
