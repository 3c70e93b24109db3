"""What reading a long curve costs: GET /jobs/{id}/loss with max_points, a zoomed window, a page.

A job's loss history of n points (n = 10,000, 100,000, 1,000,000, 10,000,000; steps 0..n-1) is
written straight into a fresh SQLite database with the worker's own insert (points and rollups),
then read through the app (in process, starlette's TestClient): the whole curve downsampled to
1,000 points, a 5,000-step zoom downsampled the same way, and the newest page after a cursor.
Min of 3 reads each.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
from fastapi.testclient import TestClient

from bench.common import migrated, options, submit, table, write_report
from service.app import create_app
from service.history import writes

SIZES = (10_000, 100_000, 1_000_000, 10_000_000)
SPEC = {"dataset": {"name": "blobs"}, "optimizer": {"type": "sgd", "iterations": 1_000_000}}


def main() -> None:
    options(__doc__)
    workdir = Path(tempfile.mkdtemp(prefix="descent-overview-"))
    database, settings = migrated(f"sqlite:///{workdir / 'overview.db'}", workdir / "data")
    job_id = submit(database, settings, SPEC)
    rows = []
    for n in SIZES:
        steps = np.arange(n)
        values = np.sin(steps / 500.0) + 2.0
        with database.write() as session:
            writes.reset_history(session, job_id)
            points = writes.Points("loss", steps.tolist(), values.tolist())
            writes.add_points(session, job_id, [points])
            session.commit()
        zoom = f"start={n // 2}&end={n // 2 + 4999}"
        reads = {
            "whole curve, max_points=1000": "max_points=1000",
            "5,000-step zoom, max_points=1000": f"max_points=1000&{zoom}",
            "newest page: after=n-500, limit=1000": f"after={n - 501}&limit=1000",
        }
        with TestClient(create_app(settings)) as client:
            for name, query in reads.items():
                seconds = []
                for _ in range(3):
                    start = time.perf_counter()
                    response = client.get(f"/jobs/{job_id}/loss?{query}")
                    seconds.append(time.perf_counter() - start)
                    response.raise_for_status()
                count = len(response.json()["points"])
                rows.append([f"{n:,}", name, count, f"{1000 * min(seconds):.1f}"])
    database.dispose()
    body = f"""
SQLite, in process (no HTTP server, no network): the cost of the read and the response alone.

{table(["points stored", "read", "points returned", "ms (min of 3)"], rows)}

A downsampled read takes the window's first and last point, then each bucket's extremes from the
rollups the writer keeps (service/history/rollup.py): per-block minima and maxima at levels of 16,
256, ... 16**6 steps, read from the coarsest level whose blocks still fit in a bucket. A window of
up to 16 points a bucket is read point by point. Either way it reads at most about 16 rows a
bucket, however long the history: the whole-curve overview, a zoom and a page cost about the same
at every length.
"""
    write_report("overview", "Reading long curves", body)


if __name__ == "__main__":
    main()
