"""How fast the job queue drains on PostgreSQL (`--database-url`, an empty database): 2,000 tiny
jobs, eight workers.

An API-only `descent serve --workers 0` takes the jobs, then 8 `descent worker --burst` processes
drain the queue; the figures come from the jobs' own rows.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text

from bench import common
from bench.common import percentiles_ms, table

JOBS, WORKERS = 2000, 8
TINY_JOB: dict[str, Any] = {
    "dataset": {"name": "toy"},
    "model": {"loss": "softmax", "reg": 0.001},
    "optimizer": {"type": "sgd", "learning_rate": 0.1, "batch_size": None, "iterations": 1},
    "eval_every": 0,
}


def drain(database_url: str, home: Path) -> float:
    """Start WORKERS burst workers and wait for all of them to exit; the wall seconds."""
    env = {**os.environ, "DESCENT_DATABASE_URL": database_url, "DESCENT_LOG_LEVEL": "WARNING",
           "DESCENT_DATA_DIR": str(home / "data"),
           "DESCENT_KERNEL_CACHE_DIR": str(common.filled_kernel_cache())}  # fmt: skip
    descent = str(Path(sys.executable).parent / "descent")
    start = time.perf_counter()
    processes = [subprocess.Popen([descent, "worker", "--burst"], env=env, cwd=home)
                 for _ in range(WORKERS)]  # fmt: skip
    for process in processes:
        if process.wait(timeout=3600) != 0:
            raise SystemExit(f"a worker exited with {process.returncode}")
    return time.perf_counter() - start


def ms(seconds: list[float], quantiles: tuple[int, ...] = (50, 90)) -> str:
    return " / ".join(percentiles_ms(seconds, quantiles)) + " ms"


def read(database_url: str) -> tuple[dict[str, int], list[dict[str, Any]], list[Any]]:
    """The jobs by status, the timings of those that ran to their end, and every attempt."""
    engine = create_engine(database_url)
    with engine.connect() as connection:
        counts = connection.execute(text("SELECT status, count(*) FROM jobs GROUP BY status"))
        statuses: dict[str, int] = {row[0]: row[1] for row in counts}
        timings = [row[0] for row in connection.execute(text("SELECT timings FROM jobs"))]
        attempts = connection.execute(
            text("SELECT worker, started_at, ended_at FROM job_attempts ORDER BY started_at")
        ).all()
    engine.dispose()
    return statuses, [t for t in timings if "run_s" in t], list(attempts)


def main() -> None:
    url = common.options(__doc__.split("\n\n")[0], database_url=None).database_url
    if not url or not url.startswith("postgresql"):
        raise SystemExit("claim_throughput needs an empty PostgreSQL database: --database-url")
    with (
        tempfile.TemporaryDirectory() as workdir,
        common.serve(Path(workdir), {"DESCENT_DATABASE_URL": url}, workers=0) as (api, _),
    ):
        start = time.perf_counter()
        for index in range(JOBS):
            answer = api.post("/jobs", json={**TINY_JOB, "seed": index})
            if answer.status_code != 202:
                raise SystemExit(f"POST /jobs answered {answer.status_code}: {answer.text}")
        submit_s = time.perf_counter() - start
        drain_s = drain(url, Path(workdir))
    statuses, timings, attempts = read(url)
    per_worker: dict[str, list[Any]] = defaultdict(list)
    for row in attempts:
        per_worker[row.worker].append(row)
    pairs = [pair for rows in per_worker.values() for pair in itertools.pairwise(rows)]
    gaps = [(later.started_at - earlier.ended_at).total_seconds() for earlier, later in pairs]
    first, last = min(a.started_at for a in attempts), max(a.ended_at for a in attempts)
    active_s = (last - first).total_seconds()
    fewest, most = min(map(len, per_worker.values())), max(map(len, per_worker.values()))
    succeeded = statuses.get("succeeded", 0)
    rows = [
        ["jobs", f"{JOBS:,} (succeeded {succeeded:,}, attempts {len(attempts):,})"],
        ["workers", f"{WORKERS} `descent worker --burst` processes"],
        ["submitting (POST /jobs, one client)", f"{submit_s:.1f} s"],
        ["draining, from the first start to the last finish", f"{active_s:.1f} s"],
        ["**jobs per second**", f"**{JOBS / active_s:.0f}**"],
        ["claim latency p50 / p90 / p99 / max", ms(gaps, (50, 90, 99, 100))],
        ["an attempt, claim to finish: p50 / p90",
         ms([(a.ended_at - a.started_at).total_seconds() for a in attempts])],
        ["of which the job's `run_s`: p50 / p90", ms([float(t["run_s"]) for t in timings])],
        ["of which waiting for its writes (`write_wait_s`): p50 / p90",
         ms([float(t["write_wait_s"]) for t in timings])],
        ["jobs per worker (fewest … most)", f"{fewest} … {most}"],
        ["workers' wall time (start-up and kernel loading included)", f"{drain_s:.1f} s"],
    ]  # fmt: skip
    body = f"""
Each job is one full-batch step on the toy set, so its time is almost all the queue's: the
claim, the lease, the final write. The claim latency is, per worker, the gap between the end of
one attempt and the start of its next. The workers, their history writers, the API and
PostgreSQL share the machine's cores.

{table(["measure", "result"], rows)}

{len(gaps):,} gaps between attempts of the same worker.
"""
    common.write_report(
        "claim_throughput", "Draining thousands of tiny jobs with eight workers on PostgreSQL", body
    )


if __name__ == "__main__":
    main()
