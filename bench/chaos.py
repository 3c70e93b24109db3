"""Chaos: kill and restart workers at random while clients submit jobs; then count what broke.

Real `python -m worker` processes with short leases, one killed (SIGKILL or SIGTERM) and replaced
each round. Every job must then have succeeded, every step be stored once, and every history and
W equal an uninterrupted run of the same spec (an in-process worker on a second database).
`--database-url` (PostgreSQL) writes the report's "postgresql" section.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from bench import common
from bench.common import expected_loss_steps, migrated, submit
from service.db.models import Job, JobArray, MetricPoint
from service.db.session import Database
from worker.runner import Worker

FAILURES = ("lost", "duplicated", "missing", "history differs", "weights differ")
LEASES = {
    "DESCENT_LEASE_SECONDS": "2",
    "DESCENT_HEARTBEAT_SECONDS": "0.3",
    "DESCENT_CHECKPOINT_SECONDS": "0.3",
    "DESCENT_POLL_SECONDS": "0.05",
    "DESCENT_LOG_LEVEL": "ERROR",
    # Measure the mechanism, not the give-up policy: at this kill rate a job can lose its worker
    # more than the default 3 times (tests/reliability checks that policy on its own).
    "DESCENT_MAX_WORKER_LOSSES": "1000",
}


def history(database: Database, job_id: str) -> list[tuple[str, int, float]]:
    with database.read() as session:
        stmt = (
            select(MetricPoint.series, MetricPoint.step, MetricPoint.value)
            .where(MetricPoint.job_id == job_id)
            .order_by(MetricPoint.series, MetricPoint.step)
        )
        return [(s, int(step), float(v)) for s, step, v in session.execute(stmt)]


def weights(database: Database, job_id: str) -> bytes | None:
    with database.read() as session:
        array = session.get(JobArray, (job_id, "W"))
        return None if array is None else bytes(array.data)


def run(minutes: float, workers: int, database_url: str | None) -> dict[str, Any]:
    rng = random.Random(0)
    workdir = Path(tempfile.mkdtemp(prefix="descent-chaos-"))
    url = database_url or f"sqlite:///{workdir / 'chaos.db'}"
    database, settings = migrated(url, workdir / "data")
    reference_db, reference_settings = migrated(f"sqlite:///{workdir / 'reference.db'}",
                                                workdir / "data")  # fmt: skip
    env = {**os.environ, **LEASES, "DESCENT_DATABASE_URL": url,
           "DESCENT_KERNEL_CACHE_DIR": str(common.filled_kernel_cache())}  # fmt: skip
    fleet = [subprocess.Popen([sys.executable, "-m", "worker"], env=env) for _ in range(workers)]
    kills: Counter[str] = Counter()
    submitted: dict[str, dict[str, Any]] = {}
    stop_submitting = threading.Event()

    def count(*statuses: str) -> int:
        with database.read() as session:
            return session.scalar(select(func.count()).where(Job.status.in_(statuses))) or 0

    def client() -> None:
        # Keep a short queue: a chaos run measures what kills do, not how long a backlog takes.
        while not stop_submitting.wait(rng.uniform(0.2, 0.8)):
            if count("queued") < 2 * workers:
                spec = common.random_job_spec(rng)
                submitted[submit(database, settings, spec)] = spec

    submitter = threading.Thread(target=client)
    submitter.start()
    deadline = time.monotonic() + minutes * 60
    while time.monotonic() < deadline:
        time.sleep(rng.uniform(0.5, 2.5))
        index = rng.randrange(len(fleet))  # a strike: one worker stopped, a new one started
        how = signal.SIGKILL if rng.random() < 0.6 else signal.SIGTERM
        common.stop(fleet[index], how)
        kills[how.name] += 1
        fleet[index] = subprocess.Popen([sys.executable, "-m", "worker"], env=env)
    stop_submitting.set()
    submitter.join()
    drain_deadline = time.monotonic() + 600
    while count("queued", "running") and time.monotonic() < drain_deadline:
        time.sleep(0.5)
    for process in fleet:
        process.send_signal(signal.SIGTERM)
    for process in fleet:
        process.wait(timeout=60)

    twin = {job_id: submit(reference_db, reference_settings, spec)
            for job_id, spec in submitted.items()}  # fmt: skip
    with Worker(reference_settings) as worker:
        worker.run(burst=True)

    found: Counter[str] = Counter()
    with database.read() as session:
        jobs = {job.id: job for job in session.scalars(select(Job))}
    for job_id, spec in submitted.items():
        if jobs[job_id].status != "succeeded":
            found["lost"] += 1
            continue
        found["resumed"] += jobs[job_id].attempts > 1
        got = history(database, job_id)
        loss_steps = [step for series, step, _ in got if series == "loss"]
        found["duplicated"] += len(loss_steps) - len(set(loss_steps))
        found["missing"] += len(set(expected_loss_steps(spec)) - set(loss_steps))
        found["history differs"] += got != history(reference_db, twin[job_id])
        found["weights differ"] += weights(database, job_id) != weights(reference_db, twin[job_id])
    database.dispose()
    reference_db.dispose()
    return {
        "minutes": minutes,
        "workers": workers,
        "database": "PostgreSQL" if url.startswith("postgresql") else "SQLite",
        "SIGKILL": kills["SIGKILL"],
        "SIGTERM": kills["SIGTERM"],
        "jobs": len(submitted),
        **{key: found[key] for key in ("resumed", *FAILURES)},
    }


def main() -> None:
    args = common.options(__doc__, minutes=1.0, workers=3, database_url=None)
    result = run(args.minutes, args.workers, args.database_url)
    ok = all(result[key] == 0 for key in FAILURES)
    verdict = "All zero: nothing lost, nothing done twice." if ok else "FAILURES above."
    body = common.table(list(result), [list(result.values())]) + "\n\n" + verdict
    variant = None if result["database"] == "SQLite" else "postgresql"
    title = f"Chaos: workers killed at random ({result['database']})"
    common.write_report("chaos", title, body, variant=variant)
    if not ok:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
