"""What the worker process may load: no web framework, and from service only the shared core.

The import-linter contracts in pyproject.toml guard the same boundary on the static graph; the
subprocess check here also catches what a static graph cannot see (an import made at run time).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import grimp

REPO = Path(__file__).resolve().parents[1]
WEB_FRAMEWORK = ("fastapi", "starlette", "uvicorn")

# Every service module a worker module may import directly, each with why the worker needs it.
# Adding to this list is a decision about the boundary: the module (and everything it imports)
# must stay free of the web side.
WORKER_MAY_IMPORT = frozenset(
    {
        "service.settings",  # the same DESCENT_* configuration as the API
        "service.db.session",  # the engine and its write transactions
        "service.db.models",  # the ORM tables the worker reads and writes
        "service.db.bulk",  # many-row INSERTs of metric points
        "service.db.notify",  # the job-queued channel idle workers listen on
        "service.jobs.queue",  # the queue's SQL: claim, lease, checkpoints, arrays, finish
        "service.history.writes",  # the points of a job's series, written as it runs
        "service.history.rollup_store",  # rollups kept in step with the points the worker writes
        "service.jobs.spec",  # the stored spec, validated with the API's own models
        "service.sweeps.halving",  # the successive-halving rule that stops weak trials
        "service.sweeps.repository",  # the sweep a trial belongs to, and its trials at a rung
        "service.processes",  # the supervisor's process handling, shared with `descent serve`
        "service.observability.logs",  # the same log format as the API
        "service.datasets.storage",  # where uploaded data sets live on disk
        "service.idempotency",  # maintenance prunes expired Idempotency-Keys
        "service.maintenance",  # retention downsamples old finished jobs
    }
)

LOADED_WEB_MODULES = f"""
import sys
import worker.__main__, worker.runner
print(sorted(m for m in sys.modules if m.split(".")[0] in {WEB_FRAMEWORK!r}))
"""


def service_modules_imported_by_worker(graph: grimp.ImportGraph) -> set[str]:
    """The service modules that some worker module imports directly (not through another)."""
    return {
        imported
        for module in graph.modules
        if module == "worker" or module.startswith("worker.")
        for imported in graph.find_modules_directly_imported_by(module)
        if imported == "service" or imported.startswith("service.")
    }


def test_the_worker_process_never_loads_the_web_framework() -> None:
    # A fresh interpreter: this test process has long since loaded FastAPI for the API tests.
    found = subprocess.run(
        [sys.executable, "-c", LOADED_WEB_MODULES],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )

    assert found.stdout.strip() == "[]"


def test_the_worker_imports_only_the_listed_service_modules() -> None:
    graph = grimp.build_graph("service", "worker")

    unlisted = service_modules_imported_by_worker(graph) - WORKER_MAY_IMPORT

    assert not unlisted, f"worker imports service modules not in WORKER_MAY_IMPORT: {unlisted}"


def test_an_unlisted_import_is_noticed() -> None:
    # Guards the check itself: a router imported by a worker module must show up as unlisted.
    graph = grimp.build_graph("service", "worker")
    graph.add_import(importer="worker.runner", imported="service.jobs.router")

    assert "service.jobs.router" in service_modules_imported_by_worker(graph) - WORKER_MAY_IMPORT
