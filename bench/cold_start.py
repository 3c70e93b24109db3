"""Cold start: the first CIFAR-10 job after `descent serve` starts, with an empty kernel cache and
again after restarts on the same data directory.

Round 1 starts `descent serve --workers 1` on a fresh data directory: its worker compiles the
kernels into DESCENT_KERNEL_CACHE_DIR while it runs the job. Each restart starts another server on
the same directory, whose worker loads them before it claims the job. Each round submits the
course's recipe cut to 10 steps; the target is judged on the restarts' median run_s.
"""

from __future__ import annotations

import re
import statistics
import tempfile
import time
from pathlib import Path

from bench.common import (
    RECIPE,
    options,
    output_to,
    require_cifar10,
    serve,
    table,
    wait_finished,
    write_report,
)

RESTARTS = 3
SPEC = {
    **RECIPE,
    "name": "svm-sgd-cold-start",
    "optimizer": {**RECIPE["optimizer"], "iterations": 10},
}
TARGET_RUN_S = 1.0
WARM_UP = re.compile(r"kernels warmed up in ([\d.]+)s: (\d+) loaded from .*?, (\d+) compiled")
POLL_SECONDS = 0.02


def one_round(name: str, home: Path, env: dict[str, str]) -> tuple[list[str], float]:
    """The round's row of the report, and its job's run_s."""
    log = home / f"{name.split(',')[0].replace(' ', '-')}.log"
    with output_to(log), serve(home, env) as (api, _):
        submitted = time.perf_counter()
        job_id = api.post("/jobs", json=SPEC).json()["id"]
        job = wait_finished(api, f"/jobs/{job_id}", POLL_SECONDS)
        elapsed = time.perf_counter() - submitted
        # The server stops once its warm-up has ended (on a first start it goes on after the
        # job), so that a restart finds every kernel in the cache.
        deadline = time.monotonic() + 600
        while not WARM_UP.search(log.read_text(errors="replace")):
            if time.monotonic() > deadline:
                raise SystemExit(f"{name}: the worker's warm-up did not end within 600 s")
            time.sleep(0.5)
    if job["status"] != "succeeded":
        raise SystemExit(f"{name}: the job ended {job['status']}: {job['error']}")
    warm_s, *kernels = WARM_UP.findall(log.read_text(errors="replace"))[-1]
    t = job["timings"]
    row = [name, f"{float(warm_s):.2f}", " / ".join(kernels), f"{t['queued_s']:.2f}",
           f"{t['load_s']:.2f}", f"{t['run_s']:.3f}", f"{elapsed:.2f}",
           f"{job['metrics']['loss']:.2f}"]  # fmt: skip
    return row, t["run_s"]


def main() -> None:
    options(__doc__)
    require_cifar10()
    home = Path(tempfile.mkdtemp(prefix="descent-cold-start-"))
    cache = home / "data" / "kernels"
    env = {
        "DESCENT_KERNEL_CACHE_DIR": str(cache),  # the default, stated: the caller's env may set it
        "DESCENT_LOG_LEVEL": "INFO",  # the worker's warm-up line
    }
    rounds = [one_round("first start, empty kernel cache", home, env)]
    files = [p for p in cache.rglob("*") if p.suffix in (".nbi", ".nbc")]
    for restart in range(1, RESTARTS + 1):
        rounds.append(one_round(f"restart {restart}, same data directory", home, env))
    run_s = statistics.median(seconds for _, seconds in rounds[1:])
    verdict = "met" if run_s < TARGET_RUN_S else "not met"
    body = f"""
The course's recipe (SVM, SGD, lr 1e-7, reg 2.5e4, batch 200) cut to 10 steps, through the API
of `descent serve --workers 1` on a fresh SQLite database and data directory, then after each
restart on the same directory. "submit → succeeded" polls the job every
{POLL_SECONDS * 1000:.0f} ms: queued_s (a worker starting, or loading its kernels), load_s
(CIFAR-10 read and centred, once per worker process) and run_s (the steps, their history writes,
the final scoring; on a first start, the compilation of the kernels the job calls). "kernels":
entries loaded from the disk cache / compiled by the warm-up, which on a first start goes on while
the job runs; each server stops once its warm-up has ended.

{table(["round", "worker warm-up (s)", "kernels loaded / compiled", "queued_s", "load_s",
        "run_s", "submit → succeeded (s)", "last loss"], [row for row, _ in rounds])}

Target: run_s < {TARGET_RUN_S:.0f} s for the first job after a restart: **{verdict}** (median of
the {RESTARTS} restarts: {run_s:.3f} s). After round 1 the kernel cache held {len(files)}
files (numba's .nbi indexes and .nbc code).
"""  # fmt: skip
    write_report("cold_start", "Cold start: the first job after a (re)start", body)


if __name__ == "__main__":
    main()
