"""200 jobs from 20 concurrent clients over HTTP: every job runs once and succeeds."""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from service.db.models import Job, JobAttempt, MetricPoint
from service.db.session import Database
from tests.e2e.conftest import free_port, start_serve
from tests.reliability.conftest import FAST_LEASES

TINY_JOB = {
    "dataset": {"name": "toy"},
    "optimizer": {"type": "sgd", "learning_rate": 0.1, "iterations": 25},
    "eval_every": 0,
}


def test_200_jobs_from_20_clients_each_run_exactly_once(
    database_url: str, database: Database, tmp_path: Path
) -> None:
    workers = 2 if make_url(database_url).get_backend_name() == "sqlite" else 4
    port = free_port()
    env = {**os.environ, **FAST_LEASES, "DESCENT_DATABASE_URL": database_url,
           "DESCENT_DATA_DIR": str(tmp_path / "data")}  # fmt: skip
    server, base = start_serve(port, env, workers=workers)
    try:

        def client(n: int) -> list[int]:
            with httpx.Client(base_url=base, timeout=30) as http:
                return [http.post("/jobs", json={**TINY_JOB, "seed": n * 10 + i}).status_code
                        for i in range(10)]  # fmt: skip

        with ThreadPoolExecutor(max_workers=20) as pool:
            codes = [code for batch in pool.map(client, range(20)) for code in batch]
        assert codes == [202] * 200

        def finished() -> int:
            with database.read() as session:
                stmt = select(func.count()).where(Job.status.in_(("succeeded", "failed")))
                return int(session.scalar(stmt) or 0)

        deadline = time.monotonic() + 180
        while finished() < 200:
            assert time.monotonic() < deadline, f"only {finished()} of 200 jobs finished"
            time.sleep(0.2)
    finally:
        server.terminate()
        server.wait(timeout=60)

    with database.read() as session:
        statuses = session.execute(select(Job.status, func.count()).group_by(Job.status)).all()
        assert dict(statuses) == {"succeeded": 200}
        assert session.scalar(select(func.max(Job.attempts))) == 1
        runs = session.execute(
            select(JobAttempt.outcome, func.count()).group_by(JobAttempt.outcome)
        )
        assert dict(runs.all()) == {"succeeded": 200}
        per_job = (
            select(MetricPoint.job_id, func.count().label("n"))
            .where(MetricPoint.series == "loss")
            .group_by(MetricPoint.job_id)
        )
        counts = {n for _, n in session.execute(per_job)}
        assert counts == {25}  # every step exactly once, in every job
        workers_used = session.scalar(select(func.count(func.distinct(JobAttempt.worker))))
        assert workers_used is not None and workers_used >= 2
