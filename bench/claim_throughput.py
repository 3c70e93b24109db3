"""How fast the job queue drains on PostgreSQL: thousands of tiny jobs, eight workers.

    python -m bench.claim_throughput --database-url postgresql+psycopg://USER@HOST/EMPTY_DB
        [--jobs 2000] [--workers 8]

An API-only `descent serve --workers 0` takes the jobs, then `--workers` `descent worker --burst`
processes drain the queue; the figures come from the jobs' own rows.
"""

from __future__ import annotations

import argparse
import itertools
import os
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from sqlalchemy import create_engine, text

from bench.common import (
    POSTGRES_PLACEHOLDER,
    filled_kernel_cache,
    percentiles_ms,
    serve,
    table,
    write_report,
)

TINY_JOB: dict[str, Any] = {
    "dataset": {"name": "toy"},
    "model": {"loss": "softmax", "reg": 0.001},
    "optimizer": {"type": "sgd", "learning_rate": 0.1, "batch_size": None, "iterations": 1},
    "eval_every": 0,
}


def submit(base: str, jobs: int) -> float:
    """POST `jobs` tiny jobs; the seconds that took."""
    start = time.perf_counter()
    with httpx.Client(base_url=base, timeout=30) as api:
        for index in range(jobs):
            answer = api.post("/jobs", json={**TINY_JOB, "seed": index})
            if answer.status_code != 202:
                raise SystemExit(f"POST /jobs answered {answer.status_code}: {answer.text}")
    return time.perf_counter() - start


def drain(database_url: str, workers: int, home: Path) -> float:
    """Start `workers` burst workers and wait for all of them to exit; the wall seconds."""
    env = {
        **os.environ,
        "DESCENT_DATABASE_URL": database_url,
        "DESCENT_LOG_LEVEL": "WARNING",
        "DESCENT_DATA_DIR": str(home / "data"),
        "DESCENT_KERNEL_CACHE_DIR": str(filled_kernel_cache()),
    }
    descent = str(Path(sys.executable).parent / "descent")
    start = time.perf_counter()
    processes = [
        subprocess.Popen([descent, "worker", "--burst"], env=env, cwd=home) for _ in range(workers)
    ]
    for process in processes:
        if process.wait(timeout=3600) != 0:
            raise SystemExit(f"a worker exited with {process.returncode}")
    return time.perf_counter() - start


def measure(database_url: str) -> dict[str, Any]:
    """Throughput, claim gaps and fairness from the jobs and job_attempts tables."""
    engine = create_engine(database_url)
    with engine.connect() as connection:
        counts = connection.execute(text("SELECT status, count(*) FROM jobs GROUP BY status"))
        statuses: dict[str, int] = {row[0]: row[1] for row in counts}
        timings = [row[0] for row in connection.execute(text("SELECT timings FROM jobs"))]
        timings = [t for t in timings if "run_s" in t]  # jobs that ran to their end
        attempts = connection.execute(
            text("SELECT worker, started_at, ended_at FROM job_attempts ORDER BY started_at")
        ).all()
    engine.dispose()
    per_worker: dict[str, list[Any]] = defaultdict(list)
    for row in attempts:
        per_worker[row.worker].append(row)
    gaps = [
        (later.started_at - earlier.ended_at).total_seconds()
        for rows in per_worker.values()
        for earlier, later in itertools.pairwise(rows)
    ]
    first = min(row.started_at for row in attempts)
    last = max(row.ended_at for row in attempts)
    return {
        "statuses": statuses,
        "attempts": len(attempts),
        "jobs_per_worker": sorted(len(rows) for rows in per_worker.values()),
        "active_seconds": (last - first).total_seconds(),
        "gaps": np.array(gaps),
        "attempt_s": np.array([(a.ended_at - a.started_at).total_seconds() for a in attempts]),
        "run_s": np.array([float(t["run_s"]) for t in timings]),
        "write_wait_s": np.array([float(t["write_wait_s"]) for t in timings]),
    }


def ms(seconds: np.ndarray, quantiles: tuple[int, ...] = (50, 90)) -> str:
    return " / ".join(percentiles_ms(seconds.tolist(), quantiles)) + " ms"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--database-url",
        default=os.environ.get("DESCENT_BENCH_POSTGRES_URL"),
        help="an empty PostgreSQL database (default: $DESCENT_BENCH_POSTGRES_URL)",
    )
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=8)
    args = parser.parse_args(argv)
    if not args.database_url or not args.database_url.startswith("postgresql"):
        raise SystemExit("claim_throughput needs an empty PostgreSQL database: --database-url")

    with tempfile.TemporaryDirectory() as workdir:
        home = Path(workdir)
        with serve(home, {"DESCENT_DATABASE_URL": args.database_url}, workers=0) as (base, _):
            submit_s = submit(base, args.jobs)
            drain_s = drain(args.database_url, args.workers, home)
    found = measure(args.database_url)

    gaps = found["gaps"]
    fewest, most = found["jobs_per_worker"][0], found["jobs_per_worker"][-1]
    succeeded = found["statuses"].get("succeeded", 0)
    jobs_per_s = args.jobs / found["active_seconds"]
    rows = [
        ["jobs", f"{args.jobs:,} (succeeded {succeeded:,}, attempts {found['attempts']:,})"],
        ["workers", f"{args.workers} `descent worker --burst` processes"],
        ["submitting (POST /jobs, one client)", f"{submit_s:.1f} s"],
        ["draining, from the first start to the last finish", f"{found['active_seconds']:.1f} s"],
        ["**jobs per second**", f"**{jobs_per_s:.0f}**"],
        ["claim latency p50 / p90 / p99 / max", ms(gaps, (50, 90, 99, 100))],
        ["an attempt, claim to finish: p50 / p90", ms(found["attempt_s"])],
        ["of which the job's `run_s`: p50 / p90", ms(found["run_s"])],
        ["of which waiting for its writes (`write_wait_s`): p50 / p90", ms(found["write_wait_s"])],
        ["jobs per worker (fewest … most)", f"{fewest} … {most}"],
        ["workers' wall time (start-up and kernel loading included)", f"{drain_s:.1f} s"],
    ]
    body = f"""
Each job is one full-batch step on the toy set, so its time is almost all the queue's: the
claim, the lease, the final write. The claim latency is, per worker, the gap between the end of
one attempt and the start of its next. The workers, their history writers, the API and
PostgreSQL share the machine's cores.

{table(["measure", "result"], rows)}

{gaps.size:,} gaps between attempts of the same worker.
"""
    command = (f".venv/bin/python -m bench.claim_throughput --jobs {args.jobs} --workers "
               f"{args.workers} --database-url {POSTGRES_PLACEHOLDER}")  # fmt: skip
    title = "Draining thousands of tiny jobs with eight workers on PostgreSQL"
    write_report("claim_throughput", title, command, body)


if __name__ == "__main__":
    main()
