"""A job runs inside the worker's thread budget: OpenBLAS's threads and the engine's own alike."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from threadpoolctl import threadpool_info

from service.db.session import Database
from tests.conftest import make_settings
from tests.worker.conftest import submit
from worker import runner
from worker.engine.accel.parallel import max_threads
from worker.runner import Worker


@pytest.mark.parametrize("budget", [1, 2])
def test_a_job_runs_with_the_configured_threads(
    sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, budget: int
) -> None:
    settings = make_settings(sqlite_url, tmp_path, blas_threads=budget)
    database = Database(settings.database_url)
    seen: dict[str, Any] = {}
    dispatch = runner.Worker._dispatch

    def spy(self: Worker, *args: Any) -> Any:
        seen["engine"] = max_threads()
        seen["blas"] = {pool["num_threads"] for pool in threadpool_info()}
        return dispatch(self, *args)

    monkeypatch.setattr(runner.Worker, "_dispatch", spy)
    submit(database, settings)
    worker = Worker(settings)
    assert worker.run(burst=True) == 1

    assert seen["engine"] == budget
    assert seen["blas"] == {budget}  # NumPy's OpenBLAS, and any other BLAS loaded
    worker.database.dispose()
    database.dispose()
