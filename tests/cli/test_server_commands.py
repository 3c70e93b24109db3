"""`descent migrate / prune / serve / worker`: their options, output and exit codes
(`descent serve` itself is driven by every e2e test)."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.cli.conftest import descent
from tests.e2e.conftest import free_port, start_serve, stop_serve

pytestmark = pytest.mark.e2e


def server_env(tmp_path: Path) -> dict[str, str]:
    return {
        "DESCENT_DATABASE_URL": f"sqlite:///{tmp_path / 'descent.db'}",
        "DESCENT_DATA_DIR": str(tmp_path / "data"),
        "DESCENT_LOG_LEVEL": "WARNING",
        "DESCENT_RETENTION_DAYS": "",
    }


def test_migrate_prune_and_a_burst_worker_on_a_new_database(tmp_path: Path) -> None:
    env = server_env(tmp_path)

    migrated = descent("migrate", url=None, env=env, cwd=tmp_path)
    assert migrated.returncode == 0, migrated.stderr
    with sqlite3.connect(tmp_path / "descent.db") as db:
        assert db.execute("SELECT count(*) FROM alembic_version").fetchone() == (1,)

    pruned = descent("prune", "--days", "30", url=None, env=env, cwd=tmp_path)
    assert pruned.returncode == 0, pruned.stderr
    assert pruned.stdout == "downsampled the history of 0 finished job(s)\n"

    no_period = descent("prune", url=None, env=env, cwd=tmp_path)
    assert no_period.returncode == 1
    assert no_period.stderr.strip().endswith(
        "no retention period: set DESCENT_RETENTION_DAYS or pass --days"
    )

    burst = descent("worker", "--burst", url=None, env=env, cwd=tmp_path)
    assert burst.returncode == 0, burst.stderr


def test_serve_refuses_a_negative_worker_count(tmp_path: Path) -> None:
    result = descent("serve", "--workers", "-1", url=None, env=server_env(tmp_path), cwd=tmp_path)

    assert result.returncode == 1
    assert result.stderr.strip() == "--workers must be 0 or more"
    assert not (tmp_path / "descent.db").exists()  # refused before migrating


def test_the_served_app_hides_its_start_up_objects_from_the_garbage_collector(
    tmp_path: Path,
) -> None:
    probe = (
        "import gc; from service.app import create_served_app; create_served_app(); "
        "print(gc.get_freeze_count())"
    )
    env = {**os.environ, **server_env(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert int(done.stdout) > 50_000  # the app's modules, routes and models


@pytest.mark.parametrize("access_log", [None, "true"])
def test_serve_logs_in_the_configured_format_and_requests_only_when_asked(
    tmp_path: Path, access_log: str | None
) -> None:
    """uvicorn's own records use DESCENT_LOG_FORMAT; one line per request only with
    DESCENT_ACCESS_LOG."""
    env = {**os.environ, **server_env(tmp_path), "DESCENT_LOG_FORMAT": "json"}
    env["DESCENT_LOG_LEVEL"] = "INFO"
    env.pop("DESCENT_ACCESS_LOG", None)
    if access_log is not None:
        env["DESCENT_ACCESS_LOG"] = access_log
    log_path = tmp_path / "serve.log"
    with log_path.open("wb") as log_file:
        process, base = start_serve(free_port(), env, workers=0, cwd=tmp_path, stderr=log_file)
        try:
            assert httpx.get(f"{base}/healthz").status_code == 200
        finally:
            stop_serve(process)
    records = [json.loads(line) for line in log_path.read_text().splitlines() if line.strip()]
    assert any(r["logger"] == "uvicorn.error" for r in records)  # "Started server process"
    requests = [r for r in records if r["logger"] == "uvicorn.access"]
    if access_log is None:
        assert requests == []
    else:
        assert any("GET /healthz" in r["message"] for r in requests)
