"""The memory of two workers after each has run a CIFAR-10 job, and how fast a worker gets its
data.

For each variant, `descent serve --workers 2` on a fresh data directory (the kernel cache of
`make serve`) runs 2 copies of the course's recipe as docs/USAGE.md writes it (seeds differ);
then the PSS and RSS of its worker processes and their history writers (/proc/<pid>/smaps_rollup)
are summed, and a new server on the same directory reports its first job's `load_s`. Variants:
`per process` (DESCENT_PREPARED_CACHE_BYTES=0, every worker prepares its own copy) and
`per machine` (the default: prepared sets written once and memory-mapped by every worker).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

from bench import common
from bench.common import RECIPE, serve, wait_finished

WORKERS = 2
VARIANTS = {"per process": {"DESCENT_PREPARED_CACHE_BYTES": "0"}, "per machine": {}}


def memory_kib(pid: int) -> tuple[int, int]:
    """(PSS, RSS) in KiB of one process (0, 0 if it is gone)."""
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return 0, 0
    fields = {line.split(":")[0]: line.split()[1] for line in text.splitlines() if ":" in line}
    return int(fields.get("Pss", 0)), int(fields.get("Rss", 0))


def run_variant(env: dict[str, str]) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as workdir:
        home = Path(workdir)
        with serve(home, env, workers=WORKERS) as (api, pid):
            ids = [
                api.post("/jobs", json={**RECIPE, "seed": k}).json()["id"] for k in range(WORKERS)
            ]
            jobs = [wait_finished(api, f"/jobs/{job_id}") for job_id in ids]
            time.sleep(1.0)  # let the writers settle after the last flush
            kids = common.descendants(pid)
            sizes = [memory_kib(kid) for kid in kids]
        # A new server on the same data directory: its worker has prepared nothing yet.
        with serve(home, env) as (api, _):
            later = api.post("/jobs", json={**RECIPE, "seed": WORKERS}).json()["id"]
            last = wait_finished(api, f"/jobs/{later}")
    for job in (*jobs, last):
        assert job["status"] == "succeeded", job
    return {
        "pss_mib": sum(p for p, _ in sizes) / 1024,
        "rss_mib": sum(r for _, r in sizes) / 1024,
        "processes": len(kids),
        "first_load_s": [job["timings"]["load_s"] for job in jobs],
        "later_load_s": last["timings"]["load_s"],
        "val": [job["metrics"]["val_accuracy"] for job in (*jobs, last)],
    }


def main() -> None:
    common.options(__doc__.split("\n\n")[0])
    common.require_cifar10()
    results = {name: run_variant(env) for name, env in VARIANTS.items()}
    base = results["per process"]["pss_mib"]
    rows = [[name, f"{found['pss_mib']:.0f}", f"{found['pss_mib'] / base:.2f}x",
             f"{found['rss_mib']:.0f}", " / ".join(f"{s:.3f}" for s in found["first_load_s"]),
             f"{found['later_load_s']:.3f}", " / ".join(f"{v:.3f}" for v in found["val"])]
            for name, found in results.items()]  # fmt: skip
    header = ["data", "workers' PSS (MiB)", "to per process", "workers' RSS (MiB)",
              "first jobs' load_s (s)", "after a restart: load_s (s)", "val accuracy"]  # fmt: skip
    processes = results["per machine"]["processes"]
    body = (
        common.table(header, rows)
        + f"\n\n`descent serve --workers {WORKERS}`; memory summed over its {processes} child"
        " processes (the workers and their history writers) after each worker ran one job. After"
        " a restart: the first job of a new `descent serve --workers 1` on the same directory.\n"
    )
    title = f"The memory of {WORKERS} workers, and how fast a worker gets its data"
    common.write_report("worker_memory", title, body)


if __name__ == "__main__":
    main()
